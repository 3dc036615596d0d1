//! DynamoDB adapters. Every write that must not happen twice is conditional: orders on their `version`,
//! effects (reservation, payment, shipment, notification) on `attribute_not_exists` of their ledger entry,
//! and undo on the entry's state, with a tombstone when there is nothing to undo so a late effect cannot
//! slip in after its compensation. Stock changes are conditional decrements inside one transaction with the
//! reservation entry: all line items or none, never below zero.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::unavailable;
use crate::domain::messages::OrderEvent;
use crate::domain::order::{Address, LineItem, Order};
use crate::domain::{self};
use crate::ports::*;

/// Table names, from the functions' environment.
#[derive(Debug, Clone)]
pub struct Tables {
    pub idempotency: String,
    pub settings: String,
    pub orders: String,
    pub order_events: String,
    pub inventory: String,
    pub ledger: String,
}

#[derive(Clone)]
pub struct Dynamo {
    client: Client,
    tables: Tables,
}

impl Dynamo {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables }
    }
}

type Item = HashMap<String, AttributeValue>;

fn to_item<T: Serialize>(operation: &'static str, value: &T) -> PortResult<Item> {
    serde_dynamo::to_item(value).map_err(|e| PortError::Corrupt { operation, message: e.to_string() })
}

fn from_item<T: for<'de> Deserialize<'de>>(operation: &'static str, item: Item) -> PortResult<T> {
    serde_dynamo::from_item(item).map_err(|e| PortError::Corrupt { operation, message: e.to_string() })
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn put(table: &str, item: Item, condition: &str, values: Option<Item>) -> PortResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .map_err(|e| PortError::Corrupt { operation: "build put", message: e.to_string() })?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Which items of a cancelled transaction failed their condition (None: cancelled for another reason).
fn failed_conditions(error: &TransactWriteItemsError) -> Option<Vec<bool>> {
    match error {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
            Some(cancelled.cancellation_reasons().iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect())
        }
        _ => None,
    }
}

impl OrderStore for Dynamo {
    async fn get(&self, order_id: &str) -> PortResult<Option<Order>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.orders)
            .key("orderId", s(order_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("get order", e))?;
        output.item.map(|item| from_item("read order", item)).transpose()
    }

    async fn create(&self, order: &Order, event: &OrderEvent) -> PortResult<CreateOutcome> {
        let items = vec![
            put(&self.tables.orders, to_item("write order", order)?, "attribute_not_exists(orderId)", None)?,
            put(&self.tables.order_events, to_item("write event", event)?, "attribute_not_exists(orderId)", None)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) if e.as_service_error().and_then(failed_conditions).is_some_and(|f| f.first() == Some(&true)) => {
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
            Err(e) if e.as_service_error().and_then(failed_conditions).is_some_and(|f| f.contains(&true)) => {
                Err(PortError::Conflict { operation: "order transition" })
            }
            // Two writers racing on one item also cancel the transaction (TransactionConflict): a conflict.
            Err(e)
                if format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e))
                    .contains("TransactionConflict") =>
            {
                Err(PortError::Conflict { operation: "order transition" })
            }
            Err(e) => Err(unavailable("order transition", e)),
        }
    }
}

impl IdempotencyStore for Dynamo {
    async fn claim(&self, key: &str, order_id: &str, payload_hash: &str, expires_at: i64) -> PortResult<Claim> {
        let now = chrono::Utc::now().timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.idempotency)
            .item("idempotencyKey", s(key))
            .item("orderId", s(order_id))
            .item("payloadHash", s(payload_hash))
            .item("status", s("IN_PROGRESS"))
            .item("expiresAt", AttributeValue::N(expires_at.to_string()))
            // TTL deletes lazily: an expired record still present counts as absent.
            .condition_expression("attribute_not_exists(idempotencyKey) OR expiresAt < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.tables.idempotency)
                    .key("idempotencyKey", s(key))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| unavailable("read idempotency record", e))?
                    .item
                    .ok_or(PortError::Conflict { operation: "idempotency claim" })?;
                let text = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(v)) => v.clone(),
                    _ => String::new(),
                };
                Ok(Claim::Existing { order_id: text("orderId"), payload_hash: text("payloadHash") })
            }
            Err(e) => Err(unavailable("claim idempotency key", e)),
        }
    }

    async fn complete(&self, key: &str) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.tables.idempotency)
            .key("idempotencyKey", s(key))
            .update_expression("SET #status = :completed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .send()
            .await
            .map_err(|e| unavailable("complete idempotency record", e))?;
        Ok(())
    }
}

