//! The scheduler: one thread, one virtual clock, every choice drawn from the seed. At each step it draws
//! one of what can happen now (poll an invocation in flight to its next port call, receive a batch from
//! a queue whose consumer has room, fire a due timer) and advances the clock a few milliseconds; when
//! nothing can happen now it jumps to the next timer or the next message to become visible; when nothing
//! can happen at all the world is quiet.
//!
//! SQS as AWS documents it: at-least-once (a message may be delivered twice), batches of the mapping's
//! size, a received message hidden for the queue's visibility timeout and delivered again after it unless
//! deleted, moved to its DLQ on the receive after `maxReceiveCount`; SNS fans out to every subscribed
//! queue whose filter policy passes (raw delivery). Step Functions runs the real state machine
//! ([`crate::asl`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use nexus_core::ports::ExecutionStatus;
use nexus_testkit::Memory;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::asl::{self, Draw, End, Execution, StateMachine};
use crate::functions::{self, Invocation};
use crate::ports::{Bus, EXECUTION_ARN_PREFIX, FaultPlan, Out, Ports};
use crate::template::{self, Topology};

/// The topics the world publishes to by role (their logical ids in the template).
pub const ORDERS_TOPIC: &str = "OrdersTopic";
pub const EVENTS_TOPIC: &str = "OrderEventsTopic";

#[derive(Debug, Clone)]
pub struct Message {
    pub id: u64,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub receive_count: u32,
    pub visible_at: u64,
}

#[derive(Debug, Clone)]
struct Queue {
    messages: Vec<Message>,
    visibility_ms: u64,
    redrive: Option<(u32, String)>,
    /// The consumer: function, batch size, concurrency; and the invocations in flight.
    consumer: Option<(String, usize, usize)>,
    busy: usize,
}

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
        let ports = Ports { memory: memory.clone(), bus, events_topic: EVENTS_TOPIC.to_owned() };
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

    /// Publishes to `topic` (a logical id): every subscribed queue whose filter passes gets a copy.
    pub fn publish(&mut self, topic: &str, body: &str, attributes: &BTreeMap<String, String>) {
        let body_json: Option<Value> = serde_json::from_str(body).ok();
        let targets: Vec<String> = self
            .topology
            .subscriptions
            .iter()
            .filter(|s| s.topic == topic)
            .filter(|s| {
                template::passes(s.filter.as_ref(), |key| {
                    if s.on_body {
                        body_json.as_ref().and_then(|b| b.get(key)).and_then(Value::as_str).map(str::to_owned)
                    } else {
                        attributes.get(key).cloned()
                    }
                })
            })
            .map(|s| s.queue.clone())
            .collect();
        for queue in targets {
            let copies = if self.rng.f64() < self.duplicate { 2 } else { 1 };
            self.counts.duplicates += copies - 1;
            for _ in 0..copies {
                self.enqueue(&queue, body.to_owned(), attributes.clone(), 0);
            }
        }
    }

    fn enqueue(&mut self, queue: &str, body: String, attributes: BTreeMap<String, String>, delay_ms: u64) {
        self.next_id += 1;
        let (id, visible_at) = (self.next_id, self.now() + delay_ms);
        self.record(format!("{} send {queue} m{id}", self.now()));
        if let Some(q) = self.queues.get_mut(queue) {
            q.messages.push(Message { id, body, attributes, receive_count: 0, visible_at });
        }
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

    fn receive(&mut self, name: &str) {
        let now = self.now();
        let Some(queue) = self.queues.get_mut(name) else { return };
        let Some((function, batch_size, _)) = queue.consumer.clone() else { return };
        let mut records = Vec::new();
        let mut received = Vec::new();
        let mut to_dlq = Vec::new();
        for message in queue.messages.iter_mut().filter(|m| m.visible_at <= now) {
            if records.len() >= batch_size {
                break;
            }
            if let Some((max, _)) = &queue.redrive
                && message.receive_count >= *max
            {
                to_dlq.push(message.id);
                continue;
            }
            message.receive_count += 1;
            message.visible_at = now + queue.visibility_ms;
            received.push(message.id);
            records.push(sqs_record(name, message));
        }
        if let Some((_, dlq)) = queue.redrive.clone() {
            let moved: Vec<Message> = queue.messages.iter().filter(|m| to_dlq.contains(&m.id)).cloned().collect();
            queue.messages.retain(|m| !to_dlq.contains(&m.id));
            self.counts.dead_lettered += moved.len() as u64;
            for message in moved {
                self.record(format!("{now} dead-letter {name} m{}", message.id));
                if let Some(dlq) = self.queues.get_mut(&dlq) {
                    dlq.messages.push(Message { receive_count: 0, ..message });
                }
            }
        }
        if records.is_empty() {
            return;
        }
        self.counts.deliveries += records.len() as u64;
        let mut event = SqsEvent::default();
        event.records = records;
        let future = functions::invoke(&function, event, &self.ports, &self.command_queues);
        self.next_id += 1;
        let id = self.next_id;
        let orders: BTreeSet<&str> = self.queues[name]
            .messages
            .iter()
            .filter(|m| received.contains(&m.id))
            .filter_map(|m| m.attributes.get("orderId").map(String::as_str))
            .collect();
        let line = format!("{now} receive {name} inv{id} {received:?} {orders:?}");
        self.record(line);
        if let Some(queue) = self.queues.get_mut(name) {
            queue.busy += 1;
        }
        self.in_flight.insert(id, InFlight { future, queue: Some(name.to_owned()), received });
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

    /// An invocation ended: the messages it handled are deleted, unless they failed (or it crashed).
    fn finish(&mut self, invocation: &InFlight, failures: Option<Vec<String>>, crashed: bool) {
        let Some(name) = &invocation.queue else { return };
        let Some(queue) = self.queues.get_mut(name) else { return };
        queue.busy = queue.busy.saturating_sub(1);
        if crashed {
            return;
        }
        let Some(failures) = failures else { return };
        let keep: BTreeSet<u64> = failures.iter().filter_map(|f| f.strip_prefix('m')?.parse().ok()).collect();
        queue.messages.retain(|m| !invocation.received.contains(&m.id) || keep.contains(&m.id));
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

    /// Every DLQ's messages back to their source queue (`nexus dlq redrive`).
    pub fn redrive_all(&mut self) -> usize {
        let sources: Vec<(String, String)> = self
            .queues
            .iter()
            .filter_map(|(name, q)| q.redrive.as_ref().map(|(_, dlq)| (name.clone(), dlq.clone())))
            .collect();
        let mut moved = 0;
        for (source, dlq) in sources {
            let messages = self.queues.get_mut(&dlq).map(|q| std::mem::take(&mut q.messages)).unwrap_or_default();
            moved += messages.len();
            for message in messages {
                self.enqueue(&source, message.body, message.attributes, 0);
            }
        }
        moved
    }
}

enum Choice {
    Poll(u64),
    Receive(String),
    Timer,
}

fn sqs_record(queue: &str, message: &Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("m{}", message.id));
    record.body = Some(message.body.clone());
    record.event_source_arn = Some(queue.to_owned());
    record.attributes.insert("ApproximateReceiveCount".into(), message.receive_count.to_string());
    for (key, value) in &message.attributes {
        let mut attribute = SqsMessageAttribute::default();
        attribute.string_value = Some(value.clone());
        attribute.data_type = Some("String".into());
        record.message_attributes.insert(key.clone(), attribute);
    }
    record
}
