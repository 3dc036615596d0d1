//! The services against the in-memory twins: each saga step, its failures and compensations, and the
//! idempotency every handler promises (a command applied twice changes nothing the second time).

use nexus_core::domain::checkout::Tier;
use nexus_core::domain::ledger::{Effect, EffectState};
use nexus_core::domain::messages::{COMMAND_SCHEMA_VERSION, CommandName, ServiceCommand};
use nexus_core::domain::saga_error::SagaError;
use nexus_core::domain::status::OrderStatus;
use nexus_core::domain::submission::RejectionCode;
use nexus_core::ports::EventLog;
use nexus_core::services::intake::IntakeOutcome;
use nexus_core::services::inventory::InventoryService;
use nexus_core::services::notification::NotificationService;
use nexus_core::services::order_commands::OrderCommandService;
use nexus_core::services::payment::PaymentService;
use nexus_core::services::shipping::ShippingService;
use nexus_core::services::{SagaStep, StepReply, answer};
use nexus_testkit::{Callback, Memory, intake, sample_submission};
use serde_json::json;

const STATE_MACHINE: &str = "arn:aws:states:us-east-1:000000000000:stateMachine:saga";

/// A shop with this stock, SKU-2 at 500, and the sample's customer (c-42) recorded as VIP.
fn shop(stock: &[(&str, u64)]) -> Memory {
    let memory = Memory::with_stock(stock);
    if stock.iter().any(|(sku, _)| *sku == "SKU-2") {
        memory.set_price("SKU-2", 500);
    }
    memory.set_tier("c-42", Tier::Vip);
    memory
}

/// The contract's sample as a VIP order of two lines.
fn submission(key: &str) -> serde_json::Value {
    let mut message = sample_submission(key);
    message["tier"] = json!("VIP");
    message["items"] = json!([
        {"sku": "SKU-1", "quantity": 2, "unitPriceCents": 1999},
        {"sku": "SKU-2", "quantity": 1, "unitPriceCents": 500}
    ]);
    message
}

fn command(name: CommandName, order_id: &str, token: &str) -> ServiceCommand {
    ServiceCommand {
        schema_version: COMMAND_SCHEMA_VERSION,
        command: name,
        order_id: order_id.into(),
        correlation_id: "corr".into(),
        execution_arn: format!("{STATE_MACHINE}:{order_id}"),
        task_token: token.into(),
        attempt: 1,
        reason: None,
    }
}

async fn submit(memory: &Memory, message: &serde_json::Value) -> String {
    match intake(memory).handle(&message.to_string(), None).await.expect("intake") {
        IntakeOutcome::Accepted { order_id, .. } => order_id,
        other => panic!("not accepted: {other:?}"),
    }
}

fn stock(memory: &Memory, sku: &str) -> u64 {
    memory.world().available(sku)
}

fn status(memory: &Memory, order_id: &str) -> OrderStatus {
    memory.world().orders[order_id].status
}

/// What the saga does after `Inventory.OutOfStock`: cancel straight away, with that reason.
async fn cancel_out_of_stock(memory: &Memory, order_id: &str) {
    let mut cancel = command(CommandName::CancelOrder, order_id, "t");
    cancel.reason = Some(SagaError::InventoryOutOfStock.to_string());
    OrderCommandService { orders: memory.clone(), publisher: memory.clone() }.step(&cancel).await.expect("cancel");
}

async fn run(memory: &Memory, name: CommandName, order_id: &str) -> StepReply {
    let cmd = command(name, order_id, &format!("token-{}", name.as_str()));
    match name {
        CommandName::ReserveInventory | CommandName::ReleaseInventory => {
            InventoryService { orders: memory.clone(), inventory: memory.clone(), publisher: memory.clone() }
                .step(&cmd)
                .await
        }
        CommandName::ChargePayment | CommandName::RefundPayment => {
            PaymentService { orders: memory.clone(), payments: memory.clone(), publisher: memory.clone() }
                .step(&cmd)
                .await
        }
        CommandName::DispatchShipping | CommandName::CancelShipment => {
            ShippingService { orders: memory.clone(), shipments: memory.clone(), publisher: memory.clone() }
                .step(&cmd)
                .await
        }
        _ => OrderCommandService { orders: memory.clone(), publisher: memory.clone() }.step(&cmd).await,
    }
    .expect("step handled")
}

fn is_failure(reply: &StepReply, expected: SagaError) -> bool {
    matches!(reply, StepReply::Failure { error, .. } if *error == expected)
}

