//! payment: charges (once per order at most) and refunds for the order saga.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

use shared::config;
use shared::entry::run_saga_step;
use shared::services::payment::PaymentService;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    run_saga_step("payment", "payment", |aws, dynamo| {
        Ok(PaymentService { orders: dynamo.clone(), payments: dynamo, publisher: config::event_publisher(aws)? })
    })
    .await
}
