//! What the dashboard shows, computed from what the sampler read: pure functions over orders and events,
//! so every figure on the page is tested without a stack.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use serde::Serialize;

use crate::render;

/// The throughput chart: the last 15 minutes in one-minute buckets.
pub const BUCKETS: usize = 15;
pub const BUCKET_SECONDS: i64 = 60;
/// The newest orders listed.
pub const NEWEST: usize = 25;

/// Orders submitted, completed and cancelled (by reason) per minute, oldest bucket first; a bucket holds
/// the orders created (submitted) or ended (updated into the status) in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    /// Epoch seconds at which the first bucket starts.
    pub start: i64,
    pub bucket_seconds: i64,
    pub submitted: Vec<u64>,
    pub completed: Vec<u64>,
    pub cancelled: BTreeMap<String, Vec<u64>>,
}

/// One row of the newest orders: no customer data (the detail view shows the email's hash only).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRow {
    pub order_id: String,
    pub lane: &'static str,
    pub status: OrderStatus,
    pub reason: Option<String>,
    pub total_cents: u64,
    pub currency: String,
    pub attempt: u32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrdersView {
    /// Orders read (at most the sampler's bound).
    pub total: usize,
    /// More orders exist than were read: the counts cover the ones read.
    pub truncated: bool,
    pub by_status: BTreeMap<String, usize>,
    /// Lane → status → count.
    pub by_lane: BTreeMap<&'static str, BTreeMap<String, usize>>,
    pub throughput: Throughput,
    pub newest: Vec<OrderRow>,
}

/// Counts, throughput and the newest orders of what was read.
pub fn orders_view(orders: &[Order], truncated: bool, now: DateTime<Utc>) -> OrdersView {
    let mut view = OrdersView { total: orders.len(), truncated, ..OrdersView::default() };
    let start = (now.timestamp() / BUCKET_SECONDS - (BUCKETS as i64 - 1)) * BUCKET_SECONDS;
    let bucket = |text: &str| -> Option<usize> {
        let at = render::parse_time(text)?.timestamp();
        let index = (at - start).div_euclid(BUCKET_SECONDS);
        usize::try_from(index).ok().filter(|i| *i < BUCKETS)
    };
    let mut throughput = Throughput {
        start,
        bucket_seconds: BUCKET_SECONDS,
        submitted: vec![0; BUCKETS],
        completed: vec![0; BUCKETS],
        cancelled: BTreeMap::new(),
    };
    for order in orders {
        *view.by_status.entry(order.status.to_string()).or_default() += 1;
        *view.by_lane.entry(order.tier.as_str()).or_default().entry(order.status.to_string()).or_default() += 1;
        if let Some(i) = bucket(&order.created_at) {
            throughput.submitted[i] += 1;
        }
        let Some(i) = bucket(&order.updated_at) else { continue };
        match order.status {
            OrderStatus::Completed => throughput.completed[i] += 1,
            OrderStatus::Cancelled => {
                let reason = order.reason.clone().unwrap_or_else(|| "unknown".into());
                throughput.cancelled.entry(reason).or_insert_with(|| vec![0; BUCKETS])[i] += 1;
            }
            _ => {}
        }
    }
    view.throughput = throughput;
    let mut newest: Vec<&Order> = orders.iter().collect();
    newest.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.order_id.cmp(&b.order_id)));
    view.newest = newest.into_iter().take(NEWEST).map(row).collect();
    view
}

fn row(order: &Order) -> OrderRow {
    OrderRow {
        order_id: order.order_id.clone(),
        lane: order.tier.as_str(),
        status: order.status,
        reason: order.reason.clone(),
        total_cents: order.total_cents,
        currency: order.currency.clone(),
        attempt: order.attempt,
        created_at: order.created_at.clone(),
        updated_at: order.updated_at.clone(),
    }
}

/// Latency of one saga step: how long orders spent before entering `step` (as the `StepLatency` metric
/// measures it: from the previous event to this one).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepLatency {
    pub step: OrderStatus,
    pub count: usize,
    pub p50_ms: i64,
    pub p95_ms: i64,
}

/// Per-step latency over the given orders' timelines (each a list of events in sequence order).
pub fn step_latencies<'a>(timelines: impl IntoIterator<Item = &'a [OrderEvent]>) -> Vec<StepLatency> {
    let mut samples: BTreeMap<OrderStatus, Vec<i64>> = BTreeMap::new();
    for events in timelines {
        for pair in events.windows(2) {
            let (Some(from), Some(to)) = (render::parse_time(&pair[0].at), render::parse_time(&pair[1].at)) else {
                continue;
            };
            samples.entry(pair[1].status).or_default().push((to - from).num_milliseconds().max(0));
        }
    }
    // In saga order (the order statuses are declared in), not alphabetically.
    let mut steps: Vec<StepLatency> = samples
        .into_iter()
        .map(|(step, mut ms)| {
            ms.sort_unstable();
            StepLatency { step, count: ms.len(), p50_ms: percentile(&ms, 50), p95_ms: percentile(&ms, 95) }
        })
        .collect();
    steps.sort_by_key(|s| OrderStatus::ALL.iter().position(|x| *x == s.step));
    steps
}

