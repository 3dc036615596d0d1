//! The ports as the simulated world answers them. The stores are the in-memory twins (`nexus-testkit`);
//! SNS, SQS and Step Functions are the simulation's own ([`Bus`]): a publish, a start, a callback, a park
//! or a deferral is put in the bus's outbox, which the scheduler delivers. Every call first yields to the
//! scheduler (so invocations interleave at every port call) and may be failed before it is made or
//! followed by a crash of the whole invocation, as the fault plan draws.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use nexus_core::chaos::ChaosSettings;
use nexus_core::domain::checkout::{Address, LineItem};
use nexus_core::domain::messages::{OrderEvent, attributes};
use nexus_core::domain::order::Order;
use nexus_core::domain::submission::Rejection;
use nexus_core::ports::*;
use nexus_testkit::Memory;
use serde_json::Value;

/// What an invocation asked of SNS, SQS and Step Functions, delivered by the scheduler.
#[derive(Debug, Clone)]
pub enum Out {
    Publish {
        topic: String,
        body: String,
        attributes: BTreeMap<String, String>,
    },
    Start {
        name: String,
        input: Value,
    },
    Callback {
        token: String,
        outcome: Result<Value, (String, String)>,
    },
    /// A message parked in the intake DLQ, with its reason (the simulation keeps only the reason: nothing
    /// reads a parked message back).
    Park {
        reason: String,
    },
    Defer {
        body: String,
        correlation_id: Option<String>,
    },
}

/// The faults a run draws from its seed.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Faults stop at this time (milliseconds); after it the system must settle.
    pub until: u64,
    /// Probability that a port call fails before it is made (throttled, unavailable).
    pub fail_before: f64,
    /// Probability that the invocation dies right after a port call succeeded.
    pub crash_after: f64,
    /// One port down (every call fails) from one time to another: `(port prefix, from, to)`.
    pub outage: Option<(&'static str, u64, u64)>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FaultCounts {
    pub failed_calls: u64,
    pub crashes: u64,
    pub outage_calls: u64,
}

/// The simulated world outside the stores: time, the outbox, the executions' statuses and open tasks,
/// and the fault draws.
pub struct Bus {
    pub now: u64,
    pub rng: fastrand::Rng,
    pub faults: FaultPlan,
    pub counts: FaultCounts,
    pub outbox: Vec<Out>,
    pub executions: BTreeMap<String, ExecutionStatus>,
    pub open_tokens: BTreeSet<String>,
    /// The invocation being polled, and the invocations that died.
    pub current: Option<u64>,
    pub crashed: BTreeSet<u64>,
    pub trace: Vec<String>,
    /// Order writes made for a saga command by an execution that no longer ran the order
    /// ([`Ports::acting_for`]): only an order's current execution may change it.
    pub stale_writes: Vec<(String, String)>,
}

impl Bus {
    pub fn new(seed: u64, faults: FaultPlan) -> Self {
        Self {
            now: 0,
            rng: fastrand::Rng::with_seed(seed ^ 0x5eed_fa17),
            faults,
            counts: FaultCounts::default(),
            outbox: Vec::new(),
            executions: BTreeMap::new(),
            open_tokens: BTreeSet::new(),
            current: None,
            crashed: BTreeSet::new(),
            trace: Vec::new(),
            stale_writes: Vec::new(),
        }
    }

    fn faulty(&self) -> bool {
        self.current.is_some() && self.now < self.faults.until
    }

    /// Whether the call to `port` fails before it is made.
    fn fails(&mut self, port: &'static str) -> bool {
        if self.current.is_none() {
            return false;
        }
        if let Some((down, from, to)) = self.faults.outage
            && port.starts_with(down)
            && (from..to).contains(&self.now)
        {
            self.counts.outage_calls += 1;
            return true;
        }
        if self.faulty() && self.rng.f64() < self.faults.fail_before {
            self.counts.failed_calls += 1;
            self.trace.push(format!("{} fail-before {port} inv{:?}", self.now, self.current));
            return true;
        }
        false
    }

    /// After a call to `port` succeeded: the invocation may die here.
    fn after(&mut self, port: &'static str) {
        if self.faulty() && self.rng.f64() < self.faults.crash_after {
            self.counts.crashes += 1;
            if let Some(current) = self.current {
                self.trace.push(format!("{} crash-after {port} inv{current}", self.now));
                self.crashed.insert(current);
            }
        }
    }
}

