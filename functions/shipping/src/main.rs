//! shipping: dispatches and cancels shipments for the order saga.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use shared::config;
use shared::entry::run_saga_step;
use shared::services::shipping::ShippingService;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    run_saga_step("shipping", "shipping", |aws, dynamo| {
        Ok(ShippingService { orders: dynamo.clone(), shipments: dynamo, publisher: config::event_publisher(aws)? })
    })
    .await
}
