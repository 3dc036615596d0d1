//! The five functions as the simulation invokes them: each batch goes through the real record pipeline
//! (`nexus_lambda::pipeline::handle_batch`: partial batch failures, `Saga.Transient` answers) into the real
//! services, wired to the simulated ports. order-intake tells submissions from the saga's own order
//! commands by the queue a record comes from, as it does on AWS (`ORDER_COMMANDS_QUEUE_ARNS`).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use nexus_core::domain::ids::EmailHasher;
use nexus_core::domain::messages::{ServiceCommand, attributes};
use nexus_core::services::intake::IntakeService;
use nexus_core::services::inventory::InventoryService;
use nexus_core::services::notification::NotificationService;
use nexus_core::services::order_commands::OrderCommandService;
use nexus_core::services::payment::PaymentService;
use nexus_core::services::shipping::ShippingService;
use nexus_core::services::{SagaStep, ServiceError, parse_command};
use nexus_lambda::chaos::Chaos;
use nexus_lambda::consumers::SagaCommands;
use nexus_lambda::pipeline::{Consumer, Read, handle_batch};

use crate::ports::Ports;

/// A batch's outcome: the message ids to redeliver, or `None` when the whole batch failed.
pub type BatchOutcome = Option<Vec<String>>;
pub type Invocation = Pin<Box<dyn Future<Output = BatchOutcome>>>;

fn emails() -> EmailHasher {
    EmailHasher::new(b"nexus-sim")
}

fn outcome(response: Result<SqsBatchResponse, impl std::fmt::Debug>) -> BatchOutcome {
    response.ok().map(|r| r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect())
}

/// One invocation of `function` with `event`.
pub fn invoke(function: &str, event: SqsEvent, ports: &Ports, command_queues: &BTreeSet<String>) -> Invocation {
    let p = ports.clone();
    let chaos = Chaos::new(p.clone(), "sim", false);
    match function {
        "inventory" => Box::pin(async move {
            let steps = Steps::new(p, |p| InventoryService { orders: p.clone(), inventory: p.clone(), publisher: p });
            outcome(handle_batch(event, None, &chaos, &steps).await)
        }),
        "payment" => Box::pin(async move {
            let steps = Steps::new(p, |p| PaymentService { orders: p.clone(), payments: p.clone(), publisher: p });
            outcome(handle_batch(event, None, &chaos, &steps).await)
        }),
        "shipping" => Box::pin(async move {
            let steps = Steps::new(p, |p| ShippingService { orders: p.clone(), shipments: p.clone(), publisher: p });
            outcome(handle_batch(event, None, &chaos, &steps).await)
        }),
        "notification" => Box::pin(async move {
            let consumer = Notify(NotificationService { orders: p.clone(), notifications: p, emails: emails() });
            outcome(handle_batch(event, None, &chaos, &consumer).await)
        }),
        _ => {
            let command_queues = command_queues.clone();
            Box::pin(async move {
                let commands = Steps::new(p.clone(), order_commands as fn(Ports) -> _);
                let consumer = Intake { ports: p, commands, command_queues };
                outcome(handle_batch(event, None, &chaos, &consumer).await)
            })
        }
    }
}

fn order_commands(p: Ports) -> OrderCommandService<Ports, Ports> {
    OrderCommandService { orders: p.clone(), publisher: p }
}

/// A saga step function, whose service serves each command through ports acting for the command's
/// execution ([`Ports::acting_for`]): the simulation's watch that only an order's current execution
/// changes it.
struct Steps<F> {
    ports: Ports,
    build: F,
}

impl<S: SagaStep, F: Fn(Ports) -> S + Send + Sync> Steps<F> {
    fn new(ports: Ports, build: F) -> Self {
        Self { ports, build }
    }

    fn serving(&self, command: &ServiceCommand) -> SagaCommands<S, Ports> {
        let ports = self.ports.acting_for(&command.execution_arn);
        SagaCommands { step: (self.build)(ports.clone()), callbacks: ports }
    }
}

impl<S: SagaStep + Send + Sync, F: Fn(Ports) -> S + Send + Sync> Consumer for Steps<F> {
    type Message = ServiceCommand;

    fn read(&self, record: SqsMessage) -> Result<Read<ServiceCommand>, ServiceError> {
        let command = parse_command(record.body.as_deref().unwrap_or_default())?;
        let name = command.command.as_str();
        Ok(Read { message: command, span: tracing::Span::none(), command: Some(name) })
    }

    async fn consume(&self, command: &ServiceCommand) -> Result<(), ServiceError> {
        self.serving(command).consume(command).await
    }

    async fn report_failure(&self, command: &ServiceCommand, cause: &str) -> Result<bool, ServiceError> {
        self.serving(command).report_failure(command, cause).await
    }
}

struct Notify(NotificationService<Ports, Ports>);

impl Consumer for Notify {
    type Message = String;

    fn read(&self, record: SqsMessage) -> Result<Read<String>, ServiceError> {
        Ok(Read { message: record.body.unwrap_or_default(), span: tracing::Span::none(), command: None })
    }

    async fn consume(&self, body: &String) -> Result<(), ServiceError> {
        self.0.handle(body).await.map(|_new| ())
    }
}

enum IntakeMessage {
    Submission { body: String, correlation_id: Option<String> },
    Command(ServiceCommand),
}

type OrderCommands = Steps<fn(Ports) -> OrderCommandService<Ports, Ports>>;

struct Intake {
    ports: Ports,
    commands: OrderCommands,
    command_queues: BTreeSet<String>,
}

impl Consumer for Intake {
    type Message = IntakeMessage;

    fn read(&self, record: SqsMessage) -> Result<Read<IntakeMessage>, ServiceError> {
        let span = tracing::Span::none();
        if record.event_source_arn.as_ref().is_some_and(|q| self.command_queues.contains(q)) {
            let Read { message, command, .. } = self.commands.read(record)?;
            return Ok(Read { message: IntakeMessage::Command(message), span, command });
        }
        let correlation_id = record
            .message_attributes
            .get(attributes::CORRELATION_ID)
            .and_then(|a| a.string_value.clone())
            .filter(|c| !c.is_empty());
        Ok(Read {
            message: IntakeMessage::Submission { body: record.body.unwrap_or_default(), correlation_id },
            span,
            command: None,
        })
    }

    async fn consume(&self, message: &IntakeMessage) -> Result<(), ServiceError> {
        match message {
            IntakeMessage::Submission { body, correlation_id } => {
                // A service per record: its "bound reached" hint is kept for a wall-clock second, which a
                // deterministic run cannot share between records.
                let p = &self.ports;
                let intake = IntakeService {
                    idempotency: p.clone(),
                    orders: p.clone(),
                    catalog: p.clone(),
                    publisher: p.clone(),
                    saga: p.clone(),
                    dead_letters: p.clone(),
                    deferrals: p.clone(),
                    emails: emails(),
                    saga_slots: Default::default(),
                };
                intake.handle(body, correlation_id.as_deref()).await.map(|_outcome| ())
            }
            IntakeMessage::Command(command) => self.commands.consume(command).await,
        }
    }

    async fn report_failure(&self, message: &IntakeMessage, cause: &str) -> Result<bool, ServiceError> {
        match message {
            IntakeMessage::Submission { .. } => Ok(false),
            IntakeMessage::Command(command) => self.commands.report_failure(command, cause).await,
        }
    }
}
