//! Throws 10 000+ generated malformed, oversized, wrongly typed and adversarial order messages at the intake
//! handler (in-memory adapters): it never panics or errors, and every message ends either as an order
//! (accepted or REJECTED with a machine-readable reason) or parked in the DLQ with its reason. None is dropped.

use nexus_core::domain::status::OrderStatus;
use nexus_core::services::intake::IntakeOutcome;
use nexus_testkit::{Memory, MemoryIntake, intake, sample_submission};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "schemaVersion",
    "orderId",
    "idempotencyKey",
    "customerId",
    "customerEmail",
    "tier",
    "currency",
    "items",
    "payment",
    "shippingAddress",
];

/// The contract's sample with one field removed or replaced by something else, possibly inside an item.
fn mutated() -> impl Strategy<Value = String> {
    ("[a-z0-9]{1,16}", 0..FIELDS.len(), any_json(), any::<bool>(), 0usize..60, any::<i64>()).prop_map(
        |(key, field, value, remove, items, quantity)| {
            let mut message = sample_submission(&key);
            match field % 4 {
                0 if remove => {
                    message.as_object_mut().map(|m| m.remove(FIELDS[field]));
                }
                0 | 1 => message[FIELDS[field]] = value,
                2 => {
                    message["items"] = Value::from(
                        (0..items)
                            .map(
                                |i| json!({"sku": format!("SKU-{}", i % 3), "quantity": quantity, "unitPriceCents": 1}),
                            )
                            .collect::<Vec<_>>(),
                    );
                }
                _ => message["items"][0][["sku", "quantity", "unitPriceCents"][field % 3]] = value,
            }
            message.to_string()
        },
    )
}

fn adversarial() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        Just("\u{0}".repeat(10)),
        Just("{".repeat(10_000)),
        Just("[".repeat(200) + &"]".repeat(200)),
        Just(format!("{{\"schemaVersion\":1,\"idempotencyKey\":\"{}\"}}", "k".repeat(300 * 1024))),
        Just(String::new()),
        Just("null".into()),
        Just("{\"schemaVersion\":1e400}".into()),
        Just("{\"schemaVersion\":1,\"idempotencyKey\":\"\\ud800\"}".into()),
    ]
}

fn check(intake: &MemoryIntake, memory: &Memory, runtime: &tokio::runtime::Runtime, body: &str) {
    let parked_before = memory.world().parked.len();
    let outcome = runtime.block_on(intake.handle(body, None)).expect("intake never errors on bad input");
    match outcome {
        IntakeOutcome::Rejected { order_id, rejection } => {
            let world = memory.world();
            let order = world.orders.get(&order_id).expect("rejected message recorded as an order");
            // A rejected message for an existing id leaves the first order as it was.
            if order.status == OrderStatus::Rejected {
                assert!(order.reason.as_deref().is_some_and(|r| !r.is_empty()));
            }
            assert!(!rejection.reason().is_empty());
        }
        IntakeOutcome::Parked { rejection } => {
            let world = memory.world();
            assert_eq!(world.parked.len(), parked_before + 1, "parked exactly once");
            assert_eq!(world.parked.last().map(|(b, r)| (b.as_str(), r)), Some((body, &rejection)));
        }
        IntakeOutcome::Accepted { order_id, .. } => {
            assert!(memory.world().orders.contains_key(&order_id), "accepted orders are stored");
        }
        IntakeOutcome::Deferred { .. } => {
            let world = memory.world();
            assert_eq!(world.deferred.last().map(|(b, ..)| b.as_str()), Some(body), "put back, never dropped");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_contract_messages_are_rejected_or_parked_never_dropped(body in mutated()) {
        let memory = Memory::with_stock(&[("SKU-1", 1_000), ("SKU-2", 1_000)]);
        let intake = intake(&memory);
        check(&intake, &memory, &runtime(), &body);
    }

    #[test]
    fn arbitrary_json_is_rejected_or_parked(value in any_json()) {
        let memory = Memory::with_stock(&[("SKU-1", 1_000)]);
        let intake = intake(&memory);
        check(&intake, &memory, &runtime(), &value.to_string());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn adversarial_bodies_never_panic(body in adversarial()) {
        let memory = Memory::with_stock(&[("SKU-1", 1_000)]);
        let intake = intake(&memory);
        check(&intake, &memory, &runtime(), &body);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}