/// The order's ledger entry for `effect`: its state and amount.
fn effect(memory: &Memory, order_id: &str, effect: Effect) -> Option<(EffectState, u64)> {
    memory.world().entry(order_id, 1, effect).map(|e| (e.state, e.amount_cents))
}

async fn assert_gap_free_events(memory: &Memory, order_id: &str) {
    let events = memory.events(order_id).await.expect("events");
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>(), "gap-free, in order");
}

#[tokio::test]
async fn happy_path_reserves_charges_ships_and_completes() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-happy")).await;
    assert_eq!(status(&memory, &order_id), OrderStatus::Pending);
    assert_eq!(
        memory.world().executions[&order_id],
        json!({"orderId": order_id, "correlationId": order_id, "attempt": 1, "tier": "VIP"})
    );

    for step in [
        CommandName::ReserveInventory,
        CommandName::ChargePayment,
        CommandName::DispatchShipping,
        CommandName::CompleteOrder,
    ] {
        assert!(matches!(run(&memory, step, &order_id).await, StepReply::Success(_)), "{step:?}");
    }
    assert_eq!(status(&memory, &order_id), OrderStatus::Completed);
    assert_eq!((stock(&memory, "SKU-1"), stock(&memory, "SKU-2")), (8, 9));
    assert_gap_free_events(&memory, &order_id).await;
    assert_eq!(effect(&memory, &order_id, Effect::Payment), Some((EffectState::Charged, 2 * 1999 + 500)));
    assert_eq!(effect(&memory, &order_id, Effect::Shipment), Some((EffectState::Dispatched, 0)));
    let world = memory.world();
    let statuses: Vec<OrderStatus> = world.published.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Pending,
            OrderStatus::InventoryReserved,
            OrderStatus::PaymentCharged,
            OrderStatus::Shipped,
            OrderStatus::Completed
        ]
    );
}

#[tokio::test]
async fn every_step_applied_twice_changes_nothing_the_second_time() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-twice")).await;
    assert_eq!(submit(&memory, &submission("k-twice")).await, order_id, "same key, same order");
    assert_eq!(memory.world().executions.len(), 1, "one saga");
    for step in [
        CommandName::ReserveInventory,
        CommandName::ChargePayment,
        CommandName::DispatchShipping,
        CommandName::CompleteOrder,
    ] {
        for _ in 0..2 {
            assert!(matches!(run(&memory, step, &order_id).await, StepReply::Success(_)), "{step:?}");
        }
    }
    assert_eq!((stock(&memory, "SKU-1"), stock(&memory, "SKU-2")), (8, 9), "reserved once");
    let events = memory.events(&order_id).await.expect("events");
    assert_eq!(events.len(), 5, "one event per change");
    assert_gap_free_events(&memory, &order_id).await;
}

#[tokio::test]
async fn declined_payment_releases_stock_and_cancels_with_the_reason() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let mut message = submission("k-decline");
    message["payment"]["token"] = json!("tok_decline");
    let order_id = submit(&memory, &message).await;
    assert!(matches!(run(&memory, CommandName::ReserveInventory, &order_id).await, StepReply::Success(_)));
    assert!(is_failure(&run(&memory, CommandName::ChargePayment, &order_id).await, SagaError::PaymentDeclined));
    assert_eq!(effect(&memory, &order_id, Effect::Payment), None, "no charge");

    let mut release = command(CommandName::ReleaseInventory, &order_id, "t-release");
    release.reason = Some(SagaError::PaymentDeclined.to_string());
    InventoryService { orders: memory.clone(), inventory: memory.clone(), publisher: memory.clone() }
        .step(&release)
        .await
        .expect("release");
    assert_eq!(status(&memory, &order_id), OrderStatus::Compensating);
    assert_eq!((stock(&memory, "SKU-1"), stock(&memory, "SKU-2")), (10, 10), "stock restored");

    let mut cancel = command(CommandName::CancelOrder, &order_id, "t-cancel");
    cancel.reason = Some(SagaError::PaymentDeclined.to_string());
    OrderCommandService { orders: memory.clone(), publisher: memory.clone() }.step(&cancel).await.expect("cancel");
    let order = memory.world().orders[&order_id].clone();
    assert_eq!(
        (order.status, order.reason.as_deref()),
        (OrderStatus::Cancelled, Some(SagaError::PaymentDeclined.as_str()))
    );
    assert_gap_free_events(&memory, &order_id).await;
}

