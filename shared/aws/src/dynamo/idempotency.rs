//! Submission idempotency keys: a key is claimed with a conditional put (absent, or its TTL passed), so
//! the same key never creates a second order; a replay finds the first claim's order and payload hash.

use nexus_core::ports::{Claim, IdempotencyStore, PortError, PortResult};
use serde::{Deserialize, Serialize};

use super::Dynamo;
use crate::ext::{to_item, unavailable};

/// One key's record (table key: idempotencyKey; DynamoDB TTL on `expiresAt`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct IdempotencyRecord {
    idempotency_key: String,
    order_id: String,
    payload_hash: String,
    /// Epoch seconds.
    expires_at: i64,
}

impl IdempotencyStore for Dynamo {
    async fn claim(&self, key: &str, order_id: &str, payload_hash: &str, expires_at: i64) -> PortResult<Claim> {
        let record = IdempotencyRecord {
            idempotency_key: key.to_owned(),
            order_id: order_id.to_owned(),
            payload_hash: payload_hash.to_owned(),
            expires_at,
        };
        let now = chrono::Utc::now().timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.idempotency)
            .set_item(Some(to_item("write idempotency record", &record)?))
            // TTL deletes lazily: an expired record still present counts as absent.
            .condition_expression("attribute_not_exists(idempotencyKey) OR expiresAt < :now")
            .expression_attribute_values(":now", aws_sdk_dynamodb::types::AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                let first: IdempotencyRecord = self
                    .get_item("read idempotency record", &self.tables.idempotency, &[("idempotencyKey", key)])
                    .await?
                    .ok_or(PortError::Conflict { operation: "idempotency claim" })?;
                Ok(Claim::Existing { order_id: first.order_id, payload_hash: first.payload_hash })
            }
            Err(e) => Err(unavailable("claim idempotency key", e)),
        }
    }
}
