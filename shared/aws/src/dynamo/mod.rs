//! DynamoDB adapters, one module per aggregate: [`orders`] (orders and their event log), [`ledger`] (the
//! effects: payments, shipments, notifications), [`inventory`] (stock and reservations), [`idempotency`]
//! (submission keys) and [`settings`] (chaos). Every write that must not happen twice is conditional:
//! orders on their `version`, effects on `attribute_not_exists` of their ledger entry, undo on the entry's
//! state (with a tombstone when there is nothing to undo), stock on `available >= :q` inside one
//! transaction with the reservation entry.

pub mod catalog;
pub mod idempotency;
pub mod inventory;
pub mod ledger;
pub mod orders;
pub mod settings;

use aws_sdk_dynamodb::Client;
use nexus_core::domain::admission::SagaLimit;
use nexus_core::domain::ledger::Effect;
use nexus_core::ports::PortResult;
use serde::Deserialize;

use crate::ext::{from_item, unavailable};

/// Table names (the functions' environment, or a stack's outputs).
#[derive(Debug, Clone)]
pub struct Tables {
    pub idempotency: String,
    pub settings: String,
    pub orders: String,
    pub order_events: String,
    pub inventory: String,
    pub ledger: Ledgers,
    pub customers: String,
}

/// The effects ledger's tables, one per writer: each function's role may write only its own
/// (`template.yaml`; `shared/core/tests/least_privilege.rs`). An order's ledger is the four together.
#[derive(Debug, Clone)]
pub struct Ledgers {
    /// Reservations (inventory).
    pub inventory: String,
    /// Charges (payment).
    pub payment: String,
    /// Shipments (shipping).
    pub shipping: String,
    /// Notifications (notification).
    pub notification: String,
}

impl Ledgers {
    /// The table of an entry, by its key: an effect's (`payment`, `payment#2`, …) or a notification's.
    pub fn of(&self, entry: &str) -> &str {
        match Effect::from_key(entry) {
            Some(Effect::Reservation) => &self.inventory,
            Some(Effect::Payment) => &self.payment,
            Some(Effect::Shipment) => &self.shipping,
            None => &self.notification,
        }
    }

    pub fn all(&self) -> [&str; 4] {
        [&self.inventory, &self.payment, &self.shipping, &self.notification]
    }
}

/// Every DynamoDB-backed port, over one client.
#[derive(Clone)]
pub struct Dynamo {
    client: Client,
    tables: Tables,
    /// The order attributes this adapter reads (all when None): a saga function's projection.
    order_projection: Option<Vec<&'static str>>,
    /// The bound of standard sagas in flight its order writes keep (order-intake's; none elsewhere).
    saga_limit: SagaLimit,
}

impl Dynamo {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables, order_projection: None, saga_limit: SagaLimit::default() }
    }

    /// Creates standard orders within `limit` sagas in flight, and frees a slot when one ends
    /// (`nexus_core::domain::admission`).
    pub fn with_saga_limit(mut self, limit: SagaLimit) -> Self {
        self.saga_limit = limit;
        self
    }

    /// Reads orders with only `attributes` (the ones the function's IAM policy lets it read; see
    /// `nexus_core::services::OrderReads`). Its transitions write only the saga's attributes, so what it
    /// did not read is never overwritten.
    pub fn reading_orders(mut self, attributes: Vec<&'static str>) -> Self {
        self.order_projection = Some(attributes);
        self
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Every item of `table`, read with a paginated consistent scan (for tools and checks, never on the
    /// request path).
    pub async fn scan_all<T: for<'de> Deserialize<'de>>(&self, table: &str) -> PortResult<Vec<T>> {
        let mut items = Vec::new();
        let mut pages = self.client.scan().table_name(table).consistent_read(true).into_paginator().items().send();
        while let Some(item) = pages.next().await {
            items.push(from_item("read scanned item", item.map_err(|e| unavailable("scan", e))?)?);
        }
        Ok(items)
    }

    /// At most `limit` items of `table` (eventually consistent scan pages, read until the limit), and
    /// whether more were left: for views refreshed every few seconds, whose cost must not grow with the table.
    pub async fn scan_upto<T: for<'de> Deserialize<'de>>(
        &self,
        table: &str,
        limit: usize,
    ) -> PortResult<(Vec<T>, bool)> {
        let mut items = Vec::new();
        let mut pages = self.client.scan().table_name(table).into_paginator().items().send();
        while let Some(item) = pages.next().await {
            if items.len() == limit {
                return Ok((items, true));
            }
            items.push(from_item("read scanned item", item.map_err(|e| unavailable("scan", e))?)?);
        }
        Ok((items, false))
    }

    /// The item of `table` under `key` (attribute name, string value), consistently read.
    async fn get_item<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        table: &str,
        key: &[(&str, &str)],
    ) -> PortResult<Option<T>> {
        self.get_projected(operation, table, key, None).await
    }

    /// As [`Self::get_item`], reading only `attributes` when given.
    async fn get_projected<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        table: &str,
        key: &[(&str, &str)],
        attributes: Option<&[&str]>,
    ) -> PortResult<Option<T>> {
        let mut request = self.client.get_item().table_name(table).consistent_read(true);
        for (name, value) in key {
            request = request.key(*name, crate::ext::s(value));
        }
        if let Some(attributes) = attributes {
            // Through placeholders: `status` and others are reserved words of DynamoDB's expressions.
            let mut placeholders = Vec::with_capacity(attributes.len());
            for (i, attribute) in attributes.iter().enumerate() {
                let placeholder = format!("#a{i}");
                request = request.expression_attribute_names(&placeholder, *attribute);
                placeholders.push(placeholder);
            }
            request = request.projection_expression(placeholders.join(", "));
        }
        let output = request.send().await.map_err(|e| unavailable(operation, e))?;
        output.item.map(|item| from_item(operation, item)).transpose()
    }

    /// Every item of `table` under the partition key `orderId = order_id`, consistently read, in sort order.
    async fn query_order<T: for<'de> Deserialize<'de>>(&self, table: &str, order_id: &str) -> PortResult<Vec<T>> {
        let mut items = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("orderId = :id")
            .expression_attribute_values(":id", crate::ext::s(order_id))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            items.push(from_item("read queried item", item.map_err(|e| unavailable("query", e))?)?);
        }
        Ok(items)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Tables;

    pub(crate) fn tables() -> Tables {
        Tables {
            idempotency: "idempotency".into(),
            settings: "settings".into(),
            orders: "orders".into(),
            order_events: "events".into(),
            inventory: "inventory".into(),
            ledger: super::Ledgers {
                inventory: "inventory-ledger".into(),
                payment: "payment-ledger".into(),
                shipping: "shipping-ledger".into(),
                notification: "notification-ledger".into(),
            },
            customers: "customers".into(),
        }
    }
}
