//! The ports: what the services need from the outside world, as traits. Each has an AWS adapter (crate
//! `nexus-aws`) and an in-memory twin (crate `nexus-testkit`) with the same conditional semantics. Effects
//! are named by the order and its attempt (their ids derive from both: [`crate::domain::ledger::Effect::id`]).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use crate::domain::checkout::{Address, LineItem, Tier};
use crate::domain::messages::OrderEvent;
use crate::domain::order::Order;
use crate::domain::submission::Rejection;

/// Failures of an adapter. `Unavailable` is transient (retry); the others are not.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("{operation}: version conflict (another writer changed the item first)")]
    Conflict { operation: &'static str },
    #[error("{operation}: service unavailable: {message}")]
    Unavailable { operation: &'static str, message: String },
    #[error("{operation}: stored data is not readable: {message}")]
    Corrupt { operation: &'static str, message: String },
    #[error("{operation}: rejected by the service: {message}")]
    Rejected { operation: &'static str, message: String },
}

pub type PortResult<T> = Result<T, PortError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    AlreadyExists(Box<Order>),
    /// The bound of standard sagas in flight is reached ([`crate::domain::admission`]): nothing written.
    NoSagaSlot,
}

pub trait OrderStore: Send + Sync {
    fn get(&self, order_id: &str) -> impl Future<Output = PortResult<Option<Order>>> + Send;
    /// Puts a new PENDING order and its first event, unless the order id exists; a standard order also takes
    /// a saga slot in the same write when the store has a bound ([`crate::domain::admission::SagaLimit`]).
    fn create(&self, order: &Order, event: &OrderEvent) -> impl Future<Output = PortResult<CreateOutcome>> + Send;
    /// Records a rejected message as a REJECTED order; false when the order id already exists.
    fn create_rejected(&self, order: &Order, event: &OrderEvent) -> impl Future<Output = PortResult<bool>> + Send;
    /// Writes `next` (version = `current.version + 1`) and its event atomically, on condition that the stored
    /// version is still `current.version`; `PortError::Conflict` otherwise. The write that ends a standard
    /// saga also frees its slot.
    fn transition(
        &self,
        current: &Order,
        next: &Order,
        event: &OrderEvent,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// An order's change written in the same atomic write as an effect (the effect's ledger entry, the order's
/// next version and its event): on condition that the stored version is still `current.version`, as
/// [`OrderStore::transition`]; when it is not, nothing is written and the effect port answers
/// `PortError::Conflict`. The write that ends a standard saga also frees its slot.
#[derive(Debug, Clone)]
pub struct Transition {
    pub current: Order,
    pub next: Order,
    pub event: OrderEvent,
}

pub trait EventLog: Send + Sync {
    /// The order's events in sequence order.
    fn events(&self, order_id: &str) -> impl Future<Output = PortResult<Vec<OrderEvent>>> + Send;
}

pub trait EventPublisher: Send + Sync {
    fn publish(&self, event: &OrderEvent) -> impl Future<Output = PortResult<()>> + Send;
}

/// What a reservation (or a repeat of it) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// The stock is held for the order now, and the transition given with it is written.
    Reserved,
    /// An earlier copy of the command holds the stock: nothing written now (the transition neither).
    AlreadyReserved,
    /// Not enough stock for every line item: nothing reserved, and the refusal is recorded, so every later
    /// copy of the command answers the same.
    OutOfStock,
    /// The release came first (the saga gave up on this step): nothing may be reserved any more.
    AlreadyReleased,
}

/// What a charge or a dispatch (or a repeat of it) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The effect is applied now, and the transition given with it is written.
    Applied,
    /// An earlier copy of the command applied it: nothing written now (the transition neither).
    AlreadyApplied,
    /// Its compensation came first: it may not be applied any more.
    AlreadyUndone,
}

/// What a compensation (or a repeat of it) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The effect is undone (now, or by an earlier copy of the compensation).
    Undone,
    /// There was nothing to undo; a tombstone now stops a late effect.
    NothingToUndo,
}

/// The effect ports apply an effect once, together with the order's `moving` transition when one is given
/// (one atomic write: the effect never holds without the order having moved, nor the other way round).
pub trait Inventory: Send + Sync {
    /// Reserves every line item or none (stock never below zero).
    fn reserve(
        &self,
        order_id: &str,
        attempt: u32,
        items: &[LineItem],
        moving: Option<&Transition>,
    ) -> impl Future<Output = PortResult<ReserveOutcome>> + Send;
    fn release(&self, order_id: &str, attempt: u32) -> impl Future<Output = PortResult<UndoOutcome>> + Send;
}

/// What the operator has decided for one submission: the catalog's unit price of each of its SKUs that is
/// for sale (in the catalog, with a price), and the tier the operator gave its customer, if any
/// (`nexus customers set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogEntries {
    pub prices: BTreeMap<String, u64>,
    pub tier: Option<Tier>,
}

