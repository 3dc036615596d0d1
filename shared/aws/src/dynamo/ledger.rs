//! The effects ledger (one entry per order and effect or notification, in its writer's table:
//! [`super::Ledgers`]): an effect is applied by putting its entry on `attribute_not_exists`, in one
//! transaction with the order's transition and its event, so a repeat finds the first and the order moves
//! with it; every effect is undone the same way, by
//! flipping the entry from its applied state to its undone state on that condition (a reservation's
//! restock in the same transaction), and an undo that finds no entry leaves the undone state as a
//! tombstone so a late copy of the effect cannot slip in after its compensation.

use nexus_core::domain::checkout::Address;
use nexus_core::domain::ledger::{Effect, LedgerEntry};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::{self};
use nexus_core::ports::{
    ApplyOutcome, Notifications, Payments, PortError, PortResult, Shipments, Transition, UndoOutcome,
};

use super::Dynamo;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use crate::ext::{cancelled, from_item, put, retry_on_condition, s, to_attribute, to_item, unavailable, update};

/// What putting a new entry found.
pub(crate) enum Begin {
    New,
    Exists(LedgerEntry),
}

impl Dynamo {
    pub(crate) async fn ledger_entry(&self, order_id: &str, key: &str) -> PortResult<Option<LedgerEntry>> {
        let table = self.tables.ledger.of(key);
        self.get_item("get ledger entry", table, &[("orderId", order_id), ("entry", key)]).await
    }

    /// Puts `entry` unless one exists for the same order and key (then returns that one).
    pub(crate) async fn begin(&self, entry: &LedgerEntry) -> PortResult<Begin> {
        let result = self
            .client
            .put_item()
            .table_name(self.tables.ledger.of(&entry.entry))
            .set_item(Some(to_item("write ledger entry", entry)?))
            // On a table keyed orderId + entry, attribute_not_exists(orderId) means "no item with this key".
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

    /// Applies `entry`'s effect once, with the `moving` transition in the same transaction: a repeat finds
    /// the entry, applied or already undone, and writes nothing.
    async fn apply(&self, entry: &LedgerEntry, moving: Option<&Transition>) -> PortResult<ApplyOutcome> {
        let existing = |found: LedgerEntry| {
            if found.state == entry.state { ApplyOutcome::AlreadyApplied } else { ApplyOutcome::AlreadyUndone }
        };
        let Some(moving) = moving else {
            return Ok(match self.begin(entry).await? {
                Begin::New => ApplyOutcome::Applied,
                Begin::Exists(found) => existing(found),
            });
        };
        let mut writes = vec![self.entry_put(entry)?];
        writes.extend(self.transition_items(&moving.current, &moving.next, &moving.event)?);
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(ApplyOutcome::Applied),
            Err(e) => match e.as_service_error().and_then(cancelled) {
                Some(reasons) if reasons.condition_failed(0) => {
                    let found = self.ledger_entry(&entry.order_id, &entry.entry).await?;
                    found.map(existing).ok_or(PortError::Conflict { operation: "ledger entry" })
                }
                // The order's version moved on, or another writer raced on an item: nothing written.
                Some(_) => Err(PortError::Conflict { operation: "effect with its transition" }),
                None => Err(unavailable("apply effect with its transition", e)),
            },
        }
    }

    /// The conditional put of a new entry, for a transaction.
    pub(crate) fn entry_put(&self, entry: &LedgerEntry) -> PortResult<TransactWriteItem> {
        let table = self.tables.ledger.of(&entry.entry);
        put(table, to_item("write ledger entry", entry)?, "attribute_not_exists(orderId)", None)
    }

    /// Flips the `effect` entry of an attempt of the order from applied to undone, in one transaction with the writes `also`
    /// makes from it (a reservation's restock), or leaves an undone tombstone when there is no entry. The
    /// flip is conditional on the applied state, so a repeat or a racing copy undoes nothing twice.
    pub(crate) async fn undo<F>(
        &self,
        (order_id, attempt): (&str, u32),
        effect: Effect,
        also: F,
    ) -> PortResult<UndoOutcome>
    where
        F: Fn(&LedgerEntry) -> PortResult<Vec<TransactWriteItem>>,
    {
        let (applied, undone) = (effect.applied(), effect.undone());
        let (also, key) = (&also, &effect.entry_key(attempt));
        retry_on_condition("undo ledger entry", || async move {
            let Some(entry) = self.ledger_entry(order_id, key).await? else {
                return Ok(match self.begin(&LedgerEntry::new(order_id, attempt, effect, undone)).await? {
                    Begin::New => Some(UndoOutcome::NothingToUndo),
                    // The effect won the race: go round again and undo it properly.
                    Begin::Exists(_) => None,
                });
            };
            if entry.state == undone {
                return Ok(Some(UndoOutcome::Undone));
            }
            if entry.state != applied {
                return Ok(Some(UndoOutcome::NothingToUndo));
            }
            let mut writes = vec![update(
                Update::builder()
                    .table_name(self.tables.ledger.of(key))
                    .key("orderId", s(order_id))
                    .key("entry", s(key))
                    .update_expression("SET #state = :undone, #at = :at")
                    .condition_expression("#state = :applied")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#at", "at")
                    .expression_attribute_values(":undone", to_attribute(undone)?)
                    .expression_attribute_values(":applied", to_attribute(applied)?)
                    .expression_attribute_values(":at", s(&domain::now())),
            )?];
            writes.extend(also(&entry)?);
            match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
                Ok(_) => Ok(Some(UndoOutcome::Undone)),
                Err(e) if e.as_service_error().and_then(cancelled).is_some() => Ok(None),
                Err(e) => Err(unavailable("undo ledger entry", e)),
            }
        })
        .await
    }

    /// The ledger of one order (all its effects and notifications, from each writer's table), for checks
    /// and tools.
    pub async fn ledger(&self, order_id: &str) -> PortResult<Vec<LedgerEntry>> {
        let mut entries = Vec::new();
        for table in self.tables.ledger.all() {
            entries.extend(self.query_order::<LedgerEntry>(table, order_id).await?);
        }
        // By entry key, as one table's query returned them before the split.
        entries.sort_by(|a, b| a.entry.cmp(&b.entry));
        Ok(entries)
    }

    /// Copies the entries of a ledger table from before the split (one table for every writer) into the
    /// writer tables, each on `attribute_not_exists`: idempotent, and an entry already there (written since,
    /// or copied before) is left as it is. Returns `(copied, already there)`.
    pub async fn import_ledger(&self, from_table: &str) -> PortResult<(usize, usize)> {
        let (mut copied, mut present) = (0, 0);
        // Page by page: an old ledger may hold millions of entries, more than is worth holding at once.
        let mut items = self.client.scan().table_name(from_table).consistent_read(true).into_paginator().items().send();
        while let Some(item) = items.next().await {
            let entry: LedgerEntry = from_item("read old ledger entry", item.map_err(|e| unavailable("scan", e))?)?;
            match self.begin(&entry).await? {
                Begin::New => copied += 1,
                Begin::Exists(_) => present += 1,
            }
        }
        Ok((copied, present))
    }

    /// Every ledger entry of every order (scans: for the checker, never on the request path).
    pub async fn all_ledger_entries(&self) -> PortResult<Vec<LedgerEntry>> {
        let mut entries = Vec::new();
        for table in self.tables.ledger.all() {
            entries.extend(self.scan_all::<LedgerEntry>(table).await?);
        }
        Ok(entries)
    }
}

