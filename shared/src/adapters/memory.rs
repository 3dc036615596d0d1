//! In-memory twins of every port, for unit tests: one shared world, cheap to clone, with the same
//! conditional semantics as the DynamoDB adapters (version checks, all-or-nothing reservations, tombstones).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::domain::messages::OrderEvent;
use crate::domain::order::{Address, LineItem, Order};
use crate::domain::submission::Rejection;
use crate::ports::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectState {
    Reserved(Vec<(String, u64)>),
    Released,
    /// Refused for want of stock (a decision every copy of the command repeats).
    OutOfStock,
    Charged(u64),
    Refunded(u64),
    Dispatched,
    ShipmentCancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    Success(String, Value),
    Failure(String, String),
}

#[derive(Debug, Default)]
pub struct World {
    pub orders: HashMap<String, Order>,
    pub events: HashMap<String, Vec<OrderEvent>>,
    pub stock: BTreeMap<String, u64>,
    /// (order id, "reservation" | "payment" | "shipment") → state.
    pub effects: HashMap<(String, String), EffectState>,
    pub published: Vec<OrderEvent>,
    pub callbacks: Vec<Callback>,
    pub closed_tokens: BTreeSet<String>,
    pub executions: BTreeMap<String, Value>,
    pub parked: Vec<(String, Rejection)>,
    pub notified: BTreeSet<String>,
    /// idempotency key → (order id, payload hash, completed).
    pub idempotency: HashMap<String, (String, String, bool)>,
    /// Makes the next N order transitions fail with a version conflict (as a concurrent writer would).
    pub conflicts_to_inject: usize,
}

/// All ports in one in-memory world.
#[derive(Debug, Clone, Default)]
pub struct Memory(pub Arc<Mutex<World>>);

impl Memory {
    pub fn with_stock(stock: &[(&str, u64)]) -> Self {
        let memory = Self::default();
        memory.world().stock = stock.iter().map(|(sku, qty)| ((*sku).to_owned(), *qty)).collect();
        memory
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn effect(&self, order_id: &str, kind: &str) -> Option<EffectState> {
        self.world().effects.get(&(order_id.to_owned(), kind.to_owned())).cloned()
    }

    fn set_effect(&self, order_id: &str, kind: &str, state: EffectState) {
        self.world().effects.insert((order_id.to_owned(), kind.to_owned()), state);
    }
}

impl OrderStore for Memory {
    async fn get(&self, order_id: &str) -> PortResult<Option<Order>> {
        Ok(self.world().orders.get(order_id).cloned())
    }

    async fn create(&self, order: &Order, event: &OrderEvent) -> PortResult<CreateOutcome> {
        let mut world = self.world();
        if let Some(existing) = world.orders.get(&order.order_id) {
            return Ok(CreateOutcome::AlreadyExists(Box::new(existing.clone())));
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
        if world.conflicts_to_inject > 0 {
            world.conflicts_to_inject -= 1;
            return Err(PortError::Conflict { operation: "transition" });
        }
        let stored = world.orders.get(&current.order_id).map(|o| o.version);
        if stored != Some(current.version) || next.version != current.version + 1 {
            return Err(PortError::Conflict { operation: "transition" });
        }
        world.orders.insert(next.order_id.clone(), next.clone());
        world.events.entry(next.order_id.clone()).or_default().push(event.clone());
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
        self.world().published.push(event.clone());
        Ok(())
    }
}

impl Inventory for Memory {
    async fn reserve(&self, _reservation_id: &str, order_id: &str, items: &[LineItem]) -> PortResult<ReserveOutcome> {
        match self.effect(order_id, "reservation") {
            Some(EffectState::Reserved(_)) => return Ok(ReserveOutcome::AlreadyReserved),
            Some(EffectState::OutOfStock) => return Ok(ReserveOutcome::OutOfStock),
            Some(_) => return Ok(ReserveOutcome::AlreadyReleased),
            None => {}
        }
        let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
        for item in items {
            *wanted.entry(item.sku.clone()).or_default() += u64::from(item.quantity);
        }
        let mut world = self.world();
        if wanted.iter().any(|(sku, qty)| world.stock.get(sku).is_none_or(|available| available < qty)) {
            world.effects.insert((order_id.to_owned(), "reservation".into()), EffectState::OutOfStock);
            return Ok(ReserveOutcome::OutOfStock);
        }
        for (sku, qty) in &wanted {
            if let Some(available) = world.stock.get_mut(sku) {
                *available -= qty;
            }
        }
        world
            .effects
            .insert((order_id.to_owned(), "reservation".into()), EffectState::Reserved(wanted.into_iter().collect()));
        Ok(ReserveOutcome::Reserved)
    }

    async fn release(&self, _reservation_id: &str, order_id: &str) -> PortResult<ReleaseOutcome> {
        match self.effect(order_id, "reservation") {
            Some(EffectState::Reserved(lines)) => {
                let mut world = self.world();
                for (sku, qty) in lines {
                    *world.stock.entry(sku).or_default() += qty;
                }
                world.effects.insert((order_id.to_owned(), "reservation".into()), EffectState::Released);
                Ok(ReleaseOutcome::Released)
            }
            Some(EffectState::OutOfStock) => Ok(ReleaseOutcome::NothingReserved),
            Some(_) => Ok(ReleaseOutcome::AlreadyReleased),
            None => {
                self.set_effect(order_id, "reservation", EffectState::Released);
                Ok(ReleaseOutcome::NothingReserved)
            }
        }
    }

