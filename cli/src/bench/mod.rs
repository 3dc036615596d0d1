//! `nexus bench`: Nexus against the emulator's own ceiling, on an isolated local stack (`make bench` makes
//! it: both stacks deployed, DynamoDB Local found, nothing else running). The ceiling is the null saga
//! (`bench/null-saga.py`): Nexus's topics, queues, event sources and happy-path state machine, every
//! function a no-op responder, run by the same function host. Each saga runs sequential orders (latency
//! without queueing) and a burst (throughput, and the work per order: LocalStack requests from its log,
//! DynamoDB calls through a counting proxy, CPU and memory per process); Nexus also runs the mixed
//! workload. The happy burst's counts priced with the committed price table give the AWS cost per million
//! orders. Benchmarks print figures; nothing here asserts a time.

mod capacity;
mod cost;
mod host;
mod measure;
mod procs;
mod proxy;
mod report;
mod requests;
mod saga;
mod stats;
mod usage;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use nexus_ops::stack_outputs;

use self::host::{FunctionHost, HostSpec};
use self::measure::{Measured, Window};
use self::procs::Roots;
use self::report::{Report, Run, Step};
use self::saga::{End, OwnCalls, Saga};
use self::usage::Histories;
use self::workload::Submission;
use crate::render::{self, Format};
use crate::stack::{Nexus, aws_error};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Orders published at once in each burst
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=2000))]
    burst: u32,
    /// Orders run one after another (each waits for the previous to end)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=200))]
    sequential: u32,
    /// Seconds of idle traffic measured before each saga's runs (taken off the counts)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=120))]
    idle_seconds: u64,
    /// The null saga's stack (deployed from bench/null-saga.py's template)
    #[arg(long, default_value = "nexus-null")]
    null_stack: String,
    /// The null saga's template (the function host reads its functions and event sources)
    #[arg(long)]
    null_template: PathBuf,
    /// The null saga with Nexus's events (bench/null-saga.py --events): shows what the event fan-out costs
    #[arg(long, requires = "null_events_template")]
    null_events_stack: Option<String>,
    #[arg(long, requires = "null_events_stack")]
    null_events_template: Option<PathBuf>,
    /// Nexus's template
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// The function host's binary
    #[arg(long)]
    function_host: PathBuf,
    /// The functions' binaries, `<dir>/<binary>/bootstrap` (the null responder among them)
    #[arg(long)]
    lambda_dir: PathBuf,
    /// DynamoDB Local, which the functions call directly (through the bench's counting proxy)
    #[arg(long)]
    dynamodb_endpoint: String,
    /// LocalStack's log: its request lines are the requests counted
    #[arg(long)]
    localstack_log: PathBuf,
    /// LocalStack's process (its tree, DynamoDB Local apart, is LocalStack's CPU and memory)
    #[arg(long)]
    localstack_pid: i32,
    /// Where the bench's function hosts write their logs
    #[arg(long, default_value = ".local/bench")]
    work_dir: PathBuf,
    /// Seed of the mixed workload
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const LIMIT: Duration = Duration::from_secs(900);
/// How long a run's last work goes on after its last order has ended (Nexus writes the end before its last
/// event and SendTaskSuccess; then the notifications and the log shipping, about a second each): counted
/// with that run, and kept out of the next one's window.
const SETTLE: Duration = Duration::from_secs(3);

struct Bench<'a> {
    args: &'a BenchArgs,
    nexus: &'a Nexus,
    sns: aws_sdk_sns::Client,
    endpoint: String,
    run_prefix: String,
}

