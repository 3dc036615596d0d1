//! Function configuration from the environment (set by the template), and the AWS clients.

use crate::adapters::dynamodb::{Dynamo, Tables};

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set (the template sets it for every function)")]
pub struct MissingVariable(pub &'static str);

pub fn var(name: &'static str) -> Result<String, MissingVariable> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(MissingVariable(name))
}

/// The SDK configuration Lambda gives a function (region, credentials; `AWS_ENDPOINT_URL` locally).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub fn tables() -> Result<Tables, MissingVariable> {
    Ok(Tables {
        idempotency: var("IDEMPOTENCY_TABLE")?,
        settings: var("SETTINGS_TABLE")?,
        orders: var("ORDERS_TABLE")?,
        order_events: var("ORDER_EVENTS_TABLE")?,
        inventory: var("INVENTORY_TABLE")?,
        ledger: var("LEDGER_TABLE")?,
    })
}

pub fn dynamo(config: &aws_config::SdkConfig) -> Result<Dynamo, MissingVariable> {
    Ok(Dynamo::new(aws_sdk_dynamodb::Client::new(config), tables()?))
}

/// The order-events topic publisher every service uses.
pub fn event_publisher(config: &aws_config::SdkConfig) -> Result<crate::adapters::sns::SnsEvents, MissingVariable> {
    Ok(crate::adapters::sns::SnsEvents::new(aws_sdk_sns::Client::new(config), var("ORDER_EVENTS_TOPIC_ARN")?))
}
