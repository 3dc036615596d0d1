//! Chaos crash points after writes. [`crate::chaos::Chaos`] may crash a process before a command; these
//! crash it right after a write, a publish or an answer succeeded (between two writes, or between a write
//! and its publish), each with the service's `crashRate`. [`CrashAfter`] wraps an adapter and delegates every
//! port call to it; after a call that changed something it may abort the process, as a Lambda runtime that
//! dies there would. The rate is the one the chaos settings last set in this process (0 unless the stack
//! was deployed with `ChaosEnabled=true`), so in production this is one atomic load per write.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use nexus_core::chaos::ChaosSettings;
use nexus_core::domain::checkout::{Address, LineItem};
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::submission::Rejection;
use nexus_core::ports::*;
use serde_json::Value;

/// The crash rate after a write, as `f64` bits.
static CRASH_RATE: AtomicU64 = AtomicU64::new(0);

/// Sets the probability of a crash after each write (the chaos settings' `crashRate`).
pub fn set_rate(rate: f64) {
    CRASH_RATE.store(rate.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
}

fn maybe_crash<T>(point: &'static str, result: &PortResult<T>) {
    let rate = f64::from_bits(CRASH_RATE.load(Ordering::Relaxed));
    if result.is_ok() && rate > 0.0 && fastrand::f64() < rate {
        tracing::error!(crashRate = rate, after = point, "chaos: crashing the process after a write");
        std::process::abort();
    }
}

/// An adapter whose writes may be followed by a crash of the process (see the module's documentation).
#[derive(Clone)]
pub struct CrashAfter<P>(pub P);

impl<P: OrderStore> OrderStore for CrashAfter<P> {
    async fn get(&self, order_id: &str) -> PortResult<Option<Order>> {
        self.0.get(order_id).await
    }
    async fn create(&self, order: &Order, event: &OrderEvent) -> PortResult<CreateOutcome> {
        let result = self.0.create(order, event).await;
        maybe_crash("order created", &result);
        result
    }
    async fn create_rejected(&self, order: &Order, event: &OrderEvent) -> PortResult<bool> {
        let result = self.0.create_rejected(order, event).await;
        maybe_crash("rejection recorded", &result);
        result
    }
    async fn transition(&self, current: &Order, next: &Order, event: &OrderEvent) -> PortResult<()> {
        let result = self.0.transition(current, next, event).await;
        maybe_crash("order transition", &result);
        result
    }
}

impl<P: EventPublisher> EventPublisher for CrashAfter<P> {
    async fn publish(&self, event: &OrderEvent) -> PortResult<()> {
        let result = self.0.publish(event).await;
        maybe_crash("event published", &result);
        result
    }
}

impl<P: Inventory> Inventory for CrashAfter<P> {
    async fn reserve(
        &self,
        order_id: &str,
        attempt: u32,
        items: &[LineItem],
        moving: Option<&Transition>,
    ) -> PortResult<ReserveOutcome> {
        let result = self.0.reserve(order_id, attempt, items, moving).await;
        maybe_crash("stock reserved", &result);
        result
    }
    async fn release(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        let result = self.0.release(order_id, attempt).await;
        maybe_crash("stock released", &result);
        result
    }
}

impl<C: Catalog> Catalog for CrashAfter<C> {
    async fn lookup(&self, skus: &BTreeSet<String>, customer_id: &str) -> PortResult<CatalogEntries> {
        self.0.lookup(skus, customer_id).await
    }
}

impl<P: Payments> Payments for CrashAfter<P> {
    async fn charge(
        &self,
        order_id: &str,
        attempt: u32,
        amount: u64,
        currency: &str,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        let result = self.0.charge(order_id, attempt, amount, currency, moving).await;
        maybe_crash("payment charged", &result);
        result
    }
    async fn refund(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        let result = self.0.refund(order_id, attempt).await;
        maybe_crash("payment refunded", &result);
        result
    }
}

impl<P: Shipments> Shipments for CrashAfter<P> {
    async fn dispatch(
        &self,
        order_id: &str,
        attempt: u32,
        address: &Address,
        moving: Option<&Transition>,
    ) -> PortResult<ApplyOutcome> {
        let result = self.0.dispatch(order_id, attempt, address, moving).await;
        maybe_crash("shipment dispatched", &result);
        result
    }
    async fn cancel(&self, order_id: &str, attempt: u32) -> PortResult<UndoOutcome> {
        let result = self.0.cancel(order_id, attempt).await;
        maybe_crash("shipment cancelled", &result);
        result
    }
}

impl<P: Notifications> Notifications for CrashAfter<P> {
    async fn record(&self, event: &OrderEvent, email_hash: &str) -> PortResult<bool> {
        let result = self.0.record(event, email_hash).await;
        maybe_crash("notification recorded", &result);
        result
    }
}

impl<P: IdempotencyStore> IdempotencyStore for CrashAfter<P> {
    async fn claim(&self, key: &str, order_id: &str, payload_hash: &str, expires_at: i64) -> PortResult<Claim> {
        let result = self.0.claim(key, order_id, payload_hash, expires_at).await;
        maybe_crash("idempotency key claimed", &result);
        result
    }
}

impl<P: TaskCallbacks> TaskCallbacks for CrashAfter<P> {
    async fn succeed(&self, task_token: &str, output: &Value) -> PortResult<CallbackOutcome> {
        let result = self.0.succeed(task_token, output).await;
        maybe_crash("task answered", &result);
        result
    }
    async fn fail(&self, task_token: &str, error: &str, cause: &str) -> PortResult<CallbackOutcome> {
        let result = self.0.fail(task_token, error, cause).await;
        maybe_crash("task answered", &result);
        result
    }
}

impl<P: SagaStarter> SagaStarter for CrashAfter<P> {
    fn execution_arn(&self, name: &str) -> String {
        self.0.execution_arn(name)
    }
    async fn start(&self, name: &str, input: &Value) -> PortResult<StartOutcome> {
        let result = self.0.start(name, input).await;
        maybe_crash("saga started", &result);
        result
    }
    async fn status(&self, name: &str) -> PortResult<Option<ExecutionStatus>> {
        self.0.status(name).await
    }
}

impl<P: DeadLetters> DeadLetters for CrashAfter<P> {
    async fn park(&self, body: &str, rejection: &Rejection) -> PortResult<()> {
        let result = self.0.park(body, rejection).await;
        maybe_crash("message parked", &result);
        result
    }
}

impl<P: Deferrals> Deferrals for CrashAfter<P> {
    async fn defer(&self, body: &str, correlation_id: Option<&str>, delay_seconds: u32) -> PortResult<()> {
        let result = self.0.defer(body, correlation_id, delay_seconds).await;
        maybe_crash("submission deferred", &result);
        result
    }
}

impl<P: ChaosSource> ChaosSource for CrashAfter<P> {
    async fn load(&self) -> PortResult<ChaosSettings> {
        self.0.load().await
    }
}

#[cfg(test)]
mod tests {
    use nexus_testkit::Memory;

    use super::*;

    #[tokio::test]
    async fn at_rate_zero_every_call_is_delegated_and_nothing_crashes() {
        set_rate(0.0);
        let memory = Memory::with_stock(&[("SKU-1", 5)]);
        let wrapped = CrashAfter(memory.clone());
        let items = [LineItem { sku: "SKU-1".into(), quantity: 2, unit_price_cents: 100 }];
        assert_eq!(wrapped.reserve("o-1", 1, &items, None).await.expect("reserved"), ReserveOutcome::Reserved);
        assert_eq!(memory.world().available("SKU-1"), 3, "the write reached the adapter");
    }
}
