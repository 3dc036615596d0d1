//! The domain: what a customer checks out, the order and its statuses, the submission contract and its
//! validation, the terms the orchestrator sets (prices, total, tier), the saga's messages and error names,
//! the effects ledger and stock. Knows nothing of AWS.

pub mod admission;
pub mod checkout;
pub mod ids;
pub mod ledger;
pub mod messages;
pub mod order;
pub mod saga_error;
pub mod status;
pub mod stock;
pub mod submission;
pub mod terms;

/// Now, as stored in items and events (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
