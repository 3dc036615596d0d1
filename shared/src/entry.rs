//! The entry point every saga step function shares (inventory, payment, shipping; order-intake answers its
//! order commands with the same [`answer_commands`]): logging, clients,
//! chaos, then each SQS batch of commands handled and answered. A function's `main` only says which
//! service it runs.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use crate::adapters::dynamodb::Dynamo;
use crate::adapters::sfn::StepFunctions;
use crate::chaos::{Chaos, ChaosSource};
use crate::commands::handle_commands;
use crate::config::{self, MissingVariable};
use crate::domain::messages::ServiceCommand;
use crate::ports::TaskCallbacks;
use crate::services::{ServiceError, StepReply};
use crate::sqs_batch::BatchError;

/// A service that answers saga commands.
pub trait SagaStep: Send + Sync {
    fn step(&self, command: &ServiceCommand) -> impl Future<Output = Result<StepReply, ServiceError>> + Send;
}

/// Runs the function `function` (its log name) as the saga step `build` makes, with the chaos settings of
/// `chaos_service`, until the Lambda runtime stops it.
pub async fn run_saga_step<S, F>(
    function: &'static str,
    chaos_service: &'static str,
    build: F,
) -> Result<(), lambda_runtime::Error>
where
    S: SagaStep,
    F: FnOnce(&aws_config::SdkConfig, Dynamo) -> Result<S, MissingVariable>,
{
    crate::observability::init(function);
    let aws = config::aws().await;
    let dynamo = config::dynamo(&aws)?;
    let chaos = Chaos::new(dynamo.clone(), chaos_service);
    let service = build(&aws, dynamo)?;
    let callbacks = StepFunctions::new(aws_sdk_sfn::Client::new(&aws), config::var("STATE_MACHINE_ARN")?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, lambda_runtime::Error>(answer_commands(event.payload, &callbacks, &chaos, &service).await?)
    }))
    .await
}

/// One SQS batch of saga commands: each through the chaos settings, then `service`, then answered.
pub async fn answer_commands<S, C, K>(
    event: SqsEvent,
    callbacks: &C,
    chaos: &Chaos<K>,
    service: &S,
) -> Result<SqsBatchResponse, BatchError>
where
    S: SagaStep,
    C: TaskCallbacks,
    K: ChaosSource,
{
    handle_commands(event, callbacks, |command| async {
        chaos.before_command().await?;
        let reply = service.step(&command).await?;
        Ok((command, reply))
    })
    .await
}
