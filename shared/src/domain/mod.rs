//! The domain: orders, their statuses and transitions, the submission contract and the saga's messages.
//! Knows nothing of AWS.

pub mod ids;
pub mod messages;
pub mod order;
pub mod status;
pub mod submission;

/// Now, as stored in items and events (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
