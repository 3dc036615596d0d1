//! The one pipeline every function runs: each SQS record is read (a bad one fails only itself), then,
//! inside the span its consumer names (so every line carries the order's correlation fields), the chaos
//! settings are applied, the consumer acts, and its duration is measured. A failure to act on a command of
//! the state machine is answered on its task as `Saga.Transient`, so the state machine retries it with
//! backoff (docs/architecture.md §6); any other failed record is reported for
//! redelivery ([`crate::sqs_batch`]). A transient error never loses a message.

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
    type Message: Send + Sync;
    fn read(&self, record: SqsMessage) -> Result<Read<Self::Message>, ServiceError>;
    fn consume(&self, message: &Self::Message) -> impl Future<Output = Result<(), ServiceError>> + Send;
    /// Reports that acting on `message` failed, to whoever waits for it: `Ok(true)` when reported (the record
    /// is then done: the state machine owns the retry), `Ok(false)` when nobody waits (the record is left to
    /// redelivery).
    fn report_failure(
        &self,
        _message: &Self::Message,
        _cause: &str,
    ) -> impl Future<Output = Result<bool, ServiceError>> + Send {
        async { Ok(false) }
    }
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
    deadline: Option<std::time::SystemTime>,
    chaos: &Chaos<K>,
    consumer: &C,
) -> Result<SqsBatchResponse, BatchError> {
    process_batch(event, |record: SqsMessage| async move {
        let Read { message, span, command } = consumer.read(record)?;
        async {
            let started = std::time::Instant::now();
            let acted = async {
                chaos.before_command(deadline).await?;
                consumer.consume(&message).await?;
                Ok::<(), RecordError>(())
            }
            .await;
            if let Err(error) = acted {
                return report(consumer, &message, error).await;
            }
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

/// A failure to act: answered to whoever waits for it when possible, else the record fails (redelivery).
async fn report<C: Consumer>(consumer: &C, message: &C::Message, error: RecordError) -> Result<(), RecordError> {
    match consumer.report_failure(message, &error.to_string()).await {
        Ok(true) => {
            tracing::warn!(error = %error, "could not act; answered Saga.Transient, the state machine retries");
            Ok(())
        }
        Ok(false) => Err(error),
        Err(report_error) => {
            tracing::warn!(error = %error, report_error = %report_error, "could not act nor answer; left to redelivery");
            Err(error)
        }
    }
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
    let chaos = Chaos::new(clients.dynamo.clone(), chaos_service, crate::config::chaos_enabled());
    let consumer = build(&clients)?;
    let (chaos, consumer) = (&chaos, &consumer);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        let deadline = std::time::UNIX_EPOCH + std::time::Duration::from_millis(event.context.deadline);
        Ok::<_, lambda_runtime::Error>(handle_batch(event.payload, Some(deadline), chaos, consumer).await?)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use nexus_core::chaos::ServiceChaos;
    use nexus_core::domain::messages::{COMMAND_SCHEMA_VERSION, CommandName, ServiceCommand};
    use nexus_core::services::intake::IntakeOutcome;
    use nexus_core::services::inventory::InventoryService;
    use nexus_testkit::{Callback, Memory, intake, sample_submission};

    use super::*;
    use crate::consumers::SagaCommands;

    /// The inventory function's chaos, failing commands at `failure_rate`.
    fn chaos(failure_rate: f64) -> Chaos<Memory> {
        let settings = Memory::default();
        settings
            .world()
            .chaos
            .services
            .insert("inventory".into(), ServiceChaos { failure_rate, ..ServiceChaos::default() });
        Chaos::new(settings, "inventory", true)
    }

    fn record(id: &str, body: String) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(body);
        record
    }

    /// A pending order in `memory`, and the state machine's ReserveInventory command for it.
    async fn reserve_command(memory: &Memory) -> String {
        let outcome = intake(memory).handle(&sample_submission("k-pipeline").to_string(), None).await;
        let Ok(IntakeOutcome::Accepted { order_id, .. }) = outcome else { panic!("not accepted: {outcome:?}") };
        let command = ServiceCommand {
            schema_version: COMMAND_SCHEMA_VERSION,
            command: CommandName::ReserveInventory,
            order_id,
            correlation_id: "c".into(),
            execution_arn: "arn".into(),
            task_token: "token-1".into(),
            attempt: 1,
            reason: None,
        };
        serde_json::to_string(&command).expect("json")
    }

    fn inventory(memory: &Memory) -> SagaCommands<InventoryService<Memory, Memory, Memory>, Memory> {
        let step = InventoryService { orders: memory.clone(), inventory: memory.clone(), publisher: memory.clone() };
        SagaCommands { step, callbacks: memory.clone() }
    }

    #[tokio::test]
    async fn a_command_is_handled_and_answered_and_an_unreadable_record_fails_alone() {
        let memory = Memory::with_stock(&[("SKU-1", 10)]);
        let mut event = SqsEvent::default();
        event.records = vec![record("good", reserve_command(&memory).await), record("junk", "{".into())];
        let response = handle_batch(event, None, &chaos(0.0), &inventory(&memory)).await.expect("batch handled");
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["junk"]);
        let world = memory.world();
        assert!(matches!(world.callbacks.as_slice(), [Callback::Success(token, _)] if token == "token-1"));
        assert_eq!(world.available("SKU-1"), 8);
    }

    #[tokio::test]
    async fn an_injected_failure_is_answered_as_transient_before_the_service_acts() {
        let memory = Memory::with_stock(&[("SKU-1", 10)]);
        let mut event = SqsEvent::default();
        event.records = vec![record("m-1", reserve_command(&memory).await)];
        let response = handle_batch(event, None, &chaos(1.0), &inventory(&memory)).await.expect("batch handled");
        assert!(response.batch_item_failures.is_empty(), "answered: the state machine owns the retry");
        let world = memory.world();
        assert!(
            matches!(world.callbacks.as_slice(), [Callback::Failure(token, error)] if token == "token-1" && error == "Saga.Transient"),
            "answered as Saga.Transient: {:?}",
            world.callbacks
        );
        assert_eq!(world.available("SKU-1"), 10, "nothing reserved");
    }

    #[tokio::test]
    async fn a_failure_that_cannot_be_answered_is_left_to_redelivery() {
        let memory = Memory::with_stock(&[("SKU-1", 10)]);
        memory.world().callbacks_unavailable = true;
        let mut event = SqsEvent::default();
        event.records = vec![record("m-1", reserve_command(&memory).await)];
        let response = handle_batch(event, None, &chaos(1.0), &inventory(&memory)).await.expect("batch handled");
        assert_eq!(response.batch_item_failures.len(), 1, "reported for redelivery");
    }
}
