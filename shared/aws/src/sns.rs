//! Publishes order events on the order-events topic, with message attributes for filter policies and
//! correlation (orderId, status, correlationId, executionArn).

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::ext::{built, unavailable};
use nexus_core::domain::messages::{OrderEvent, attributes};
use nexus_core::ports::{EventPublisher, PortError, PortResult};

#[derive(Clone)]
pub struct SnsEvents {
    client: Client,
    topic_arn: String,
}

impl SnsEvents {
    pub fn new(client: Client, topic_arn: String) -> Self {
        Self { client, topic_arn }
    }
}

fn attribute(value: &str) -> PortResult<MessageAttributeValue> {
    built("build message attribute", MessageAttributeValue::builder().data_type("String").string_value(value).build())
}

impl EventPublisher for SnsEvents {
    async fn publish(&self, event: &OrderEvent) -> PortResult<()> {
        let message = serde_json::to_string(event)
            .map_err(|e| PortError::Corrupt { operation: "encode event", message: e.to_string() })?;
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message)
            .message_attributes(attributes::ORDER_ID, attribute(&event.order_id)?)
            .message_attributes(attributes::STATUS, attribute(event.status.as_str())?)
            .message_attributes(attributes::CORRELATION_ID, attribute(&event.correlation_id)?)
            .message_attributes(attributes::EVENT_ID, attribute(&event.event_id)?);
        if let Some(execution_arn) = &event.execution_arn {
            publish = publish.message_attributes(attributes::EXECUTION_ARN, attribute(execution_arn)?);
        }
        publish.send().await.map_err(|e| unavailable("publish order event", e))?;
        Ok(())
    }
}
