//! `nexus status`, `nexus timeline`, `nexus orders`.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_sfn::types::HistoryEventType;
use chrono::{DateTime, Utc};
use nexus_core::domain::ids::EmailHasher;
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use nexus_core::ports::{EventLog, ExecutionStatus, OrderStore};
use serde::Serialize;
use serde_json::{Value, json};

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

/// An order as the CLI shows it: the customer email only as its keyed hash, never in clear.
pub fn order_json(order: &Order, emails: &EmailHasher) -> Value {
    let mut value = serde_json::to_value(order).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("customerEmail");
        fields.remove("payment");
        fields.insert("customerEmailHash".into(), json!(emails.hash(&order.customer_email)));
    }
    value
}

async fn get(nexus: &Nexus, order_id: &str) -> anyhow::Result<Order> {
    nexus.dynamo()?.get(order_id).await.context("read the order")?.ok_or_else(|| {
        Failure::NotFound(format!(
            "no order {order_id}: check the id (`nexus orders` lists them); a just-submitted order appears within seconds"
        ))
        .into()
    })
}

pub async fn status(nexus: &Nexus, format: Format, order_id: &str) -> anyhow::Result<()> {
    let order = get(nexus, order_id).await?;
    if format == Format::Json {
        return render::json(&order_json(&order, &nexus.email_hasher().await?));
    }
    let items: Vec<String> = order.items.iter().map(|i| format!("{} × {}", i.sku, i.quantity)).collect();
    let mut table = render::table(["field", "value"]);
    for (field, value) in [
        ("order", order.order_id.clone()),
        ("status", order.status.to_string()),
        ("reason", order.reason.clone().unwrap_or_default()),
        ("lane", order.tier.as_str().to_owned()),
        ("items", items.join(", ")),
        ("total", render::money(order.total_cents, &order.currency)),
        ("version", order.version.to_string()),
        ("attempt", order.attempt.to_string()),
        ("created", order.created_at.clone()),
        ("updated", order.updated_at.clone()),
        ("correlation", order.correlation_id.clone()),
        ("execution", order.execution_arn.clone().unwrap_or_default()),
    ] {
        table.add_row([field.to_owned(), value]);
    }
    println!("{table}");
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateTiming {
    state: String,
    entered: String,
    duration_ms: Option<i64>,
    outcome: String,
}

pub async fn timeline(nexus: &Nexus, format: Format, order_id: &str) -> anyhow::Result<()> {
    let order = get(nexus, order_id).await?;
    let events = nexus.dynamo()?.events(order_id).await.context("read the order's events")?;
    let execution = match &order.execution_arn {
        Some(arn) => execution_history(&aws_sdk_sfn::Client::new(&nexus.config), arn).await?,
        None => ExecutionHistory::default(),
    };
    if format == Format::Json {
        let order = order_json(&order, &nexus.email_hasher().await?);
        let ExecutionHistory { states, ended } = execution;
        return render::json(&json!({"order": order, "events": events, "states": states, "executionEnded": ended}));
    }
    let mut table = render::table(["#", "at", "+", "status", "reason"]);
    let mut previous: Option<DateTime<Utc>> = None;
    for event in &events {
        let at = render::parse_time(&event.at);
        let since = match (previous, at) {
            (Some(p), Some(a)) => format!("{} ms", (a - p).num_milliseconds()),
            _ => String::new(),
        };
        previous = at.or(previous);
        table.add_row([
            event.sequence.to_string(),
            event.at.clone(),
            since,
            event.status.to_string(),
            event.reason.clone().unwrap_or_default(),
        ]);
    }
    println!("order {order_id}: {} events\n{table}", events.len());
    if !execution.states.is_empty() {
        let mut table = render::table(["state", "entered", "duration", "outcome"]);
        for state in &execution.states {
            table.add_row([
                state.state.clone(),
                state.entered.clone(),
                state.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "running".into()),
                state.outcome.clone(),
            ]);
        }
        let end = execution.ended.map_or_else(|| "running".to_owned(), |e| format!("{} at {}", e.status, e.at));
        println!("execution {}: {end}\n{table}", order.execution_arn.unwrap_or_default());
    }
    Ok(())
}

/// An execution as its history tells it: its states in order, and how and when it ended.
#[derive(Debug, Default)]
pub struct ExecutionHistory {
    pub states: Vec<StateTiming>,
    /// None while it runs.
    pub ended: Option<ExecutionEnd>,
}

/// The execution's status once ended (`SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`) and when: what the
/// states alone do not say, since the execution ends on the task that writes the order's last status.
#[derive(Debug, Serialize)]
pub struct ExecutionEnd {
    pub status: &'static str,
    pub at: String,
}

