//! One seed's run: the orders and the operator's actions it draws, the faults, the runbook once the faults
//! stop, and the verdict: the invariant checker (the code of `nexus verify`) over every store, plus
//! quiescence (every order terminal, no slot held, every execution ended, every event notified).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use nexus_core::domain::admission::SagaLimit;
use nexus_core::domain::checkout::Tier;
use nexus_core::domain::status::OrderStatus;
use nexus_core::domain::stock::StockItem;
use nexus_core::ports::ExecutionStatus;
use nexus_ops::invariants::{self, Snapshot};
use nexus_ops::retry;
use serde_json::{Value, json};

use crate::ports::FaultPlan;
use crate::template::Topology;
use crate::world::{ORDERS_TOPIC, Timer, World};

/// What a run is made of.
#[derive(Debug, Clone)]
pub struct Settings {
    pub orders: usize,
    /// Faults on (the seeds of `make sim`), or a run without any (a differential or a happy baseline).
    pub faults: bool,
    pub keep_trace: bool,
}

#[derive(Debug, Clone)]
enum Action {
    Submit(String),
    Stop,
    Retry,
    Bound(u32),
    Tier(String, Tier),
    Price(&'static str, u64),
}

const HOUR: u64 = 3_600_000;

/// The catalog a run starts from: plentiful and scarce SKUs, and their unit prices.
const STOCK: [(&str, u64, u64); 4] =
    [("SKU-1", 10_000, 1999), ("SKU-2", 10_000, 500), ("SKU-3", 6, 120_000), ("SKU-4", 3, 75)];

/// The customers of a run (`c-0` … `c-6`) the operator has recorded as VIP; a message's tier claim is
/// drawn regardless, and an operator may change a record while orders run.
const VIP_CUSTOMERS: [&str; 2] = ["c-0", "c-3"];

/// A run's verdict.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub orders: usize,
    pub statuses: BTreeMap<String, usize>,
    pub problems: Vec<String>,
    /// Order ids the problems name (for the trace of a failing seed).
    pub subjects: Vec<String>,
    pub digest: String,
    pub steps: u64,
    pub choices: u64,
    pub faults: u64,
    pub trace: Vec<String>,
}

fn submission(rng: &mut fastrand::Rng, seed: u64, index: usize) -> Value {
    let key = format!("sim-{seed}-{index}");
    let mut order = nexus_testkit::sample_submission(&key);
    order["customerId"] = json!(format!("c-{}", index % 7));
    order["tier"] = json!(if rng.u8(..4) == 0 { "VIP" } else { "STANDARD" });
    let lines = 1 + rng.usize(..3);
    let items: Vec<Value> = (0..lines)
        .map(|line| {
            let (sku, _, price) = STOCK[(index + line) % STOCK.len()];
            let mut item = json!({"sku": sku, "quantity": 1 + rng.u32(..3)});
            // A checkout that quotes the catalog's price, none, or a stale one (refused: PriceChanged).
            match rng.u8(..10) {
                0..=4 => item["unitPriceCents"] = json!(price),
                5 => item["unitPriceCents"] = json!(1 + rng.u64(..price)),
                _ => {}
            }
            item
        })
        .collect();
    order["items"] = json!(items);
    match rng.u8(..20) {
        0 => order["payment"]["token"] = json!("tok_decline"),
        1 => order["shippingAddress"]["postalCode"] = json!("00000"),
        2 => order["items"][0]["sku"] = json!("SKU-404"),
        3 => order["items"][0]["quantity"] = json!(0),
        _ => {}
    }
    order
}

