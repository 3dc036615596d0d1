//! The saga's versioned messages: commands the state machine sends to the services (SNS, with a task token)
//! and the events every order state change emits.

use serde::{Deserialize, Serialize};

use super::status::OrderStatus;

pub const COMMAND_SCHEMA_VERSION: u64 = 1;

/// The message attributes (SNS and SQS) the saga's messages carry, for filter policies and correlation:
/// each name defined once, for the publishers, the functions that read them, and the state machine's test.
pub mod attributes {
    pub const ORDER_ID: &str = "orderId";
    pub const CORRELATION_ID: &str = "correlationId";
    pub const EXECUTION_ARN: &str = "executionArn";
    /// On the state machine's commands: the [`super::CommandName`].
    pub const COMMAND: &str = "command";
    /// On order events: the order's new status.
    pub const STATUS: &str = "status";
    pub const EVENT_ID: &str = "eventId";
    /// On a submission parked in the intake DLQ: why.
    pub const REJECTION_CODE: &str = "rejectionCode";
    pub const REJECTION_REASON: &str = "rejectionReason";
    pub const REJECTION_DETAIL: &str = "rejectionDetail";
    pub const TRUNCATED: &str = "truncated";
    /// On the state machine's commands: the order's tier, which routes the command to its lane's queue.
    pub const TIER: &str = "tier";
}
pub const EVENT_SCHEMA_VERSION: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommandName {
    ReserveInventory,
    ReleaseInventory,
    ChargePayment,
    RefundPayment,
    DispatchShipping,
    CancelShipment,
    CompleteOrder,
    CancelOrder,
    FlagNeedsAttention,
}

impl CommandName {
    pub const ALL: [CommandName; 9] = [
        Self::ReserveInventory,
        Self::ReleaseInventory,
        Self::ChargePayment,
        Self::RefundPayment,
        Self::DispatchShipping,
        Self::CancelShipment,
        Self::CompleteOrder,
        Self::CancelOrder,
        Self::FlagNeedsAttention,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReserveInventory => "ReserveInventory",
            Self::ReleaseInventory => "ReleaseInventory",
            Self::ChargePayment => "ChargePayment",
            Self::RefundPayment => "RefundPayment",
            Self::DispatchShipping => "DispatchShipping",
            Self::CancelShipment => "CancelShipment",
            Self::CompleteOrder => "CompleteOrder",
            Self::CancelOrder => "CancelOrder",
            Self::FlagNeedsAttention => "FlagNeedsAttention",
        }
    }
}

/// A command from the state machine (`sns:publish.waitForTaskToken`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCommand {
    pub schema_version: u64,
    pub command: CommandName,
    pub order_id: String,
    #[serde(default)]
    pub correlation_id: String,
    #[serde(default)]
    pub execution_arn: String,
    pub task_token: String,
    /// Which attempt of the order the command belongs to (1 unless an operator retried it): its effects are
    /// that attempt's, and a command of an earlier attempt cannot move the order.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// For CancelOrder / FlagNeedsAttention: the error that ended the saga.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An order state change, as stored in the event log and published on the order-events topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    pub schema_version: u64,
    pub event_id: String,
    pub order_id: String,
    /// The order's version after the change: 1, 2, 3, … with no gaps.
    pub sequence: u64,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<OrderStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub correlation_id: String,
    /// The order's saga execution, when it has one (a REJECTED order has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// The order's attempt when the change was made (1; + 1 with each `nexus retry` of a cancelled order).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    pub at: String,
}

/// An execution's input: what the state machine copies into every command. `error` is set only when an
/// operator reruns the compensation of an order that needs attention (`nexus retry`, which writes the order
/// COMPENSATING first): its first step then answers `Saga.CompensationRerun`, caught into the compensations
/// (`infra/order-saga.asl.json`), and the order is cancelled for `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SagaInput {
    pub order_id: String,
    pub correlation_id: String,
    pub attempt: u32,
    /// The order's lane: every command carries it as its `tier` attribute, which the queues filter on.
    pub tier: super::checkout::Tier,
    /// A rerun's: the error the order is being cancelled for (the shape of a `Catch`'s `ResultPath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SagaFailure>,
}

impl SagaInput {
    pub fn to_json(&self) -> serde_json::Value {
        // Strings, a number and unit enums: serialising to a `Value` cannot fail (only non-string map keys can).
        serde_json::to_value(self).unwrap_or_else(|e| unreachable!("saga input serialises: {e}"))
    }
}

/// A failure as the state machine holds it (`{"Error": …, "Cause": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaFailure {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause")]
    pub cause: String,
}

/// Every order starts at attempt 1 (and messages written before attempts existed are of attempt 1).
pub const fn first_attempt() -> u32 {
    1
}
