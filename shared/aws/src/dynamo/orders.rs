//! Orders and their event log: an order is created with its first event in one transaction, unless its id
//! exists; every change writes the next version and its event together, conditional on the version read.

use std::collections::HashMap;

use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::ports::{CreateOutcome, EventLog, OrderStore, PortError, PortResult};

use super::Dynamo;
use crate::ext::{cancelled, n, put, to_item, unavailable};

impl OrderStore for Dynamo {
    async fn get(&self, order_id: &str) -> PortResult<Option<Order>> {
        self.get_item("get order", &self.tables.orders, &[("orderId", order_id)]).await
    }

    async fn create(&self, order: &Order, event: &OrderEvent) -> PortResult<CreateOutcome> {
        let items = vec![
            put(&self.tables.orders, to_item("write order", order)?, "attribute_not_exists(orderId)", None)?,
            put(&self.tables.order_events, to_item("write event", event)?, "attribute_not_exists(orderId)", None)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) if e.as_service_error().and_then(cancelled).is_some_and(|c| c.condition_failed(0)) => {
                let existing =
                    self.get(&order.order_id).await?.ok_or(PortError::Conflict { operation: "create order" })?;
                Ok(CreateOutcome::AlreadyExists(Box::new(existing)))
            }
            Err(e) => Err(unavailable("create order", e)),
        }
    }

    async fn create_rejected(&self, order: &Order, event: &OrderEvent) -> PortResult<bool> {
        Ok(matches!(self.create(order, event).await?, CreateOutcome::Created))
    }

    async fn transition(&self, current: &Order, next: &Order, event: &OrderEvent) -> PortResult<()> {
        let version = HashMap::from([(":version".to_owned(), n(current.version))]);
        let items = vec![
            put(&self.tables.orders, to_item("write order", next)?, "version = :version", Some(version))?,
            put(&self.tables.order_events, to_item("write event", event)?, "attribute_not_exists(orderId)", None)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            // A failed version condition, or two writers racing on the item: either way another writer won.
            Err(e)
                if e.as_service_error().and_then(cancelled).is_some_and(|c| c.any_condition_failed() || c.conflict) =>
            {
                Err(PortError::Conflict { operation: "order transition" })
            }
            Err(e) => Err(unavailable("order transition", e)),
        }
    }
}

impl EventLog for Dynamo {
    async fn events(&self, order_id: &str) -> PortResult<Vec<OrderEvent>> {
        self.query_order(&self.tables.order_events, order_id).await
    }
}

impl Dynamo {
    /// Every order (a scan: for tools and checks, not for the request path).
    pub async fn all_orders(&self) -> PortResult<Vec<Order>> {
        self.scan_all(&self.tables.orders).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;
    use crate::dynamo::tests::tables;
    use crate::ext::tests::cancelled_with;

    fn order(version: u64) -> Order {
        Order { order_id: "o-1".into(), version, ..Order::default() }
    }

    #[tokio::test]
    async fn a_failed_version_condition_or_a_racing_writer_is_a_conflict() {
        for codes in [&["ConditionalCheckFailed", "None"][..], &["TransactionConflict", "None"][..]] {
            let reasons: Vec<&'static str> = codes.to_vec();
            let rule = mock!(Client::transact_write_items).then_error(move || cancelled_with(&reasons));
            let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&rule]), tables());
            let (current, next) = (order(3), order(4));
            let result = dynamo.transition(&current, &next, &next.event(None)).await;
            assert!(matches!(result, Err(PortError::Conflict { .. })), "{codes:?}: {result:?}");
        }
    }
}
