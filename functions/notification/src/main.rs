//! notification: consumes the order-events topic and notifies the customer, once per event. It never
//! blocks or fails an order: a failure here only retries (then dead-letters) the notification itself.

// The saga handlers nest deep async state machines; the default limit is too low to lay them out.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nexus_lambda::run("notification", "notification", nexus_lambda::consumers::OrderEvents::new).await
}
