//! Retries by error class: a service down for longer than a forward step's old window (three task timeouts
//! of 60 s, about three minutes) but within its outage budget loses no order; past the budget, the order is
//! cancelled as `<Service>.Unavailable` and compensated, and nothing is left reserved or charged. Past a
//! compensation's budget the order needs attention. Then `nexus retry` (the same library call): the
//! cancelled orders complete as their second attempt, and the order needing attention has its
//! compensation run again and ends cancelled for its original reason.
//!
//! On the outage stack `make test` deploys: the template with retries backing off 1 s, 2 s, … up to 10 s,
//! without jitter, 25 attempts — a budget of 225 s per step (docs/architecture.md
//! §6), which the payment outage's orders use up to about 200 s of — and, so that a compensation's
//! budget is spent within the test, 5 for compensations (25 s). The inventory outage must outlast the
//! unserved order's release budget but not the past orders' (their releases wait out the rest of it): that
//! order starts its release up to 16 s after payment's return (its next retry, then the charge, the refusal
//! and the refund), which is within about 15 s of the past orders spending their step budget on a quiet
//! emulator. Load stretches the step budget's 25 attempts more than the release budget's 5, widening the
//! room.

use std::time::{Duration, Instant};

use nexus_core::domain::status::OrderStatus;
use nexus_core::ports::OrderStore;
use nexus_core::services::shipping::UNSERVED_POSTAL_CODE;
use nexus_ops::retry::RetryKind;
use nexus_tests::eventually_every;
use nexus_tests::shop::{Shop, count};

const STACK: &str = "NEXUS_OUTAGE_STACK";
/// Longer than the old window, shorter than the budget.
const SHORT_OUTAGE: Duration = Duration::from_secs(200);

/// Whether the order's execution has entered `state` (a spent budget's Pass state).
async fn entered(shop: &Shop, order_id: &str, state: &str) -> bool {
    let sfn = aws_sdk_sfn::Client::new(&shop.stack.config);
    let Some(arn) = shop.store.get(order_id).await.expect("get order").and_then(|o| o.execution_arn) else {
        return false;
    };
    let mut pages = sfn.get_execution_history().execution_arn(arn).into_paginator().send();
    while let Some(page) = pages.next().await {
        let Ok(page) = page else { return false };
        if page.events().iter().any(|e| e.state_entered_event_details().is_some_and(|d| d.name() == state)) {
            return true;
        }
    }
    false
}

/// Waits until each order's execution has entered its state, asking every `every`; fails after `within`.
async fn await_entered<'a>(
    shop: &Shop,
    order_states: impl IntoIterator<Item = (&'a String, &'static str)>,
    within: Duration,
    every: Duration,
) {
    let give_up = Instant::now() + within;
    for (order_id, state) in order_states {
        let left = give_up.saturating_duration_since(Instant::now());
        let seen = eventually_every(every, left, || async { entered(shop, order_id, state).await.then_some(()) });
        assert!(seen.await.is_some(), "{order_id} never entered {state}");
    }
}

/// `nexus retry` of one order, as a fresh attempt or a compensation, never resuming an unstarted one.
async fn operator_retry(shop: &Shop, order_id: &str) -> RetryKind {
    let retried = shop.operator_retry(order_id).await;
    assert!(!retried.resumed, "{retried:?}");
    retried.kind
}

