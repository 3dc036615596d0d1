//! The services: what each function does, written against the ports only. Every handler is idempotent:
//! effects are keyed by deterministic ids, order changes are conditional on the version read, and a
//! command applied twice answers the same.

pub mod intake;
pub mod inventory;
pub mod notification;
pub mod order_commands;
pub mod payment;
pub mod shipping;

use serde_json::{Value, json};

use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::order::Order;
use crate::domain::status::OrderStatus;
use crate::domain::{self};
use crate::metrics;
use crate::ports::{CallbackOutcome, EventPublisher, OrderStore, PortError, TaskCallbacks};

/// Failures that leave the message to be delivered again (transient) or, once retries are spent, to the DLQ.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("order {0} not found")]
    OrderNotFound(String),
    #[error("order {order_id}: kept conflicting with concurrent updates")]
    Contended { order_id: String },
    #[error("command is not readable: {0}")]
    BadCommand(String),
    #[error(transparent)]
    Chaos(#[from] crate::chaos::InjectedFailure),
    #[error("{command:?} is not handled by this service")]
    WrongService { command: CommandName },
}

/// What a saga step answers the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum StepReply {
    Success(Value),
    /// A named business failure (`Inventory.OutOfStock`, …), caught by the state machine.
    Failure {
        error: String,
        cause: String,
    },
}

impl StepReply {
    pub fn failure(error: &str, cause: impl Into<String>) -> Self {
        Self::Failure { error: error.to_owned(), cause: cause.into() }
    }
}

/// How many times a transition re-reads after a version conflict before giving up (the message is retried).
const MAX_CONFLICT_RETRIES: usize = 8;

/// Moves the order to `to`, conditional on the version read; on a conflict re-reads and re-decides. Returns
/// the order as it now is, or `Err(current)` when the order is in a status that cannot become `to`. An order
/// already in `to` counts as done, and its event is published again (a crash may have come between the write
/// and the publish; subscribers dedupe by event id).
pub async fn advance<S: OrderStore, P: EventPublisher>(
    store: &S,
    publisher: &P,
    order_id: &str,
    to: OrderStatus,
    reason: Option<String>,
) -> Result<Result<Order, Order>, ServiceError> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let current = store.get(order_id).await?.ok_or_else(|| ServiceError::OrderNotFound(order_id.to_owned()))?;
        if current.status == to {
            publisher.publish(&current.event(None)).await?;
            return Ok(Ok(current));
        }
        if !current.status.can_become(to) {
            return Ok(Err(current));
        }
        let (next, event) = current.advanced(to, reason.clone(), &domain::now());
        match store.transition(&current, &next, &event).await {
            Ok(()) => {
                tracing::info!(from = %current.status, to = %to, version = next.version, "order status changed");
                record_transition(&current, &next);
                publisher.publish(&event).await?;
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

/// Metrics of a change just written (once: only the writer whose conditional write won gets here): how long
/// the order spent in its previous status, and the saga's outcomes.
fn record_transition(previous: &Order, next: &Order) {
    let step_ms = match (
        chrono::DateTime::parse_from_rfc3339(&previous.updated_at),
        chrono::DateTime::parse_from_rfc3339(&next.updated_at),
    ) {
        (Ok(from), Ok(to)) => (to - from).num_milliseconds().max(0) as f64,
        _ => 0.0,
    };
    metrics::emit("StepLatency", step_ms, metrics::Unit::Milliseconds, &[("Step", next.status.as_str())]);
    match next.status {
        OrderStatus::Completed => metrics::count("OrdersCompleted", &[]),
        OrderStatus::Cancelled => {
            metrics::count("OrdersCancelled", &[("Reason", next.reason.as_deref().unwrap_or("unknown"))])
        }
        OrderStatus::NeedsAttention => metrics::count("OrdersNeedingAttention", &[]),
        _ => {}
    }
}

/// Compensations first mark the order COMPENSATING (so late forward commands are refused), unless it is
/// already compensating or finished (a repeated compensation still undoes its effect, idempotently).
pub async fn enter_compensation<S: OrderStore, P: EventPublisher>(
    store: &S,
    publisher: &P,
    command: &ServiceCommand,
) -> Result<(), ServiceError> {
    match advance(store, publisher, &command.order_id, OrderStatus::Compensating, command.reason.clone()).await? {
        Ok(_) => Ok(()),
        Err(order) => {
            tracing::info!(status = %order.status, "order already past compensation entry");
            Ok(())
        }
    }
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
        StepReply::Failure { error, cause } => callbacks.fail(&command.task_token, error, cause).await?,
    };
    if outcome == CallbackOutcome::TaskAlreadyClosed {
        tracing::info!(command = command.command.as_str(), "task already closed; duplicate or late command ignored");
    }
    Ok(())
}

/// The reply when a forward command finds the order in a status it cannot act on.
pub fn invalid_state(command: &ServiceCommand, order: &Order) -> StepReply {
    StepReply::failure(
        "Order.InvalidState",
        format!("{} cannot run on an order in status {}", command.command.as_str(), order.status),
    )
}

pub fn parse_command(body: &str) -> Result<ServiceCommand, ServiceError> {
    serde_json::from_str(body).map_err(|e| ServiceError::BadCommand(e.to_string()))
}

pub fn success(fields: Value) -> StepReply {
    StepReply::Success(if fields.is_null() { json!({}) } else { fields })
}
#[cfg(test)]
mod tests;
