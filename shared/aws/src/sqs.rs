//! Parks unidentifiable submissions in the intake DLQ with the machine-readable reason as attributes, and
//! puts submissions over the bound of standard sagas back on the intake queue with a delay.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::ext::{built, unavailable};
use nexus_core::domain::messages::attributes;
use nexus_core::domain::submission::Rejection;
use nexus_core::ports::{DeadLetters, Deferrals, PortResult};

#[derive(Clone)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

fn attribute(value: &str) -> PortResult<MessageAttributeValue> {
    built("build message attribute", MessageAttributeValue::builder().data_type("String").string_value(value).build())
}

/// SQS bodies must be valid Unicode of limited size; anything else is kept base64-encoded.
const MAX_BODY: usize = 256 * 1024 - 1024;

impl DeadLetters for SqsDeadLetters {
    async fn park(&self, body: &str, rejection: &Rejection) -> PortResult<()> {
        let body = if body.is_empty() { "(empty message)" } else { body };
        let truncated = body.len() > MAX_BODY;
        let body = if truncated { &body[..body.floor_char_boundary(MAX_BODY)] } else { body };
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes(attributes::REJECTION_CODE, attribute(&format!("{:?}", rejection.code))?)
            .message_attributes(attributes::REJECTION_REASON, attribute(&rejection.reason())?)
            .message_attributes(
                attributes::REJECTION_DETAIL,
                attribute(&rejection.detail.chars().take(1000).collect::<String>())?,
            )
            .message_attributes(attributes::TRUNCATED, attribute(&truncated.to_string())?)
            .send()
            .await
            .map_err(|e| unavailable("park message in the intake DLQ", e))?;
        Ok(())
    }
}

/// The standard intake queue, where a submission waits while the standard sagas are at their bound.
#[derive(Clone)]
pub struct SqsDeferrals {
    client: Client,
    queue_url: String,
}

impl SqsDeferrals {
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

/// SQS's longest message delay.
const MAX_DELAY_SECONDS: u32 = 900;

impl Deferrals for SqsDeferrals {
    async fn defer(&self, body: &str, correlation_id: Option<&str>, delay_seconds: u32) -> PortResult<()> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(MAX_DELAY_SECONDS) as i32);
        // The same message as the orders topic delivered it (raw delivery: the body, and the attribute).
        if let Some(correlation_id) = correlation_id {
            request = request.message_attributes(attributes::CORRELATION_ID, attribute(correlation_id)?);
        }
        request.send().await.map_err(|e| unavailable("put a submission back on the intake queue", e))?;
        Ok(())
    }
}
