//! inventory: reserve every line item or none (stock never below zero); release on compensation. Out of
//! stock is a decision the ledger records, so every copy of the command answers the same.

use serde_json::json;

use super::{Applied, SagaStep, ServiceError, StepReply, compensate, forward};
use crate::domain::ledger::Effect;
use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::saga_error::SagaError;
use crate::domain::status::OrderStatus;
use crate::ports::{EventPublisher, Inventory, OrderStore, ReserveOutcome};

/// The line items, to reserve them.
pub const ORDER_READS: super::OrderReads = super::OrderReads(&["items"]);

pub struct InventoryService<S, I, P> {
    pub orders: S,
    pub inventory: I,
    pub publisher: P,
}

impl<S: OrderStore, I: Inventory, P: EventPublisher> SagaStep for InventoryService<S, I, P> {
    async fn step(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        let (orders, publisher) = (&self.orders, &self.publisher);
        match command.command {
            CommandName::ReserveInventory => {
                let statuses = (OrderStatus::Pending, OrderStatus::InventoryReserved);
                forward(orders, publisher, command, statuses, |order, moving| async move {
                    let reserved =
                        self.inventory.reserve(&order.order_id, order.attempt, &order.items, moving.as_ref());
                    let output = json!({ "reservationId": Effect::Reservation.id(&order.order_id, order.attempt) });
                    Ok(match reserved.await? {
                        ReserveOutcome::Reserved => Applied::Holds { output, moved: true },
                        ReserveOutcome::AlreadyReserved => Applied::Holds { output, moved: false },
                        ReserveOutcome::OutOfStock => {
                            tracing::info!("not enough stock for every line item; nothing reserved");
                            let cause = "not enough stock for every line item";
                            Applied::Refused(StepReply::failure(SagaError::InventoryOutOfStock, cause))
                        }
                        ReserveOutcome::AlreadyReleased => Applied::Refused(StepReply::failure(
                            SagaError::InventoryReleased,
                            "the reservation was released before it was made",
                        )),
                    })
                })
                .await
            }
            CommandName::ReleaseInventory => {
                let undo = self.inventory.release(&command.order_id, command.attempt);
                compensate(orders, publisher, command, (Effect::Reservation, "released"), undo).await
            }
            other => Err(ServiceError::WrongService { command: other }),
        }
    }
}
