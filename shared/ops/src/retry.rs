//! `nexus retry`: an operator runs a failed order again, after fixing what failed it.
//!
//! - An order **cancelled for a transient reason** (a step's retry budget ran out: `<Service>.Unavailable`)
//!   starts a new attempt: same order id, attempt + 1, a new execution from the first step. Every attempt
//!   has its own effects in the ledger (`payment#2`), each as idempotent as the first attempt's, and the
//!   commands of an earlier attempt can no longer move the order.
//! - An order **needing attention** (a compensation could not finish) has its compensation run again by a
//!   new execution that starts at the compensations and cancels for the original reason; every undo is
//!   idempotent, so what was undone before is not undone twice.
//!
//! - An order **whose execution ended without its final write** (stopped, timed out, or failed because the
//!   order's own steps could not be delivered) is taken to a terminal state: a SHIPPED order, all of whose
//!   effects hold, is completed; any other is compensated by a new execution (as above) and cancelled, for
//!   the reason its compensation began with or, when none had begun, [`EXECUTION_ENDED`].
//!
//! The retry is one conditional write of the order (version + 1, recording the new status, attempt and
//! execution) and its event, then the start of that execution, named after the version written. Should the
//! tool die between the two, running it again finds the order in flight with no execution of that name:
//! it publishes the order's event again (the first run may have died before it) and starts the execution.
//! An order whose execution runs is left alone; a NEEDS_ATTENTION order is retried only once the execution
//! that flagged it has ended.

use serde::Serialize;

use nexus_core::domain::ids;
use nexus_core::domain::messages::{SagaFailure, SagaInput};
use nexus_core::domain::order::Order;
use nexus_core::domain::saga_error::SagaError;
use nexus_core::domain::status::OrderStatus;
use nexus_core::domain::{self};
use nexus_core::ports::{EventLog, EventPublisher, ExecutionStatus, OrderStore, PortError, SagaStarter, StartOutcome};
use nexus_core::services::shipping::carrier_serves;

/// The reason an order is cancelled for when its execution ended before any compensation began (stopped by
/// an operator, timed out, or failed delivering the order's own steps).
pub const EXECUTION_ENDED: &str = "Saga.ExecutionEnded";