/// The chaos settings live in one item of the settings table.
const CHAOS_ITEM: &str = "chaos";

impl crate::chaos::ChaosSource for Dynamo {
    async fn load(&self) -> PortResult<crate::chaos::ChaosSettings> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.settings)
            .key("name", s(CHAOS_ITEM))
            .send()
            .await
            .map_err(|e| unavailable("read chaos settings", e))?;
        output
            .item
            .map_or_else(|| Ok(crate::chaos::ChaosSettings::default()), |item| from_item("read chaos settings", item))
    }
}

impl Dynamo {
    /// Replaces the chaos settings (an empty set clears them).
    pub async fn save_chaos(&self, settings: &crate::chaos::ChaosSettings) -> PortResult<()> {
        let mut item = to_item("write chaos settings", settings)?;
        item.insert("name".into(), s(CHAOS_ITEM));
        self.client
            .put_item()
            .table_name(&self.tables.settings)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("write chaos settings", e))?;
        Ok(())
    }
}

impl EventLog for Dynamo {
    async fn events(&self, order_id: &str) -> PortResult<Vec<OrderEvent>> {
        let mut events = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.tables.order_events)
            .key_condition_expression("orderId = :id")
            .expression_attribute_values(":id", s(order_id))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            events.push(from_item("read event", item.map_err(|e| unavailable("query events", e))?)?);
        }
        Ok(events)
    }
}

/// One entry of the effects ledger (table key: orderId + entry).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LedgerEntry {
    pub order_id: String,
    /// `reservation`, `payment`, `shipment` or `notification#<eventId>`.
    pub entry: String,
    pub effect_id: String,
    pub state: String,
    pub lines: Vec<ReservedLine>,
    pub amount_cents: u64,
    pub currency: String,
    pub email_hash: String,
    pub at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub sku: String,
    pub quantity: u64,
}

const RESERVED: &str = "RESERVED";
const RELEASED: &str = "RELEASED";
/// A reservation refused for want of stock: recorded, so every copy of the command gets the same answer.
const OUT_OF_STOCK: &str = "OUT_OF_STOCK";
const CHARGED: &str = "CHARGED";
const REFUNDED: &str = "REFUNDED";
const DISPATCHED: &str = "DISPATCHED";
const SHIPMENT_CANCELLED: &str = "CANCELLED";
/// How many times an undo re-reads after losing a race before reporting a conflict (the message retries).
const UNDO_ATTEMPTS: usize = 5;

enum Begin {
    New,
    Exists(LedgerEntry),
}

enum Undo {
    Undone,
    AlreadyUndone,
    Nothing,
}

