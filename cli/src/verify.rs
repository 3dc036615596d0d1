//! `nexus verify`: the invariant checker over every order and table; exit 4 on any violation.

use std::time::Duration;

use anyhow::Context;
use nexus_ops::{invariants, snapshot};

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Orders still running after this long are listed as stuck.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub stuck_after: Duration,
    /// First free every saga slot held by an order whose saga has ended (the checker's `saga-slot-freed`),
    /// and count them in the `SagaSlotsReclaimed` metric, which the stack alarms on.
    #[arg(long)]
    pub reclaim_slots: bool,
    /// Check only these orders (repeatable): their timelines, effects, money and executions, on a stack busy
    /// with others. The stock they share with other orders is not checked then.
    #[arg(long = "order", value_name = "ORDER_ID")]
    pub orders: Vec<String>,
}

pub async fn run(nexus: &Nexus, format: Format, args: VerifyArgs) -> anyhow::Result<()> {
    if args.reclaim_slots {
        reclaim_slots(nexus).await?;
    }
    render::progress("reading every execution, order, event, stock item, ledger entry and saga slot");
    let mut snapshot =
        snapshot::load(&nexus.dynamo()?, &nexus.saga()?).await.context("read the tables and executions")?;
    if !args.orders.is_empty() {
        snapshot = snapshot.of_orders(&args.orders);
    }
    let report = invariants::check(&snapshot, chrono::Utc::now().timestamp());
    let stuck_after = i64::try_from(args.stuck_after.as_secs()).unwrap_or(i64::MAX);
    let stuck: Vec<_> = report.in_flight.iter().filter(|o| o.age_seconds >= stuck_after).collect();
    match format {
        Format::Json => render::json(&serde_json::json!({"report": report, "stuck": stuck}))?,
        Format::Table => {
            let by_status: Vec<String> = report.by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!("{} orders: {}", report.orders, by_status.join(", "));
            println!(
                "charged {} − refunded {} = completed {} (cents)",
                report.charged_cents, report.refunded_cents, report.completed_total_cents
            );
            println!(
                "{} in flight, {} stuck (running > {})",
                report.in_flight.len(),
                stuck.len(),
                humantime::format_duration(args.stuck_after)
            );
            for order in &stuck {
                println!("  stuck: {} {} for {} s", order.order_id, order.status, order.age_seconds);
            }
            if report.violations.is_empty() {
                println!("no violations");
            } else {
                let mut table = render::table(["rule", "subject", "detail"]);
                for v in &report.violations {
                    table.add_row([v.rule.to_owned(), v.subject.clone(), v.detail.clone()]);
                }
                println!("{table}");
            }
        }
    }
    if report.violations.is_empty() { Ok(()) } else { Err(Failure::Violations(report.violations.len()).into()) }
}

/// Frees the slots of ended sagas, says which, and counts them in the stack's metrics (alarmed).
async fn reclaim_slots(nexus: &Nexus) -> anyhow::Result<()> {
    let dynamo = nexus.dynamo()?;
    let reclaimed = nexus_ops::slots::reclaim(&dynamo, &dynamo).await.context("reclaim the saga slots")?;
    for order_id in &reclaimed {
        render::progress(format!("saga slot reclaimed from {order_id}: its saga had ended"));
    }
    if !reclaimed.is_empty() {
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name(nexus_core::domain::admission::SAGA_SLOTS_RECLAIMED)
            .value(reclaimed.len() as f64)
            .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
            .build();
        aws_sdk_cloudwatch::Client::new(&nexus.config)
            .put_metric_data()
            .namespace(nexus.output("MetricsNamespace")?)
            .metric_data(datum)
            .send()
            .await
            .map_err(crate::stack::aws_error)
            .context("count the reclaimed slots (SagaSlotsReclaimed)")?;
    }
    Ok(())
}
