//! In-memory twins of every port, for tests: one shared world, cheap to clone, with the same conditional
//! semantics as the AWS adapters (version checks, all-or-nothing reservations, recorded refusals,
//! tombstones) over the same typed ledger the invariant checker reads. Tests only: no function crate
//! depends on this one.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use nexus_core::chaos::ChaosSettings;
use nexus_core::domain::checkout::{Address, LineItem, Tier, quantities_by_sku};
use nexus_core::domain::ledger::{Effect, EffectState, LedgerEntry, ReservedLine};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::stock::StockItem;
use nexus_core::domain::submission::Rejection;
use nexus_core::ports::*;
use nexus_core::services::intake::IntakeService;
use serde_json::Value;

mod world;

/// The contract's sample submission as users are shown it (`examples/order.json`), with `key` as its
/// idempotency key: the one sample every test starts from.
pub fn sample_submission(key: &str) -> Value {
    let mut sample: Value =
        serde_json::from_str(include_str!("../../../examples/order.json")).expect("examples/order.json is JSON");
    sample["idempotencyKey"] = Value::from(key);
    sample
}

/// The unit price the sample submission quotes (`examples/order.json`): the price of every SKU of
/// [`Memory::with_stock`], as of SKU-1 in `infra/catalog.json`.
pub const SAMPLE_UNIT_PRICE_CENTS: u64 = 1999;

/// The intake service with every port in one in-memory world.
/// order-intake over the in-memory world.
pub type MemoryIntake = IntakeService<Memory, Memory, Memory, Memory, Memory, Memory, Memory>;

pub fn intake(memory: &Memory) -> MemoryIntake {
    IntakeService {
        idempotency: memory.clone(),
        orders: memory.clone(),
        catalog: memory.clone(),
        publisher: memory.clone(),
        saga: memory.clone(),
        dead_letters: memory.clone(),
        deferrals: memory.clone(),
        emails: email_hasher(),
        saga_slots: Default::default(),
    }
}

/// The email hasher of the tests (a fixed key).
pub fn email_hasher() -> nexus_core::domain::ids::EmailHasher {
    nexus_core::domain::ids::EmailHasher::new(b"nexus-testkit")
}

pub use world::{Callback, World};

/// All ports in one in-memory world.
#[derive(Debug, Clone, Default)]
pub struct Memory(pub Arc<Mutex<World>>);

impl Memory {
    /// A world with these SKUs in stock, each at [`SAMPLE_UNIT_PRICE_CENTS`].
    pub fn with_stock(stock: &[(&str, u64)]) -> Self {
        let memory = Self::default();
        {
            let mut world = memory.world();
            for (sku, units) in stock {
                let sku = (*sku).to_owned();
                let price = Some(SAMPLE_UNIT_PRICE_CENTS);
                world.stock.insert(
                    sku.clone(),
                    StockItem { sku, available: *units, initial: *units, unit_price_cents: price },
                );
            }
        }
        memory
    }

    /// Sets a SKU's catalog price (a SKU new to the catalog has no stock).
    pub fn set_price(&self, sku: &str, unit_price_cents: u64) -> &Self {
        let mut world = self.world();
        let item = world
            .stock
            .entry(sku.to_owned())
            .or_insert_with(|| StockItem { sku: sku.to_owned(), ..StockItem::default() });
        item.unit_price_cents = Some(unit_price_cents);
        drop(world);
        self
    }

