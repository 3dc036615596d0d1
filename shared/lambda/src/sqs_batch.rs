//! Turns an SQS batch into per-record handling with `ReportBatchItemFailures`: a failed record is reported
//! by its message id so only it is redelivered, while the records that succeeded are deleted.

use std::future::Future;

use futures::stream::{self, StreamExt};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use crate::observability::error_chain;

/// A record that failed and cannot be reported individually fails the whole batch.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("record {index} of the batch failed and has no messageId to report it by: {cause}")]
    UnidentifiableRecord { index: usize, cause: String },
}

/// How many records of a batch are handled at once. Records are independent (each names its own order), and
/// handling them one after the other made a full batch outlast the function's timeout under load.
pub const RECORD_CONCURRENCY: usize = 10;

/// One record's delivery and what handling it gave.
struct Handled<E> {
    index: usize,
    message_id: Option<String>,
    receive_count: u64,
    outcome: Result<(), E>,
}

/// Runs `handler` on every record (concurrently, up to [`RECORD_CONCURRENCY`]) and returns the records that
/// failed, for Lambda to redeliver.
pub async fn process_batch<F, Fut, E>(event: SqsEvent, handler: F) -> Result<SqsBatchResponse, BatchError>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error + 'static,
{
    let outcomes: Vec<Handled<E>> = stream::iter(event.records.into_iter().enumerate())
        .map(|(index, record)| {
            let message_id = record.message_id.clone();
            let receive_count = receive_count(&record);
            if receive_count > 1 {
                // A previous delivery failed, timed out or died with its process: worth seeing in the logs.
                tracing::info!(
                    messageId = message_id.as_deref().unwrap_or_default(),
                    receiveCount = receive_count,
                    "message redelivered"
                );
                nexus_core::metrics::count("Redeliveries", &[]);
            }
            let handled = handler(record);
            async move { Handled { index, message_id, receive_count, outcome: handled.await } }
        })
        .buffer_unordered(RECORD_CONCURRENCY)
        .collect()
        .await;
    let mut failures = Vec::new();
    for Handled { index, message_id, receive_count, outcome } in outcomes {
        if let Err(error) = outcome {
            let cause = error_chain(&error);
            let Some(message_id) = message_id.filter(|id| !id.is_empty()) else {
                return Err(BatchError::UnidentifiableRecord { index, cause });
            };
            tracing::warn!(messageId = %message_id, receiveCount = receive_count, error = %cause, "record failed; reported for redelivery");
            nexus_core::metrics::count("RecordsRetried", &[]);
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            failures.push(failure);
        }
    }
    failures.sort_by(|a: &BatchItemFailure, b| a.item_identifier.cmp(&b.item_identifier));
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    Ok(response)
}

/// How many times SQS has delivered the record (1 on the first delivery).
pub fn receive_count(record: &SqsMessage) -> u64 {
    record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    fn record(id: Option<&str>, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = id.map(str::to_owned);
        message.body = Some(body.to_owned());
        message
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let batch = event(vec![record(Some("a"), "ok"), record(Some("b"), "bad"), record(Some("c"), "ok")]);
        let response =
            process_batch(batch, |m| async move { if m.body.as_deref() == Some("bad") { Err(Boom) } else { Ok(()) } })
                .await
                .expect("batch handled");
        let ids: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(ids, ["b"]);
    }

    #[test]
    fn receive_count_defaults_to_a_first_delivery() {
        let mut redelivered = record(Some("a"), "ok");
        redelivered.attributes.insert("ApproximateReceiveCount".into(), "3".into());
        assert_eq!(receive_count(&redelivered), 3);
        assert_eq!(receive_count(&record(Some("b"), "ok")), 1);
    }

    #[tokio::test]
    async fn all_success_reports_nothing() {
        let response = process_batch(event(vec![record(Some("a"), "ok")]), |_| async { Ok::<_, Boom>(()) })
            .await
            .expect("batch handled");
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn a_failed_record_without_id_fails_the_batch() {
        let result = process_batch(event(vec![record(None, "bad")]), |_| async { Err::<(), _>(Boom) }).await;
        assert!(matches!(result, Err(BatchError::UnidentifiableRecord { index: 0, .. })));
    }
}
