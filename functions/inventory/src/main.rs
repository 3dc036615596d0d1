//! inventory: reserves (all line items or none) and releases stock for the order saga.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use shared::config;
use shared::entry::run_saga_step;
use shared::services::inventory::InventoryService;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    run_saga_step("inventory", "inventory", |aws, dynamo| {
        Ok(InventoryService { orders: dynamo.clone(), inventory: dynamo, publisher: config::event_publisher(aws)? })
    })
    .await
}
