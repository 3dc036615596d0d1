//! Stock and reservations: a reservation is one transaction of the ledger entry (on
//! `attribute_not_exists`), a conditional decrement per SKU (`available >= :q`) and the order's transition
//! with its event, so all line items are reserved or none, with the order moved, and stock never goes below
//! zero whatever the concurrency. Out of stock is recorded in the ledger, so every copy of the command
//! answers the same. A release is the ledger's undo with the
//! restock of the reserved lines in the same transaction.

use aws_sdk_dynamodb::types::Update;
use nexus_core::domain::checkout::{LineItem, quantities_by_sku};
use nexus_core::domain::ledger::{Effect, EffectState, LedgerEntry, ReservedLine};
use nexus_core::domain::stock::StockItem;
use nexus_core::ports::{Inventory, PortError, PortResult, ReserveOutcome, Transition, UndoOutcome};

use super::Dynamo;
use super::ledger::Begin;
use crate::ext::{cancelled, n, retry_on_condition, s, unavailable, update};

/// What an existing reservation entry answers a (repeated) reserve command.
fn reservation_outcome(state: Option<EffectState>) -> ReserveOutcome {
    match state {
        Some(EffectState::Reserved) => ReserveOutcome::AlreadyReserved,
        Some(EffectState::OutOfStock) => ReserveOutcome::OutOfStock,
        _ => ReserveOutcome::AlreadyReleased,
    }
}

impl Inventory for Dynamo {
    async fn reserve(
        &self,
        order_id: &str,
        attempt: u32,
        items: &[LineItem],
        moving: Option<&Transition>,
    ) -> PortResult<ReserveOutcome> {
        // One update per SKU: a transaction may not touch an item twice.
        let quantities = quantities_by_sku(items);
        let mut entry = LedgerEntry::new(order_id, attempt, Effect::Reservation, EffectState::Reserved);
        entry.lines =
            quantities.iter().map(|(sku, quantity)| ReservedLine { sku: sku.clone(), quantity: *quantity }).collect();
        let mut writes = vec![self.entry_put(&entry)?];
        for (sku, quantity) in &quantities {
            writes.push(update(
                Update::builder()
                    .table_name(&self.tables.inventory)
                    .key("sku", s(sku))
                    .update_expression("SET available = available - :q")
                    .condition_expression("attribute_exists(sku) AND available >= :q")
                    .expression_attribute_values(":q", n(*quantity)),
            )?);
        }
        let stock_writes = writes.len();
        if let Some(moving) = moving {
            writes.extend(self.transition_items(&moving.current, &moving.next, &moving.event)?);
        }
        let transition = stock_writes..writes.len();
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(ReserveOutcome::Reserved),
            Err(e) => match e.as_service_error().and_then(cancelled) {
                Some(reasons) if reasons.condition_failed(0) => {
                    let state = self.ledger_entry(order_id, &entry.entry).await?.map(|e| e.state);
                    Ok(reservation_outcome(state))
                }
                // The order's version moved on (or another writer raced on an item): nothing written, and
                // the step re-reads the order before it decides anything about the stock.
                Some(reasons) if reasons.conflict || transition.clone().any(|i| reasons.condition_failed(i)) => {
                    Err(PortError::Conflict { operation: "reserve stock with the transition" })
                }
                Some(reasons) if reasons.any_condition_failed() => {
                    // Out of stock is a decision, not a moment's reading: recorded, so that a later copy of
                    // this command cannot reserve once stock is freed (the saga is already cancelling).
                    let refusal = LedgerEntry::new(order_id, attempt, Effect::Reservation, EffectState::OutOfStock);
                    match self.begin(&refusal).await? {
                        Begin::New => Ok(ReserveOutcome::OutOfStock),
                        Begin::Exists(existing) => Ok(reservation_outcome(Some(existing.state))),
                    }
                }
                _ => Err(unavailable("reserve stock", e)),
            },
        }
    }

    async fn release(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        // The reserved units go back to stock in the same transaction as the ledger flip.
        self.undo((order_id, attempt), Effect::Reservation, |reservation| {
            reservation
                .lines
                .iter()
                .map(|line| {
                    update(
                        Update::builder()
                            .table_name(&self.tables.inventory)
                            .key("sku", s(&line.sku))
                            .update_expression("SET available = available + :q")
                            .expression_attribute_values(":q", n(line.quantity)),
                    )
                })
                .collect()
        })
        .await
    }
}

impl Dynamo {
    /// Every SKU's stock.
    pub async fn all_stock(&self) -> PortResult<Vec<StockItem>> {
        self.scan_all(&self.tables.inventory).await
    }

    /// One SKU's stock (None: not in the catalog).
    pub async fn stock(&self, sku: &str) -> PortResult<Option<StockItem>> {
        self.get_item("get stock", &self.tables.inventory, &[("sku", sku)]).await
    }

