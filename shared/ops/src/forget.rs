//! `nexus forget`: erase a customer's personal data (email, shipping address, payment token) from every
//! order of theirs that has ended, and the retention rule (`--ended-before`): the same erasure for every
//! order that ended before a date. The money and stock facts stay (the ledger, the totals, the events),
//! for the invariant checker and the books. Idempotent: an erased order is counted, never written again.
//! What it cannot erase is listed with the reason: an order still running (its saga needs the address),
//! an order that needs attention (its compensation may need to run again), and dead letters that name the
//! customer (`nexus dlq`).

use nexus_core::domain::checkout::{Address, PaymentDetails};
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use nexus_core::ports::PortResult;
use serde::Serialize;

/// The stores `forget` reads and writes.
pub trait PersonalData: Send + Sync {
    /// Every order (a scan: an operator's tool).
    fn orders(&self) -> impl Future<Output = PortResult<Vec<Order>>> + Send;
    /// Writes `erased` over the order unless it changed since `current` was read (`Ok(false)`).
    fn erase(&self, current: &Order, erased: &Order) -> impl Future<Output = PortResult<bool>> + Send;
}

impl PersonalData for nexus_aws::dynamo::Dynamo {
    async fn orders(&self) -> PortResult<Vec<Order>> {
        self.all_orders().await
    }
    async fn erase(&self, current: &Order, erased: &Order) -> PortResult<bool> {
        self.erase_personal_data(current, erased).await
    }
}

/// Whether a message body (a submission) names `customer_id`.
pub fn names_customer(body: &str, customer_id: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|value| value.get("customerId").and_then(serde_json::Value::as_str) == Some(customer_id))
}

/// Which orders to erase.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every order of this customer.
    Customer(String),
    /// Every order that ended (its last change) before this RFC 3339 time: the retention rule.
    EndedBefore(String),
}

impl Scope {
    fn covers(&self, order: &Order) -> bool {
        match self {
            Scope::Customer(customer) => order.customer_id == *customer,
            Scope::EndedBefore(cutoff) => order.updated_at.as_str() < cutoff.as_str(),
        }
    }
}

/// What a run did and could not do.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    /// Orders whose personal data this run erased.
    pub erased: Vec<String>,
    /// Orders already erased by an earlier run.
    pub already_erased: Vec<String>,
    /// What was left, and why.
    pub kept: Vec<Kept>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    pub what: String,
    pub why: String,
}

/// The order with its personal data blanked, erased `at`.
pub fn erased(order: &Order, at: &str) -> Order {
    Order {
        customer_email: String::new(),
        shipping_address: Address::default(),
        payment: PaymentDetails { method: order.payment.method.clone(), token: String::new() },
        personal_data_erased_at: Some(at.to_owned()),
        ..order.clone()
    }
}

/// Why an order's personal data must stay for now, if it must.
fn must_keep(order: &Order) -> Option<&'static str> {
    match order.status {
        OrderStatus::NeedsAttention => {
            Some("it needs attention: its compensation may run again (nexus retry); run forget once it has ended")
        }
        status if !status.is_terminal() => Some("its saga still runs and needs the address; run forget once it ends"),
        _ => None,
    }
}

