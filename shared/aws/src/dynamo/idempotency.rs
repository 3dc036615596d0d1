//! Submission idempotency keys: a key is claimed with a conditional put (absent, or its TTL passed), so
//! the same key never creates a second order; a replay finds the first claim's order and payload hash.

use aws_sdk_dynamodb::types::AttributeValue;
use nexus_core::ports::{Claim, IdempotencyStore, PortError, PortResult};

use super::Dynamo;
use crate::ext::{s, unavailable};

impl IdempotencyStore for Dynamo {
    async fn claim(&self, key: &str, order_id: &str, payload_hash: &str, expires_at: i64) -> PortResult<Claim> {
        let now = chrono::Utc::now().timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.idempotency)
            .item("idempotencyKey", s(key))
            .item("orderId", s(order_id))
            .item("payloadHash", s(payload_hash))
            .item("status", s("IN_PROGRESS"))
            .item("expiresAt", AttributeValue::N(expires_at.to_string()))
            // TTL deletes lazily: an expired record still present counts as absent.
            .condition_expression("attribute_not_exists(idempotencyKey) OR expiresAt < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.tables.idempotency)
                    .key("idempotencyKey", s(key))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| unavailable("read idempotency record", e))?
                    .item
                    .ok_or(PortError::Conflict { operation: "idempotency claim" })?;
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(v)) => v.clone(),
                    _ => String::new(),
                };
                Ok(Claim::Existing { order_id: text("orderId"), payload_hash: text("payloadHash") })
            }
            Err(e) => Err(unavailable("claim idempotency key", e)),
        }
    }

    async fn complete(&self, key: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.tables.idempotency)
            .key("idempotencyKey", s(key))
            .update_expression("SET #status = :completed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .send()
            .await
            .map_err(|e| unavailable("complete idempotency record", e))?;
        Ok(())
    }
}
