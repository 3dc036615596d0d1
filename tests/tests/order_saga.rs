//! The order saga end to end on the local stack: every order is submitted through the orders SNS topic and
//! checked in DynamoDB (order, stock, effects ledger, event log), in the execution history and in the
//! notifications recorded.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use nexus_core::domain::ledger::{Effect, EffectState, LedgerEntry};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::saga_error::SagaError;
use nexus_core::domain::status::OrderStatus;
use nexus_tests::{LocalStack, eventually, run_id};
use serde_json::{Value, json};

const STACK: &str = "NEXUS_MAIN_STACK";
const SAGA_WAIT: Duration = Duration::from_secs(90);

struct Saga {
    stack: LocalStack,
    dynamo: aws_sdk_dynamodb::Client,
    run: String,
}

impl Saga {
    async fn connect() -> Self {
        let stack = LocalStack::connect(STACK).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&stack.config);
        Self { stack, dynamo, run: run_id() }
    }

    /// A SKU of this test alone, with `available` units at the sample's price.
    async fn sku(&self, name: &str, available: u64) -> String {
        let sku = format!("T-{}-{name}", self.run);
        let store = self.stack.dynamo();
        store.set_stock(&sku, available).await.expect("set stock");
        store.set_price(&sku, nexus_testkit::SAMPLE_UNIT_PRICE_CENTS).await.expect("set price");
        sku
    }

    async fn stock(&self, sku: &str) -> u64 {
        let item = self
            .dynamo
            .get_item()
            .table_name(self.stack.output("InventoryTableName"))
            .key("sku", AttributeValue::S(sku.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get stock")
            .item
            .expect("sku exists");
        match item.get("available") {
            Some(AttributeValue::N(n)) => n.parse().expect("number"),
            other => panic!("available is {other:?}"),
        }
    }

    /// The contract's sample, keyed for this run, with these lines.
    fn order(&self, key: &str, items: &[(&str, u32)]) -> Value {
        let mut message = nexus_testkit::sample_submission(&format!("{}-{key}", self.run));
        message["items"] =
            items.iter().map(|(sku, qty)| json!({"sku": sku, "quantity": qty, "unitPriceCents": nexus_testkit::SAMPLE_UNIT_PRICE_CENTS})).collect();
        message
    }

    /// Publishes to the orders topic, as `aws sns publish --topic-arn $ORDERS_TOPIC --message …` does.
    async fn submit(&self, message: &str) {
        aws_sdk_sns::Client::new(&self.stack.config)
            .publish()
            .topic_arn(self.stack.output("OrdersTopicArn"))
            .message(message)
            .send()
            .await
            .expect("publish order");
    }

    async fn get_order(&self, order_id: &str) -> Option<Order> {
        let item = self
            .dynamo
            .get_item()
            .table_name(self.stack.output("OrdersTableName"))
            .key("orderId", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get order")
            .item?;
        Some(serde_dynamo::from_item(item).expect("order item"))
    }

    async fn wait_terminal(&self, order_id: &str) -> Order {
        let finished =
            eventually(SAGA_WAIT, || async { self.get_order(order_id).await.filter(|o| o.status.is_terminal()) }).await;
        match finished {
            Some(order) => order,
            None => panic!("order {order_id} did not finish: {:?}", self.get_order(order_id).await.map(|o| o.status)),
        }
    }

    async fn query<T: for<'de> serde::Deserialize<'de>>(&self, table_output: &str, order_id: &str) -> Vec<T> {
        let output = self
            .dynamo
            .query()
            .table_name(self.stack.output(table_output))
            .key_condition_expression("orderId = :id")
            .expression_attribute_values(":id", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("query");
        output.items.unwrap_or_default().into_iter().map(|i| serde_dynamo::from_item(i).expect("item")).collect()
    }

    /// The order's ledger, read table by table as the stack's outputs name them; each entry must be in its
    /// writer's table.
    async fn ledger(&self, order_id: &str) -> HashMap<String, LedgerEntry> {
        let mut ledger = HashMap::new();
        for (output, writer) in [
            ("InventoryLedgerTableName", Some(Effect::Reservation)),
            ("PaymentLedgerTableName", Some(Effect::Payment)),
            ("ShippingLedgerTableName", Some(Effect::Shipment)),
            ("NotificationLedgerTableName", None),
        ] {
            for entry in self.query::<LedgerEntry>(output, order_id).await {
                assert_eq!(Effect::from_key(&entry.entry), writer, "{} in {output}", entry.entry);
                ledger.insert(entry.entry.clone(), entry);
            }
        }
        ledger
    }

    async fn events(&self, order_id: &str) -> Vec<OrderEvent> {
        self.query("OrderEventsTableName", order_id).await
    }

    async fn history(&self, order: &Order) -> (String, Vec<aws_sdk_sfn::types::HistoryEvent>) {
        let sfn = aws_sdk_sfn::Client::new(&self.stack.config);
        let arn = order.execution_arn.clone().expect("execution arn");
        // The order reaches its final status a moment before the execution's last state finishes.
        let status = eventually(Duration::from_secs(30), || async {
            let status = sfn.describe_execution().execution_arn(&arn).send().await.expect("describe execution").status;
            (status != aws_sdk_sfn::types::ExecutionStatus::Running).then_some(status)
        })
        .await
        .expect("execution finished");
        let mut events = Vec::new();
        let mut pages = sfn.get_execution_history().execution_arn(&arn).into_paginator().items().send();
        while let Some(event) = pages.next().await {
            events.push(event.expect("history event"));
        }
        (status.as_str().to_owned(), events)
    }
}

fn order_id_of(message: &Value) -> String {
    nexus_core::domain::ids::order_id_for_key(message["idempotencyKey"].as_str().expect("key"))
}

fn statuses(events: &[OrderEvent]) -> Vec<OrderStatus> {
    events.iter().map(|e| e.status).collect()
}

fn assert_gap_free(events: &[OrderEvent]) {
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>(), "event log gap-free and in order");
}

#[tokio::test]
async fn happy_path_completes_with_one_charge_one_shipment_and_a_notification() {
    let saga = Saga::connect().await;
    let (a, b) = (saga.sku("A", 10).await, saga.sku("B", 10).await);
    let message = saga.order("happy", &[(&a, 2), (&b, 1)]);
    let order_id = order_id_of(&message);
    saga.submit(&message.to_string()).await;

    let order = saga.wait_terminal(&order_id).await;
    assert_eq!(order.status, OrderStatus::Completed, "reason: {:?}", order.reason);
    assert_eq!((saga.stock(&a).await, saga.stock(&b).await), (8, 9), "stock decremented");
    let ledger = saga.ledger(&order_id).await;
    assert_eq!(ledger["reservation"].state, EffectState::Reserved);
    assert_eq!(
        (ledger["payment"].state, ledger["payment"].amount_cents),
        (EffectState::Charged, 3 * 1999),
        "one charge"
    );
    assert_eq!(ledger["shipment"].state, EffectState::Dispatched, "one shipment");

    let events = saga.events(&order_id).await;
    assert_eq!(
        statuses(&events),
        [
            OrderStatus::Pending,
            OrderStatus::InventoryReserved,
            OrderStatus::PaymentCharged,
            OrderStatus::Shipped,
            OrderStatus::Completed
        ]
    );
    assert_gap_free(&events);
    let notified = eventually(Duration::from_secs(30), || async {
        let ledger = saga.ledger(&order_id).await;
        let completed = events.last().map(|e| LedgerEntry::notification_key(&e.event_id)).unwrap_or_default();
        ledger.get(&completed).map(|n| n.email_hash.clone())
    })
    .await
    .expect("the customer was notified of the completion");
    let secrets = aws_sdk_secretsmanager::Client::new(&saga.stack.config);
    let emails = nexus_aws::secrets::email_hasher(&secrets, &saga.stack.output("EmailHashSecretArn"))
        .await
        .expect("the stack's email hash key");
    assert_eq!(notified, emails.hash("asha@example.com"), "the keyed hash, never the address");

    let (status, history) = saga.history(&order).await;
    assert_eq!(status, "SUCCEEDED");
    let entered: Vec<String> =
        history.iter().filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned())).collect();
    println!("happy path: {} state transitions: {}", entered.len(), entered.join(" → "));
    assert_eq!(entered, ["ReserveInventory", "ChargePayment", "DispatchShipping", "CompleteOrder"]);
}