    /// Records a customer's tier, as `nexus customers set` does.
    pub fn set_tier(&self, customer_id: &str, tier: Tier) -> &Self {
        self.world().tiers.insert(customer_id.to_owned(), tier);
        self
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl OrderStore for Memory {
    async fn get(&self, order_id: &str) -> PortResult<Option<Order>> {
        let mut world = self.world();
        world.order_reads += 1;
        let read = world.orders.get(order_id).cloned();
        if let Some(status) = world.overtake_after_read.take()
            && let Some(order) = world.orders.get_mut(order_id)
        {
            order.status = status;
            order.version += 1;
        }
        Ok(read)
    }

    async fn create(&self, order: &Order, event: &OrderEvent) -> PortResult<CreateOutcome> {
        let mut world = self.world();
        if let Some(existing) = world.orders.get(&order.order_id) {
            return Ok(CreateOutcome::AlreadyExists(Box::new(existing.clone())));
        }
        let order = &world.saga_limit.admitted(order);
        if let Some(bound) = world.saga_limit.slot_bound(order) {
            if world.saga_slot_holders.len() >= bound as usize && !world.saga_slot_holders.contains(&order.order_id) {
                return Ok(CreateOutcome::NoSagaSlot);
            }
            world.saga_slot_holders.insert(order.order_id.clone());
        }
        world.orders.insert(order.order_id.clone(), order.clone());
        world.events.entry(order.order_id.clone()).or_default().push(event.clone());
        Ok(CreateOutcome::Created)
    }

    async fn create_rejected(&self, order: &Order, event: &OrderEvent) -> PortResult<bool> {
        Ok(matches!(self.create(order, event).await?, CreateOutcome::Created))
    }

    async fn transition(&self, current: &Order, next: &Order, event: &OrderEvent) -> PortResult<()> {
        let mut world = self.world();
        world.may_move(current, next)?;
        world.moved(next, event);
        Ok(())
    }
}

impl SagaSlots for Memory {
    async fn holders(&self) -> PortResult<BTreeSet<String>> {
        Ok(self.world().saga_slot_holders.clone())
    }

    async fn free(&self, order_id: &str) -> PortResult<bool> {
        Ok(self.world().saga_slot_holders.remove(order_id))
    }
}

impl Deferrals for Memory {
    async fn defer(&self, body: &str, correlation_id: Option<&str>, delay_seconds: u32) -> PortResult<()> {
        self.world().deferred.push((body.to_owned(), correlation_id.map(str::to_owned), delay_seconds));
        Ok(())
    }
}

impl EventLog for Memory {
    async fn events(&self, order_id: &str) -> PortResult<Vec<OrderEvent>> {
        Ok(self.world().events.get(order_id).cloned().unwrap_or_default())
    }
}

impl EventPublisher for Memory {
    async fn publish(&self, event: &OrderEvent) -> PortResult<()> {
        let mut world = self.world();
        if world.publishes_unavailable {
            return Err(PortError::Unavailable { operation: "publish event", message: "injected".into() });
        }
        world.published.push(event.clone());
        Ok(())
    }
}

impl Inventory for Memory {
    async fn reserve(
        &self,
        order_id: &str,
        attempt: u32,
        items: &[LineItem],
        moving: Option<&Transition>,
    ) -> PortResult<ReserveOutcome> {
        let mut world = self.world();
        match world.entry(order_id, attempt, Effect::Reservation).map(|e| e.state) {
            Some(EffectState::Reserved) => return Ok(ReserveOutcome::AlreadyReserved),
            Some(EffectState::OutOfStock) => return Ok(ReserveOutcome::OutOfStock),
            Some(_) => return Ok(ReserveOutcome::AlreadyReleased),
            None => {}
        }
        // The adapter's transaction answers the order's version before the stock.
        if let Some(moving) = moving {
            world.may_move(&moving.current, &moving.next)?;
        }
        let wanted = quantities_by_sku(items);
        if wanted.iter().any(|(sku, qty)| world.stock.get(sku).is_none_or(|s| s.available < *qty)) {
            world.put(LedgerEntry::new(order_id, attempt, Effect::Reservation, EffectState::OutOfStock));
            return Ok(ReserveOutcome::OutOfStock);
        }
        let mut entry = LedgerEntry::new(order_id, attempt, Effect::Reservation, EffectState::Reserved);
        for (sku, quantity) in wanted {
            if let Some(stock) = world.stock.get_mut(&sku) {
                stock.available -= quantity;
            }
            entry.lines.push(ReservedLine { sku, quantity });
        }
        world.put(entry);
        if let Some(moving) = moving {
            world.moved(&moving.next, &moving.event);
        }
        Ok(ReserveOutcome::Reserved)
    }

    async fn release(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        let mut world = self.world();
        let lines = world.entry(order_id, attempt, Effect::Reservation).filter(|e| e.holds()).map(|e| e.lines.clone());
        let outcome = world.undo((order_id, attempt), Effect::Reservation);
        for line in lines.into_iter().flatten() {
            if let Some(stock) = world.stock.get_mut(&line.sku) {
                stock.available += line.quantity;
            }
        }
        Ok(outcome)
    }
}

impl Catalog for Memory {
    async fn lookup(&self, skus: &BTreeSet<String>, customer_id: &str) -> PortResult<CatalogEntries> {
        let world = self.world();
        Ok(CatalogEntries {
            prices: skus
                .iter()
                .filter_map(|sku| Some((sku.clone(), world.stock.get(sku)?.unit_price_cents?)))
                .collect(),
            tier: world.tiers.get(customer_id).copied(),
        })
    }
}

impl Payments for Memory {
    async fn charge(
        &self,
        order_id: &str,
        attempt: u32,
        amount_cents: u64,
        currency: &str,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        self.world().apply((order_id, attempt), Effect::Payment, moving, |entry| {
            entry.amount_cents = amount_cents;
            entry.currency = currency.to_owned();
        })
    }

    async fn refund(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        Ok(self.world().undo((order_id, attempt), Effect::Payment))
    }
}

impl Shipments for Memory {
    async fn dispatch(
        &self,
        order_id: &str,
        attempt: u32,
        _address: &Address,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        self.world().apply((order_id, attempt), Effect::Shipment, moving, |_| {})
    }

    async fn cancel(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        Ok(self.world().undo((order_id, attempt), Effect::Shipment))
    }
}

impl Notifications for Memory {
    async fn record(&self, event: &OrderEvent, email_hash: &str) -> PortResult<bool> {
        let mut world = self.world();
        let entry = LedgerEntry::notification(&event.order_id, &event.event_id, event.status, email_hash);
        let key = (entry.order_id.clone(), entry.entry.clone());
        if world.ledger.contains_key(&key) {
            return Ok(false);
        }
        world.ledger.insert(key, entry);
        Ok(true)
    }
}

fn callbacks_reachable(world: &World) -> PortResult<()> {
    if world.callbacks_unavailable {
        return Err(PortError::Unavailable { operation: "task callback", message: "injected".into() });
    }
    Ok(())
}

impl TaskCallbacks for Memory {
    async fn succeed(&self, task_token: &str, output: &Value) -> PortResult<CallbackOutcome> {
        let mut world = self.world();
        callbacks_reachable(&world)?;
        if !world.closed_tokens.insert(task_token.to_owned()) {
            return Ok(CallbackOutcome::TaskAlreadyClosed);
        }
        world.callbacks.push(Callback::Success(task_token.to_owned(), output.clone()));
        Ok(CallbackOutcome::Delivered)
    }

    async fn fail(&self, task_token: &str, error: &str, _cause: &str) -> PortResult<CallbackOutcome> {
        let mut world = self.world();
        callbacks_reachable(&world)?;
        if !world.closed_tokens.insert(task_token.to_owned()) {
            return Ok(CallbackOutcome::TaskAlreadyClosed);
        }
        world.callbacks.push(Callback::Failure(task_token.to_owned(), error.to_owned()));
        Ok(CallbackOutcome::Delivered)
    }
}

impl SagaStarter for Memory {
    fn execution_arn(&self, name: &str) -> String {
        format!("arn:aws:states:us-east-1:000000000000:execution:saga:{name}")
    }

    async fn start(&self, name: &str, input: &Value) -> PortResult<StartOutcome> {
        let execution_arn = self.execution_arn(name);
        let mut world = self.world();
        if world.executions.contains_key(name) {
            return Ok(StartOutcome::AlreadyStarted { execution_arn });
        }
        world.executions.insert(name.to_owned(), input.clone());
        Ok(StartOutcome::Started { execution_arn })
    }

    async fn status(&self, name: &str) -> PortResult<Option<ExecutionStatus>> {
        let world = self.world();
        Ok(world
            .executions
            .contains_key(name)
            .then(|| world.ended_executions.get(name).copied().unwrap_or(ExecutionStatus::Running)))
    }
}

impl DeadLetters for Memory {
    async fn park(&self, body: &str, rejection: &Rejection) -> PortResult<()> {
        self.world().parked.push((body.to_owned(), rejection.clone()));
        Ok(())
    }
}

impl ChaosSource for Memory {
    async fn load(&self) -> PortResult<ChaosSettings> {
        Ok(self.world().chaos.clone())
    }
}

impl IdempotencyStore for Memory {
    async fn claim(&self, key: &str, order_id: &str, payload_hash: &str, _expires_at: i64) -> PortResult<Claim> {
        let mut world = self.world();
        if let Some((order_id, payload_hash)) = world.idempotency.get(key) {
            return Ok(Claim::Existing { order_id: order_id.clone(), payload_hash: payload_hash.clone() });
        }
        world.idempotency.insert(key.to_owned(), (order_id.to_owned(), payload_hash.to_owned()));
        Ok(Claim::Claimed)
    }
}
