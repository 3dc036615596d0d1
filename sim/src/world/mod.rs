//! The scheduler: one thread, one virtual clock, every choice drawn from the seed. At each step it draws
//! one of what can happen now (poll an invocation in flight to its next port call, receive a batch from
//! a queue whose consumer has room, fire a due timer) and advances the clock a few milliseconds; when
//! nothing can happen now it jumps to the next timer or the next message to become visible; when nothing
//! can happen at all the world is quiet.
//!
//! SQS as AWS documents it (at-least-once, batches, visibility timeouts, `maxReceiveCount` and DLQs) and SNS
//! fanning out through filter policies are in [`sqs`]; Step Functions runs the real state machine
//! ([`crate::asl`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use nexus_core::ports::ExecutionStatus;
use nexus_testkit::Memory;
use sha2::{Digest, Sha256};

use crate::asl::{self, Draw, End, Execution, StateMachine};
use crate::functions::Invocation;
use crate::ports::{Bus, EXECUTION_ARN_PREFIX, FaultPlan, Out, Ports};
use crate::template::Topology;

mod sqs;
pub use sqs::Message;
use sqs::Queue;

/// The topics the world publishes to by role (their logical ids in the template).
pub const ORDERS_TOPIC: &str = "OrdersTopic";
pub const EVENTS_TOPIC: &str = "OrderEventsTopic";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    TaskTimeout {
        execution: String,
        token: String,
    },
    Wake {
        execution: String,
        wake: u64,
    },
    ExecutionTimeout {
        execution: String,
    },
    /// A scenario action (a submission, an operator's action), by index.
    Action(usize),
}

struct InFlight {
    future: Invocation,
    /// The queue and the messages it received (none for an operator's action).
    queue: Option<String>,
    received: Vec<u64>,
}

/// Counters a run reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub steps: u64,
    /// Steps at which more than one thing could happen (each a branch of the interleavings).
    pub choices: u64,
    pub deliveries: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
}

struct Draws<'a>(&'a mut fastrand::Rng);

impl Draw for Draws<'_> {
    fn below(&mut self, max: u64) -> u64 {
        self.0.u64(0..=max)
    }
}

pub struct World {
    pub topology: Topology,
    machine: StateMachine,
    pub memory: Memory,
    pub ports: Ports,
    rng: fastrand::Rng,
    queues: BTreeMap<String, Queue>,
    command_queues: BTreeSet<String>,
    in_flight: BTreeMap<u64, InFlight>,
    next_id: u64,
    pub executions: BTreeMap<String, Execution>,
    token_owner: BTreeMap<String, String>,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    /// Orders one of whose executions ended other than succeeded (stopped, timed out, failed): the only
    /// ones the runbook may have to publish events of again.
    pub ended_abnormally: BTreeSet<String>,
    /// Scenario actions whose time has come, for the driver to take (by index).
    pub pending_actions: Vec<usize>,
    pub counts: Counts,
    /// Probability that a message SNS delivers arrives twice.
    pub duplicate: f64,
    digest: Sha256,
    /// Every trace line, when kept (a replay of one seed); the digest covers them either way.
    pub trace: Option<Vec<String>>,
}

impl World {
    pub fn new(topology: Topology, seed: u64, faults: FaultPlan, keep_trace: bool) -> Result<Self, asl::AslError> {
        let machine = StateMachine::parse(&topology.definition, &topology.substitutions)?;
        let memory = Memory::default();
        let bus = Arc::new(Mutex::new(Bus::new(seed, faults)));
        let ports = Ports { memory: memory.clone(), bus, events_topic: EVENTS_TOPIC.to_owned(), acting_for: None };
        let mut queues: BTreeMap<String, Queue> = topology
            .queues
            .iter()
            .map(|(name, spec)| {
                let queue = Queue {
                    messages: Vec::new(),
                    visibility_ms: spec.visibility_seconds * 1000,
                    redrive: spec.redrive.clone(),
                    consumer: None,
                    busy: 0,
                };
                (name.clone(), queue)
            })
            .collect();
        for mapping in &topology.mappings {
            if let Some(queue) = queues.get_mut(&mapping.queue) {
                queue.consumer =
                    Some((mapping.function.clone(), mapping.batch_size.max(1), mapping.concurrency.max(1)));
            }
        }
        // The queues fed by a topic the state machine publishes commands to (not submissions, not events).
        let command_queues = topology
            .subscriptions
            .iter()
            .filter(|s| s.topic != ORDERS_TOPIC && s.topic != EVENTS_TOPIC)
            .map(|s| s.queue.clone())
            .collect();
        Ok(Self {
            topology,
            machine,
            memory,
            ports,
            rng: fastrand::Rng::with_seed(seed),
            queues,
            command_queues,
            in_flight: BTreeMap::new(),
            next_id: 0,
            executions: BTreeMap::new(),
            token_owner: BTreeMap::new(),
            timers: BinaryHeap::new(),
            pending_actions: Vec::new(),
            ended_abnormally: BTreeSet::new(),
            counts: Counts::default(),
            duplicate: 0.0,
            digest: Sha256::new(),
            trace: keep_trace.then(Vec::new),
        })
    }

