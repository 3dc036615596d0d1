//! Emulation of Lambda's SQS event source mapping: long-poll up to `BatchSize` within the batching window,
//! build the `SqsEvent` exactly as Lambda does, delete what succeeded, and leave failures to the queue's
//! visibility timeout so SQS's own redrive policy moves poison messages to the DLQ.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use axum::body::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::faults::Faults;
use crate::instance::{Instance, Outcome};

#[derive(Debug)]
pub struct SqsSource {
    pub function: String,
    pub event: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_batch_item_failures: bool,
}

/// Long-poll wait. Lambda uses SQS's longest (20 s); we use less because LocalStack keeps serving a long poll
/// whose client has gone (a restarted host), and a message handed to that ghost waits out the visibility
/// timeout before anyone sees it.
const MAX_WAIT_SECONDS: i32 = 5;
/// Injected kills land within this much of an invocation's start (about as long as a handler runs).
const KILL_WINDOW: Duration = Duration::from_millis(300);
/// Pause after a failed receive so an unreachable queue is not hammered.
const RECEIVE_ERROR_BACKOFF: Duration = Duration::from_secs(2);

/// One poller feeding one execution environment; the mapping's concurrency is the number of these.
pub async fn run_worker(
    sqs: aws_sdk_sqs::Client,
    source: Arc<SqsSource>,
    mut instance: Instance,
    faults: Faults,
    stop: CancellationToken,
) {
    let mut rng = fastrand::Rng::new();
    while !stop.is_cancelled() {
        let batch = tokio::select! {
            batch = collect_batch(&sqs, &source) => batch,
            () = stop.cancelled() => break,
        };
        let messages = match batch {
            Ok(messages) if messages.is_empty() => continue,
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(queue = %source.queue_url, error = %e, "receive failed; retrying");
                tokio::time::sleep(RECEIVE_ERROR_BACKOFF).await;
                continue;
            }
        };
        let payload = match event_payload(&messages, &source) {
            Ok(payload) => Bytes::from(payload),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise the SQS event; leaving the batch to redrive");
                continue;
            }
        };
        if let Some(delay) = faults.delay() {
            tokio::time::sleep(delay).await;
        }
        let outcome = instance.invoke(payload.clone(), faults.kill_point(KILL_WINDOW, &mut rng)).await;
        let mut failed = failed_message_ids(&outcome, &messages, source.report_batch_item_failures);
        if faults.duplicate_delivery {
            let again = instance.invoke(payload, faults.kill_point(KILL_WINDOW, &mut rng)).await;
            failed.extend(failed_message_ids(&again, &messages, source.report_batch_item_failures));
        }
        let (outcome_name, detail) = describe(&outcome);
        tracing::info!(
            function = %source.function,
            event = %source.event,
            batch = messages.len(),
            failed = failed.len(),
            outcome = outcome_name,
            detail = %detail,
            "batch handled"
        );
        let done: Vec<&Message> =
            messages.iter().filter(|m| m.message_id().is_some_and(|id| !failed.contains(id))).collect();
        if let Err(e) = delete(&sqs, &source.queue_url, &done).await {
            // The messages stay on the queue and are delivered again: at-least-once, as with Lambda.
            tracing::warn!(queue = %source.queue_url, error = %e, "could not delete processed messages");
        }
    }
    instance.stop().await;
}

/// Waits for a first message, then keeps receiving until the batch is full or the window has passed.
async fn collect_batch(sqs: &aws_sdk_sqs::Client, source: &SqsSource) -> Result<Vec<Message>, String> {
    let mut batch: Vec<Message> = Vec::new();
    let mut window_end: Option<Instant> = None;
    loop {
        let remaining = source.batch_size - batch.len();
        let wait_seconds = match window_end {
            None => MAX_WAIT_SECONDS,
            Some(end) => {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                (left.as_secs_f64().ceil() as i32).min(MAX_WAIT_SECONDS)
            }
        };
        let received = sqs
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(remaining.min(10) as i32)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let got = received.messages.unwrap_or_default();
        let first = batch.is_empty() && !got.is_empty();
        batch.extend(got);
        if batch.len() >= source.batch_size || (batch.is_empty() && window_end.is_none()) {
            break;
        }
        if first {
            if source.batching_window.is_zero() {
                break;
            }
            window_end = Some(Instant::now() + source.batching_window);
        }
    }
    Ok(batch)
}

