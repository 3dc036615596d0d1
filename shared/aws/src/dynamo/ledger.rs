//! The effects ledger (one entry per order and effect or notification): an effect is applied by putting its
//! entry on `attribute_not_exists`, in one transaction with the order's transition and its event, so a
//! repeat finds the first and the order moves with it; every effect is undone the same way, by
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

use crate::ext::{cancelled, put, retry_on_condition, s, to_attribute, to_item, unavailable, update};

/// What putting a new entry found.
pub(crate) enum Begin {
    New,
    Exists(LedgerEntry),
}

impl Dynamo {
    pub(crate) async fn ledger_entry(&self, order_id: &str, key: &str) -> PortResult<Option<LedgerEntry>> {
        self.get_item("get ledger entry", &self.tables.ledger, &[("orderId", order_id), ("entry", key)]).await
    }

    /// Puts `entry` unless one exists for the same order and key (then returns that one).
    pub(crate) async fn begin(&self, entry: &LedgerEntry) -> PortResult<Begin> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
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
        let existing = |existing: LedgerEntry| {
            if existing.state == entry.state { ApplyOutcome::AlreadyApplied } else { ApplyOutcome::AlreadyUndone }
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
        put(&self.tables.ledger, to_item("write ledger entry", entry)?, "attribute_not_exists(orderId)", None)
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
                    .table_name(&self.tables.ledger)
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

    /// The ledger of one order (all its effects and notifications), for checks and tools.
    pub async fn ledger(&self, order_id: &str) -> PortResult<Vec<LedgerEntry>> {
        self.query_order(&self.tables.ledger, order_id).await
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
