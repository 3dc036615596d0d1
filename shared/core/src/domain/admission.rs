//! Admission control (docs/architecture.md §5): at most a bound of standard sagas run at once, so a VIP order
//! never shares the state machine with more than that many standard ones. A standard order takes a slot in
//! the same write that creates it and frees it in the write that ends its saga; over the bound its
//! submission waits in the intake queue (put back with a delay), while a VIP order is always admitted.

use std::num::NonZeroU32;

use super::checkout::Tier;
use super::order::Order;

/// The settings-table item whose `holders` (a string set of order ids) are the standard sagas in flight.
/// A set, not a counter: taking a slot twice or freeing it twice (a redelivered message) changes nothing.
pub const SAGA_SLOTS_ITEM: &str = "saga-slots#STANDARD";
/// The attribute of [`SAGA_SLOTS_ITEM`] that holds the order ids.
pub const SAGA_SLOT_HOLDERS: &str = "holders";
/// The metric counting slots an operator reclaimed from ended sagas (`nexus verify --reclaim-slots`), which
/// the stack alarms on: each was a leak that narrowed the standard lane.
pub const SAGA_SLOTS_RECLAIMED: &str = "SagaSlotsReclaimed";
/// The largest bound a stack may set. Every slot write pays for the item's size, and the item is one
/// partition's (1,000 write units a second): at 50 holders it is at most 2 KB, rewritten in a transaction
/// (billed twice) by each standard order's start and end, 8 write units an order, so it admits 125 orders a
/// second, no sooner than Step Functions' callback quota binds (`nexus bench`'s capacity model). At 1,000 it
/// was 40 KB and bound at 6 orders a second, before everything else; a larger bound would need the slots
/// sharded over several items.
pub const MAX_STANDARD_SAGAS: u32 = 50;

/// How many standard sagas may run at once: `None` admits every order (the template's default, 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SagaLimit(pub Option<NonZeroU32>);

impl SagaLimit {
    /// The bound from its setting (`STANDARD_SAGA_LIMIT`): 0 for none, else at most [`MAX_STANDARD_SAGAS`].
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().parse::<u32>() {
            Ok(n) if n <= MAX_STANDARD_SAGAS => Ok(Self(NonZeroU32::new(n))),
            _ => Err(format!("'{text}' is not a number of standard sagas from 0 (no bound) to {MAX_STANDARD_SAGAS}")),
        }
    }

    /// The bound creating `order` must stay within, when it takes a slot: a standard order whose saga
    /// starts, under a bound. A VIP order and a rejected one never take one (None).
    pub fn slot_bound(self, order: &Order) -> Option<u32> {
        let bound = self.0?;
        (order.tier == Tier::Standard && !order.status.is_terminal()).then_some(bound.get())
    }

    /// `order` as its creation writes it: marked as holding a slot when it takes one under this bound.
    pub fn admitted(self, order: &Order) -> Order {
        Order { holds_saga_slot: self.slot_bound(order).is_some(), ..order.clone() }
    }
}

/// Whether the write that makes `next` frees its slot: the saga of an order whose creation took one ended.
/// Decided from the order, never from the bound in force now: an order that took a slot frees it even if
/// the bound was turned off meanwhile. (Freeing it again, as an operator's rerun that ends the order once
/// more does, changes nothing.)
pub fn frees_slot(next: &Order) -> bool {
    next.holds_saga_slot && next.status.is_terminal()
}

/// How long a submission over the bound waits before intake reads it again: 20–40 s, spread by the order
/// id and the clock so a backlog does not come back at once. Long enough that a backlog of hundreds costs
/// the queue a few requests a second; a slot freed meanwhile goes to whichever waiting order comes first.
pub fn deferral_delay_seconds(order_id: &str, now_nanos: u32) -> u32 {
    let spread = order_id.bytes().fold(now_nanos, |h, b| h.rotate_left(5) ^ u32::from(b)).wrapping_mul(2_654_435_761);
    20 + spread % 21
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::OrderStatus;

    fn order(tier: Tier, status: OrderStatus) -> Order {
        Order { tier, status, ..Order::default() }
    }

    #[test]
    fn only_a_standard_saga_under_a_bound_takes_and_frees_a_slot() {
        let bound = SagaLimit::parse("8").expect("a bound");
        assert_eq!(bound.slot_bound(&order(Tier::Standard, OrderStatus::Pending)), Some(8));
        assert_eq!(bound.slot_bound(&order(Tier::Vip, OrderStatus::Pending)), None);
        assert_eq!(bound.slot_bound(&order(Tier::Standard, OrderStatus::Rejected)), None);
        let admitted = bound.admitted(&order(Tier::Standard, OrderStatus::Pending));
        assert!(admitted.holds_saga_slot);
        assert!(!bound.admitted(&order(Tier::Vip, OrderStatus::Pending)).holds_saga_slot);
        for status in [OrderStatus::Completed, OrderStatus::Cancelled, OrderStatus::NeedsAttention] {
            assert!(frees_slot(&Order { status, ..admitted.clone() }), "{status}");
            assert!(!frees_slot(&order(Tier::Vip, status)), "{status}");
        }
        assert!(!frees_slot(&Order { status: OrderStatus::PaymentCharged, ..admitted.clone() }));
        let none = SagaLimit::parse("0").expect("no bound");
        assert_eq!(none.slot_bound(&order(Tier::Standard, OrderStatus::Pending)), None);
        assert!(!none.admitted(&order(Tier::Standard, OrderStatus::Pending)).holds_saga_slot);
        // The bound turned off while the saga ran: the order still frees the slot it took.
        assert!(frees_slot(&Order { status: OrderStatus::Completed, ..admitted }));
    }

    #[test]
    fn a_bound_is_a_number_up_to_the_maximum() {
        assert_eq!(SagaLimit::parse("0"), Ok(SagaLimit(None)));
        assert!(SagaLimit::parse("50").is_ok());
        assert!(SagaLimit::parse("51").is_err());
        assert!(SagaLimit::parse("-1").is_err());
        assert!(SagaLimit::parse("eight").is_err());
    }

    #[test]
    fn deferrals_spread_over_twenty_to_forty_seconds() {
        let delays: Vec<u32> = (0..200).map(|i| deferral_delay_seconds(&format!("order-{i}"), 12_345)).collect();
        assert!(delays.iter().all(|d| (20..=40).contains(d)), "{delays:?}");
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 15, "spread: {distinct:?}");
    }
}
