//! The saga's error names: what a step's callback fails with (`SendTaskFailure`'s `error`) and what the
//! state machine's `Catch`/`Retry` match (`ErrorEquals` in `infra/order-saga.asl.json`). Defined once here;
//! `tests/asl_error_names.rs` holds the state machine to this list both ways.

use super::messages::CommandName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaError {
    /// Not enough stock for every line item; nothing was reserved (final).
    InventoryOutOfStock,
    /// The reservation's compensation came first: nothing may be reserved any more.
    InventoryReleased,
    /// The payment provider declined; nothing was charged (final).
    PaymentDeclined,
    /// The payment's compensation came first: nothing may be charged any more.
    PaymentRefunded,
    /// No carrier serves the destination; nothing was dispatched (final).
    ShippingUnavailable,
    /// The shipment's compensation came first: nothing may be dispatched any more.
    ShipmentCancelled,
    /// The order is in a status the command cannot act on (a late or overtaken command).
    OrderInvalidState,
    /// The step could not act this time (a dependency failed, an injected fault): the state machine retries
    /// it with backoff, up to its retry budget.
    Transient,
    /// Set by the state machine when a step's retry budget is spent: the order is cancelled for it.
    InventoryUnavailable,
    /// Set by the state machine when a step's retry budget is spent: the order is cancelled for it.
    PaymentUnavailable,
    /// Raised by the state machine itself (a `Fail` state) when a compensation could not finish.
    CompensationFailed,
    /// The execution's first step found its order COMPENSATING and run by it: an operator's rerun of the
    /// compensation (`nexus retry`), which the state machine catches into the compensations. An entry by a
    /// caught answer, not a Choice state, so that no other order pays a transition for it.
    CompensationRerun,
}

impl SagaError {
    pub const ALL: [SagaError; 12] = [
        Self::InventoryOutOfStock,
        Self::InventoryReleased,
        Self::PaymentDeclined,
        Self::PaymentRefunded,
        Self::ShippingUnavailable,
        Self::ShipmentCancelled,
        Self::OrderInvalidState,
        Self::Transient,
        Self::InventoryUnavailable,
        Self::PaymentUnavailable,
        Self::CompensationFailed,
        Self::CompensationRerun,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InventoryOutOfStock => "Inventory.OutOfStock",
            Self::InventoryReleased => "Inventory.Released",
            Self::PaymentDeclined => "Payment.Declined",
            Self::PaymentRefunded => "Payment.Refunded",
            Self::ShippingUnavailable => "Shipping.Unavailable",
            Self::ShipmentCancelled => "Shipping.Cancelled",
            Self::OrderInvalidState => "Order.InvalidState",
            Self::Transient => "Saga.Transient",
            Self::InventoryUnavailable => "Inventory.Unavailable",
            Self::PaymentUnavailable => "Payment.Unavailable",
            Self::CompensationFailed => "Saga.CompensationFailed",
            Self::CompensationRerun => "Saga.CompensationRerun",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// A business refusal: final, and the state machine routes it by name (only the steps already done are
    /// compensated), where any other failure compensates the failing step too.
    pub const fn is_business_refusal(self) -> bool {
        matches!(self, Self::InventoryOutOfStock | Self::PaymentDeclined | Self::ShippingUnavailable)
    }

    /// The commands whose handlers answer with this error (none: the state machine sets it itself, in a `Fail`
    /// state or when a retry budget is spent).
    pub fn raised_by(self) -> &'static [CommandName] {
        use CommandName::*;
        match self {
            Self::InventoryOutOfStock | Self::InventoryReleased => &[ReserveInventory],
            Self::PaymentDeclined | Self::PaymentRefunded => &[ChargePayment],
            Self::ShippingUnavailable | Self::ShipmentCancelled => &[DispatchShipping],
            Self::OrderInvalidState => {
                &[ReserveInventory, ChargePayment, DispatchShipping, CompleteOrder, CancelOrder, FlagNeedsAttention]
            }
            Self::Transient => CommandName::ALL.as_slice(),
            Self::CompensationRerun => &[ReserveInventory],
            Self::InventoryUnavailable | Self::PaymentUnavailable | Self::CompensationFailed => &[],
        }
    }
}

impl std::fmt::Display for SagaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for error in SagaError::ALL {
            assert_eq!(SagaError::parse(error.as_str()), Some(error));
        }
    }
}
