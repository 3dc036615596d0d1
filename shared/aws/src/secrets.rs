//! The stack's secrets: the key of the customer email hash ([`EmailHasher`]), read once per process.

use nexus_core::domain::ids::EmailHasher;
use nexus_core::ports::{PortError, PortResult};

use crate::ext::unavailable;

const OPERATION: &str = "read the email hash key";

/// The hasher keyed by the secret `secret_id` (its string value, as the stack generates it).
pub async fn email_hasher(client: &aws_sdk_secretsmanager::Client, secret_id: &str) -> PortResult<EmailHasher> {
    let secret = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| unavailable(OPERATION, e))?;
    let key = secret.secret_string().filter(|key| !key.is_empty()).ok_or_else(|| PortError::Corrupt {
        operation: OPERATION,
        message: format!("secret {secret_id} has no string value"),
    })?;
    Ok(EmailHasher::new(key.as_bytes()))
}
