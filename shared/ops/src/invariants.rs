//! The invariant checker: over all orders and tables, the guarantees Nexus makes (no lost order, no
//! oversold unit, no double or orphaned charge, gap-free timelines). Pure: it checks a [`Snapshot`]
//! ([`crate::snapshot::load`] reads one from a deployed stack).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use nexus_core::domain::checkout;
use nexus_core::domain::ledger::{Effect, LedgerEntry};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::status::OrderStatus;

pub use crate::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub rule: &'static str,
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckOrder {
    pub order_id: String,
    pub status: OrderStatus,
    pub age_seconds: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub orders: usize,
    pub by_status: BTreeMap<String, usize>,
    /// Orders not yet in a terminal status, oldest first.
    pub in_flight: Vec<StuckOrder>,
    pub violations: Vec<Violation>,
    pub charged_cents: u64,
    pub refunded_cents: u64,
    pub completed_total_cents: u64,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks the snapshot. `now_epoch` dates the in-flight orders.
pub fn check(snapshot: &Snapshot, now_epoch: i64) -> Report {
    let mut report = Report { orders: snapshot.orders.len(), ..Report::default() };
    let mut violation = |rule: &'static str, subject: &str, detail: String| {
        report.violations.push(Violation { rule, subject: subject.to_owned(), detail });
    };
    let mut events: HashMap<&str, Vec<&OrderEvent>> = HashMap::new();
    for event in &snapshot.events {
        events.entry(event.order_id.as_str()).or_default().push(event);
    }
    // Every attempt of an order has its own entries (`payment`, `payment#2`, …).
    let mut ledger: HashMap<(&str, Effect), Vec<&LedgerEntry>> = HashMap::new();
    for entry in &snapshot.ledger {
        if let Some(effect) = entry.effect() {
            ledger.entry((entry.order_id.as_str(), effect)).or_default().push(entry);
        }
    }
    let mut reserved_units: BTreeMap<String, u64> = BTreeMap::new();
    let (mut charged, mut refunded, mut completed_total, mut in_flight_charged) = (0u64, 0u64, 0u64, 0u64);
    let mut in_flight = Vec::new();

    for order in &snapshot.orders {
        let id = order.order_id.as_str();
        *report.by_status.entry(order.status.as_str().to_owned()).or_default() += 1;

        // The charge is the order's total: the checked sum of its priced lines, within the limit.
        let lines_total = checkout::total_cents(&order.items);
        if order.status != OrderStatus::Rejected
            && (lines_total != Some(order.total_cents) || order.total_cents > checkout::MAX_ORDER_TOTAL_CENTS)
        {
            let detail = format!("total {} for lines summing to {lines_total:?}", order.total_cents);
            violation("order-total", id, detail);
        }

        // Timeline: sequences 1..=version, each change a legal transition, ending at the order's status.
        let mut timeline = events.remove(id).unwrap_or_default();
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
                violation(
                    "timeline-attempts",
                    id,
                    format!(
                        "attempt {} -> {} at {} ({} -> {})",
                        from.attempt, to.attempt, to.sequence, from.status, to.status
                    ),
                );
            }
        }
        if timeline.last().is_some_and(|e| e.status != order.status) {
            violation("timeline-current", id, format!("last event is not the order's status {}", order.status));
        }

        let entries = |effect: Effect| ledger.get(&(id, effect)).map_or(&[][..], Vec::as_slice);
        let (reservations, payments) = (entries(Effect::Reservation), entries(Effect::Payment));
        for effect in Effect::ALL {
            let holding: Vec<&str> = entries(effect).iter().filter(|e| e.holds()).map(|e| e.entry.as_str()).collect();
            if holding.len() > 1 {
                violation("one-attempt-holds", id, format!("{} entries hold at once: {holding:?}", effect.key()));
            }
        }
        let holds_stock = reservations.iter().any(|r| r.holds());
        for reservation in reservations.iter().filter(|r| r.holds()) {
            for line in &reservation.lines {
                *reserved_units.entry(line.sku.clone()).or_default() += line.quantity;
            }
        }
        let net_charge: u64 = payments.iter().filter(|p| p.holds()).map(|p| p.amount_cents).sum();
        for p in payments {
            if p.holds() {
                charged += p.amount_cents;
            } else if p.amount_cents > 0 {
                charged += p.amount_cents;
                refunded += p.amount_cents;
            }
        }
        match order.status {
            OrderStatus::Completed => {
                completed_total += order.total_cents;
                if !holds_stock {
                    violation("completed-holds-stock", id, "COMPLETED without a reservation".into());
                }
                if net_charge != order.total_cents {
                    violation(
                        "completed-charged-once",
                        id,
                        format!("net charge {net_charge} != total {}", order.total_cents),
                    );
                }
            }
            OrderStatus::Cancelled | OrderStatus::Rejected => {
                if holds_stock {
                    violation("cancelled-no-reservation", id, format!("{} order still holds stock", order.status));
                }
                if net_charge != 0 {
                    violation(
                        "cancelled-no-charge",
                        id,
                        format!("{} order has a net charge of {net_charge}", order.status),
                    );
                }
            }
            status if !status.is_terminal() => {
                in_flight_charged += net_charge;
                let age =
                    chrono::DateTime::parse_from_rfc3339(&order.updated_at).map_or(0, |t| now_epoch - t.timestamp());
                in_flight.push(StuckOrder { order_id: id.to_owned(), status, age_seconds: age });
            }
            _ => {}
        }
    }
    for orphan in events.keys() {
        violation("event-without-order", orphan, "events exist for an unknown order".into());
    }
    for item in &snapshot.stock {
        let reserved = reserved_units.get(&item.sku).copied().unwrap_or(0);
        if item.initial != item.available + reserved {
            violation(
                "stock-conserved",
                &item.sku,
                format!("initial {} != available {} + reserved {reserved}", item.initial, item.available),
            );
        }
    }
    if charged.saturating_sub(refunded) != completed_total + in_flight_charged {
        violation(
            "money-conserved",
            "all orders",
            format!("charges {charged} - refunds {refunded} != completed totals {completed_total} + in-flight charges"),
        );
    }
    check_across_stores(snapshot, now_epoch, &mut violation);
    in_flight.sort_by_key(|s| std::cmp::Reverse(s.age_seconds));
    report.in_flight = in_flight;
    report.charged_cents = charged;
    report.refunded_cents = refunded;
    report.completed_total_cents = completed_total;
    report
}

