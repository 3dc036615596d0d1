//! At what order rate each AWS quota binds: the bench's counted calls per order against a committed, dated
//! table of AWS's default quotas (`aws-quotas.json`), the lowest first, with what to do about it. Beside the
//! account's quotas, two limits of Nexus's own: the concurrency of each queue's event source mapping
//! (`MaximumConcurrency` in template.yaml) and the one item admission control keeps its slots in.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::cost::Usage;

const QUOTAS: &str = include_str!("aws-quotas.json");

/// The mappings' concurrency of a stack from before `QueueMaximumConcurrency`, which fixed it at 2.
pub const DEFAULT_MAPPING_CONCURRENCY: u32 = 2;
/// Messages a happy order puts through the functions: its submission, four commands, five events.
const RECORDS_PER_ORDER: f64 = 10.0;
/// The functions' memory (template.yaml's Globals), to turn GB-seconds into seconds.
const FUNCTION_GB: f64 = 0.25;
/// An order id in the slots item's string set, with DynamoDB's per-element overhead.
const SLOT_BYTES: f64 = 40.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaTable {
    pub as_of: String,
    pub region: String,
    pub quotas: BTreeMap<String, Quota>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub per_second: f64,
    pub what: String,
    pub source: String,
}

pub fn quotas() -> anyhow::Result<QuotaTable> {
    serde_json::from_str(QUOTAS).context("the committed quota table aws-quotas.json")
}

/// One limit: how much of it an order takes, and the order rate at which it binds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    pub limit: String,
    pub per_second: f64,
    pub per_order: f64,
    pub orders_per_second: f64,
    pub remedy: String,
    /// Where the limit is documented (or set).
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    pub quotas_as_of: String,
    pub region: String,
    /// Lowest first: the first binds.
    pub limits: Vec<Limit>,
    pub assumptions: Vec<String>,
}

/// What the stack's parameters set that the model reads.
#[derive(Debug, Clone, Copy)]
pub struct StackLimits {
    /// `StandardSagaLimit`: standard sagas admitted at once (0: no bound, no slots item).
    pub saga_limit: u32,
    /// `QueueMaximumConcurrency`: invocations of a queue's function at once.
    pub mapping_concurrency: u32,
}

