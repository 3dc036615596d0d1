//! order-intake: the order service. Consumes the orders queue (submissions from the orders topic: validate,
//! dedupe, record, start the saga) and the order-commands queue (the saga's own steps: complete, cancel,
//! flag for attention).

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nexus_lambda::run("order-intake", "order", nexus_lambda::consumers::OrderIntake::new).await
}
