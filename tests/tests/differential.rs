//! The simulation held to reality (docs/simulation.md): the same orders, run in `nexus-sim` and on the local
//! stack, end the same: each order's status and reason, its status changes, its effects in the ledger, and
//! the stock. Happy (both lanes), each refusal, both rejections, and a resubmission. (An execution stopped
//! mid-saga ends by where the stop lands, which on the stack is a matter of milliseconds: its tests are in
//! `guarantees.rs` and `cli/tests/verbs.rs`.)

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_core::domain::ids;
use nexus_core::ports::{EventLog, OrderStore};
use nexus_sim::differential::{self, Summary};
use nexus_sim::template::Topology;
use nexus_tests::shop::Shop;
use serde_json::{Value, json};

const STACK: &str = "NEXUS_MAIN_STACK";

#[tokio::test]
async fn the_simulation_and_the_local_stack_end_the_same() {
    let shop = Shop::open(STACK).await;
    let (plenty, scarce) = (shop.sku("diff-plenty", 20).await, shop.sku("diff-scarce", 1).await);
    let body = |i: usize, change: &dyn Fn(&mut Value)| {
        let mut body = nexus_testkit::sample_submission(&format!("{}diff-{i}", shop.run));
        body["items"] = json!([{"sku": plenty, "quantity": 2, "unitPriceCents": 1999}]);
        change(&mut body);
        body
    };
    let submissions = [
        body(0, &|_| {}),
        body(1, &|b| b["payment"]["token"] = json!("tok_decline")),
        body(2, &|b| b["shippingAddress"]["postalCode"] = json!("00000")),
        body(3, &|b| b["items"][0]["sku"] = json!(scarce)),
        body(4, &|b| b["items"][0]["sku"] = json!("SKU-404")),
        body(5, &|b| b["items"][0]["quantity"] = json!(0)),
        body(6, &|b| b["tier"] = json!("VIP")),
        body(0, &|_| {}),
    ];

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let topology = Topology::load(&root).expect("template.yaml reads");
    let stock = [(plenty.clone(), 20), (scarce.clone(), 1)];
    let (simulated, simulated_stock) = differential::run(&topology, &stock, &submissions).expect("simulated");

    let mut real = Vec::new();
    for submission in &submissions {
        real.push(run_on_the_stack(&shop, submission).await);
    }
    for (index, (simulated, real)) in simulated.iter().zip(&real).enumerate() {
        assert_eq!(simulated, real, "order {index} ends the same");
    }
    let real_stock: BTreeMap<String, u64> =
        [(plenty.clone(), shop.stock(&plenty).await.available), (scarce.clone(), shop.stock(&scarce).await.available)]
            .into();
    assert_eq!(simulated_stock, real_stock, "the stock ends the same");
    assert_eq!(simulated[0].status, "COMPLETED", "the set is what it means to be: {simulated:#?}");
}

/// Publishes the submission, waits for its order to end, and reads its summary.
async fn run_on_the_stack(shop: &Shop, submission: &Value) -> Summary {
    let key = submission["idempotencyKey"].as_str().expect("a key").to_owned();
    let order_id = ids::order_id_for_key(&key);
    let sns = aws_sdk_sns::Client::new(&shop.stack.config);
    sns.publish()
        .topic_arn(shop.stack.output("OrdersTopicArn"))
        .message(submission.to_string())
        .send()
        .await
        .expect("publish");
    let order = shop.wait_all_terminal_within(std::slice::from_ref(&order_id), Duration::from_secs(180)).await;
    let events = shop.store.events(&order_id).await.expect("events");
    let ledger = shop.store.ledger(&order_id).await.expect("ledger");
    let order = shop.store.get(&order_id).await.expect("get").unwrap_or_else(|| order[0].clone());
    differential::summarize(&order, &events, &ledger)
}
