//! A snapshot of everything the invariant checker looks at: every order, event, SKU's stock and ledger
//! entry, read with consistent scans. Not atomic across tables: check a quiet system, or read in-flight
//! orders' findings with that in mind.

use nexus_aws::dynamo::Dynamo;
use nexus_core::domain::ledger::LedgerEntry;
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::stock::StockItem;
use nexus_core::ports::PortResult;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub orders: Vec<Order>,
    pub events: Vec<OrderEvent>,
    pub stock: Vec<StockItem>,
    pub ledger: Vec<LedgerEntry>,
}

/// Reads the snapshot of the stack behind `dynamo`.
pub async fn load(dynamo: &Dynamo) -> PortResult<Snapshot> {
    let tables = dynamo.tables();
    Ok(Snapshot {
        orders: dynamo.all_orders().await?,
        events: dynamo.scan_all(&tables.order_events).await?,
        stock: dynamo.all_stock().await?,
        ledger: dynamo.scan_all(&tables.ledger).await?,
    })
}
