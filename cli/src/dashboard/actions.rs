//! The dashboard's API: the live screen (server-sent events, or one read), an order's detail, and the
//! controls (chaos, DLQ redrive, a sample order). Every refusal is `{"error", "message"}` with its status.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use nexus_core::chaos::{ChaosSettings, SERVICES, ServiceChaos};
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::submission;
use nexus_core::ports::{ChaosSource, EventLog, OrderStore};
use nexus_ops::dlq;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Shared, refusal};
use crate::logs;

/// Log lines shown with an order, newest kept.
const ORDER_LOG_LINES: usize = 300;
/// How long a redrive may take before the page is answered (the move goes on in SQS regardless).
const REDRIVE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_QUANTITY: u32 = 10;

fn failed(what: &str, error: impl std::fmt::Display) -> Response {
    refusal(StatusCode::BAD_GATEWAY, "AwsCallFailed", format!("{what}: {error}"))
}

pub async fn screen(State(dashboard): State<Shared>) -> Response {
    let screen = dashboard.screens.borrow().clone();
    Json(&*screen).into_response()
}

/// Each new screen as one `screen` event, the current one first.
pub async fn events(State(dashboard): State<Shared>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut screens = dashboard.screens.clone();
    screens.mark_changed();
    let stream = futures::stream::unfold(screens, |mut screens| async move {
        screens.changed().await.ok()?;
        let screen = screens.borrow_and_update().clone();
        let data = serde_json::to_string(&*screen).unwrap_or_else(|e| json!({"errors": [e.to_string()]}).to_string());
        Some((Ok(Event::default().event("screen").data(data)), screens))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Order ids are derived (UUID v5 text); anything longer or stranger is not one.
fn plausible_order_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:#".contains(&b))
}

/// The order (email as its hash), its events, its execution's states and its log lines from every function.
pub async fn order_detail(State(dashboard): State<Shared>, Path(order_id): Path<String>) -> Response {
    if !plausible_order_id(&order_id) {
        return refusal(StatusCode::BAD_REQUEST, "BadOrderId", "not an order id");
    }
    let dynamo = &dashboard.dynamo;
    let order = match dynamo.get(&order_id).await {
        Ok(Some(order)) => order,
        Ok(None) => return refusal(StatusCode::NOT_FOUND, "OrderNotFound", format!("no order {order_id}")),
        Err(e) => return failed("read the order", e),
    };
    let events = match dynamo.events(&order_id).await {
        Ok(events) => events,
        Err(e) => return failed("read the order's events", e),
    };
    let execution = match &order.execution_arn {
        Some(arn) => match crate::orders::execution_history(&dashboard.clients.sfn, arn).await {
            Ok(execution) => execution,
            Err(e) => return failed("read the execution history", format!("{e:#}")),
        },
        None => crate::orders::ExecutionHistory::default(),
    };
    let since_ms = crate::render::parse_time(&order.created_at).map_or(0, |t| t.timestamp_millis() - 1_000);
    let lines = match logs::read(
        &dashboard.clients.logs,
        &dashboard.nexus.function_log_groups(),
        since_ms,
        &mut HashSet::new(),
    )
    .await
    {
        Ok(lines) => lines,
        Err(e) => return failed("read the logs", format!("{e:#}")),
    };
    let mut lines: Vec<Value> = lines
        .into_iter()
        .filter(|l| l.json.as_ref().and_then(|j| j.get("orderId")).and_then(Value::as_str) == Some(order_id.as_str()))
        .map(|l| json!({"function": l.function, "timestampMs": l.timestamp_ms, "line": l.json}))
        .collect();
    let dropped = lines.len().saturating_sub(ORDER_LOG_LINES);
    lines.drain(..dropped);
    // The email only as its keyed hash (as the CLI prints it), and no address: no customer data on the page.
    let mut order_json = crate::orders::order_json(&order, &dashboard.emails);
    if let Some(fields) = order_json.as_object_mut() {
        fields.remove("shippingAddress");
    }
    Json(json!({
        "order": order_json, "events": events, "states": execution.states, "executionEnded": execution.ended,
        "logs": lines, "logsDropped": dropped
    }))
    .into_response()
}

pub async fn set_chaos(
    State(dashboard): State<Shared>,
    Path(service): Path<String>,
    body: Result<Json<ServiceChaos>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !SERVICES.contains(&service.as_str()) {
        return refusal(StatusCode::NOT_FOUND, "UnknownService", format!("the services are {}", SERVICES.join(", ")));
    }
    let chaos = match body {
        Ok(Json(chaos)) => chaos,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, "BadChaosSettings", e.body_text()),
    };
    if let Err(why) = chaos.check() {
        return refusal(StatusCode::BAD_REQUEST, "BadChaosSettings", why);
    }
    let store = &dashboard.dynamo;
    let mut settings = match store.load().await {
        Ok(settings) => settings,
        Err(e) => return failed("read the chaos settings", e),
    };
    settings.services.insert(service, chaos);
    match store.save_chaos(&settings).await {
        Ok(()) => Json(settings).into_response(),
        Err(e) => failed("write the chaos settings", e),
    }
}

pub async fn clear_chaos(State(dashboard): State<Shared>) -> Response {
    let settings = ChaosSettings::default();
    match dashboard.dynamo.save_chaos(&settings).await {
        Ok(()) => Json(settings).into_response(),
        Err(e) => failed("write the chaos settings", e),
    }
}

pub async fn redrive(State(dashboard): State<Shared>, Path(queue): Path<String>) -> Response {
    let Some(pair) = dashboard.nexus.queues().into_iter().find(|q| q.name == queue) else {
        return refusal(StatusCode::NOT_FOUND, "UnknownQueue", format!("no queue {queue}"));
    };
    match dlq::redrive(&dashboard.clients.sqs, &pair.dlq_url, REDRIVE_TIMEOUT).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => failed("redrive", e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleOrder {
    pub tier: Tier,
    pub sku: String,
    #[serde(default = "one")]
    pub quantity: u32,
}

fn one() -> u32 {
    1
}

/// The sample customer of a tier: the tier is the customer's record (`infra/customers.json` records
/// `c-sample-vip` as VIP), so a VIP sample is an order of that customer; the catalog prices it.
pub fn sample_customer(tier: Tier) -> &'static str {
    match tier {
        Tier::Vip => "c-sample-vip",
        Tier::Standard => "c-sample",
    }
}

/// A sample order of one SKU, published as a customer's would be (it goes through the same validation
/// the service applies, so a bad SKU or quantity is refused here with the contract's reason).
pub async fn submit(
    State(dashboard): State<Shared>,
    body: Result<Json<SampleOrder>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let sample = match body {
        Ok(Json(sample)) => sample,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, "BadSampleOrder", e.body_text()),
    };
    if !(1..=MAX_QUANTITY).contains(&sample.quantity) {
        return refusal(StatusCode::BAD_REQUEST, "BadSampleOrder", format!("quantity is 1 to {MAX_QUANTITY}"));
    }
    let order = json!({
        "schemaVersion": 1,
        "idempotencyKey": format!("dashboard-{}", uuid::Uuid::new_v4()),
        "customerId": sample_customer(sample.tier),
        "customerEmail": "dashboard.sample@example.com",
        "tier": sample.tier,
        "currency": "INR",
        "items": [{"sku": sample.sku, "quantity": sample.quantity}],
        "payment": {"method": "card", "token": "tok_ok"},
        "shippingAddress": {"line1": "1 MG Road", "city": "Indore", "postalCode": "452001", "country": "IN"}
    })
    .to_string();
    let order_id = match submission::validate(order.as_bytes()) {
        Ok(valid) => valid.order_id,
        Err(invalid) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "BadSampleOrder",
                format!("{}: {}", invalid.rejection.reason(), invalid.rejection.detail),
            );
        }
    };
    let topic = match dashboard.nexus.output("OrdersTopicArn") {
        Ok(topic) => topic,
        Err(e) => return failed("the orders topic", format!("{e:#}")),
    };
    match crate::submit::publish(&dashboard.clients.sns, &topic, &order).await {
        Ok((correlation_id, message_id)) => (
            StatusCode::ACCEPTED,
            Json(json!({"orderId": order_id, "correlationId": correlation_id, "messageId": message_id})),
        )
            .into_response(),
        Err(e) => failed("publish the order", format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_order_ids_are_looked_up() {
        assert!(plausible_order_id("6f1c2a0e-1d2b-5c3d-9e4f-0a1b2c3d4e5f"));
        assert!(!plausible_order_id(""));
        assert!(!plausible_order_id(&"a".repeat(129)));
        assert!(!plausible_order_id("../../etc/passwd"));
        assert!(!plausible_order_id("a b"));
    }

    #[test]
    fn sample_orders_refuse_unknown_fields_and_lanes() {
        assert!(serde_json::from_str::<SampleOrder>(r#"{"tier":"VIP","sku":"SKU-1"}"#).is_ok());
        assert!(serde_json::from_str::<SampleOrder>(r#"{"tier":"GOLD","sku":"SKU-1"}"#).is_err());
        assert!(serde_json::from_str::<SampleOrder>(r#"{"tier":"VIP","sku":"SKU-1","price":1}"#).is_err());
    }
}
