//! Embedded Metric Format extraction, as CloudWatch Logs does it on AWS: a function's log line with an
//! `_aws.CloudWatchMetrics` block becomes metric data, put to LocalStack with PutMetricData (batched per
//! namespace, flushed every second), so `aws cloudwatch get-metric-statistics` answers locally as on AWS.
//! The values of one metric (same name, unit and dimensions) within one second go as one datum with
//! `Values` and `Counts`, as CloudWatch's finest (1 s) resolution keeps them anyway: LocalStack stores each
//! datum in a transaction of its own, which made a datum per value a fifth of its CPU under load.

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
/// PutMetricData takes at most 1000 data per call, each with at most 150 distinct values.
const MAX_BATCH: usize = 1000;
const MAX_VALUES: usize = 150;

/// What makes values one datum: namespace, name, unit, dimensions and the second they fall in.
type Series = (String, String, String, Vec<(String, String)>, i64);

/// The window's values, one datum per series and second (more when a series has over 150 distinct
/// values), per namespace, in PutMetricData calls of at most 1000 data.
pub fn aggregate(data: Vec<Datum>) -> Vec<(String, Vec<MetricDatum>)> {
    let mut series: BTreeMap<Series, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
    for d in data {
        let key = (d.namespace, d.name, d.unit, d.dimensions, d.timestamp_ms.div_euclid(1000));
        // Keyed by the value's bits: equal values count together.
        let entry = series.entry(key).or_default().entry(d.value.to_bits()).or_insert((d.value, 0.0));
        entry.1 += 1.0;
    }
    let mut calls: Vec<(String, Vec<MetricDatum>)> = Vec::new();
    for ((namespace, name, unit, dimensions, second), values) in series {
        let values: Vec<(f64, f64)> = values.into_values().collect();
        for chunk in values.chunks(MAX_VALUES) {
            let datum = MetricDatum::builder()
                .metric_name(&name)
                .set_values(Some(chunk.iter().map(|(v, _)| *v).collect()))
                .set_counts(Some(chunk.iter().map(|(_, c)| *c).collect()))
                .unit(StandardUnit::from(unit.as_str()))
                .timestamp(DateTime::from_millis(second * 1000))
                .set_dimensions(Some(
                    dimensions.iter().map(|(n, v)| Dimension::builder().name(n).value(v).build()).collect(),
                ))
                .build();
            match calls.last_mut() {
                Some((ns, batch)) if *ns == namespace && batch.len() < MAX_BATCH => batch.push(datum),
                _ => calls.push((namespace.clone(), vec![datum])),
            }
        }
    }
    calls
}

pub fn start(client: aws_sdk_cloudwatch::Client) -> (MetricSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MetricSink { tx }, tokio::spawn(ship(client, rx)))
}

async fn ship(client: aws_sdk_cloudwatch::Client, mut rx: mpsc::UnboundedReceiver<Datum>) {
    let mut open = true;
    while open {
        let mut window = Vec::new();
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                datum = rx.recv() => match datum {
                    Some(datum) => window.push(datum),
                    None => { open = false; break; }
                },
                () = &mut deadline => break,
            }
        }
        for (namespace, data) in aggregate(window) {
            let put = client.put_metric_data().namespace(&namespace).set_metric_data(Some(data)).send().await;
            if let Err(e) = put {
                // Metrics are best effort, as EMF extraction is; the log line itself is kept.
                tracing::warn!(namespace = %namespace, error = %aws_sdk_cloudwatch::error::DisplayErrorContext(e), "could not put metric data");
            }
        }
    }
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

    fn datum(name: &str, value: f64, timestamp_ms: i64, reason: &str) -> Datum {
        Datum {
            namespace: "N".into(),
            name: name.into(),
            value,
            unit: "Milliseconds".into(),
            dimensions: vec![("Reason".into(), reason.into())],
            timestamp_ms,
        }
    }

    #[test]
    fn one_series_within_a_second_is_one_datum_with_values_and_counts() {
        let calls = aggregate(vec![
            datum("StepLatency", 12.0, 1_000_100, "a"),
            datum("StepLatency", 12.0, 1_000_900, "a"),
            datum("StepLatency", 30.0, 1_000_500, "a"),
            datum("StepLatency", 12.0, 1_001_000, "a"),
            datum("StepLatency", 12.0, 1_000_200, "b"),
            datum("Other", 1.0, 1_000_200, "a"),
        ]);
        assert_eq!(calls.len(), 1, "one namespace, one call");
        let data = &calls[0].1;
        assert_eq!(data.len(), 4, "Other; StepLatency a in two seconds; StepLatency b");
        let step_a = data
            .iter()
            .find(|d| {
                d.metric_name() == Some("StepLatency") && d.timestamp() == Some(&DateTime::from_millis(1_000_000))
            })
            .filter(|d| d.dimensions()[0].value() == Some("a"))
            .expect("StepLatency a in second 1000");
        assert_eq!(step_a.values(), [12.0, 30.0]);
        assert_eq!(step_a.counts(), [2.0, 1.0]);
        let total: f64 = data.iter().flat_map(|d| d.counts()).sum();
        assert_eq!(total, 6.0, "every value is counted once");
    }

    #[test]
    fn a_call_holds_at_most_1000_data_and_a_datum_at_most_150_values() {
        let many: Vec<Datum> = (0..1200).map(|i| datum(&format!("M{i}"), 1.0, 0, "a")).collect();
        let calls = aggregate(many);
        assert_eq!(calls.iter().map(|(_, d)| d.len()).collect::<Vec<_>>(), [1000, 200]);
        let spread: Vec<Datum> = (0..400).map(|i| datum("M", f64::from(i), 0, "a")).collect();
        let data = &aggregate(spread)[0].1;
        assert_eq!(data.iter().map(|d| d.values().len()).collect::<Vec<_>>(), [150, 150, 100]);
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