/// Runs `seed` on `topology`.
pub fn run(topology: &Topology, seed: u64, settings: &Settings) -> Result<Verdict, crate::asl::AslError> {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let submit_window = 2_000 * settings.orders as u64 + 10_000;
    let faults = if settings.faults {
        let outage = match rng.u8(..4) {
            0 => None,
            n => {
                let port = ["payments", "inventory", "shipments"][usize::from(n - 1)];
                let from = rng.u64(..submit_window);
                Some((port, from, from + rng.u64(10_000..=3_600_000)))
            }
        };
        FaultPlan { until: submit_window + 600_000, fail_before: 0.03, crash_after: 0.02, outage }
    } else {
        FaultPlan::default()
    };
    let mut world = World::new(topology.clone(), seed, faults.clone(), settings.keep_trace)?;
    world.duplicate = if settings.faults { 0.05 } else { 0.0 };
    {
        let mut memory = world.memory.world();
        for (sku, units, price) in STOCK {
            let item = StockItem { sku: sku.into(), available: units, initial: units, unit_price_cents: Some(price) };
            memory.stock.insert(sku.into(), item);
        }
        memory.tiers = VIP_CUSTOMERS.iter().map(|c| ((*c).to_owned(), Tier::Vip)).collect();
    }
    if rng.bool() {
        world.memory.world().saga_limit = SagaLimit(NonZeroU32::new(rng.u32(1..=8)));
    }

    let mut actions = Vec::new();
    for index in 0..settings.orders {
        let body = submission(&mut rng, seed, index).to_string();
        let at = rng.u64(..submit_window);
        actions.push((at, Action::Submit(body.clone())));
        if rng.u8(..10) == 0 {
            // The same submission again (a client's retry): the same order.
            actions.push((at + rng.u64(..60_000), Action::Submit(body)));
        }
    }
    if settings.faults {
        for _ in 0..1 + settings.orders / 5 {
            let at = rng.u64(..submit_window + 60_000);
            let action = match rng.u8(..5) {
                0 => Action::Stop,
                1 => Action::Retry,
                2 => Action::Bound(rng.u32(..=6)),
                3 => Action::Tier(format!("c-{}", rng.u8(..7)), if rng.bool() { Tier::Vip } else { Tier::Standard }),
                _ => {
                    let (sku, _, price) = STOCK[rng.usize(..STOCK.len())];
                    Action::Price(sku, price + rng.u64(1..=price))
                }
            };
            actions.push((at, action));
        }
    }
    for (index, (at, _)) in actions.iter().enumerate() {
        world.schedule(*at, Timer::Action(index));
    }

    // The faults stop at `faults.until`; the world then has an hour to settle before the operator takes
    // the runbook's steps (an order stuck for good keeps the lane busy, so "quiet" may never come by
    // itself: deferred submissions wait for its slot).
    let settle = faults.until.max(submit_window) + HOUR;
    let mut live = true;
    while live && world.now() < settle {
        live = world.step();
        for index in std::mem::take(&mut world.pending_actions) {
            act(&mut world, &mut rng, &actions[index].1);
        }
    }
    runbook(&mut world);
    Ok(verdict(&world, &faults))
}

fn act(world: &mut World, rng: &mut fastrand::Rng, action: &Action) {
    match action {
        Action::Submit(body) => world.publish(ORDERS_TOPIC, body, &BTreeMap::new()),
        Action::Stop => {
            let running: Vec<String> =
                world.executions.iter().filter(|(_, e)| e.ended.is_none()).map(|(n, _)| n.clone()).collect();
            if !running.is_empty() {
                let name = running[rng.usize(..running.len())].clone();
                world.record(format!("{} operator stop-execution {name}", world.now()));
                world.stop(&name);
                // Half the time the operator retries its order at once (the runbook's next step), while
                // the stopped execution's last commands may still be in flight.
                let order = world
                    .memory
                    .world()
                    .orders
                    .values()
                    .find(|o| retry::current_execution(o).as_deref() == Some(&name))
                    .map(|o| o.order_id.clone());
                if let Some(order_id) = order.filter(|_| rng.bool()) {
                    spawn_retry(world, order_id);
                }
            }
        }
        Action::Retry => {
            // An operator retries an order that looks unfinished or failed, not a completed one.
            let ids: Vec<String> = {
                let memory = world.memory.world();
                let mut ids: Vec<String> = memory
                    .orders
                    .values()
                    .filter(|o| !matches!(o.status, OrderStatus::Completed | OrderStatus::Rejected))
                    .map(|o| o.order_id.clone())
                    .collect();
                ids.sort();
                ids
            };
            if !ids.is_empty() {
                let id = ids[rng.usize(..ids.len())].clone();
                spawn_retry(world, id);
            }
        }
        Action::Bound(n) => {
            world.record(format!("{} operator bound {n}", world.now()));
            world.memory.world().saga_limit = SagaLimit(NonZeroU32::new(*n));
        }
        Action::Tier(customer, tier) => {
            world.record(format!("{} operator customers set {customer} --tier {}", world.now(), tier.as_str()));
            world.memory.world().tiers.insert(customer.clone(), *tier);
        }
        Action::Price(sku, price) => {
            world.record(format!("{} operator inventory set {sku} --price {price}", world.now()));
            world.memory.set_price(sku, *price);
        }
    }
}

/// `nexus retry` of the order, as an operator's invocation interleaved with the rest.
pub(crate) fn spawn_retry(world: &mut World, order_id: String) {
    let ports = world.ports.clone();
    let label = format!("retry {order_id}");
    world.spawn_operator(
        label,
        Box::pin(async move {
            let _ = retry::retry(&ports, &ports, &ports, &ports, &order_id).await;
            None
        }),
    );
}