#[tokio::test]
async fn unserved_postal_code_fails_dispatch_and_refund_undoes_the_charge() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let mut message = submission("k-ship");
    message["shippingAddress"]["postalCode"] = json!("00000");
    let order_id = submit(&memory, &message).await;
    run(&memory, CommandName::ReserveInventory, &order_id).await;
    run(&memory, CommandName::ChargePayment, &order_id).await;
    assert!(is_failure(&run(&memory, CommandName::DispatchShipping, &order_id).await, SagaError::ShippingUnavailable));
    for _ in 0..2 {
        run(&memory, CommandName::RefundPayment, &order_id).await;
        run(&memory, CommandName::ReleaseInventory, &order_id).await;
    }
    assert_eq!(effect(&memory, &order_id, Effect::Payment), Some((EffectState::Refunded, 2 * 1999 + 500)));
    assert_eq!((stock(&memory, "SKU-1"), stock(&memory, "SKU-2")), (10, 10));
}

#[tokio::test]
async fn a_multi_item_order_short_of_one_sku_reserves_nothing() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 0)]);
    let order_id = submit(&memory, &submission("k-short")).await;
    assert!(is_failure(&run(&memory, CommandName::ReserveInventory, &order_id).await, SagaError::InventoryOutOfStock));
    assert_eq!((stock(&memory, "SKU-1"), stock(&memory, "SKU-2")), (10, 0), "all or nothing");
    assert_eq!(status(&memory, &order_id), OrderStatus::Pending);
    cancel_out_of_stock(&memory, &order_id).await;
    assert_eq!(status(&memory, &order_id), OrderStatus::Cancelled);
}

/// Found by the chaos test: a copy of ReserveInventory delivered after stock was freed reserved for an order
/// the saga was already cancelling as out of stock (CancelOrder then found it reserved: NEEDS_ATTENTION).
#[tokio::test]
async fn an_out_of_stock_answer_is_final_for_every_copy_of_the_command() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 0)]);
    let order_id = submit(&memory, &submission("k-final")).await;
    assert!(is_failure(&run(&memory, CommandName::ReserveInventory, &order_id).await, SagaError::InventoryOutOfStock));
    memory.world().stock.get_mut("SKU-2").expect("SKU-2 stocked").available = 5;
    let again = run(&memory, CommandName::ReserveInventory, &order_id).await;
    assert!(is_failure(&again, SagaError::InventoryOutOfStock), "the same answer, though stock is back: {again:?}");
    assert_eq!((stock(&memory, "SKU-1"), stock(&memory, "SKU-2")), (10, 5), "nothing reserved");
    assert_eq!(status(&memory, &order_id), OrderStatus::Pending);
    cancel_out_of_stock(&memory, &order_id).await;
    assert_eq!(status(&memory, &order_id), OrderStatus::Cancelled);
    let release = run(&memory, CommandName::ReleaseInventory, &order_id).await;
    assert!(matches!(release, StepReply::Success(_)), "a release after it is harmless: {release:?}");
    assert_eq!(stock(&memory, "SKU-2"), 5, "and restocks nothing");
}

#[tokio::test]
async fn a_reservation_arriving_after_its_release_reserves_nothing() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-late")).await;
    run(&memory, CommandName::ReleaseInventory, &order_id).await;
    let late = run(&memory, CommandName::ReserveInventory, &order_id).await;
    assert!(matches!(late, StepReply::Failure { .. }), "{late:?}");
    assert_eq!((stock(&memory, "SKU-1"), stock(&memory, "SKU-2")), (10, 10));
}

#[tokio::test]
async fn version_conflicts_are_re_read_and_no_update_is_lost() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-conflict")).await;
    memory.world().conflicts_to_inject = 3;
    assert!(matches!(run(&memory, CommandName::ReserveInventory, &order_id).await, StepReply::Success(_)));
    assert_eq!(status(&memory, &order_id), OrderStatus::InventoryReserved);
    assert_eq!(memory.world().orders[&order_id].version, 2);
    assert_gap_free_events(&memory, &order_id).await;
}