    async fn known_skus(&self, skus: &BTreeSet<String>) -> PortResult<BTreeSet<String>> {
        let world = self.world();
        Ok(skus.iter().filter(|s| world.stock.contains_key(*s)).cloned().collect())
    }
}

impl Payments for Memory {
    async fn charge(
        &self,
        _payment_id: &str,
        order_id: &str,
        amount_cents: u64,
        _currency: &str,
    ) -> PortResult<ChargeOutcome> {
        Ok(match self.effect(order_id, "payment") {
            Some(EffectState::Charged(_)) => ChargeOutcome::AlreadyCharged,
            Some(_) => ChargeOutcome::AlreadyRefunded,
            None => {
                self.set_effect(order_id, "payment", EffectState::Charged(amount_cents));
                ChargeOutcome::Charged
            }
        })
    }

    async fn refund(&self, _payment_id: &str, order_id: &str) -> PortResult<RefundOutcome> {
        Ok(match self.effect(order_id, "payment") {
            Some(EffectState::Charged(amount)) => {
                self.set_effect(order_id, "payment", EffectState::Refunded(amount));
                RefundOutcome::Refunded
            }
            Some(_) => RefundOutcome::AlreadyRefunded,
            None => {
                self.set_effect(order_id, "payment", EffectState::Refunded(0));
                RefundOutcome::NothingCharged
            }
        })
    }
}

impl Shipments for Memory {
    async fn dispatch(&self, _shipment_id: &str, order_id: &str, _address: &Address) -> PortResult<DispatchOutcome> {
        Ok(match self.effect(order_id, "shipment") {
            Some(EffectState::Dispatched) => DispatchOutcome::AlreadyDispatched,
            Some(_) => DispatchOutcome::AlreadyCancelled,
            None => {
                self.set_effect(order_id, "shipment", EffectState::Dispatched);
                DispatchOutcome::Dispatched
            }
        })
    }

    async fn cancel(&self, _shipment_id: &str, order_id: &str) -> PortResult<CancelShipmentOutcome> {
        Ok(match self.effect(order_id, "shipment") {
            Some(EffectState::Dispatched) => {
                self.set_effect(order_id, "shipment", EffectState::ShipmentCancelled);
                CancelShipmentOutcome::Cancelled
            }
            Some(_) => CancelShipmentOutcome::AlreadyCancelled,
            None => {
                self.set_effect(order_id, "shipment", EffectState::ShipmentCancelled);
                CancelShipmentOutcome::NothingDispatched
            }
        })
    }
}

impl Notifications for Memory {
    async fn record(&self, event: &OrderEvent, _email_hash: &str) -> PortResult<bool> {
        Ok(self.world().notified.insert(event.event_id.clone()))
    }
}

impl TaskCallbacks for Memory {
    async fn succeed(&self, task_token: &str, output: &Value) -> PortResult<CallbackOutcome> {
        let mut world = self.world();
        if !world.closed_tokens.insert(task_token.to_owned()) {
            return Ok(CallbackOutcome::TaskAlreadyClosed);
        }
        world.callbacks.push(Callback::Success(task_token.to_owned(), output.clone()));
        Ok(CallbackOutcome::Delivered)
    }

    async fn fail(&self, task_token: &str, error: &str, _cause: &str) -> PortResult<CallbackOutcome> {
        let mut world = self.world();
        if !world.closed_tokens.insert(task_token.to_owned()) {
            return Ok(CallbackOutcome::TaskAlreadyClosed);
        }
        world.callbacks.push(Callback::Failure(task_token.to_owned(), error.to_owned()));
        Ok(CallbackOutcome::Delivered)
    }
}

impl SagaStarter for Memory {
    fn execution_arn(&self, order_id: &str) -> String {
        format!("arn:aws:states:us-east-1:000000000000:execution:saga:{order_id}")
    }

    async fn start(&self, order_id: &str, input: &Value) -> PortResult<StartOutcome> {
        let execution_arn = self.execution_arn(order_id);
        let mut world = self.world();
        if world.executions.contains_key(order_id) {
            return Ok(StartOutcome::AlreadyStarted { execution_arn });
        }
        world.executions.insert(order_id.to_owned(), input.clone());
        Ok(StartOutcome::Started { execution_arn })
    }
}

impl DeadLetters for Memory {
    async fn park(&self, body: &str, rejection: &Rejection) -> PortResult<()> {
        self.world().parked.push((body.to_owned(), rejection.clone()));
        Ok(())
    }
}

impl IdempotencyStore for Memory {
    async fn claim(&self, key: &str, order_id: &str, payload_hash: &str, _expires_at: i64) -> PortResult<Claim> {
        let mut world = self.world();
        if let Some((order_id, payload_hash, _)) = world.idempotency.get(key) {
            return Ok(Claim::Existing { order_id: order_id.clone(), payload_hash: payload_hash.clone() });
        }
        world.idempotency.insert(key.to_owned(), (order_id.to_owned(), payload_hash.to_owned(), false));
        Ok(Claim::Claimed)
    }

    async fn complete(&self, key: &str) -> PortResult<()> {
        if let Some(record) = self.world().idempotency.get_mut(key) {
            record.2 = true;
        }
        Ok(())
    }
}