/// What the runbook says once the faults stop: redrive every DLQ, and retry every order whose execution
/// ended before it did and every order needing attention; until nothing is left to do.
fn runbook(world: &mut World) {
    for _ in 0..8 {
        let round_ends = world.now() + 6 * HOUR;
        world.run_until_quiet(round_ends);
        let mut acted = world.redrive_all() > 0;
        let stuck: Vec<String> = {
            let memory = world.memory.world();
            let bus = world.ports.bus();
            let mut stuck: Vec<String> = memory
                .orders
                .values()
                .filter(|order| {
                    let execution = retry::current_execution(order).and_then(|n| bus.executions.get(&n).copied());
                    let ended = execution.is_none_or(ExecutionStatus::has_ended);
                    (!order.status.is_terminal() && ended) || order.status == OrderStatus::NeedsAttention
                })
                .map(|o| o.order_id.clone())
                .collect();
            stuck.sort();
            stuck
        };
        for id in stuck {
            acted = true;
            spawn_retry(world, id);
        }
        // Orders whose events were written but never notified (`nexus verify`: event-not-notified), when
        // an execution of theirs ended early: the step that would have published them again never ran.
        // Any other order's lost event is a bug the verdict reports.
        let abnormal = world.ended_abnormally.clone();
        for id in unnotified(world).into_iter().filter(|id| abnormal.contains(id)) {
            acted = true;
            let ports = world.ports.clone();
            world.spawn_operator(
                format!("republish {id}"),
                Box::pin(async move {
                    let _ = nexus_ops::republish::republish(&ports, &ports, &id).await;
                    None
                }),
            );
        }
        if !acted {
            break;
        }
    }
}

fn snapshot(world: &World) -> Snapshot {
    let memory = world.memory.world();
    let bus = world.ports.bus();
    Snapshot {
        orders: memory.orders.values().cloned().collect(),
        events: memory.events.values().flatten().cloned().collect(),
        stock: memory.stock.values().cloned().collect(),
        ledger: memory.ledger.values().cloned().collect(),
        saga_slot_holders: Some(memory.saga_slot_holders.clone()),
        executions: Some(bus.executions.clone()),
    }
}

/// The checker's verdict once the world is quiet: every event has had all the time it needs.
fn check(world: &World) -> invariants::Report {
    invariants::check(&snapshot(world), i64::MAX / 2)
}

fn unnotified(world: &World) -> Vec<String> {
    check(world).violations.into_iter().filter(|v| v.rule == "event-not-notified").map(|v| v.subject).collect()
}

fn verdict(world: &World, faults: &FaultPlan) -> Verdict {
    let report = check(world);
    let memory = world.memory.world();
    let bus = world.ports.bus();
    let mut problems: Vec<String> =
        report.violations.iter().map(|v| format!("{}: {}: {}", v.rule, v.subject, v.detail)).collect();
    let mut subjects: Vec<String> = report.violations.iter().map(|v| v.subject.clone()).collect();
    let mut problem = |subject: &str, text: String| {
        problems.push(text);
        subjects.push(subject.to_owned());
    };
    for order in memory.orders.values() {
        if !order.status.is_terminal() || order.status == OrderStatus::NeedsAttention {
            problem(&order.order_id, format!("quiescence: {} is {} after the runbook", order.order_id, order.status));
        }
    }
    for (order_id, what) in &bus.stale_writes {
        problem(order_id, format!("stale-execution-write: {order_id}: {what}"));
    }
    for holder in &memory.saga_slot_holders {
        problem(holder, format!("quiescence: {holder} still holds a saga slot"));
    }
    for (name, status) in &bus.executions {
        if !status.has_ended() {
            problem(name, format!("quiescence: execution {name} still runs"));
        }
    }
    let mut statuses = BTreeMap::new();
    for order in memory.orders.values() {
        *statuses.entry(order.status.as_str().to_owned()).or_default() += 1;
    }
    let counts = bus.counts;
    Verdict {
        orders: memory.orders.len(),
        statuses,
        problems,
        subjects,
        digest: world.digest(),
        steps: world.counts.steps,
        choices: world.counts.choices,
        faults: counts.failed_calls
            + counts.crashes
            + counts.outage_calls
            + world.counts.duplicates
            + u64::from(faults.outage.is_some()),
        trace: world.trace.clone().unwrap_or_default(),
    }
}
