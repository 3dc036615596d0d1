//! The services: what each function does, written against the ports only. Every handler is idempotent:
//! effects are keyed by deterministic ids, order changes are conditional on the version read, and a
//! command applied twice answers the same. [`SagaStep`] is what the Lambda edge runs for a saga command;
//! [`forward`] and [`compensate`] are the one shape of every forward step and every compensation.

mod forward;
pub mod intake;
pub mod inventory;
pub mod notification;
pub mod order_commands;
pub mod payment;
pub mod shipping;

use std::future::Future;

pub use forward::{Applied, forward};

use serde_json::{Value, json};

use crate::domain::ledger::Effect;
use crate::domain::messages::{CommandName, OrderEvent, ServiceCommand};
use crate::domain::order::Order;
use crate::domain::saga_error::SagaError;
use crate::domain::status::OrderStatus;
use crate::domain::{self};
use crate::metrics;
use crate::ports::{CallbackOutcome, EventPublisher, OrderStore, PortError, PortResult, TaskCallbacks, UndoOutcome};

/// Failures that leave the message to be delivered again (transient) or, once retries are spent, to the DLQ.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("order {0} not found")]
    OrderNotFound(String),
    #[error("order {order_id}: kept conflicting with concurrent updates")]
    Contended { order_id: String },
    #[error("message is not readable: {0}")]
    BadMessage(String),
    #[error("{command:?} is not handled by this service")]
    WrongService { command: CommandName },
}

/// What a saga step answers the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum StepReply {
    Success(Value),
    /// A named failure, caught by the state machine.
    Failure {
        error: SagaError,
        cause: String,
    },
}

impl StepReply {
    pub fn failure(error: SagaError, cause: impl Into<String>) -> Self {
        Self::Failure { error, cause: cause.into() }
    }
}

/// A service that answers saga commands (inventory, payment, shipping, the order's own steps).
pub trait SagaStep: Send + Sync {
    fn step(&self, command: &ServiceCommand) -> impl Future<Output = Result<StepReply, ServiceError>> + Send;
}

/// The order attributes (as stored: the order's JSON names) every saga step reads, and the only ones a
/// transition writes. Each service reads these and its own [`OrderReads`] (least privilege: the stack's
/// IAM lets each function read exactly that list, and `shared/core/tests/least_privilege.rs` holds the
/// template to it); intake, which owns the order, reads and writes all of it.
pub const SAGA_ORDER_ATTRIBUTES: [&str; 10] = [
    "orderId",
    "status",
    "version",
    "attempt",
    "reason",
    "correlationId",
    "executionArn",
    "updatedAt",
    // Read only, for the metrics by lane (and the order's end-to-end latency).
    "tier",
    "createdAt",
];

/// The order attributes a saga step's transition writes (its key among them): all its role may update
/// (`template.yaml`; `least_privilege.rs` holds the two equal). Attempt and execution change only with an
/// operator's retry, which no function makes.
pub const TRANSITION_WRITES: &[&str] = &["orderId", "status", "version", "updatedAt", "reason"];

/// What a service reads of an order besides [`SAGA_ORDER_ATTRIBUTES`].
#[derive(Debug, Clone, Copy)]
pub struct OrderReads(pub &'static [&'static str]);

impl OrderReads {
    /// The whole projection: the saga's attributes and the service's own.
    pub fn attributes(self) -> Vec<&'static str> {
        SAGA_ORDER_ATTRIBUTES.iter().chain(self.0).copied().collect()
    }
}

/// How many times a transition re-reads after a version conflict before giving up (the message is retried).
const MAX_CONFLICT_RETRIES: usize = 8;

/// Moves the order to `to`, conditional on the version read; on a conflict re-reads and re-decides. Returns
/// the order as it now is, or `Err(current)` when the order is in a status that cannot become `to`, or is
/// no longer at `attempt` (the command belongs to an attempt an operator has since retried). An order
/// already in `to` counts as done, and its event is published again (a crash may have come between the write
/// and the publish; subscribers dedupe by event id).
pub async fn advance<S: OrderStore, P: EventPublisher>(
    store: &S,
    publisher: &P,
    (order_id, attempt): (&str, u32),
    to: OrderStatus,
    reason: Option<String>,
) -> Result<Result<Order, Order>, ServiceError> {
    advance_from(store, publisher, Read { order: None, guard: None }, (order_id, attempt), to, reason).await
}

