//! The guarantees under contention, on the local stack: optimistic concurrency loses no update and writes no
//! illegal transition; concurrent orders never oversell; overlapping multi-item orders never end with a
//! partial reservation; and the invariant checker finds nothing wrong afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nexus_core::chaos::{ChaosSettings, ServiceChaos};
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::ledger::{Effect, EffectState};
use nexus_core::domain::order::Order;
use nexus_core::domain::saga_error::SagaError;
use nexus_core::domain::status::OrderStatus;
use nexus_core::ports::{CreateOutcome, EventLog, OrderStore, PortError, SagaStarter};
use nexus_core::services::advance;
use nexus_testkit::Memory;
use nexus_tests::shop::{Shop, count};
use nexus_tests::{LocalStack, json_lines, read_log_group, run_id};

const STACK: &str = "NEXUS_MAIN_STACK";

/// Two writers that read the same version race to change the order: DynamoDB's condition refuses the
/// second, and `advance` re-reads and re-decides (a transition no longer legal is refused, not forced).
/// The interleaving is driven step by step, so this runs the same way every time; the next test races.
#[tokio::test]
async fn conflicting_updates_lose_nothing_and_stay_legal() {
    let stack = LocalStack::connect(STACK).await;
    let store = stack.dynamo();
    let order_id = format!("conc-{}", run_id());
    let order = Order { order_id: order_id.clone(), version: 1, correlation_id: order_id.clone(), ..Order::default() };
    assert_eq!(store.create(&order, &order.event(None)).await.expect("create"), CreateOutcome::Created);

    // Both writers read version 1.
    let stale = store.get(&order_id).await.expect("get").expect("order");
    let (reserved, reserved_event) = stale.advanced(OrderStatus::InventoryReserved, None, "t1");
    let (cancelled, cancelled_event) = stale.advanced(OrderStatus::Cancelled, Some("late".into()), "t2");
    store.transition(&stale, &reserved, &reserved_event).await.expect("first writer wins");
    let second = store.transition(&stale, &cancelled, &cancelled_event).await;
    assert!(matches!(second, Err(PortError::Conflict { .. })), "the stale writer is refused: {second:?}");

    // The loser re-reads: CANCELLED is not legal from INVENTORY_RESERVED any more, so nothing is written.
    let retried =
        advance(&store, &Memory::default(), (&order_id, 1), OrderStatus::Cancelled, None).await.expect("advance");
    assert_eq!(retried.expect_err("refused").status, OrderStatus::InventoryReserved);
    // A legal change made from a stale read goes through after its re-read.
    let compensating =
        advance(&store, &Memory::default(), (&order_id, 1), OrderStatus::Compensating, None).await.expect("advance");
    assert_eq!(compensating.expect("applied").version, 3);

    let events = store.events(&order_id).await.expect("events");
    let statuses: Vec<OrderStatus> = events.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [OrderStatus::Pending, OrderStatus::InventoryReserved, OrderStatus::Compensating]);
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3], "one event per version, no gap, nothing lost");
}

#[tokio::test]
async fn concurrent_conflicting_updates_lose_nothing_and_stay_legal() {
    let stack = LocalStack::connect(STACK).await;
    let store = stack.dynamo();
    let order_id = format!("conc-{}", run_id());
    let order = Order { order_id: order_id.clone(), version: 1, correlation_id: order_id.clone(), ..Order::default() };
    assert_eq!(store.create(&order, &order.event(None)).await.expect("create"), CreateOutcome::Created);

    let targets = [
        OrderStatus::InventoryReserved,
        OrderStatus::Compensating,
        OrderStatus::PaymentCharged,
        OrderStatus::Cancelled,
    ];
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let order_id = order_id.clone();
        let to = targets[i % targets.len()];
        tasks.push(tokio::spawn(
            async move { (to, advance(&store, &Memory::default(), (&order_id, 1), to, None).await) },
        ));
    }
    let mut applied = BTreeSet::new();
    for task in tasks {
        let (to, result) = task.await.expect("task");
        match result.expect("no transient failure") {
            Ok(order) => {
                assert_eq!(order.status, to);
                applied.insert(to);
            }
            Err(order) => assert!(!order.status.can_become(to), "refused only when illegal"),
        }
    }
    let final_order = store.get(&order_id).await.expect("get").expect("order");
    let events = store.events(&order_id).await.expect("events");
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=final_order.version).collect::<Vec<_>>(), "one event per version, no gap");
    for pair in events.windows(2) {
        assert!(pair[0].status.can_become(pair[1].status), "{} -> {}", pair[0].status, pair[1].status);
    }
    let logged: BTreeSet<OrderStatus> = events.iter().map(|e| e.status).collect();
    assert!(applied.is_subset(&logged), "every applied update is in the log: {applied:?} vs {logged:?}");
    assert!(final_order.status.is_terminal() || applied.len() > 1, "the contention really happened");
    println!("concurrent updates applied {applied:?}, final {} at version {}", final_order.status, final_order.version);
}

