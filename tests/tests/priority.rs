//! The VIP lanes, end to end: a backlog of standard orders, then VIP orders interleaved with as many standard
//! control orders published at the same moment. The VIP orders finish well ahead of their controls (their
//! commands wait in no backlog), every standard order still completes (no starvation), and the invariant
//! checker finds nothing wrong. Compared with the controls, not with the backlog: the emulator serves a
//! backlog in no fair order.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use nexus_tests::shop::{Shop, count};

const STACK: &str = "NEXUS_MAIN_STACK";
/// Standard orders queued ahead of the measured ones.
const BACKLOG: usize = 60;
/// VIP orders, and as many standard controls.
const PAIRS: usize = 6;
/// How far ahead the VIP orders must finish: their median latency at most this share of the controls'.
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
    let backlog_published = Utc::now();
    let backlog = shop.submit_tiered("backlog", vec![(one(), Tier::Standard); BACKLOG], "452001").await;
    let published = Utc::now();
    let pairs: Vec<_> = (0..2 * PAIRS).map(|i| (one(), if i % 2 == 0 { Tier::Vip } else { Tier::Standard })).collect();
    let measured = shop.submit_tiered("pairs", pairs, "452001").await;

    let all: Vec<String> = backlog.iter().chain(&measured).cloned().collect();
    let orders = shop.wait_all_terminal_within(&all, Duration::from_secs(600)).await;
    assert_eq!(count(&orders, OrderStatus::Completed, None), all.len(), "every order completes, none starves");

    let latency = |ids: &[String], since| -> Vec<f64> {
        orders.iter().filter(|o| ids.contains(&o.order_id)).map(|o| seconds_since(o, since)).collect()
    };
    let vip: Vec<String> = measured.iter().step_by(2).cloned().collect();
    let controls: Vec<String> = measured.iter().skip(1).step_by(2).cloned().collect();
    let (vip, controls, backlog) =
        (latency(&vip, published), latency(&controls, published), latency(&backlog, backlog_published));
    for (name, values) in [("backlog", &backlog), ("VIP", &vip), ("controls", &controls)] {
        println!(
            "priority: {name:<8} {:>3} orders, latency p50 {:6.1} s, p95 {:6.1} s",
            values.len(),
            percentile(values, 0.5),
            percentile(values, 0.95)
        );
    }
    let (vip_p50, control_p50) = (percentile(&vip, 0.5), percentile(&controls, 0.5));
    assert!(
        vip_p50 <= MARGIN * control_p50,
        "VIP p50 {vip_p50:.1} s is not within {MARGIN} × the controls' p50 {control_p50:.1} s: {vip:?} vs {controls:?}"
    );

    let report = shop.verify(orders, std::slice::from_ref(&sku)).await;
    assert!(report.is_clean(), "{:#?}", report.violations);
}
