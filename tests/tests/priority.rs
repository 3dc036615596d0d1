//! The VIP lanes, end to end, on a stack with a bound of standard sagas in flight (`StandardSagaLimit`): a
//! backlog of standard orders, then VIP orders interleaved with as many standard control orders published
//! at the same moment. The VIP orders finish well ahead of their controls (their commands wait in no
//! backlog, and they share the state machine with at most the bound of standard sagas), every standard
//! order still completes (no starvation), every slot is freed, and the invariant checker finds nothing
//! wrong. Held against every standard order in flight when the VIP orders were published (the backlog and the
//! controls, timed from that moment), not against the controls alone: admission control serves waiting
//! orders in no fair order, and a control that arrives as a backlog saga ends takes its slot at once while
//! the backlog waits out its deferral.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use nexus_tests::shop::{Shop, count};

const STACK: &str = "NEXUS_PRIORITY_STACK";
/// VIP orders measured one at a time on the idle stack first.
const IDLE: usize = 3;
/// Standard orders queued ahead of the measured ones: 60 in `make test`, `make priority BACKLOG=…` more.
fn backlog_size() -> usize {
    std::env::var("NEXUS_PRIORITY_BACKLOG").ok().and_then(|n| n.parse().ok()).unwrap_or(60)
}
/// How far ahead the VIP orders must finish: their median latency at most this share of the standard orders'.
const MARGIN: f64 = 0.5;

fn seconds_since(order: &Order, published: DateTime<Utc>) -> f64 {
    let done = DateTime::parse_from_rfc3339(&order.updated_at).expect("a stored time").with_timezone(&Utc);
    (done - published).num_milliseconds() as f64 / 1000.0
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::test]
async fn vip_orders_overtake_a_standard_backlog_and_every_standard_order_still_completes() {
    let shop = Shop::open(STACK).await;
    let sku = shop.sku("priority", 10_000).await;
    let one = || vec![(sku.clone(), 1)];
    let (mut idle, mut idle_orders) = (Vec::new(), Vec::new());
    for i in 0..IDLE {
        let published = Utc::now();
        let id = shop.submit_tiered(&format!("idle-{i}"), vec![(one(), Tier::Vip)], "452001").await;
        let order = shop.wait_all_terminal_within(&id, Duration::from_secs(60)).await;
        idle.push(seconds_since(&order[0], published));
        idle_orders.extend(order);
    }
    let backlog_size = backlog_size();
    // VIP orders, and as many standard controls: 6, or one per 20 orders of backlog.
    let pairs = (backlog_size / 20).max(6);
    let backlog_published = Utc::now();
    let backlog = shop.submit_tiered("backlog", vec![(one(), Tier::Standard); backlog_size], "452001").await;
    let published = Utc::now();
    let pairs: Vec<_> = (0..2 * pairs).map(|i| (one(), if i % 2 == 0 { Tier::Vip } else { Tier::Standard })).collect();
    let measured = shop.submit_tiered("pairs", pairs, "452001").await;

    let all: Vec<String> = backlog.iter().chain(&measured).cloned().collect();
    let orders = shop.wait_all_terminal_within(&all, Duration::from_secs(300 + 2 * all.len() as u64)).await;
    assert_eq!(count(&orders, OrderStatus::Completed, None), all.len(), "every order completes, none starves");

    let latency = |ids: &[String], since| -> Vec<f64> {
        orders.iter().filter(|o| ids.contains(&o.order_id)).map(|o| seconds_since(o, since)).collect()
    };
    let vip: Vec<String> = measured.iter().step_by(2).cloned().collect();
    let controls: Vec<String> = measured.iter().skip(1).step_by(2).cloned().collect();
    let in_flight: Vec<String> = backlog.iter().chain(&controls).cloned().collect();
    let standard = latency(&in_flight, published);
    let (vip, controls, backlog) =
        (latency(&vip, published), latency(&controls, published), latency(&backlog, backlog_published));
    for (name, values) in [("idle VIP", &idle), ("backlog", &backlog), ("VIP", &vip), ("controls", &controls)] {
        println!(
            "priority: {name:<8} {:>3} orders, latency p50 {:6.1} s, p95 {:6.1} s",
            values.len(),
            percentile(values, 0.5),
            percentile(values, 0.95)
        );
    }
    let (vip_p50, standard_p50) = (percentile(&vip, 0.5), percentile(&standard, 0.5));
    assert!(
        vip_p50 <= MARGIN * standard_p50,
        "VIP p50 {vip_p50:.1} s is not within {MARGIN} × the standard orders' p50 {standard_p50:.1} s: {vip:?} vs \
         controls {controls:?}"
    );

    println!(
        "priority: VIP p95 / control p95 {:.2} (goal ≤ 0.3), VIP p95 / idle VIP p50 {:.2} (goal ≤ 2)",
        percentile(&vip, 0.95) / percentile(&controls, 0.95),
        percentile(&vip, 0.95) / percentile(&idle, 0.5)
    );

    let holders = shop.store.saga_slot_holders().await.expect("slots");
    assert!(holders.is_empty(), "every ended saga frees its slot; still held: {holders:?}");
    let report = shop.verify([orders, idle_orders].concat(), std::slice::from_ref(&sku)).await;
    assert!(report.is_clean(), "{:#?}", report.violations);
}