#[tokio::test]
async fn fifty_concurrent_orders_for_ten_units_never_oversell() {
    let shop = Shop::open(STACK).await;
    let sku = shop.sku("hot", 10).await;
    let ids = shop.submit_all((0..50).map(|_| vec![(sku.clone(), 1)]).collect()).await;
    let orders = shop.wait_all_terminal(&ids).await;

    let (completed, out_of_stock) = (
        count(&orders, OrderStatus::Completed, None),
        count(&orders, OrderStatus::Cancelled, Some(SagaError::InventoryOutOfStock.as_str())),
    );
    println!("50 orders for 10 units: {completed} completed, {out_of_stock} cancelled out of stock");
    assert_eq!(completed, 10, "exactly the stock is sold");
    assert_eq!(out_of_stock, 40, "everyone else is told it is out of stock");
    assert_eq!(shop.stock(&sku).await.available, 0, "stock ends at zero, never below");
    let report = shop.verify(orders, &[sku]).await;
    assert!(report.is_clean(), "{:#?}", report.violations);
}

#[tokio::test]
async fn overlapping_multi_item_orders_never_end_partially_reserved() {
    let shop = Shop::open(STACK).await;
    let (x, y, z) = (shop.sku("x", 6).await, shop.sku("y", 6).await, shop.sku("z", 4).await);
    let shapes = [
        vec![(x.clone(), 1), (y.clone(), 1)],
        vec![(y.clone(), 2), (z.clone(), 1)],
        vec![(x.clone(), 2), (z.clone(), 1)],
    ];
    let ids = shop.submit_all((0..24).map(|i| shapes[i % 3].clone()).collect()).await;
    let orders = shop.wait_all_terminal(&ids).await;

    let mut sold: BTreeMap<String, u64> = BTreeMap::new();
    for order in orders.iter().filter(|o| o.status == OrderStatus::Completed) {
        for item in &order.items {
            *sold.entry(item.sku.clone()).or_default() += u64::from(item.quantity);
        }
    }
    for sku in [&x, &y, &z] {
        let stock = shop.stock(sku).await;
        assert_eq!(
            stock.initial - stock.available,
            sold.get(sku).copied().unwrap_or(0),
            "{sku}: only completed orders hold stock"
        );
    }
    for order in orders.iter().filter(|o| o.status != OrderStatus::Completed) {
        let ledger = shop.store.ledger(&order.order_id).await.expect("ledger");
        assert!(
            !ledger.iter().any(|e| e.effect() == Some(Effect::Reservation) && e.state == EffectState::Reserved),
            "{} holds a reservation",
            order.order_id
        );
    }
    println!(
        "24 overlapping orders: {} completed, {} cancelled",
        count(&orders, OrderStatus::Completed, None),
        count(&orders, OrderStatus::Cancelled, None)
    );
    let report = shop.verify(orders, &[x, y, z]).await;
    assert!(report.is_clean(), "{:#?}", report.violations);
}

#[tokio::test]
async fn chaos_settings_are_honoured_at_run_time_and_logged() {
    let shop = Shop::open(STACK).await;
    let sku = shop.sku("slow", 5).await;
    // Latency only: harmless to the tests running beside this one.
    let mut settings = ChaosSettings::default();
    settings.services.insert("inventory".into(), ServiceChaos { latency_ms: 1_200, ..ServiceChaos::default() });
    shop.store.save_chaos(&settings).await.expect("save chaos");
    tokio::time::sleep(nexus_core::chaos::CACHE_TTL + Duration::from_millis(500)).await;

    let ids = shop.submit_all(vec![vec![(sku.clone(), 1)]]).await;
    let orders = shop.wait_all_terminal(&ids).await;
    shop.store.save_chaos(&ChaosSettings::default()).await.expect("clear chaos");
    assert_eq!(orders[0].status, OrderStatus::Completed, "latency slows an order down, never breaks it");

    let logged = nexus_tests::eventually(Duration::from_secs(20), || async {
        let lines = json_lines(&read_log_group(&shop.stack.logs(), &shop.stack.output("InventoryLogGroupName")).await);
        lines
            .iter()
            .any(|(_, l)| {
                l["message"] == "chaos: added latency" && l["orderId"] == ids[0].as_str() && l["latencyMs"] == 1_200
            })
            .then_some(())
    })
    .await;
    assert!(logged.is_some(), "the injected latency is visible in the inventory function's logs");
}

