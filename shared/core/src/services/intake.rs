//! order-intake: validate a submission, dedupe it by idempotency key, record the order (or its rejection)
//! and start its saga. A message that names no order is parked in the intake DLQ with its reason.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::ServiceError;
use crate::domain::checkout::Tier;
use crate::domain::messages::first_attempt;
use crate::domain::order::Order;
use crate::domain::submission::{self, InvalidSubmission, Rejection, RejectionCode, ValidSubmission};
use crate::domain::{self, admission, ids, terms};
use crate::ports::{
    Catalog, Claim, CreateOutcome, DeadLetters, Deferrals, EventPublisher, IdempotencyStore, OrderStore, SagaStarter,
    StartOutcome,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// The order exists (new or a replay) and its saga runs.
    Accepted { order_id: String, new: bool },
    /// Recorded as a REJECTED order.
    Rejected { order_id: String, rejection: Rejection },
    /// No order could be named: parked in the intake DLQ with the reason.
    Parked { rejection: Rejection },
    /// A standard order over the bound of sagas in flight: put back on the intake queue, read again in
    /// `delay_seconds` (nothing was written).
    Deferred { order_id: String, delay_seconds: u32 },
}

/// How long an idempotency key is remembered (DynamoDB TTL on the record).
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 7 * 24 * 3600;

pub struct IntakeService<S, C, P, G, D, K, F> {
    pub idempotency: K,
    pub orders: S,
    pub catalog: C,
    pub publisher: P,
    pub saga: G,
    pub dead_letters: D,
    pub deferrals: F,
    pub emails: ids::EmailHasher,
    pub saga_slots: SlotsFullHint,
}

/// Remembers for a moment that the bound of standard sagas was found reached, so the rest of a batch is put
/// back without a write each (the write that creates an order still decides, atomically).
#[derive(Debug, Default)]
pub struct SlotsFullHint(Mutex<Option<Instant>>);

impl SlotsFullHint {
    const KEPT: Duration = Duration::from_secs(1);

    fn is_fresh(&self) -> bool {
        let seen = *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.is_some_and(|at| at.elapsed() < Self::KEPT)
    }

    fn note(&self) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }
}

/// The `correlationId` attribute, taken only when it follows the order id's rule (1–80 of `A-Z a-z 0-9 - _`):
/// the state machine copies it into every command's body and attributes, so an unbounded value could push
/// its publishes past SNS's 256 KB limit. Otherwise the order id is used, and the replacement logged.
fn bounded_correlation_id(correlation_id: Option<&str>) -> Option<&str> {
    match correlation_id {
        Some(id) if !submission::is_valid_order_id(id) => {
            tracing::warn!(
                length = id.len(),
                "correlationId attribute ignored: not 1–80 characters of A-Z a-z 0-9 - _; the order id is used"
            );
            None
        }
        other => other,
    }
}

