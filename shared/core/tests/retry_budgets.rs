//! The rule that ties the saga's timeouts together (docs/architecture.md §6), read
//! from `template.yaml` (its parameter defaults) and the state machine:
//! - a function always answers before its task token expires: task timeout > function timeout;
//! - SQS never redelivers a message a function is still working on: visibility timeout ≥ 6 × function
//!   timeout (AWS's guidance for SQS event sources);
//! - a transient failure (`Saga.Transient`, a task timeout, a failed publish) is retried with backoff for at
//!   least 10 minutes per forward step, a compensation for at least as long, and only final errors skip it;
//! - the execution outlives the worst case of every step spending its whole budget.

mod common;

use nexus_core::domain::saga_error::SagaError;
use serde_json::Value;

/// A forward step must ride out an outage this long before its order is cancelled.
const OUTAGE_BUDGET_SECONDS: f64 = 600.0;
const FORWARD_COMMANDS: [&str; 3] = ["ReserveInventory", "ChargePayment", "DispatchShipping"];

fn number(defaults: &std::collections::BTreeMap<String, String>, name: &str) -> f64 {
    defaults[name].parse().unwrap_or_else(|_| panic!("parameter {name} is a number"))
}

/// The catch-all retrier of a task state: (attempts, the sum of its largest delays, its jitter).
fn budget(name: &str, state: &Value) -> (u64, f64, String) {
    let retriers = state["Retry"].as_array().unwrap_or_else(|| panic!("{name} has no Retry"));
    let last = retriers.last().unwrap_or_else(|| panic!("{name} has no retrier"));
    assert_eq!(last["ErrorEquals"], serde_json::json!(["States.ALL"]), "{name}: the last retrier catches all");
    let attempts = last["MaxAttempts"].as_u64().expect("MaxAttempts");
    let (interval, rate) =
        (last["IntervalSeconds"].as_f64().unwrap_or(1.0), last["BackoffRate"].as_f64().unwrap_or(2.0));
    let cap = last["MaxDelaySeconds"].as_f64().unwrap_or(f64::MAX);
    let delays = (0..attempts).map(|i| (interval * rate.powi(i as i32)).min(cap)).sum();
    (attempts, delays, last["JitterStrategy"].as_str().unwrap_or("NONE").to_owned())
}

/// What a budget can be counted on for: with full jitter each delay is drawn below its maximum, so half.
fn expected(delays: f64, jitter: &str) -> f64 {
    if jitter == "FULL" { delays / 2.0 } else { delays }
}

fn tasks(machine: &Value) -> Vec<(String, Value)> {
    machine["States"]
        .as_object()
        .expect("States")
        .iter()
        .filter(|(_, state)| state["Type"] == "Task")
        .map(|(name, state)| (name.clone(), state.clone()))
        .collect()
}

fn command(state: &Value) -> &str {
    state["Parameters"]["Message"]["command"].as_str().unwrap_or_default()
}

#[test]
fn every_step_rides_out_a_ten_minute_outage_and_compensations_at_least_as_long() {
    let machine = common::state_machine(&Default::default());
    let mut forward_budget: f64 = 0.0;
    for (name, state) in tasks(&machine).iter().filter(|(_, s)| FORWARD_COMMANDS.contains(&command(s))) {
        let (_, delays, jitter) = budget(name, state);
        let budget = expected(delays, &jitter);
        assert!(budget >= OUTAGE_BUDGET_SECONDS, "{name}: a budget of {budget:.0} s, under {OUTAGE_BUDGET_SECONDS} s");
        forward_budget = forward_budget.max(budget);
    }
    assert!(forward_budget > 0.0, "the forward steps were found");
    for (name, state) in tasks(&machine).iter().filter(|(_, s)| !FORWARD_COMMANDS.contains(&command(s))) {
        let (_, delays, jitter) = budget(name, state);
        let budget = expected(delays, &jitter);
        assert!(budget >= forward_budget, "{name}: {budget:.0} s, shorter than a forward step's {forward_budget:.0} s");
    }
}

#[test]
fn only_final_errors_skip_the_retries() {
    let machine = common::state_machine(&Default::default());
    for (name, state) in tasks(&machine) {
        let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
        let never_retried: Vec<&str> = retriers
            .iter()
            .filter(|r| r["MaxAttempts"] == 0)
            .flat_map(|r| r["ErrorEquals"].as_array().into_iter().flatten().filter_map(Value::as_str))
            .collect();
        assert!(!never_retried.contains(&SagaError::Transient.as_str()), "{name} never retries Saga.Transient");
        assert!(!never_retried.iter().any(|e| e.starts_with("States.")), "{name} gives up on {never_retried:?}");
        for error in SagaError::ALL.iter().filter(|e| **e != SagaError::Transient) {
            let raised = error.raised_by().iter().any(|c| c.as_str() == command(&state));
            if raised {
                assert!(never_retried.contains(&error.as_str()), "{name}: {error} is final, yet retried");
            }
        }
    }
}

#[test]
fn timeouts_fit_together() {
    let defaults = common::parameter_defaults();
    let machine = common::state_machine(&Default::default());
    let function_timeout = number(&defaults, "FunctionTimeoutSeconds");
    let visibility = number(&defaults, "QueueVisibilityTimeoutSeconds");
    assert!(
        visibility >= 6.0 * function_timeout,
        "visibility {visibility} s < 6 × function timeout {function_timeout} s"
    );
    let mut worst_case = 0.0;
    for (name, state) in tasks(&machine) {
        let task_timeout = state["TimeoutSeconds"].as_f64().unwrap_or_else(|| panic!("{name} has a timeout"));
        // No event source of the template batches with a window: a command waits for no other.
        assert!(task_timeout > function_timeout, "{name}: task timeout {task_timeout} s ≤ function timeout");
        let (attempts, delays, _) = budget(&name, &state);
        worst_case += (attempts + 1) as f64 * task_timeout + delays;
    }
    let saga_timeout = machine["TimeoutSeconds"].as_f64().expect("TimeoutSeconds");
    assert!(saga_timeout > worst_case, "execution timeout {saga_timeout} s under the worst case {worst_case} s");
}
