//! Embedded Metric Format extraction, as CloudWatch Logs does it on AWS: a function's log line with an
//! `_aws.CloudWatchMetrics` block becomes metric data, put to LocalStack with PutMetricData (batched per
//! namespace, flushed every second), so `aws cloudwatch get-metric-statistics` answers locally as on AWS.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::Value;
use tokio::sync::mpsc;

/// One metric value of an EMF document, with its dimension values resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub namespace: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub dimensions: Vec<(String, String)>,
    pub timestamp_ms: i64,
}

/// The metric data of a log line: empty when the line is not an EMF document (or names a metric or
/// dimension it does not carry, which CloudWatch also skips).
pub fn parse(line: &str) -> Vec<Datum> {
    if !line.starts_with('{') || !line.contains("\"_aws\"") {
        return Vec::new();
    }
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(line) else { return Vec::new() };
    let timestamp_ms = root["_aws"]["Timestamp"].as_i64().unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let mut data = Vec::new();
    for directive in root["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
        let Some(namespace) = directive["Namespace"].as_str() else { continue };
        let dimension_sets: Vec<Vec<&str>> = directive["Dimensions"]
            .as_array()
            .map(|sets| {
                sets.iter()
                    .map(|set| set.as_array().into_iter().flatten().filter_map(Value::as_str).collect())
                    .collect()
            })
            .unwrap_or_else(|| vec![Vec::new()]);
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let Some(name) = metric["Name"].as_str() else { continue };
            let Some(value) = root.get(name).and_then(Value::as_f64) else { continue };
            let unit = metric["Unit"].as_str().unwrap_or("None").to_owned();
            for set in &dimension_sets {
                let dimensions: Option<Vec<(String, String)>> =
                    set.iter().map(|key| Some(((*key).to_owned(), root.get(*key)?.as_str()?.to_owned()))).collect();
                let Some(dimensions) = dimensions else { continue };
                data.push(Datum {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    value,
                    unit: unit.clone(),
                    dimensions,
                    timestamp_ms,
                });
            }
        }
    }
    data
}

/// Where extracted metric data goes; cheap to clone.
#[derive(Clone)]
pub struct MetricSink {
    tx: mpsc::UnboundedSender<Datum>,
}

impl MetricSink {
    pub fn line(&self, line: &str) {
        for datum in parse(line) {
            // The shipper only goes away at shutdown.
            let _ = self.tx.send(datum);
        }
    }
}

const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// PutMetricData takes at most 1000 data per call.
const MAX_BATCH: usize = 1000;

pub fn start(client: aws_sdk_cloudwatch::Client) -> (MetricSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MetricSink { tx }, tokio::spawn(ship(client, rx)))
}

async fn ship(client: aws_sdk_cloudwatch::Client, mut rx: mpsc::UnboundedReceiver<Datum>) {
    let mut open = true;
    while open {
        let mut batch: BTreeMap<String, Vec<MetricDatum>> = BTreeMap::new();
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                datum = rx.recv() => match datum {
                    Some(datum) => {
                        let namespace = datum.namespace.clone();
                        batch.entry(namespace).or_default().push(to_metric_datum(datum));
                        if batch.values().map(Vec::len).sum::<usize>() >= MAX_BATCH { break; }
                    }
                    None => { open = false; break; }
                },
                () = &mut deadline => break,
            }
        }
        for (namespace, data) in batch {
            let put = client.put_metric_data().namespace(&namespace).set_metric_data(Some(data)).send().await;
            if let Err(e) = put {
                // Metrics are best effort, as EMF extraction is; the log line itself is kept.
                tracing::warn!(namespace = %namespace, error = %aws_sdk_cloudwatch::error::DisplayErrorContext(e), "could not put metric data");
            }
        }
    }
}

fn to_metric_datum(datum: Datum) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(datum.name)
        .value(datum.value)
        .unit(StandardUnit::from(datum.unit.as_str()))
        .timestamp(DateTime::from_millis(datum.timestamp_ms))
        .set_dimensions(Some(
            datum
                .dimensions
                .into_iter()
                .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                .collect(),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_yields_one_datum_per_metric_and_dimension_set() {
        let line = r#"{"timestamp":"t","level":"INFO","function":"order-intake","message":"metric","orderId":"o-1",
            "_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"VyapaarNexus/dev",
            "Dimensions":[[],["Reason"]],"Metrics":[{"Name":"OrdersCancelled","Unit":"Count"}]}]},
            "OrdersCancelled":1.0,"Reason":"Payment.Declined"}"#
            .replace('\n', "");
        let data = parse(&line);
        assert_eq!(data.len(), 2);
        assert_eq!(data[0].dimensions, []);
        assert_eq!(data[1].dimensions, [("Reason".to_owned(), "Payment.Declined".to_owned())]);
        assert!(data.iter().all(|d| d.namespace == "VyapaarNexus/dev" && d.value == 1.0 && d.unit == "Count"));
        assert_eq!(data[0].timestamp_ms, 1_700_000_000_000);
    }

    #[test]
    fn other_lines_yield_nothing() {
        assert!(parse(r#"{"level":"INFO","message":"order accepted"}"#).is_empty());
        assert!(parse("REPORT RequestId: 1").is_empty());
        assert!(parse(r#"{"_aws": not json"#).is_empty());
        let missing_value =
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"X"}]}]}}"#;
        assert!(parse(missing_value).is_empty(), "a metric without its value is skipped");
    }
}
