//! The invariant checker over sagas run in the in-memory twin: the twin, the DynamoDB adapter and the
//! checker share one typed ledger, so a world the services leave is checkable as is, and a broken one is
//! caught.

use nexus_core::domain::admission::SagaLimit;
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::ids;
use nexus_core::domain::ledger::{Effect, EffectState};
use nexus_core::domain::messages::{COMMAND_SCHEMA_VERSION, CommandName, ServiceCommand};
use nexus_core::domain::saga_error::SagaError;
use nexus_core::domain::status::OrderStatus;
use nexus_core::ports::ExecutionStatus;
use nexus_core::services::intake::IntakeOutcome;
use nexus_core::services::inventory::InventoryService;
use nexus_core::services::order_commands::OrderCommandService;
use nexus_core::services::payment::PaymentService;
use nexus_core::services::shipping::ShippingService;
use nexus_core::services::{SagaStep, StepReply};
use nexus_ops::invariants::{self, Snapshot};
use nexus_ops::retry::{Retried, RetryError, RetryKind};
use nexus_testkit::{Memory, intake, sample_submission};

async fn submit(memory: &Memory, key: &str, token: &str) -> String {
    let mut message = sample_submission(key);
    message["payment"]["token"] = token.into();
    match intake(memory).handle(&message.to_string(), None).await.expect("intake") {
        IntakeOutcome::Accepted { order_id, .. } => order_id,
        other => panic!("not accepted: {other:?}"),
    }
}

/// One command of `attempt` of the order, as the order's current execution would send it; the reply.
async fn step(memory: &Memory, order_id: &str, attempt: u32, name: CommandName, reason: Option<&str>) -> StepReply {
    let execution_arn = memory.world().orders.get(order_id).and_then(|o| o.execution_arn.clone()).unwrap_or_default();
    step_of(memory, (order_id, attempt, &execution_arn), name, reason).await
}

/// One command of `attempt` of the order from the execution `execution_arn`; the service's reply.
async fn step_of(
    memory: &Memory,
    (order_id, attempt, execution_arn): (&str, u32, &str),
    name: CommandName,
    reason: Option<&str>,
) -> StepReply {
    let command = ServiceCommand {
        schema_version: COMMAND_SCHEMA_VERSION,
        command: name,
        order_id: order_id.into(),
        correlation_id: "c".into(),
        execution_arn: execution_arn.into(),
        task_token: format!("{order_id}-{attempt}-{}", name.as_str()),
        attempt,
        reason: reason.map(str::to_owned),
    };
    let m = memory.clone();
    let reply = match name {
        CommandName::ReserveInventory | CommandName::ReleaseInventory => {
            InventoryService { orders: m.clone(), inventory: m.clone(), publisher: m }.step(&command).await
        }
        CommandName::ChargePayment | CommandName::RefundPayment => {
            PaymentService { orders: m.clone(), payments: m.clone(), publisher: m }.step(&command).await
        }
        CommandName::DispatchShipping | CommandName::CancelShipment => {
            ShippingService { orders: m.clone(), shipments: m.clone(), publisher: m }.step(&command).await
        }
        _ => OrderCommandService { orders: m.clone(), publisher: m }.step(&command).await,
    };
    reply.expect("step handled")
}

async fn run(memory: &Memory, order_id: &str, steps: &[(CommandName, Option<&str>)]) {
    run_attempt(memory, order_id, 1, steps).await;
}

async fn run_attempt(memory: &Memory, order_id: &str, attempt: u32, steps: &[(CommandName, Option<&str>)]) {
    for (name, reason) in steps {
        step(memory, order_id, attempt, *name, *reason).await;
    }
}

fn snapshot(memory: &Memory) -> Snapshot {
    let world = memory.world();
    Snapshot {
        orders: world.orders.values().cloned().collect(),
        events: world.events.values().flatten().cloned().collect(),
        stock: world.stock.values().cloned().collect(),
        ledger: world.ledger.values().cloned().collect(),
        saga_slot_holders: Some(world.saga_slot_holders.clone()),
        executions: Some(
            world
                .executions
                .keys()
                .map(|name| {
                    (name.clone(), world.ended_executions.get(name).copied().unwrap_or(ExecutionStatus::Running))
                })
                .collect(),
        ),
    }
}