    /// Sets a SKU's available units, creating the SKU when it is new. `initial` moves by the same amount,
    /// so "initial = available + units sold" keeps holding; conditional on the value read, so a concurrent
    /// reservation is never overwritten (a conflict re-reads).
    pub async fn set_stock(&self, sku: &str, available: u64) -> PortResult<StockItem> {
        retry_on_condition("set stock", || async move {
            let current = self.stock(sku).await?;
            // One conditional update either way (UpdateItem creates a missing item): on the value read, or on
            // the SKU still being absent.
            let (next, request) = match current {
                None => (
                    StockItem { sku: sku.to_owned(), available, initial: available, unit_price_cents: None },
                    self.client.update_item().condition_expression("attribute_not_exists(sku)"),
                ),
                Some(old) => (
                    StockItem {
                        sku: sku.to_owned(),
                        available,
                        initial: (old.initial + available).saturating_sub(old.available),
                        unit_price_cents: old.unit_price_cents,
                    },
                    self.client
                        .update_item()
                        .condition_expression("available = :read")
                        .expression_attribute_values(":read", n(old.available)),
                ),
            };
            let result = request
                .table_name(&self.tables.inventory)
                .key("sku", s(sku))
                .update_expression("SET available = :available, initial = :initial")
                .expression_attribute_values(":available", n(next.available))
                .expression_attribute_values(":initial", n(next.initial))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Some(next)),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(None),
                Err(e) => Err(unavailable("write stock", e)),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;
    use crate::dynamo::tests::tables;
    use crate::ext::tests::cancelled_with;
    use crate::ext::{to_attribute, to_item};
    use nexus_core::domain::order::Order;
    use nexus_core::domain::status::OrderStatus;

    #[tokio::test]
    async fn a_short_sku_is_out_of_stock_and_a_taken_reservation_is_a_replay() {
        let short = mock!(Client::transact_write_items)
            .then_error(|| cancelled_with(&["None", "None", "ConditionalCheckFailed"]));
        // The refusal is recorded, so a later copy of the command answers the same.
        let out_of_stock = to_attribute(EffectState::OutOfStock).expect("attribute");
        let recorded = mock!(Client::put_item)
            .match_requests(move |r| r.item().and_then(|i| i.get("state")) == Some(&out_of_stock))
            .then_output(|| PutItemOutput::builder().build());
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&short, &recorded]), tables());
        let items = [
            LineItem { sku: "A".into(), quantity: 1, unit_price_cents: 1 },
            LineItem { sku: "B".into(), quantity: 9, unit_price_cents: 1 },
        ];
        assert_eq!(dynamo.reserve("o-1", 1, &items, None).await.expect("handled"), ReserveOutcome::OutOfStock);
        assert_eq!(recorded.num_calls(), 1);

        // A later copy, with stock back: the ledger entry exists, and says out of stock.
        let taken = mock!(Client::transact_write_items)
            .then_error(|| cancelled_with(&["ConditionalCheckFailed", "None", "None"]));
        let refusal = mock!(Client::get_item).then_output(|| {
            let entry = LedgerEntry::new("o-1", 1, Effect::Reservation, EffectState::OutOfStock);
            GetItemOutput::builder().set_item(Some(to_item("entry", &entry).expect("item"))).build()
        });
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&taken, &refusal]), tables());
        assert_eq!(dynamo.reserve("o-1", 1, &items, None).await.expect("handled"), ReserveOutcome::OutOfStock);
    }

    fn moving() -> Transition {
        let current = Order { order_id: "o-1".into(), version: 1, ..Order::default() };
        let (next, event) = current.advanced(OrderStatus::InventoryReserved, None, "2026-12-05T00:00:00Z");
        Transition { current, next, event }
    }

    #[tokio::test]
    async fn a_reservation_moves_the_order_in_its_own_transaction_and_a_moved_order_writes_nothing() {
        let items = [LineItem { sku: "A".into(), quantity: 1, unit_price_cents: 1 }];
        // The entry, the stock, then the order's update on its version and its event: one request.
        let together = mock!(Client::transact_write_items)
            .match_requests(|r| {
                let items = r.transact_items();
                items.len() == 4
                    && items[0].put().is_some_and(|p| p.table_name() == "inventory-ledger")
                    && items[1].update().is_some_and(|u| u.table_name() == "inventory")
                    && items[2].update().is_some_and(|u| {
                        u.table_name() == "orders" && u.condition_expression() == Some("#version = :version")
                    })
                    && items[3].put().is_some_and(|p| p.table_name() == "events")
            })
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&together]), tables());
        let reserved = dynamo.reserve("o-1", 1, &items, Some(&moving())).await.expect("handled");
        assert_eq!((reserved, together.num_calls()), (ReserveOutcome::Reserved, 1));

        // The order's version moved on (a compensation overtook the step), with the stock short too: a
        // conflict, and no out-of-stock decision is recorded for an order the step no longer runs.
        let overtaken = mock!(Client::transact_write_items)
            .then_error(|| cancelled_with(&["None", "ConditionalCheckFailed", "ConditionalCheckFailed", "None"]));
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&overtaken]), tables());
        let result = dynamo.reserve("o-1", 1, &items, Some(&moving())).await;
        assert!(matches!(result, Err(PortError::Conflict { .. })), "{result:?}");

        // An earlier copy reserved: nothing written now, and the step is told so.
        let repeat = mock!(Client::transact_write_items)
            .then_error(|| cancelled_with(&["ConditionalCheckFailed", "None", "ConditionalCheckFailed", "None"]));
        let reservation = mock!(Client::get_item).then_output(|| {
            let entry = LedgerEntry::new("o-1", 1, Effect::Reservation, EffectState::Reserved);
            GetItemOutput::builder().set_item(Some(to_item("entry", &entry).expect("item"))).build()
        });
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&repeat, &reservation]), tables());
        let result = dynamo.reserve("o-1", 1, &items, Some(&moving())).await.expect("handled");
        assert_eq!(result, ReserveOutcome::AlreadyReserved);
    }
}
