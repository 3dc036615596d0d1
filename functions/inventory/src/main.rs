//! inventory: reserves (all line items or none) and releases stock for the order saga.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nexus_lambda::run("inventory", "inventory", nexus_lambda::consumers::SagaCommands::inventory).await
}