#[tokio::test]
async fn a_forward_step_reads_the_order_once_and_a_compensation_since_is_caught() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-reads")).await;
    let steps = [CommandName::ReserveInventory, CommandName::ChargePayment, CommandName::DispatchShipping];
    for step in steps.into_iter().chain([CommandName::CompleteOrder]) {
        let reads = memory.world().order_reads;
        assert!(matches!(run(&memory, step, &order_id).await, StepReply::Success(_)), "{step:?}");
        assert_eq!(memory.world().order_reads - reads, 1, "{step:?}: the transition decides from the step's read");
    }
    // Overtaken between the read and the write: the version condition fails, the re-read refuses, and the
    // effect, written in the same transaction as the transition, was never written (nothing to refund).
    let order_id = submit(&memory, &submission("k-overtaken")).await;
    run(&memory, CommandName::ReserveInventory, &order_id).await;
    memory.world().overtake_after_read = Some(OrderStatus::Compensating);
    let late = run(&memory, CommandName::ChargePayment, &order_id).await;
    assert!(is_failure(&late, SagaError::OrderInvalidState), "{late:?}");
    assert_eq!(status(&memory, &order_id), OrderStatus::Compensating);
    assert_eq!(effect(&memory, &order_id, Effect::Payment), None, "a charge without its transition");
    // A repeat (the order already moved) reads afresh before it answers: it never answers from a stale read.
    let order_id = submit(&memory, &submission("k-repeat")).await;
    run(&memory, CommandName::ReserveInventory, &order_id).await;
    run(&memory, CommandName::ChargePayment, &order_id).await;
    memory.world().overtake_after_read = Some(OrderStatus::Compensating);
    let repeat = run(&memory, CommandName::ChargePayment, &order_id).await;
    assert!(is_failure(&repeat, SagaError::OrderInvalidState), "{repeat:?}");
    assert_eq!(status(&memory, &order_id), OrderStatus::Compensating);
}

#[tokio::test]
async fn forward_steps_refuse_orders_in_the_wrong_status() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-order")).await;
    assert!(is_failure(&run(&memory, CommandName::ChargePayment, &order_id).await, SagaError::OrderInvalidState));
    assert!(is_failure(&run(&memory, CommandName::CompleteOrder, &order_id).await, SagaError::OrderInvalidState));
    assert_eq!(effect(&memory, &order_id, Effect::Payment), None);
}

#[tokio::test]
async fn invalid_submissions_are_rejected_or_parked_never_dropped() {
    let memory = shop(&[("SKU-1", 10)]);
    let mut bad = submission("k-bad");
    bad["items"][0]["quantity"] = json!(0);
    let outcome = intake(&memory).handle(&bad.to_string(), None).await.expect("handled");
    let IntakeOutcome::Rejected { order_id, rejection } = outcome else { panic!("{outcome:?}") };
    assert_eq!(rejection.code, RejectionCode::NonPositiveQuantity);
    let order = memory.world().orders[&order_id].clone();
    assert_eq!(order.status, OrderStatus::Rejected);
    assert_eq!(order.reason.as_deref(), Some("NonPositiveQuantity:items[0].quantity"));
    assert!(memory.world().executions.is_empty(), "a rejected order never starts a saga");

    let unknown = submission("k-unknown");
    let outcome = intake(&memory).handle(&unknown.to_string(), None).await.expect("handled");
    assert!(
        matches!(outcome, IntakeOutcome::Rejected { ref rejection, .. } if rejection.code == RejectionCode::UnknownSku),
        "{outcome:?}"
    );

    let outcome = intake(&memory).handle("{not json", None).await.expect("handled");
    assert!(matches!(outcome, IntakeOutcome::Parked { .. }));
    assert_eq!(memory.world().parked.len(), 1);
    assert_eq!(memory.world().parked[0].0, "{not json");
}

#[tokio::test]
async fn the_catalog_prices_the_order_and_the_customer_record_sets_its_tier() {
    let memory = Memory::with_stock(&[("SKU-5", 10)]);
    memory.set_price("SKU-5", 1500);
    // The audit's case: SKU-5 (catalog 1500) quoted at 1 cent is refused with both prices, never charged.
    let mut cheap = sample_submission("k-cheap");
    cheap["items"] = json!([{"sku": "SKU-5", "quantity": 1, "unitPriceCents": 1}]);
    let outcome = intake(&memory).handle(&cheap.to_string(), None).await.expect("handled");
    let IntakeOutcome::Rejected { order_id, rejection } = outcome else { panic!("{outcome:?}") };
    assert_eq!(
        (rejection.code, rejection.field.as_deref()),
        (RejectionCode::PriceChanged, Some("items[0].unitPriceCents"))
    );
    assert!(rejection.detail.contains("quoted 1,") && rejection.detail.contains("1500"), "{}", rejection.detail);
    assert_eq!(memory.world().orders[&order_id].status, OrderStatus::Rejected);
    assert!(memory.world().executions.is_empty());

    // Without a quote the catalog's price is charged; a VIP claim without a VIP record runs standard.
    let mut unquoted = sample_submission("k-unquoted");
    unquoted["tier"] = json!("VIP");
    unquoted["items"] = json!([{"sku": "SKU-5", "quantity": 3}]);
    let order_id = submit(&memory, &unquoted).await;
    let order = memory.world().orders[&order_id].clone();
    assert_eq!((order.total_cents, order.items[0].unit_price_cents, order.tier), (4500, 1500, Tier::Standard));

    // The operator's record makes a customer VIP, whatever the message says; an order keeps the terms it
    // was created with when the record or the price changes later.
    memory.set_tier("c-42", Tier::Vip);
    let mut claimed_standard = sample_submission("k-vip");
    claimed_standard["tier"] = json!("STANDARD");
    claimed_standard["items"] = json!([{"sku": "SKU-5", "quantity": 1, "unitPriceCents": 1500}]);
    let vip = submit(&memory, &claimed_standard).await;
    memory.set_tier("c-42", Tier::Standard).set_price("SKU-5", 9);
    assert_eq!(submit(&memory, &claimed_standard).await, vip, "a redelivery is the same order");
    let order = memory.world().orders[&vip].clone();
    assert_eq!((order.tier, order.total_cents), (Tier::Vip, 1500));
}

