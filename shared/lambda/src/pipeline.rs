//! The one pipeline every function runs: each SQS record is read (a bad one fails only itself), then,
//! inside the span its consumer names (so every line carries the order's correlation fields), the chaos
//! settings are applied, the consumer acts, and its duration is measured. Failed records are reported for
//! redelivery ([`crate::sqs_batch`]); a transient error never loses a message.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};
use nexus_core::chaos::InjectedFailure;
use nexus_core::metrics;
use nexus_core::ports::ChaosSource;
use nexus_core::services::ServiceError;
use tracing::Instrument;

use crate::chaos::Chaos;
use crate::config::{Clients, MissingVariable};
use crate::sqs_batch::{BatchError, process_batch};

/// A record as its consumer reads it.
pub struct Read<M> {
    pub message: M,
    /// The span every line about this record carries.
    pub span: tracing::Span,
    /// The `Command` dimension of the `HandlerDuration` metric, for saga commands.
    pub command: Option<&'static str>,
}

/// What a function does with one SQS record.
pub trait Consumer: Send + Sync {
    type Message: Send;
    fn read(&self, record: SqsMessage) -> Result<Read<Self::Message>, ServiceError>;
    fn consume(&self, message: Self::Message) -> impl Future<Output = Result<(), ServiceError>> + Send;
}

/// Why a record failed (it is redelivered; after the queue's maxReceiveCount it goes to the DLQ).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Chaos(#[from] InjectedFailure),
}

/// One SQS batch through the pipeline.
pub async fn handle_batch<C: Consumer, K: ChaosSource>(
    event: SqsEvent,
    chaos: &Chaos<K>,
    consumer: &C,
) -> Result<SqsBatchResponse, BatchError> {
    process_batch(event, |record: SqsMessage| async move {
        let Read { message, span, command } = consumer.read(record)?;
        async {
            let started = std::time::Instant::now();
            chaos.before_command().await?;
            consumer.consume(message).await?;
            if let Some(command) = command {
                // Tenths of a millisecond: finer is noise.
                let elapsed_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
                metrics::emit("HandlerDuration", elapsed_ms, metrics::Unit::Milliseconds, &[("Command", command)]);
            }
            Ok::<(), RecordError>(())
        }
        .instrument(span)
        .await
    })
    .await
}

/// A function's whole `main`: logs as `function`, honours the chaos settings of `chaos_service`, and runs
/// the consumer `build` makes from the clients until the Lambda runtime stops it.
pub async fn run<C, F>(
    function: &'static str,
    chaos_service: &'static str,
    build: F,
) -> Result<(), lambda_runtime::Error>
where
    C: Consumer,
    F: FnOnce(&Clients) -> Result<C, MissingVariable>,
{
    crate::observability::init(function);
    let clients = Clients::load().await?;
    let chaos = Chaos::new(clients.dynamo.clone(), chaos_service);
    let consumer = build(&clients)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, lambda_runtime::Error>(handle_batch(event.payload, &chaos, &consumer).await?)
    }))
    .await
}
