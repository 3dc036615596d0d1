//! Ships function output to CloudWatch Logs as Lambda does: group `/aws/lambda/<FunctionName>`, one stream per
//! process (`YYYY/MM/DD/[$LATEST]<id>`). Lines are batched (up to half a second) and put in order.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct LogLine {
    pub group: String,
    pub stream: String,
    pub timestamp_ms: i64,
    pub message: String,
}

/// Where function output goes; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<LogLine>,
    metrics: crate::emf::MetricSink,
    echo: bool,
}

impl LogSink {
    pub fn line(&self, group: &str, stream: &str, message: String) {
        if self.echo {
            println!("{group} {message}");
        }
        self.metrics.line(&message);
        let line = LogLine {
            group: group.to_owned(),
            stream: stream.to_owned(),
            timestamp_ms: chrono::Utc::now().timestamp_millis(),
            message,
        };
        // The shipper only goes away at shutdown; a line written then is still echoed above.
        let _ = self.tx.send(line);
    }
}

/// Starts the shipper; it drains and flushes everything once every sink is dropped.
pub fn start(
    client: aws_sdk_cloudwatchlogs::Client,
    metrics: crate::emf::MetricSink,
    echo: bool,
) -> (LogSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(ship(client, rx));
    (LogSink { tx, metrics, echo }, task)
}

const FLUSH_EVERY: Duration = Duration::from_millis(500);
const MAX_BATCH: usize = 5_000;
const MAX_ATTEMPTS: u32 = 5;

async fn ship(client: aws_sdk_cloudwatchlogs::Client, mut rx: mpsc::UnboundedReceiver<LogLine>) {
    let mut created: HashSet<(String, String)> = HashSet::new();
    let mut groups_created: HashSet<String> = HashSet::new();
    let mut buffer: BTreeMap<(String, String), Vec<InputLogEvent>> = BTreeMap::new();
    let mut attempts = 0;
    let mut open = true;
    while open || !buffer.is_empty() {
        let mut count: usize = buffer.values().map(Vec::len).sum();
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        while open && count < MAX_BATCH {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(line) => {
                        let event = InputLogEvent::builder().timestamp(line.timestamp_ms).message(line.message).build();
                        if let Ok(event) = event {
                            buffer.entry((line.group, line.stream)).or_default().push(event);
                            count += 1;
                        }
                    }
                    None => open = false,
                },
                () = &mut deadline => break,
            }
        }
        match flush(&client, &mut buffer, &mut created, &mut groups_created).await {
            Ok(()) => attempts = 0,
            Err(e) => {
                attempts += 1;
                tracing::warn!(error = %e, attempts, "could not ship function logs to CloudWatch Logs");
                if attempts >= MAX_ATTEMPTS {
                    tracing::error!(
                        lines = buffer.values().map(Vec::len).sum::<usize>(),
                        "dropping unshippable log lines"
                    );
                    buffer.clear();
                    attempts = 0;
                } else if !open {
                    tokio::time::sleep(FLUSH_EVERY).await;
                }
            }
        }
    }
}

async fn flush(
    client: &aws_sdk_cloudwatchlogs::Client,
    buffer: &mut BTreeMap<(String, String), Vec<InputLogEvent>>,
    created: &mut HashSet<(String, String)>,
    groups_created: &mut HashSet<String>,
) -> Result<(), String> {
    let keys: Vec<_> = buffer.keys().cloned().collect();
    for key in keys {
        let (group, stream) = &key;
        if !groups_created.contains(group) {
            match client.create_log_group().log_group_name(group).send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) => {}
                Err(e) => return Err(aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e).to_string()),
            }
            groups_created.insert(group.clone());
        }
        if !created.contains(&key) {
            match client.create_log_stream().log_group_name(group).log_stream_name(stream).send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) => {}
                Err(e) => return Err(aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e).to_string()),
            }
            created.insert(key.clone());
        }
        let Some(mut events) = buffer.remove(&key) else { continue };
        events.sort_by_key(InputLogEvent::timestamp);
        let result = client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events.clone()))
            .send()
            .await;
        if let Err(e) = result {
            buffer.insert(key, events);
            return Err(aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e).to_string());
        }
    }
    Ok(())
}

/// A new stream name, as Lambda names them.
pub fn new_stream_name() -> String {
    format!("{}/[$LATEST]{}", chrono::Utc::now().format("%Y/%m/%d"), uuid::Uuid::new_v4().simple())
}
