//! `nexus top`: one screen of how the system is doing; `--watch` redraws it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::Utc;
use nexus_ops::dlq;
use serde_json::json;

use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Redraw every this many seconds (Ctrl-C stops).
    #[arg(long)]
    pub watch: Option<u64>,
}

pub async fn run(nexus: &Nexus, format: Format, args: TopArgs) -> anyhow::Result<()> {
    // Once: the emulator does not change under a running `top --watch`.
    let emulator = nexus.emulator().await;
    loop {
        let screen = gather(nexus, emulator.as_ref()).await?;
        match format {
            Format::Json => render::json_line(&screen)?,
            Format::Table => {
                if args.watch.is_some() {
                    // Clear the terminal and go home, as top does.
                    print!("\x1b[2J\x1b[H");
                }
                print_screen(nexus, &screen);
            }
        }
        let Some(seconds) = args.watch else { return Ok(()) };
        tokio::time::sleep(Duration::from_secs(seconds.max(1))).await;
    }
}

async fn gather(nexus: &Nexus, emulator: Option<&crate::emulator::Emulator>) -> anyhow::Result<serde_json::Value> {
    let orders = nexus.dynamo()?.all_orders().await.context("scan the orders")?;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for order in &orders {
        *by_status.entry(order.status.to_string()).or_default() += 1;
    }
    let minute_ago = Utc::now() - chrono::Duration::seconds(60);
    let recent = |text: &str| render::parse_time(text).is_some_and(|t| t >= minute_ago);
    let submitted = orders.iter().filter(|o| recent(&o.created_at)).count();
    let finished = orders.iter().filter(|o| o.status.is_terminal() && recent(&o.updated_at)).count();

    let sfn = aws_sdk_sfn::Client::new(&nexus.config);
    let mut executions: BTreeMap<String, usize> = BTreeMap::new();
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(nexus.output("OrderSagaStateMachineArn")?)
        .into_paginator()
        .items()
        .send();
    while let Some(execution) = pages.next().await {
        let execution = execution.map_err(crate::stack::aws_error).context("list executions")?;
        *executions.entry(execution.status().as_str().to_owned()).or_default() += 1;
    }
    let active = executions.get(ExecutionStatus::Running.as_str()).copied().unwrap_or(0);

    // Admission control: the standard sagas holding a slot (none when the stack sets no bound).
    let slots = nexus.dynamo()?.saga_slot_holders().await.context("read the saga slots")?.len();

    let sqs = aws_sdk_sqs::Client::new(&nexus.config);
    let mut queues = Vec::new();
    for queue in nexus.queues() {
        queues.push(json!({
            "queue": queue.name,
            "depth": dlq::depth(&sqs, &queue.url).await.context("queue depth")?,
            "dlqDepth": dlq::depth(&sqs, &queue.dlq_url).await.context("dlq depth")?,
        }));
    }
    Ok(json!({
        "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "emulator": emulator,
        "orders": orders.len(),
        "ordersByStatus": by_status,
        "activeSagas": active,
        "standardSagaSlotsHeld": slots,
        "lastMinute": {"submitted": submitted, "finished": finished},
        "queues": queues,
        "executionsByStatus": executions,
    }))
}

fn print_screen(nexus: &Nexus, screen: &serde_json::Value) {
    if let Some(warning) = screen["emulator"]["warning"].as_str() {
        println!("⚠ {warning}\n");
    }
    println!(
        "nexus top — stack {} — {}\n{} orders, {} active sagas ({} standard holding a slot); last minute: {} \
         submitted, {} finished\n",
        nexus.stack,
        screen["at"].as_str().unwrap_or_default(),
        screen["orders"],
        screen["activeSagas"],
        screen["standardSagaSlotsHeld"],
        screen["lastMinute"]["submitted"],
        screen["lastMinute"]["finished"],
    );
    let counts = |value: &serde_json::Value, header: &str| {
        let mut table = render::table([header, "count"]);
        for (key, count) in value.as_object().into_iter().flatten() {
            table.add_row([key.clone(), count.to_string()]);
        }
        table
    };
    println!(
        "{}\n{}",
        counts(&screen["ordersByStatus"], "order status"),
        counts(&screen["executionsByStatus"], "executions")
    );
    let mut table = render::table(["queue", "depth", "dlq depth"]);
    for queue in screen["queues"].as_array().into_iter().flatten() {
        let dlq_depth = &queue["dlqDepth"];
        let flag = if dlq_depth.as_u64().unwrap_or(0) > 0 { " ⚠" } else { "" };
        table.add_row([
            queue["queue"].as_str().unwrap_or_default().to_owned(),
            queue["depth"].to_string(),
            format!("{dlq_depth}{flag}"),
        ]);
    }
    println!("{table}");
}