/// An execution stopped mid-saga (`aws stepfunctions stop-execution`) leaves its order without its final
/// status: the invariant checker (the code of `nexus verify`) names it, and the operator's retry (the code of
/// `nexus retry`) takes it to a terminal, consistent state, after which the checker finds nothing.
#[tokio::test]
async fn a_stopped_execution_is_flagged_and_retry_ends_its_order() {
    let shop = Shop::open(STACK).await;
    let sku = shop.sku("stop", 5).await;
    let order_id = nexus_core::domain::ids::order_id_for_key(&format!("{}stop-0", shop.run));
    let saga = shop.stack.saga();
    let execution_arn = saga.execution_arn(&order_id);
    let sfn = aws_sdk_sfn::Client::new(&shop.stack.config);
    shop.submit_tiered("stop", vec![(vec![(sku.clone(), 2)], Tier::Standard)], "452001").await;
    // Stopped soon after intake has started it: before its steps are done.
    nexus_tests::stop_execution_once_started(&sfn, &execution_arn).await;
    // Whatever the stopped execution's first command still does settles within seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let order = shop.store.get(&order_id).await.expect("get").expect("the order");
    assert!(!order.status.is_terminal(), "stopped before its end: {order:?}");

    let report = verify_with_executions(&shop, &order_id, &sku).await;
    let rules: Vec<_> = report.violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules, vec!["execution-ended-order-open"], "{:#?}", report.violations);

    let events = nexus_aws::sns::SnsEvents::new(
        aws_sdk_sns::Client::new(&shop.stack.config),
        shop.stack.output("OrderEventsTopicArn"),
    );
    let retried = nexus_ops::retry::retry(&shop.store, &shop.store, &events, &saga, &order_id).await.expect("retried");
    let ended = shop.wait_all_terminal_within(std::slice::from_ref(&order_id), Duration::from_secs(120)).await;
    // Where the stop landed decides the way out: every step done, completed; else compensated, cancelled.
    let shipped = order.status == OrderStatus::Shipped;
    let (kind, status, reason, units) = if shipped {
        (nexus_ops::retry::RetryKind::Completion, OrderStatus::Completed, None, 3)
    } else {
        (nexus_ops::retry::RetryKind::Compensation, OrderStatus::Cancelled, Some(nexus_ops::retry::EXECUTION_ENDED), 5)
    };
    assert_eq!(retried.kind, kind, "{retried:?}");
    assert_eq!((ended[0].status, ended[0].reason.as_deref()), (status, reason));
    let clean = nexus_tests::eventually(Duration::from_secs(60), || async {
        let report = verify_with_executions(&shop, &order_id, &sku).await;
        report.is_clean().then_some(report)
    })
    .await;
    assert!(clean.is_some(), "{:#?}", verify_with_executions(&shop, &order_id, &sku).await.violations);
    assert_eq!(shop.stock(&sku).await.available, units, "the stock is back, or sold");
}

/// The invariant checker over one order, its SKU and the saga's executions (the whole stack is busy with
/// the other tests' orders).
async fn verify_with_executions(shop: &Shop, order_id: &str, sku: &str) -> nexus_ops::invariants::Report {
    use nexus_core::ports::EventLog;
    let order = shop.store.get(order_id).await.expect("get").expect("the order");
    let snapshot = nexus_ops::snapshot::Snapshot {
        events: shop.store.events(order_id).await.expect("events"),
        ledger: shop.store.ledger(order_id).await.expect("ledger"),
        stock: vec![shop.stock(sku).await],
        executions: Some(shop.stack.saga().executions().await.expect("executions")),
        orders: vec![order],
        saga_slot_holders: None,
    };
    nexus_ops::invariants::check(&snapshot, chrono::Utc::now().timestamp())
}

/// A saga slot held by an order whose saga has ended is reclaimed (`nexus verify --reclaim-slots`), one held
/// by a saga in flight is not. The main stack has no bound, so its holders are this test's own.
#[tokio::test]
async fn a_slot_leaked_by_an_ended_saga_is_reclaimed() {
    let stack = LocalStack::connect(STACK).await;
    let store = stack.dynamo();
    let ended = format!("slot-ended-{}", run_id());
    let order = Order {
        order_id: ended.clone(),
        status: OrderStatus::Completed,
        version: 1,
        correlation_id: ended.clone(),
        ..Order::default()
    };
    assert_eq!(store.create(&order, &order.event(None)).await.expect("create"), CreateOutcome::Created);
    let in_flight = format!("slot-running-{}", run_id());
    let running =
        Order { order_id: in_flight.clone(), version: 1, correlation_id: in_flight.clone(), ..Order::default() };
    assert_eq!(store.create(&running, &running.event(None)).await.expect("create"), CreateOutcome::Created);
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.config);
    dynamodb
        .update_item()
        .table_name(stack.output("SettingsTableName"))
        .key("name", aws_sdk_dynamodb::types::AttributeValue::S(nexus_core::domain::admission::SAGA_SLOTS_ITEM.into()))
        .update_expression("ADD #holders :ids")
        .expression_attribute_names("#holders", nexus_core::domain::admission::SAGA_SLOT_HOLDERS)
        .expression_attribute_values(
            ":ids",
            aws_sdk_dynamodb::types::AttributeValue::Ss(vec![ended.clone(), in_flight.clone()]),
        )
        .send()
        .await
        .expect("leak two slots");

    let reclaimed = nexus_ops::slots::reclaim(&store, &store).await.expect("reclaim");
    assert!(reclaimed.contains(&ended), "{reclaimed:?}");
    assert!(!reclaimed.contains(&in_flight), "{reclaimed:?}");
    let holders = store.saga_slot_holders().await.expect("holders");
    assert!(!holders.contains(&ended) && holders.contains(&in_flight), "{holders:?}");
    // Leave the stack as it was.
    use nexus_core::ports::SagaSlots;
    assert!(store.free(&in_flight).await.expect("free"));
}
