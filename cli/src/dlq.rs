//! `nexus dlq`: depths of every queue and DLQ, peek into a DLQ without consuming, redrive a DLQ.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use nexus_ops::dlq;
use serde_json::json;

use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Every queue with its depth and its DLQ's depth.
    List,
    /// Show up to 10 messages of a queue's DLQ, leaving them there (personal data masked).
    Peek {
        queue: String,
        /// Show emails, addresses and payment tokens as they are.
        #[arg(long)]
        show_pii: bool,
    },
    /// Move every message of a queue's DLQ back to the queue (they are then processed again).
    Redrive {
        queue: String,
        /// How long to wait for the move to finish.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

pub async fn run(nexus: &Nexus, format: Format, command: DlqCommand) -> anyhow::Result<()> {
    let sqs = aws_sdk_sqs::Client::new(&nexus.config);
    match command {
        DlqCommand::List => {
            let mut rows = Vec::new();
            for queue in nexus.queues() {
                let depth = dlq::depth(&sqs, &queue.url).await.context("queue depth")?;
                let dlq_depth = dlq::depth(&sqs, &queue.dlq_url).await.context("dlq depth")?;
                rows.push(json!({"queue": queue.name, "depth": depth, "dlqDepth": dlq_depth, "dlqUrl": queue.dlq_url}));
            }
            if format == Format::Json {
                return render::json(&rows);
            }
            let mut table = render::table(["queue", "depth", "dlq depth"]);
            for row in &rows {
                table.add_row([
                    row["queue"].as_str().unwrap_or_default().to_owned(),
                    row["depth"].to_string(),
                    row["dlqDepth"].to_string(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        DlqCommand::Peek { queue, show_pii } => {
            let queue = nexus.queue(&queue)?;
            let received = dlq::peek(&sqs, &queue.dlq_url).await.context("read the DLQ")?;
            let messages: Vec<_> = received
                .iter()
                .map(|m| {
                    let attributes: serde_json::Map<String, serde_json::Value> = m
                        .message_attributes()
                        .map(|a| a.iter().map(|(k, v)| (k.clone(), json!(v.string_value()))).collect())
                        .unwrap_or_default();
                    let sent = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp)).cloned();
                    let body = m.body().unwrap_or_default();
                    let body = if show_pii { body.to_owned() } else { nexus_ops::pii::mask_body(body) };
                    json!({"messageId": m.message_id(), "sentTimestamp": sent, "attributes": attributes, "body": body})
                })
                .collect();
            if format == Format::Json {
                return render::json(&messages);
            }
            println!("{} DLQ: showing {} message(s)", queue.name, messages.len());
            let mut table = render::table(["message", "attributes", "body"]);
            for m in &messages {
                let body = m["body"].as_str().unwrap_or_default();
                let short: String = body.chars().take(120).collect();
                table.add_row([
                    m["messageId"].as_str().unwrap_or_default().to_owned(),
                    m["attributes"].to_string(),
                    if short.len() < body.len() { format!("{short}…") } else { short },
                ]);
            }
            println!("{table}");
            Ok(())
        }
        DlqCommand::Redrive { queue, timeout } => {
            let queue = nexus.queue(&queue)?;
            render::progress(format!("moving the {} DLQ's messages back to the queue", queue.name));
            let report = dlq::redrive(&sqs, &queue.dlq_url, timeout).await.context("redrive")?;
            let source = sqs
                .get_queue_attributes()
                .queue_url(&queue.url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .ok()
                .and_then(|a| {
                    a.attributes().and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages)).cloned()
                });
            match format {
                Format::Json => render::json(&report),
                Format::Table => {
                    println!(
                        "{}: {} in the DLQ before, {} moved, {} after ({} waiting in the queue)",
                        queue.name,
                        report.before,
                        report.moved,
                        report.after,
                        source.unwrap_or_else(|| "?".into())
                    );
                    Ok(())
                }
            }
        }
    }
}
