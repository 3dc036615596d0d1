//! What each function does with one record, and how its services are wired to the AWS adapters:
//! [`SagaCommands`] (a saga step: handle the state machine's command, answer its task), [`OrderIntake`]
//! (submissions, and the saga's own order commands) and [`OrderEvents`] (notify the customer).

use aws_lambda_events::event::sqs::SqsMessage;
use nexus_aws::dynamo::Dynamo;
use nexus_aws::sfn::StepFunctions;
use nexus_aws::sns::SnsEvents;
use nexus_aws::sqs::{SqsDeadLetters, SqsDeferrals};
use nexus_core::domain::messages::{ServiceCommand, attributes};
use nexus_core::domain::saga_error::SagaError;
use nexus_core::ports::TaskCallbacks;
use nexus_core::services::intake::IntakeService;
use nexus_core::services::inventory::{self, InventoryService};
use nexus_core::services::notification::{self, NotificationService};
use nexus_core::services::order_commands::OrderCommandService;
use nexus_core::services::payment::{self, PaymentService};
use nexus_core::services::shipping::{self, ShippingService};
use nexus_core::services::{SagaStep, ServiceError, StepReply, answer, parse_command};

use crate::config::{Clients, MissingVariable, var};
use crate::crash_points::CrashAfter;
use crate::pipeline::{Consumer, Read};

fn body(record: &SqsMessage) -> &str {
    record.body.as_deref().unwrap_or_default()
}

fn attribute<'a>(record: &'a SqsMessage, name: &str) -> &'a str {
    record.message_attributes.get(name).and_then(|a| a.string_value.as_deref()).unwrap_or_default()
}

/// A saga step function: each record is a command from the state machine, answered on its task token.
pub struct SagaCommands<S, C> {
    pub step: S,
    pub callbacks: C,
}

/// A command of the state machine, in the span that carries its order's correlation fields.
fn read_command(record: &SqsMessage) -> Result<Read<ServiceCommand>, ServiceError> {
    let command = parse_command(body(record))?;
    let span = tracing::info_span!(
        "command",
        command = command.command.as_str(),
        orderId = %command.order_id,
        executionArn = %command.execution_arn,
        correlationId = %command.correlation_id,
    );
    Ok(Read { command: Some(command.command.as_str()), message: command, span })
}

impl<S: SagaStep, C: TaskCallbacks> SagaCommands<S, C> {
    async fn answer_command(&self, command: &ServiceCommand) -> Result<(), ServiceError> {
        let reply = self.step.step(command).await?;
        match &reply {
            StepReply::Success(_) => tracing::info!("step succeeded"),
            StepReply::Failure { error, cause } => tracing::info!(error = %error, cause = %cause, "step failed"),
        }
        answer(&self.callbacks, command, &reply).await
    }

    /// The command could not be acted on this time: its task fails as `Saga.Transient`, retried with backoff.
    async fn report_command_failure(&self, command: &ServiceCommand, cause: &str) -> Result<bool, ServiceError> {
        answer(&self.callbacks, command, &StepReply::failure(SagaError::Transient, cause)).await.map(|()| true)
    }
}

impl<S: SagaStep, C: TaskCallbacks> Consumer for SagaCommands<S, C> {
    type Message = ServiceCommand;

    fn read(&self, record: SqsMessage) -> Result<Read<ServiceCommand>, ServiceError> {
        read_command(&record)
    }

    async fn consume(&self, command: &ServiceCommand) -> Result<(), ServiceError> {
        self.answer_command(command).await
    }

    async fn report_failure(&self, command: &ServiceCommand, cause: &str) -> Result<bool, ServiceError> {
        self.report_command_failure(command, cause).await
    }
}

// Every adapter behind a chaos crash point after its writes (`crash_points`; inert unless chaos is on).
type Db = CrashAfter<Dynamo>;
type Events = CrashAfter<SnsEvents>;
type Saga = CrashAfter<StepFunctions>;
type Inventory = SagaCommands<InventoryService<Db, Db, Events>, Saga>;
type Payment = SagaCommands<PaymentService<Db, Db, Events>, Saga>;
type Shipping = SagaCommands<ShippingService<Db, Db, Events>, Saga>;

impl Clients {
    fn db(&self) -> Db {
        CrashAfter(self.dynamo.clone())
    }

    fn events(&self) -> Result<Events, MissingVariable> {
        self.event_publisher().map(CrashAfter)
    }

    fn saga(&self) -> Result<Saga, MissingVariable> {
        self.step_functions().map(CrashAfter)
    }
}

impl Inventory {
    pub fn inventory(c: &Clients) -> Result<Self, MissingVariable> {
        let orders = CrashAfter(c.dynamo.clone().reading_orders(inventory::ORDER_READS.attributes()));
        let step = InventoryService { orders, inventory: c.db(), publisher: c.events()? };
        Ok(Self { step, callbacks: c.saga()? })
    }
}

impl Payment {
    pub fn payment(c: &Clients) -> Result<Self, MissingVariable> {
        let orders = CrashAfter(c.dynamo.clone().reading_orders(payment::ORDER_READS.attributes()));
        let step = PaymentService { orders, payments: c.db(), publisher: c.events()? };
        Ok(Self { step, callbacks: c.saga()? })
    }
}

