//! The queues' figures: every queue's and DLQ's depth (each refresh), and their oldest message's age (every
//! slow refresh: CloudWatch for the queues, a peek for the DLQs, which have no consumer to disturb).

use std::collections::HashMap;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use nexus_ops::dlq;
use serde::Serialize;

use crate::stack::Nexus;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueRow {
    pub queue: String,
    pub lane: &'static str,
    pub depth: Option<u64>,
    pub dlq_depth: Option<u64>,
    /// From CloudWatch's `ApproximateAgeOfOldestMessage` (AWS publishes it; LocalStack does not).
    pub oldest_age_seconds: Option<f64>,
    /// The oldest of the messages a peek at the DLQ saw (a DLQ has no consumer to disturb).
    pub dlq_oldest_age_seconds: Option<f64>,
}

fn lane(queue: &str) -> &'static str {
    if queue.ends_with("-vip") { "VIP" } else { "STANDARD" }
}

/// A queue's name, its depth and its DLQ's depth (or why either could not be read).
pub type Depths = (String, Result<u64, String>, Result<u64, String>);

pub async fn queue_depths(sqs: &aws_sdk_sqs::Client, nexus: &Nexus) -> Vec<Depths> {
    let queues = nexus.queues();
    let reads = queues.iter().map(|q| async move {
        let (depth, dlq_depth) = tokio::join!(dlq::depth(sqs, &q.url), dlq::depth(sqs, &q.dlq_url));
        (q.name.clone(), depth.map_err(|e| e.to_string()), dlq_depth.map_err(|e| e.to_string()))
    });
    join_all(reads).await
}

pub fn merge_depths(rows: &mut Vec<QueueRow>, depths: Vec<Depths>) {
    let old: HashMap<String, QueueRow> = rows.drain(..).map(|r| (r.queue.clone(), r)).collect();
    for (queue, depth, dlq_depth) in depths {
        let mut row = old.get(&queue).cloned().unwrap_or_else(|| QueueRow {
            queue: queue.clone(),
            lane: lane(&queue),
            ..QueueRow::default()
        });
        row.depth = depth.ok();
        row.dlq_depth = dlq_depth.ok();
        rows.push(row);
    }
    rows.sort_by(|a, b| a.queue.cmp(&b.queue));
}

/// Each queue's `ApproximateAgeOfOldestMessage` (AWS/SQS, the last 5 minutes' maximum), by queue name.
pub async fn oldest_ages(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    nexus: &Nexus,
) -> Result<HashMap<String, f64>, String> {
    let queues = nexus.queues();
    let now = aws_sdk_cloudwatch::primitives::DateTime::from_secs(Utc::now().timestamp());
    let start = aws_sdk_cloudwatch::primitives::DateTime::from_secs(Utc::now().timestamp() - 300);
    let mut request = cloudwatch.get_metric_data().start_time(start).end_time(now);
    for (i, queue) in queues.iter().enumerate() {
        let sqs_name = queue.url.rsplit('/').next().unwrap_or_default();
        let metric = Metric::builder()
            .namespace("AWS/SQS")
            .metric_name("ApproximateAgeOfOldestMessage")
            .dimensions(Dimension::builder().name("QueueName").value(sqs_name).build())
            .build();
        let stat = MetricStat::builder().metric(metric).period(60).stat("Maximum").build();
        request = request.metric_data_queries(MetricDataQuery::builder().id(format!("q{i}")).metric_stat(stat).build());
    }
    let output = request.send().await.map_err(|e| format!("queue ages: {:#}", crate::stack::aws_error(e)))?;
    let mut ages = HashMap::new();
    for result in output.metric_data_results() {
        let index = result.id().and_then(|id| id.strip_prefix('q')).and_then(|i| i.parse::<usize>().ok());
        if let (Some(queue), Some(age)) = (index.and_then(|i| queues.get(i)), result.values().first()) {
            ages.insert(queue.name.clone(), *age);
        }
    }
    Ok(ages)
}

/// The age of the oldest message a peek sees in each non-empty DLQ, by queue name.
pub async fn dlq_oldest_ages(
    sqs: &aws_sdk_sqs::Client,
    nexus: &Nexus,
    rows: &[QueueRow],
    now: DateTime<Utc>,
) -> HashMap<String, f64> {
    let non_empty: Vec<_> = nexus
        .queues()
        .into_iter()
        .filter(|q| rows.iter().any(|r| r.queue == q.name && r.dlq_depth.unwrap_or(0) > 0))
        .collect();
    let peeks = non_empty.iter().map(|q| async move {
        let peeked = sqs
            .receive_message()
            .queue_url(&q.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .ok()?;
        let oldest_ms = peeked
            .messages()
            .iter()
            .filter_map(|m| m.attributes()?.get(&MessageSystemAttributeName::SentTimestamp)?.parse::<i64>().ok())
            .min()?;
        Some((q.name.clone(), ((now.timestamp_millis() - oldest_ms).max(0) as f64) / 1000.0))
    });
    join_all(peeks).await.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_depth_refresh_keeps_the_ages_the_slow_refresh_read_and_names_the_lane() {
        let mut rows = Vec::new();
        merge_depths(
            &mut rows,
            vec![("payment-vip".into(), Ok(3), Ok(0)), ("inventory".into(), Ok(1), Err("down".into()))],
        );
        assert_eq!(
            rows.iter().map(|r| (r.queue.as_str(), r.lane)).collect::<Vec<_>>(),
            [("inventory", "STANDARD"), ("payment-vip", "VIP")]
        );
        assert_eq!(rows[0].dlq_depth, None, "unreadable: shown as unknown, not as 0");
        rows[1].dlq_oldest_age_seconds = Some(42.0);
        merge_depths(&mut rows, vec![("payment-vip".into(), Ok(0), Ok(1)), ("inventory".into(), Ok(0), Ok(0))]);
        assert_eq!((rows[1].depth, rows[1].dlq_depth, rows[1].dlq_oldest_age_seconds), (Some(0), Some(1), Some(42.0)));
    }
}