impl Payments for Dynamo {
    async fn charge(
        &self,
        order_id: &str,
        attempt: u32,
        amount_cents: u64,
        currency: &str,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        let mut entry = LedgerEntry::new(order_id, attempt, Effect::Payment, Effect::Payment.applied());
        entry.amount_cents = amount_cents;
        entry.currency = currency.to_owned();
        self.apply(&entry, moving).await
    }

    async fn refund(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        self.undo((order_id, attempt), Effect::Payment, |_| Ok(Vec::new())).await
    }
}

impl Shipments for Dynamo {
    async fn dispatch(
        &self,
        order_id: &str,
        attempt: u32,
        _address: &Address,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        let entry = LedgerEntry::new(order_id, attempt, Effect::Shipment, Effect::Shipment.applied());
        self.apply(&entry, moving).await
    }

    async fn cancel(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        self.undo((order_id, attempt), Effect::Shipment, |_| Ok(Vec::new())).await
    }
}

impl Notifications for Dynamo {
    async fn record(&self, event: &OrderEvent, email_hash: &str) -> PortResult<bool> {
        let entry = LedgerEntry::notification(&event.order_id, &event.event_id, event.status, email_hash);
        Ok(matches!(self.begin(&entry).await?, Begin::New))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::operation::scan::ScanOutput;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use nexus_core::domain::ledger::EffectState;
    use nexus_core::domain::status::OrderStatus;

    use super::*;
    use crate::dynamo::tests::tables;

    #[test]
    fn each_entry_lives_in_its_writer_s_table() {
        let ledgers = tables().ledger;
        let table = |effect: Effect, attempt| ledgers.of(&effect.entry_key(attempt)).to_owned();
        assert_eq!(table(Effect::Reservation, 1), "inventory-ledger");
        assert_eq!(table(Effect::Payment, 2), "payment-ledger");
        assert_eq!(table(Effect::Shipment, 1), "shipping-ledger");
        let notification = LedgerEntry::notification("o-1", "e-1", OrderStatus::Completed, "h");
        assert_eq!(ledgers.of(&notification.entry), "notification-ledger");
    }

    #[tokio::test]
    async fn an_import_copies_each_old_entry_into_its_writer_s_table_once() {
        let charge = LedgerEntry::new("o-1", 1, Effect::Payment, EffectState::Charged);
        let notified = LedgerEntry::notification("o-1", "e-1", OrderStatus::Completed, "h");
        let old = [charge.clone(), notified.clone()];
        let scan = mock!(Client::scan)
            .match_requests(|r| r.table_name() == Some("ledger-before-the-split"))
            .then_output(move || {
                let items = old.iter().map(|e| to_item("entry", e).expect("item")).collect();
                ScanOutput::builder().set_items(Some(items)).build()
            });
        let copied = mock!(Client::put_item)
            .match_requests(|r| r.table_name() == Some("payment-ledger"))
            .then_output(|| PutItemOutput::builder().build());
        let present =
            mock!(Client::put_item).match_requests(|r| r.table_name() == Some("notification-ledger")).then_error(
                || PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build()),
            );
        let existing =
            mock!(Client::get_item).match_requests(|r| r.table_name() == Some("notification-ledger")).then_output(
                move || GetItemOutput::builder().set_item(Some(to_item("e", &notified).expect("item"))).build(),
            );
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&scan, &copied, &present, &existing]);
        let dynamo = Dynamo::new(client, tables());
        assert_eq!(dynamo.import_ledger("ledger-before-the-split").await.expect("imported"), (1, 1));
        assert_eq!((copied.num_calls(), present.num_calls()), (1, 1));
    }
}