#[tokio::test]
async fn the_first_step_of_a_compensation_rerun_sends_its_execution_to_the_compensations() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-rerun")).await;
    // `nexus retry` of an order needing attention writes it COMPENSATING for its new execution first.
    memory.world().orders.get_mut(&order_id).expect("order").status = OrderStatus::Compensating;
    let reply = run(&memory, CommandName::ReserveInventory, &order_id).await;
    assert!(is_failure(&reply, SagaError::CompensationRerun), "{reply:?}");
    assert_eq!(stock(&memory, "SKU-1"), 10, "nothing reserved");
    // A late ReserveInventory of an execution that no longer runs the order is only a stale command.
    memory.world().orders.get_mut(&order_id).expect("order").execution_arn = Some(format!("{STATE_MACHINE}:other"));
    let stale = run(&memory, CommandName::ReserveInventory, &order_id).await;
    assert!(is_failure(&stale, SagaError::OrderInvalidState), "{stale:?}");
}

#[tokio::test]
async fn a_reused_idempotency_key_with_another_payload_is_parked_and_the_first_order_stands() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-reuse")).await;
    let mut other = submission("k-reuse");
    other["items"][0]["quantity"] = json!(7);
    let outcome = intake(&memory).handle(&other.to_string(), None).await.expect("handled");
    assert!(
        matches!(outcome, IntakeOutcome::Parked { ref rejection } if rejection.code == RejectionCode::IdempotencyKeyReused)
    );
    assert_eq!(memory.world().orders[&order_id].items[0].quantity, 2);
    assert_eq!(memory.world().orders[&order_id].status, OrderStatus::Pending);
}

#[tokio::test]
async fn duplicate_callbacks_are_harmless() {
    let memory = Memory::default();
    let cmd = command(CommandName::ChargePayment, "o-1", "token-1");
    let reply = StepReply::Success(json!({}));
    answer(&memory, &cmd, &reply).await.expect("first answer");
    answer(&memory, &cmd, &reply).await.expect("second answer is not an error");
    assert_eq!(memory.world().callbacks, [Callback::Success("token-1".into(), json!({}))]);
}

#[tokio::test]
async fn each_event_notifies_once() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let order_id = submit(&memory, &submission("k-notify")).await;
    let event = memory.world().published[0].clone();
    let service = NotificationService {
        orders: memory.clone(),
        notifications: memory.clone(),
        emails: nexus_testkit::email_hasher(),
    };
    let body = serde_json::to_string(&event).expect("json");
    assert!(service.handle(&body).await.expect("first"));
    assert!(!service.handle(&body).await.expect("second"));
    assert_eq!(event.order_id, order_id);
}

/// The state machine copies the correlation id into every command (body and attributes): only an id that
/// follows the order id's rule is taken, so no publish of the saga can grow past SNS's limit.
#[tokio::test]
async fn an_unbounded_correlation_id_is_replaced_by_the_order_id() {
    let memory = shop(&[("SKU-1", 10), ("SKU-2", 10)]);
    let huge = "c".repeat(130 * 1024);
    for (key, correlation_id, expected) in [
        ("k-corr-huge", huge.as_str(), None),
        ("k-corr-odd", "has spaces", None),
        ("k-corr-ok", "trace-42", Some("trace-42")),
    ] {
        let outcome = intake(&memory).handle(&submission(key).to_string(), Some(correlation_id)).await;
        let Ok(IntakeOutcome::Accepted { order_id, .. }) = outcome else { panic!("not accepted: {outcome:?}") };
        let expected = expected.map_or_else(|| order_id.clone(), str::to_owned);
        assert_eq!(memory.world().executions[&order_id]["correlationId"], expected.as_str(), "{key}");
        assert_eq!(memory.world().orders[&order_id].correlation_id, expected, "{key}");
    }
}