#[tokio::test]
async fn an_outage_within_the_budget_loses_no_order_and_one_past_it_cancels_as_unavailable_until_retried() {
    let shop = Shop::open(STACK).await;
    let sku = shop.sku("outage", 100).await;
    let started = Instant::now();

    // Payment down: these orders reserve, then wait in ChargePayment.
    shop.outage(&["payment"]).await;
    let within = shop.submit_batch("within", vec![vec![(sku.clone(), 1)]; 3]).await;
    // No carrier serves this one: once charged, it is refunded and released, by then into the inventory
    // outage below, which outlasts the release's budget.
    let attention = shop.submit_batch_to("attention", vec![vec![(sku.clone(), 4)]], UNSERVED_POSTAL_CODE).await;
    // Once all four have reserved (a fixed pause would be too short on a busy emulator, and waste time on a
    // quiet one), inventory goes down as well: these orders wait in ReserveInventory, until their budget is
    // spent.
    let reserved = within.iter().chain(&attention).map(|id| (id, "ChargePayment"));
    await_entered(&shop, reserved, Duration::from_secs(120), Duration::from_millis(500)).await;
    shop.outage(&["payment", "inventory"]).await;
    let past = shop.submit_batch("past", vec![vec![(sku.clone(), 2)]; 2]).await;

    tokio::time::sleep(SHORT_OUTAGE.saturating_sub(started.elapsed())).await;
    shop.outage(&["inventory"]).await;
    println!("payment back after {:?}", started.elapsed());

    let within_orders = shop.wait_all_terminal_within(&within, Duration::from_secs(240)).await;
    assert_eq!(
        count(&within_orders, OrderStatus::Completed, None),
        within.len(),
        "every order of a {SHORT_OUTAGE:?} payment outage completes: {:?}",
        within_orders.iter().map(|o| (o.status, o.reason.clone())).collect::<Vec<_>>()
    );

    // Inventory stays down until each past order's budget is spent (and the release's of the unserved
    // order), then recovers for the compensations.
    let spent = past.iter().map(|id| (id, "InventoryUnavailable")).chain([(&attention[0], "FlagNeedsAttention")]);
    await_entered(&shop, spent, Duration::from_secs(420), Duration::from_secs(2)).await;
    println!("inventory budgets spent after {:?}", started.elapsed());
    shop.outage(&[]).await;
    let past_orders = shop.wait_all_terminal_within(&past, Duration::from_secs(240)).await;
    assert_eq!(
        count(&past_orders, OrderStatus::Cancelled, Some("Inventory.Unavailable")),
        past.len(),
        "past the budget, cancelled as Inventory.Unavailable: {:?}",
        past_orders.iter().map(|o| (o.status, o.reason.clone())).collect::<Vec<_>>()
    );
    let attention_order = shop.wait_all_terminal_within(&attention, Duration::from_secs(120)).await;
    assert_eq!(attention_order[0].status, OrderStatus::NeedsAttention, "{attention_order:?}");
    let mut orders = within_orders.clone();
    orders.extend(past_orders);
    orders.extend(attention_order);
    let report = shop.verify(orders, std::slice::from_ref(&sku)).await;
    assert!(report.is_clean(), "{:#?}", report.violations);
    let stock = shop.stock(&sku).await;
    assert_eq!(stock.available, 100 - 3 - 4, "the completed orders and the unreleased one hold units: {stock:?}");

    // The cause is fixed: the operator retries the failed orders.
    for order_id in &past {
        assert_eq!(operator_retry(&shop, order_id).await, RetryKind::NewAttempt);
    }
    assert_eq!(operator_retry(&shop, &attention[0]).await, RetryKind::Compensation);
    let retried =
        shop.wait_all_terminal_within(&[past.clone(), attention.clone()].concat(), Duration::from_secs(120)).await;
    let outcomes: Vec<_> = retried.iter().map(|o| (o.status, o.reason.clone(), o.attempt)).collect();
    assert_eq!(count(&retried, OrderStatus::Completed, None), past.len(), "{outcomes:?}");
    assert_eq!(count(&retried, OrderStatus::Cancelled, Some("Shipping.Unavailable")), 1, "{outcomes:?}");
    assert!(retried.iter().all(|o| o.attempt == 1 + u32::from(o.status == OrderStatus::Completed)), "{outcomes:?}");
    let mut orders = within_orders;
    orders.extend(retried);
    let report = shop.verify(orders, std::slice::from_ref(&sku)).await;
    assert!(report.is_clean(), "{:#?}", report.violations);
    assert_eq!(report.refunded_cents, 4000, "the unserved order's charge was refunded once");
    let stock = shop.stock(&sku).await;
    assert_eq!(stock.available, 100 - 3 - 2 * 2, "completed orders hold their units, nothing else: {stock:?}");
}