#[tokio::test]
async fn a_completed_and_a_compensated_saga_leave_a_clean_world_and_a_leak_is_caught() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    let done = submit(&memory, "k-done", "tok_ok").await;
    run(
        &memory,
        &done,
        &[(ReserveInventory, None), (ChargePayment, None), (DispatchShipping, None), (CompleteOrder, None)],
    )
    .await;
    let declined = submit(&memory, "k-declined", "tok_decline").await;
    let reason = Some("Payment.Declined");
    run(
        &memory,
        &declined,
        &[(ReserveInventory, None), (ChargePayment, None), (ReleaseInventory, reason), (CancelOrder, reason)],
    )
    .await;

    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert!(report.is_clean(), "{:?}", report.violations);
    assert_eq!(report.by_status.get("COMPLETED"), Some(&1));
    assert_eq!(report.by_status.get("CANCELLED"), Some(&1));
    assert_eq!((report.charged_cents, report.completed_total_cents), (3998, 3998));

    // A release that forgot to restock: the checker sees stock leak.
    memory.world().stock.get_mut("SKU-1").expect("stocked").available -= 2;
    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert_eq!(report.violations.iter().map(|v| v.rule).collect::<Vec<_>>(), ["stock-conserved"]);
    assert_eq!(memory.world().entry(&declined, 1, Effect::Reservation).map(|e| e.state), Some(EffectState::Released));
}

fn order(memory: &Memory, order_id: &str) -> nexus_core::domain::order::Order {
    memory.world().orders.get(order_id).cloned().expect("order")
}

async fn retry(memory: &Memory, order_id: &str) -> Result<Retried, RetryError> {
    nexus_ops::retry::retry(memory, memory, memory, memory, order_id).await
}

fn is_invalid_state(reply: &StepReply) -> bool {
    matches!(reply, StepReply::Failure { error: SagaError::OrderInvalidState, .. })
}

#[tokio::test]
async fn an_order_cancelled_by_an_outage_runs_again_as_a_new_attempt_and_the_old_attempt_cannot_touch_it() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    let id = submit(&memory, "k-outage", "tok_ok").await;
    // Attempt 1: reserved, then payment stayed unavailable past its budget: compensated and cancelled.
    let reason = Some("Payment.Unavailable");
    run(
        &memory,
        &id,
        &[(ReserveInventory, None), (RefundPayment, reason), (ReleaseInventory, reason), (CancelOrder, reason)],
    )
    .await;
    assert_eq!(order(&memory, &id).status, OrderStatus::Cancelled);

    let retried = retry(&memory, &id).await.expect("retried");
    assert_eq!(
        (retried.kind, retried.attempt, retried.status, retried.resumed),
        (RetryKind::NewAttempt, 2, OrderStatus::Pending, false)
    );
    let name = ids::retry_execution_name(&id, 5);
    assert!(retried.execution_arn.ends_with(&name), "{}", retried.execution_arn);
    let input = memory.world().executions.get(&name).cloned().expect("the retry's execution started");
    assert_eq!(
        (input["orderId"].as_str(), input["attempt"].as_u64(), input.get("resume")),
        (Some(id.as_str()), Some(2), None)
    );
    let retried_order = order(&memory, &id);
    assert_eq!((retried_order.attempt, retried_order.reason.as_deref()), (2, None));
    let events = memory.world().events.get(&id).cloned().expect("events");
    let last = events.last().expect("event");
    assert_eq!(
        (last.status, last.previous_status, last.attempt),
        (OrderStatus::Pending, Some(OrderStatus::Cancelled), 2)
    );

    // Late copies of attempt 1's commands: refused, and they change nothing.
    for (name, reason) in [(CancelOrder, reason), (ChargePayment, None), (ReleaseInventory, reason)] {
        let reply = step(&memory, &id, 1, name, reason).await;
        assert!(is_invalid_state(&reply) || name == ReleaseInventory, "{name:?}: {reply:?}");
    }
    assert_eq!(order(&memory, &id).status, OrderStatus::Pending, "a stale attempt moved the order");
    assert_eq!(memory.world().entry(&id, 1, Effect::Payment).map(|e| e.state), Some(EffectState::Refunded));

    // Attempt 2 completes on its own effects; attempt 1's tombstones do not refuse it.
    run_attempt(
        &memory,
        &id,
        2,
        &[(ReserveInventory, None), (ChargePayment, None), (DispatchShipping, None), (CompleteOrder, None)],
    )
    .await;
    assert_eq!(order(&memory, &id).status, OrderStatus::Completed);
    assert_eq!(memory.world().entry(&id, 2, Effect::Payment).map(|e| e.state), Some(EffectState::Charged));
    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert!(report.is_clean(), "{:?}", report.violations);
    assert_eq!((report.charged_cents, report.refunded_cents, report.completed_total_cents), (3998, 0, 3998));
    assert_eq!(memory.world().available("SKU-1"), 8, "one reservation holds, attempt 1's was released");

    // Completed now: nothing to retry.
    let refusal = retry(&memory, &id).await.expect_err("completed");
    assert!(refusal.to_string().contains("COMPLETED: it completed"), "{refusal}");
}