/// The event as Lambda serialises it: a message attribute has `stringValue` or `binaryValue`, never both
/// with one null (the documented example event of the SQS guide), and a record without message attributes
/// has no `md5OfMessageAttributes`.
pub fn event_payload(messages: &[Message], source: &SqsSource) -> serde_json::Result<Vec<u8>> {
    let mut event = serde_json::to_value(build_event(messages, source))?;
    for record in event["Records"].as_array_mut().into_iter().flatten() {
        let Some(record) = record.as_object_mut() else { continue };
        record.retain(|_, value| !value.is_null());
        for attribute in record.get_mut("messageAttributes").and_then(|a| a.as_object_mut()).into_iter().flatten() {
            if let Some(attribute) = attribute.1.as_object_mut() {
                attribute.retain(|_, value| !value.is_null());
            }
        }
    }
    serde_json::to_vec(&event)
}

/// The event Lambda passes for an SQS batch.
fn build_event(messages: &[Message], source: &SqsSource) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.md5_of_message_attributes = m.md5_of_message_attributes.clone();
            record.attributes =
                m.attributes.iter().flatten().map(|(name, value)| (name.as_str().to_owned(), value.clone())).collect();
            record.message_attributes = m
                .message_attributes
                .iter()
                .flatten()
                .map(|(name, value)| {
                    let mut attribute = SqsMessageAttribute::default();
                    attribute.data_type = Some(value.data_type.clone());
                    attribute.string_value = value.string_value.clone();
                    attribute.binary_value = value.binary_value.as_ref().map(|b| base64_data(b.as_ref()));
                    attribute.string_list_values = value.string_list_values.clone().unwrap_or_default();
                    attribute.binary_list_values =
                        value.binary_list_values.iter().flatten().map(|b| base64_data(b.as_ref())).collect();
                    (name.clone(), attribute)
                })
                .collect::<HashMap<_, _>>();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(source.queue_arn.clone());
            record.aws_region = Some(source.region.clone());
            record
        })
        .collect();
    event
}

fn base64_data(bytes: &[u8]) -> Base64Data {
    let mut data = Base64Data::default();
    data.extend_from_slice(bytes);
    data
}

/// Which messages must stay on the queue. Lambda's rules (SQS guide, "Reporting batch item failures"): any
/// failed invocation fails the whole batch. With `ReportBatchItemFailures`, "Lambda treats a batch as a
/// complete success if your function returns … an empty batchItemFailures list, a null batchItemFailures
/// list, an empty EventResponse, a null EventResponse", and "as a complete failure if … invalid JSON response,
/// empty string itemIdentifier, null itemIdentifier, itemIdentifier with a bad key name, itemIdentifier value
/// with a message ID that doesn't exist".
pub fn failed_message_ids(outcome: &Outcome, messages: &[Message], report_failures: bool) -> HashSet<String> {
    let all = || messages.iter().filter_map(|m| m.message_id.clone()).collect::<HashSet<_>>();
    let Outcome::Success(body) = outcome else { return all() };
    if !report_failures {
        return HashSet::new();
    }
    match reported_failures(body) {
        Ok(items) => {
            let ids = all();
            match items.iter().find(|item| !ids.contains(*item)) {
                Some(unknown) => {
                    tracing::warn!(item = %unknown, "partial batch response names an unknown item; the whole batch fails");
                    ids
                }
                None => items,
            }
        }
        Err(problem) => {
            tracing::warn!(response = %String::from_utf8_lossy(body), problem, "invalid partial batch response; the whole batch fails");
            all()
        }
    }
}

/// The item identifiers of a partial batch response, or why it is invalid.
fn reported_failures(body: &[u8]) -> Result<HashSet<String>, &'static str> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashSet::new());
    }
    let response: serde_json::Value = serde_json::from_slice(body).map_err(|_| "not JSON")?;
    let failures = match &response {
        serde_json::Value::Null => return Ok(HashSet::new()),
        serde_json::Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(serde_json::Value::Null) => return Ok(HashSet::new()),
            Some(serde_json::Value::Array(failures)) => failures,
            Some(_) => return Err("batchItemFailures is not a list"),
        },
        _ => return Err("not an object"),
    };
    failures
        .iter()
        .map(|failure| match failure.get("itemIdentifier") {
            Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            Some(serde_json::Value::String(_)) => Err("empty itemIdentifier"),
            Some(_) => Err("itemIdentifier is null or not a string"),
            None => Err("an item without itemIdentifier"),
        })
        .collect()
}