    pub fn now(&self) -> u64 {
        self.ports.bus().now
    }

    /// Adds a line to the trace (and its digest).
    pub fn record(&mut self, line: String) {
        self.digest.update(line.as_bytes());
        self.digest.update(b"\n");
        if let Some(trace) = &mut self.trace {
            trace.push(line);
        }
    }

    /// The digest of everything that happened so far.
    pub fn digest(&self) -> String {
        self.digest.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn schedule(&mut self, at: u64, timer: Timer) {
        self.next_id += 1;
        self.timers.push(Reverse((at, self.next_id, timer)));
    }

    /// One step; false when nothing can happen any more (the world is quiet).
    pub fn step(&mut self) -> bool {
        let now = self.now();
        let mut candidates: Vec<Choice> = self.in_flight.keys().map(|id| Choice::Poll(*id)).collect();
        for (name, queue) in &self.queues {
            if let Some((_, _, concurrency)) = &queue.consumer
                && queue.busy < *concurrency
                && queue.messages.iter().any(|m| m.visible_at <= now)
            {
                candidates.push(Choice::Receive(name.clone()));
            }
        }
        if self.timers.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            candidates.push(Choice::Timer);
        }
        if candidates.is_empty() {
            return self.jump();
        }
        self.counts.steps += 1;
        if candidates.len() > 1 {
            self.counts.choices += 1;
        }
        let choice = candidates.swap_remove(self.rng.usize(..candidates.len()));
        let cost = self.rng.u64(1..=20);
        self.ports.bus().now = now + cost;
        match choice {
            Choice::Poll(id) => self.poll(id),
            Choice::Receive(queue) => self.receive(&queue),
            Choice::Timer => {
                if let Some(Reverse((_, _, timer))) = self.timers.pop() {
                    self.fire(timer);
                }
            }
        }
        self.deliver_outbox();
        true
    }

    /// Nothing can happen now: the clock jumps to the next timer or the next message to become visible.
    fn jump(&mut self) -> bool {
        let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
        let next_visible = self
            .queues
            .values()
            .filter(|q| q.consumer.as_ref().is_some_and(|(_, _, c)| q.busy < *c))
            .flat_map(|q| q.messages.iter().map(|m| m.visible_at))
            .min();
        match next_timer.into_iter().chain(next_visible).min() {
            Some(at) => {
                let mut bus = self.ports.bus();
                bus.now = bus.now.max(at);
                true
            }
            None => false,
        }
    }

    /// Runs until quiet (or until `deadline` of virtual time, a bound against a livelock).
    pub fn run_until_quiet(&mut self, deadline: u64) -> bool {
        while self.now() < deadline {
            if !self.step() {
                return true;
            }
        }
        false
    }

    /// Runs an operator's action (a retry, say) as an invocation of its own, interleaved with the rest.
    pub fn spawn_operator(&mut self, label: String, future: Invocation) {
        self.next_id += 1;
        let id = self.next_id;
        self.record(format!("{} operator inv{id} {label}", self.now()));
        self.in_flight.insert(id, InFlight { future, queue: None, received: Vec::new() });
    }

    fn poll(&mut self, id: u64) {
        let Some(mut invocation) = self.in_flight.remove(&id) else { return };
        self.ports.bus().current = Some(id);
        let waker = futures::task::noop_waker();
        let polled = invocation.future.as_mut().poll(&mut Context::from_waker(&waker));
        let crashed = {
            let mut bus = self.ports.bus();
            bus.current = None;
            bus.crashed.remove(&id)
        };
        let now = self.now();
        if crashed {
            // The process died: nothing is deleted; its messages come back after their visibility timeout.
            self.record(format!("{now} crash inv{id}"));
            self.finish(&invocation, None, true);
            return;
        }
        match polled {
            Poll::Pending => {
                self.in_flight.insert(id, invocation);
            }
            Poll::Ready(outcome) => {
                self.record(format!("{now} done inv{id} {outcome:?}"));
                self.finish(&invocation, outcome, false);
            }
        }
    }

    fn fire(&mut self, timer: Timer) {
        let now = self.now();
        let (name, effects) = match &timer {
            Timer::TaskTimeout { execution, token } => {
                let mut draws = Draws(&mut self.rng);
                let effects =
                    self.executions.get_mut(execution).map(|e| e.time_out(&self.machine, token, now, &mut draws));
                (execution.clone(), effects.unwrap_or_default())
            }
            Timer::Wake { execution, wake } => {
                let mut draws = Draws(&mut self.rng);
                let effects = self.executions.get_mut(execution).map(|e| e.wake(&self.machine, *wake, now, &mut draws));
                (execution.clone(), effects.unwrap_or_default())
            }
            Timer::ExecutionTimeout { execution } => {
                let effects = self.executions.get_mut(execution).map(|e| e.end(End::TimedOut));
                (execution.clone(), effects.unwrap_or_default())
            }
            Timer::Action(index) => {
                self.pending_actions.push(*index);
                return;
            }
        };
        self.apply(&name, effects);
    }