#[tokio::test]
async fn a_retry_that_died_before_starting_its_execution_is_finished_by_the_next_and_never_run_twice() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    let id = submit(&memory, "k-crash", "tok_ok").await;
    let reason = Some("Inventory.Unavailable");
    run(&memory, &id, &[(ReleaseInventory, reason), (CancelOrder, reason)]).await;
    let first = retry(&memory, &id).await.expect("retried");
    let name = first.execution_arn.rsplit(':').next().expect("name").to_owned();
    memory.world().executions.remove(&name); // as if the tool died after writing the order

    let second = retry(&memory, &id).await.expect("resumed");
    assert_eq!((second.resumed, second.attempt, &second.execution_arn), (true, 2, &first.execution_arn));
    assert_eq!(memory.world().executions.get(&name).and_then(|i| i["attempt"].as_u64()), Some(2));
    let third = retry(&memory, &id).await.expect_err("in flight");
    assert!(matches!(third, RetryError::Refused { status: OrderStatus::Pending, .. }), "{third}");
    assert_eq!(order(&memory, &id).version, 4, "neither the resume nor the refusal wrote the order");
}

#[tokio::test]
async fn business_refusals_and_orders_in_flight_are_not_retried() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    let declined = submit(&memory, "k-declined", "tok_decline").await;
    let reason = Some("Payment.Declined");
    run(&memory, &declined, &[(ReserveInventory, None), (ReleaseInventory, reason), (CancelOrder, reason)]).await;
    let refusal = retry(&memory, &declined).await.expect_err("a declined card stays declined");
    assert!(refusal.to_string().contains("CANCELLED (Payment.Declined)"), "{refusal}");

    // Shipping.Unavailable is transient only when a carrier serves the address.
    let unserved = submit(&memory, "k-unserved", "tok_ok").await;
    memory.world().orders.get_mut(&unserved).expect("order").shipping_address.postal_code = "00000".into();
    let reason = Some("Shipping.Unavailable");
    run(&memory, &unserved, &[(ReleaseInventory, reason), (CancelOrder, reason)]).await;
    assert!(matches!(retry(&memory, &unserved).await, Err(RetryError::Refused { .. })));

    let running = submit(&memory, "k-running", "tok_ok").await;
    let refusal = retry(&memory, &running).await.expect_err("in flight");
    assert!(refusal.to_string().contains("still running"), "{refusal}");
    assert!(matches!(retry(&memory, "no-such-order").await, Err(RetryError::NotFound(_))));
}

