//! The two sagas the bench drives the same way: submit, wait until every order has ended, and read when
//! each ended. Nexus is read from its orders table on DynamoDB Local directly (the waiting adds no
//! LocalStack request); the null saga, which has no table, from its executions (those calls are the
//! bench's own and are taken off LocalStack's count).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use nexus_aws::dynamo::Dynamo;
use nexus_core::domain::status::OrderStatus;
use nexus_core::ports::EventLog;

use super::workload::Submission;
use crate::stack::aws_error;

/// How an order ended, and when (seconds since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    pub outcome: String,
    pub at: f64,
}

pub enum Saga {
    Null { sfn: aws_sdk_sfn::Client, state_machine: String },
    Nexus { dynamodb: aws_sdk_dynamodb::Client, store: Box<Dynamo>, orders_table: String },
}

/// The bench's own LocalStack requests by `service.Operation`, as LocalStack's log names them.
#[derive(Debug, Default, Clone)]
pub struct OwnCalls(pub BTreeMap<String, f64>);

impl OwnCalls {
    fn add(&mut self, operation: &str) {
        *self.0.entry(operation.to_owned()).or_default() += 1.0;
    }
}

pub fn epoch(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1e6
}

/// Publishes every submission to the orders topic, ten a request, all requests at once; returns when the
/// first left (the moment every latency is measured from).
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic: &str,
    submissions: &[Submission],
    own: &mut OwnCalls,
) -> anyhow::Result<f64> {
    let published = epoch(Utc::now());
    let batches = submissions.chunks(10).map(|batch| {
        let entries = batch.iter().enumerate().map(|(i, s)| {
            let correlation = MessageAttributeValue::builder().data_type("String").string_value(&s.order_id).build()?;
            PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(s.message.to_string())
                .message_attributes("correlationId", correlation)
                .build()
                .context("a publish entry")
        });
        async move {
            let entries = entries.collect::<anyhow::Result<Vec<_>>>()?;
            let sent = sns.publish_batch().topic_arn(topic).set_publish_batch_request_entries(Some(entries)).send();
            let answer = sent.await.map_err(aws_error).context("publish the orders")?;
            anyhow::ensure!(answer.failed().is_empty(), "SNS refused {} of the orders", answer.failed().len());
            Ok(())
        }
    });
    try_join_all(batches).await?;
    for _ in submissions.chunks(10) {
        own.add("sns.PublishBatch");
    }
    Ok(published)
}

/// The run's succeeded executions (named `run-…`), every page of them.
pub async fn succeeded(
    sfn: &aws_sdk_sfn::Client,
    state_machine: &str,
    run: &str,
    own: &mut OwnCalls,
) -> anyhow::Result<Vec<ExecutionListItem>> {
    executions(sfn, state_machine, run, Some(ExecutionStatus::Succeeded), own).await
}

/// The run's executions (named `run-…`) in `status`, or in any status, every page of them.
pub async fn executions(
    sfn: &aws_sdk_sfn::Client,
    state_machine: &str,
    run: &str,
    status: Option<ExecutionStatus>,
    own: &mut OwnCalls,
) -> anyhow::Result<Vec<ExecutionListItem>> {
    let prefix = format!("{run}-");
    let (mut executions, mut token) = (Vec::new(), None);
    loop {
        let page = sfn
            .list_executions()
            .state_machine_arn(state_machine)
            .set_status_filter(status.clone())
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .map_err(aws_error)
            .context("list the executions")?;
        own.add("stepfunctions.ListExecutions");
        executions.extend(page.executions().iter().filter(|e| e.name().starts_with(&prefix)).cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(executions);
        }
    }
}

impl Saga {
    /// Every order of the run (`run-…`) that has ended, by order id.
    pub async fn ended(&self, run: &str, own: &mut OwnCalls) -> anyhow::Result<BTreeMap<String, End>> {
        let prefix = format!("{run}-");
        let mut ends = BTreeMap::new();
        match self {
            Self::Null { sfn, state_machine } => {
                for execution in succeeded(sfn, state_machine, run, own).await? {
                    let at = execution.stop_date().map_or(0.0, |d| d.as_secs_f64());
                    ends.insert(execution.name().to_owned(), End { outcome: "SUCCEEDED".into(), at });
                }
            }
            Self::Nexus { dynamodb, orders_table, .. } => {
                let mut start = None;
                loop {
                    let page = dynamodb
                        .scan()
                        .table_name(orders_table)
                        .filter_expression("begins_with(orderId, :run)")
                        .expression_attribute_values(":run", AttributeValue::S(prefix.clone()))
                        .projection_expression("orderId, #status, updatedAt")
                        .expression_attribute_names("#status", "status")
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(aws_error)
                        .context("scan the bench's orders")?;
                    for item in page.items() {
                        let text = |key: &str| item.get(key).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                        let status: Option<OrderStatus> =
                            serde_json::from_value(serde_json::json!(text("status"))).ok();
                        if status.is_some_and(OrderStatus::is_terminal) {
                            let at =
                                DateTime::parse_from_rfc3339(&text("updatedAt")).map_or(0.0, |d| epoch(d.to_utc()));
                            ends.insert(text("orderId"), End { outcome: text("status"), at });
                        }
                    }
                    start = page.last_evaluated_key().cloned();
                    if start.is_none() {
                        break;
                    }
                }
            }
        }
        Ok(ends)
    }

    /// Waits until `expected` orders of the run have ended (a progress line on stderr), at most `limit`.
    pub async fn wait(
        &self,
        run: &str,
        expected: usize,
        limit: Duration,
        poll: Duration,
        own: &mut OwnCalls,
        label: &str,
    ) -> anyhow::Result<BTreeMap<String, End>> {
        let started = std::time::Instant::now();
        loop {
            let ends = self.ended(run, own).await?;
            if ends.len() >= expected {
                return Ok(ends);
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "{label}: only {} of {expected} orders ended within {} s",
                ends.len(),
                limit.as_secs()
            );
            if poll >= Duration::from_secs(1) {
                eprint!("\r… {label}: {}/{expected} ended ({} s)   ", ends.len(), started.elapsed().as_secs());
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Each order's statuses with the time each was reached (Nexus's order events), in sequence.
    pub async fn timelines(&self, order_ids: impl Iterator<Item = &String>) -> anyhow::Result<Vec<Vec<(String, f64)>>> {
        let Self::Nexus { store, .. } = self else { return Ok(Vec::new()) };
        let mut timelines = Vec::new();
        for order_id in order_ids {
            let mut events = store.events(order_id).await.with_context(|| format!("the events of {order_id}"))?;
            events.sort_by_key(|e| e.sequence);
            let timeline = events
                .iter()
                .filter_map(|e| {
                    let at = DateTime::parse_from_rfc3339(&e.at).ok()?;
                    Some((e.status.as_str().to_owned(), epoch(at.to_utc())))
                })
                .collect();
            timelines.push(timeline);
        }
        Ok(timelines)
    }
}
