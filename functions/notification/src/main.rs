//! notification: consumes the order-events topic and notifies the customer, once per event. It never
//! blocks or fails an order: a failure here only retries (then dead-letters) the notification itself.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::chaos::Chaos;
use shared::config;
use shared::services::notification::NotificationService;
use shared::sqs_batch::process_batch;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::observability::init("notification");
    let aws = config::aws().await;
    let dynamo = config::dynamo(&aws)?;
    let chaos = Chaos::new(dynamo.clone(), "notification");
    let service = NotificationService { orders: dynamo.clone(), notifications: dynamo };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        let response: SqsBatchResponse = process_batch(event.payload, |record: SqsMessage| {
            let (service, chaos) = (&service, &chaos);
            async move {
                let order_id = attribute(&record, "orderId");
                let correlation_id = attribute(&record, "correlationId");
                let span = tracing::info_span!(
                    "event",
                    orderId = %order_id,
                    correlationId = %correlation_id,
                    executionArn = tracing::field::Empty
                );
                let execution_arn = attribute(&record, "executionArn");
                if !execution_arn.is_empty() {
                    span.record("executionArn", execution_arn.as_str());
                }
                async {
                    chaos.before_command().await?;
                    service.handle(record.body.as_deref().unwrap_or_default()).await.map(|_| ())
                }
                .instrument(span)
                .await
            }
        })
        .await?;
        Ok::<_, Error>(response)
    }))
    .await
}

fn attribute(record: &SqsMessage, name: &str) -> String {
    record.message_attributes.get(name).and_then(|a| a.string_value.clone()).unwrap_or_default()
}
