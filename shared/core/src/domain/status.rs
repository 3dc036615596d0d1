//! Order statuses and the transitions the saga may make between them (docs/architecture.md §2).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    InventoryReserved,
    PaymentCharged,
    Shipped,
    Completed,
    Compensating,
    Cancelled,
    Rejected,
    NeedsAttention,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        Self::Pending,
        Self::InventoryReserved,
        Self::PaymentCharged,
        Self::Shipped,
        Self::Completed,
        Self::Compensating,
        Self::Cancelled,
        Self::Rejected,
        Self::NeedsAttention,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InventoryReserved => "INVENTORY_RESERVED",
            Self::PaymentCharged => "PAYMENT_CHARGED",
            Self::Shipped => "SHIPPED",
            Self::Completed => "COMPLETED",
            Self::Compensating => "COMPENSATING",
            Self::Cancelled => "CANCELLED",
            Self::Rejected => "REJECTED",
            Self::NeedsAttention => "NEEDS_ATTENTION",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No saga step changes an order in a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Rejected | Self::NeedsAttention)
    }

    /// The allowed transitions. Forward: PENDING → INVENTORY_RESERVED → PAYMENT_CHARGED → SHIPPED → COMPLETED.
    /// A failure from any non-terminal status goes to COMPENSATING, or straight to CANCELLED when nothing was
    /// done yet (PENDING); compensations end in CANCELLED, or NEEDS_ATTENTION when they could not finish.
    pub fn can_become(self, next: Self) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, InventoryReserved)
                | (InventoryReserved, PaymentCharged)
                | (PaymentCharged, Shipped)
                | (Shipped, Completed)
                | (Pending | InventoryReserved | PaymentCharged | Shipped, Compensating)
                | (Pending | Compensating, Cancelled)
                | (Pending | InventoryReserved | PaymentCharged | Shipped | Compensating, NeedsAttention)
        )
    }
}

impl OrderStatus {
    /// The transitions only an operator's retry makes (`nexus retry`), never a saga step: a cancelled order
    /// starts a new attempt, an order needing attention has its compensation run again, and so does an order
    /// whose execution ended during its compensation (a new execution, the status unchanged).
    pub fn can_be_retried_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Cancelled, Self::Pending)
                | (Self::NeedsAttention, Self::Compensating)
                | (Self::Compensating, Self::Compensating)
        )
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn happy_path_is_allowed_in_order_only() {
        let path = [Pending, InventoryReserved, PaymentCharged, Shipped, Completed];
        for pair in path.windows(2) {
            assert!(pair[0].can_become(pair[1]), "{} -> {}", pair[0], pair[1]);
            assert!(!pair[1].can_become(pair[0]), "no way back from {}", pair[1]);
        }
        assert!(!Pending.can_become(Completed));
        assert!(!InventoryReserved.can_become(Shipped));
    }

    #[test]
    fn terminal_statuses_never_change() {
        for from in OrderStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in OrderStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn failures_compensate_then_cancel() {
        assert!(PaymentCharged.can_become(Compensating));
        assert!(Compensating.can_become(Cancelled));
        assert!(Compensating.can_become(NeedsAttention));
        assert!(Pending.can_become(Cancelled), "nothing to compensate yet");
        assert!(!InventoryReserved.can_become(Cancelled), "reserved stock must be released first");
    }

    #[test]
    fn names_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).expect("json"), status.as_str());
        }
    }
}
