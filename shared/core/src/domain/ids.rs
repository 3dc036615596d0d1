//! Deterministic ids (UUID v5) and hashes: the same order and step always give the same id, so an effect
//! applied twice is recognised as one.

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

/// The id of the order event with this sequence number.
pub fn event_id(order_id: &str, sequence: u64) -> String {
    Uuid::new_v5(&NEXUS_NAMESPACE, format!("event/{order_id}/{sequence}").as_bytes()).to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What logs carry instead of a customer email (contract §3): SHA-256 of the trimmed, lower-cased address.
pub fn email_hash(email: &str) -> String {
    sha256_hex(email.trim().to_lowercase().as_bytes())
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
    fn email_hash_is_sha256_of_normalised_address() {
        assert_eq!(email_hash(" Asha@Example.com "), email_hash("asha@example.com"));
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
