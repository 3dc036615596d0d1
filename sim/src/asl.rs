//! An interpreter for the subset of the Amazon States Language (JSONPath query language) that
//! `infra/order-saga.asl.json` uses: Task (`sns:publish.waitForTaskToken`, with `TimeoutSeconds`, `Retry`
//! with backoff, `MaxDelaySeconds` and jitter, `Catch`), Choice (`IsPresent`, `StringEquals`), Pass,
//! Succeed, Fail; `Parameters` with `.$` paths, the context object (`$$.Execution.Id`, `$$.Task.Token`)
//! and the `States.JsonToString` intrinsic; `ResultPath`; the execution's `TimeoutSeconds`; StopExecution.
//!
//! Why not a crate: the `asl` crate (0.2) executes a task by a synchronous call that returns its result,
//! so a callback task that waits for a token, times out, and is retried after a delay on a clock the
//! simulation owns cannot be expressed with it; the JSONPath crates implement RFC 9535 (`serde_json_path`)
//! or Goessner's dialect without ASL's context object (`$$`) and intrinsics. The saga uses plain dotted
//! paths only, so the paths here are those, and anything else is refused when the definition is parsed,
//! so the state machine cannot grow a feature this interpreter silently misreads.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum AslError {
    #[error("state machine definition: {0}")]
    Definition(String),
}

/// What an execution asks of the world as it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// An `sns:publish.waitForTaskToken`: the message goes to the topic; the task waits for `token`.
    Publish { topic: String, message: String, attributes: BTreeMap<String, String>, token: String },
    /// The task with `token` times out at `at` (milliseconds) unless answered.
    TaskTimeout { token: String, at: u64 },
    /// The execution resumes at `at` (a retry's delay), if it is still waiting for `wake`.
    Wake { wake: u64, at: u64 },
    /// The execution ended.
    Ended(End),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

/// A parsed definition: its states, checked against the subset this interpreter runs.
#[derive(Debug, Clone)]
pub struct StateMachine {
    start_at: String,
    states: Map<String, Value>,
    timeout_seconds: Option<u64>,
}

impl StateMachine {
    /// Parses `definition` after `${Name}` substitutions (the template's `DefinitionSubstitutions`).
    pub fn parse(definition: &str, substitutions: &BTreeMap<String, String>) -> Result<Self, AslError> {
        let mut text = definition.to_owned();
        for (name, value) in substitutions {
            text = text.replace(&format!("${{{name}}}"), value);
        }
        if let Some(at) = text.find("${") {
            return Err(AslError::Definition(format!("unsubstituted {}", &text[at..(at + 40).min(text.len())])));
        }
        let root: Value = serde_json::from_str(&text).map_err(|e| AslError::Definition(e.to_string()))?;
        let states = root["States"].as_object().cloned().ok_or_else(|| AslError::Definition("no States".into()))?;
        let machine = Self {
            start_at: root["StartAt"].as_str().unwrap_or_default().to_owned(),
            states,
            timeout_seconds: root["TimeoutSeconds"].as_u64(),
        };
        machine.check()?;
        Ok(machine)
    }

    fn check(&self) -> Result<(), AslError> {
        let bad = |name: &str, why: String| Err(AslError::Definition(format!("state {name}: {why}")));
        for (name, state) in &self.states {
            match state["Type"].as_str().unwrap_or_default() {
                "Task" => {
                    if state["Resource"] != "arn:aws:states:::sns:publish.waitForTaskToken" {
                        return bad(name, format!("resource {} is not simulated", state["Resource"]));
                    }
                }
                "Choice" | "Pass" | "Succeed" | "Fail" => {}
                other => return bad(name, format!("type {other} is not simulated")),
            }
            for key in state.as_object().into_iter().flat_map(|o| o.keys()) {
                let known = [
                    "Type",
                    "Comment",
                    "Resource",
                    "Parameters",
                    "TimeoutSeconds",
                    "ResultPath",
                    "Retry",
                    "Catch",
                    "Next",
                    "End",
                    "Choices",
                    "Default",
                    "Error",
                    "Cause",
                ];
                if !known.contains(&key.as_str()) {
                    return bad(name, format!("field {key} is not simulated"));
                }
            }
        }
        Ok(())
    }

