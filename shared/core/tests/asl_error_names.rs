//! Holds the state machine (`infra/order-saga.asl.json`) to the Rust side's contract strings, both ways:
//! every error name it matches is a [`SagaError`], every `SagaError` a handler can answer is caught where
//! that handler's command is sent (by name for a business refusal, which routes differently), the one the
//! state machine raises itself is a `Fail` state's error, and every message attribute a command carries is
//! a defined attribute name.

use std::collections::BTreeSet;

use nexus_core::domain::messages::{CommandName, attributes};
use nexus_core::domain::saga_error::SagaError;
use serde_json::Value;

mod common;

fn state_machine() -> Value {
    common::state_machine(&Default::default())
}

fn states(machine: &Value) -> Vec<(&str, &Value)> {
    machine["States"].as_object().expect("States").iter().map(|(name, state)| (name.as_str(), state)).collect()
}

/// The command a task state sends, from its SNS message.
fn command_of(state: &Value) -> Option<&str> {
    state["Parameters"]["Message"]["command"].as_str()
}

fn names(rules: &Value) -> impl Iterator<Item = &str> {
    rules
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["ErrorEquals"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
}

#[test]
fn every_error_name_the_state_machine_matches_is_a_saga_error() {
    let machine = state_machine();
    for (name, state) in states(&machine) {
        for error in names(&state["Catch"]).chain(names(&state["Retry"])) {
            assert!(
                error.starts_with("States.") || SagaError::parse(error).is_some(),
                "state {name} matches {error:?}, which no handler answers (not a SagaError)"
            );
        }
    }
}

#[test]
fn every_saga_error_is_caught_where_it_can_be_raised() {
    let machine = state_machine();
    let states = states(&machine);
    // What the state machine sets itself: a Fail state's error, or a Pass state's (a spent retry budget).
    let own_errors: BTreeSet<&str> =
        states.iter().filter_map(|(_, s)| s["Error"].as_str().or_else(|| s["Parameters"]["Error"].as_str())).collect();
    for error in SagaError::ALL {
        if error.raised_by().is_empty() {
            assert!(own_errors.contains(error.as_str()), "{error} is raised by no handler and by no state");
            continue;
        }
        for command in error.raised_by() {
            let senders: Vec<_> = states.iter().filter(|(_, s)| command_of(s) == Some(command.as_str())).collect();
            assert!(!senders.is_empty(), "no state sends {}, which can answer {error}", command.as_str());
            for (name, state) in senders {
                let caught: Vec<&str> = names(&state["Catch"]).collect();
                if error.is_business_refusal() {
                    assert!(caught.contains(&error.as_str()), "{name} does not route the business refusal {error}");
                } else {
                    assert!(
                        caught.contains(&error.as_str()) || caught.contains(&"States.ALL"),
                        "{name} does not catch {error}"
                    );
                }
            }
        }
    }
}

#[test]
fn commands_carry_only_defined_attributes_and_known_command_names() {
    let defined = [
        attributes::ORDER_ID,
        attributes::CORRELATION_ID,
        attributes::EXECUTION_ARN,
        attributes::COMMAND,
        attributes::TIER,
    ];
    let machine = state_machine();
    for (name, state) in states(&machine) {
        let Some(command) = command_of(state) else { continue };
        let known: Vec<&str> = CommandName::ALL.iter().map(|c| c.as_str()).collect();
        assert!(known.contains(&command), "{name} sends unknown command {command}");
        let attributes = state["Parameters"]["MessageAttributes"].as_object().expect("message attributes");
        for key in attributes.keys() {
            assert!(defined.contains(&key.as_str()), "{name} carries attribute {key}, defined nowhere in Rust");
        }
        assert_eq!(attributes[attributes::COMMAND]["StringValue"], command, "{name}: attribute and body disagree");
    }
}
