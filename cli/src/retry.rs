//! `nexus retry ORDER_ID`: run a failed order again once its cause is fixed (`nexus_ops::retry` says which
//! orders qualify and how). Prints what it started; a refusal exits 7 with the reason.

use nexus_aws::sns::SnsEvents;
use nexus_ops::retry::{self, RetryError, RetryKind};

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

pub async fn run(nexus: &Nexus, format: Format, order_id: &str) -> anyhow::Result<()> {
    let dynamo = nexus.dynamo()?;
    let events = SnsEvents::new(aws_sdk_sns::Client::new(&nexus.config), nexus.output("OrderEventsTopicArn")?);
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
    let what = match retried.kind {
        RetryKind::NewAttempt => format!("attempt {} started from the first step", retried.attempt),
        RetryKind::Compensation => "its compensation runs (again), then it is cancelled".to_owned(),
        RetryKind::Completion => "every step had succeeded: it is completed".to_owned(),
    };
    let resumed = if retried.resumed { " (an earlier retry had written the order but not started it)" } else { "" };
    println!("order {order_id} is {}: {what}{resumed}", retried.status);
    println!("execution {}", retried.execution_arn);
    println!("follow it with: nexus timeline {order_id}");
    Ok(())
}

/// `nexus republish ORDER_ID`: the order's events published again.
pub async fn republish(nexus: &Nexus, order_id: &str) -> anyhow::Result<()> {
    let dynamo = nexus.dynamo()?;
    let events = SnsEvents::new(aws_sdk_sns::Client::new(&nexus.config), nexus.output("OrderEventsTopicArn")?);
    let sent = nexus_ops::republish::republish(&dynamo, &events, order_id)
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("republish the events of order {order_id}")))?;
    if sent == 0 {
        return Err(Failure::NotFound(format!("no events of order {order_id}: `nexus orders` lists them")).into());
    }
    println!("order {order_id}: {sent} events published again (subscribers dedupe by event id)");
    Ok(())
}