async fn delete(sqs: &aws_sdk_sqs::Client, queue_url: &str, messages: &[&Message]) -> Result<(), String> {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if entries.is_empty() {
            continue;
        }
        let result = sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        if !result.failed.is_empty() {
            return Err(format!("{} deletes failed: {:?}", result.failed.len(), result.failed));
        }
    }
    Ok(())
}

/// A short name of the outcome and, for failures, what the function said.
fn describe(outcome: &Outcome) -> (&'static str, String) {
    let said = |error_type: &Option<String>, body: &Bytes| {
        format!("{}: {}", error_type.as_deref().unwrap_or("Unhandled"), String::from_utf8_lossy(body))
    };
    match outcome {
        Outcome::Success(_) => ("success", String::new()),
        Outcome::FunctionError { error_type, body } => ("function-error", said(error_type, body)),
        Outcome::InitError { error_type, body } => ("init-error", said(error_type, body)),
        Outcome::TimedOut => ("timeout", String::new()),
        Outcome::Crashed(reason) => ("crash", reason.clone()),
        Outcome::SpawnFailed(reason) => ("spawn-failed", reason.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> Message {
        Message::builder().message_id(id).receipt_handle(format!("rh-{id}")).body("{}").build()
    }

    fn source() -> SqsSource {
        SqsSource {
            function: "f".into(),
            event: "E".into(),
            queue_url: "http://127.0.0.1:4566/000000000000/q".into(),
            queue_arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
            region: "us-east-1".into(),
            batch_size: 10,
            batching_window: Duration::ZERO,
            report_batch_item_failures: true,
        }
    }

    fn success(body: &str) -> Outcome {
        Outcome::Success(Bytes::from(body.to_owned()))
    }

    #[test]
    fn event_has_lambda_shape() {
        let m = Message::builder()
            .message_id("m1")
            .receipt_handle("rh")
            .body("hello")
            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .message_attributes(
                "kind",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("order")
                    .build()
                    .expect("attribute"),
            )
            .build();
        let json: serde_json::Value =
            serde_json::from_slice(&event_payload(&[m], &source()).expect("payload")).expect("json");
        let record = &json["Records"][0];
        let attribute = record["messageAttributes"]["kind"].as_object().expect("attribute");
        assert!(!attribute.contains_key("binaryValue"), "no null binaryValue: {attribute:?}");
        assert_eq!(attribute["stringListValues"], serde_json::json!([]));
        assert!(record.get("md5OfMessageAttributes").is_none(), "no null md5OfMessageAttributes: {record}");
        assert_eq!(record["messageId"], "m1");
        assert_eq!(record["receiptHandle"], "rh");
        assert_eq!(record["md5OfBody"], "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(record["messageAttributes"]["kind"]["stringValue"], "order");
        assert_eq!(record["messageAttributes"]["kind"]["dataType"], "String");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], "arn:aws:sqs:us-east-1:000000000000:q");
        assert_eq!(record["awsRegion"], "us-east-1");
    }

    #[test]
    fn partial_failures_keep_only_listed_items() {
        let batch = [message("a"), message("b")];
        let failed = failed_message_ids(&success(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#), &batch, true);
        assert_eq!(failed, HashSet::from(["b".to_owned()]));
        assert!(failed_message_ids(&success(r#"{"batchItemFailures":[]}"#), &batch, true).is_empty());
        for body in ["", "null", "{}", r#"{"batchItemFailures":null}"#, r#"{"other":1}"#] {
            assert!(failed_message_ids(&success(body), &batch, true).is_empty(), "{body} is a complete success");
        }
    }

    #[test]
    fn invalid_partial_responses_and_errors_fail_the_whole_batch() {
        let batch = [message("a"), message("b")];
        for body in [
            r#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemId":"a"}]}"#,
            r#"{"batchItemFailures":"a"}"#,
            r#""a""#,
            "not json",
        ] {
            assert_eq!(failed_message_ids(&success(body), &batch, true).len(), 2, "{body}");
        }
        for outcome in [Outcome::TimedOut, Outcome::Crashed("signal: 6".into())] {
            assert_eq!(failed_message_ids(&outcome, &batch, false).len(), 2);
        }
    }

    #[test]
    fn without_report_failures_a_success_deletes_everything() {
        let batch = [message("a")];
        assert!(
            failed_message_ids(&success(r#"{"batchItemFailures":[{"itemIdentifier":"a"}]}"#), &batch, false).is_empty()
        );
    }
}