    /// `StopExecution`.
    pub fn stop(&mut self, name: &str) {
        let effects = self.executions.get_mut(name).map(|e| e.end(End::Aborted)).unwrap_or_default();
        self.apply(name, effects);
    }

    /// Delivers what invocations asked for, in the order they asked.
    fn deliver_outbox(&mut self) {
        loop {
            let outbox = std::mem::take(&mut self.ports.bus().outbox);
            if outbox.is_empty() {
                return;
            }
            for out in outbox {
                self.deliver(out);
            }
        }
    }

    fn deliver(&mut self, out: Out) {
        let now = self.now();
        match out {
            Out::Publish { topic, body, attributes } => self.publish(&topic, &body, &attributes),
            Out::Start { name, input } => {
                self.record(format!("{now} start {name}"));
                let arn = format!("{EXECUTION_ARN_PREFIX}{name}");
                let mut draws = Draws(&mut self.rng);
                let (execution, effects) = Execution::start(&self.machine, (&name, &arn), input, now, &mut draws);
                if let Some(seconds) = self.machine.timeout_seconds() {
                    self.schedule(now + seconds * 1000, Timer::ExecutionTimeout { execution: name.clone() });
                }
                self.executions.insert(name.clone(), execution);
                self.apply(&name, effects);
            }
            Out::Callback { token, outcome } => {
                let Some(name) = self.token_owner.get(&token).cloned() else { return };
                self.record(format!(
                    "{now} answer {name} {}",
                    outcome.as_ref().map_or_else(|e| e.0.clone(), |_| "ok".into())
                ));
                let mut draws = Draws(&mut self.rng);
                let effects = self
                    .executions
                    .get_mut(&name)
                    .map(|e| e.answer(&self.machine, &token, outcome, now, &mut draws))
                    .unwrap_or_default();
                self.apply(&name, effects);
            }
            Out::Park { reason } => {
                self.record(format!("{now} park {reason}"));
            }
            Out::Defer { body, correlation_id } => {
                let delay = self.rng.u64(20_000..=40_000);
                let attributes =
                    correlation_id.map(|c| BTreeMap::from([("correlationId".to_owned(), c)])).unwrap_or_default();
                if let Some(queue) = self.standard_intake_queue() {
                    self.enqueue(&queue, body, attributes, delay);
                }
            }
        }
    }

    /// The intake queue that takes every submission (its subscription has no filter).
    fn standard_intake_queue(&self) -> Option<String> {
        self.topology
            .subscriptions
            .iter()
            .find(|s| s.topic == ORDERS_TOPIC && s.filter.is_none())
            .map(|s| s.queue.clone())
    }

    fn apply(&mut self, execution: &str, effects: Vec<asl::Effect>) {
        let now = self.now();
        for effect in effects {
            match effect {
                asl::Effect::Publish { topic, message, attributes, token } => {
                    self.record(format!(
                        "{now} command {execution} {}",
                        attributes.get("command").cloned().unwrap_or_default()
                    ));
                    self.ports.bus().open_tokens.insert(token.clone());
                    self.token_owner.insert(token, execution.to_owned());
                    self.publish(&topic, &message, &attributes);
                }
                asl::Effect::TaskTimeout { token, at } => {
                    self.schedule(at, Timer::TaskTimeout { execution: execution.to_owned(), token })
                }
                asl::Effect::Wake { wake, at } => {
                    self.schedule(at, Timer::Wake { execution: execution.to_owned(), wake })
                }
                asl::Effect::Ended(end) => {
                    self.record(format!("{now} ended {execution} {end:?}"));
                    if end != End::Succeeded
                        && let Some(order_id) = self.executions.get(execution).and_then(Execution::order_id)
                    {
                        self.ended_abnormally.insert(order_id.to_owned());
                    }
                    let status = match end {
                        End::Succeeded => ExecutionStatus::Succeeded,
                        End::Failed => ExecutionStatus::Failed,
                        End::TimedOut => ExecutionStatus::TimedOut,
                        End::Aborted => ExecutionStatus::Aborted,
                    };
                    let mut bus = self.ports.bus();
                    bus.executions.insert(execution.to_owned(), status);
                    let prefix = format!("{EXECUTION_ARN_PREFIX}{execution}#");
                    bus.open_tokens.retain(|t| !t.starts_with(&prefix));
                }
            }
        }
    }
}

enum Choice {
    Poll(u64),
    Receive(String),
    Timer,
}
