//! shipping: dispatch the order; cancel the shipment on compensation. The contract's postal code `00000`
//! is a destination no carrier serves.

use serde_json::json;

use super::{Applied, SagaStep, ServiceError, StepReply, compensate, forward};
use crate::domain::ledger::Effect;
use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::order::Order;
use crate::domain::saga_error::SagaError;
use crate::domain::status::OrderStatus;
use crate::ports::{EventPublisher, OrderStore, Shipments};

/// The contract's deterministic trigger for `Shipping.Unavailable` (docs/architecture.md §3).
pub const UNSERVED_POSTAL_CODE: &str = "00000";

/// The simulated carriers' decision (from the order's own data, so every copy decides the same).
pub fn carrier_serves(order: &Order) -> bool {
    order.shipping_address.postal_code != UNSERVED_POSTAL_CODE
}

/// The address, to dispatch to it.
pub const ORDER_READS: super::OrderReads = super::OrderReads(&["shippingAddress"]);

pub struct ShippingService<S, H, P> {
    pub orders: S,
    pub shipments: H,
    pub publisher: P,
}

impl<S: OrderStore, H: Shipments, P: EventPublisher> SagaStep for ShippingService<S, H, P> {
    async fn step(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        let (orders, publisher) = (&self.orders, &self.publisher);
        match command.command {
            CommandName::DispatchShipping => {
                let statuses = (OrderStatus::PaymentCharged, OrderStatus::Shipped);
                forward(orders, publisher, command, statuses, |order, moving| async move {
                    if !carrier_serves(&order) {
                        tracing::info!("no carrier serves the destination");
                        let cause = "no carrier serves this postal code";
                        return Ok(Applied::Refused(StepReply::failure(SagaError::ShippingUnavailable, cause)));
                    }
                    let dispatched = self.shipments.dispatch(
                        &order.order_id,
                        order.attempt,
                        &order.shipping_address,
                        moving.as_ref(),
                    );
                    let output = json!({ "shipmentId": Effect::Shipment.id(&order.order_id, order.attempt) });
                    let undone = (SagaError::ShipmentCancelled, "the shipment was cancelled before dispatch");
                    Ok(Applied::from_outcome(dispatched.await?, output, undone))
                })
                .await
            }
            CommandName::CancelShipment => {
                let undo = self.shipments.cancel(&command.order_id, command.attempt);
                compensate(orders, publisher, command, (Effect::Shipment, "cancelled"), undo).await
            }
            other => Err(ServiceError::WrongService { command: other }),
        }
    }
}