impl Dynamo {
    async fn ledger_entry(&self, order_id: &str, entry: &str) -> PortResult<Option<LedgerEntry>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.ledger)
            .key("orderId", s(order_id))
            .key("entry", s(entry))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("get ledger entry", e))?;
        output.item.map(|item| from_item("read ledger entry", item)).transpose()
    }

    /// Puts `entry` unless one exists for the same order and kind.
    async fn begin(&self, entry: &LedgerEntry) -> PortResult<Begin> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(to_item("write ledger entry", entry)?))
            .condition_expression("attribute_not_exists(orderId)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Begin::New),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                let existing = self.ledger_entry(&entry.order_id, &entry.entry).await?;
                existing.map(Begin::Exists).ok_or(PortError::Conflict { operation: "ledger entry" })
            }
            Err(e) => Err(unavailable("put ledger entry", e)),
        }
    }

    /// Flips the entry from `active` to `undone`, or leaves an `undone` tombstone when there is none.
    async fn undo(&self, order_id: &str, kind: &str, effect_id: &str, active: &str, undone: &str) -> PortResult<Undo> {
        for _ in 0..UNDO_ATTEMPTS {
            match self.ledger_entry(order_id, kind).await? {
                Some(entry) if entry.state == undone => return Ok(Undo::AlreadyUndone),
                Some(_) => {
                    let result = self
                        .client
                        .update_item()
                        .table_name(&self.tables.ledger)
                        .key("orderId", s(order_id))
                        .key("entry", s(kind))
                        .update_expression("SET #state = :undone, #at = :at")
                        .condition_expression("#state = :active")
                        .expression_attribute_names("#state", "state")
                        .expression_attribute_names("#at", "at")
                        .expression_attribute_values(":undone", s(undone))
                        .expression_attribute_values(":active", s(active))
                        .expression_attribute_values(":at", s(&domain::now()))
                        .send()
                        .await;
                    match result {
                        Ok(_) => return Ok(Undo::Undone),
                        Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                            continue;
                        }
                        Err(e) => return Err(unavailable("undo ledger entry", e)),
                    }
                }
                None => {
                    let tombstone = LedgerEntry {
                        order_id: order_id.to_owned(),
                        entry: kind.to_owned(),
                        effect_id: effect_id.to_owned(),
                        state: undone.to_owned(),
                        at: domain::now(),
                        ..LedgerEntry::default()
                    };
                    if let Begin::New = self.begin(&tombstone).await? {
                        return Ok(Undo::Nothing);
                    }
                }
            }
        }
        Err(PortError::Conflict { operation: "undo ledger entry" })
    }

    fn entry(order_id: &str, kind: &str, effect_id: &str, state: &str) -> LedgerEntry {
        LedgerEntry {
            order_id: order_id.to_owned(),
            entry: kind.to_owned(),
            effect_id: effect_id.to_owned(),
            state: state.to_owned(),
            at: domain::now(),
            ..LedgerEntry::default()
        }
    }

    /// Every item of `table`, read with a paginated consistent scan.
    async fn scan_all<T: for<'de> Deserialize<'de>>(&self, table: &str) -> PortResult<Vec<T>> {
        let mut items = Vec::new();
        let mut pages = self.client.scan().table_name(table).consistent_read(true).into_paginator().items().send();
        while let Some(item) = pages.next().await {
            items.push(from_item("read scanned item", item.map_err(|e| unavailable("scan", e))?)?);
        }
        Ok(items)
    }

    /// Every order (a scan: for tools and checks, not for the request path).
    pub async fn all_orders(&self) -> PortResult<Vec<Order>> {
        self.scan_all(&self.tables.orders).await
    }

    /// Every SKU's stock.
    pub async fn all_stock(&self) -> PortResult<Vec<crate::invariants::StockItem>> {
        self.scan_all(&self.tables.inventory).await
    }

    /// Sets a SKU's available units, creating the SKU when it is new. `initial` moves by the same amount,
    /// so "initial = available + units sold" keeps holding; conditional on the value read, so a concurrent
    /// reservation is never overwritten (a conflict re-reads).
    pub async fn set_stock(&self, sku: &str, available: u64) -> PortResult<crate::invariants::StockItem> {
        for _ in 0..8 {
            let current = self
                .client
                .get_item()
                .table_name(&self.tables.inventory)
                .key("sku", s(sku))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| unavailable("get stock", e))?
                .item
                .map(|item| from_item::<crate::invariants::StockItem>("read stock", item))
                .transpose()?;
            // One conditional update either way (UpdateItem creates a missing item): on the value read, or on
            // the SKU still being absent.
            let (next, request) = match current {
                None => (
                    crate::invariants::StockItem { sku: sku.to_owned(), available, initial: available },
                    self.client.update_item().condition_expression("attribute_not_exists(sku)"),
                ),
                Some(old) => (
                    crate::invariants::StockItem {
                        sku: sku.to_owned(),
                        available,
                        initial: (old.initial + available).saturating_sub(old.available),
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
                Ok(_) => return Ok(next),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(unavailable("write stock", e)),
            }
        }
        Err(PortError::Conflict { operation: "set stock" })
    }

    /// All orders, events, stock and ledger entries, for the invariant checker. Not atomic across tables:
    /// check a quiet system, or read in-flight orders' findings with that in mind.
    pub async fn snapshot(&self) -> PortResult<crate::invariants::Snapshot> {
        Ok(crate::invariants::Snapshot {
            orders: self.scan_all(&self.tables.orders).await?,
            events: self.scan_all(&self.tables.order_events).await?,
            stock: self.scan_all(&self.tables.inventory).await?,
            ledger: self.scan_all(&self.tables.ledger).await?,
        })
    }

    /// The ledger of one order (all its effects and notifications), for checks and tools.
    pub async fn ledger(&self, order_id: &str) -> PortResult<Vec<LedgerEntry>> {
        let mut entries = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.tables.ledger)
            .key_condition_expression("orderId = :id")
            .expression_attribute_values(":id", s(order_id))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            entries.push(from_item("read ledger entry", item.map_err(|e| unavailable("query ledger", e))?)?);
        }
        Ok(entries)
    }
}

