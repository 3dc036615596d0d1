//! The invariant checker: over all orders and tables, the guarantees Nexus makes (no lost order, no
//! oversold unit, no double or orphaned charge, gap-free timelines). Pure: it checks a [`Snapshot`]
//! ([`crate::snapshot::load`] reads one from a deployed stack). Each rule reads one place: an order's own
//! timeline (`timeline`), the stock and money books over every order (`books`), and the stores beyond the
//! order's own tables: executions, slots, notifications, idempotency keys (`across_stores`).

mod across_stores;
mod books;
mod timeline;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use nexus_core::domain::checkout;
use nexus_core::domain::ledger::{Effect, LedgerEntry};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::status::OrderStatus;

pub use crate::snapshot::Snapshot;
pub use across_stores::SETTLE_SECONDS;

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

/// How each rule reports what it finds: the rule's name, its subject (an order id, a SKU, a key) and what
/// an operator should know.
type Found<'a> = dyn FnMut(&'static str, &str, String) + 'a;

/// Checks the snapshot. `now_epoch` dates the in-flight orders.
pub fn check(snapshot: &Snapshot, now_epoch: i64) -> Report {
    let mut report = Report { orders: snapshot.orders.len(), ..Report::default() };
    let mut violations = Vec::new();
    let mut violation = |rule: &'static str, subject: &str, detail: String| {
        violations.push(Violation { rule, subject: subject.to_owned(), detail });
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
    let mut books = books::Books::default();
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
        timeline::check(order, events.remove(id).unwrap_or_default(), &mut violation);
        let entries = |effect: Effect| ledger.get(&(id, effect)).map_or(&[][..], Vec::as_slice);
        books.add(order, entries, &mut violation);
        if !order.status.is_terminal() {
            let age = chrono::DateTime::parse_from_rfc3339(&order.updated_at).map_or(0, |t| now_epoch - t.timestamp());
            in_flight.push(StuckOrder { order_id: id.to_owned(), status: order.status, age_seconds: age });
        }
    }
    for orphan in events.keys() {
        violation("event-without-order", orphan, "events exist for an unknown order".into());
    }
    books.close(&snapshot.stock, &mut violation);
    across_stores::check(snapshot, now_epoch, &mut violation);

    in_flight.sort_by_key(|s| std::cmp::Reverse(s.age_seconds));
    report.in_flight = in_flight;
    report.violations = violations;
    (report.charged_cents, report.refunded_cents, report.completed_total_cents) =
        (books.charged, books.refunded, books.completed_total);
    report
}

#[cfg(test)]
mod tests;
