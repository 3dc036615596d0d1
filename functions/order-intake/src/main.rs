//! order-intake: the order service. Consumes the orders queue (submissions from the orders topic: validate,
//! dedupe, record, start the saga) and the order-commands queue (the saga's own steps: complete, cancel,
//! flag for attention).

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::sfn::StepFunctions;
use shared::adapters::sqs::SqsDeadLetters;
use shared::chaos::Chaos;
use shared::config;
use shared::entry::answer_commands;
use shared::services::intake::IntakeService;
use shared::services::order_commands::OrderCommandService;
use shared::sqs_batch::process_batch;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::observability::init("order-intake");
    let aws = config::aws().await;
    let dynamo = config::dynamo(&aws)?;
    let step_functions = StepFunctions::new(aws_sdk_sfn::Client::new(&aws), config::var("STATE_MACHINE_ARN")?);
    let publisher = config::event_publisher(&aws)?;
    let intake = IntakeService {
        idempotency: dynamo.clone(),
        orders: dynamo.clone(),
        inventory: dynamo.clone(),
        publisher: publisher.clone(),
        saga: step_functions.clone(),
        dead_letters: SqsDeadLetters::new(aws_sdk_sqs::Client::new(&aws), config::var("INTAKE_DLQ_URL")?),
    };
    let chaos = Chaos::new(dynamo.clone(), "order");
    let order_commands = OrderCommandService { orders: dynamo, publisher };
    let commands_queue_arn = config::var("ORDER_COMMANDS_QUEUE_ARN")?;

    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        // One invocation carries records of one event source: the submissions queue or the commands queue.
        let from_commands_queue = event.payload.records.first().and_then(|r| r.event_source_arn.as_deref())
            == Some(commands_queue_arn.as_str());
        let response: SqsBatchResponse = if from_commands_queue {
            answer_commands(event.payload, &step_functions, &chaos, &order_commands).await?
        } else {
            process_batch(event.payload, |record: SqsMessage| {
                let (intake, chaos) = (&intake, &chaos);
                async move {
                    let correlation_id =
                        record.message_attributes.get("correlationId").and_then(|a| a.string_value.clone());
                    let span =
                        tracing::info_span!("submission", messageId = record.message_id.as_deref().unwrap_or_default());
                    async {
                        chaos.before_command().await?;
                        intake.handle(record.body.as_deref().unwrap_or_default(), correlation_id.as_deref()).await
                    }
                    .instrument(span)
                    .await
                    .map(|_outcome| ())
                }
            })
            .await?
        };
        Ok::<_, Error>(response)
    }))
    .await
}
