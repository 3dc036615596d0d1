//! The bench's figures: one `Run` per saga × workload × mode, the ratios to the null saga, and the cost on
//! AWS; as tables for people or one JSON document (`-o json`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::capacity::Capacity;
use super::cost::Cost;
use super::proxy::OperationCount;
use super::stats::Percentiles;
use crate::render;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub saga: String,
    pub workload: String,
    pub mode: String,
    pub orders: usize,
    pub wall_seconds: f64,
    pub orders_per_second: f64,
    /// Publish → the order's end (Nexus: its terminal status written; null saga: its execution stopped).
    pub latency_seconds: Percentiles,
    pub steps: Vec<Step>,
    pub outcomes: BTreeMap<String, usize>,
    /// Bursts only (a sequential run is mostly idle polling).
    pub localstack_requests_per_order: BTreeMap<String, f64>,
    pub dynamodb_per_order: BTreeMap<String, OperationCount>,
    pub cpu_ms_per_order: BTreeMap<String, f64>,
    pub peak_memory_mib: BTreeMap<String, f64>,
}

impl Run {
    pub fn localstack_total(&self) -> f64 {
        self.localstack_requests_per_order.values().sum()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub step: String,
    pub seconds: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratios {
    /// Nexus's happy burst throughput over the null saga's (goal ≥ 0.8).
    pub throughput: f64,
    /// Nexus's sequential p50 over the null saga's (goal ≤ 1.5).
    pub p50_latency: f64,
    /// Nexus's LocalStack requests per happy order (goal ≤ 25) and the null saga's.
    pub localstack_requests_per_order: f64,
    pub null_localstack_requests_per_order: f64,
    /// Nexus's happy burst throughput over the null saga's that also publishes Nexus's events (when run).
    pub throughput_with_events: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub started_at: String,
    pub cpus: usize,
    pub runs: Vec<Run>,
    pub ratios: Ratios,
    /// Per happy order.
    pub cost: Cost,
    /// Per order of the mixed workload (declines, stock-outs, unserved addresses, rejections).
    pub mixed_cost: Cost,
    pub capacity: Capacity,
}

pub fn print(report: &Report) {
    let mut runs = render::table([
        "saga", "workload", "mode", "orders", "wall s", "orders/s", "p50 s", "p95 s", "p99 s", "outcomes",
    ]);
    for run in &report.runs {
        let outcomes: Vec<String> = run.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        runs.add_row([
            run.saga.clone(),
            run.workload.clone(),
            run.mode.clone(),
            run.orders.to_string(),
            format!("{:.1}", run.wall_seconds),
            format!("{:.2}", run.orders_per_second),
            format!("{:.2}", run.latency_seconds.p50),
            format!("{:.2}", run.latency_seconds.p95),
            format!("{:.2}", run.latency_seconds.p99),
            outcomes.join(", "),
        ]);
    }
    println!("Runs (latency: publish → the order's end)\n{runs}\n");

    let bursts: Vec<&Run> = report.runs.iter().filter(|r| r.mode == "burst").collect();
    let name = |r: &Run| format!("{} {}", r.saga, r.workload);
    let rows = |first: &str, pick: &dyn Fn(&Run) -> BTreeMap<String, f64>, digits: usize| {
        let mut header = vec![first.to_owned()];
        header.extend(bursts.iter().map(|r| name(r)));
        let mut table = render::table(header);
        let keys: std::collections::BTreeSet<String> = bursts.iter().flat_map(|r| pick(r).into_keys()).collect();
        for key in keys {
            let mut row = vec![key.clone()];
            row.extend(bursts.iter().map(|r| pick(r).get(&key).map_or("–".into(), |v| format!("{v:.digits$}"))));
            table.add_row(row);
        }
        table
    };
    let mut requests = rows("operation", &|r: &Run| r.localstack_requests_per_order.clone(), 2);
    let mut total = vec!["total".to_owned()];
    total.extend(bursts.iter().map(|r| format!("{:.2}", r.localstack_total())));
    requests.add_row(total);
    println!("LocalStack requests per order (bursts, net of idle polling and of the bench's own calls)\n{requests}\n");
    let dynamodb =
        rows("operation", &|r: &Run| r.dynamodb_per_order.iter().map(|(k, v)| (k.clone(), v.requests)).collect(), 2);
    println!(
        "DynamoDB requests per order (the functions' direct calls, through the bench's counting proxy)\n{dynamodb}\n"
    );
    println!(
        "CPU milliseconds per order (net of idle)\n{}\n",
        rows("process", &|r: &Run| r.cpu_ms_per_order.clone(), 1)
    );
    println!(
        "Peak resident memory, MiB (every process of each: a function runs one process per concurrent batch)\n{}\n",
        rows("process", &|r: &Run| r.peak_memory_mib.clone(), 0)
    );

    for run in report.runs.iter().filter(|r| !r.steps.is_empty()) {
        let mut steps = render::table(["step", "p50 s", "p95 s", "p99 s"]);
        for step in &run.steps {
            let s = step.seconds;
            steps.add_row([
                step.step.clone(),
                format!("{:.2}", s.p50),
                format!("{:.2}", s.p95),
                format!("{:.2}", s.p99),
            ]);
        }
        println!("Steps, {} {} {}\n{steps}\n", run.saga, run.workload, run.mode);
    }

    let r = &report.ratios;
    let mut ratios = render::table(["ratio to the null saga", "measured", "goal"]);
    ratios.add_row(["throughput (happy burst)".into(), format!("{:.2}", r.throughput), "≥ 0.80".to_owned()]);
    ratios.add_row(["p50 latency (sequential)".into(), format!("{:.2}", r.p50_latency), "≤ 1.50".to_owned()]);
    if let Some(with_events) = r.throughput_with_events {
        ratios.add_row([
            "throughput, to the null saga with Nexus's events".into(),
            format!("{with_events:.2}"),
            "–".to_owned(),
        ]);
    }
    ratios.add_row([
        "LocalStack requests per happy order".into(),
        format!("{:.1} (null saga {:.1})", r.localstack_requests_per_order, r.null_localstack_requests_per_order),
        "≤ 25".to_owned(),
    ]);
    println!("{ratios}\n");

    print_cost(&report.cost, "per happy order");
    print_cost(&report.mixed_cost, "per order of the mixed workload");

    let k = &report.capacity;
    let mut limits = render::table(["limit", "per second", "per order", "orders/s where it binds", "what to do"]);
    for limit in &k.limits {
        limits.add_row([
            limit.limit.clone(),
            format!("{:.0}", limit.per_second),
            format!("{:.2}", limit.per_order),
            format!("{:.1}", limit.orders_per_second),
            limit.remedy.clone(),
        ]);
    }
    println!("Capacity on AWS ({}, default quotas of {}), lowest first\n{limits}", k.region, k.quotas_as_of);
    if let Some(first) = k.limits.iter().find(|l| !l.limit.contains("saga-slots")) {
        println!("Binds first: {} at {:.1} orders/s", first.limit, first.orders_per_second);
    }
    if let Some(slots) = k.limits.iter().find(|l| l.limit.contains("saga-slots")) {
        println!(
            "With admission control at its largest bound: {} at {:.1} orders/s",
            slots.limit, slots.orders_per_second
        );
    }
    for assumption in &k.assumptions {
        println!("  assumed: {assumption}");
    }
}

fn print_cost(c: &Cost, per: &str) {
    let mut cost =
        render::table([format!("AWS, {per}"), "count".into(), "unit".into(), "USD per million orders".into()]);
    for line in &c.lines {
        cost.add_row([
            line.item.clone(),
            format!("{:.3}", line.per_order),
            line.unit.clone(),
            format!("{:.2}", line.usd_per_million_orders),
        ]);
    }
    cost.add_row(["total".into(), String::new(), String::new(), format!("{:.2}", c.usd_per_million_orders)]);
    println!("Cost on AWS ({}, prices of {}), {per}\n{cost}", c.region, c.prices_as_of);
    for assumption in &c.assumptions {
        println!("  assumed: {assumption}");
    }
    println!();
}
