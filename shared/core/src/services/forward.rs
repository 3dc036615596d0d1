//! The one shape of every forward step: read the order, decide, and write the effect with the order's
//! transition and its event in one atomic write (one round trip, and no moment when the ledger holds an
//! effect the order does not show), then publish the event.

use std::future::Future;

use serde_json::Value;

use super::{MAX_CONFLICT_RETRIES, Read, ServiceError, StepReply, advance_from, invalid_state, is_compensation_rerun};
use super::{load, written};
use crate::domain::messages::ServiceCommand;
use crate::domain::order::Order;
use crate::domain::saga_error::SagaError;
use crate::domain::status::OrderStatus;
use crate::domain::{self};
use crate::ports::{ApplyOutcome, EventPublisher, OrderStore, PortError, Transition};

/// What a forward step's effect came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The effect holds, with the step's output. `moved`: it was written now, with the transition it was
    /// given; otherwise an earlier copy of the command wrote it, and the order moves on its own.
    Holds { output: Value, moved: bool },
    /// A named refusal (declined, out of stock, undone before it was applied): nothing holds.
    Refused(StepReply),
}

impl Applied {
    /// What an effect's ledger write came to: written now (with the transition), written before by another
    /// copy of the command, or undone before it was applied (refused as `undone`).
    pub fn from_outcome(outcome: ApplyOutcome, output: Value, (error, cause): (SagaError, &str)) -> Self {
        match outcome {
            ApplyOutcome::Applied => Self::Holds { output, moved: true },
            ApplyOutcome::AlreadyApplied => Self::Holds { output, moved: false },
            ApplyOutcome::AlreadyUndone => Self::Refused(StepReply::failure(error, cause)),
        }
    }
}

/// A forward step: the order must be in `from` (or already in `to`, on a repeat). `apply` decides from the
/// order and applies the effect, with the transition to `to` when it is given one (the order in `from`);
/// on a repeat it is given none, and the order is already where the step leaves it. Should a compensation
/// overtake the step, the transition's version condition fails, nothing is written, and a re-read answers
/// `Order.InvalidState`.
pub async fn forward<S, P, F, Fut>(
    orders: &S,
    publisher: &P,
    command: &ServiceCommand,
    (from, to): (OrderStatus, OrderStatus),
    apply: F,
) -> Result<StepReply, ServiceError>
where
    S: OrderStore,
    P: EventPublisher,
    F: Fn(Order, Option<Transition>) -> Fut,
    Fut: Future<Output = Result<Applied, ServiceError>>,
{
    for _ in 0..MAX_CONFLICT_RETRIES {
        let order = load(orders, &command.order_id).await?;
        if is_compensation_rerun(command, &order) {
            let cause = "the order is being compensated again (nexus retry): the compensations run";
            return Ok(StepReply::failure(SagaError::CompensationRerun, cause));
        }
        if order.attempt != command.attempt || (order.status != from && order.status != to) {
            return Ok(invalid_state(command, &order));
        }
        if order.status == to {
            return repeat(orders, publisher, command, to, order, &apply).await;
        }
        let (next, event) = order.advanced(to, None, &domain::now());
        let moving = Transition { current: order.clone(), next, event };
        match apply(order.clone(), Some(moving.clone())).await {
            Ok(Applied::Refused(reply)) => return Ok(reply),
            Ok(Applied::Holds { output, moved: true }) => {
                written(publisher, &moving.current, &moving.next, &moving.event).await?;
                return Ok(StepReply::Success(output));
            }
            // An earlier copy applied the effect without the transition (a version before the two were one
            // write): the order moves now, deciding from this read (its write is conditional on its version).
            Ok(Applied::Holds { output, moved: false }) => {
                return move_on(orders, publisher, command, (Some(order), to), output).await;
            }
            Err(ServiceError::Port(PortError::Conflict { .. })) => {
                tracing::debug!(version = order.version, "the order changed since it was read; re-reading it");
            }
            Err(e) => return Err(e),
        }
    }
    Err(ServiceError::Contended { order_id: command.order_id.clone() })
}

/// A repeat: the first run wrote the effect and the status, and may have died before publishing its event.
/// The event goes out before the effect is looked at again, so that an effect that now keeps failing cannot
/// keep it from going out; then the order is read again, as any step that answers would.
async fn repeat<S, P, F, Fut>(
    orders: &S,
    publisher: &P,
    command: &ServiceCommand,
    to: OrderStatus,
    order: Order,
    apply: &F,
) -> Result<StepReply, ServiceError>
where
    S: OrderStore,
    P: EventPublisher,
    F: Fn(Order, Option<Transition>) -> Fut,
    Fut: Future<Output = Result<Applied, ServiceError>>,
{
    publisher.publish(&order.event(None)).await?;
    let output = match apply(order, None).await? {
        Applied::Holds { output, .. } => output,
        Applied::Refused(reply) => return Ok(reply),
    };
    move_on(orders, publisher, command, (None, to), output).await
}

/// The order moved to `to` on its own (from `read`, or read afresh), then the step's answer: its output, or
/// `Order.InvalidState` when the order can no longer move there.
async fn move_on<S: OrderStore, P: EventPublisher>(
    orders: &S,
    publisher: &P,
    command: &ServiceCommand,
    (read, to): (Option<Order>, OrderStatus),
    output: Value,
) -> Result<StepReply, ServiceError> {
    let read = Read { order: read, guard: None };
    Ok(match advance_from(orders, publisher, read, (&command.order_id, command.attempt), to, None).await? {
        Ok(_) => StepReply::Success(output),
        Err(order) => invalid_state(command, &order),
    })
}
