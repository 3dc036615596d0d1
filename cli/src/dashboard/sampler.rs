//! Reads the stack on a fixed beat and publishes one [`Screen`] per beat, whatever the number of open
//! pages: the page's cost to AWS is the sampler's, bounded per refresh (below), never per viewer.
//!
//! Every 2 s: one bounded orders scan (at most [`ORDERS_READ`] orders), the events of at most
//! [`EVENT_QUERIES`] newly ended orders (ended orders' events never change, so they are kept), one
//! `ListExecutions` of the running sagas, the depth of every queue and DLQ, the chaos and saga-slot
//! settings. Every 10 s besides: inventory (at most [`SKUS_READ`] SKUs), the other execution statuses,
//! the oldest-message age of every queue (one `GetMetricData`) and of each non-empty DLQ (a peek). The
//! invariant checker, which reads every table in full, runs every `--verify-every` (default 30 s; 0: never).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use nexus_aws::dynamo::Dynamo;
use nexus_core::chaos::ChaosSettings;
use nexus_core::domain::messages::OrderEvent;
use nexus_core::domain::order::Order;
use nexus_core::domain::stock::StockItem;
use nexus_core::ports::{ChaosSource, EventLog};
use nexus_ops::{invariants, snapshot};
use serde::Serialize;
use tokio::sync::watch;

use super::board::{self, OrdersView, StepLatency};
use super::calls::Clients;
use super::queues::{self, QueueRow};
use crate::stack::Nexus;

pub const BEAT: Duration = Duration::from_secs(2);
const SLOW_BEAT: Duration = Duration::from_secs(10);
pub const ORDERS_READ: usize = 5_000;
pub const EVENT_QUERIES: usize = 10;
const SKUS_READ: usize = 500;
/// Ended orders whose events are kept for the step latencies.
const TIMELINES_KEPT: usize = 200;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Screen {
    pub at: String,
    pub stack: String,
    pub read_only: bool,
    /// A local stack's LocalStack: whether it is Nexus's own and patched (None on AWS).
    pub emulator: Option<crate::emulator::Emulator>,
    /// 1 for the first screen, + 1 per refresh.
    pub refresh: u64,
    pub orders: OrdersView,
    pub steps: Vec<StepLatency>,
    /// Execution status → count (capped at one page of 1000: `more` says there are others).
    pub executions: BTreeMap<String, Count>,
    pub queues: Vec<QueueRow>,
    pub inventory: Vec<StockItem>,
    pub verdict: Option<Verdict>,
    /// How often the invariant checker runs (None: never, `--verify-every 0`).
    pub verify_every_seconds: Option<u64>,
    pub chaos: ChaosSettings,
    pub standard_saga_slots_held: usize,
    pub cost: Cost,
    /// What could not be read this refresh (the rest of the screen is still fresh).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    pub count: usize,
    pub more: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub at: String,
    pub orders: usize,
    pub in_flight: usize,
    pub violations: Vec<invariants::Violation>,
}

/// What reading the stack costs.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// AWS requests of the last refresh (a slow one included, when it was one).
    pub calls: u64,
    pub refresh_ms: u64,
    pub total_calls: u64,
}

pub struct Sampler {
    nexus: Arc<Nexus>,
    clients: Clients,
    dynamo: Dynamo,
    verify_every: Option<Duration>,
    /// Events of ended orders, by order id.
    timelines: HashMap<String, Vec<OrderEvent>>,
    last_slow: Option<Instant>,
    last_verdict: Option<Instant>,
    screen: Screen,
}

impl Sampler {
    pub async fn new(
        nexus: Arc<Nexus>,
        clients: Clients,
        dynamo: Dynamo,
        read_only: bool,
        verify_every: Duration,
    ) -> Self {
        let verify_every = (!verify_every.is_zero()).then_some(verify_every);
        let screen = Screen {
            stack: nexus.stack.clone(),
            read_only,
            // Once: the emulator does not change under a running dashboard.
            emulator: nexus.emulator().await,
            verify_every_seconds: verify_every.map(|every| every.as_secs()),
            ..Screen::default()
        };
        Self {
            nexus,
            clients,
            dynamo,
            verify_every,
            timelines: HashMap::new(),
            last_slow: None,
            last_verdict: None,
            screen,
        }
    }

    /// The last screen read.
    pub fn current(&self) -> &Screen {
        &self.screen
    }

    /// Refreshes on the beat and publishes each screen, until every receiver is gone.
    pub async fn run(mut self, screens: watch::Sender<Arc<Screen>>) {
        let mut beat = tokio::time::interval(BEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beat.tick().await;
            self.refresh().await;
            if screens.send(Arc::new(self.screen.clone())).is_err() {
                return;
            }
        }
    }

