//! What a customer checks out with: the tier, the line items, how they pay and where it ships. The values
//! both the submission (as validated) and the order (as stored) are made of.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    #[default]
    Standard,
    Vip,
}

impl Tier {
    /// As stored and as the `tier` attribute and metric dimension carry it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::Vip => "VIP",
        }
    }
}

/// The most units of one line (docs/architecture.md §3, "Prices, tiers and limits").
pub const MAX_QUANTITY_PER_LINE: u32 = 10_000;
/// The highest unit price a checkout may quote, in minor units (1 000 000.00).
pub const MAX_UNIT_PRICE_CENTS: u64 = 100_000_000;
/// The highest order total, in minor units (10 000 000.00): over it, an order is rejected.
pub const MAX_ORDER_TOTAL_CENTS: u64 = 1_000_000_000;

/// A line as the submitter asks for it: the unit price it was shown, if the checkout sends one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedLine {
    pub sku: String,
    pub quantity: u32,
    pub quoted_unit_price_cents: Option<u64>,
}

/// A line as the order holds it: priced from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
}

impl LineItem {
    /// The line's total; `None` when it does not fit in a `u64`.
    pub fn total_cents(&self) -> Option<u64> {
        self.unit_price_cents.checked_mul(u64::from(self.quantity))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetails {
    pub method: String,
    pub token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

/// The order total: the sum of every line; `None` when it does not fit in a `u64`.
pub fn total_cents(items: &[LineItem]) -> Option<u64> {
    items.iter().try_fold(0_u64, |total, line| total.checked_add(line.total_cents()?))
}

/// Units per SKU (an order may list a SKU on several lines): what a reservation takes from stock.
pub fn quantities_by_sku(items: &[LineItem]) -> std::collections::BTreeMap<String, u64> {
    let mut quantities = std::collections::BTreeMap::new();
    for item in items {
        *quantities.entry(item.sku.clone()).or_insert(0) += u64::from(item.quantity);
    }
    quantities
}
