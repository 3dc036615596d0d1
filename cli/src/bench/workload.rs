//! The orders a bench run submits: happy orders (the contract's sample, one unit of a plentiful SKU) and a
//! mixed workload of the chaos test's shapes without its faults (tiers, one to three lines, a scarce SKU,
//! declined payments, unserved postal codes, unknown SKUs, malformed lines, resubmissions).

use nexus_aws::dynamo::catalog::CustomerRecord;
use nexus_core::domain::checkout::Tier;
use serde_json::{Value, json};

/// The contract's sample order (docs/architecture.md §3, examples/order.json).
const SAMPLE: &str = include_str!("../../../examples/order.json");

/// One submission: its order id (the bench names every order) and the message published.
#[derive(Debug, Clone)]
pub struct Submission {
    pub order_id: String,
    pub message: Value,
}

pub fn sample() -> anyhow::Result<Value> {
    Ok(serde_json::from_str(SAMPLE)?)
}

pub fn happy(sample: &Value, run: &str, count: usize, sku: &str) -> Vec<Submission> {
    (1..=count)
        .map(|i| {
            let order_id = format!("{run}-{i}");
            let mut message = sample.clone();
            message["orderId"] = json!(order_id);
            message["idempotencyKey"] = json!(order_id);
            message["items"] = json!([{"sku": sku, "quantity": 1, "unitPriceCents": HAPPY_UNIT_PRICE_CENTS}]);
            Submission { order_id, message }
        })
        .collect()
}

/// The happy workload's unit price (its SKU's catalog price, which each order quotes).
pub const HAPPY_UNIT_PRICE_CENTS: u64 = 1999;

/// The mixed workload's SKUs, their stock and price: all plentiful but the first, which runs out (some
/// orders cancel for stock).
pub fn mixed_stock(prefix: &str) -> Vec<(String, u64, u64)> {
    (0..10).map(|i| (format!("SKU-{prefix}-{i}"), if i == 0 { 4 } else { 1_000_000 }, 500 * (i + 1))).collect()
}

/// The mixed workload's customers, `c-1` … `c-60`: the first half recorded VIP.
const CUSTOMERS: u32 = 60;

/// The records that make the first half of the mixed workload's customers VIP.
pub fn vip_customers() -> Vec<CustomerRecord> {
    (1..=CUSTOMERS / 2).map(|c| CustomerRecord { customer_id: format!("c-{c}"), tier: Tier::Vip }).collect()
}

/// `count` orders of the chaos test's shapes over `skus`, the same for the same seed; resubmissions come as a
/// second submission of the same order.
pub fn mixed(sample: &Value, run: &str, count: usize, skus: &[String], seed: u64) -> Vec<Submission> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut submissions = Vec::new();
    for i in 1..=count {
        let order_id = format!("{run}-{i}");
        let roll = rng.f64();
        let mut items: Vec<Value> = Vec::new();
        for _ in 0..rng.usize(1..=3) {
            let sku = &skus[rng.usize(..skus.len())];
            if !items.iter().any(|item| item["sku"] == json!(sku)) {
                items.push(json!({"sku": sku, "quantity": rng.u32(1..=2)}));
            }
        }
        let mut message = sample.clone();
        message["orderId"] = json!(order_id);
        message["idempotencyKey"] = json!(order_id);
        let customer = rng.u32(1..=CUSTOMERS);
        message["customerId"] = json!(format!("c-{customer}"));
        message["tier"] = json!(if customer <= CUSTOMERS / 2 { "VIP" } else { "STANDARD" });
        match roll {
            r if r < 0.08 => message["payment"]["token"] = json!("tok_decline"),
            r if r < 0.14 => message["shippingAddress"]["postalCode"] = json!("00000"),
            r if r < 0.17 => items[0]["sku"] = json!(format!("NOPE-{run}")),
            r if r < 0.20 => items[0]["quantity"] = json!(0),
            _ => {}
        }
        message["items"] = json!(items);
        let submission = Submission { order_id, message };
        if rng.f64() < 0.1 {
            submissions.push(submission.clone());
        }
        submissions.push(submission);
    }
    submissions
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use nexus_core::domain::submission;

    use super::*;

    #[test]
    fn happy_orders_are_valid_submissions_each_with_its_own_id() {
        let orders = happy(&sample().expect("test data"), "bench-1", 3, "SKU-X");
        assert_eq!(
            orders.iter().map(|o| o.order_id.as_str()).collect::<Vec<_>>(),
            ["bench-1-1", "bench-1-2", "bench-1-3"]
        );
        for order in &orders {
            let body = order.message.to_string();
            assert!(submission::validate(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn the_mixed_workload_mixes_the_shapes_and_resubmits_some() {
        let skus: Vec<String> = mixed_stock("b").into_iter().map(|(sku, _, _)| sku).collect();
        let orders = mixed(&sample().expect("test data"), "bench-1", 300, &skus, 7);
        let ids: BTreeSet<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(ids.len(), 300);
        assert!(orders.len() > 310, "about one in ten is submitted twice: {}", orders.len());
        let valid = orders.iter().filter(|o| submission::validate(o.message.to_string().as_bytes()).is_ok()).count();
        assert!(valid > 250 && valid < orders.len(), "{valid} of {} pass the contract's checks", orders.len());
        let count = |token: &str| orders.iter().filter(|o| o.message["payment"]["token"] == json!(token)).count();
        assert!(count("tok_decline") > 5);
        assert!(orders.iter().any(|o| o.message["tier"] == json!("VIP")));
        assert_eq!(
            mixed(&sample().expect("test data"), "bench-1", 300, &skus, 7).len(),
            orders.len(),
            "same seed, same orders"
        );
    }
}
