//! The saga's own order steps (handled by order-intake, which owns the order): complete, cancel with the
//! reason, or flag for attention when a compensation could not finish.

use serde_json::json;

use super::{SagaStep, ServiceError, StepReply, advance_for_execution, invalid_state};
use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::status::OrderStatus;
use crate::ports::{EventPublisher, OrderStore};

pub struct OrderCommandService<S, P> {
    pub orders: S,
    pub publisher: P,
}

impl<S: OrderStore, P: EventPublisher> SagaStep for OrderCommandService<S, P> {
    async fn step(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        let (to, reason) = match command.command {
            CommandName::CompleteOrder => (OrderStatus::Completed, None),
            CommandName::CancelOrder => (OrderStatus::Cancelled, command.reason.clone()),
            CommandName::FlagNeedsAttention => (OrderStatus::NeedsAttention, command.reason.clone()),
            other => return Err(ServiceError::WrongService { command: other }),
        };
        match advance_for_execution(&self.orders, &self.publisher, command, to, reason.clone()).await? {
            Ok(order) => {
                if to == OrderStatus::NeedsAttention {
                    // An alarm-able signal: a compensation could not finish and a person must look.
                    tracing::error!(reason = reason.as_deref().unwrap_or_default(), "order needs attention");
                }
                Ok(StepReply::Success(json!({ "status": order.status, "version": order.version })))
            }
            Err(order) => Ok(invalid_state(command, &order)),
        }
    }
}
