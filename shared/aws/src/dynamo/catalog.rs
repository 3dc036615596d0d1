//! What the operator decides and intake reads: the catalog's unit prices (an attribute of each SKU's item
//! in the inventory table) and the customers' tiers (the customers table), with the operator's writes.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use nexus_core::domain::checkout::Tier;
use nexus_core::ports::{Catalog, CatalogEntries, PortResult};
use serde::{Deserialize, Serialize};

use super::Dynamo;
use crate::ext::{built, from_item, n, s, to_item, unavailable};

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
    /// One BatchGetItem over both tables (more only for over 99 SKUs, or keys DynamoDB left unprocessed).
    async fn lookup(&self, skus: &BTreeSet<String>, customer_id: &str) -> PortResult<CatalogEntries> {
        let (inventory, customers) = (&self.tables.inventory, &self.tables.customers);
        let mut entries = CatalogEntries::default();
        let all: Vec<&String> = skus.iter().collect();
        // BatchGetItem takes 100 keys at most: the customer's goes with the first chunk of SKUs.
        let chunks: Vec<&[&String]> = if all.is_empty() { vec![&[]] } else { all.chunks(99).collect() };
        for (index, chunk) in chunks.into_iter().enumerate() {
            let mut request = HashMap::new();
            if !chunk.is_empty() {
                let keys = chunk.iter().map(|sku| HashMap::from([("sku".to_owned(), s(sku))])).collect();
                let prices = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression(format!("sku, {UNIT_PRICE_ATTRIBUTE}"))
                    .consistent_read(true);
                request.insert(inventory.clone(), built("build batch get", prices.build())?);
            }
            if index == 0 {
                let key = HashMap::from([("customerId".to_owned(), s(customer_id))]);
                let customer = KeysAndAttributes::builder().keys(key).consistent_read(true);
                request.insert(customers.clone(), built("build batch get", customer.build())?);
            }
            let mut request = Some(request);
            while let Some(keys) = request.take().filter(|keys| !keys.is_empty()) {
                let output = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(keys))
                    .send()
                    .await
                    .map_err(|e| unavailable("look up prices and tier", e))?;
                let mut responses = output.responses.unwrap_or_default();
                for item in responses.remove(inventory).unwrap_or_default() {
                    let price = match item.get(UNIT_PRICE_ATTRIBUTE) {
                        Some(AttributeValue::N(price)) => price.parse::<u64>().ok(),
                        _ => None,
                    };
                    // A SKU without a readable price is not for sale.
                    if let (Some(AttributeValue::S(sku)), Some(price)) = (item.get("sku"), price) {
                        entries.prices.insert(sku.clone(), price);
                    }
                }
                if let Some(item) = responses.remove(customers).and_then(|items| items.into_iter().next()) {
                    entries.tier = Some(from_item::<CustomerRecord>("read customer", item)?.tier);
                }
                request = output.unprocessed_keys;
            }
        }
        Ok(entries)
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

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;
    use crate::dynamo::tests::tables;

    #[tokio::test]
    async fn the_prices_and_the_tier_come_in_one_request() {
        let lookup = mock!(Client::batch_get_item)
            .match_requests(|r| r.request_items().is_some_and(|items| items.len() == 2))
            .then_output(|| {
                let priced = HashMap::from([("sku".to_owned(), s("A")), (UNIT_PRICE_ATTRIBUTE.to_owned(), n(1500))]);
                let unpriced = HashMap::from([("sku".to_owned(), s("B"))]);
                let vip = HashMap::from([("customerId".to_owned(), s("c-1")), ("tier".to_owned(), s("VIP"))]);
                BatchGetItemOutput::builder()
                    .responses("inventory", vec![priced, unpriced])
                    .responses("customers", vec![vip])
                    .build()
            });
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&lookup]), tables());
        let skus: BTreeSet<String> = ["A", "B"].map(String::from).into();
        let entries = dynamo.lookup(&skus, "c-1").await.expect("one request answers both");
        assert_eq!(entries.prices, [("A".to_owned(), 1500)].into(), "a SKU without a price is not for sale");
        assert_eq!(entries.tier, Some(Tier::Vip));
        assert_eq!(lookup.num_calls(), 1);
    }
}