/// [`advance`] for a command that may only move the order while its execution is the order's current one:
/// the saga's own order steps (complete, cancel, flag). After an operator's rerun of a compensation (same
/// attempt, a new execution), a late step of the old execution finds the order run by another execution
/// and changes nothing (`Err(current)`).
pub async fn advance_for_execution<S: OrderStore, P: EventPublisher>(
    store: &S,
    publisher: &P,
    command: &ServiceCommand,
    to: OrderStatus,
    reason: Option<String>,
) -> Result<Result<Order, Order>, ServiceError> {
    let order = (command.order_id.as_str(), command.attempt);
    advance_from(store, publisher, Read { order: None, guard: Some(command) }, order, to, reason).await
}

/// What [`advance_from`] starts from: the order as the caller read it, if any, and the command whose
/// execution must be the order's current one, if any (checked on every read, a re-read after a conflict
/// included).
struct Read<'a> {
    order: Option<Order>,
    guard: Option<&'a ServiceCommand>,
}

/// Whether `command` comes from the execution that runs `order` now (by execution name: the last part of
/// the ARN, which the state machine's and the adapter's spellings share). An order that names no
/// execution, or a command that names none, is not judged by it.
fn runs_order(command: &ServiceCommand, order: &Order) -> bool {
    match order.execution_arn.as_deref() {
        Some(current) if !command.execution_arn.is_empty() => {
            domain::ids::execution_name(current) == domain::ids::execution_name(&command.execution_arn)
        }
        _ => true,
    }
}

/// [`advance`], deciding first from `read` (the order as the caller read it) instead of reading it again.
/// Only a read that the transition's version condition guards may be passed: one whose status can become
/// `to`, so that a stale read ends in a conflict and a fresh read, never in a decision taken on its own.
async fn advance_from<S: OrderStore, P: EventPublisher>(
    store: &S,
    publisher: &P,
    mut read: Read<'_>,
    (order_id, attempt): (&str, u32),
    to: OrderStatus,
    reason: Option<String>,
) -> Result<Result<Order, Order>, ServiceError> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let current = match read.order.take() {
            Some(order) => order,
            None => load(store, order_id).await?,
        };
        if current.attempt != attempt || read.guard.is_some_and(|command| !runs_order(command, &current)) {
            return Ok(Err(current));
        }
        if current.status == to {
            publisher.publish(&current.event(None)).await?;
            return Ok(Ok(current));
        }
        if !current.status.can_become(to) {
            return Ok(Err(current));
        }
        if matches!(to, OrderStatus::Compensating | OrderStatus::Cancelled | OrderStatus::NeedsAttention) {
            // On a failure path the status being left may have been written by a step whose publish failed
            // and which never ran again (its budget spent, its execution ended): that event goes out
            // (again) first. Subscribers dedupe by event id; the happy path pays nothing for it.
            publisher.publish(&current.event(None)).await?;
        }
        let (next, event) = current.advanced(to, reason.clone(), &domain::now());
        match store.transition(&current, &next, &event).await {
            Ok(()) => {
                written(publisher, &current, &next, &event).await?;
                return Ok(Ok(next));
            }
            Err(PortError::Conflict { .. }) => {
                tracing::debug!(version = current.version, "version conflict; re-reading the order");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Contended { order_id: order_id.to_owned() })
}

async fn load<S: OrderStore>(store: &S, order_id: &str) -> Result<Order, ServiceError> {
    store.get(order_id).await?.ok_or_else(|| ServiceError::OrderNotFound(order_id.to_owned()))
}

/// What follows a transition once it is written (only the writer whose conditional write won gets here):
/// its log line, its metrics, and its event published.
async fn written<P: EventPublisher>(
    publisher: &P,
    current: &Order,
    next: &Order,
    event: &OrderEvent,
) -> Result<(), ServiceError> {
    tracing::info!(from = %current.status, to = %next.status, version = next.version, "order status changed");
    record_transition(current, next);
    publisher.publish(event).await?;
    Ok(())
}

/// Metrics of a change just written (once: only the writer whose conditional write won gets here): how long
/// the order spent in its previous status, and the saga's outcomes.
fn record_transition(previous: &Order, next: &Order) {
    let tier = ("Tier", next.tier.as_str());
    let step_ms = milliseconds_between(&previous.updated_at, &next.updated_at);
    metrics::emit("StepLatency", step_ms, metrics::Unit::Milliseconds, &[("Step", next.status.as_str()), tier]);
    match next.status {
        OrderStatus::Completed => {
            metrics::count("OrdersCompleted", &[tier]);
            let total_ms = milliseconds_between(&next.created_at, &next.updated_at);
            metrics::emit("OrderLatency", total_ms, metrics::Unit::Milliseconds, &[tier]);
        }
        OrderStatus::Cancelled => {
            metrics::count("OrdersCancelled", &[("Reason", next.reason.as_deref().unwrap_or("unknown")), tier])
        }
        OrderStatus::NeedsAttention => metrics::count("OrdersNeedingAttention", &[tier]),
        _ => {}
    }
}

