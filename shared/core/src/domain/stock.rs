//! A SKU's stock as the inventory table keeps it: what was loaded and what is left. Reservations move
//! units out of `available`; `initial − available` is what is reserved or sold, which the invariant
//! checker balances against the ledger.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StockItem {
    pub sku: String,
    pub available: u64,
    pub initial: u64,
}