/// A future that is pending once: the scheduler then polls whichever invocation it draws next.
#[derive(Default)]
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The ports of every function and of the operator, in the simulated world.
#[derive(Clone)]
pub struct Ports {
    pub memory: Memory,
    pub bus: Arc<Mutex<Bus>>,
    /// The order-events topic (its logical id).
    pub events_topic: String,
    /// The execution whose command these ports serve, when they serve one (a saga step's invocation):
    /// an order write it makes while the order names another execution is recorded as stale.
    pub acting_for: Option<Arc<str>>,
}

pub const EXECUTION_ARN_PREFIX: &str = "arn:aws:states:sim:000000000000:execution:order-saga:";

impl Ports {
    pub fn bus(&self) -> MutexGuard<'_, Bus> {
        self.bus.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn call<T>(&self, port: &'static str, op: impl Future<Output = PortResult<T>>) -> PortResult<T> {
        YieldNow::default().await;
        if self.bus().fails(port) {
            return Err(PortError::Unavailable { operation: port, message: "injected by the simulation".into() });
        }
        let result = op.await;
        if result.is_ok() {
            self.bus().after(port);
        }
        result
    }

    /// These ports, serving a command of `execution_arn`.
    pub fn acting_for(&self, execution_arn: &str) -> Self {
        Self { acting_for: Some(execution_arn.into()), ..self.clone() }
    }

    fn send(&self, out: Out) {
        self.bus().outbox.push(out);
    }
}

impl OrderStore for Ports {
    async fn get(&self, order_id: &str) -> PortResult<Option<Order>> {
        self.call("orders.get", self.memory.get(order_id)).await
    }
    async fn create(&self, order: &Order, event: &OrderEvent) -> PortResult<CreateOutcome> {
        self.call("orders.create", self.memory.create(order, event)).await
    }
    async fn create_rejected(&self, order: &Order, event: &OrderEvent) -> PortResult<bool> {
        self.call("orders.create_rejected", self.memory.create_rejected(order, event)).await
    }
    async fn transition(&self, current: &Order, next: &Order, event: &OrderEvent) -> PortResult<()> {
        self.call("orders.transition", self.memory.transition(current, next, event)).await?;
        self.watch(current, next);
        Ok(())
    }
}

impl Ports {
    /// Records an order write made for an execution that does not run the order (a stale execution's).
    fn watch(&self, current: &Order, next: &Order) {
        let name = nexus_core::domain::ids::execution_name;
        if let (Some(actor), Some(runs)) = (&self.acting_for, &current.execution_arn)
            && !actor.is_empty()
            && name(actor) != name(runs)
        {
            let what = format!(
                "{} -> {} by execution {} while {} runs it",
                current.status,
                next.status,
                name(actor),
                name(runs)
            );
            self.bus().stale_writes.push((current.order_id.clone(), what));
        }
    }

    /// An effect's write: watched as a transition when it moved the order.
    fn watch_moved(&self, moving: Option<&Transition>, moved: bool) {
        if let Some(moving) = moving.filter(|_| moved) {
            self.watch(&moving.current, &moving.next);
        }
    }
}

impl EventLog for Ports {
    async fn events(&self, order_id: &str) -> PortResult<Vec<OrderEvent>> {
        self.call("events.read", self.memory.events(order_id)).await
    }
}

impl EventPublisher for Ports {
    async fn publish(&self, event: &OrderEvent) -> PortResult<()> {
        self.call("sns.publish", async {
            let body = serde_json::to_string(event)
                .map_err(|e| PortError::Corrupt { operation: "sns.publish", message: e.to_string() })?;
            let mut attributes = BTreeMap::from([
                (attributes::ORDER_ID.to_owned(), event.order_id.clone()),
                (attributes::STATUS.to_owned(), event.status.as_str().to_owned()),
                (attributes::CORRELATION_ID.to_owned(), event.correlation_id.clone()),
                (attributes::EVENT_ID.to_owned(), event.event_id.clone()),
            ]);
            if let Some(arn) = &event.execution_arn {
                attributes.insert(attributes::EXECUTION_ARN.to_owned(), arn.clone());
            }
            self.send(Out::Publish { topic: self.events_topic.clone(), body, attributes });
            Ok(())
        })
        .await
    }
}

impl Inventory for Ports {
    async fn reserve(
        &self,
        order_id: &str,
        attempt: u32,
        items: &[LineItem],
        moving: Option<&Transition>,
    ) -> PortResult<ReserveOutcome> {
        let outcome = self.call("inventory.reserve", self.memory.reserve(order_id, attempt, items, moving)).await?;
        self.watch_moved(moving, outcome == ReserveOutcome::Reserved);
        Ok(outcome)
    }
    async fn release(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        self.call("inventory.release", self.memory.release(order_id, attempt)).await
    }
}