    pub fn timeout_seconds(&self) -> Option<u64> {
        self.timeout_seconds
    }

    fn state(&self, name: &str) -> &Value {
        &self.states[name]
    }
}

/// One execution: where it is, and what it waits for.
#[derive(Debug, Clone)]
pub struct Execution {
    pub name: String,
    pub arn: String,
    pub ended: Option<End>,
    state: String,
    data: Value,
    /// The task token the execution waits for, if it waits for one.
    waiting_token: Option<String>,
    /// The wake-up (a retry's delay) the execution waits for, if it waits for one.
    waiting_wake: Option<u64>,
    /// Attempts made of each retrier of the current state (reset on entering a state).
    retries: Vec<u32>,
    tokens: u64,
    wakes: u64,
}

/// The draws an execution needs: jitter.
pub trait Draw {
    /// A number in `0..=max`.
    fn below(&mut self, max: u64) -> u64;
}

impl Execution {
    /// Starts an execution of `machine` with `input`; returns it and what it asks for first.
    pub fn start(
        machine: &StateMachine,
        (name, arn): (&str, &str),
        input: Value,
        now: u64,
        draw: &mut impl Draw,
    ) -> (Self, Vec<Effect>) {
        let mut execution = Self {
            name: name.to_owned(),
            arn: arn.to_owned(),
            ended: None,
            state: machine.start_at.clone(),
            data: input,
            waiting_token: None,
            waiting_wake: None,
            retries: Vec::new(),
            tokens: 0,
            wakes: 0,
        };
        let effects = execution.run(machine, now, draw);
        (execution, effects)
    }

    /// The order the execution runs (its input's `orderId`).
    pub fn order_id(&self) -> Option<&str> {
        self.data["orderId"].as_str()
    }

    pub fn waits_for_token(&self, token: &str) -> bool {
        self.ended.is_none() && self.waiting_token.as_deref() == Some(token)
    }

    /// The answer to the task the execution waits for.
    pub fn answer(
        &mut self,
        machine: &StateMachine,
        token: &str,
        outcome: Result<Value, (String, String)>,
        now: u64,
        draw: &mut impl Draw,
    ) -> Vec<Effect> {
        if !self.waits_for_token(token) {
            return Vec::new();
        }
        self.waiting_token = None;
        match outcome {
            Ok(output) => {
                let state = machine.state(&self.state).clone();
                self.data = apply_result_path(&state, self.data.take(), output);
                self.next(machine, &state, now, draw)
            }
            Err((error, cause)) => self.fail_state(machine, &error, &cause, now, draw),
        }
    }

    /// The task with `token` timed out (if the execution still waits for it).
    pub fn time_out(&mut self, machine: &StateMachine, token: &str, now: u64, draw: &mut impl Draw) -> Vec<Effect> {
        if !self.waits_for_token(token) {
            return Vec::new();
        }
        self.waiting_token = None;
        self.fail_state(machine, "States.Timeout", "task timed out", now, draw)
    }

    /// A retry's delay is over (if the execution still waits for this wake-up).
    pub fn wake(&mut self, machine: &StateMachine, wake: u64, now: u64, draw: &mut impl Draw) -> Vec<Effect> {
        if self.ended.is_some() || self.waiting_wake != Some(wake) {
            return Vec::new();
        }
        self.waiting_wake = None;
        self.run(machine, now, draw)
    }

    /// `StopExecution`, or the execution's own timeout.
    pub fn end(&mut self, how: End) -> Vec<Effect> {
        if self.ended.is_some() {
            return Vec::new();
        }
        self.ended = Some(how);
        self.waiting_token = None;
        self.waiting_wake = None;
        vec![Effect::Ended(how)]
    }

