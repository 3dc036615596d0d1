//! A SKU's stock and price as the inventory table keeps them: what was loaded and what is left. Reservations move
//! units out of `available`; `initial − available` is what is reserved or sold, which the invariant
//! checker balances against the ledger.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StockItem {
    pub sku: String,
    pub available: u64,
    pub initial: u64,
    /// The catalog's unit price (minor units); a SKU without one is not for sale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price_cents: Option<u64>,
}
