//! The order aggregate: what was ordered, by whom, and where it is in the saga; each change yields the
//! event that records it (version + 1, so the event log has no gaps).

use serde::{Deserialize, Serialize};

use super::checkout::{Address, LineItem, PaymentDetails, Tier};
use super::ids;
use super::messages::{EVENT_SCHEMA_VERSION, OrderEvent};
use super::status::OrderStatus;
use super::submission::{Rejection, ValidSubmission};
use super::terms::Terms;

/// An order as stored. `version` increases by one with every change (optimistic concurrency). A REJECTED
/// order keeps only what could be read from its message (the other fields take their defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Order {
    pub order_id: String,
    pub idempotency_key: String,
    pub customer_id: String,
    /// Needed to notify the customer; never logged (logs carry `customerEmailHash`).
    pub customer_email: String,
    pub tier: Tier,
    pub currency: String,
    pub items: Vec<LineItem>,
    pub total_cents: u64,
    pub payment: PaymentDetails,
    pub shipping_address: Address,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub version: u64,
    /// 1, and + 1 each time an operator retries the order after it was cancelled for a transient reason
    /// (`nexus retry`): the attempt scopes the order's effects in the ledger.
    pub attempt: u32,
    pub correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// SHA-256 of the submitted message: a replay has the same, a reused idempotency key does not.
    pub payload_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    /// Whether its creation took a standard saga slot ([`super::admission`]): recorded once, with the
    /// creation, so that whatever ends the saga frees the slot even if the bound has changed since.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub holds_saga_slot: bool,
    /// When its personal data (email, address, payment token) was erased (`nexus forget`): the money and
    /// stock facts stay, for the checker and the books.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_data_erased_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Default for Order {
    fn default() -> Self {
        Self {
            order_id: String::new(),
            idempotency_key: String::new(),
            customer_id: String::new(),
            customer_email: String::new(),
            tier: Tier::default(),
            currency: String::new(),
            items: Vec::new(),
            total_cents: 0,
            payment: PaymentDetails::default(),
            shipping_address: Address::default(),
            status: OrderStatus::Pending,
            reason: None,
            version: 0,
            attempt: super::messages::first_attempt(),
            correlation_id: String::new(),
            execution_arn: None,
            payload_hash: String::new(),
            rejection: None,
            holds_saga_slot: false,
            personal_data_erased_at: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }
}

impl Order {
    /// The order a valid submission creates: PENDING, version 1.
    /// The order of a submission, on the terms the orchestrator set for it.
    pub fn from_submission(
        submission: ValidSubmission,
        terms: Terms,
        correlation_id: String,
        execution_arn: String,
        now: &str,
    ) -> Self {
        Self {
            total_cents: terms.total_cents,
            order_id: submission.order_id,
            idempotency_key: submission.idempotency_key,
            customer_id: submission.customer_id,
            customer_email: submission.customer_email,
            tier: terms.tier,
            currency: submission.currency,
            items: terms.items,
            payment: submission.payment,
            shipping_address: submission.shipping_address,
            status: OrderStatus::Pending,
            reason: None,
            version: 1,
            attempt: super::messages::first_attempt(),
            correlation_id,
            execution_arn: Some(execution_arn),
            payload_hash: submission.payload_hash,
            rejection: None,
            // The store decides, with the bound in force when it creates the order.
            holds_saga_slot: false,
            personal_data_erased_at: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// The record of a rejected message that names an order.
    pub fn rejected(
        order_id: String,
        rejection: Rejection,
        correlation_id: String,
        payload_hash: String,
        now: &str,
    ) -> Self {
        Self {
            order_id,
            status: OrderStatus::Rejected,
            reason: Some(rejection.reason()),
            rejection: Some(rejection),
            version: 1,
            correlation_id,
            payload_hash,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            ..Self::default()
        }
    }

    /// This order moved to `status` (version + 1), and the event recording it.
    pub fn advanced(&self, status: OrderStatus, reason: Option<String>, now: &str) -> (Order, OrderEvent) {
        let mut next = self.clone();
        next.status = status;
        if reason.is_some() {
            next.reason = reason;
        }
        next.version = self.version + 1;
        next.updated_at = now.to_owned();
        let event = next.event(Some(self.status));
        (next, event)
    }

    /// This order as an operator's retry leaves it (`nexus retry`, version + 1) and the event recording it:
    /// in `status`, at `attempt`, with `reason` (none for a new attempt; the reason it is being cancelled for
    /// when its compensation runs again), run by a new execution.
    pub fn retried(
        &self,
        (status, attempt, reason): (OrderStatus, u32, Option<String>),
        execution_arn: String,
        now: &str,
    ) -> (Order, OrderEvent) {
        let mut next = self.clone();
        (next.status, next.attempt, next.reason) = (status, attempt, reason);
        next.execution_arn = Some(execution_arn);
        next.version = self.version + 1;
        next.updated_at = now.to_owned();
        let event = next.event(Some(self.status));
        (next, event)
    }

    /// The event for this order's current version.
    pub fn event(&self, previous_status: Option<OrderStatus>) -> OrderEvent {
        OrderEvent {
            schema_version: EVENT_SCHEMA_VERSION,
            event_id: ids::event_id(&self.order_id, self.version),
            order_id: self.order_id.clone(),
            sequence: self.version,
            status: self.status,
            previous_status,
            reason: self.reason.clone(),
            correlation_id: self.correlation_id.clone(),
            execution_arn: self.execution_arn.clone(),
            attempt: self.attempt,
            at: self.updated_at.clone(),
        }
    }

    /// The input of an execution running this order forward from its current attempt.
    pub fn saga_input(&self) -> super::messages::SagaInput {
        super::messages::SagaInput {
            order_id: self.order_id.clone(),
            correlation_id: self.correlation_id.clone(),
            attempt: self.attempt,
            tier: self.tier,
            error: None,
        }
    }

    /// Units per SKU of this order.
    pub fn quantities_by_sku(&self) -> std::collections::BTreeMap<String, u64> {
        super::checkout::quantities_by_sku(&self.items)
    }
}
