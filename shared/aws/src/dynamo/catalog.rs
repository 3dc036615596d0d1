//! What the operator decides and intake reads: the catalog's unit prices (an attribute of each SKU's item
//! in the inventory table) and the customers' tiers (the customers table), with the operator's writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use nexus_core::domain::checkout::Tier;
use nexus_core::ports::{Catalog, PortResult};
use serde::{Deserialize, Serialize};

use super::Dynamo;
use crate::ext::{built, n, s, to_item, unavailable};

/// The contract's attribute of a SKU's unit price (minor units) in the inventory table.
pub const UNIT_PRICE_ATTRIBUTE: &str = "unitPriceCents";

/// A customer as the customers table holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRecord {
    pub customer_id: String,
    pub tier: Tier,
}

impl Catalog for Dynamo {
    async fn prices(&self, skus: &BTreeSet<String>) -> PortResult<BTreeMap<String, u64>> {
        let mut prices = BTreeMap::new();
        let all: Vec<&String> = skus.iter().collect();
        // BatchGetItem takes 100 keys at most.
        for chunk in all.chunks(100) {
            let keys = chunk.iter().map(|sku| HashMap::from([("sku".to_owned(), s(sku))])).collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression(format!("sku, {UNIT_PRICE_ATTRIBUTE}"))
                .consistent_read(true);
            let mut request = Some(built("build batch get", request.build())?);
            while let Some(keys) = request.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.tables.inventory, keys)
                    .send()
                    .await
                    .map_err(|e| unavailable("look up prices", e))?;
                for item in output.responses.unwrap_or_default().remove(&self.tables.inventory).unwrap_or_default() {
                    let price = match item.get(UNIT_PRICE_ATTRIBUTE) {
                        Some(AttributeValue::N(price)) => price.parse::<u64>().ok(),
                        _ => None,
                    };
                    // A SKU without a readable price is not for sale.
                    if let (Some(AttributeValue::S(sku)), Some(price)) = (item.get("sku"), price) {
                        prices.insert(sku.clone(), price);
                    }
                }
                request = output.unprocessed_keys.unwrap_or_default().remove(&self.tables.inventory);
            }
        }
        Ok(prices)
    }

    async fn tier(&self, customer_id: &str) -> PortResult<Option<Tier>> {
        let record: Option<CustomerRecord> =
            self.get_item("get customer", &self.tables.customers, &[("customerId", customer_id)]).await?;
        Ok(record.map(|r| r.tier))
    }
}

impl Dynamo {
    /// Sets the unit price of a SKU already in the inventory table (`nexus inventory`).
    pub async fn set_price(&self, sku: &str, unit_price_cents: u64) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.tables.inventory)
            .key("sku", s(sku))
            .condition_expression("attribute_exists(sku)")
            .update_expression("SET #price = :price")
            .expression_attribute_names("#price", UNIT_PRICE_ATTRIBUTE)
            .expression_attribute_values(":price", n(unit_price_cents))
            .send()
            .await
            .map_err(|e| unavailable("set price", e))?;
        Ok(())
    }

    /// Records a customer's tier (`nexus customers set`).
    pub async fn set_customer(&self, record: &CustomerRecord) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.customers)
            .set_item(Some(to_item("put customer", record)?))
            .send()
            .await
            .map_err(|e| unavailable("put customer", e))?;
        Ok(())
    }

    /// A customer's record, if the operator made one.
    pub async fn customer(&self, customer_id: &str) -> PortResult<Option<CustomerRecord>> {
        self.get_item("get customer", &self.tables.customers, &[("customerId", customer_id)]).await
    }
}