/// The model for orders that use `usage` each, under the stack's `limits` (the slots item is written twice
/// per standard order, at its largest when the bound is reached).
pub fn model(usage: &Usage, limits: StackLimits, table: &QuotaTable) -> anyhow::Result<Capacity> {
    let StackLimits { saga_limit, mapping_concurrency } = limits;
    let quota = |key: &str| table.quotas.get(key).with_context(|| format!("aws-quotas.json has no quota {key}"));
    let mut limits = Vec::new();
    let mut account = |key: &str, per_order: f64, remedy: &str| -> anyhow::Result<()> {
        let q = quota(key)?;
        limits.push(Limit {
            limit: q.what.clone(),
            per_second: q.per_second,
            per_order,
            orders_per_second: q.per_second / per_order.max(f64::MIN_POSITIVE),
            remedy: remedy.into(),
            source: q.source.clone(),
        });
        Ok(())
    };
    account(
        "sfnStartExecution",
        1.0,
        "a quota increase (Service Quotas); then executions spread over state machines in more regions",
    )?;
    account(
        "sfnSendTask",
        usage.callbacks,
        "a quota increase; fewer callback tasks per order (a step that answers two tasks' worth)",
    )?;
    account("sfnStateTransition", usage.state_transitions, "a quota increase; fewer transitions per order")?;
    account("snsPublish", usage.sns_publishes, "a quota increase")?;
    let seconds_per_order = usage.lambda_gb_seconds / FUNCTION_GB;
    account("lambdaConcurrency", seconds_per_order, "a concurrency quota increase; faster functions")?;
    let seconds_per_record = seconds_per_order / RECORDS_PER_ORDER;
    let records_per_second = f64::from(mapping_concurrency) / seconds_per_record.max(f64::MIN_POSITIVE);
    limits.push(Limit {
        limit: format!("one queue's event source mapping: MaximumConcurrency {mapping_concurrency} (the stack's QueueMaximumConcurrency), records one after another"),
        per_second: records_per_second,
        per_order: 1.0,
        orders_per_second: records_per_second,
        remedy: "raise QueueMaximumConcurrency (up to 1,000), within the Lambda concurrency".into(),
        source: "template.yaml (each AWS::Lambda::EventSourceMapping's ScalingConfig)".into(),
    });
    if saga_limit > 0 {
        let q = quota("dynamodbPartitionWrites")?;
        let item_kb = (f64::from(saga_limit) * SLOT_BYTES / 1024.0).ceil().max(1.0);
        // Written twice an order (its start and its end), each time in a transaction: billed twice.
        let per_order = 4.0 * item_kb;
        limits.push(Limit {
            limit: format!("the saga-slots item (StandardSagaLimit {saga_limit}: up to {item_kb} KB, rewritten in a transaction by each standard order's start and end): {}", q.what),
            per_second: q.per_second,
            per_order,
            orders_per_second: q.per_second / per_order,
            remedy: "a lower bound; past the largest (50), the slots sharded over several items (each a partition of its own)".into(),
            source: q.source.clone(),
        });
    }
    limits.sort_by(|a, b| a.orders_per_second.total_cmp(&b.orders_per_second));
    Ok(Capacity {
        quotas_as_of: table.as_of.clone(),
        region: table.region.clone(),
        limits,
        assumptions: vec![
            format!(
                "the calls of a happy order as the bench counted them; {RECORDS_PER_ORDER} records an order through the functions"
            ),
            format!(
                "function time per record as measured here ({:.0} ms); on AWS it is a step's three round trips and its answer, similar or less",
                seconds_per_record * 1000.0
            ),
            "default quotas of a new account are lower for state transitions until AWS raises them with use".into(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use nexus_core::domain::admission::MAX_STANDARD_SAGAS;

    use super::*;

    fn limits(saga_limit: u32, mapping_concurrency: u32) -> StackLimits {
        StackLimits { saga_limit, mapping_concurrency }
    }

    fn usage() -> Usage {
        Usage {
            state_transitions: 6.0,
            callbacks: 4.0,
            sns_publishes: 10.0,
            lambda_gb_seconds: 0.25,
            ..Usage::default()
        }
    }

    #[test]
    fn the_committed_table_is_dated_and_has_every_quota() {
        let table = quotas().expect("the table parses");
        assert_eq!(table.region, "us-east-1");
        assert!(table.as_of.len() == 10 && table.quotas.values().all(|q| q.source.starts_with("https://")));
        model(&usage(), limits(MAX_STANDARD_SAGAS, 2), &table).expect("every quota the model reads is there");
    }

    #[test]
    fn each_limit_is_its_rate_over_the_orders_use_and_the_lowest_binds_first() {
        let table = quotas().expect("table");
        let capacity = model(&usage(), limits(0, 2), &table).expect("model");
        let rate = |needle: &str| {
            capacity.limits.iter().find(|l| l.limit.contains(needle)).map(|l| l.orders_per_second).expect(needle)
        };
        assert_eq!(rate("SendTaskSuccess"), 500.0 / 4.0);
        assert_eq!(rate("state transitions"), 1500.0 / 6.0);
        assert_eq!(rate("MaximumConcurrency"), 2.0 / 0.1, "1 s of function time an order: 0.1 s a record");
        let raised = model(&usage(), limits(0, 50), &table).expect("model");
        let mapping = raised.limits.iter().find(|l| l.limit.contains("MaximumConcurrency 50")).expect("the stack's");
        assert_eq!(mapping.orders_per_second, 50.0 / 0.1);
        assert!(capacity.limits.windows(2).all(|w| w[0].orders_per_second <= w[1].orders_per_second));
        assert!(!capacity.limits.iter().any(|l| l.limit.contains("saga-slots")), "no bound, no slots item");
        // At the largest bound (50) the slots item is 2 KB, written twice an order in transactions: 1,000 WCU /
        // 8, no sooner than the callback quota binds.
        let bounded = model(&usage(), limits(MAX_STANDARD_SAGAS, 2), &table).expect("model");
        let slots = bounded.limits.iter().find(|l| l.limit.contains("saga-slots")).expect("the slots item");
        assert_eq!(slots.orders_per_second, 1000.0 / 8.0);
        assert!(slots.orders_per_second >= rate("SendTaskSuccess"), "{slots:?}");
    }
}
