//! The fixture stack (tests/fixture-template.yaml) as the function host's tests use it: send instructions to
//! its queues, read back what the fixture function logged, how often each message was delivered, and what
//! reached a DLQ.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use serde_json::Value;

use crate::{LocalStack, json_lines, read_log_group};

/// The variable naming the fixture stack.
pub const STACK: &str = "NEXUS_FIXTURE_STACK";
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Sent {
    pub id: String,
    pub message_id: String,
    pub md5_of_body: String,
    pub md5_of_attributes: String,
}

pub async fn send(stack: &LocalStack, queue_output: &str, run: &str, bodies: &[Value]) -> Vec<Sent> {
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body.to_string())
                .message_attributes(
                    "run",
                    MessageAttributeValue::builder().data_type("String").string_value(run).build().expect("attr"),
                )
                .build()
                .expect("entry")
        })
        .collect::<Vec<_>>();
    let result = stack
        .sqs()
        .send_message_batch()
        .queue_url(stack.output(queue_output))
        .set_entries(Some(entries))
        .send()
        .await
        .expect("send-message-batch");
    assert!(result.failed().is_empty(), "sends failed: {:?}", result.failed());
    let mut sent: Vec<Sent> = result
        .successful()
        .iter()
        .map(|ok| {
            let index: usize = ok.id().parse().expect("index");
            Sent {
                id: bodies[index]["id"].as_str().expect("id").to_owned(),
                message_id: ok.message_id().to_owned(),
                md5_of_body: ok.md5_of_message_body().to_owned(),
                md5_of_attributes: ok.md5_of_message_attributes().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    sent.sort_by(|a, b| a.id.cmp(&b.id));
    sent
}

/// The batches ("batch received" lines) holding records of this run, and the fixture's other JSON lines.
pub async fn fixture_lines(stack: &LocalStack) -> Vec<(String, Value)> {
    group_lines(stack, "FixtureLogGroupName").await
}

/// The JSON lines of the log group named by the stack output `group_output`.
pub async fn group_lines(stack: &LocalStack, group_output: &str) -> Vec<(String, Value)> {
    json_lines(&read_log_group(&stack.logs(), &stack.output(group_output)).await)
}

pub fn batches_of_run(lines: &[(String, Value)], run: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|(_, line)| line["message"] == "batch received")
        .filter_map(|(_, line)| serde_json::from_str::<Value>(line["event"].as_str()?).ok())
        .filter_map(|mut event| {
            // Tests share queues: keep only this run's records of a batch.
            let records = event["Records"].as_array_mut()?;
            records.retain(|record| record["body"].as_str().is_some_and(|b| b.contains(run)));
            (!records.is_empty()).then_some(event)
        })
        .collect()
}

/// How often each instruction id of the run was delivered, and with which receive counts.
pub fn deliveries(batches: &[Value]) -> HashMap<String, Vec<String>> {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for record in batches.iter().flat_map(|b| b["Records"].as_array().cloned().unwrap_or_default()) {
        let body: Value = serde_json::from_str(record["body"].as_str().unwrap_or("{}")).unwrap_or_default();
        let count = record["attributes"]["ApproximateReceiveCount"].as_str().unwrap_or("?").to_owned();
        seen.entry(body["id"].as_str().unwrap_or("?").to_owned()).or_default().push(count);
    }
    // Lines of different processes (streams) come back stream by stream, not in delivery order.
    seen.values_mut().for_each(|counts| counts.sort());
    seen
}

pub fn processed_ids(lines: &[(String, Value)], run: &str) -> Vec<(String, String)> {
    lines
        .iter()
        .filter(|(_, l)| l["message"] == "record processed" && l["id"].as_str().is_some_and(|id| id.starts_with(run)))
        .map(|(_, l)| {
            (l["id"].as_str().unwrap_or_default().to_owned(), l["receiveCount"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

pub async fn queue_depth(stack: &LocalStack, queue_output: &str) -> i64 {
    let attributes = stack
        .sqs()
        .get_queue_attributes()
        .queue_url(stack.output(queue_output))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("get-queue-attributes");
    let map = attributes.attributes().cloned().unwrap_or_default();
    ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        .iter()
        .filter_map(|k| map.get(&aws_sdk_sqs::types::QueueAttributeName::from(*k))?.parse::<i64>().ok())
        .sum()
}

/// Takes the run's messages off the DLQ and returns their instruction ids. Other runs' messages are left
/// visible (received with a visibility timeout of 0), for the tests sharing the queue.
pub async fn dlq_ids(stack: &LocalStack, dlq_output: &str, run: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut foreign = std::collections::HashSet::new();
    loop {
        let received = stack
            .sqs()
            .receive_message()
            .queue_url(stack.output(dlq_output))
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive from DLQ");
        let messages = received.messages();
        let mut news = false;
        for m in messages {
            let body: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
            let Some(id) = body["id"].as_str().filter(|id| id.starts_with(run)) else {
                news |= foreign.insert(m.message_id().unwrap_or_default().to_owned());
                continue;
            };
            news = true;
            ids.push(id.to_owned());
            stack
                .sqs()
                .delete_message()
                .queue_url(stack.output(dlq_output))
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete from DLQ");
        }
        if !news {
            break;
        }
    }
    ids.sort();
    ids
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
