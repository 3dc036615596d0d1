//! null-responder: the function of `nexus bench`'s null saga, a stack of exactly Nexus's shape (topics,
//! queues, event sources, a state machine with the same four callback tasks) that does no work. It is the
//! emulator's ceiling for that shape: a submission starts an execution named by its order id, and every
//! command is answered with SendTaskSuccess at once. No reads, no writes.
//!
//! With `ORDER_EVENTS_TOPIC_ARN` set (the `--events` variant), it also publishes one event per hop to the
//! order events topic before acting on it, as Nexus publishes one per status change; the events come back to
//! the notification queue's consumer (this same responder), which only takes them off the queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sns::types::MessageAttributeValue;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

struct Responder {
    sfn: aws_sdk_sfn::Client,
    sns: aws_sdk_sns::Client,
    state_machine: String,
    events_topic: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = aws_config::load_from_env().await;
    let responder = Responder {
        sfn: aws_sdk_sfn::Client::new(&config),
        sns: aws_sdk_sns::Client::new(&config),
        state_machine: std::env::var("STATE_MACHINE_ARN").map_err(|_| "STATE_MACHINE_ARN is not set")?,
        events_topic: std::env::var("ORDER_EVENTS_TOPIC_ARN").ok(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let responder = &responder;
        async move {
            let mut response = SqsBatchResponse::default();
            for record in &event.payload.records {
                if let Err(error) = responder.answer(record).await {
                    eprintln!(
                        "{{\"level\":\"ERROR\",\"message\":\"record failed\",\"error\":{:?}}}",
                        error.to_string()
                    );
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = record.message_id.clone().unwrap_or_default();
                    response.batch_item_failures.push(failure);
                }
            }
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

impl Responder {
    async fn answer(&self, record: &SqsMessage) -> Result<(), lambda_runtime::Error> {
        let body: Value = serde_json::from_str(record.body.as_deref().unwrap_or_default())?;
        if body.get("eventId").is_some() {
            return Ok(());
        }
        if let Some(token) = body["taskToken"].as_str() {
            self.event(&body["orderId"], body["command"].as_str().unwrap_or("Command")).await?;
            self.sfn.send_task_success().task_token(token).output("{}").send().await?;
            return Ok(());
        }
        // A submission: the input the real saga's tasks read, with the order id as the execution's name (a
        // redelivered submission finds its execution already there).
        let order_id = body["orderId"].as_str().ok_or("a submission without orderId")?;
        self.event(&body["orderId"], "Submitted").await?;
        let input = json!({"orderId": order_id, "correlationId": order_id, "attempt": 1, "tier": body["tier"]});
        let started = self.sfn.start_execution().state_machine_arn(&self.state_machine).name(order_id);
        match started.input(input.to_string()).send().await {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_execution_already_exists()) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// One event of the hop, as Nexus's (a `status` attribute, which the notification queue filters on).
    async fn event(&self, order_id: &Value, status: &str) -> Result<(), lambda_runtime::Error> {
        let Some(topic) = &self.events_topic else { return Ok(()) };
        let event = json!({"schemaVersion": 1, "eventId": format!("{}-{status}", order_id.as_str().unwrap_or("?")),
            "orderId": order_id, "status": status});
        let attribute = MessageAttributeValue::builder().data_type("String").string_value(status).build()?;
        self.sns
            .publish()
            .topic_arn(topic)
            .message(event.to_string())
            .message_attributes("status", attribute)
            .send()
            .await?;
        Ok(())
    }
}
