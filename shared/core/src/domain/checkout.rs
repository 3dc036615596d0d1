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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
}

impl LineItem {
    pub fn total_cents(&self) -> u64 {
        u64::from(self.quantity) * self.unit_price_cents
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

/// The order total: the sum of every line.
pub fn total_cents(items: &[LineItem]) -> u64 {
    items.iter().map(LineItem::total_cents).sum()
}

/// Units per SKU (an order may list a SKU on several lines): what a reservation takes from stock.
pub fn quantities_by_sku(items: &[LineItem]) -> std::collections::BTreeMap<String, u64> {
    let mut quantities = std::collections::BTreeMap::new();
    for item in items {
        *quantities.entry(item.sku.clone()).or_insert(0) += u64::from(item.quantity);
    }
    quantities
}
