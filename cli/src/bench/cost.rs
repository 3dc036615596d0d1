//! What a million orders would cost on AWS: the bench's counted calls per order × a committed, dated price
//! table (`aws-prices.json`, us-east-1 on-demand list prices), itemised.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::{Deserialize, Serialize};

const PRICES: &str = include_str!("aws-prices.json");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceTable {
    pub as_of: String,
    pub region: String,
    pub currency: String,
    pub note: String,
    pub items: BTreeMap<String, Price>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Price {
    pub usd: f64,
    pub per: String,
    pub source: String,
}

pub fn prices() -> anyhow::Result<PriceTable> {
    serde_json::from_str(PRICES).context("the committed price table aws-prices.json")
}

/// What one order uses of each priced item, as counted by the bench.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub state_transitions: f64,
    /// Callback tasks (SendTaskSuccess or SendTaskFailure each): not billed, but throttled (the capacity).
    pub callbacks: f64,
    pub lambda_invocations: f64,
    pub lambda_gb_seconds: f64,
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    pub sns_publishes: f64,
    pub sqs_requests: f64,
    pub log_bytes: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    pub item: String,
    pub per_order: f64,
    pub unit: String,
    pub usd_per_million_orders: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub prices_as_of: String,
    pub region: String,
    pub lines: Vec<CostLine>,
    pub usd_per_million_orders: f64,
    /// What the counts stand for, beyond the prices (the workload's mix).
    pub assumptions: Vec<String>,
}

impl Cost {
    pub fn assuming(self, assumptions: Vec<String>) -> Self {
        Self { assumptions, ..self }
    }
}

pub fn per_million(usage: &Usage, table: &PriceTable) -> anyhow::Result<Cost> {
    let price = |key: &str| table.items.get(key).with_context(|| format!("aws-prices.json has no item {key}"));
    let quantities = [
        ("Step Functions state transitions", "stepFunctionsStandardTransition", usage.state_transitions),
        ("Lambda invocations", "lambdaRequest", usage.lambda_invocations),
        ("Lambda duration", "lambdaArm64GbSecond", usage.lambda_gb_seconds),
        ("DynamoDB writes", "dynamodbWriteRequestUnit", usage.dynamodb_write_units),
        ("DynamoDB reads", "dynamodbReadRequestUnit", usage.dynamodb_read_units),
        ("SNS publishes", "snsPublish", usage.sns_publishes),
        ("SQS requests", "sqsRequest", usage.sqs_requests),
    ];
    let mut lines = Vec::new();
    for (item, key, per_order) in quantities {
        let price = price(key)?;
        lines.push(CostLine {
            item: item.into(),
            per_order,
            unit: price.per.clone(),
            usd_per_million_orders: per_order * price.usd * 1e6,
        });
    }
    // Log bytes per order are a few kilobytes: shown in KB, priced per GB.
    let logs = price("logsIngestedGb")?;
    lines.push(CostLine {
        item: "CloudWatch Logs ingestion".into(),
        per_order: usage.log_bytes / 1e3,
        unit: format!("KB ({} at ${} per GB)", logs.per, logs.usd),
        usd_per_million_orders: usage.log_bytes / 1e9 * logs.usd * 1e6,
    });
    Ok(Cost {
        prices_as_of: table.as_of.clone(),
        region: table.region.clone(),
        usd_per_million_orders: lines.iter().map(|l| l.usd_per_million_orders).sum(),
        lines,
        assumptions: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_table_is_dated_and_prices_every_item() {
        let table = prices().expect("test data");
        assert!(chrono::NaiveDate::parse_from_str(&table.as_of, "%Y-%m-%d").is_ok(), "{}", table.as_of);
        let cost = per_million(&Usage::default(), &table).expect("test data");
        assert_eq!(cost.lines.len(), 8);
        assert!(table.items.values().all(|p| p.usd > 0.0 && p.source.starts_with("https://aws.amazon.com/")));
    }

    #[test]
    fn each_line_is_the_count_times_the_price_per_million() {
        let table = prices().expect("test data");
        let usage = Usage { state_transitions: 6.0, dynamodb_write_units: 10.0, log_bytes: 2000.0, ..Usage::default() };
        let cost = per_million(&usage, &table).expect("test data");
        let line = |name: &str| cost.lines.iter().find(|l| l.item == name).expect("test data").usd_per_million_orders;
        // 6 transitions × $0.025 per 1000 = $150 per million orders.
        assert!((line("Step Functions state transitions") - 150.0).abs() < 1e-9);
        assert!((line("DynamoDB writes") - 6.25).abs() < 1e-9);
        // 2 KB × 1e6 = 2 GB at $0.50.
        assert!((line("CloudWatch Logs ingestion") - 1.0).abs() < 1e-9);
        assert!((cost.usd_per_million_orders - 157.25).abs() < 1e-9);
    }
}
