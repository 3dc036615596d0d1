//! inventory: reserves (all line items or none) and releases stock for the order saga.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::sfn::StepFunctions;
use shared::adapters::sns::SnsEvents;
use shared::chaos::Chaos;
use shared::commands::handle_commands;
use shared::config;
use shared::services::ServiceError;
use shared::services::inventory::InventoryService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::observability::init("inventory");
    let aws = config::aws().await;
    let dynamo = config::dynamo(&aws)?;
    let chaos = Chaos::new(dynamo.clone(), "inventory");
    let service = InventoryService {
        orders: dynamo.clone(),
        inventory: dynamo,
        publisher: SnsEvents::new(aws_sdk_sns::Client::new(&aws), config::var("ORDER_EVENTS_TOPIC_ARN")?),
    };
    let callbacks = StepFunctions::new(aws_sdk_sfn::Client::new(&aws), config::var("STATE_MACHINE_ARN")?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        let response: SqsBatchResponse = handle_commands(event.payload, &callbacks, |command| async {
            chaos.before_command().await.map_err(ServiceError::from)?;
            let reply = service.handle(&command).await?;
            Ok((command, reply))
        })
        .await?;
        Ok::<_, Error>(response)
    }))
    .await
}