    /// Runs states from the current one until the execution waits or ends.
    fn run(&mut self, machine: &StateMachine, now: u64, draw: &mut impl Draw) -> Vec<Effect> {
        let mut effects = Vec::new();
        // Bounded: the saga has no loops outside retries, which wait.
        for _ in 0..64 {
            let state = machine.state(&self.state).clone();
            match state["Type"].as_str().unwrap_or_default() {
                "Task" => {
                    self.tokens += 1;
                    let token = format!("{}#{}", self.arn, self.tokens);
                    let parameters = evaluate(&state["Parameters"], &self.data, &self.context(&token));
                    let message = match &parameters["Message"] {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    let attributes = parameters["MessageAttributes"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| v["StringValue"].as_str().map(|s| (k.clone(), s.to_owned())))
                        .collect();
                    let topic = parameters["TopicArn"].as_str().unwrap_or_default().to_owned();
                    effects.push(Effect::Publish { topic, message, attributes, token: token.clone() });
                    let timeout = state["TimeoutSeconds"].as_u64().unwrap_or(99_999_999);
                    effects.push(Effect::TaskTimeout { token: token.clone(), at: now + timeout * 1000 });
                    self.waiting_token = Some(token);
                    return effects;
                }
                "Pass" => {
                    let result = match state.get("Parameters") {
                        Some(parameters) => evaluate(parameters, &self.data, &Value::Null),
                        None => self.data.clone(),
                    };
                    self.data = apply_result_path(&state, self.data.take(), result);
                    effects.extend(self.next(machine, &state, now, draw));
                    return effects;
                }
                "Choice" => {
                    let chosen = state["Choices"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|choice| matches_choice(choice, &self.data))
                        .map(|choice| choice["Next"].clone())
                        .unwrap_or_else(|| state["Default"].clone());
                    self.enter(chosen.as_str().unwrap_or_default());
                }
                "Succeed" => {
                    effects.extend(self.end(End::Succeeded));
                    return effects;
                }
                _ => {
                    effects.extend(self.end(End::Failed));
                    return effects;
                }
            }
        }
        effects.extend(self.end(End::Failed));
        effects
    }

    fn enter(&mut self, state: &str) {
        self.state = state.to_owned();
        self.retries.clear();
    }

    fn next(&mut self, machine: &StateMachine, state: &Value, now: u64, draw: &mut impl Draw) -> Vec<Effect> {
        if state["End"] == true {
            return self.end(End::Succeeded);
        }
        self.enter(state["Next"].as_str().unwrap_or_default());
        self.run(machine, now, draw)
    }

    /// A task failed with `error`: retried by the first retrier that matches (if it has attempts left),
    /// else caught by the first catcher that matches, else the execution fails.
    fn fail_state(
        &mut self,
        machine: &StateMachine,
        error: &str,
        cause: &str,
        now: u64,
        draw: &mut impl Draw,
    ) -> Vec<Effect> {
        let state = machine.state(&self.state).clone();
        let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
        if let Some((index, retrier)) = retriers.iter().enumerate().find(|(_, r)| matches_error(r, error)) {
            self.retries.resize(retriers.len(), 0);
            let attempts = self.retries[index];
            if u64::from(attempts) < retrier["MaxAttempts"].as_u64().unwrap_or(3) {
                self.retries[index] += 1;
                let interval = retrier["IntervalSeconds"].as_f64().unwrap_or(1.0);
                let rate = retrier["BackoffRate"].as_f64().unwrap_or(2.0);
                let mut delay = interval * rate.powi(i32::try_from(attempts).unwrap_or(i32::MAX));
                if let Some(max) = retrier["MaxDelaySeconds"].as_f64() {
                    delay = delay.min(max);
                }
                // Whole milliseconds: the clock's unit.
                let mut delay_ms = (delay * 1000.0) as u64;
                if retrier["JitterStrategy"] == "FULL" {
                    delay_ms = draw.below(delay_ms);
                }
                self.wakes += 1;
                self.waiting_wake = Some(self.wakes);
                return vec![Effect::Wake { wake: self.wakes, at: now + delay_ms }];
            }
        }
        let catchers = state["Catch"].as_array().cloned().unwrap_or_default();
        if let Some(catcher) = catchers.iter().find(|c| matches_error(c, error)) {
            let failure = serde_json::json!({ "Error": error, "Cause": cause });
            self.data = apply_result_path(catcher, self.data.take(), failure);
            self.enter(catcher["Next"].as_str().unwrap_or_default());
            return self.run(machine, now, draw);
        }
        self.end(End::Failed)
    }

    fn context(&self, token: &str) -> Value {
        serde_json::json!({ "Execution": { "Id": self.arn, "Name": self.name }, "Task": { "Token": token } })
    }
}

fn matches_error(rule: &Value, error: &str) -> bool {
    rule["ErrorEquals"].as_array().into_iter().flatten().any(|e| e == "States.ALL" || e == error)
}

fn matches_choice(choice: &Value, data: &Value) -> bool {
    let found = path(data, choice["Variable"].as_str().unwrap_or_default());
    if let Some(present) = choice["IsPresent"].as_bool() {
        return found.is_some() == present;
    }
    if let Some(expected) = choice["StringEquals"].as_str() {
        return found.and_then(Value::as_str) == Some(expected);
    }
    false
}

/// `ResultPath`: absent replaces the input with the result, `null` keeps the input, `$.a.b` sets it there.
fn apply_result_path(state: &Value, mut input: Value, result: Value) -> Value {
    match state.get("ResultPath") {
        None => result,
        Some(Value::Null) => input,
        Some(Value::String(at)) if at == "$" => result,
        Some(Value::String(at)) => {
            let keys: Vec<&str> = at.trim_start_matches("$.").split('.').collect();
            set(&mut input, &keys, result);
            input
        }
        Some(_) => input,
    }
}

/// Puts `value` at `keys` in `data`, making the objects on the way.
fn set(data: &mut Value, keys: &[&str], value: Value) {
    let Some((first, rest)) = keys.split_first() else {
        *data = value;
        return;
    };
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Value::Object(fields) = data {
        set(fields.entry((*first).to_owned()).or_insert(Value::Null), rest, value);
    }
}

/// A dotted JSONPath (`$`, `$.a.b`) in `data`.
fn path<'a>(data: &'a Value, at: &str) -> Option<&'a Value> {
    if at == "$" {
        return Some(data);
    }
    at.strip_prefix("$.")?.split('.').try_fold(data, |value, key| value.get(key))
}

