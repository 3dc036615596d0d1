//! `nexus retry ORDER_ID`: run a failed order again once its cause is fixed (`nexus_ops::retry` says which
//! orders qualify and how). Prints what it started; a refusal exits 7 with the reason.

use anyhow::Context;
use chrono::{DateTime, Utc};
use nexus_core::domain::status::OrderStatus;
use nexus_ops::retry::{self, RetryError, RetryKind};

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// The order to retry. Without it, every order the filters match (at least one filter).
    pub order_id: Option<String>,
    /// Every order in this status (NEEDS_ATTENTION, CANCELLED, or an in-flight one whose execution ended).
    #[arg(long, value_parser = crate::orders::parse_status)]
    pub status: Option<OrderStatus>,
    /// Every order with this reason (`Payment.Unavailable`, `Saga.ExecutionEnded`, …).
    #[arg(long)]
    pub reason: Option<String>,
    /// Every order changed since: a duration back (15m, 2h) or an RFC 3339 time.
    #[arg(long, value_parser = render::parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// List what the retry would do for each order, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(nexus: &Nexus, format: Format, args: RetryArgs) -> anyhow::Result<()> {
    match &args.order_id {
        Some(order_id) if !args.dry_run => one(nexus, format, order_id).await,
        Some(order_id) => bulk(nexus, format, vec![order_id.clone()], true).await,
        None => {
            if args.status.is_none() && args.reason.is_none() && args.since.is_none() {
                return Err(Failure::Usage("name an order, or filter with --status, --reason or --since".into()).into());
            }
            let mut orders = nexus.dynamo()?.all_orders().await.context("scan the orders")?;
            orders.retain(|o| args.status.is_none_or(|s| o.status == s));
            orders.retain(|o| args.reason.as_deref().is_none_or(|r| o.reason.as_deref() == Some(r)));
            if let Some(since) = args.since {
                orders.retain(|o| render::parse_time(&o.updated_at).is_some_and(|t| t >= since));
            }
            orders.sort_by(|a, b| a.updated_at.cmp(&b.updated_at));
            bulk(nexus, format, orders.into_iter().map(|o| o.order_id).collect(), args.dry_run).await
        }
    }
}

/// Every order of `ids`: what a retry would do (`dry_run`) or did, one line each; a refusal is reported and
/// the rest go on. Exits 7 when any was refused.
async fn bulk(nexus: &Nexus, format: Format, ids: Vec<String>, dry_run: bool) -> anyhow::Result<()> {
    let dynamo = nexus.dynamo()?;
    let events = nexus.events()?;
    let saga = nexus.saga()?;
    let mut rows = Vec::new();
    for order_id in &ids {
        let outcome = if dry_run {
            preview(&dynamo, &saga, order_id).await
        } else {
            match retry::retry(&dynamo, &dynamo, &events, &saga, order_id).await {
                Ok(retried) => Ok(what(retried.kind).to_owned()),
                Err(e) => Err(e.to_string()),
            }
        };
        rows.push((order_id.clone(), outcome));
    }
    let refused = rows.iter().filter(|(_, outcome)| outcome.is_err()).count();
    if format == Format::Json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(id, outcome)| match outcome {
                Ok(action) => serde_json::json!({"orderId": id, "action": action, "dryRun": dry_run}),
                Err(why) => serde_json::json!({"orderId": id, "refused": why, "dryRun": dry_run}),
            })
            .collect();
        render::json(&rows)?;
    } else {
        let mut table = render::table(["order", if dry_run { "would" } else { "did" }]);
        for (id, outcome) in &rows {
            table.add_row([id.clone(), outcome.clone().unwrap_or_else(|why| format!("refused: {why}"))]);
        }
        println!(
            "{table}\n{} order(s), {refused} refused{}",
            rows.len(),
            if dry_run { " (dry run: nothing changed)" } else { "" }
        );
    }
    if refused > 0 {
        Err(Failure::RetryRefused(format!("{refused} of {} orders refused", rows.len())).into())
    } else {
        Ok(())
    }
}

/// What a retry of the order would do, read only.
async fn preview(
    dynamo: &nexus_aws::dynamo::Dynamo,
    saga: &nexus_aws::sfn::StepFunctions,
    order_id: &str,
) -> Result<String, String> {
    use nexus_core::ports::{EventLog, OrderStore, SagaStarter};
    let order = dynamo.get(order_id).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("no order {order_id}"))?;
    let execution = match retry::current_execution(&order) {
        Some(name) => saga.status(&name).await.map_err(|e| e.to_string())?,
        None => None,
    };
    let events = dynamo.events(order_id).await.map_err(|e| e.to_string())?;
    let plan = retry::decide(&order, execution, &events)?;
    Ok(format!("{}{}", what(plan.kind()), if plan.republish { " (its events published again first)" } else { "" }))
}

fn what(kind: RetryKind) -> &'static str {
    match kind {
        RetryKind::NewAttempt => "run it again from the first step, as its next attempt",
        RetryKind::Compensation => "run its compensation (again), then cancel it",
        RetryKind::Completion => "complete it: every step had succeeded",
    }
}

async fn one(nexus: &Nexus, format: Format, order_id: &str) -> anyhow::Result<()> {
    let dynamo = nexus.dynamo()?;
    let events = nexus.events()?;
    let saga = nexus.saga()?;
    let retried = match retry::retry(&dynamo, &dynamo, &events, &saga, order_id).await {
        Ok(retried) => retried,
        Err(RetryError::NotFound(_)) => {
            return Err(Failure::NotFound(format!("no order {order_id}: `nexus orders` lists them")).into());
        }
        Err(refusal @ RetryError::Refused { .. }) => return Err(Failure::RetryRefused(refusal.to_string()).into()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("retry order {order_id}"))),
    };
    if format == Format::Json {
        return render::json(&retried);
    }
    let resumed = if retried.resumed { " (an earlier retry had written the order but not started it)" } else { "" };
    println!("order {order_id} is {}: {}{resumed}", retried.status, what(retried.kind));
    println!("execution {}", retried.execution_arn);
    println!("follow it with: nexus timeline {order_id}");
    Ok(())
}

/// `nexus republish ORDER_ID`: the order's events published again.
pub async fn republish(nexus: &Nexus, order_id: &str) -> anyhow::Result<()> {
    let dynamo = nexus.dynamo()?;
    let events = nexus.events()?;
    let sent = nexus_ops::republish::republish(&dynamo, &events, order_id)
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("republish the events of order {order_id}")))?;
    if sent == 0 {
        return Err(Failure::NotFound(format!("no events of order {order_id}: `nexus orders` lists them")).into());
    }
    println!("order {order_id}: {sent} events published again (subscribers dedupe by event id)");
    Ok(())
}