pub async fn run(nexus: &Nexus, format: Format, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(procs::alive(args.localstack_pid), "no LocalStack process {}", args.localstack_pid);
    std::fs::create_dir_all(&args.work_dir).with_context(|| format!("create {}", args.work_dir.display()))?;
    let endpoint = nexus.config.endpoint_url().context("nexus bench runs on the local stack: give --endpoint")?;
    let started_at = Utc::now();
    let bench = Bench {
        args: &args,
        nexus,
        sns: aws_sdk_sns::Client::new(&nexus.config),
        endpoint: endpoint.to_owned(),
        run_prefix: format!("bench-{}", started_at.format("%Y%m%d%H%M%S")),
    };
    let sample = workload::sample()?;
    let mut runs = Vec::new();

    // The ceiling first (and the ceiling with Nexus's events, when given), each with only its own host running.
    let mut ceilings = vec![("null", args.null_stack.as_str(), args.null_template.as_path())];
    if let (Some(stack), Some(template)) = (&args.null_events_stack, &args.null_events_template) {
        ceilings.push(("null+events", stack.as_str(), template.as_path()));
    }
    for (name, stack, template) in ceilings {
        let (saga, topic) = bench.null_saga(stack).await?;
        let host = bench.host(stack, template, None).await?;
        let roots = Roots { localstack: args.localstack_pid, host: Some(host.pid) };
        let idle = bench.idle(roots, name).await?;
        let happy = |run: &str, n: u32| workload::happy(&sample, run, n as usize, "SKU-NULL");
        runs.push(bench.sequential(&saga, &topic, name, &happy).await?);
        runs.push(bench.burst(&saga, &topic, (name, "happy"), &happy, roots, &idle, None).await?.0);
        host.stop().await;
    }

    // Nexus: its functions' DynamoDB calls through the counting proxy.
    let topic = nexus.output("OrdersTopicArn")?;
    let direct = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&nexus.config).endpoint_url(&args.dynamodb_endpoint).build(),
    );
    let store = nexus.dynamo_on(direct.clone())?;
    let sku = format!("SKU-{}", bench.run_prefix);
    store.set_stock(&sku, 1_000_000).await.context("stock the bench's SKU")?;
    store.set_price(&sku, workload::HAPPY_UNIT_PRICE_CENTS).await.context("price the bench's SKU")?;
    let mut mixed_skus = Vec::new();
    for (mixed_sku, units, price) in workload::mixed_stock(&bench.run_prefix) {
        store.set_stock(&mixed_sku, units).await.context("stock the mixed workload's SKUs")?;
        store.set_price(&mixed_sku, price).await.context("price the mixed workload's SKUs")?;
        mixed_skus.push(mixed_sku);
    }
    for customer in workload::vip_customers() {
        store.set_customer(&customer).await.context("record the mixed workload's VIP customers")?;
    }
    let orders_table = store.tables().orders.clone();
    let nexus_saga = Saga::Nexus { dynamodb: direct, store: Box::new(store), orders_table };
    let (proxy_endpoint, dynamodb_counts) = proxy::start(&args.dynamodb_endpoint).await?;
    let host = bench.host(&nexus.stack, &args.template, Some(&proxy_endpoint)).await?;
    let roots = Roots { localstack: args.localstack_pid, host: Some(host.pid) };
    let idle = bench.idle(roots, "Nexus").await?;
    let happy = |run: &str, n: u32| workload::happy(&sample, run, n as usize, &sku);
    runs.push(bench.sequential(&nexus_saga, &topic, "nexus", &happy).await?);
    dynamodb_counts.take();
    let (run, window) =
        bench.burst(&nexus_saga, &topic, ("nexus", "happy"), &happy, roots, &idle, Some(&dynamodb_counts)).await?;
    let usage = bench.usage(&run, &window, Histories::HappySample).await?;
    runs.push(run);
    let seed = args.seed;
    let mixed = |run: &str, n: u32| workload::mixed(&sample, run, n as usize, &mixed_skus, seed);
    let (run, window) =
        bench.burst(&nexus_saga, &topic, ("nexus", "mixed"), &mixed, roots, &idle, Some(&dynamodb_counts)).await?;
    let mixed_usage = bench.usage(&run, &window, Histories::AllOf { orders: run.orders }).await?;
    let mixed_assumptions = vec![
        format!(
            "the mixed workload as run: {} orders, {}",
            run.orders,
            run.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
        ),
        "transitions summed over every execution of the run, whatever its end, each task's retries counted (a retry is a transition); a rejected order has none".into(),
        "no operator action (nexus retry) and no outage: each would add the transitions of its execution".into(),
    ];
    runs.push(run);
    host.stop().await;
    eprintln!();

    let find = |saga: &str, workload: &str, mode: &str| {
        runs.iter().find(|r| r.saga == saga && r.workload == workload && r.mode == mode)
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let (nb, zb) = (find("nexus", "happy", "burst"), find("null", "happy", "burst"));
    let (ns, zs) = (find("nexus", "happy", "sequential"), find("null", "happy", "sequential"));
    let ratios = report::Ratios {
        throughput: ratio(nb.map_or(0.0, |r| r.orders_per_second), zb.map_or(0.0, |r| r.orders_per_second)),
        p50_latency: ratio(ns.map_or(0.0, |r| r.latency_seconds.p50), zs.map_or(0.0, |r| r.latency_seconds.p50)),
        localstack_requests_per_order: nb.map_or(0.0, Run::localstack_total),
        null_localstack_requests_per_order: zb.map_or(0.0, Run::localstack_total),
        throughput_with_events: find("null+events", "happy", "burst")
            .map(|e| ratio(nb.map_or(0.0, |r| r.orders_per_second), e.orders_per_second)),
    };
    let stack_limits = bench.stack_limits().await?;
    let prices = cost::prices()?;
    let report = Report {
        started_at: started_at.to_rfc3339(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        runs,
        ratios,
        cost: cost::per_million(&usage, &prices)?,
        mixed_cost: cost::per_million(&mixed_usage, &prices)?.assuming(mixed_assumptions),
        capacity: capacity::model(&usage, stack_limits, &capacity::quotas()?)?,
    };
    match format {
        Format::Json => render::json(&report),
        Format::Table => {
            report::print(&report);
            Ok(())
        }
    }
}

fn output(outputs: &stack_outputs::Outputs, key: &str) -> anyhow::Result<String> {
    outputs.get(key).cloned().with_context(|| format!("the null saga's stack has no output {key}"))
}

type Orders<'w> = &'w dyn Fn(&str, u32) -> Vec<Submission>;

impl Bench<'_> {
    /// A null saga's stack: its state machine, and the topic its submissions go to.
    async fn null_saga(&self, stack: &str) -> anyhow::Result<(Saga, String)> {
        let cfn = aws_sdk_cloudformation::Client::new(&self.nexus.config);
        let outputs = stack_outputs::describe(&cfn, stack)
            .await
            .map_err(aws_error)
            .with_context(|| format!("the null saga's stack {stack} (make bench deploys it)"))?;
        let saga = Saga::Null {
            sfn: aws_sdk_sfn::Client::new(&self.nexus.config),
            state_machine: output(&outputs, "OrderSagaStateMachineArn")?,
        };
        Ok((saga, output(&outputs, "OrdersTopicArn")?))
    }

    async fn host(
        &self,
        stack: &str,
        template: &std::path::Path,
        dynamodb: Option<&str>,
    ) -> anyhow::Result<FunctionHost> {
        render::progress(format!("starting the function host for {stack}"));
        FunctionHost::start(&HostSpec {
            binary: &self.args.function_host,
            template,
            stack,
            endpoint: &self.endpoint,
            dynamodb_endpoint: dynamodb,
            lambda_dir: &self.args.lambda_dir,
            work_dir: &self.args.work_dir,
        })
        .await
    }

    async fn idle(&self, roots: Roots, label: &str) -> anyhow::Result<Measured> {
        render::progress(format!("{label}: measuring idle traffic for {} s", self.args.idle_seconds));
        // The host's pollers start together; let their first long polls settle first.
        tokio::time::sleep(Duration::from_secs(3)).await;
        measure::idle(&self.args.localstack_log, roots, self.args.idle_seconds).await
    }

    async fn sequential(&self, saga: &Saga, topic: &str, name: &str, orders: Orders<'_>) -> anyhow::Result<Run> {
        let run = format!("{}-{}-seq", self.run_prefix, name.replace('+', "-"));
        let submissions = orders(&run, self.args.sequential);
        let mut own = OwnCalls::default();
        let mut published = BTreeMap::new();
        let started = std::time::Instant::now();
        for (i, submission) in submissions.iter().enumerate() {
            eprint!("\r… {name} sequential: order {}/{}   ", i + 1, submissions.len());
            let at = saga::publish(&self.sns, topic, std::slice::from_ref(submission), &mut own).await?;
            published.insert(submission.order_id.clone(), at);
            saga.wait(&run, i + 1, LIMIT, Duration::from_millis(100), &mut own, name).await?;
        }
        let wall = started.elapsed().as_secs_f64();
        eprintln!();
        tokio::time::sleep(SETTLE).await;
        let ends = saga.ended(&run, &mut own).await?;
        let mut result = self.outcome(name, "happy", "sequential", &ends, |id| published.get(id).copied(), wall);
        result.steps = steps(&saga.timelines(ends.keys()).await?);
        Ok(result)
    }

    #[allow(clippy::too_many_arguments)]
    async fn burst(
        &self,
        saga: &Saga,
        topic: &str,
        (name, workload): (&str, &str),
        orders: Orders<'_>,
        roots: Roots,
        idle: &Measured,
        dynamodb: Option<&proxy::Counts>,
    ) -> anyhow::Result<(Run, Measured)> {
        let run = format!("{}-{}-{workload}", self.run_prefix, name.replace('+', "-"));
        let submissions = orders(&run, self.args.burst);
        let distinct: std::collections::BTreeSet<&str> = submissions.iter().map(|s| s.order_id.as_str()).collect();
        render::progress(format!("{name} {workload}: {} orders at once", distinct.len()));
        let mut own = OwnCalls::default();
        let window = Window::open(&self.args.localstack_log, roots)?;
        let started = std::time::Instant::now();
        let published = saga::publish(&self.sns, topic, &submissions, &mut own).await?;
        let ends = saga
            .wait(&run, distinct.len(), LIMIT, Duration::from_secs(1), &mut own, &format!("{name} {workload}"))
            .await?;
        let wall = started.elapsed().as_secs_f64();
        tokio::time::sleep(SETTLE).await;
        let measured = window.close().await?;
        eprintln!();
        let orders = distinct.len() as f64;
        let mut result = self.outcome(name, workload, "burst", &ends, |_| Some(published), wall);
        result.localstack_requests_per_order =
            requests::per_order(&measured.requests, &idle.requests, measured.seconds / idle.seconds, &own.0, orders);
        result.cpu_ms_per_order = measured.cpu_ms_per_order(idle, orders);
        result.peak_memory_mib = measured.peak_bytes.iter().map(|(k, v)| (k.clone(), *v as f64 / 1048576.0)).collect();
        if let Some(counts) = dynamodb {
            result.dynamodb_per_order = counts.take().into_iter().map(|(op, count)| (op, count.per(orders))).collect();
        }
        result.steps = steps(&saga.timelines(ends.keys()).await?);
        Ok((result, measured))
    }

    fn outcome(
        &self,
        saga: &str,
        workload: &str,
        mode: &str,
        ends: &BTreeMap<String, End>,
        published: impl Fn(&str) -> Option<f64>,
        wall: f64,
    ) -> Run {
        let latencies: Vec<f64> = ends.iter().filter_map(|(id, end)| Some(end.at - published(id)?)).collect();
        let mut outcomes = BTreeMap::new();
        for end in ends.values() {
            *outcomes.entry(end.outcome.clone()).or_insert(0) += 1;
        }
        Run {
            saga: saga.into(),
            workload: workload.into(),
            mode: mode.into(),
            orders: ends.len(),
            wall_seconds: wall,
            orders_per_second: ends.len() as f64 / wall.max(1e-9),
            latency_seconds: stats::percentiles(&latencies),
            outcomes,
            ..Run::default()
        }
    }
}

