//! Deterministic ids (UUID v5) and hashes: the same order and step always give the same id, so an effect
//! applied twice is recognised as one.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Namespace of every Nexus UUID v5 (a fixed random UUID; changing it would change every derived id).
const NEXUS_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_4c0e_9a57_4f7e_b1d2_3c8e_5a90_77e1);

/// The order id of a submission without one: derived from its idempotency key.
pub fn order_id_for_key(idempotency_key: &str) -> String {
    Uuid::new_v5(&NEXUS_NAMESPACE, format!("order/{idempotency_key}").as_bytes()).to_string()
}

/// The id of the effect `step` of an order (reservation, charge, shipment, …).
pub fn effect_id(order_id: &str, step: &str) -> String {
    Uuid::new_v5(&NEXUS_NAMESPACE, format!("effect/{order_id}/{step}").as_bytes()).to_string()
}

/// The name of the execution an operator's retry starts: derived from the order version the retry wrote, so
/// every retry has its own and a repeat of the same one finds it. A UUID, as the order id may already take
/// the 80 characters an execution name allows (the first execution is named by the order id).
pub fn retry_execution_name(order_id: &str, version: u64) -> String {
    Uuid::new_v5(&NEXUS_NAMESPACE, format!("execution/{order_id}/{version}").as_bytes()).to_string()
}

/// An execution's name: the last part of its ARN, which the state machine's `$$.Execution.Id` and the
/// adapters' spellings of the ARN share.
pub fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// The id of the order event with this sequence number.
pub fn event_id(order_id: &str, sequence: u64) -> String {
    Uuid::new_v5(&NEXUS_NAMESPACE, format!("event/{order_id}/{sequence}").as_bytes()).to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What logs and the ledger carry instead of a customer email (contract §3): HMAC-SHA-256 of the trimmed,
/// lower-cased address, keyed by a secret of the stack. Keyed, so that hashing a list of known addresses does
/// not tell whose orders they are.
#[derive(Clone)]
pub struct EmailHasher {
    mac: Hmac<Sha256>,
}

impl EmailHasher {
    pub fn new(key: &[u8]) -> Self {
        // HMAC takes a key of any length (hashed when longer than a block), so this cannot fail.
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        Self { mac }
    }

    /// Lower-case hex, 64 characters; empty for an empty address.
    pub fn hash(&self, email: &str) -> String {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return String::new();
        }
        let mut mac = self.mac.clone();
        mac.update(email.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The key stays out of logs and panics.
impl std::fmt::Debug for EmailHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailHasher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(effect_id("o-1", "reserve"), effect_id("o-1", "reserve"));
        assert_ne!(effect_id("o-1", "reserve"), effect_id("o-1", "charge"));
        assert_ne!(effect_id("o-1", "reserve"), effect_id("o-2", "reserve"));
        assert_eq!(order_id_for_key("k").len(), 36);
    }

    #[test]
    fn sha256_is_hex_of_the_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn email_hashes_are_keyed_normalised_and_hex() {
        let hasher = EmailHasher::new(b"stack secret");
        let hash = hasher.hash(" Asha@Example.com ");
        assert_eq!(hash, hasher.hash("asha@example.com"), "trimmed and lower-cased");
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, sha256_hex(b"asha@example.com"), "not the unkeyed SHA-256 a dictionary reverses");
        assert_ne!(hash, EmailHasher::new(b"another stack").hash("asha@example.com"), "per stack");
        assert_eq!(hasher.hash("  "), "");
        assert!(!format!("{hasher:?}").contains("secret"));
    }
}
