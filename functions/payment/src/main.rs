//! payment: charges (once per order at most) and refunds for the order saga.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nexus_lambda::run("payment", "payment", nexus_lambda::consumers::SagaCommands::payment).await
}