/// `Parameters`: keys ending in `.$` take a path (of the input, or of the context object with `$$.`) or
/// an intrinsic; the others are copied as they are.
fn evaluate(template: &Value, data: &Value, context: &Value) -> Value {
    match template {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| match (key.strip_suffix(".$"), value.as_str()) {
                    (Some(name), Some(expression)) => (name.to_owned(), resolve(expression, data, context)),
                    _ => (key.clone(), evaluate(value, data, context)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn resolve(expression: &str, data: &Value, context: &Value) -> Value {
    if let Some(inner) = expression.strip_prefix("States.JsonToString(").and_then(|e| e.strip_suffix(')')) {
        return Value::String(resolve(inner, data, context).to_string());
    }
    let found = match expression.strip_prefix('$') {
        // `$$.Task.Token`: the context object's `$.Task.Token`.
        Some(rest) if rest.starts_with('$') => path(context, rest),
        _ => path(data, expression),
    };
    found.cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Max;
    impl Draw for Max {
        fn below(&mut self, max: u64) -> u64 {
            max
        }
    }

    fn machine() -> StateMachine {
        let definition = json!({
            "StartAt": "Start",
            "TimeoutSeconds": 100,
            "States": {
                "Start": {"Type": "Choice", "Choices": [{"Variable": "$.resume", "IsPresent": true, "Next": "Undo"}], "Default": "Do"},
                "Do": {
                    "Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                    "Parameters": {"TopicArn": "${Topic}", "Message": {"id.$": "$.id", "token.$": "$$.Task.Token", "exec.$": "$$.Execution.Id"},
                                   "MessageAttributes": {"id": {"DataType": "String", "StringValue.$": "$.id"}}},
                    "TimeoutSeconds": 60, "ResultPath": null,
                    "Retry": [{"ErrorEquals": ["No"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0, "MaxDelaySeconds": 1}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Wrap"}],
                    "Next": "Done"
                },
                "Wrap": {"Type": "Pass", "Parameters": {"Error": "Wrapped", "Cause.$": "States.JsonToString($.error)"}, "ResultPath": "$.error", "Next": "Undo"},
                "Undo": {"Type": "Fail", "Error": "Undone"},
                "Done": {"Type": "Succeed"}
            }
        });
        let substitutions = BTreeMap::from([("Topic".to_owned(), "topic-a".to_owned())]);
        StateMachine::parse(&definition.to_string(), &substitutions).expect("parses")
    }

    fn token(effects: &[Effect]) -> String {
        effects
            .iter()
            .find_map(|e| match e {
                Effect::Publish { token, .. } => Some(token.clone()),
                _ => None,
            })
            .expect("a publish")
    }

    #[test]
    fn a_task_publishes_its_message_and_succeeds_on_its_answer() {
        let machine = machine();
        let (mut execution, effects) =
            Execution::start(&machine, ("o-1", "arn:x:o-1"), json!({"id": "o-1"}), 0, &mut Max);
        let Effect::Publish { topic, message, attributes, token } = &effects[0] else { panic!("{effects:?}") };
        assert_eq!(topic, "topic-a");
        let message: Value = serde_json::from_str(message).expect("json");
        assert_eq!((message["id"].as_str(), message["exec"].as_str()), (Some("o-1"), Some("arn:x:o-1")));
        assert_eq!(message["token"].as_str(), Some(token.as_str()));
        assert_eq!(attributes["id"], "o-1");
        assert_eq!(effects[1], Effect::TaskTimeout { token: token.clone(), at: 60_000 });
        let done = execution.answer(&machine, token, Ok(json!({})), 5, &mut Max);
        assert_eq!(done, vec![Effect::Ended(End::Succeeded)]);
        assert!(execution.answer(&machine, token, Ok(json!({})), 6, &mut Max).is_empty(), "answered once");
    }

    #[test]
    fn failures_are_retried_with_capped_backoff_then_caught_and_a_zero_attempt_retrier_catches_at_once() {
        let machine = machine();
        let (mut execution, effects) =
            Execution::start(&machine, ("o-2", "arn:x:o-2"), json!({"id": "o-2"}), 0, &mut Max);
        let first = token(&effects);
        let retry = execution.time_out(&machine, &first, 60_000, &mut Max);
        assert_eq!(retry, vec![Effect::Wake { wake: 1, at: 61_000 }]);
        let again = execution.wake(&machine, 1, 61_000, &mut Max);
        let second = token(&again);
        assert_ne!(first, second, "a retry is a new task with a new token");
        let retry = execution.answer(&machine, &second, Err(("Boom".into(), "c".into())), 62_000, &mut Max);
        assert_eq!(retry, vec![Effect::Wake { wake: 2, at: 63_000 }], "2 s capped at MaxDelaySeconds 1");
        let third = token(&execution.wake(&machine, 2, 63_000, &mut Max));
        let caught = execution.answer(&machine, &third, Err(("Boom".into(), "last".into())), 64_000, &mut Max);
        assert_eq!(caught, vec![Effect::Ended(End::Failed)], "caught, wrapped, then the Fail state");
        assert_eq!(execution.data["error"]["Error"], "Wrapped");
        assert!(execution.data["error"]["Cause"].as_str().is_some_and(|c| c.contains("last")));

        let (mut refused, effects) =
            Execution::start(&machine, ("o-3", "arn:x:o-3"), json!({"id": "o-3"}), 0, &mut Max);
        let ended = refused.answer(&machine, &token(&effects), Err(("No".into(), "c".into())), 1, &mut Max);
        assert_eq!(ended, vec![Effect::Ended(End::Failed)], "MaxAttempts 0: straight to the catcher");
    }

    #[test]
    fn the_start_choice_resumes_at_the_compensation_and_a_stop_ends_it() {
        let machine = machine();
        let (_, effects) = Execution::start(&machine, ("r", "arn:x:r"), json!({"id": "r", "resume": "X"}), 0, &mut Max);
        assert_eq!(effects, vec![Effect::Ended(End::Failed)]);
        let (mut running, _) = Execution::start(&machine, ("s", "arn:x:s"), json!({"id": "s"}), 0, &mut Max);
        assert_eq!(running.end(End::Aborted), vec![Effect::Ended(End::Aborted)]);
        assert!(running.end(End::Aborted).is_empty());
    }

    #[test]
    fn a_feature_the_interpreter_does_not_run_is_refused() {
        let map = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}});
        assert!(StateMachine::parse(&map.to_string(), &BTreeMap::new()).is_err());
        let unsubstituted = json!({"StartAt": "T", "States": {"T": {"Type": "Pass", "Comment": "${X}", "End": true}}});
        assert!(StateMachine::parse(&unsubstituted.to_string(), &BTreeMap::new()).is_err());
    }
}
