//! The rules that read more than the order's own tables: the saga's executions, the saga slots, the ledger's
//! shipments and notifications, and the idempotency keys. Each detail says what an operator should run.

use std::collections::BTreeMap;

use nexus_core::domain::ledger::{Effect, LedgerEntry};
use nexus_core::domain::status::OrderStatus;

use super::{Found, Snapshot};

/// How long after an order's last change a running execution of a terminal order counts as a violation: the
/// execution ends within moments of the write that finishes the order (the task that wrote it ends the
/// execution as it answers).
pub const SETTLE_SECONDS: i64 = 300;

pub(super) fn check(snapshot: &Snapshot, now_epoch: i64, violation: &mut Found<'_>) {
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
