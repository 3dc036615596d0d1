//! The simulation held to reality (docs/simulation.md): the same script, played in `nexus-sim` and on the
//! local stack, ends the same: each order's status and reason, its status changes, its effects in the
//! ledger, and the stock. Happy (both lanes), each refusal, both rejections, a resubmission, an order
//! through a payment outage, and an order whose execution the operator stopped in that outage and then
//! retried. The outages use the main stack's chaos settings, so `make test` runs this test on its own.

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_core::domain::status::OrderStatus;
use nexus_core::ports::{EventLog, OrderStore};
use nexus_ops::retry::EXECUTION_ENDED;
use nexus_sim::differential::{self, Act, AfterOutage, Summary};
use nexus_sim::template::Topology;
use nexus_tests::shop::{Shop, UNIT_PRICE_CENTS};
use serde_json::{Value, json};

const STACK: &str = "NEXUS_MAIN_STACK";

#[tokio::test]
async fn the_simulation_and_the_local_stack_end_the_same() {
    let shop = Shop::open(STACK).await;
    let (plenty, scarce) = (shop.sku("diff-plenty", 20).await, shop.sku("diff-scarce", 1).await);
    let body = |i: usize, change: &dyn Fn(&mut Value)| {
        let mut body = nexus_testkit::sample_submission(&format!("{}diff-{i}", shop.run));
        body["items"] = json!([{"sku": plenty, "quantity": 2, "unitPriceCents": UNIT_PRICE_CENTS}]);
        change(&mut body);
        body
    };
    let acts = [
        Act::Submit(body(0, &|_| {})),
        Act::Submit(body(1, &|b| b["payment"]["token"] = json!("tok_decline"))),
        Act::Submit(body(2, &|b| b["shippingAddress"]["postalCode"] = json!("00000"))),
        Act::Submit(body(3, &|b| b["items"][0]["sku"] = json!(scarce))),
        Act::Submit(body(4, &|b| b["items"][0]["sku"] = json!("SKU-404"))),
        Act::Submit(body(5, &|b| b["items"][0]["quantity"] = json!(0))),
        Act::Submit(body(6, &|b| b["customerId"] = json!(shop.vip_customer()))),
        Act::Submit(body(0, &|_| {})),
        Act::PaymentDown(body(7, &|_| {}), AfterOutage::Recover),
        Act::PaymentDown(body(8, &|_| {}), AfterOutage::StopThenRetry),
    ];

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let topology = Topology::load(&root).expect("template.yaml reads");
    let stock = [(plenty.clone(), 20, UNIT_PRICE_CENTS), (scarce.clone(), 1, UNIT_PRICE_CENTS)];
    let vip = [shop.vip_customer()];
    let (simulated, simulated_stock) = differential::run(&topology, &stock, &vip, &acts).expect("simulated");

    let mut real = Vec::new();
    for act in &acts {
        real.push(play_on_the_stack(&shop, act).await);
    }
    for (index, (simulated, real)) in simulated.iter().zip(&real).enumerate() {
        assert_eq!(simulated, real, "order {index} ends the same");
    }
    let real_stock: BTreeMap<String, u64> =
        [(plenty.clone(), shop.stock(&plenty).await.available), (scarce.clone(), shop.stock(&scarce).await.available)]
            .into();
    assert_eq!(simulated_stock, real_stock, "the stock ends the same");
    let statuses: Vec<(&str, Option<&str>)> =
        simulated.iter().map(|s| (s.status.as_str(), s.reason.as_deref())).collect();
    assert_eq!(statuses[0], ("COMPLETED", None), "the script is what it means to be: {simulated:#?}");
    assert_eq!(statuses[8], ("COMPLETED", None), "through the outage: {simulated:#?}");
    assert_eq!(statuses[9], ("CANCELLED", Some(EXECUTION_ENDED)), "stopped, then retried: {simulated:#?}");
    assert!(simulated[8].changes.len() > 2 && simulated[9].effects.values().any(|e| e.contains("Released")));
}

/// Plays one act: publishes its submission (in an outage if it says so), waits for its order to end, and
/// reads its summary.
async fn play_on_the_stack(shop: &Shop, act: &Act) -> Summary {
    let order_id = act.order_id();
    if let Act::PaymentDown(..) = act {
        shop.outage(&["payment"]).await;
    }
    let sns = aws_sdk_sns::Client::new(&shop.stack.config);
    sns.publish()
        .topic_arn(shop.stack.output("OrdersTopicArn"))
        .message(act.submission().to_string())
        .send()
        .await
        .expect("publish");
    if let Act::PaymentDown(_, after) = act {
        // Reserved, and the charge failed at least once.
        let reserved = nexus_tests::eventually_every(Duration::from_millis(500), Duration::from_secs(120), || async {
            let order = shop.store.get(&order_id).await.ok()??;
            (order.status == OrderStatus::InventoryReserved).then_some(order)
        })
        .await
        .expect("the order reserves while payment is down");
        tokio::time::sleep(Duration::from_secs(3)).await;
        if *after == AfterOutage::StopThenRetry {
            let sfn = aws_sdk_sfn::Client::new(&shop.stack.config);
            let arn = reserved.execution_arn.expect("an execution");
            nexus_tests::stop_execution_once_started(&sfn, &arn).await;
        }
        shop.outage(&[]).await;
        if *after == AfterOutage::StopThenRetry {
            shop.operator_retry(&order_id).await;
        }
    }
    let order = shop.wait_all_terminal_within(std::slice::from_ref(&order_id), Duration::from_secs(180)).await;
    let events = shop.store.events(&order_id).await.expect("events");
    let ledger = shop.store.ledger(&order_id).await.expect("ledger");
    let order = shop.store.get(&order_id).await.expect("get").unwrap_or_else(|| order[0].clone());
    differential::summarize(&order, &events, &ledger)
}