/// The execution's states in order, each with how long it ran and how it ended (its task's failure, if any),
/// and the execution's own end.
pub async fn execution_history(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> anyhow::Result<ExecutionHistory> {
    let mut pages = sfn.get_execution_history().execution_arn(execution_arn).into_paginator().items().send();
    let mut states: Vec<StateTiming> = Vec::new();
    let mut ended = None;
    let mut entered_at: HashMap<usize, DateTime<Utc>> = HashMap::new();
    while let Some(event) = pages.next().await {
        let event = event.map_err(crate::stack::aws_error).context("read the execution history")?;
        let at = DateTime::<Utc>::from_timestamp(event.timestamp().secs(), event.timestamp().subsec_nanos())
            .unwrap_or_default();
        if let Some(entered) = event.state_entered_event_details() {
            entered_at.insert(states.len(), at);
            states.push(StateTiming {
                state: entered.name().to_owned(),
                entered: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                duration_ms: None,
                outcome: "running".into(),
            });
        } else if let Some(exited) = event.state_exited_event_details() {
            if let Some((index, state)) =
                states.iter_mut().enumerate().rev().find(|(_, s)| s.state == exited.name() && s.duration_ms.is_none())
            {
                state.duration_ms = entered_at.get(&index).map(|start| (at - *start).num_milliseconds());
                if state.outcome == "running" {
                    state.outcome = "ok".into();
                }
            }
        } else if let Some(failed) = event.task_failed_event_details() {
            if let Some(state) = states.last_mut() {
                state.outcome = failed.error().unwrap_or("failed").to_owned();
            }
        } else if event.r#type() == &HistoryEventType::TaskTimedOut
            && let Some(state) = states.last_mut()
        {
            state.outcome = "States.Timeout".into();
        } else if let Some(status) = ended_as(event.r#type()) {
            ended = Some(ExecutionEnd {
                status: status.as_str(),
                at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            });
        }
    }
    Ok(ExecutionHistory { states, ended })
}

/// The status an execution's closing history event gives it.
fn ended_as(event: &HistoryEventType) -> Option<ExecutionStatus> {
    Some(match event {
        HistoryEventType::ExecutionSucceeded => ExecutionStatus::Succeeded,
        HistoryEventType::ExecutionFailed => ExecutionStatus::Failed,
        HistoryEventType::ExecutionTimedOut => ExecutionStatus::TimedOut,
        HistoryEventType::ExecutionAborted => ExecutionStatus::Aborted,
        _ => return None,
    })
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only orders in this status.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<OrderStatus>,
    /// Only orders changed since: a duration back (15m, 2h) or an RFC 3339 time.
    #[arg(long, value_parser = render::parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub fn parse_status(text: &str) -> Result<OrderStatus, String> {
    let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
    OrderStatus::parse(&text.to_uppercase()).ok_or_else(|| format!("not a status; one of {}", names.join(", ")))
}

pub async fn list(nexus: &Nexus, format: Format, args: ListArgs) -> anyhow::Result<()> {
    let mut orders = nexus.dynamo()?.all_orders().await.context("scan the orders")?;
    orders.retain(|o| args.status.is_none_or(|s| o.status == s));
    if let Some(since) = args.since {
        orders.retain(|o| render::parse_time(&o.updated_at).is_some_and(|t| t >= since));
    }
    orders.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    orders.truncate(args.limit);
    if format == Format::Json {
        let emails = nexus.email_hasher().await?;
        return render::json(&orders.iter().map(|o| order_json(o, &emails)).collect::<Vec<_>>());
    }
    let mut table = render::table(["order", "lane", "status", "reason", "total", "created", "updated"]);
    for order in &orders {
        table.add_row([
            order.order_id.clone(),
            order.tier.as_str().to_owned(),
            order.status.to_string(),
            order.reason.clone().unwrap_or_default(),
            render::money(order.total_cents, &order.currency),
            order.created_at.clone(),
            order.updated_at.clone(),
        ]);
    }
    println!("{table}\n{} order(s)", orders.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_closing_event_gives_its_execution_status_and_no_other_event_ends_it() {
        let ends = [
            (HistoryEventType::ExecutionSucceeded, "SUCCEEDED"),
            (HistoryEventType::ExecutionFailed, "FAILED"),
            (HistoryEventType::ExecutionTimedOut, "TIMED_OUT"),
            (HistoryEventType::ExecutionAborted, "ABORTED"),
        ];
        for (event, status) in ends {
            assert_eq!(ended_as(&event).map(ExecutionStatus::as_str), Some(status), "{event:?}");
        }
        for event in
            [HistoryEventType::TaskSucceeded, HistoryEventType::TaskStateExited, HistoryEventType::ExecutionStarted]
        {
            assert_eq!(ended_as(&event), None, "{event:?}");
        }
    }
}