impl Bench<'_> {
    /// What the happy burst's orders used of each thing AWS bills.
    /// The stack's limits the capacity model reads: its `QueueMaximumConcurrency`, and `StandardSagaLimit` at
    /// its largest value, so that the slots item's line shows where it would bind.
    async fn stack_limits(&self) -> anyhow::Result<capacity::StackLimits> {
        let cfn = aws_sdk_cloudformation::Client::new(&self.nexus.config);
        let parameters = stack_outputs::parameters(&cfn, &self.nexus.stack)
            .await
            .map_err(aws_error)
            .context("read the stack's parameters")?;
        let mapping_concurrency = match parameters.get("QueueMaximumConcurrency") {
            Some(value) => value.parse().with_context(|| format!("QueueMaximumConcurrency {value}"))?,
            None => capacity::DEFAULT_MAPPING_CONCURRENCY,
        };
        Ok(capacity::StackLimits { saga_limit: nexus_core::domain::admission::MAX_STANDARD_SAGAS, mapping_concurrency })
    }

    async fn usage(&self, run: &Run, window: &Measured, histories: Histories) -> anyhow::Result<cost::Usage> {
        render::progress(format!("counting transitions, invocations and log bytes of the {} burst", run.workload));
        let sfn = aws_sdk_sfn::Client::new(&self.nexus.config);
        let state_machine = self.nexus.output("OrderSagaStateMachineArn")?;
        let burst = format!("{}-nexus-{}", self.run_prefix, run.workload);
        let (transitions, task_publishes) = usage::transitions(&sfn, &state_machine, &burst, histories).await?;
        let mut groups: Vec<String> = self.nexus.function_log_groups().into_values().collect();
        groups.push(self.nexus.output("OrderSagaLogGroupName")?);
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.nexus.config);
        let (log_bytes, reports) = usage::log_events(&logs, &groups, window.from_ms, window.to_ms).await?;
        let counted = usage::Counted { transitions, task_publishes, log_bytes, reports };
        Ok(usage::per_order(run, &counted))
    }
}

fn steps(timelines: &[Vec<(String, f64)>]) -> Vec<Step> {
    stats::steps(timelines).into_iter().map(|(step, seconds)| Step { step, seconds }).collect()
}