/// What an existing reservation entry answers a (repeated) reserve command.
fn reservation_outcome(state: Option<&str>) -> ReserveOutcome {
    match state {
        Some(RESERVED) => ReserveOutcome::AlreadyReserved,
        Some(OUT_OF_STOCK) => ReserveOutcome::OutOfStock,
        _ => ReserveOutcome::AlreadyReleased,
    }
}

impl Inventory for Dynamo {
    async fn reserve(&self, reservation_id: &str, order_id: &str, items: &[LineItem]) -> PortResult<ReserveOutcome> {
        // One update per SKU: a transaction may not touch an item twice.
        let mut quantities: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for item in items {
            *quantities.entry(&item.sku).or_default() += u64::from(item.quantity);
        }
        let mut entry = Self::entry(order_id, "reservation", reservation_id, RESERVED);
        entry.lines = quantities
            .iter()
            .map(|(sku, quantity)| ReservedLine { sku: (*sku).to_owned(), quantity: *quantity })
            .collect();
        // On a table keyed orderId + entry, attribute_not_exists(orderId) means "no item with this full key".
        let mut writes = vec![put(
            &self.tables.ledger,
            to_item("write reservation", &entry)?,
            "attribute_not_exists(orderId)",
            None,
        )?];
        for (sku, quantity) in &quantities {
            let update = Update::builder()
                .table_name(&self.tables.inventory)
                .key("sku", s(sku))
                .update_expression("SET available = available - :q")
                .condition_expression("attribute_exists(sku) AND available >= :q")
                .expression_attribute_values(":q", n(*quantity))
                .build()
                .map_err(|e| PortError::Corrupt { operation: "build update", message: e.to_string() })?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(ReserveOutcome::Reserved),
            Err(e) => match e.as_service_error().and_then(failed_conditions) {
                Some(failed) if failed.first() == Some(&true) => {
                    let state = self.ledger_entry(order_id, "reservation").await?.map(|e| e.state);
                    Ok(reservation_outcome(state.as_deref()))
                }
                Some(failed) if failed.contains(&true) => {
                    // Out of stock is a decision, not a moment's reading: recorded, so that a later copy of
                    // this command cannot reserve once stock is freed (the saga is already cancelling).
                    match self.begin(&Self::entry(order_id, "reservation", reservation_id, OUT_OF_STOCK)).await? {
                        Begin::New => Ok(ReserveOutcome::OutOfStock),
                        Begin::Exists(existing) => Ok(reservation_outcome(Some(&existing.state))),
                    }
                }
                _ => Err(unavailable("reserve stock", e)),
            },
        }
    }