/// Milliseconds from one stored time to another (0 when either is unreadable or they run backwards).
fn milliseconds_between(from: &str, to: &str) -> f64 {
    match (chrono::DateTime::parse_from_rfc3339(from), chrono::DateTime::parse_from_rfc3339(to)) {
        (Ok(from), Ok(to)) => (to - from).num_milliseconds().max(0) as f64,
        _ => 0.0,
    }
}

/// A compensation: marks the order COMPENSATING (so late forward commands are refused), unless it is
/// already compensating or finished, then undoes `effect` of the command's attempt (idempotently: a repeat
/// undoes nothing twice, and a late copy from an earlier attempt only finds that attempt's effects undone).
/// Answers `{"<effect>Id": …, "<undone>": true|false}`.
pub async fn compensate<S, P>(
    orders: &S,
    publisher: &P,
    command: &ServiceCommand,
    (effect, undone): (Effect, &str),
    undo: impl Future<Output = PortResult<UndoOutcome>>,
) -> Result<StepReply, ServiceError>
where
    S: OrderStore,
    P: EventPublisher,
{
    let order = (command.order_id.as_str(), command.attempt);
    if let Err(order) = advance(orders, publisher, order, OrderStatus::Compensating, command.reason.clone()).await? {
        tracing::info!(status = %order.status, attempt = order.attempt, "order already past compensation entry");
    }
    let outcome = undo.await?;
    tracing::info!(?outcome, effect = effect.key(), "compensated");
    Ok(StepReply::Success(json!({
        format!("{}Id", effect.key()): effect.id(&command.order_id, command.attempt),
        undone: outcome == UndoOutcome::Undone,
    })))
}

/// Answers the state machine. A task that is already closed (answered before, timed out, execution ended)
/// is not an error: the command was a duplicate or came too late, and retrying would never succeed.
pub async fn answer<C: TaskCallbacks>(
    callbacks: &C,
    command: &ServiceCommand,
    reply: &StepReply,
) -> Result<(), ServiceError> {
    let outcome = match reply {
        StepReply::Success(output) => callbacks.succeed(&command.task_token, output).await?,
        StepReply::Failure { error, cause } => callbacks.fail(&command.task_token, error.as_str(), cause).await?,
    };
    if outcome == CallbackOutcome::TaskAlreadyClosed {
        tracing::info!(command = command.command.as_str(), "task already closed; duplicate or late command ignored");
    }
    Ok(())
}

/// The reply when a command finds the order in a status (or an attempt, or an execution) it cannot act on.
/// Whether `command` is the first step of an operator's rerun of the order's compensation: `nexus retry`
/// writes the order COMPENSATING for a new execution, whose first state (ReserveInventory) then answers
/// [`SagaError::CompensationRerun`], which the state machine catches into the compensations.
fn is_compensation_rerun(command: &ServiceCommand, order: &Order) -> bool {
    command.command == CommandName::ReserveInventory
        && order.status == OrderStatus::Compensating
        && order.attempt == command.attempt
        && !command.execution_arn.is_empty()
        && runs_order(command, order)
}

pub fn invalid_state(command: &ServiceCommand, order: &Order) -> StepReply {
    let cause = if order.attempt == command.attempt && !runs_order(command, order) {
        format!(
            "{} of execution {} is stale: the order is run by execution {}",
            command.command.as_str(),
            command.execution_arn,
            order.execution_arn.as_deref().unwrap_or_default()
        )
    } else if order.attempt == command.attempt {
        format!("{} cannot run on an order in status {}", command.command.as_str(), order.status)
    } else {
        format!(
            "{} of attempt {} is stale: the order is at attempt {}",
            command.command.as_str(),
            command.attempt,
            order.attempt
        )
    };
    StepReply::failure(SagaError::OrderInvalidState, cause)
}

pub fn parse_command(body: &str) -> Result<ServiceCommand, ServiceError> {
    serde_json::from_str(body).map_err(|e| ServiceError::BadMessage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_projected_attribute_is_an_attribute_of_the_stored_order() {
        let order = serde_json::to_value(Order {
            reason: Some("r".into()),
            execution_arn: Some("arn".into()),
            ..Order::default()
        })
        .expect("json");
        let reads = [inventory::ORDER_READS, payment::ORDER_READS, shipping::ORDER_READS];
        let names = reads.iter().flat_map(|r| r.attributes()).chain(notification::ORDER_READS.iter().copied());
        for name in names {
            assert!(order.get(name).is_some(), "{name} is not an attribute of the stored order: {order}");
        }
    }
}
