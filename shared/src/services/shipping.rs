//! shipping: dispatch the order; cancel the shipment on compensation. The contract's postal code `00000`
//! is a destination no carrier serves.

use serde_json::json;

use super::{ServiceError, StepReply, advance, enter_compensation, invalid_state, success};
use crate::domain::ids;
use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::order::Order;
use crate::domain::status::OrderStatus;
use crate::ports::{CancelShipmentOutcome, DispatchOutcome, EventPublisher, OrderStore, Shipments};

/// The contract's deterministic trigger for `Shipping.Unavailable` (ARCHITECTURE.md §3).
pub const UNSERVED_POSTAL_CODE: &str = "00000";

pub fn carrier_serves(order: &Order) -> bool {
    order.shipping_address.postal_code != UNSERVED_POSTAL_CODE
}

pub struct ShippingService<S, H, P> {
    pub orders: S,
    pub shipments: H,
    pub publisher: P,
}

impl<S: OrderStore, H: Shipments, P: EventPublisher> ShippingService<S, H, P> {
    pub async fn handle(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        let shipment_id = ids::effect_id(&command.order_id, "shipment");
        match command.command {
            CommandName::DispatchShipping => {
                let order = self
                    .orders
                    .get(&command.order_id)
                    .await?
                    .ok_or_else(|| ServiceError::OrderNotFound(command.order_id.clone()))?;
                if !matches!(order.status, OrderStatus::PaymentCharged | OrderStatus::Shipped) {
                    return Ok(invalid_state(command, &order));
                }
                if !carrier_serves(&order) {
                    tracing::info!("no carrier serves the destination");
                    return Ok(StepReply::failure("Shipping.Unavailable", "no carrier serves this postal code"));
                }
                match self.shipments.dispatch(&shipment_id, &order.order_id, &order.shipping_address).await? {
                    DispatchOutcome::Dispatched | DispatchOutcome::AlreadyDispatched => {
                        match advance(&self.orders, &self.publisher, &order.order_id, OrderStatus::Shipped, None)
                            .await?
                        {
                            Ok(_) => Ok(success(json!({ "shipmentId": shipment_id }))),
                            Err(order) => Ok(invalid_state(command, &order)),
                        }
                    }
                    DispatchOutcome::AlreadyCancelled => {
                        Ok(StepReply::failure("Shipping.Cancelled", "the shipment was cancelled before dispatch"))
                    }
                }
            }
            CommandName::CancelShipment => {
                enter_compensation(&self.orders, &self.publisher, command).await?;
                let outcome = self.shipments.cancel(&shipment_id, &command.order_id).await?;
                tracing::info!(?outcome, "shipment cancelled");
                Ok(success(
                    json!({ "shipmentId": shipment_id, "cancelled": outcome != CancelShipmentOutcome::NothingDispatched }),
                ))
            }
            other => Err(ServiceError::WrongService { command: other }),
        }
    }
}

impl<S: OrderStore, H: Shipments, P: EventPublisher> crate::entry::SagaStep for ShippingService<S, H, P>
where
    Self: Send + Sync,
{
    async fn step(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        self.handle(command).await
    }
}