/// Erases the personal data of the orders `scope` covers, at `now` (RFC 3339).
pub async fn forget<P: PersonalData>(store: &P, scope: &Scope, now: &str) -> PortResult<Erasure> {
    let mut report = Erasure::default();
    let mut orders: Vec<Order> = store.orders().await?.into_iter().filter(|o| scope.covers(o)).collect();
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    for order in orders {
        if order.personal_data_erased_at.is_some() {
            report.already_erased.push(order.order_id);
        } else if let Some(why) = must_keep(&order) {
            report.kept.push(Kept { what: format!("order {} ({})", order.order_id, order.status), why: why.into() });
        } else if store.erase(&order, &erased(&order, now)).await? {
            report.erased.push(order.order_id);
        } else {
            let why = "it changed while being erased (a retry?); run forget again".into();
            report.kept.push(Kept { what: format!("order {}", order.order_id), why });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Orders in memory, erased as the adapter erases: on the version read.
    #[derive(Default)]
    struct Orders(Mutex<Vec<Order>>);

    impl PersonalData for Orders {
        async fn orders(&self) -> PortResult<Vec<Order>> {
            Ok(self.0.lock().expect("lock").clone())
        }
        async fn erase(&self, current: &Order, erased: &Order) -> PortResult<bool> {
            let mut orders = self.0.lock().expect("lock");
            let Some(stored) = orders.iter_mut().find(|o| o.order_id == current.order_id) else { return Ok(false) };
            if stored.version != current.version {
                return Ok(false);
            }
            *stored = erased.clone();
            Ok(true)
        }
    }

    fn order(id: &str, customer: &str, status: OrderStatus, updated_at: &str) -> Order {
        Order {
            order_id: id.into(),
            customer_id: customer.into(),
            customer_email: "meera@example.com".into(),
            shipping_address: Address { line1: "4 Park Street".into(), ..Address::default() },
            payment: PaymentDetails { method: "card".into(), token: "tok_4242".into() },
            status,
            total_cents: 2500,
            version: 5,
            updated_at: updated_at.into(),
            ..Order::default()
        }
    }

    #[tokio::test]
    async fn a_customers_ended_orders_are_erased_once_and_the_rest_is_listed() {
        let store = Orders(Mutex::new(vec![
            order("a", "c-1", OrderStatus::Completed, "2026-01-01T00:00:00Z"),
            order("b", "c-1", OrderStatus::PaymentCharged, "2026-01-01T00:00:00Z"),
            order("c", "c-1", OrderStatus::NeedsAttention, "2026-01-01T00:00:00Z"),
            order("d", "c-2", OrderStatus::Cancelled, "2026-01-01T00:00:00Z"),
        ]));
        let scope = Scope::Customer("c-1".into());
        let report = forget(&store, &scope, "2026-12-05T00:00:00Z").await.expect("forget");
        assert_eq!(report.erased, ["a"]);
        assert_eq!(
            report.kept.iter().map(|k| k.what.as_str()).collect::<Vec<_>>(),
            ["order b (PAYMENT_CHARGED)", "order c (NEEDS_ATTENTION)"]
        );
        let orders = store.0.lock().expect("lock").clone();
        let a = &orders[0];
        let text = serde_json::to_string(a).expect("json");
        for secret in ["meera", "Park Street", "tok_4242"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(
            (a.total_cents, a.status, a.version, a.payment.method.as_str()),
            (2500, OrderStatus::Completed, 5, "card")
        );
        assert_eq!(orders[3].customer_email, "meera@example.com", "another customer's order is untouched");
        // Again: nothing more to do, and nothing written twice.
        let again = forget(&store, &scope, "2026-12-06T00:00:00Z").await.expect("forget");
        assert!(again.erased.is_empty());
        assert_eq!(again.already_erased, ["a"]);
        assert_eq!(store.0.lock().expect("lock")[0].personal_data_erased_at.as_deref(), Some("2026-12-05T00:00:00Z"));
    }

    #[tokio::test]
    async fn the_retention_rule_erases_every_order_that_ended_before_the_cutoff() {
        let store = Orders(Mutex::new(vec![
            order("old", "c-1", OrderStatus::Completed, "2026-01-01T00:00:00Z"),
            order("rejected", "c-3", OrderStatus::Rejected, "2026-02-01T00:00:00Z"),
            order("new", "c-2", OrderStatus::Completed, "2026-11-30T00:00:00Z"),
        ]));
        let report = forget(&store, &Scope::EndedBefore("2026-06-01T00:00:00Z".into()), "2026-12-05T00:00:00Z")
            .await
            .expect("forget");
        assert_eq!(report.erased, ["old", "rejected"]);
        assert_eq!(store.0.lock().expect("lock")[2].customer_email, "meera@example.com");
    }
}
