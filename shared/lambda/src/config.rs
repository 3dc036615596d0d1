//! Function configuration from the environment (set by the template), and the clients a function's
//! consumer is built from.

use nexus_aws::dynamo::{Dynamo, Ledgers, Tables};
use nexus_aws::sfn::StepFunctions;
use nexus_aws::sns::SnsEvents;
use nexus_aws::sqs::{SqsDeadLetters, SqsDeferrals};
use nexus_core::domain::admission::SagaLimit;
use nexus_core::domain::ids::EmailHasher;

/// The secret keying the customer email hash (the stack's `EmailHashSecret`).
const EMAIL_HASH_SECRET: &str = "EMAIL_HASH_SECRET_ARN";
/// The bound of standard sagas in flight (the template's `StandardSagaLimit`; order-intake's only).
const STANDARD_SAGA_LIMIT: &str = "STANDARD_SAGA_LIMIT";

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set (the template sets it for every function)")]
pub struct MissingVariable(pub &'static str);

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Missing(#[from] MissingVariable),
    #[error(transparent)]
    Secret(#[from] nexus_core::ports::PortError),
    #[error("environment variable {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

pub fn var(name: &'static str) -> Result<String, MissingVariable> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(MissingVariable(name))
}

pub fn tables() -> Result<Tables, MissingVariable> {
    Ok(Tables {
        idempotency: var("IDEMPOTENCY_TABLE")?,
        settings: var("SETTINGS_TABLE")?,
        orders: var("ORDERS_TABLE")?,
        order_events: var("ORDER_EVENTS_TABLE")?,
        inventory: var("INVENTORY_TABLE")?,
        ledger: Ledgers {
            inventory: var("INVENTORY_LEDGER_TABLE")?,
            payment: var("PAYMENT_LEDGER_TABLE")?,
            shipping: var("SHIPPING_LEDGER_TABLE")?,
            notification: var("NOTIFICATION_LEDGER_TABLE")?,
        },
        customers: var("CUSTOMERS_TABLE")?,
    })
}

/// The SDK configuration Lambda gives a function (region, credentials; `AWS_ENDPOINT_URL` locally), and
/// the adapters over it.
pub struct Clients {
    pub aws: aws_config::SdkConfig,
    pub dynamo: Dynamo,
    /// Keyed by the stack's secret, for the functions that see customer emails (`EMAIL_HASH_SECRET_ARN`
    /// is set on those only): read once, here.
    emails: Option<EmailHasher>,
}

impl Clients {
    pub async fn load() -> Result<Self, ConfigError> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let saga_limit = match var(STANDARD_SAGA_LIMIT) {
            Ok(text) => SagaLimit::parse(&text)
                .map_err(|message| ConfigError::Invalid { name: STANDARD_SAGA_LIMIT, message })?,
            Err(_) => SagaLimit::default(),
        };
        let dynamo = Dynamo::new(aws_sdk_dynamodb::Client::new(&aws), tables()?).with_saga_limit(saga_limit);
        let emails = match var(EMAIL_HASH_SECRET) {
            Ok(secret) => {
                let client = aws_sdk_secretsmanager::Client::new(&aws);
                Some(nexus_aws::secrets::email_hasher(&client, &secret).await?)
            }
            Err(_) => None,
        };
        Ok(Self { aws, dynamo, emails })
    }

    /// The customer email hasher (intake and notification).
    pub fn email_hasher(&self) -> Result<EmailHasher, MissingVariable> {
        self.emails.clone().ok_or(MissingVariable(EMAIL_HASH_SECRET))
    }

    /// The order-events topic every service publishes order changes on.
    pub fn event_publisher(&self) -> Result<SnsEvents, MissingVariable> {
        Ok(SnsEvents::new(aws_sdk_sns::Client::new(&self.aws), var("ORDER_EVENTS_TOPIC_ARN")?))
    }

    /// The saga's state machine: callbacks of its tasks, and starting it.
    pub fn step_functions(&self) -> Result<StepFunctions, MissingVariable> {
        Ok(StepFunctions::new(aws_sdk_sfn::Client::new(&self.aws), var("STATE_MACHINE_ARN")?))
    }

    /// The intake DLQ, where submissions that name no order are parked.
    pub fn intake_dead_letters(&self) -> Result<SqsDeadLetters, MissingVariable> {
        Ok(SqsDeadLetters::new(aws_sdk_sqs::Client::new(&self.aws), var("INTAKE_DLQ_URL")?))
    }

    /// The standard intake queue, where submissions over the bound of standard sagas wait.
    pub fn intake_deferrals(&self) -> Result<SqsDeferrals, MissingVariable> {
        Ok(SqsDeferrals::new(aws_sdk_sqs::Client::new(&self.aws), var("INTAKE_QUEUE_URL")?))
    }
}

/// `CHAOS_ENABLED` (the template's `ChaosEnabled`): fault injection is off unless it says "true".
pub fn chaos_enabled() -> bool {
    std::env::var("CHAOS_ENABLED").is_ok_and(|v| v == "true")
}