#[tokio::test]
async fn an_order_needing_attention_has_its_compensation_run_again_for_its_original_reason() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    let id = submit(&memory, "k-attention", "tok_ok").await;
    // Charged, then shipping refused; the refund could not finish within its budget: flagged.
    let reason = Some("Shipping.Unavailable");
    run(
        &memory,
        &id,
        &[
            (ReserveInventory, None),
            (ChargePayment, None),
            (CancelShipment, reason),
            (FlagNeedsAttention, Some("Saga.Transient")),
        ],
    )
    .await;
    assert_eq!(order(&memory, &id).status, OrderStatus::NeedsAttention);
    // Until the execution that flagged it has ended, the retry waits (refused, to be run again).
    let refusal = retry(&memory, &id).await.expect_err("the flagging execution still runs");
    assert!(refusal.to_string().contains("still ending"), "{refusal}");
    let first_execution = order(&memory, &id).execution_arn.expect("an execution");
    memory.world().ended_executions.insert(id.clone(), ExecutionStatus::Succeeded);

    let retried = retry(&memory, &id).await.expect("compensation rerun");
    assert_eq!(
        (retried.kind, retried.attempt, retried.status),
        (RetryKind::Compensation, 1, OrderStatus::Compensating)
    );
    let name = retried.execution_arn.rsplit(':').next().expect("name").to_owned();
    let input = memory.world().executions.get(&name).cloned().expect("started");
    assert_eq!(input["error"]["Error"].as_str(), reason, "the reason it cancels for");
    assert_eq!(order(&memory, &id).reason.as_deref(), reason);
    // Its first state's command is answered Saga.CompensationRerun (caught into the compensations), and
    // reserves nothing.
    let first = step_of(&memory, (&id, 1, &retried.execution_arn), ReserveInventory, None).await;
    assert!(matches!(first, StepReply::Failure { error: SagaError::CompensationRerun, .. }), "{first:?}");

    // A late copy of the first execution's flag (its retry, delivered after the rerun began) changes
    // nothing: the order's own steps act only for its current execution.
    let late = step_of(&memory, (&id, 1, &first_execution), FlagNeedsAttention, Some("Saga.Transient")).await;
    assert!(is_invalid_state(&late), "{late:?}");
    assert_eq!(order(&memory, &id).status, OrderStatus::Compensating);

    // The rerun execution: every compensation (CancelShipment again undoes nothing twice), then cancel.
    run(
        &memory,
        &id,
        &[(CancelShipment, reason), (RefundPayment, reason), (ReleaseInventory, reason), (CancelOrder, reason)],
    )
    .await;
    let cancelled = order(&memory, &id);
    assert_eq!((cancelled.status, cancelled.reason.as_deref()), (OrderStatus::Cancelled, reason));
    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert!(report.is_clean(), "{:?}", report.violations);
    assert_eq!((report.charged_cents, report.refunded_cents), (3998, 3998));
}

/// A submission of `tier` under `key`, as intake answers it.
async fn submit_tiered(memory: &Memory, key: &str, tier: &str) -> (String, IntakeOutcome) {
    let mut message = sample_submission(key);
    message["tier"] = tier.into();
    if tier == "VIP" {
        // The customer's record decides the tier, not the message.
        memory.set_tier("c-vip", Tier::Vip);
        message["customerId"] = "c-vip".into();
    }
    let body = message.to_string();
    (body.clone(), intake(memory).handle(&body, Some("corr-1")).await.expect("intake"))
}