/// What the operator decides and intake reads: the catalog's prices and each customer's tier.
pub trait Catalog: Send + Sync {
    /// The entries of `skus` and `customer_id`, in one read (intake's one lookup before it writes).
    fn lookup(
        &self,
        skus: &BTreeSet<String>,
        customer_id: &str,
    ) -> impl Future<Output = PortResult<CatalogEntries>> + Send;
}

pub trait Payments: Send + Sync {
    /// Records the order's charge (one per order at most).
    fn charge(
        &self,
        order_id: &str,
        attempt: u32,
        amount_cents: u64,
        currency: &str,
        moving: Option<&Transition>,
    ) -> impl Future<Output = PortResult<ApplyOutcome>> + Send;
    fn refund(&self, order_id: &str, attempt: u32) -> impl Future<Output = PortResult<UndoOutcome>> + Send;
}

pub trait Shipments: Send + Sync {
    fn dispatch(
        &self,
        order_id: &str,
        attempt: u32,
        address: &Address,
        moving: Option<&Transition>,
    ) -> impl Future<Output = PortResult<ApplyOutcome>> + Send;
    fn cancel(&self, order_id: &str, attempt: u32) -> impl Future<Output = PortResult<UndoOutcome>> + Send;
}

pub trait Notifications: Send + Sync {
    /// Records that the customer was told about `event`; false when it was recorded before.
    fn record(&self, event: &OrderEvent, email_hash: &str) -> impl Future<Output = PortResult<bool>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    Delivered,
    /// The task already finished (answered, timed out, or its execution ended): nothing to do.
    TaskAlreadyClosed,
}

pub trait TaskCallbacks: Send + Sync {
    fn succeed(
        &self,
        task_token: &str,
        output: &serde_json::Value,
    ) -> impl Future<Output = PortResult<CallbackOutcome>> + Send;
    fn fail(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = PortResult<CallbackOutcome>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started { execution_arn: String },
    AlreadyStarted { execution_arn: String },
}

/// Where a saga execution is (Step Functions' own statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionStatus {
    pub const ALL: [Self; 5] = [Self::Running, Self::Succeeded, Self::Failed, Self::TimedOut, Self::Aborted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Aborted => "ABORTED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// An ended execution runs no step any more: whatever its order's status is now stays so unless an
    /// operator acts.
    pub fn has_ended(self) -> bool {
        self != Self::Running
    }
}

pub trait SagaStarter: Send + Sync {
    /// The ARN the execution named `name` has (or will have), known before it starts.
    fn execution_arn(&self, name: &str) -> String;
    /// Starts the saga execution named `name`: the order id for an order's first execution,
    /// [`crate::domain::ids::retry_execution_name`] for a retry's (a name is never reused, so a repeat
    /// cannot start twice).
    fn start(&self, name: &str, input: &serde_json::Value) -> impl Future<Output = PortResult<StartOutcome>> + Send;
    /// The status of the execution named `name`; None when there is none.
    fn status(&self, name: &str) -> impl Future<Output = PortResult<Option<ExecutionStatus>>> + Send;
}

pub trait DeadLetters: Send + Sync {
    /// Parks a message that identifies no order, with the reason, in the intake DLQ.
    fn park(&self, body: &str, rejection: &Rejection) -> impl Future<Output = PortResult<()>> + Send;
}

/// Submissions over the bound of standard sagas wait in the intake queue ([`crate::domain::admission`]).
pub trait Deferrals: Send + Sync {
    /// Puts a submission back on the standard intake queue, to be read again in `delay_seconds` (≤ 900).
    fn defer(
        &self,
        body: &str,
        correlation_id: Option<&str>,
        delay_seconds: u32,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its record expired): this message owns it.
    Claimed,
    /// The key was claimed before, for this order and payload.
    Existing { order_id: String, payload_hash: String },
}

pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for `order_id` and the payload's hash until `expires_at` (epoch seconds, DynamoDB TTL).
    fn claim(
        &self,
        key: &str,
        order_id: &str,
        payload_hash: &str,
        expires_at: i64,
    ) -> impl Future<Output = PortResult<Claim>> + Send;
}

/// The standard saga slots' holders (admission control), for the operator's reclaim of a slot whose saga
/// ended without freeing it.
pub trait SagaSlots: Send + Sync {
    fn holders(&self) -> impl Future<Output = PortResult<BTreeSet<String>>> + Send;
    /// Frees `order_id`'s slot if it still holds one; true when this call freed it.
    fn free(&self, order_id: &str) -> impl Future<Output = PortResult<bool>> + Send;
}

/// Where the chaos settings come from (the settings table; a fixed set in tests).
pub trait ChaosSource: Send + Sync {
    fn load(&self) -> impl Future<Output = PortResult<crate::chaos::ChaosSettings>> + Send;
}
