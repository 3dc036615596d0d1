//! The simulation held to reality: a fixed set of orders run in the simulation and on the local stack
//! (`tests/tests/differential.rs`) must end the same: each order's status and reason, its status changes,
//! its effects in the ledger, and the stock. [`summarize`] is the one reading of an order both sides use;
//! [`Act`] is the one script both sides play.

use std::collections::BTreeMap;

use nexus_core::domain::checkout::Tier;
use nexus_core::domain::ids;
use nexus_core::domain::ledger::LedgerEntry;
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::stock::StockItem;
use serde_json::Value;

use nexus_ops::retry;

use crate::asl::AslError;
use crate::ports::FaultPlan;
use crate::template::Topology;
use crate::world::{ORDERS_TOPIC, World};

/// How an order ended, as both sides can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub status: String,
    pub reason: Option<String>,
    /// The statuses of its events, in sequence order.
    pub changes: Vec<String>,
    /// Its effects (not its notifications) by ledger entry: their final state.
    pub effects: BTreeMap<String, String>,
}

/// The summary of `order`, from its events and ledger entries.
pub fn summarize(order: &Order, events: &[OrderEvent], ledger: &[LedgerEntry]) -> Summary {
    let mut events: Vec<&OrderEvent> = events.iter().collect();
    events.sort_by_key(|e| e.sequence);
    Summary {
        status: order.status.as_str().to_owned(),
        reason: order.reason.clone(),
        changes: events.iter().map(|e| e.status.as_str().to_owned()).collect(),
        effects: ledger
            .iter()
            .filter(|e| e.effect().is_some())
            .map(|e| (e.entry.clone(), format!("{:?}", e.state)))
            .collect(),
    }
}

/// One step of the script: a submission, run until its order ends, with or without an outage.
#[derive(Debug, Clone)]
pub enum Act {
    Submit(Value),
    /// The submission while payment is down: its order reserves and its execution retries the charge.
    /// Then, as the outage says, payment comes back, or the operator stops the execution first and runs
    /// `nexus retry` once payment is back.
    PaymentDown(Value, AfterOutage),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterOutage {
    Recover,
    StopThenRetry,
}

impl Act {
    pub fn submission(&self) -> &Value {
        match self {
            Act::Submit(submission) | Act::PaymentDown(submission, _) => submission,
        }
    }

    pub fn order_id(&self) -> String {
        ids::order_id_for_key(self.submission()["idempotencyKey"].as_str().unwrap_or_default())
    }
}

/// How long a payment outage lasts in the simulation: several of the charge's retries.
const OUTAGE_MS: u64 = 120_000;

/// Plays `acts` one after another on `stock` (SKU, units, unit price), for customers of whom `vip` are
/// recorded VIP, without faults but the outages the acts name; each order's summary (in the order of the
/// acts) and the stock after.
pub fn run(
    topology: &Topology,
    stock: &[(String, u64, u64)],
    vip: &[String],
    acts: &[Act],
) -> Result<(Vec<Summary>, BTreeMap<String, u64>), AslError> {
    let mut world = World::new(topology.clone(), 1, FaultPlan::default(), false)?;
    world.memory.world().stock = stock
        .iter()
        .map(|(sku, units, price)| {
            let item =
                StockItem { sku: sku.clone(), available: *units, initial: *units, unit_price_cents: Some(*price) };
            (sku.clone(), item)
        })
        .collect();
    for customer in vip {
        world.memory.set_tier(customer, Tier::Vip);
    }
    let quiet = |world: &World| world.now() + 7 * 24 * 3_600_000;
    for act in acts {
        let down = matches!(act, Act::PaymentDown(..));
        if down {
            world.ports.bus().faults.outage = Some(("payments", world.now(), u64::MAX));
        }
        world.publish(ORDERS_TOPIC, &act.submission().to_string(), &BTreeMap::new());
        world.run_until_quiet(if down { world.now() + OUTAGE_MS } else { quiet(&world) });
        if let Act::PaymentDown(_, after) = act {
            let order_id = act.order_id();
            let execution = world.memory.world().orders.get(&order_id).and_then(retry::current_execution);
            if *after == AfterOutage::StopThenRetry
                && let Some(name) = execution
            {
                world.stop(&name);
            }
            world.ports.bus().faults.outage = None;
            world.run_until_quiet(quiet(&world));
            if *after == AfterOutage::StopThenRetry {
                crate::scenario::spawn_retry(&mut world, order_id);
                world.run_until_quiet(quiet(&world));
            }
        }
    }
    let memory = world.memory.world();
    let summaries = acts
        .iter()
        .map(|act| {
            let order_id = act.order_id();
            let order = memory.orders.get(&order_id).cloned().unwrap_or_default();
            let events = memory.events.get(&order_id).cloned().unwrap_or_default();
            let ledger: Vec<LedgerEntry> =
                memory.ledger.iter().filter(|((id, _), _)| id == &order_id).map(|(_, e)| e.clone()).collect();
            summarize(&order, &events, &ledger)
        })
        .collect();
    let stock = memory.stock.values().map(|item| (item.sku.clone(), item.available)).collect();
    Ok((summaries, stock))
}
