//! A snapshot of everything the invariant checker looks at: every order, event, SKU's stock and ledger
//! entry, read with consistent scans, the saga slots' holders, and every execution of the state machine. Not atomic across tables: check a quiet system, or read in-flight
//! orders' findings with that in mind.

use std::collections::{BTreeMap, BTreeSet};

use nexus_aws::dynamo::Dynamo;
use nexus_aws::sfn::StepFunctions;
use nexus_core::domain::ledger::LedgerEntry;
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::stock::StockItem;
use nexus_core::ports::{ExecutionStatus, PortResult};

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub orders: Vec<Order>,
    pub events: Vec<OrderEvent>,
    pub stock: Vec<StockItem>,
    pub ledger: Vec<LedgerEntry>,
    /// The orders holding a standard saga slot (None: not read, and not checked).
    pub saga_slot_holders: Option<BTreeSet<String>>,
    /// Every execution of the saga by name (None: not read, and not checked).
    pub executions: Option<BTreeMap<String, ExecutionStatus>>,
}

impl Snapshot {
    /// The part of the snapshot about `order_ids`: their orders, events and ledger entries, the executions
    /// and slots; not the stock, which they share with other orders.
    pub fn of_orders(self, order_ids: &[String]) -> Self {
        let wanted = |id: &String| order_ids.contains(id);
        Self {
            orders: self.orders.into_iter().filter(|o| wanted(&o.order_id)).collect(),
            events: self.events.into_iter().filter(|e| wanted(&e.order_id)).collect(),
            ledger: self.ledger.into_iter().filter(|e| wanted(&e.order_id)).collect(),
            stock: Vec::new(),
            saga_slot_holders: self.saga_slot_holders.map(|h| h.into_iter().filter(|id| wanted(id)).collect()),
            executions: self.executions,
        }
    }
}

/// Reads the snapshot of the stack behind `dynamo` and `saga`. The executions are listed first: an order
/// read after its execution was listed may have moved on, never back (an order that ended since is
/// terminal, which an execution listed as running never makes a violation).
pub async fn load(dynamo: &Dynamo, saga: &StepFunctions) -> PortResult<Snapshot> {
    let executions = saga.executions().await?;
    let tables = dynamo.tables();
    Ok(Snapshot {
        orders: dynamo.all_orders().await?,
        events: dynamo.scan_all(&tables.order_events).await?,
        stock: dynamo.all_stock().await?,
        ledger: dynamo.all_ledger_entries().await?,
        saga_slot_holders: Some(dynamo.saga_slot_holders().await?),
        executions: Some(executions),
    })
}
