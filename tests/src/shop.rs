//! The shop the guarantee and outage tests drive: SKUs of their own on a deployed stack, orders published
//! to its orders topic, waits for their sagas, and the invariant checker over what they did.

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_aws::dynamo::Dynamo;
use nexus_aws::dynamo::catalog::CustomerRecord;
use nexus_aws::sfn::StepFunctions;
use nexus_aws::sns::SnsEvents;
use nexus_core::chaos::{CACHE_TTL, ChaosSettings, ServiceChaos};
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::order::Order;
use nexus_core::domain::status::OrderStatus;
use nexus_core::domain::stock::StockItem;
use nexus_ops::invariants::{self, Snapshot};
use nexus_ops::retry::{Retried, retry};
use serde_json::json;

use nexus_core::ports::{EventLog, OrderStore};

use crate::{LocalStack, run_id};

/// A test's view of a stack: its own SKUs, its orders submitted through the orders topic, the invariant
/// checker over them.
pub struct Shop {
    pub stack: LocalStack,
    pub store: Dynamo,
    pub run: String,
}

/// The catalog price of every SKU a test's shop stocks.
pub const UNIT_PRICE_CENTS: u64 = 1000;

impl Shop {
    /// The stack named by the environment variable `stack_variable`.
    /// The shop of a test run: its VIP customer ([`Self::vip_customer`]) recorded as VIP.
    pub async fn open(stack_variable: &str) -> Self {
        let stack = LocalStack::connect(stack_variable).await;
        let store = stack.dynamo();
        let shop = Self { stack, store, run: run_id() };
        let vip = CustomerRecord { customer_id: shop.vip_customer(), tier: Tier::Vip };
        shop.store.set_customer(&vip).await.expect("record the VIP customer");
        shop
    }

    /// The customer whose orders run in the VIP lane: the tier is the customer's record, not the message's.
    pub fn vip_customer(&self) -> String {
        format!("{}-vip", self.run)
    }

    /// A SKU of this run, with `units` in stock at [`UNIT_PRICE_CENTS`].
    pub async fn sku(&self, name: &str, units: u64) -> String {
        let sku = format!("G-{}-{name}", self.run);
        self.store.set_stock(&sku, units).await.expect("set stock");
        self.store.set_price(&sku, UNIT_PRICE_CENTS).await.expect("set price");
        sku
    }

    /// Publishes all orders at once (concurrently) and returns their ids.
    pub async fn submit_all(&self, orders: Vec<Vec<(String, u32)>>) -> Vec<String> {
        self.submit_batch("", orders).await
    }

    /// As [`Self::submit_all`], with `batch` in the idempotency keys (for a second batch of the same run).
    pub async fn submit_batch(&self, batch: &str, orders: Vec<Vec<(String, u32)>>) -> Vec<String> {
        self.submit_batch_to(batch, orders, "452001").await
    }

    /// As [`Self::submit_batch`], shipping to `postal_code` (the contract's `00000` no carrier serves).
    pub async fn submit_batch_to(
        &self,
        batch: &str,
        orders: Vec<Vec<(String, u32)>>,
        postal_code: &str,
    ) -> Vec<String> {
        // Every third order a VIP one: both lanes carry the tests' orders.
        let tiers = (0..orders.len()).map(|i| if i % 3 == 0 { Tier::Vip } else { Tier::Standard });
        self.submit_tiered(batch, orders.into_iter().zip(tiers).collect(), postal_code).await
    }

