//! `nexus republish`: an order's events published again, from its event log (the record of every status
//! change). A status change is written before its event is published; should the publish fail and the
//! step that wrote it never run again (its execution stopped, or its budget spent on another failure),
//! the event is written but was never sent. Subscribers dedupe by event id, so sending every event again
//! is safe; the invariant checker names the orders that need it (`event-not-notified`).

use nexus_core::ports::{EventLog, EventPublisher, PortResult};

/// Publishes every event of `order_id` again, in sequence order; returns how many.
pub async fn republish<L: EventLog, P: EventPublisher>(log: &L, publisher: &P, order_id: &str) -> PortResult<usize> {
    let events = log.events(order_id).await?;
    for event in &events {
        publisher.publish(event).await?;
    }
    Ok(events.len())
}