    async fn release(&self, reservation_id: &str, order_id: &str) -> PortResult<ReleaseOutcome> {
        for _ in 0..UNDO_ATTEMPTS {
            let Some(entry) = self.ledger_entry(order_id, "reservation").await? else {
                // Nothing reserved: the tombstone stops a late reservation. If a reservation won the race,
                // go round again and release it properly (with its stock).
                match self.begin(&Self::entry(order_id, "reservation", reservation_id, RELEASED)).await? {
                    Begin::New => return Ok(ReleaseOutcome::NothingReserved),
                    Begin::Exists(_) => continue,
                }
            };
            if entry.state == RELEASED {
                return Ok(ReleaseOutcome::AlreadyReleased);
            }
            if entry.state == OUT_OF_STOCK {
                return Ok(ReleaseOutcome::NothingReserved);
            }
            let mut writes = Vec::new();
            let flip = Update::builder()
                .table_name(&self.tables.ledger)
                .key("orderId", s(order_id))
                .key("entry", s("reservation"))
                .update_expression("SET #state = :released, #at = :at")
                .condition_expression("#state = :reserved")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":released", s(RELEASED))
                .expression_attribute_values(":reserved", s(RESERVED))
                .expression_attribute_values(":at", s(&domain::now()))
                .build()
                .map_err(|e| PortError::Corrupt { operation: "build update", message: e.to_string() })?;
            writes.push(TransactWriteItem::builder().update(flip).build());
            for line in &entry.lines {
                let restock = Update::builder()
                    .table_name(&self.tables.inventory)
                    .key("sku", s(&line.sku))
                    .update_expression("SET available = available + :q")
                    .expression_attribute_values(":q", n(line.quantity))
                    .build()
                    .map_err(|e| PortError::Corrupt { operation: "build update", message: e.to_string() })?;
                writes.push(TransactWriteItem::builder().update(restock).build());
            }
            match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
                Ok(_) => return Ok(ReleaseOutcome::Released),
                Err(e) if e.as_service_error().and_then(failed_conditions).is_some() => continue,
                Err(e) => return Err(unavailable("release stock", e)),
            }
        }
        Err(PortError::Conflict { operation: "release stock" })
    }

    async fn known_skus(&self, skus: &BTreeSet<String>) -> PortResult<BTreeSet<String>> {
        let mut known = BTreeSet::new();
        let all: Vec<&String> = skus.iter().collect();
        for chunk in all.chunks(100) {
            let keys = chunk.iter().map(|sku| HashMap::from([("sku".to_owned(), s(sku))])).collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("sku")
                    .consistent_read(true)
                    .build()
                    .map_err(|e| PortError::Corrupt { operation: "build batch get", message: e.to_string() })?,
            );
            while let Some(keys) = request.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.tables.inventory, keys)
                    .send()
                    .await
                    .map_err(|e| unavailable("look up SKUs", e))?;
                for item in output.responses.unwrap_or_default().remove(&self.tables.inventory).unwrap_or_default() {
                    if let Some(AttributeValue::S(sku)) = item.get("sku") {
                        known.insert(sku.clone());
                    }
                }
                request = output.unprocessed_keys.unwrap_or_default().remove(&self.tables.inventory);
            }
        }
        Ok(known)
    }
}

impl Payments for Dynamo {
    async fn charge(
        &self,
        payment_id: &str,
        order_id: &str,
        amount_cents: u64,
        currency: &str,
    ) -> PortResult<ChargeOutcome> {
        let mut entry = Self::entry(order_id, "payment", payment_id, CHARGED);
        entry.amount_cents = amount_cents;
        entry.currency = currency.to_owned();
        Ok(match self.begin(&entry).await? {
            Begin::New => ChargeOutcome::Charged,
            Begin::Exists(existing) if existing.state == CHARGED => ChargeOutcome::AlreadyCharged,
            Begin::Exists(_) => ChargeOutcome::AlreadyRefunded,
        })
    }

    async fn refund(&self, payment_id: &str, order_id: &str) -> PortResult<RefundOutcome> {
        Ok(match self.undo(order_id, "payment", payment_id, CHARGED, REFUNDED).await? {
            Undo::Undone => RefundOutcome::Refunded,
            Undo::AlreadyUndone => RefundOutcome::AlreadyRefunded,
            Undo::Nothing => RefundOutcome::NothingCharged,
        })
    }
}

impl Shipments for Dynamo {
    async fn dispatch(&self, shipment_id: &str, order_id: &str, _address: &Address) -> PortResult<DispatchOutcome> {
        Ok(match self.begin(&Self::entry(order_id, "shipment", shipment_id, DISPATCHED)).await? {
            Begin::New => DispatchOutcome::Dispatched,
            Begin::Exists(existing) if existing.state == DISPATCHED => DispatchOutcome::AlreadyDispatched,
            Begin::Exists(_) => DispatchOutcome::AlreadyCancelled,
        })
    }

