//! The shared shape of a saga step function: each SQS record is a command from the state machine; it is
//! handled inside a span carrying the order id, execution ARN and correlation id, and answered with
//! SendTaskSuccess / SendTaskFailure. A transient error fails the record (SQS redelivers it).

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use crate::domain::messages::ServiceCommand;
use crate::ports::TaskCallbacks;
use crate::services::{ServiceError, StepReply, answer, parse_command};
use crate::sqs_batch::{BatchError, process_batch};

/// Runs `handle` on every command of the batch and answers each task.
pub async fn handle_commands<C, F, Fut>(
    event: SqsEvent,
    callbacks: &C,
    handle: F,
) -> Result<SqsBatchResponse, BatchError>
where
    C: TaskCallbacks,
    F: Fn(ServiceCommand) -> Fut,
    Fut: Future<Output = Result<(ServiceCommand, StepReply), ServiceError>>,
{
    process_batch(event, |record: SqsMessage| {
        let handle = &handle;
        async move {
            let command = parse_command(record.body.as_deref().unwrap_or_default())?;
            let span = tracing::info_span!(
                "command",
                command = command.command.as_str(),
                orderId = %command.order_id,
                executionArn = %command.execution_arn,
                correlationId = %command.correlation_id,
            );
            async move {
                let started = std::time::Instant::now();
                let name = command.command.as_str();
                let (command, reply) = handle(command).await?;
                match &reply {
                    StepReply::Success(_) => tracing::info!("step succeeded"),
                    StepReply::Failure { error, cause } => {
                        tracing::info!(error = %error, cause = %cause, "step failed")
                    }
                }
                answer(callbacks, &command, &reply).await?;
                // Tenths of a millisecond: finer is noise.
                let elapsed_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
                crate::metrics::emit(
                    "HandlerDuration",
                    elapsed_ms,
                    crate::metrics::Unit::Milliseconds,
                    &[("Command", name)],
                );
                Ok::<(), ServiceError>(())
            }
            .instrument(span)
            .await
        }
    })
    .await
}