impl Catalog for Ports {
    async fn lookup(&self, skus: &BTreeSet<String>, customer_id: &str) -> PortResult<CatalogEntries> {
        self.call("catalog.lookup", self.memory.lookup(skus, customer_id)).await
    }
}

impl Payments for Ports {
    async fn charge(
        &self,
        order_id: &str,
        attempt: u32,
        amount: u64,
        currency: &str,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        let charged = self.memory.charge(order_id, attempt, amount, currency, moving);
        let outcome = self.call("payments.charge", charged).await?;
        self.watch_moved(moving, outcome == ApplyOutcome::Applied);
        Ok(outcome)
    }
    async fn refund(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        self.call("payments.refund", self.memory.refund(order_id, attempt)).await
    }
}

impl Shipments for Ports {
    async fn dispatch(
        &self,
        order_id: &str,
        attempt: u32,
        address: &Address,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        let dispatched = self.memory.dispatch(order_id, attempt, address, moving);
        let outcome = self.call("shipments.dispatch", dispatched).await?;
        self.watch_moved(moving, outcome == ApplyOutcome::Applied);
        Ok(outcome)
    }
    async fn cancel(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        self.call("shipments.cancel", self.memory.cancel(order_id, attempt)).await
    }
}

impl Notifications for Ports {
    async fn record(&self, event: &OrderEvent, email_hash: &str) -> PortResult<bool> {
        self.call("notifications.record", self.memory.record(event, email_hash)).await
    }
}

impl IdempotencyStore for Ports {
    async fn claim(&self, key: &str, order_id: &str, payload_hash: &str, expires_at: i64) -> PortResult<Claim> {
        self.call("idempotency.claim", self.memory.claim(key, order_id, payload_hash, expires_at)).await
    }
}

impl ChaosSource for Ports {
    async fn load(&self) -> PortResult<ChaosSettings> {
        Ok(ChaosSettings::default())
    }
}

impl DeadLetters for Ports {
    async fn park(&self, _body: &str, rejection: &Rejection) -> PortResult<()> {
        self.call("sqs.park", async {
            self.send(Out::Park { reason: rejection.reason() });
            Ok(())
        })
        .await
    }
}

impl Deferrals for Ports {
    /// The delay is the simulation's own draw (the service's comes from the wall clock).
    async fn defer(&self, body: &str, correlation_id: Option<&str>, _delay_seconds: u32) -> PortResult<()> {
        self.call("sqs.defer", async {
            self.send(Out::Defer { body: body.to_owned(), correlation_id: correlation_id.map(str::to_owned) });
            Ok(())
        })
        .await
    }
}

impl SagaStarter for Ports {
    fn execution_arn(&self, name: &str) -> String {
        format!("{EXECUTION_ARN_PREFIX}{name}")
    }

    async fn start(&self, name: &str, input: &Value) -> PortResult<StartOutcome> {
        self.call("sfn.start", async {
            let execution_arn = self.execution_arn(name);
            let mut bus = self.bus();
            if bus.executions.contains_key(name) {
                return Ok(StartOutcome::AlreadyStarted { execution_arn });
            }
            bus.executions.insert(name.to_owned(), ExecutionStatus::Running);
            bus.outbox.push(Out::Start { name: name.to_owned(), input: input.clone() });
            Ok(StartOutcome::Started { execution_arn })
        })
        .await
    }

    async fn status(&self, name: &str) -> PortResult<Option<ExecutionStatus>> {
        self.call("sfn.describe", async { Ok(self.bus().executions.get(name).copied()) }).await
    }
}

impl TaskCallbacks for Ports {
    async fn succeed(&self, task_token: &str, output: &Value) -> PortResult<CallbackOutcome> {
        self.call("sfn.callback", async { Ok(self.answer(task_token, Ok(output.clone()))) }).await
    }
    async fn fail(&self, task_token: &str, error: &str, cause: &str) -> PortResult<CallbackOutcome> {
        self.call("sfn.callback", async { Ok(self.answer(task_token, Err((error.to_owned(), cause.to_owned())))) })
            .await
    }
}

impl Ports {
    /// A task answered once: an answer to a closed task (answered, timed out, execution ended) is refused,
    /// as Step Functions refuses it (`TaskTimedOut`, `InvalidToken`).
    fn answer(&self, token: &str, outcome: Result<Value, (String, String)>) -> CallbackOutcome {
        let mut bus = self.bus();
        if !bus.open_tokens.remove(token) {
            return CallbackOutcome::TaskAlreadyClosed;
        }
        bus.outbox.push(Out::Callback { token: token.to_owned(), outcome });
        CallbackOutcome::Delivered
    }
}