    async fn cancel(&self, shipment_id: &str, order_id: &str) -> PortResult<CancelShipmentOutcome> {
        Ok(match self.undo(order_id, "shipment", shipment_id, DISPATCHED, SHIPMENT_CANCELLED).await? {
            Undo::Undone => CancelShipmentOutcome::Cancelled,
            Undo::AlreadyUndone => CancelShipmentOutcome::AlreadyCancelled,
            Undo::Nothing => CancelShipmentOutcome::NothingDispatched,
        })
    }
}

impl Notifications for Dynamo {
    async fn record(&self, event: &OrderEvent, email_hash: &str) -> PortResult<bool> {
        let mut entry = Self::entry(
            &event.order_id,
            &format!("notification#{}", event.event_id),
            &event.event_id,
            event.status.as_str(),
        );
        entry.email_hash = email_hash.to_owned();
        Ok(matches!(self.begin(&entry).await?, Begin::New))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    fn tables() -> Tables {
        Tables {
            idempotency: "idempotency".into(),
            settings: "settings".into(),
            orders: "orders".into(),
            order_events: "events".into(),
            inventory: "inventory".into(),
            ledger: "ledger".into(),
        }
    }

    fn cancelled(codes: &'static [&'static str]) -> TransactWriteItemsError {
        let reasons = codes.iter().map(|code| CancellationReason::builder().code(*code).build()).collect();
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .message("cancelled")
                .build(),
        )
    }

    fn order(version: u64) -> Order {
        Order { order_id: "o-1".into(), version, ..Order::default() }
    }

    #[tokio::test]
    async fn a_failed_version_condition_is_a_conflict() {
        let rule = mock!(Client::transact_write_items).then_error(|| cancelled(&["ConditionalCheckFailed", "None"]));
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&rule]), tables());
        let (current, next) = (order(3), order(4));
        let result = dynamo.transition(&current, &next, &next.event(None)).await;
        assert!(matches!(result, Err(PortError::Conflict { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn a_short_sku_is_out_of_stock_and_a_taken_reservation_is_a_replay() {
        let short =
            mock!(Client::transact_write_items).then_error(|| cancelled(&["None", "None", "ConditionalCheckFailed"]));
        // The refusal is recorded, so a later copy of the command answers the same.
        let recorded = mock!(Client::put_item)
            .match_requests(|r| r.item().and_then(|i| i.get("state")) == Some(&s(OUT_OF_STOCK)))
            .then_output(|| PutItemOutput::builder().build());
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&short, &recorded]), tables());
        let items = [
            LineItem { sku: "A".into(), quantity: 1, unit_price_cents: 1 },
            LineItem { sku: "B".into(), quantity: 9, unit_price_cents: 1 },
        ];
        assert_eq!(dynamo.reserve("r", "o-1", &items).await.expect("handled"), ReserveOutcome::OutOfStock);
        assert_eq!(recorded.num_calls(), 1);

        // A later copy, with stock back: the ledger entry exists, and says out of stock.
        let taken =
            mock!(Client::transact_write_items).then_error(|| cancelled(&["ConditionalCheckFailed", "None", "None"]));
        let refusal = mock!(Client::get_item).then_output(|| {
            let mut entry = Dynamo::entry("o-1", "reservation", "r", OUT_OF_STOCK);
            entry.at = "t".into();
            GetItemOutput::builder().set_item(Some(to_item("entry", &entry).expect("item"))).build()
        });
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&taken, &refusal]), tables());
        assert_eq!(dynamo.reserve("r", "o-1", &items).await.expect("handled"), ReserveOutcome::OutOfStock);

        let ok = mock!(Client::transact_write_items).then_output(|| TransactWriteItemsOutput::builder().build());
        let dynamo = Dynamo::new(mock_client!(aws_sdk_dynamodb, [&ok]), tables());
        assert_eq!(dynamo.reserve("r", "o-1", &items).await.expect("handled"), ReserveOutcome::Reserved);
    }
}