#[tokio::test]
async fn declined_payment_cancels_restores_stock_and_charges_nothing() {
    let saga = Saga::connect().await;
    let a = saga.sku("A", 10).await;
    let mut message = saga.order("decline", &[(&a, 3)]);
    message["payment"]["token"] = json!("tok_decline");
    let order_id = order_id_of(&message);
    saga.submit(&message.to_string()).await;

    let order = saga.wait_terminal(&order_id).await;
    assert_eq!(
        (order.status, order.reason.as_deref()),
        (OrderStatus::Cancelled, Some(SagaError::PaymentDeclined.as_str()))
    );
    assert_eq!(saga.stock(&a).await, 10, "stock restored");
    let ledger = saga.ledger(&order_id).await;
    assert_eq!(ledger["reservation"].state, EffectState::Released);
    assert!(ledger.get("payment").is_none_or(|p| p.state != EffectState::Charged), "no charge");
    let events = saga.events(&order_id).await;
    assert_eq!(statuses(&events).last(), Some(&OrderStatus::Cancelled));
    assert!(statuses(&events).contains(&OrderStatus::Compensating));
    assert_gap_free(&events);
}

#[tokio::test]
async fn unserved_postal_code_cancels_refunds_and_restores_stock() {
    let saga = Saga::connect().await;
    let a = saga.sku("A", 10).await;
    let mut message = saga.order("ship", &[(&a, 4)]);
    message["shippingAddress"]["postalCode"] = json!("00000");
    let order_id = order_id_of(&message);
    saga.submit(&message.to_string()).await;

    let order = saga.wait_terminal(&order_id).await;
    assert_eq!(
        (order.status, order.reason.as_deref()),
        (OrderStatus::Cancelled, Some(SagaError::ShippingUnavailable.as_str()))
    );
    assert_eq!(saga.stock(&a).await, 10, "stock restored");
    let ledger = saga.ledger(&order_id).await;
    assert_eq!(
        (ledger["payment"].state, ledger["payment"].amount_cents),
        (EffectState::Refunded, 4 * 1999),
        "refund recorded"
    );
    assert!(ledger.get("shipment").is_none_or(|s| s.state != EffectState::Dispatched), "nothing shipped");
    let (status, history) = saga.history(&order).await;
    assert_eq!(status, "SUCCEEDED", "a cancellation is a handled outcome");
    let entered: Vec<String> =
        history.iter().filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned())).collect();
    let compensations: Vec<&str> = entered
        .iter()
        .map(String::as_str)
        .filter(|s| ["RefundPayment", "ReleaseInventory", "CancelOrder"].contains(s))
        .collect();
    assert_eq!(compensations, ["RefundPayment", "ReleaseInventory", "CancelOrder"], "compensations in reverse order");
}