/// How long after an order's last change a running execution of a terminal order counts as a violation: the
/// execution ends within moments of the write that finishes the order (its last state answers at once).
pub const SETTLE_SECONDS: i64 = 300;

/// The rules that read more than the order's own tables: the saga's executions, the saga slots, the ledger's
/// shipments and the idempotency keys. Each detail says what an operator should run.
fn check_across_stores(snapshot: &Snapshot, now_epoch: i64, violation: &mut impl FnMut(&'static str, &str, String)) {
    let age = |order: &nexus_core::domain::order::Order| {
        chrono::DateTime::parse_from_rfc3339(&order.updated_at).map_or(i64::MAX, |t| now_epoch - t.timestamp())
    };
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for order in &snapshot.orders {
        let id = order.order_id.as_str();
        if !order.idempotency_key.is_empty() {
            by_key.entry(order.idempotency_key.as_str()).or_default().push(id);
        }
        let execution = crate::retry::current_execution(order);
        if let (Some(executions), Some(name)) = (&snapshot.executions, &execution)
            && let Some(status) = executions.get(name)
        {
            if !order.status.is_terminal() && status.has_ended() {
                violation(
                    "execution-ended-order-open",
                    id,
                    format!(
                        "execution {name} is {} but the order is {}: run `nexus retry {id}`",
                        status.as_str(),
                        order.status
                    ),
                );
            }
            if order.status.is_terminal() && !status.has_ended() && age(order) > SETTLE_SECONDS {
                violation(
                    "execution-running-order-terminal",
                    id,
                    format!(
                        "execution {name} still runs {} s after the order became {}: look at it with `nexus timeline {id}`",
                        age(order),
                        order.status
                    ),
                );
            }
        }
        if matches!(order.status, OrderStatus::Cancelled | OrderStatus::Rejected) {
            let dispatched = snapshot
                .ledger
                .iter()
                .any(|e| e.order_id == order.order_id && e.effect() == Some(Effect::Shipment) && e.holds());
            if dispatched {
                violation(
                    "cancelled-no-shipment",
                    id,
                    format!("{} order has a dispatched shipment: `nexus timeline {id}`", order.status),
                );
            }
        }
    }
    if let Some(holders) = &snapshot.saga_slot_holders {
        for holder in holders {
            match snapshot.orders.iter().find(|o| &o.order_id == holder) {
                Some(order) if !order.status.is_terminal() => {}
                found => violation(
                    "saga-slot-freed",
                    holder,
                    format!(
                        "holds a standard saga slot, but {}: the slot is lost to the lane until it is freed",
                        found.map_or("no such order exists".to_owned(), |o| format!("its saga ended ({})", o.status))
                    ),
                ),
            }
        }
    }
    // Every event notified, once it has had time to be: a written status change whose publish was lost.
    let notified: std::collections::HashSet<(&str, &str)> =
        snapshot.ledger.iter().map(|e| (e.order_id.as_str(), e.entry.as_str())).collect();
    let mut unnotified: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for event in &snapshot.events {
        let key = LedgerEntry::notification_key(&event.event_id);
        let settled = chrono::DateTime::parse_from_rfc3339(&event.at)
            .is_ok_and(|t| now_epoch.saturating_sub(t.timestamp()) > SETTLE_SECONDS);
        if settled && !notified.contains(&(event.order_id.as_str(), key.as_str())) {
            unnotified.entry(event.order_id.as_str()).or_default().push(event.sequence);
        }
    }
    for (order_id, sequences) in unnotified {
        violation(
            "event-not-notified",
            order_id,
            format!("events {sequences:?} were written but never notified: run `nexus republish {order_id}`"),
        );
    }
    for (key, orders) in by_key.iter().filter(|(_, orders)| orders.len() > 1) {
        violation("one-order-per-key", key, format!("idempotency key names {} orders: {orders:?}", orders.len()));
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::domain::checkout::LineItem;
    use nexus_core::domain::ledger::{EffectState, ReservedLine};
    use nexus_core::domain::order::Order;
    use nexus_core::domain::stock::StockItem;

    use super::*;

    fn order(id: &str, status: OrderStatus, version: u64, total: u64) -> Order {
        Order {
            order_id: id.into(),
            status,
            version,
            total_cents: total,
            items: vec![LineItem { sku: "A".into(), quantity: 2, unit_price_cents: total / 2 }],
            updated_at: "2026-11-24T10:00:00.000Z".into(),
            ..Order::default()
        }
    }

    fn events(id: &str, statuses: &[OrderStatus]) -> Vec<OrderEvent> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, status)| {
                let mut o = order(id, *status, i as u64 + 1, 0);
                o.updated_at = String::new();
                o.event(None)
            })
            .collect()
    }

    fn entry(id: &str, effect: Effect, state: EffectState, amount: u64) -> LedgerEntry {
        LedgerEntry {
            order_id: id.into(),
            entry: effect.entry_key(1),
            state,
            amount_cents: amount,
            lines: vec![ReservedLine { sku: "A".into(), quantity: 2 }],
            ..LedgerEntry::default()
        }
    }

    fn clean() -> Snapshot {
        use OrderStatus::*;
        let mut snapshot = Snapshot {
            orders: vec![order("done", Completed, 5, 100), order("cancelled", Cancelled, 4, 100)],
            stock: vec![StockItem { sku: "A".into(), available: 8, initial: 10, unit_price_cents: Some(50) }],
            ledger: vec![
                entry("done", Effect::Reservation, EffectState::Reserved, 0),
                entry("done", Effect::Payment, EffectState::Charged, 100),
                entry("cancelled", Effect::Reservation, EffectState::Released, 0),
                entry("cancelled", Effect::Payment, EffectState::Refunded, 100),
            ],
            ..Snapshot::default()
        };
        snapshot.events.extend(events("done", &[Pending, InventoryReserved, PaymentCharged, Shipped, Completed]));
        snapshot.events.extend(events("cancelled", &[Pending, InventoryReserved, Compensating, Cancelled]));
        snapshot
    }

    #[test]
    fn a_consistent_state_is_clean() {
        let report = check(&clean(), 0);
        assert!(report.is_clean(), "{:?}", report.violations);
        assert_eq!((report.charged_cents, report.refunded_cents, report.completed_total_cents), (200, 100, 100));
    }

    fn rules(snapshot: &Snapshot) -> Vec<&'static str> {
        check(snapshot, 0).violations.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn oversold_or_leaked_stock_is_caught() {
        let mut snapshot = clean();
        snapshot.stock[0].available = 9;
        assert_eq!(rules(&snapshot), ["stock-conserved"]);
    }

    #[test]
    fn a_total_that_is_not_its_lines_is_caught() {
        let mut snapshot = clean();
        snapshot.orders[0].items[0].unit_price_cents = 1;
        assert_eq!(rules(&snapshot), ["order-total"]);
        snapshot.orders[0].items[0] = LineItem { sku: "A".into(), quantity: u32::MAX, unit_price_cents: u64::MAX };
        assert_eq!(rules(&snapshot), ["order-total"], "a sum that overflows");
    }

    #[test]
    fn a_cancelled_order_holding_stock_or_money_is_caught() {
        let mut snapshot = clean();
        snapshot.ledger[2].state = EffectState::Reserved;
        snapshot.ledger[3].state = EffectState::Charged;
        let found = rules(&snapshot);
        for rule in ["cancelled-no-reservation", "cancelled-no-charge", "stock-conserved", "money-conserved"] {
            assert!(found.contains(&rule), "{rule} in {found:?}");
        }
    }

    #[test]
    fn timeline_gaps_and_illegal_transitions_are_caught() {
        let mut snapshot = clean();
        snapshot.events.retain(|e| !(e.order_id == "done" && e.sequence == 3));
        assert!(rules(&snapshot).contains(&"timeline-gap-free"));
        let mut snapshot = clean();
        snapshot
            .events
            .iter_mut()
            .filter(|e| e.order_id == "done" && e.sequence == 2)
            .for_each(|e| e.status = OrderStatus::Shipped);
        assert!(rules(&snapshot).contains(&"timeline-legal"));
    }

    #[test]
    fn in_flight_orders_are_reported_with_their_age_not_as_violations() {
        let mut snapshot = clean();
        snapshot.orders.push(order("busy", OrderStatus::Pending, 1, 100));
        snapshot.events.extend(events("busy", &[OrderStatus::Pending]));
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:01:00Z").expect("time").timestamp();
        let report = check(&snapshot, now);
        assert!(report.is_clean(), "{:?}", report.violations);
        assert_eq!(
            report.in_flight,
            [StuckOrder { order_id: "busy".into(), status: OrderStatus::Pending, age_seconds: 60 }]
        );
    }

    #[test]
    fn a_retried_order_is_judged_over_all_its_attempts() {
        use OrderStatus::*;
        let mut snapshot = clean();
        // "cancelled" was retried as attempt 2 and completed: attempt 1's effects undone, attempt 2's hold.
        let retried = &mut snapshot.orders[1];
        (retried.status, retried.version, retried.attempt) = (Completed, 9, 2);
        snapshot.stock[0].available = 6;
        let second = |effect: Effect, state, amount| LedgerEntry {
            entry: effect.entry_key(2),
            ..entry("cancelled", effect, state, amount)
        };
        snapshot.ledger.push(second(Effect::Reservation, EffectState::Reserved, 0));
        snapshot.ledger.push(second(Effect::Payment, EffectState::Charged, 100));
        let mut attempt_two = events("cancelled", &[Pending, InventoryReserved, PaymentCharged, Shipped, Completed]);
        for (i, event) in attempt_two.iter_mut().enumerate() {
            (event.sequence, event.attempt) = (5 + i as u64, 2);
        }
        snapshot.events.retain(|e| !(e.order_id == "cancelled" && e.sequence > 4));
        snapshot.events.extend(attempt_two);
        let report = check(&snapshot, 0);
        assert!(report.is_clean(), "{:?}", report.violations);
        assert_eq!(report.completed_total_cents, 200);

        // Both attempts holding their charge at once is a double charge, whatever each attempt's status.
        let mut double = snapshot.clone();
        double.ledger[3].state = EffectState::Charged;
        assert!(rules(&double).contains(&"one-attempt-holds"), "{:?}", rules(&double));
        // A new attempt that does not come from an operator's retry of a cancelled order.
        let mut sneaky = snapshot.clone();
        sneaky.events.iter_mut().filter(|e| e.order_id == "cancelled" && e.sequence == 3).for_each(|e| e.attempt = 2);
        assert!(rules(&sneaky).contains(&"timeline-attempts"), "{:?}", rules(&sneaky));
    }
}