    /// Publishes all orders at once, each in the tier given, and returns their ids.
    pub async fn submit_tiered(
        &self,
        batch: &str,
        orders: Vec<(Vec<(String, u32)>, Tier)>,
        postal_code: &str,
    ) -> Vec<String> {
        let sns = aws_sdk_sns::Client::new(&self.stack.config);
        let topic = self.stack.output("OrdersTopicArn");
        let mut ids = Vec::new();
        let mut sends = Vec::new();
        for (i, (items, tier)) in orders.into_iter().enumerate() {
            let key = format!("{}{batch}-{i}", self.run);
            ids.push(nexus_core::domain::ids::order_id_for_key(&key));
            let customer = if tier == Tier::Vip { self.vip_customer() } else { format!("c-{i}") };
            let message = json!({
                "schemaVersion": 1, "idempotencyKey": key, "customerId": customer,
                "customerEmail": "load@example.com", "tier": tier.as_str(), "currency": "INR",
                "items": items.iter().map(|(sku, qty)| json!({"sku": sku, "quantity": qty, "unitPriceCents": UNIT_PRICE_CENTS})).collect::<Vec<_>>(),
                "payment": {"method": "card", "token": "tok_ok"},
                "shippingAddress": {"line1": "1 MG Road", "city": "Indore", "postalCode": postal_code, "country": "IN"}
            });
            let (sns, topic) = (sns.clone(), topic.clone());
            sends.push(tokio::spawn(async move {
                sns.publish().topic_arn(topic).message(message.to_string()).send().await
            }));
        }
        for send in sends {
            send.await.expect("task").expect("publish");
        }
        ids
    }

    /// Polls only the orders still running, gently: LocalStack runs the sagas on the same two cores.
    pub async fn wait_all_terminal(&self, ids: &[String]) -> Vec<Order> {
        self.wait_all_terminal_within(ids, Duration::from_secs(300)).await
    }

    pub async fn wait_all_terminal_within(&self, ids: &[String], wait: Duration) -> Vec<Order> {
        let give_up = std::time::Instant::now() + wait;
        let mut remaining: Vec<String> = ids.to_vec();
        let mut finished = BTreeMap::new();
        while !remaining.is_empty() && std::time::Instant::now() < give_up {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut still = Vec::new();
            for id in remaining {
                match self.store.get(&id).await.expect("get") {
                    Some(order) if order.status.is_terminal() => {
                        finished.insert(id, order);
                    }
                    _ => still.push(id),
                }
            }
            remaining = still;
        }
        assert!(remaining.is_empty(), "orders never finished: {remaining:?}");
        ids.iter().filter_map(|id| finished.remove(id)).collect()
    }

    pub async fn stock(&self, sku: &str) -> StockItem {
        self.store.stock(sku).await.expect("get stock").expect("sku")
    }

    /// Takes `services` down (every command fails as transient, through the stack's chaos settings) and
    /// every other one up; in effect once the functions' settings cache has expired.
    pub async fn outage(&self, services: &[&str]) {
        let mut settings = ChaosSettings::default();
        for service in services {
            settings.services.insert((*service).into(), ServiceChaos { failure_rate: 1.0, ..ServiceChaos::default() });
        }
        self.store.save_chaos(&settings).await.expect("save chaos settings");
        tokio::time::sleep(CACHE_TTL).await;
    }

    /// `nexus retry` of one order, through the adapters the CLI uses. An order needing attention is retried
    /// once the execution that flagged it has ended (seconds after).
    pub async fn operator_retry(&self, order_id: &str) -> Retried {
        let events =
            SnsEvents::new(aws_sdk_sns::Client::new(&self.stack.config), self.stack.output("OrderEventsTopicArn"));
        let saga = StepFunctions::new(
            aws_sdk_sfn::Client::new(&self.stack.config),
            self.stack.output("OrderSagaStateMachineArn"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match retry(&self.store, &self.store, &events, &saga, order_id).await {
                Err(e) if e.to_string().contains("still ending") && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                other => return other.expect("retried"),
            }
        }
    }

    /// The invariant checker over this test's orders and SKUs.
    pub async fn verify(&self, orders: Vec<Order>, skus: &[String]) -> invariants::Report {
        let mut snapshot = Snapshot { orders, ..Snapshot::default() };
        for order in &snapshot.orders {
            snapshot.events.extend(self.store.events(&order.order_id).await.expect("events"));
            snapshot.ledger.extend(self.store.ledger(&order.order_id).await.expect("ledger"));
        }
        for sku in skus {
            snapshot.stock.push(self.stock(sku).await);
        }
        invariants::check(&snapshot, chrono::Utc::now().timestamp())
    }
}

pub fn count(orders: &[Order], status: OrderStatus, reason: Option<&str>) -> usize {
    orders.iter().filter(|o| o.status == status && (reason.is_none() || o.reason.as_deref() == reason)).count()
}