#[tokio::test]
async fn over_the_bound_a_standard_order_waits_in_the_queue_a_vip_order_never_and_an_ended_saga_frees_its_slot() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 100)]);
    memory.world().saga_limit = SagaLimit::parse("2").expect("a bound");
    let (_, first) = submit_tiered(&memory, "k-1", "STANDARD").await;
    let (_, second) = submit_tiered(&memory, "k-2", "STANDARD").await;
    let admitted: Vec<String> = [first, second]
        .into_iter()
        .map(|outcome| match outcome {
            IntakeOutcome::Accepted { order_id, .. } => order_id,
            other => panic!("within the bound: {other:?}"),
        })
        .collect();

    // The third standard order waits: put back on the queue as it came, nothing written, no saga.
    let (body, third) = submit_tiered(&memory, "k-3", "STANDARD").await;
    let IntakeOutcome::Deferred { order_id: waiting, delay_seconds } = third else {
        panic!("over the bound: {third:?}")
    };
    assert!((20..=40).contains(&delay_seconds));
    {
        let world = memory.world();
        assert_eq!(world.deferred, [(body.clone(), Some("corr-1".to_owned()), delay_seconds)]);
        assert!(!world.orders.contains_key(&waiting) && !world.executions.contains_key(&waiting));
        assert_eq!(world.saga_slot_holders.iter().cloned().collect::<Vec<_>>(), admitted);
    }
    // A VIP order is admitted over the bound, and holds no slot.
    let (_, vip) = submit_tiered(&memory, "k-vip", "VIP").await;
    assert!(matches!(vip, IntakeOutcome::Accepted { new: true, .. }), "{vip:?}");
    assert_eq!(memory.world().saga_slot_holders.len(), 2);

    // A saga that ends (completed here; cancelled or needing attention alike) frees its slot, once.
    run(
        &memory,
        &admitted[0],
        &[(ReserveInventory, None), (ChargePayment, None), (DispatchShipping, None), (CompleteOrder, None)],
    )
    .await;
    run(&memory, &admitted[0], &[(CompleteOrder, None)]).await;
    assert_eq!(memory.world().saga_slot_holders.iter().collect::<Vec<_>>(), [&admitted[1]]);
    // The waiting submission, read again, is admitted and its saga starts.
    let again = intake(&memory).handle(&body, Some("corr-1")).await.expect("intake");
    assert!(matches!(&again, IntakeOutcome::Accepted { order_id, new: true } if *order_id == waiting), "{again:?}");
    assert!(memory.world().executions.contains_key(&waiting));
    assert_eq!(memory.world().saga_slot_holders.len(), 2);
}

#[tokio::test]
async fn a_full_bound_is_remembered_for_the_rest_of_the_batch_and_a_holder_read_again_keeps_its_slot() {
    let memory = Memory::with_stock(&[("SKU-1", 100)]);
    memory.world().saga_limit = SagaLimit::parse("1").expect("a bound");
    let service = intake(&memory);
    let submit = |key: &str| {
        let mut message = sample_submission(key);
        message["tier"] = "STANDARD".into();
        message.to_string()
    };
    let holder = submit("k-1");
    assert!(matches!(service.handle(&holder, None).await.expect("intake"), IntakeOutcome::Accepted { .. }));
    assert!(matches!(service.handle(&submit("k-2"), None).await.expect("intake"), IntakeOutcome::Deferred { .. }));
    // Within the moment the bound was seen reached, the next waits without a write (no idempotency claim).
    assert!(matches!(service.handle(&submit("k-3"), None).await.expect("intake"), IntakeOutcome::Deferred { .. }));
    assert!(!memory.world().idempotency.contains_key("k-3"), "deferred before any write");
    // A redelivered copy of the holder's submission, read by a fresh process, is the same order.
    let again = intake(&memory).handle(&holder, None).await.expect("intake");
    assert!(matches!(again, IntakeOutcome::Accepted { new: false, .. }), "{again:?}");
    assert_eq!(memory.world().saga_slot_holders.len(), 1);
}

/// Ends the execution that runs the order now, as Step Functions would: stopped, timed out or failed.
fn end_execution(memory: &Memory, order_id: &str, how: ExecutionStatus) {
    let name = nexus_ops::retry::current_execution(&order(memory, order_id)).expect("an execution");
    memory.world().ended_executions.insert(name, how);
}

fn rules(report: &invariants::Report) -> Vec<&'static str> {
    report.violations.iter().map(|v| v.rule).collect()
}