/// Nearest-rank percentile of sorted samples (0 when there are none).
fn percentile(sorted: &[i64], p: usize) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use nexus_core::domain::checkout::Tier;

    use super::*;

    fn at(now: DateTime<Utc>, seconds_ago: i64) -> String {
        (now - chrono::Duration::seconds(seconds_ago)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    fn order(id: &str, status: OrderStatus, reason: Option<&str>, created: String, updated: String) -> Order {
        Order {
            order_id: id.into(),
            status,
            reason: reason.map(Into::into),
            created_at: created,
            updated_at: updated,
            customer_email: "secret@example.com".into(),
            ..Order::default()
        }
    }

    #[test]
    fn throughput_counts_each_order_in_the_minute_it_was_submitted_and_ended() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 30).single().expect("a time");
        let orders = [
            order("a", OrderStatus::Completed, None, at(now, 200), at(now, 10)),
            order("b", OrderStatus::Cancelled, Some("Payment.Declined"), at(now, 20), at(now, 5)),
            order("c", OrderStatus::Cancelled, Some("Shipping.NoCourier"), at(now, 3600), at(now, 3000)),
            order("d", OrderStatus::Pending, None, at(now, 1), at(now, 1)),
        ];
        let view = orders_view(&orders, false, now);
        let last = BUCKETS - 1;
        assert_eq!(view.throughput.submitted[last], 2, "b and d this minute");
        assert_eq!(view.throughput.submitted.iter().sum::<u64>(), 3, "c was submitted an hour ago");
        assert_eq!(view.throughput.submitted[last - 3], 1, "a, 200 s before 12:00:30, in the 11:57 bucket");
        assert_eq!(view.throughput.completed[last], 1);
        assert_eq!(
            view.throughput.cancelled.get("Payment.Declined"),
            Some(&{
                let mut v = vec![0; BUCKETS];
                v[last] = 1;
                v
            })
        );
        assert!(!view.throughput.cancelled.contains_key("Shipping.NoCourier"), "ended long ago: off the chart");
        assert_eq!(view.throughput.start, now.timestamp() - 30 - 14 * 60);
        assert_eq!(view.by_status.get("CANCELLED"), Some(&2));
        assert_eq!(view.by_lane[Tier::Standard.as_str()].values().sum::<usize>(), 4);
    }

    #[test]
    fn the_newest_orders_come_first_and_carry_no_customer_data() {
        let now = Utc::now();
        let orders: Vec<Order> = (0..40)
            .map(|i| order(&format!("o{i:02}"), OrderStatus::Pending, None, at(now, 100 - i), at(now, 0)))
            .collect();
        let view = orders_view(&orders, true, now);
        assert_eq!(view.newest.len(), NEWEST);
        assert_eq!(view.newest[0].order_id, "o39");
        assert!(view.truncated);
        let page = serde_json::to_string(&view).expect("serialise");
        assert!(!page.contains("secret@example.com"), "no email on the page");
    }

    fn event(sequence: u64, status: OrderStatus, at: String) -> OrderEvent {
        OrderEvent {
            schema_version: 1,
            event_id: format!("e{sequence}"),
            order_id: "o".into(),
            sequence,
            status,
            previous_status: None,
            reason: None,
            correlation_id: "c".into(),
            execution_arn: None,
            attempt: 1,
            at,
        }
    }

    #[test]
    fn step_latency_is_the_time_since_the_previous_event_in_saga_order() {
        let now = Utc::now();
        let timelines: Vec<Vec<OrderEvent>> = (0..20)
            .map(|i| {
                vec![
                    event(1, OrderStatus::Pending, at(now, 100)),
                    event(2, OrderStatus::InventoryReserved, at(now, 100 - (i + 1))),
                    event(3, OrderStatus::Completed, at(now, 10)),
                ]
            })
            .collect();
        let steps = step_latencies(timelines.iter().map(Vec::as_slice));
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].step, OrderStatus::InventoryReserved, "saga order, not alphabetical");
        assert_eq!(steps[0].count, 20);
        assert_eq!(steps[0].p50_ms, 10_000);
        assert_eq!(steps[0].p95_ms, 19_000);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 95), 7);
    }
}
