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

mod data;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use data::{apply_result_path, evaluate, matches_choice, matches_error};

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
