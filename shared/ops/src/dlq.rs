//! Dead-letter queue operations for operators (the `nexus dlq` verbs use these): count, and redrive a DLQ's
//! messages back to the queue they came from with SQS's own message-move task, nothing lost or duplicated.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

use nexus_aws::unavailable;
use nexus_core::ports::{PortError, PortResult};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedriveReport {
    pub dlq_url: String,
    pub before: u64,
    pub moved: u64,
    pub after: u64,
}

/// Visible plus in-flight messages of a queue.
pub async fn depth(sqs: &Client, queue_url: &str) -> PortResult<u64> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| unavailable("queue depth", e))?;
    Ok(output.attributes().map_or(0, |a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum()))
}

/// Up to 10 messages of a queue, with every attribute, left visible for the next reader (visibility 0: a
/// redrive, or the next peek).
pub async fn peek(sqs: &Client, queue_url: &str) -> PortResult<Vec<Message>> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| unavailable("read a queue", e))?;
    Ok(received.messages.unwrap_or_default())
}

/// Moves every message of the DLQ back to its source queue and waits for the move to finish.
pub async fn redrive(sqs: &Client, dlq_url: &str, timeout: Duration) -> PortResult<RedriveReport> {
    let before = depth(sqs, dlq_url).await?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| unavailable("dlq arn", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| PortError::Rejected { operation: "redrive", message: format!("{dlq_url} has no ARN") })?;
    if before == 0 {
        return Ok(RedriveReport { dlq_url: dlq_url.to_owned(), before, moved: 0, after: 0 });
    }
    // Without a destination, SQS moves each message back to the queue it was dead-lettered from.
    let task =
        sqs.start_message_move_task().source_arn(&arn).send().await.map_err(|e| unavailable("start redrive", e))?;
    let handle = task.task_handle().unwrap_or_default().to_owned();
    let give_up = tokio::time::Instant::now() + timeout;
    let moved = loop {
        let tasks = sqs
            .list_message_move_tasks()
            .source_arn(&arn)
            .send()
            .await
            .map_err(|e| unavailable("redrive status", e))?;
        let current = tasks.results().iter().find(|t| t.task_handle().is_none_or(|h| h == handle)).cloned();
        match current.as_ref().and_then(|t| t.status()) {
            Some("COMPLETED") => break current.map_or(0, |t| t.approximate_number_of_messages_moved().max(0) as u64),
            Some("FAILED" | "CANCELLED") => {
                let reason = current.and_then(|t| t.failure_reason().map(str::to_owned)).unwrap_or_default();
                return Err(PortError::Rejected { operation: "redrive", message: reason });
            }
            _ if tokio::time::Instant::now() > give_up => {
                return Err(PortError::Unavailable {
                    operation: "redrive",
                    message: "move task did not finish in time".into(),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let after = depth(sqs, dlq_url).await?;
    Ok(RedriveReport { dlq_url: dlq_url.to_owned(), before, moved, after })
}
