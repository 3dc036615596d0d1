//! payment: charge once per order at most against the simulated provider; refund on compensation.
//! The simulated provider honours the contract's test token: `tok_decline` is declined.

use serde_json::json;

use super::{Applied, SagaStep, ServiceError, StepReply, compensate, forward};
use crate::domain::ledger::Effect;
use crate::domain::messages::{CommandName, ServiceCommand};
use crate::domain::order::Order;
use crate::domain::saga_error::SagaError;
use crate::domain::status::OrderStatus;
use crate::ports::{EventPublisher, OrderStore, Payments};

/// The contract's deterministic trigger for `Payment.Declined` (docs/architecture.md §3).
pub const DECLINED_TOKEN: &str = "tok_decline";

/// The simulated payment provider's decision (from the order's own data, so every copy decides the same).
pub fn provider_declines(order: &Order) -> bool {
    order.payment.token == DECLINED_TOKEN
}

/// The amount and the payment details, to charge them.
pub const ORDER_READS: super::OrderReads = super::OrderReads(&["totalCents", "currency", "payment"]);

pub struct PaymentService<S, Y, P> {
    pub orders: S,
    pub payments: Y,
    pub publisher: P,
}

impl<S: OrderStore, Y: Payments, P: EventPublisher> SagaStep for PaymentService<S, Y, P> {
    async fn step(&self, command: &ServiceCommand) -> Result<StepReply, ServiceError> {
        let (orders, publisher) = (&self.orders, &self.publisher);
        match command.command {
            CommandName::ChargePayment => {
                let statuses = (OrderStatus::InventoryReserved, OrderStatus::PaymentCharged);
                forward(orders, publisher, command, statuses, |order, moving| async move {
                    if provider_declines(&order) {
                        tracing::info!("payment declined by the provider; nothing charged");
                        let declined = StepReply::failure(SagaError::PaymentDeclined, "the card was declined");
                        return Ok(Applied::Refused(declined));
                    }
                    let (id, amount) = ((&order.order_id, order.attempt), order.total_cents);
                    let charged = self.payments.charge(id.0, id.1, amount, &order.currency, moving.as_ref());
                    let output = json!({ "paymentId": Effect::Payment.id(id.0, id.1), "amountCents": amount });
                    let undone = (SagaError::PaymentRefunded, "the payment was refunded before it was charged");
                    Ok(Applied::from_outcome(charged.await?, output, undone))
                })
                .await
            }
            CommandName::RefundPayment => {
                let undo = self.payments.refund(&command.order_id, command.attempt);
                compensate(orders, publisher, command, (Effect::Payment, "refunded"), undo).await
            }
            other => Err(ServiceError::WrongService { command: other }),
        }
    }
}
