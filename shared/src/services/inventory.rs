//! inventory: reserve every line item or none (stock never below zero); release on compensation.

use serde_json::json;

use super::{ServiceError, StepReply, advance, enter_compensation, invalid_state, success};
use crate::domain::ids;
use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::status::OrderStatus;
use crate::ports::{EventPublisher, Inventory, OrderStore, ReleaseOutcome, ReserveOutcome};

pub struct InventoryService<S, I, P> {
    pub orders: S,
    pub inventory: I,
    pub publisher: P,
}

impl<S: OrderStore, I: Inventory, P: EventPublisher> InventoryService<S, I, P> {
    pub async fn handle(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        let reservation_id = ids::effect_id(&command.order_id, "reservation");
        match command.command {
            CommandName::ReserveInventory => {
                let order = self.order(command).await?;
                if !matches!(order.status, OrderStatus::Pending | OrderStatus::InventoryReserved) {
                    return Ok(invalid_state(command, &order));
                }
                match self.inventory.reserve(&reservation_id, &order.order_id, &order.items).await? {
                    ReserveOutcome::Reserved | ReserveOutcome::AlreadyReserved => {
                        match advance(
                            &self.orders,
                            &self.publisher,
                            &order.order_id,
                            OrderStatus::InventoryReserved,
                            None,
                        )
                        .await?
                        {
                            Ok(_) => Ok(success(json!({ "reservationId": reservation_id }))),
                            // Compensation overtook us; the release will undo the reservation.
                            Err(order) => Ok(invalid_state(command, &order)),
                        }
                    }
                    ReserveOutcome::OutOfStock => {
                        tracing::info!("not enough stock for every line item; nothing reserved");
                        Ok(StepReply::failure("Inventory.OutOfStock", "not enough stock for every line item"))
                    }
                    ReserveOutcome::AlreadyReleased => {
                        Ok(StepReply::failure("Inventory.Released", "the reservation was released before it was made"))
                    }
                }
            }
            CommandName::ReleaseInventory => {
                enter_compensation(&self.orders, &self.publisher, command).await?;
                let outcome = self.inventory.release(&reservation_id, &command.order_id).await?;
                tracing::info!(?outcome, "inventory released");
                let released = !matches!(outcome, ReleaseOutcome::NothingReserved);
                Ok(success(json!({ "reservationId": reservation_id, "released": released })))
            }
            other => Err(ServiceError::WrongService { command: other }),
        }
    }

    async fn order(&self, command: &ServiceCommand) -> Result<crate::domain::order::Order, ServiceError> {
        self.orders.get(&command.order_id).await?.ok_or_else(|| ServiceError::OrderNotFound(command.order_id.clone()))
    }
}

impl<S: OrderStore, I: Inventory, P: EventPublisher> crate::entry::SagaStep for InventoryService<S, I, P>
where
    Self: Send + Sync,
{
    async fn step(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        self.handle(command).await
    }
}
