//! notification: tells the customer about their order's changes. Fire-and-forget: it never blocks or fails
//! an order; each event is recorded once (by event id) however often it is delivered.

use super::ServiceError;
use crate::domain::ids;
use crate::domain::messages::OrderEvent;
use crate::ports::{Notifications, OrderStore};

/// The customer's email, to tell them (all a notification reads of the order: not one of the saga's steps).
pub const ORDER_READS: &[&str] = &["orderId", "customerEmail"];

pub struct NotificationService<S, N> {
    pub orders: S,
    pub notifications: N,
    pub emails: ids::EmailHasher,
}

impl<S: OrderStore, N: Notifications> NotificationService<S, N> {
    /// Returns whether the notification is new.
    pub async fn handle(&self, body: &str) -> Result<bool, ServiceError> {
        let event: OrderEvent = serde_json::from_str(body).map_err(|e| ServiceError::BadMessage(e.to_string()))?;
        let email = self.orders.get(&event.order_id).await?.map(|o| o.customer_email).unwrap_or_default();
        let email_hash = self.emails.hash(&email);
        let new = self.notifications.record(&event, &email_hash).await?;
        if new {
            tracing::info!(status = %event.status, sequence = event.sequence, customerEmailHash = %email_hash, "customer notified");
        } else {
            tracing::info!(sequence = event.sequence, "notification already sent");
        }
        Ok(new)
    }
}
