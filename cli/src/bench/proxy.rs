//! A counting proxy in front of DynamoDB Local: the functions call DynamoDB Local directly (docs/local-environment.md,
//! the function host), so LocalStack's request log never sees those calls. For the bench, the function host points them
//! here instead; each request is forwarded unchanged and counted by operation, with the request units AWS
//! would bill for it. DynamoDB Local does not check signatures, so the changed port in `Host` is harmless.
//! Written here (on axum and hyper-util, already in the tree) because no proxy crate counts by DynamoDB
//! operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::Value;

/// DynamoDB's request bodies are at most 16 MB (BatchWriteItem); the proxy takes no more.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One operation's requests and the request units they would be billed on AWS (on-demand).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationCount {
    pub requests: f64,
    pub read_units: f64,
    pub write_units: f64,
}

impl OperationCount {
    fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.read_units += other.read_units;
        self.write_units += other.write_units;
    }

    /// Each figure divided by `orders`: the count per order.
    pub fn per(&self, orders: f64) -> Self {
        Self {
            requests: self.requests / orders,
            read_units: self.read_units / orders,
            write_units: self.write_units / orders,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, OperationCount>>>);

impl Counts {
    pub fn take(&self) -> BTreeMap<String, OperationCount> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn add(&self, operation: &str, count: OperationCount) {
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.entry(operation.to_owned()).or_default().add(&count);
    }
}

/// The units AWS bills for one request, from its body and the size of its answer. Nexus's items are under
/// 1 KB (one write unit each) and 4 KB (one strongly consistent read unit, half of one eventually consistent);
/// a Query or Scan pays per 4 KB it returns; a transaction pays double for each of its items.
pub fn units(operation: &str, request: &Value, response_bytes: usize) -> OperationCount {
    let read = |consistent: bool| if consistent { 1.0 } else { 0.5 };
    let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
    let items = |field: &str| request[field].as_array().map_or(0, Vec::len) as f64;
    let (read_units, write_units) = match operation {
        "GetItem" => (read(consistent), 0.0),
        "BatchGetItem" => {
            let tables = request["RequestItems"].as_object().into_iter().flatten();
            let keys = tables.map(|(_, t)| {
                t["Keys"].as_array().map_or(0, Vec::len) as f64 * read(t["ConsistentRead"].as_bool().unwrap_or(false))
            });
            (keys.sum(), 0.0)
        }
        "Query" | "Scan" => ((response_bytes as f64 / 4096.0).ceil().max(1.0) * read(consistent), 0.0),
        "PutItem" | "UpdateItem" | "DeleteItem" => (0.0, 1.0),
        "BatchWriteItem" => {
            let tables = request["RequestItems"].as_object().into_iter().flatten();
            (0.0, tables.map(|(_, t)| t.as_array().map_or(0, Vec::len) as f64).sum())
        }
        "TransactWriteItems" => (0.0, 2.0 * items("TransactItems")),
        "TransactGetItems" => (2.0 * items("TransactItems"), 0.0),
        _ => (0.0, 0.0),
    };
    OperationCount { requests: 1.0, read_units, write_units }
}

#[derive(Clone)]
struct Proxy {
    upstream: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    counts: Counts,
}

/// Starts the proxy on a free loopback port; its endpoint and its counts.
pub async fn start(upstream: &str) -> anyhow::Result<(String, Counts)> {
    let upstream: Uri = upstream.parse().with_context(|| format!("DynamoDB endpoint {upstream}"))?;
    let counts = Counts::default();
    let proxy = Proxy { upstream, client: Client::builder(TokioExecutor::new()).build_http(), counts: counts.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("bind the DynamoDB proxy")?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((endpoint, counts))
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    match relay(&proxy, request).await {
        Ok(response) => response,
        Err(error) => (StatusCode::BAD_GATEWAY, format!("nexus bench proxy: {error:#}")).into_response(),
    }
}

async fn relay(proxy: &Proxy, request: Request) -> anyhow::Result<Response> {
    let (mut parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT).await.context("read the request")?;
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.rsplit_once('.'))
        .map_or("unknown", |(_, op)| op)
        .to_owned();
    let mut upstream = proxy.upstream.clone().into_parts();
    upstream.path_and_query = parts.uri.path_and_query().cloned();
    parts.uri = Uri::from_parts(upstream).context("the upstream address")?;
    let response = proxy.client.request(axum::http::Request::from_parts(parts, Full::new(body.clone()))).await?;
    let (parts, answer) = response.into_parts();
    let answer = answer.collect().await.context("read DynamoDB Local's answer")?.to_bytes();
    let request_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    proxy.counts.add(&operation, units(&operation, &request_json, answer.len()));
    Ok(Response::from_parts(parts, Body::from(answer)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_and_writes_are_billed_as_aws_bills_them() {
        assert_eq!(units("GetItem", &json!({}), 100).read_units, 0.5);
        assert_eq!(units("GetItem", &json!({"ConsistentRead": true}), 100).read_units, 1.0);
        let batch = json!({"RequestItems": {"inv": {"Keys": [{}, {}, {}], "ConsistentRead": true}}});
        assert_eq!(units("BatchGetItem", &batch, 100).read_units, 3.0);
        assert_eq!(units("Query", &json!({}), 9000).read_units, 1.5);
        assert_eq!(units("PutItem", &json!({}), 10).write_units, 1.0);
        let mut total = units("PutItem", &json!({}), 10);
        total.add(&units("GetItem", &json!({}), 10));
        assert_eq!(total.per(2.0), OperationCount { requests: 1.0, read_units: 0.25, write_units: 0.5 });
        let transaction = json!({"TransactItems": [{"Put": {}}, {"Update": {}}, {"ConditionCheck": {}}]});
        assert_eq!(
            units("TransactWriteItems", &transaction, 10),
            OperationCount { requests: 1.0, read_units: 0.0, write_units: 6.0 }
        );
    }
}