    pub async fn refresh(&mut self) {
        let started = Instant::now();
        let calls_before = self.clients.counter.total();
        let now = Utc::now();
        let screen = &mut self.screen;
        screen.errors.clear();
        screen.refresh += 1;

        let orders_table = self.dynamo.tables().orders.clone();
        let (orders, running, depths, chaos, slots) = tokio::join!(
            self.dynamo.scan_upto::<Order>(&orders_table, ORDERS_READ),
            count_executions(&self.clients.sfn, &self.nexus, ExecutionStatus::Running),
            queues::queue_depths(&self.clients.sqs, &self.nexus),
            self.dynamo.load(),
            self.dynamo.saga_slot_holders(),
        );
        match orders {
            Ok((orders, truncated)) => {
                screen.orders = board::orders_view(&orders, truncated, now);
                refresh_timelines(&self.dynamo, &mut self.timelines, &orders, &mut screen.errors).await;
                screen.steps = board::step_latencies(self.timelines.values().map(Vec::as_slice));
            }
            Err(e) => screen.errors.push(format!("orders: {e}")),
        }
        match running {
            Ok(count) => {
                screen.executions.insert(ExecutionStatus::Running.as_str().to_owned(), count);
            }
            Err(e) => screen.errors.push(e),
        }
        queues::merge_depths(&mut screen.queues, depths);
        match chaos {
            Ok(settings) => screen.chaos = settings,
            Err(e) => screen.errors.push(format!("chaos settings: {e}")),
        }
        match slots {
            Ok(holders) => screen.standard_saga_slots_held = holders.len(),
            Err(e) => screen.errors.push(format!("saga slots: {e}")),
        }

        if self.last_slow.is_none_or(|t| t.elapsed() >= SLOW_BEAT) {
            self.last_slow = Some(Instant::now());
            self.refresh_slow(now).await;
        }
        if let Some(every) = self.verify_every
            && self.last_verdict.is_none_or(|t| t.elapsed() >= every)
        {
            self.last_verdict = Some(Instant::now());
            let saga = nexus_aws::sfn::StepFunctions::new(
                self.clients.sfn.clone(),
                self.nexus.output("OrderSagaStateMachineArn").unwrap_or_default(),
            );
            match snapshot::load(&self.dynamo, &saga).await {
                Ok(tables) => {
                    let report = invariants::check(&tables, now.timestamp());
                    self.screen.verdict = Some(Verdict {
                        at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        orders: report.orders,
                        in_flight: report.in_flight.len(),
                        violations: report.violations,
                    });
                }
                Err(e) => self.screen.errors.push(format!("invariant checker: {e}")),
            }
        }
        let screen = &mut self.screen;
        screen.at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let total = self.clients.counter.total();
        screen.cost = Cost {
            calls: total - calls_before,
            refresh_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            total_calls: total,
        };
    }

    async fn refresh_slow(&mut self, now: DateTime<Utc>) {
        let inventory_table = self.dynamo.tables().inventory.clone();
        let others =
            [ExecutionStatus::Succeeded, ExecutionStatus::Failed, ExecutionStatus::TimedOut, ExecutionStatus::Aborted];
        let (stock, counts, ages, dlq_ages) = tokio::join!(
            self.dynamo.scan_upto::<StockItem>(&inventory_table, SKUS_READ),
            join_all(others.iter().map(|s| count_executions(&self.clients.sfn, &self.nexus, s.clone()))),
            queues::oldest_ages(&self.clients.cloudwatch, &self.nexus),
            queues::dlq_oldest_ages(&self.clients.sqs, &self.nexus, &self.screen.queues, now),
        );
        let screen = &mut self.screen;
        match stock {
            Ok((mut stock, _)) => {
                stock.sort_by(|a, b| a.sku.cmp(&b.sku));
                screen.inventory = stock;
            }
            Err(e) => screen.errors.push(format!("inventory: {e}")),
        }
        for (status, count) in others.iter().zip(counts) {
            match count {
                Ok(count) => {
                    screen.executions.insert(status.as_str().to_owned(), count);
                }
                Err(e) => screen.errors.push(e),
            }
        }
        match ages {
            Ok(ages) => {
                for row in &mut screen.queues {
                    row.oldest_age_seconds = ages.get(&row.queue).copied();
                }
            }
            Err(e) => screen.errors.push(e),
        }
        for row in &mut screen.queues {
            row.dlq_oldest_age_seconds = dlq_ages.get(&row.queue).copied();
        }
    }
}

/// Reads the events of ended orders not read yet (at most [`EVENT_QUERIES`] per refresh, newest first) and
/// forgets all but the newest [`TIMELINES_KEPT`].
async fn refresh_timelines(
    dynamo: &Dynamo,
    timelines: &mut HashMap<String, Vec<OrderEvent>>,
    orders: &[Order],
    errors: &mut Vec<String>,
) {
    let mut ended: Vec<&Order> = orders.iter().filter(|o| o.status.is_terminal()).collect();
    ended.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
    ended.truncate(TIMELINES_KEPT);
    let missing: Vec<&str> = ended
        .iter()
        .map(|o| o.order_id.as_str())
        .filter(|id| !timelines.contains_key(*id))
        .take(EVENT_QUERIES)
        .collect();
    let read = join_all(missing.iter().map(|id| dynamo.events(id))).await;
    for (id, events) in missing.into_iter().zip(read) {
        match events {
            Ok(events) => {
                timelines.insert(id.to_owned(), events);
            }
            Err(e) => errors.push(format!("events of {id}: {e}")),
        }
    }
    let kept: std::collections::HashSet<&str> = ended.iter().map(|o| o.order_id.as_str()).collect();
    timelines.retain(|id, _| kept.contains(id.as_str()));
}

async fn count_executions(sfn: &aws_sdk_sfn::Client, nexus: &Nexus, status: ExecutionStatus) -> Result<Count, String> {
    let arn = nexus.output("OrderSagaStateMachineArn").map_err(|e| format!("{e:#}"))?;
    let page = sfn
        .list_executions()
        .state_machine_arn(arn)
        .status_filter(status.clone())
        .max_results(1000)
        .send()
        .await
        .map_err(|e| format!("{} executions: {:#}", status.as_str(), crate::stack::aws_error(e)))?;
    Ok(Count { count: page.executions().len(), more: page.next_token().is_some() })
}
