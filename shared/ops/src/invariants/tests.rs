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
