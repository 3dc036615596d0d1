//! `nexus submit`: publish an order to the orders topic, as `aws sns publish` does, and optionally follow it.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_sns::types::MessageAttributeValue;
use nexus_core::domain::status::OrderStatus;
use nexus_core::domain::submission::{self, InvalidSubmission};
use nexus_core::ports::OrderStore;
use serde_json::json;

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The order JSON (the contract's submission), or - to read stdin.
    pub file: PathBuf,
    /// Follow the order until it ends; exit 0 only when it COMPLETED.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait follows the order.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(nexus: &Nexus, format: Format, args: SubmitArgs) -> anyhow::Result<()> {
    let body = read(&args.file)?;
    // The order id comes from the idempotency key, so it is known before the service has seen the message.
    // Invalid orders are still sent (the service records them as REJECTED, with the reason), unless no
    // order can be named at all: such a message would only land in the intake DLQ.
    let order_id = match submission::validate(body.as_bytes()) {
        Ok(valid) => valid.order_id,
        Err(InvalidSubmission { order_id: Some(order_id), .. }) => order_id,
        Err(InvalidSubmission { order_id: None, rejection }) => {
            return Err(Failure::Usage(format!(
                "{} names no order ({}: {}); nothing was sent",
                args.file.display(),
                rejection.reason(),
                rejection.detail
            ))
            .into());
        }
    };
    let sns = aws_sdk_sns::Client::new(&nexus.config);
    let (correlation_id, published) = publish(&sns, &nexus.output("OrdersTopicArn")?, &body).await?;
    let receipt = json!({"orderId": order_id, "correlationId": correlation_id, "messageId": published});
    match format {
        Format::Json if !args.wait => render::json(&receipt)?,
        Format::Json => {}
        Format::Table => println!("{order_id}"),
    }
    if args.wait {
        follow(nexus, format, &order_id, args.timeout).await?;
    }
    Ok(())
}

/// Publishes a submission to the orders topic, as `aws sns publish` does, with a fresh correlation id;
/// returns the correlation id and SNS's message id.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    body: &str,
) -> anyhow::Result<(String, Option<String>)> {
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let published = sns
        .publish()
        .topic_arn(topic_arn)
        .message(body)
        .message_attributes(
            "correlationId",
            MessageAttributeValue::builder().data_type("String").string_value(&correlation_id).build()?,
        )
        .send()
        .await
        .map_err(crate::stack::aws_error)
        .context("publish to the orders topic")?;
    Ok((correlation_id, published.message_id().map(str::to_owned)))
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    let mut body = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut body).map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
    } else {
        body = std::fs::read_to_string(file)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    }
    Ok(body)
}

/// Polls the order until it is terminal, printing each status it passes through (to stderr).
async fn follow(nexus: &Nexus, format: Format, order_id: &str, timeout: Duration) -> anyhow::Result<()> {
    let store = nexus.dynamo()?;
    let start = Instant::now();
    let mut seen: Option<OrderStatus> = None;
    loop {
        let order = store.get(order_id).await.context("read the order")?;
        if let Some(order) = order {
            if seen != Some(order.status) {
                render::progress(format!("{:>5.1}s  {}", start.elapsed().as_secs_f64(), order.status));
                seen = Some(order.status);
            }
            if order.status.is_terminal() {
                match format {
                    Format::Json => render::json(&crate::orders::order_json(&order, &nexus.email_hasher().await?))?,
                    Format::Table => println!("{} {}", order.status, order.reason.as_deref().unwrap_or_default()),
                }
                if order.status != OrderStatus::Completed {
                    return Err(Failure::NotCompleted {
                        order_id: order_id.to_owned(),
                        status: order.status.to_string(),
                        reason: order.reason,
                    }
                    .into());
                }
                return Ok(());
            }
        }
        if start.elapsed() > timeout {
            return Err(Failure::TimedOut {
                order_id: order_id.to_owned(),
                status: seen.map_or("not yet recorded".to_owned(), |s| s.to_string()),
                waited_seconds: timeout.as_secs(),
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