/// How many times the retry re-reads the order after a version conflict before giving up.
const MAX_CONFLICT_RETRIES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RetryKind {
    /// A cancelled order runs again from the first step, as its next attempt.
    NewAttempt,
    /// An order that needs attention, or whose execution ended during its forward steps or its
    /// compensation, has its compensation run (again) by a new execution.
    Compensation,
    /// A SHIPPED order whose execution ended before completing it: every effect holds, so it is completed.
    Completion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retried {
    pub order_id: String,
    pub kind: RetryKind,
    pub attempt: u32,
    pub status: OrderStatus,
    pub execution_arn: String,
    /// True when an earlier run of the retry had written the order but died before starting its execution,
    /// and this run started it.
    pub resumed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("order {0} not found")]
    NotFound(String),
    #[error("order {order_id} is {status}{}: {why}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Refused { order_id: String, status: OrderStatus, reason: Option<String>, why: String },
    #[error("order {0} kept changing under the retry (another writer); run it again")]
    Contended(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// What a retry of `order` would do, or why there is none: decided from the order and its events alone.
pub fn plan(order: &Order, events: &[domain::messages::OrderEvent]) -> Result<(RetryKind, SagaInput), String> {
    let reason = order.reason.as_deref().unwrap_or_default();
    match order.status {
        OrderStatus::Cancelled => {
            let transient = match SagaError::parse(reason) {
                Some(SagaError::InventoryUnavailable | SagaError::PaymentUnavailable) => true,
                // The same name is the business refusal "no carrier serves the destination", which the
                // order's own address decides: only when a carrier serves it was the service unavailable.
                Some(SagaError::ShippingUnavailable) => carrier_serves(order),
                _ => false,
            };
            if !transient {
                return Err("only an order cancelled because a service stayed unavailable (Inventory.Unavailable, \
                            Payment.Unavailable, Shipping.Unavailable with a served address) can be retried; a \
                            new attempt of this one would end the same way"
                    .into());
            }
            let next = Order { attempt: order.attempt + 1, ..order.clone() };
            Ok((RetryKind::NewAttempt, next.saga_input()))
        }
        OrderStatus::NeedsAttention => {
            // The reason it was being cancelled for: the reason its compensation of this attempt began with.
            let Some(reason) = events
                .iter()
                .rev()
                .take_while(|e| e.attempt == order.attempt)
                .find(|e| e.status == OrderStatus::Compensating)
                .and_then(|e| e.reason.clone())
            else {
                return Err("it was flagged after its forward steps finished, not during a compensation; \
                            look at its execution (`nexus timeline`) and fix the order by hand"
                    .into());
            };
            Ok((RetryKind::Compensation, compensation_input(order, reason)))
        }
        OrderStatus::Completed => Err("it completed; there is nothing to retry".into()),
        OrderStatus::Rejected => Err("it was rejected at intake; submit a corrected order instead".into()),
        _ => Err("its saga is still running; follow it with `nexus timeline`".into()),
    }
}

fn compensation_input(order: &Order, reason: String) -> SagaInput {
    SagaInput {
        error: Some(SagaFailure {
            error: reason,
            cause: "an operator ran the compensation again (nexus retry)".into(),
        }),
        ..order.saga_input()
    }
}

/// What a retry of an order does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Its events go out again first.
    pub republish: bool,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start the execution an earlier retry wrote the order for but did not start.
    Resume,
    /// Complete a SHIPPED order whose execution ended before completing it.
    Complete,
    /// Write the order (a new attempt, or its compensation) and start a new execution with this input.
    Run(RetryKind, Box<SagaInput>),
}

impl Plan {
    /// The kind of retry, as `nexus retry` reports it.
    pub fn kind(&self) -> RetryKind {
        match &self.action {
            Action::Resume | Action::Run(RetryKind::NewAttempt, _) => RetryKind::NewAttempt,
            Action::Complete => RetryKind::Completion,
            Action::Run(kind, _) => *kind,
        }
    }
}

/// What a retry of `order` would do, given its current execution's status and its events, or why there is
/// none: the one decision `nexus retry` and its dry run share.
pub fn decide(
    order: &Order,
    execution: Option<ExecutionStatus>,
    events: &[domain::messages::OrderEvent],
) -> Result<Plan, String> {
    if order.personal_data_erased_at.is_some() {
        return Err("its personal data was erased (nexus forget): a new run would have no address or token".into());
    }
    if !order.status.is_terminal() {
        return match execution {
            None => Ok(Plan { republish: true, action: Action::Resume }),
            Some(status) if !status.has_ended() => {
                Err("its saga is still running; follow it with `nexus timeline`".into())
            }
            Some(_) if order.status == OrderStatus::Shipped => Ok(Plan { republish: true, action: Action::Complete }),
            Some(_) => {
                let reason = match order.status {
                    OrderStatus::Compensating => order.reason.clone().unwrap_or_else(|| EXECUTION_ENDED.into()),
                    _ => EXECUTION_ENDED.into(),
                };
                let input = compensation_input(order, reason);
                Ok(Plan { republish: true, action: Action::Run(RetryKind::Compensation, Box::new(input)) })
            }
        };
    }
    if order.status == OrderStatus::NeedsAttention && execution.is_some_and(|s| !s.has_ended()) {
        return Err(
            "the execution that flagged it is still ending (within seconds); run the retry again once it has".into()
        );
    }
    let (kind, input) = plan(order, events)?;
    Ok(Plan { republish: false, action: Action::Run(kind, Box::new(input)) })
}

/// Retries the order (see the module's documentation).
pub async fn retry<S, L, P, G>(
    orders: &S,
    log: &L,
    publisher: &P,
    saga: &G,
    order_id: &str,
) -> Result<Retried, RetryError>
where
    S: OrderStore,
    L: EventLog,
    P: EventPublisher,
    G: SagaStarter,
{
    for _ in 0..MAX_CONFLICT_RETRIES {
        let order = orders.get(order_id).await?.ok_or_else(|| RetryError::NotFound(order_id.to_owned()))?;
        let execution = match current_execution(&order) {
            Some(name) => saga.status(&name).await?,
            None => None,
        };
        let events = log.events(order_id).await?;
        let plan = decide(&order, execution, &events).map_err(|why| refused(&order, why))?;
        if plan.republish {
            // Its steps' events may have been written and never sent (a publish failed, and the step that
            // would have sent it again never ran): they all go out again first.
            crate::republish::republish(log, publisher, order_id).await?;
        }
        let (kind, input) = match plan.action {
            Action::Resume => return resume(saga, order).await,
            Action::Complete => match complete(orders, publisher, &order).await {
                Err(RetryError::Contended(_)) => continue,
                other => return other,
            },
            Action::Run(kind, input) => (kind, *input),
        };
        let name = ids::retry_execution_name(order_id, order.version + 1);
        let status = match kind {
            RetryKind::NewAttempt => OrderStatus::Pending,
            RetryKind::Compensation | RetryKind::Completion => OrderStatus::Compensating,
        };
        let reason = input.error.as_ref().map(|failure| failure.error.clone());
        let (next, event) = order.retried((status, input.attempt, reason), saga.execution_arn(&name), &domain::now());
        match orders.transition(&order, &next, &event).await {
            Ok(()) => {}
            Err(PortError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
        publisher.publish(&event).await?;
        let execution_arn = match saga.start(&name, &input.to_json()).await? {
            StartOutcome::Started { execution_arn } | StartOutcome::AlreadyStarted { execution_arn } => execution_arn,
        };
        return Ok(Retried {
            order_id: order_id.to_owned(),
            kind,
            attempt: next.attempt,
            status,
            execution_arn,
            resumed: false,
        });
    }
    Err(RetryError::Contended(order_id.to_owned()))
}

/// The name of the execution that runs the order now (the last part of its ARN).
pub fn current_execution(order: &Order) -> Option<String> {
    order.execution_arn.as_deref().map(|arn| ids::execution_name(arn).to_owned())
}

/// A SHIPPED order whose execution ended before its CompleteOrder: the same transition that step makes.
async fn complete<S: OrderStore, P: EventPublisher>(
    orders: &S,
    publisher: &P,
    order: &Order,
) -> Result<Retried, RetryError> {
    let (next, event) = order.advanced(OrderStatus::Completed, None, &domain::now());
    match orders.transition(order, &next, &event).await {
        Ok(()) => {}
        Err(PortError::Conflict { .. }) => return Err(RetryError::Contended(order.order_id.clone())),
        Err(e) => return Err(e.into()),
    }
    publisher.publish(&event).await?;
    Ok(Retried {
        order_id: order.order_id.clone(),
        kind: RetryKind::Completion,
        attempt: next.attempt,
        status: next.status,
        execution_arn: next.execution_arn.clone().unwrap_or_default(),
        resumed: false,
    })
}

/// An order in flight whose execution does not exist: a retry that died between writing the order and
/// starting its execution (the caller has published its events again: that run may have died before
/// publishing), so the execution starts.
async fn resume<G: SagaStarter>(saga: &G, order: Order) -> Result<Retried, RetryError> {
    let Some(name) = current_execution(&order) else {
        return Err(refused(&order, "it has no saga execution; it cannot be retried".into()));
    };
    let (kind, input) = match (order.status, order.reason.clone()) {
        (OrderStatus::Compensating, Some(reason)) => (RetryKind::Compensation, compensation_input(&order, reason)),
        _ => (RetryKind::NewAttempt, order.saga_input()),
    };
    match saga.start(&name, &input.to_json()).await? {
        StartOutcome::Started { execution_arn } => {
            Ok(Retried {
                order_id: order.order_id.clone(),
                kind,
                attempt: order.attempt,
                status: order.status,
                execution_arn,
                resumed: true,
            })
        }
        StartOutcome::AlreadyStarted { .. } => {
            Err(refused(&order, "its saga execution exists (running, or ended without finishing the order); follow it with `nexus timeline`".into()))
        }
    }
}

fn refused(order: &Order, why: String) -> RetryError {
    RetryError::Refused { order_id: order.order_id.clone(), status: order.status, reason: order.reason.clone(), why }
}
