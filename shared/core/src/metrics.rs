//! Metrics as CloudWatch Embedded Metric Format: each metric is one log line (with the contract's fields,
//! so it is also a readable log line) carrying an `_aws` block. On AWS, CloudWatch Logs turns these lines
//! into metrics by itself; locally the function host does (PutMetricData to LocalStack).
//!
//! Written here rather than with a crate: the EMF crates bring their own global recorder and flush cycle,
//! while Nexus emits a handful of counters at the moment a change is written, inside the span that carries
//! the order id; a line through `tracing` gets those fields for free.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The metrics' namespace: `METRICS_NAMESPACE` (the template sets `VyapaarNexus/<stack>`), else
/// `VyapaarNexus`.
pub fn namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| {
        std::env::var("METRICS_NAMESPACE").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "VyapaarNexus".into())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// The EMF document for one metric: published without dimensions (the stack-wide figure the alarms and
/// dashboard use), per each of `dimensions` alone (by step, by lane), and per all of them together.
pub fn document(name: &str, value: f64, unit: Unit, dimensions: &[(&str, &str)], timestamp_ms: i64) -> Value {
    let mut sets: Vec<Vec<&str>> = vec![Vec::new()];
    sets.extend(dimensions.iter().map(|(key, _)| vec![*key]));
    if dimensions.len() > 1 {
        sets.push(dimensions.iter().map(|(key, _)| *key).collect());
    }
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace(),
                "Dimensions": sets,
                "Metrics": [{"Name": name, "Unit": unit.as_str()}],
            }],
        }),
    );
    root.insert(name.into(), json!(value));
    for (key, dimension_value) in dimensions {
        root.insert((*key).into(), json!(dimension_value));
    }
    Value::Object(root)
}

/// Emits one metric as an EMF log line (see [`crate::observability`]: the `emf` field is merged into it).
pub fn emit(name: &str, value: f64, unit: Unit, dimensions: &[(&str, &str)]) {
    let document = document(name, value, unit, dimensions, chrono::Utc::now().timestamp_millis());
    tracing::info!(emf = %document, metric = name, "metric");
}

pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    emit(name, 1.0, Unit::Count, dimensions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let doc = document("OrdersCancelled", 1.0, Unit::Count, &[("Reason", "Payment.Declined")], 1_700_000_000_000);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(directive["Namespace"], namespace());
        assert_eq!(directive["Dimensions"], json!([[], ["Reason"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "OrdersCancelled", "Unit": "Count"}]));
        assert_eq!((doc["OrdersCancelled"].as_f64(), doc["Reason"].as_str()), (Some(1.0), Some("Payment.Declined")));
        let two = document("StepLatency", 5.0, Unit::Milliseconds, &[("Step", "SHIPPED"), ("Tier", "VIP")], 0);
        assert_eq!(
            two["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[], ["Step"], ["Tier"], ["Step", "Tier"]])
        );
        let plain = document("OrdersSubmitted", 1.0, Unit::Count, &[], 0);
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }
}