#[tokio::test]
async fn out_of_stock_cancels_with_nothing_reserved_and_no_charge() {
    let saga = Saga::connect().await;
    let a = saga.sku("A", 10).await;
    let message = saga.order("oos", &[(&a, 11)]);
    let order_id = order_id_of(&message);
    saga.submit(&message.to_string()).await;

    let order = saga.wait_terminal(&order_id).await;
    assert_eq!(
        (order.status, order.reason.as_deref()),
        (OrderStatus::Cancelled, Some(SagaError::InventoryOutOfStock.as_str()))
    );
    assert_eq!(saga.stock(&a).await, 10);
    let ledger = saga.ledger(&order_id).await;
    // The refusal is recorded (so every copy of the command answers the same); it holds no stock.
    let reservation = ledger.get("reservation").expect("the refusal is recorded");
    assert_eq!((reservation.state, reservation.lines.len()), (EffectState::OutOfStock, 0), "{ledger:?}");
    assert!(!ledger.contains_key("payment"), "{ledger:?}");
}

#[tokio::test]
async fn a_two_item_order_short_of_one_item_reserves_nothing() {
    let saga = Saga::connect().await;
    let (a, b) = (saga.sku("A", 5).await, saga.sku("B", 1).await);
    let message = saga.order("partial", &[(&a, 2), (&b, 3)]);
    let order_id = order_id_of(&message);
    saga.submit(&message.to_string()).await;

    let order = saga.wait_terminal(&order_id).await;
    assert_eq!(
        (order.status, order.reason.as_deref()),
        (OrderStatus::Cancelled, Some(SagaError::InventoryOutOfStock.as_str()))
    );
    assert_eq!((saga.stock(&a).await, saga.stock(&b).await), (5, 1), "nothing reserved");
}

#[tokio::test]
async fn the_same_idempotency_key_twice_makes_one_order_and_one_execution() {
    let saga = Saga::connect().await;
    let a = saga.sku("A", 10).await;
    let message = saga.order("dup", &[(&a, 1)]).to_string();
    let order_id = order_id_of(&serde_json::from_str(&message).expect("json"));
    saga.submit(&message).await;
    saga.submit(&message).await;
    let order = saga.wait_terminal(&order_id).await;
    saga.submit(&message).await; // and once more after it finished
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(saga.stock(&a).await, 9, "reserved once");
    let sfn = aws_sdk_sfn::Client::new(&saga.stack.config);
    let executions = sfn
        .list_executions()
        .state_machine_arn(saga.stack.output("OrderSagaStateMachineArn"))
        .max_results(1000)
        .send()
        .await
        .expect("list executions");
    let named = executions.executions().iter().filter(|e| e.name() == order_id).count();
    assert_eq!(named, 1, "one execution");
    assert_eq!(saga.events(&order_id).await.len(), 5, "one order, one history");
}

