//! shipping: dispatches and cancels shipments for the order saga.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nexus_lambda::run("shipping", "shipping", nexus_lambda::consumers::SagaCommands::shipping).await
}
