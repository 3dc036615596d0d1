//! The in-memory world behind [`crate::Memory`]: every store the adapters write, and the same conditions
//! (an entry written once, an order moved on its version, an effect and its transition together).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nexus_core::chaos::ChaosSettings;
use nexus_core::domain::admission::SagaLimit;
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::ledger::{Effect, LedgerEntry};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use nexus_core::domain::stock::StockItem;
use nexus_core::domain::submission::Rejection;
use nexus_core::ports::*;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    Success(String, Value),
    Failure(String, String),
}

#[derive(Debug, Default)]
pub struct World {
    pub orders: HashMap<String, Order>,
    pub events: HashMap<String, Vec<OrderEvent>>,
    /// SKU → (available, initial).
    pub stock: BTreeMap<String, StockItem>,
    /// The customers' recorded tiers.
    pub tiers: BTreeMap<String, Tier>,
    /// (order id, entry key) → entry: effects and notifications.
    pub ledger: BTreeMap<(String, String), LedgerEntry>,
    pub published: Vec<OrderEvent>,
    pub callbacks: Vec<Callback>,
    pub closed_tokens: BTreeSet<String>,
    pub executions: BTreeMap<String, Value>,
    /// Executions that ended, with how (absent: running).
    pub ended_executions: BTreeMap<String, ExecutionStatus>,
    pub parked: Vec<(String, Rejection)>,
    /// idempotency key → (order id, payload hash).
    pub idempotency: HashMap<String, (String, String)>,
    /// Makes the next N order transitions fail with a version conflict (as a concurrent writer would).
    pub conflicts_to_inject: usize,
    /// Moves the order to this status (a new version) right after the next order read, as a compensation
    /// that overtakes a step between its read and its write would.
    pub overtake_after_read: Option<OrderStatus>,
    /// How many times the order store was read.
    pub order_reads: usize,
    /// What the settings table's chaos item would hold.
    pub chaos: ChaosSettings,
    /// Step Functions cannot be reached: every task callback fails.
    pub callbacks_unavailable: bool,
    /// SNS cannot be reached: every event publish fails (after the write it follows, as a crash would).
    pub publishes_unavailable: bool,
    /// The bound of standard sagas in flight, and the orders holding a slot (the settings item's `holders`).
    pub saga_limit: SagaLimit,
    pub saga_slot_holders: BTreeSet<String>,
    /// Submissions put back on the intake queue: (body, correlation id, delay in seconds).
    pub deferred: Vec<(String, Option<String>, u32)>,
}

impl World {
    pub fn entry(&self, order_id: &str, attempt: u32, effect: Effect) -> Option<&LedgerEntry> {
        self.ledger.get(&(order_id.to_owned(), effect.entry_key(attempt)))
    }

    pub fn available(&self, sku: &str) -> u64 {
        self.stock.get(sku).map_or(0, |s| s.available)
    }

    /// Whether `next` may be written over `current`: the adapter's version condition (or an injected
    /// concurrent writer).
    pub(crate) fn may_move(&mut self, current: &Order, next: &Order) -> PortResult<()> {
        if self.conflicts_to_inject > 0 {
            self.conflicts_to_inject -= 1;
            return Err(PortError::Conflict { operation: "transition" });
        }
        let stored = self.orders.get(&current.order_id).map(|o| o.version);
        if stored != Some(current.version) || next.version != current.version + 1 {
            return Err(PortError::Conflict { operation: "transition" });
        }
        Ok(())
    }

    /// Writes a transition [`World::may_move`] allowed, with its event (and frees the slot of an end).
    pub(crate) fn moved(&mut self, next: &Order, event: &OrderEvent) {
        if nexus_core::domain::admission::frees_slot(next) {
            self.saga_slot_holders.remove(&next.order_id);
        }
        self.orders.insert(next.order_id.clone(), next.clone());
        self.events.entry(next.order_id.clone()).or_default().push(event.clone());
    }

    pub(crate) fn put(&mut self, entry: LedgerEntry) {
        self.ledger.insert((entry.order_id.clone(), entry.entry.clone()), entry);
    }

    /// Applies `effect` with the `moving` transition unless the order has an entry for it: what the
    /// adapter's one transaction of the conditional put and the transition does (the entry's condition
    /// answers first, then the order's version).
    pub(crate) fn apply(
        &mut self,
        (order_id, attempt): (&str, u32),
        effect: Effect,
        moving: Option<&Transition>,
        fill: impl FnOnce(&mut LedgerEntry),
    ) -> PortResult<ApplyOutcome> {
        match self.entry(order_id, attempt, effect) {
            Some(existing) if existing.state == effect.applied() => Ok(ApplyOutcome::AlreadyApplied),
            Some(_) => Ok(ApplyOutcome::AlreadyUndone),
            None => {
                if let Some(moving) = moving {
                    self.may_move(&moving.current, &moving.next)?;
                    self.moved(&moving.next, &moving.event);
                }
                let mut entry = LedgerEntry::new(order_id, attempt, effect, effect.applied());
                fill(&mut entry);
                self.put(entry);
                Ok(ApplyOutcome::Applied)
            }
        }
    }

    /// Flips an applied entry to undone, or leaves an undone tombstone: the adapter's conditional update.
    pub(crate) fn undo(&mut self, (order_id, attempt): (&str, u32), effect: Effect) -> UndoOutcome {
        let key = (order_id.to_owned(), effect.entry_key(attempt));
        match self.ledger.get_mut(&key) {
            Some(entry) if entry.state == effect.applied() => {
                entry.state = effect.undone();
                UndoOutcome::Undone
            }
            Some(entry) if entry.state == effect.undone() => UndoOutcome::Undone,
            Some(_) => UndoOutcome::NothingToUndo,
            None => {
                self.put(LedgerEntry::new(order_id, attempt, effect, effect.undone()));
                UndoOutcome::NothingToUndo
            }
        }
    }
}