impl Shipping {
    pub fn shipping(c: &Clients) -> Result<Self, MissingVariable> {
        let orders = CrashAfter(c.dynamo.clone().reading_orders(shipping::ORDER_READS.attributes()));
        let step = ShippingService { orders, shipments: c.db(), publisher: c.events()? };
        Ok(Self { step, callbacks: c.saga()? })
    }
}

/// What reaches order-intake: a submission from the orders topic, or one of the saga's own order commands.
pub enum IntakeMessage {
    Submission { body: String, correlation_id: Option<String> },
    Command(ServiceCommand),
}

/// order-intake, the order's owner: submissions (validate, dedupe, record, start the saga) and the order
/// commands (complete, cancel, flag for attention), told apart by the queue a record comes from: the order
/// commands' queues are both lanes' (`ORDER_COMMANDS_QUEUE_ARNS`, comma-separated); any other is a
/// submission queue.
pub struct OrderIntake {
    intake: IntakeService<Db, Db, Events, Saga, CrashAfter<SqsDeadLetters>, Db, CrashAfter<SqsDeferrals>>,
    commands: SagaCommands<OrderCommandService<Db, Events>, Saga>,
    commands_queue_arns: Vec<String>,
}

impl OrderIntake {
    pub fn new(c: &Clients) -> Result<Self, MissingVariable> {
        let (publisher, step_functions) = (c.events()?, c.saga()?);
        let intake = IntakeService {
            idempotency: c.db(),
            orders: c.db(),
            catalog: c.db(),
            publisher: publisher.clone(),
            saga: step_functions.clone(),
            dead_letters: CrashAfter(c.intake_dead_letters()?),
            deferrals: CrashAfter(c.intake_deferrals()?),
            emails: c.email_hasher()?,
            saga_slots: Default::default(),
        };
        let commands =
            SagaCommands { step: OrderCommandService { orders: c.db(), publisher }, callbacks: step_functions };
        let commands_queue_arns = var("ORDER_COMMANDS_QUEUE_ARNS")?.split(',').map(str::to_owned).collect();
        Ok(Self { intake, commands, commands_queue_arns })
    }
}

impl Consumer for OrderIntake {
    type Message = IntakeMessage;

    fn read(&self, record: SqsMessage) -> Result<Read<IntakeMessage>, ServiceError> {
        if record.event_source_arn.as_ref().is_some_and(|arn| self.commands_queue_arns.contains(arn)) {
            let Read { message, span, command } = read_command(&record)?;
            return Ok(Read { message: IntakeMessage::Command(message), span, command });
        }
        let span = tracing::info_span!("submission", messageId = record.message_id.as_deref().unwrap_or_default());
        let correlation_id =
            Some(attribute(&record, attributes::CORRELATION_ID)).filter(|c| !c.is_empty()).map(str::to_owned);
        let body = record.body.unwrap_or_default();
        Ok(Read { message: IntakeMessage::Submission { body, correlation_id }, span, command: None })
    }

    async fn consume(&self, message: &IntakeMessage) -> Result<(), ServiceError> {
        match message {
            IntakeMessage::Submission { body, correlation_id } => {
                self.intake.handle(body, correlation_id.as_deref()).await.map(|_outcome| ())
            }
            IntakeMessage::Command(command) => self.commands.answer_command(command).await,
        }
    }

    /// A submission has nobody waiting (it is redelivered); an order command has the state machine.
    async fn report_failure(&self, message: &IntakeMessage, cause: &str) -> Result<bool, ServiceError> {
        match message {
            IntakeMessage::Submission { .. } => Ok(false),
            IntakeMessage::Command(command) => self.commands.report_command_failure(command, cause).await,
        }
    }
}

/// notification: each record is an order event from the order-events topic. Fire-and-forget: a failure
/// here retries (then dead-letters) only the notification, never the order.
pub struct OrderEvents {
    service: NotificationService<Db, Db>,
}

impl OrderEvents {
    pub fn new(c: &Clients) -> Result<Self, MissingVariable> {
        let service = NotificationService {
            orders: CrashAfter(c.dynamo.clone().reading_orders(notification::ORDER_READS.to_vec())),
            notifications: c.db(),
            emails: c.email_hasher()?,
        };
        Ok(Self { service })
    }
}

impl Consumer for OrderEvents {
    type Message = String;

    fn read(&self, record: SqsMessage) -> Result<Read<String>, ServiceError> {
        let span = tracing::info_span!(
            "event",
            orderId = %attribute(&record, attributes::ORDER_ID),
            correlationId = %attribute(&record, attributes::CORRELATION_ID),
            executionArn = tracing::field::Empty
        );
        let execution_arn = attribute(&record, attributes::EXECUTION_ARN);
        if !execution_arn.is_empty() {
            span.record("executionArn", execution_arn);
        }
        Ok(Read { message: record.body.unwrap_or_default(), span, command: None })
    }

    async fn consume(&self, body: &String) -> Result<(), ServiceError> {
        self.service.handle(body).await.map(|_new| ())
    }
}
