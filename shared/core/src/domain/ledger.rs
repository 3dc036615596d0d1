//! The effects ledger, the record every guarantee rests on: one entry per order and effect (a reservation,
//! a charge, a shipment) or notification, written once with a condition, and moved from its applied state
//! to its undone state by the compensation. An undo that finds nothing leaves the undone state as a
//! tombstone, so a late copy of the effect cannot slip in after its compensation. The DynamoDB adapter,
//! the in-memory twin and the invariant checker all read and write these types.

use serde::{Deserialize, Serialize};

use super::ids;
use super::status::OrderStatus;

/// Between an effect's name and the attempt in a later attempt's ledger key (`payment#2`).
const ATTEMPT_SEPARATOR: char = '#';

/// An effect of the saga that its compensation undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    Reservation,
    Payment,
    Shipment,
}

impl Effect {
    pub const ALL: [Effect; 3] = [Self::Reservation, Self::Payment, Self::Shipment];

    /// The effect's name: the entry's key in the ledger for an order's first attempt, and the start of it
    /// for a later one ([`Effect::entry_key`]).
    pub const fn key(self) -> &'static str {
        match self {
            Self::Reservation => "reservation",
            Self::Payment => "payment",
            Self::Shipment => "shipment",
        }
    }

    /// The effect an entry key names (`payment`, `payment#2`, …); None for a notification's key.
    pub fn from_key(key: &str) -> Option<Self> {
        let name = key.split_once(ATTEMPT_SEPARATOR).map_or(key, |(name, _)| name);
        Self::ALL.into_iter().find(|e| e.key() == name)
    }

    /// The ledger key of this effect in an attempt of the order: `payment` for the first attempt (the key
    /// every order had before retries existed), `payment#2` for the second, … Each attempt of an order (a
    /// manual retry, `nexus retry`) has its own entries, so the first attempt's tombstones do not refuse
    /// the second's effects, and a late command of the first cannot touch the second's.
    pub fn entry_key(self, attempt: u32) -> String {
        if attempt <= 1 { self.key().to_owned() } else { format!("{}{ATTEMPT_SEPARATOR}{attempt}", self.key()) }
    }

    /// The state of the entry while the effect holds.
    pub const fn applied(self) -> EffectState {
        match self {
            Self::Reservation => EffectState::Reserved,
            Self::Payment => EffectState::Charged,
            Self::Shipment => EffectState::Dispatched,
        }
    }

    /// The state after the compensation (or the tombstone when there was nothing to undo).
    pub const fn undone(self) -> EffectState {
        match self {
            Self::Reservation => EffectState::Released,
            Self::Payment => EffectState::Refunded,
            Self::Shipment => EffectState::Cancelled,
        }
    }

    /// The effect's deterministic id for an attempt of an order: the same however often the step runs.
    pub fn id(self, order_id: &str, attempt: u32) -> String {
        ids::effect_id(order_id, &self.entry_key(attempt))
    }
}

/// Where a ledger entry stands. Stored as `RESERVED`, `OUT_OF_STOCK`, … (the table's contract).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EffectState {
    Reserved,
    Released,
    /// A reservation refused for want of stock: recorded, so every copy of the command gets the same answer.
    OutOfStock,
    Charged,
    Refunded,
    Dispatched,
    Cancelled,
    /// A notification entry: the customer was told about the event.
    #[default]
    Notified,
}

/// Units of one SKU a reservation holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub sku: String,
    pub quantity: u64,
}

/// One entry of the ledger (table key: orderId + entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LedgerEntry {
    pub order_id: String,
    /// [`Effect::key`], or `notification#<eventId>` ([`LedgerEntry::notification_key`]).
    pub entry: String,
    pub effect_id: String,
    pub state: EffectState,
    /// A reservation's units per SKU.
    pub lines: Vec<ReservedLine>,
    /// A charge's amount (kept after the refund, so refunded money can be counted).
    pub amount_cents: u64,
    pub currency: String,
    /// A notification's recipient, hashed.
    pub email_hash: String,
    /// A notification's order status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    pub at: String,
}

impl LedgerEntry {
    /// A new entry of `effect` for an attempt of the order, in `state`, dated now.
    pub fn new(order_id: &str, attempt: u32, effect: Effect, state: EffectState) -> Self {
        Self {
            order_id: order_id.to_owned(),
            entry: effect.entry_key(attempt),
            effect_id: effect.id(order_id, attempt),
            state,
            at: super::now(),
            ..Self::default()
        }
    }

    /// The record that the customer was told about an event (one per event id).
    pub fn notification(order_id: &str, event_id: &str, status: OrderStatus, email_hash: &str) -> Self {
        Self {
            order_id: order_id.to_owned(),
            entry: Self::notification_key(event_id),
            effect_id: event_id.to_owned(),
            state: EffectState::Notified,
            email_hash: email_hash.to_owned(),
            status: Some(status),
            at: super::now(),
            ..Self::default()
        }
    }

    pub fn notification_key(event_id: &str) -> String {
        format!("notification#{event_id}")
    }

    /// The effect this entry records (None for a notification).
    pub fn effect(&self) -> Option<Effect> {
        Effect::from_key(&self.entry)
    }

    /// A reservation that holds stock, or a charge that holds money.
    pub fn holds(&self) -> bool {
        self.effect().is_some_and(|effect| self.state == effect.applied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_their_stored_names() {
        let names: Vec<String> = [EffectState::Reserved, EffectState::OutOfStock, EffectState::Cancelled]
            .iter()
            .map(|s| serde_json::to_value(s).expect("json").as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(names, ["RESERVED", "OUT_OF_STOCK", "CANCELLED"]);
    }

    #[test]
    fn an_entry_holds_only_in_its_applied_state() {
        let mut entry = LedgerEntry::new("o-1", 1, Effect::Payment, EffectState::Charged);
        assert!(entry.holds());
        entry.state = EffectState::Refunded;
        assert!(!entry.holds());
        assert_eq!(entry.effect_id, Effect::Payment.id("o-1", 1));
        let note = LedgerEntry::notification("o-1", "e-1", OrderStatus::Completed, "h");
        assert_eq!(note.entry, "notification#e-1");
        assert_eq!((note.effect(), note.holds()), (None, false));
    }

    #[test]
    fn each_attempt_has_its_own_entry_and_id() {
        assert_eq!(Effect::Payment.entry_key(1), "payment", "the first attempt keeps the original key");
        assert_eq!(Effect::Payment.entry_key(2), "payment#2");
        assert_ne!(Effect::Payment.id("o-1", 1), Effect::Payment.id("o-1", 2));
        let second = LedgerEntry::new("o-1", 2, Effect::Reservation, EffectState::Reserved);
        assert_eq!((second.effect(), second.holds()), (Some(Effect::Reservation), true));
        assert_eq!(Effect::from_key("notification#e-1"), None);
    }
}