#[tokio::test]
async fn an_execution_that_ends_before_the_order_does_is_caught_and_retry_takes_the_order_to_an_end() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    // Stopped after the charge: compensated by a new execution, cancelled as Saga.ExecutionEnded.
    let charged = submit(&memory, "k-stopped", "tok_ok").await;
    run(&memory, &charged, &[(ReserveInventory, None), (ChargePayment, None)]).await;
    end_execution(&memory, &charged, ExecutionStatus::Aborted);
    // Its completion step failed for good after dispatch (the order's own steps undeliverable): completed.
    let shipped = submit(&memory, "k-shipped", "tok_ok").await;
    run(&memory, &shipped, &[(ReserveInventory, None), (ChargePayment, None), (DispatchShipping, None)]).await;
    end_execution(&memory, &shipped, ExecutionStatus::Failed);
    // Timed out during its compensation: the compensation runs again, for its own reason.
    let compensating = submit(&memory, "k-timed-out", "tok_ok").await;
    let reason = Some("Payment.Declined");
    run(&memory, &compensating, &[(ReserveInventory, None), (ReleaseInventory, reason)]).await;
    end_execution(&memory, &compensating, ExecutionStatus::TimedOut);

    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert_eq!(rules(&report), vec!["execution-ended-order-open"; 3], "{:?}", report.violations);
    assert!(report.violations.iter().all(|v| v.detail.contains("nexus retry")), "{:?}", report.violations);

    let retried = retry(&memory, &charged).await.expect("a way out");
    assert_eq!((retried.kind, retried.status), (RetryKind::Compensation, OrderStatus::Compensating));
    assert_eq!(order(&memory, &charged).reason.as_deref(), Some(nexus_ops::retry::EXECUTION_ENDED));
    let ended = Some(nexus_ops::retry::EXECUTION_ENDED);
    run(
        &memory,
        &charged,
        &[(CancelShipment, ended), (RefundPayment, ended), (ReleaseInventory, ended), (CancelOrder, ended)],
    )
    .await;
    assert_eq!(order(&memory, &charged).status, OrderStatus::Cancelled);

    let completed = retry(&memory, &shipped).await.expect("completed");
    assert_eq!((completed.kind, completed.status), (RetryKind::Completion, OrderStatus::Completed));

    let rerun = retry(&memory, &compensating).await.expect("compensation rerun");
    assert_eq!(rerun.kind, RetryKind::Compensation);
    run(&memory, &compensating, &[(ReleaseInventory, reason), (CancelOrder, reason)]).await;
    let cancelled = order(&memory, &compensating);
    assert_eq!((cancelled.status, cancelled.reason.as_deref()), (OrderStatus::Cancelled, reason));

    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert!(report.is_clean(), "{:?}", report.violations);
    assert_eq!(memory.world().available("SKU-1"), 10 - 2, "only the completed order holds its units");
}

#[tokio::test]
async fn a_slot_taken_under_a_bound_is_freed_when_its_saga_ends_even_after_the_bound_is_turned_off() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    memory.world().saga_limit = SagaLimit::parse("4").expect("a bound");
    let (_, outcome) = submit_tiered(&memory, "k-toggled", "STANDARD").await;
    let IntakeOutcome::Accepted { order_id: id, .. } = outcome else { panic!("admitted: {outcome:?}") };
    assert!(memory.world().saga_slot_holders.contains(&id));
    memory.world().saga_limit = SagaLimit::parse("0").expect("no bound"); // turned off while the saga runs
    run(
        &memory,
        &id,
        &[(ReserveInventory, None), (ChargePayment, None), (DispatchShipping, None), (CompleteOrder, None)],
    )
    .await;
    assert!(memory.world().saga_slot_holders.is_empty(), "the slot it took is freed");
    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert!(report.is_clean(), "{:?}", report.violations);

    // A slot held by an ended saga is a leak the checker names.
    memory.world().saga_slot_holders.insert(id.clone());
    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    assert_eq!(rules(&report), vec!["saga-slot-freed"], "{:?}", report.violations);
}

