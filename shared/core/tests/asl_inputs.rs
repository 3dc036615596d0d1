//! Holds the state machine's data flow to the Rust types: every command it sends, built from a
//! [`SagaInput`] as Step Functions builds it (`Parameters` paths), reads as a [`ServiceCommand`] of the
//! input's attempt; a happy order enters four states (a transition each: the bill), and every execution ends
//! on the task that writes its order's last status; and an operator's compensation rerun, answered
//! `Saga.CompensationRerun` by the first step, goes through every compensation with its input's error kept.

use nexus_core::domain::checkout::Tier;
use nexus_core::domain::messages::{CommandName, SagaFailure, SagaInput, ServiceCommand, attributes};
use nexus_core::domain::saga_error::SagaError;
use serde_json::{Map, Value, json};

mod common;

fn input(attempt: u32, rerun: bool) -> Value {
    let mut input = SagaInput {
        order_id: "ord-1".into(),
        correlation_id: "corr-1".into(),
        attempt,
        tier: Tier::Vip,
        error: rerun.then(|| SagaFailure { error: "Payment.Unavailable".into(), cause: "rerun".into() }),
    }
    .to_json();
    // What a Catch adds on the way (ResultPath $.error / $.compensationError), for the states that read it.
    input["error"] = json!({"Error": "Payment.Unavailable", "Cause": "budget spent"});
    input["compensationError"] = json!({"Error": "Saga.Transient", "Cause": "still down"});
    input
}

/// A JSONPath of the simple form the definition uses (`$.a.b`) against `data`.
fn path<'a>(data: &'a Value, path: &str) -> &'a Value {
    let rest = path.strip_prefix("$.").unwrap_or_else(|| panic!("unsupported path {path}"));
    rest.split('.').fold(data, |value, key| &value[key])
}

/// A task's `Parameters.Message`, built as Step Functions builds it: `key.$` takes the path's value (the
/// context object `$$` stands for the execution id and the task token).
fn message(template: &Value, data: &Value) -> Value {
    let mut built = Map::new();
    for (key, value) in template.as_object().expect("Message is an object") {
        match key.strip_suffix(".$") {
            Some(name) => {
                let text = value.as_str().expect("a path");
                let resolved = match text {
                    "$$.Execution.Id" => json!("arn:aws:states:us-east-1:0:execution:saga:x"),
                    "$$.Task.Token" => json!("token"),
                    _ => path(data, text).clone(),
                };
                assert!(!resolved.is_null(), "{key}: {text} is not in the input {data}");
                built.insert(name.to_owned(), resolved);
            }
            None => {
                built.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(built)
}

#[test]
fn every_command_reads_as_a_service_command_of_the_inputs_attempt() {
    let machine = common::state_machine(&Default::default());
    let data = input(3, false);
    let mut commands = Vec::new();
    for (name, state) in machine["States"].as_object().expect("States") {
        let Some(template) = state["Parameters"].get("Message") else { continue };
        let command: ServiceCommand = serde_json::from_value(message(template, &data))
            .unwrap_or_else(|e| panic!("{name}'s message is not a ServiceCommand: {e}"));
        assert_eq!((command.attempt, command.order_id.as_str()), (3, "ord-1"), "{name}");
        // The lane: the queues' filter policies route on this attribute.
        let tier = &state["Parameters"]["MessageAttributes"][attributes::TIER];
        assert_eq!(path(&data, tier["StringValue.$"].as_str().expect("a path")), "VIP", "{name} carries no tier");
        commands.push(command.command);
    }
    assert_eq!(commands.len(), CommandName::ALL.len(), "one task per command: {commands:?}");
}

/// The commands met from `state` on, following `Next` (the path when every step succeeds).
fn commands_from(machine: &Value, mut state: String) -> Vec<String> {
    let mut commands = Vec::new();
    while let Some(next) = machine["States"][&state]["Next"].as_str() {
        commands.extend(machine["States"][&state]["Parameters"]["Message"]["command"].as_str().map(str::to_owned));
        state = next.to_owned();
    }
    commands.extend(machine["States"][&state]["Parameters"]["Message"]["command"].as_str().map(str::to_owned));
    commands
}

#[test]
fn a_happy_order_enters_four_states_and_a_compensation_rerun_runs_every_compensation_then_cancels() {
    let machine = common::state_machine(&Default::default());
    let first = machine["StartAt"].as_str().expect("StartAt").to_owned();
    assert_eq!(
        commands_from(&machine, first.clone()),
        ["ReserveInventory", "ChargePayment", "DispatchShipping", "CompleteOrder"]
    );
    // Each state entered is a billed transition: the four tasks, nothing else.
    let mut entered = vec![first.clone()];
    while let Some(next) = machine["States"][entered.last().expect("a state")]["Next"].as_str() {
        entered.push(next.to_owned());
    }
    assert_eq!(entered.len(), 4, "a happy order's states: {entered:?}");
    // Nor does any other end pay for a state that does nothing: an execution succeeds on the task that
    // wrote its order's final status (End), never in a Succeed state after it.
    for (name, state) in machine["States"].as_object().expect("States") {
        assert_ne!(state["Type"], "Succeed", "{name}: a Succeed state is a billed transition that does no work");
        if state["End"] == true {
            assert_eq!(state["Type"], "Task", "{name}");
        }
    }
    // The rerun: the first step answers Saga.CompensationRerun, caught with the input (its error) kept.
    let catchers = machine["States"][&first]["Catch"].as_array().expect("Catch");
    let rerun = catchers
        .iter()
        .find(|c| {
            c["ErrorEquals"].as_array().is_some_and(|e| e.iter().any(|n| n == SagaError::CompensationRerun.as_str()))
        })
        .expect("the first state catches a compensation rerun");
    assert!(rerun["ResultPath"].is_null() && rerun.get("ResultPath").is_some(), "the input's error is kept: {rerun}");
    assert_eq!(
        commands_from(&machine, rerun["Next"].as_str().expect("Next").to_owned()),
        ["CancelShipment", "RefundPayment", "ReleaseInventory", "CancelOrder"],
        "every effect is undone (each undo is idempotent), then the order is cancelled"
    );
    let data = input(1, true);
    assert_eq!(path(&data, "$.error.Error"), "Payment.Unavailable", "what CancelOrder cancels for");
}
