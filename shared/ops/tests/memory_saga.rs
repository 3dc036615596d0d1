//! The invariant checker over sagas run in the in-memory twin: the twin, the DynamoDB adapter and the
//! checker share one typed ledger, so a world the services leave is checkable as is, and a broken one is
//! caught.

use nexus_core::domain::ledger::{Effect, EffectState};
use nexus_core::domain::messages::{COMMAND_SCHEMA_VERSION, CommandName, ServiceCommand};
use nexus_core::services::SagaStep;
use nexus_core::services::intake::IntakeOutcome;
use nexus_core::services::inventory::InventoryService;
use nexus_core::services::order_commands::OrderCommandService;
use nexus_core::services::payment::PaymentService;
use nexus_core::services::shipping::ShippingService;
use nexus_ops::invariants::{self, Snapshot};
use nexus_testkit::{Memory, intake, sample_submission};

async fn submit(memory: &Memory, key: &str, token: &str) -> String {
    let mut message = sample_submission(key);
    message["payment"]["token"] = token.into();
    match intake(memory).handle(&message.to_string(), None).await.expect("intake") {
        IntakeOutcome::Accepted { order_id, .. } => order_id,
        other => panic!("not accepted: {other:?}"),
    }
}

async fn run(memory: &Memory, order_id: &str, steps: &[(CommandName, Option<&str>)]) {
    for (name, reason) in steps {
        let command = ServiceCommand {
            schema_version: COMMAND_SCHEMA_VERSION,
            command: *name,
            order_id: order_id.into(),
            correlation_id: "c".into(),
            execution_arn: "arn".into(),
            task_token: format!("{order_id}-{}", name.as_str()),
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
        reply.expect("step handled");
    }
}

fn snapshot(memory: &Memory) -> Snapshot {
    let world = memory.world();
    Snapshot {
        orders: world.orders.values().cloned().collect(),
        events: world.events.values().flatten().cloned().collect(),
        stock: world.stock.values().cloned().collect(),
        ledger: world.ledger.values().cloned().collect(),
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
    assert_eq!(memory.world().entry(&declined, Effect::Reservation).map(|e| e.state), Some(EffectState::Released));
}