impl<S, C, P, G, D, K, F> IntakeService<S, C, P, G, D, K, F>
where
    K: IdempotencyStore,
    S: OrderStore,
    C: Catalog,
    P: EventPublisher,
    G: SagaStarter,
    D: DeadLetters,
    F: Deferrals,
{
    pub async fn handle(&self, body: &str, correlation_id: Option<&str>) -> Result<IntakeOutcome, ServiceError> {
        let correlation_id = bounded_correlation_id(correlation_id);
        let valid = match submission::validate(body.as_bytes()) {
            Ok(valid) => valid,
            Err(InvalidSubmission { order_id: Some(order_id), rejection }) => {
                let span = tracing::info_span!(
                    "order",
                    orderId = %order_id,
                    correlationId = %correlation_id.unwrap_or(&order_id),
                );
                return self.reject(order_id, rejection, body, correlation_id).instrument(span).await;
            }
            Err(InvalidSubmission { order_id: None, rejection }) => {
                tracing::warn!(reason = %rejection.reason(), detail = %rejection.detail, "unidentifiable message parked in the intake DLQ");
                self.dead_letters.park(body, &rejection).await?;
                return Ok(IntakeOutcome::Parked { rejection });
            }
        };
        let order_id = valid.order_id.clone();
        // Every line about the order carries the contract's correlation fields (the execution's name is the
        // order id, so its ARN is known before it starts).
        let span = tracing::info_span!(
            "order",
            orderId = %order_id,
            correlationId = %correlation_id.unwrap_or(&order_id),
            executionArn = %self.saga.execution_arn(&order_id),
        );
        self.accept(valid, body, correlation_id).instrument(span).await
    }

    async fn accept(
        &self,
        valid: ValidSubmission,
        body: &str,
        correlation_id: Option<&str>,
    ) -> Result<IntakeOutcome, ServiceError> {
        let order_id = valid.order_id.clone();
        // The orchestrator's terms: the catalog's prices and the customer's recorded tier, whatever the
        // message claims (recorded with the order, so a redelivery keeps the first decision).
        let skus: BTreeSet<String> = valid.items.iter().map(|i| i.sku.clone()).collect();
        let entries = self.catalog.lookup(&skus, &valid.customer_id).await?;
        let terms = match terms::decide(&valid.items, &entries.prices, entries.tier) {
            Ok(terms) => terms,
            Err(rejection) => return self.reject(order_id, rejection, body, correlation_id).await,
        };
        if valid.claimed_tier.is_some_and(|claimed| claimed != terms.tier) {
            tracing::info!(
                tier = terms.tier.as_str(),
                "the message's tier claim is not the customer's record; the record's tier runs"
            );
        }
        if terms.tier == Tier::Standard && self.saga_slots.is_fresh() {
            return self.defer(order_id, body, correlation_id).await;
        }

        let payload_hash = valid.payload_hash.clone();
        let idempotency_key = valid.idempotency_key.clone();
        let expires_at = chrono::Utc::now().timestamp() + IDEMPOTENCY_TTL_SECONDS;
        match self.idempotency.claim(&idempotency_key, &order_id, &payload_hash, expires_at).await? {
            Claim::Claimed => {}
            Claim::Existing { payload_hash: first, .. } if first == payload_hash => {
                tracing::info!("idempotency key seen before with the same payload; continuing the first order");
            }
            Claim::Existing { order_id: first_order, .. } => {
                let rejection = Rejection::new(
                    RejectionCode::IdempotencyKeyReused,
                    Some("idempotencyKey"),
                    format!("already used by order {first_order} with a different payload"),
                );
                tracing::warn!(reason = %rejection.reason(), "idempotency key reused; message parked in the intake DLQ");
                self.dead_letters.park(body, &rejection).await?;
                return Ok(IntakeOutcome::Parked { rejection });
            }
        }

        let now = domain::now();
        let correlation = correlation_id.map_or_else(|| order_id.clone(), str::to_owned);
        let order = Order::from_submission(valid, terms, correlation, self.saga.execution_arn(&order_id), &now);
        let event = order.event(None);
        let (order, new) = match self.orders.create(&order, &event).await? {
            CreateOutcome::Created => {
                tracing::info!(customerEmailHash = %self.emails.hash(&order.customer_email), totalCents = order.total_cents, "order accepted");
                crate::metrics::count("OrdersSubmitted", &[("Tier", order.tier.as_str())]);
                (order, true)
            }
            CreateOutcome::AlreadyExists(existing) => {
                if existing.payload_hash != payload_hash {
                    // The key (or order id) already names a different order: never touch that one.
                    let rejection = Rejection::new(
                        RejectionCode::IdempotencyKeyReused,
                        Some("idempotencyKey"),
                        format!("already used by order {} with a different payload", existing.order_id),
                    );
                    tracing::warn!(reason = %rejection.reason(), "idempotency key reused; message parked in the intake DLQ");
                    self.dead_letters.park(body, &rejection).await?;
                    return Ok(IntakeOutcome::Parked { rejection });
                }
                tracing::info!(status = %existing.status, "duplicate submission; the first order stands");
                (*existing, false)
            }
            CreateOutcome::NoSagaSlot => {
                self.saga_slots.note();
                return self.defer(order_id, body, correlation_id).await;
            }
        };
        self.proceed(order).await?;
        Ok(IntakeOutcome::Accepted { order_id, new })
    }

    /// An accepted order's saga, started (or found running) after its first event went out. (The idempotency
    /// key needs no "done" mark: a replay of the same payload continues the first order, whatever it reached.)
    async fn proceed(&self, order: Order) -> Result<(), ServiceError> {
        if order.status == crate::domain::status::OrderStatus::Pending && order.attempt == first_attempt() {
            // Also on a replay: the first delivery may have died between the put and the publish, or the
            // publish and the start. The event goes out before the saga starts, so an order whose saga runs
            // has had its first event published at least once (subscribers dedupe by event id). (A later
            // attempt's execution is an operator's retry, which starts it itself.)
            self.publisher.publish(&order.event(None)).await?;
            match self.saga.start(&order.order_id, &order.saga_input().to_json()).await? {
                StartOutcome::Started { execution_arn } => {
                    tracing::info!(executionArn = %execution_arn, "saga started")
                }
                StartOutcome::AlreadyStarted { .. } => tracing::info!("saga already running"),
            }
        }
        Ok(())
    }

    /// Over the bound of standard sagas: the submission goes back on the intake queue (a new message, so
    /// waiting never counts towards the queue's maxReceiveCount), and this copy is done.
    async fn defer(
        &self,
        order_id: String,
        body: &str,
        correlation_id: Option<&str>,
    ) -> Result<IntakeOutcome, ServiceError> {
        let now_nanos = chrono::Utc::now().timestamp_subsec_nanos();
        let delay_seconds = admission::deferral_delay_seconds(&order_id, now_nanos);
        self.deferrals.defer(body, correlation_id, delay_seconds).await?;
        tracing::info!(
            delaySeconds = delay_seconds,
            "standard sagas at their bound; submission waits in the intake queue"
        );
        crate::metrics::count("OrdersDeferred", &[("Tier", Tier::Standard.as_str())]);
        Ok(IntakeOutcome::Deferred { order_id, delay_seconds })
    }

    async fn reject(
        &self,
        order_id: String,
        rejection: Rejection,
        body: &str,
        correlation_id: Option<&str>,
    ) -> Result<IntakeOutcome, ServiceError> {
        let correlation_id = correlation_id.map_or_else(|| order_id.clone(), str::to_owned);
        let order = Order::rejected(
            order_id.clone(),
            rejection.clone(),
            correlation_id,
            ids::sha256_hex(body.as_bytes()),
            &domain::now(),
        );
        let event = order.event(None);
        if self.orders.create_rejected(&order, &event).await? {
            tracing::warn!(orderId = %order_id, reason = %rejection.reason(), detail = %rejection.detail, "order rejected");
            crate::metrics::count("OrdersRejected", &[("Reason", &rejection.reason())]);
            self.publisher.publish(&event).await?;
        } else {
            match self.orders.get(&order_id).await? {
                // A redelivery of the rejection itself: the first delivery may have died before its publish.
                Some(existing) if existing.status == crate::domain::status::OrderStatus::Rejected => {
                    tracing::info!(orderId = %order_id, reason = %rejection.reason(), "rejection redelivered; nothing changed");
                    self.publisher.publish(&existing.event(None)).await?;
                }
                // A redelivery of a submission accepted on the terms of its first delivery (a price or a
                // record has changed since): that decision stands, and its saga goes on.
                Some(existing) if existing.payload_hash == order.payload_hash => {
                    tracing::info!(orderId = %order_id, status = %existing.status, "accepted before on its first terms; the first order stands");
                    self.proceed(existing).await?;
                    return Ok(IntakeOutcome::Accepted { order_id, new: false });
                }
                _ => {
                    tracing::info!(orderId = %order_id, reason = %rejection.reason(), "rejected message for an existing order id; nothing changed");
                }
            }
        }
        Ok(IntakeOutcome::Rejected { order_id, rejection })
    }
}
