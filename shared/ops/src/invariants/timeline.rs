//! An order's own timeline: its events' sequences are 1..=version with no gap, each change is a legal
//! transition within its attempt, and the last is the order's status.

use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;

use super::Found;

pub(super) fn check(order: &Order, mut timeline: Vec<&OrderEvent>, violation: &mut Found<'_>) {
    let id = order.order_id.as_str();
    timeline.sort_by_key(|e| e.sequence);
    let sequences: Vec<u64> = timeline.iter().map(|e| e.sequence).collect();
    if sequences != (1..=order.version).collect::<Vec<_>>() {
        violation("timeline-gap-free", id, format!("event sequences {sequences:?} for version {}", order.version));
    }
    for pair in timeline.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        if !from.status.can_become(to.status) && !from.status.can_be_retried_to(to.status) {
            violation("timeline-legal", id, format!("{} -> {} at {}", from.status, to.status, to.sequence));
        }
        // Only an operator's retry of a cancelled order starts a new attempt, and it always does.
        let new_attempt = from.status == OrderStatus::Cancelled && to.status == OrderStatus::Pending;
        if to.attempt != from.attempt + u32::from(new_attempt) {
            let detail = format!(
                "attempt {} -> {} at {} ({} -> {})",
                from.attempt, to.attempt, to.sequence, from.status, to.status
            );
            violation("timeline-attempts", id, detail);
        }
    }
    if timeline.last().is_some_and(|e| e.status != order.status) {
        violation("timeline-current", id, format!("last event is not the order's status {}", order.status));
    }
}
