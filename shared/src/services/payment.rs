//! payment: charge once per order at most against the simulated provider; refund on compensation.
//! The simulated provider honours the contract's test token: `tok_decline` is declined.

use serde_json::json;

use super::{ServiceError, StepReply, advance, enter_compensation, invalid_state, success};
use crate::domain::ids;
use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::order::Order;
use crate::domain::status::OrderStatus;
use crate::ports::{ChargeOutcome, EventPublisher, OrderStore, Payments, RefundOutcome};

/// The contract's deterministic trigger for `Payment.Declined` (ARCHITECTURE.md §3).
pub const DECLINED_TOKEN: &str = "tok_decline";

/// The simulated payment provider's decision.
pub fn provider_declines(order: &Order) -> bool {
    order.payment.token == DECLINED_TOKEN
}

pub struct PaymentService<S, Y, P> {
    pub orders: S,
    pub payments: Y,
    pub publisher: P,
}

impl<S: OrderStore, Y: Payments, P: EventPublisher> PaymentService<S, Y, P> {
    pub async fn handle(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        let payment_id = ids::effect_id(&command.order_id, "payment");
        match command.command {
            CommandName::ChargePayment => {
                let order = self
                    .orders
                    .get(&command.order_id)
                    .await?
                    .ok_or_else(|| ServiceError::OrderNotFound(command.order_id.clone()))?;
                if !matches!(order.status, OrderStatus::InventoryReserved | OrderStatus::PaymentCharged) {
                    return Ok(invalid_state(command, &order));
                }
                if provider_declines(&order) {
                    tracing::info!("payment declined by the provider; nothing charged");
                    return Ok(StepReply::failure("Payment.Declined", "the card was declined"));
                }
                match self.payments.charge(&payment_id, &order.order_id, order.total_cents, &order.currency).await? {
                    ChargeOutcome::Charged | ChargeOutcome::AlreadyCharged => {
                        match advance(&self.orders, &self.publisher, &order.order_id, OrderStatus::PaymentCharged, None)
                            .await?
                        {
                            Ok(_) => Ok(success(json!({ "paymentId": payment_id, "amountCents": order.total_cents }))),
                            Err(order) => Ok(invalid_state(command, &order)),
                        }
                    }
                    ChargeOutcome::AlreadyRefunded => {
                        Ok(StepReply::failure("Payment.Refunded", "the payment was refunded before it was charged"))
                    }
                }
            }
            CommandName::RefundPayment => {
                enter_compensation(&self.orders, &self.publisher, command).await?;
                let outcome = self.payments.refund(&payment_id, &command.order_id).await?;
                tracing::info!(?outcome, "payment refunded");
                Ok(success(
                    json!({ "paymentId": payment_id, "refunded": outcome == RefundOutcome::Refunded || outcome == RefundOutcome::AlreadyRefunded }),
                ))
            }
            other => Err(ServiceError::WrongService { command: other }),
        }
    }
}

impl<S: OrderStore, Y: Payments, P: EventPublisher> crate::entry::SagaStep for PaymentService<S, Y, P>
where
    Self: Send + Sync,
{
    async fn step(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        self.handle(command).await
    }
}