#[tokio::test]
async fn a_first_event_whose_publish_failed_goes_out_with_the_redelivery() {
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    let body = sample_submission("k-first-event").to_string();
    memory.world().publishes_unavailable = true;
    intake(&memory).handle(&body, None).await.expect_err("the publish after the put failed");
    assert_eq!(memory.world().orders.len(), 1, "the order was written");
    assert!(memory.world().executions.is_empty(), "no saga starts before its first event is out");
    memory.world().publishes_unavailable = false;
    intake(&memory).handle(&body, None).await.expect("the redelivery");
    let published: Vec<_> = memory.world().published.iter().map(|e| (e.sequence, e.status)).collect();
    assert_eq!(published, vec![(1, OrderStatus::Pending)]);
    assert_eq!(memory.world().executions.len(), 1);

    // A rejection too: its redelivery publishes the REJECTED event the first delivery could not.
    let mut bad = sample_submission("k-bad");
    bad["items"][0]["quantity"] = 0.into();
    memory.world().publishes_unavailable = true;
    intake(&memory).handle(&bad.to_string(), None).await.expect_err("the publish after the put failed");
    memory.world().publishes_unavailable = false;
    intake(&memory).handle(&bad.to_string(), None).await.expect("the redelivery");
    assert!(memory.world().published.iter().any(|e| e.status == OrderStatus::Rejected), "the rejection is out");
}

#[tokio::test]
async fn one_order_per_idempotency_key_and_no_shipment_on_a_cancelled_order() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    let id = submit(&memory, "k-ship", "tok_ok").await;
    run(&memory, &id, &[(ReserveInventory, None), (ChargePayment, None), (DispatchShipping, None)]).await;
    // Broken on purpose: cancelled without its shipment undone, and a second order under the same key.
    {
        let mut world = memory.world();
        let order = world.orders.get_mut(&id).expect("the order");
        order.status = OrderStatus::Cancelled;
        let mut twin = order.clone();
        twin.order_id = "another".into();
        twin.status = OrderStatus::Rejected;
        world.orders.insert("another".into(), twin);
    }
    let report = invariants::check(&snapshot(&memory), chrono::Utc::now().timestamp());
    let found = rules(&report);
    assert!(found.contains(&"cancelled-no-shipment"), "{found:?}");
    assert!(found.contains(&"one-order-per-key"), "{found:?}");
}

#[tokio::test]
async fn a_slot_held_by_an_ended_or_unknown_saga_is_reclaimed_and_one_in_flight_is_kept() {
    use CommandName::*;
    let memory = Memory::with_stock(&[("SKU-1", 10)]);
    memory.world().saga_limit = SagaLimit::parse("4").expect("a bound");
    let (_, first) = submit_tiered(&memory, "k-running", "STANDARD").await;
    let IntakeOutcome::Accepted { order_id: running, .. } = first else { panic!("admitted: {first:?}") };
    let (_, second) = submit_tiered(&memory, "k-ended", "STANDARD").await;
    let IntakeOutcome::Accepted { order_id: ended, .. } = second else { panic!("admitted: {second:?}") };
    run(
        &memory,
        &ended,
        &[(ReserveInventory, None), (ChargePayment, None), (DispatchShipping, None), (CompleteOrder, None)],
    )
    .await;
    // Leaked, as a bug or a hand edit would leave them: the ended saga's slot, and one of no order at all.
    memory.world().saga_slot_holders.extend([ended.clone(), "no-such-order".to_owned()]);

    let mut reclaimed = nexus_ops::slots::reclaim(&memory, &memory).await.expect("reclaimed");
    reclaimed.sort();
    let mut expected = vec![ended, "no-such-order".to_owned()];
    expected.sort();
    assert_eq!(reclaimed, expected);
    assert_eq!(
        memory.world().saga_slot_holders.iter().collect::<Vec<_>>(),
        [&running],
        "the saga in flight keeps its slot"
    );
    assert!(nexus_ops::slots::reclaim(&memory, &memory).await.expect("again").is_empty(), "nothing twice");
}
