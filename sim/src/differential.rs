//! The simulation held to reality: a fixed set of orders run in the simulation and on the local stack
//! (`tests/tests/differential.rs`) must end the same: each order's status and reason, its status changes,
//! its effects in the ledger, and the stock. [`summarize`] is the one reading of an order both sides use.

use std::collections::BTreeMap;

use nexus_core::domain::ids;
use nexus_core::domain::ledger::LedgerEntry;
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::stock::StockItem;
use serde_json::Value;

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

/// Runs `submissions` one after another on `stock`, without faults; each order's summary (in the order of
/// the submissions) and the stock after.
pub fn run(
    topology: &Topology,
    stock: &[(String, u64)],
    submissions: &[Value],
) -> Result<(Vec<Summary>, BTreeMap<String, u64>), AslError> {
    let mut world = World::new(topology.clone(), 1, FaultPlan::default(), false)?;
    world.memory.world().stock = stock
        .iter()
        .map(|(sku, units)| (sku.clone(), StockItem { sku: sku.clone(), available: *units, initial: *units }))
        .collect();
    let key = |s: &Value| s["idempotencyKey"].as_str().unwrap_or_default().to_owned();
    let quiet = 7 * 24 * 3_600_000;
    for submission in submissions {
        world.publish(ORDERS_TOPIC, &submission.to_string(), &BTreeMap::new());
        world.run_until_quiet(quiet);
    }
    let memory = world.memory.world();
    let summaries = submissions
        .iter()
        .map(|s| {
            let order_id = ids::order_id_for_key(&key(s));
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