#[tokio::test]
async fn invalid_orders_are_rejected_with_a_reason_and_nothing_is_lost() {
    let saga = Saga::connect().await;
    let a = saga.sku("A", 10).await;

    let mut zero = saga.order("zero", &[(&a, 1)]);
    zero["items"][0]["quantity"] = json!(0);
    let unknown = saga.order("unknown", &[("NO-SUCH-SKU", 1)]);
    let mut too_many = saga.order("many", &[(&a, 1)]);
    too_many["items"] =
        json!((0..51).map(|_| json!({"sku": a, "quantity": 1, "unitPriceCents": 1})).collect::<Vec<_>>());
    let mut version = saga.order("version", &[(&a, 1)]);
    version["schemaVersion"] = json!(99);
    let malformed = format!("{{\"schemaVersion\": 1, \"idempotencyKey\": \"{}-broken\", oops", saga.run);
    let valid = saga.order("after", &[(&a, 1)]);
    for message in [&zero, &unknown, &too_many, &version] {
        saga.submit(&message.to_string()).await;
    }
    saga.submit(&malformed).await;
    saga.submit(&valid.to_string()).await;

    for (message, reason) in [
        (&zero, "NonPositiveQuantity:items[0].quantity"),
        (&unknown, "UnknownSku:items"),
        (&too_many, "TooManyItems:items"),
        (&version, "UnsupportedSchemaVersion:schemaVersion"),
    ] {
        let order = saga.wait_terminal(&order_id_of(message)).await;
        assert_eq!((order.status, order.reason.as_deref()), (OrderStatus::Rejected, Some(reason)));
        assert!(order.rejection.is_some(), "machine-readable rejection recorded");
    }
    // Not even an idempotency key can be read from the malformed message: it is parked in the intake DLQ.
    let sqs = saga.stack.sqs();
    let parked = eventually(Duration::from_secs(30), || async {
        let received = sqs
            .receive_message()
            .queue_url(saga.stack.output("OrderIntakeDlqUrl"))
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive DLQ");
        received.messages().iter().find(|m| m.body().is_some_and(|b| b.contains(&saga.run))).cloned()
    })
    .await
    .expect("malformed message in the intake DLQ");
    let code = parked.message_attributes().and_then(|a| a.get("rejectionCode")).and_then(|v| v.string_value());
    assert_eq!(code, Some("MalformedJson"));
    // The function survived all of it: the valid order behind them completes.
    assert_eq!(saga.wait_terminal(&order_id_of(&valid)).await.status, OrderStatus::Completed);
}

/// Whatever arrives, no publish of the saga can outgrow SNS's 256 KB: a 130 KB `correlationId` attribute is
/// replaced by the order id (every command carries the correlation id in its body and its attributes), and a
/// 250 KB submission is rejected with a reason instead of stalling anything.
#[tokio::test]
async fn oversized_input_is_bounded_and_ends_with_a_reason() {
    let saga = Saga::connect().await;
    let a = saga.sku("A", 10).await;
    let huge_correlation = saga.order("huge-correlation", &[(&a, 1)]);
    aws_sdk_sns::Client::new(&saga.stack.config)
        .publish()
        .topic_arn(saga.stack.output("OrdersTopicArn"))
        .message(huge_correlation.to_string())
        .message_attributes(
            nexus_core::domain::messages::attributes::CORRELATION_ID,
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value("c".repeat(130 * 1024))
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("publish with a 130 KB correlation id");
    let order_id = order_id_of(&huge_correlation);
    let order = saga.wait_terminal(&order_id).await;
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.correlation_id, order_id, "the order id stands in for the unusable correlation id");
    let (_, history) = saga.history(&order).await;
    let largest_command = history
        .iter()
        .filter_map(|e| e.task_scheduled_event_details().map(|d| d.parameters().len()))
        .max()
        .expect("commands were sent");
    assert!(largest_command < 4 * 1024, "every command stays small: {largest_command} bytes");

    let mut huge_body = saga.order("huge-body", &[(&a, 1)]);
    huge_body["customerId"] = json!("x".repeat(250 * 1024));
    saga.submit(&huge_body.to_string()).await;
    let rejected = saga.wait_terminal(&order_id_of(&huge_body)).await;
    assert_eq!(rejected.status, OrderStatus::Rejected, "{rejected:?}");
    assert!(rejected.reason.as_deref().is_some_and(|r| r.contains("customerId")), "{:?}", rejected.reason);
}
