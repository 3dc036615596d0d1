//! Reclaiming saga slots: a standard order frees its slot in the write that ends its saga, so a slot whose
//! holder has ended (or does not exist) was leaked by something else: a bug, or a hand-edited table. The
//! invariant checker names such slots (`saga-slot-freed`); `nexus verify --reclaim-slots` frees them, and
//! the stack alarms when it has to (`SagaSlotsReclaimed`), since each one narrowed the standard lane.

use nexus_core::ports::{OrderStore, PortResult, SagaSlots};

/// Frees every slot whose holder is not a standard saga in flight; returns the holders it freed.
pub async fn reclaim<S: SagaSlots, O: OrderStore>(slots: &S, orders: &O) -> PortResult<Vec<String>> {
    let mut reclaimed = Vec::new();
    for holder in slots.holders().await? {
        let in_flight = orders.get(&holder).await?.is_some_and(|order| !order.status.is_terminal());
        if !in_flight && slots.free(&holder).await? {
            reclaimed.push(holder);
        }
    }
    Ok(reclaimed)
}
