//! `function-host`: runs a deployed stack's Lambda functions on this machine, for LocalStack without Docker.
//!
//! For every `AWS::Serverless::Function` of the template that is not deployed as a real Lambda in the stack
//! (the template's `FunctionsRuntime=host` leaves them out), it runs the function's built `bootstrap` as a
//! child process with the environment Lambda would give it, serves it the Lambda Runtime API, and feeds it
//! from its SQS event sources as the event source mapping would. Output goes to CloudWatch Logs.
//!
//! Why implement the Runtime API here rather than build on `cargo lambda watch --only-lambda-apis`: the
//! host must own each process's lifecycle (kill and restart on timeout or crash, a log stream per process,
//! init duration and peak memory for REPORT lines) and map every invocation to an SQS batch outcome. The
//! Runtime API is four small endpoints; serving them in-process keeps all of that in one place, with no
//! second long-running tool to start, supervise and stop.

mod cloudwatch_logs;
mod emf;
mod event_source;
mod faults;
mod instance;
mod logging;
mod mapping;
mod output;
mod runtime_api;
mod stack;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::instance::{FunctionConfig, Instance};
use crate::stack::StackContext;
use crate::template::FunctionSpec;

#[derive(Debug, Parser)]
#[command(version, about = "Runs the stack's Lambda functions locally against LocalStack")]
struct Args {
    /// SAM template the stack was deployed from.
    #[arg(long, env = "NEXUS_TEMPLATE", default_value = "template.yaml")]
    template: PathBuf,
    /// CloudFormation stack name.
    #[arg(long, env = "NEXUS_STACK", default_value = "vyapaar-nexus")]
    stack: String,
    /// Endpoint of the local AWS (LocalStack).
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:4566")]
    endpoint: String,
    /// DynamoDB Local behind LocalStack, for the functions to call directly (`AWS_ENDPOINT_URL_DYNAMODB`):
    /// the same tables and items as through LocalStack when it runs DynamoDB Local with one shared
    /// database (`DYNAMODB_SHARE_DB=1`, as `make up` starts it), without the cost of its gateway on every
    /// call (docs/local-environment.md). Unset: every call goes through `--endpoint`.
    #[arg(long, env = "NEXUS_DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,
    /// Folder holding `<binary>/bootstrap` for every function (cargo lambda build --lambda-dir).
    #[arg(long, env = "NEXUS_LAMBDA_DIR")]
    lambda_dir: PathBuf,
    /// Concurrency of an SQS event source without `ScalingConfig.MaximumConcurrency`.
    #[arg(long, env = "NEXUS_DEFAULT_CONCURRENCY", default_value_t = 2)]
    default_concurrency: usize,
    /// File written once every poller runs (for scripts that wait for readiness).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Also print every function output line on this process's stdout.
    #[arg(long)]
    echo: bool,
    #[command(flatten)]
    faults: faults::Faults,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(&args.endpoint);
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        // LocalStack accepts any credentials; without these the default chain would end at IMDS and fail.
        loader = loader.test_credentials();
    }
    let config = loader.load().await;
    let region = config.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (metrics, metric_shipper) = emf::start(aws_sdk_cloudwatch::Client::new(&config));
    let (logs, shipper) = cloudwatch_logs::start(aws_sdk_cloudwatchlogs::Client::new(&config), metrics, args.echo);

    let functions = template::load(&args.template)?;
    let stack = StackContext::describe(&cfn, &args.stack, &region).await?;
    let mut mappings = Vec::new();
    for spec in &functions {
        if let Some(deployed) = stack.resources.get(&spec.logical_id) {
            tracing::info!(function = %spec.logical_id, physical = %deployed.physical_id, "deployed as a real Lambda; not hosted");
            continue;
        }
        let function = Arc::new(function_config(spec, &stack, &args)?);
        if !function.binary.is_file() {
            anyhow::bail!(
                "{} not built: {} is missing (run `make build-local`)",
                spec.logical_id,
                function.binary.display()
            );
        }
        if spec.has_layers {
            tracing::warn!(function = %function.name, "the function has Layers: their extensions are not run (the Extensions API is not served)");
        }
        for event in spec.sqs_events.iter().filter(|e| e.enabled) {
            let source = mapping::resolve(&sqs, &stack, &function, event).await?;
            let concurrency = match &event.maximum_concurrency {
                Some(value) => stack
                    .resolve_string(value)
                    .with_context(|| format!("{}: {}: MaximumConcurrency", spec.logical_id, event.name))?
                    .parse::<usize>()
                    .with_context(|| {
                        format!("{}: {}: MaximumConcurrency is not a count", spec.logical_id, event.name)
                    })?,
                None => args.default_concurrency,
            }
            .max(1);
            mappings.push((function.clone(), Arc::new(source), concurrency));
        }
    }
    // Every mapping is checked before any poller starts: a refused one leaves every queue untouched.
    let stop = CancellationToken::new();
    let mut workers = Vec::new();
    for (function, source, concurrency) in mappings {
        tracing::info!(function = %function.name, event = %source.event, queue = %source.queue_url, concurrency, "polling");
        for _ in 0..concurrency {
            let instance = Instance::new(function.clone(), logs.clone()).await?;
            workers.push(tokio::spawn(event_source::run_worker(
                sqs.clone(),
                source.clone(),
                instance,
                args.faults.clone(),
                stop.clone(),
            )));
        }
    }
    if let Some(ready_file) = &args.ready_file {
        std::fs::write(ready_file, format!("{}\n", workers.len()))
            .with_context(|| format!("writing {}", ready_file.display()))?;
    }
    if args.faults.any() {
        tracing::warn!(faults = ?args.faults, "fault injection is on");
    }
    tracing::info!(pollers = workers.len(), "function host ready");

    shutdown_signal().await;
    tracing::info!("stopping: finishing running invocations");
    stop.cancel();
    for worker in workers {
        let _ = worker.await;
    }
    drop(logs);
    let _ = tokio::time::timeout(Duration::from_secs(10), shipper).await;
    // The log shipper held the last metric sink; with it gone the metric shipper flushes and ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), metric_shipper).await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The function's configuration with Lambda's reserved variables and its `Environment` resolved.
fn function_config(spec: &FunctionSpec, stack: &StackContext, args: &Args) -> anyhow::Result<FunctionConfig> {
    let name = match &spec.function_name {
        Some(expression) => stack.resolve_string(expression)?,
        None => format!("{}-{}", stack.stack_name, spec.logical_id),
    };
    let binary = args.lambda_dir.join(&spec.binary).join("bootstrap");
    let mut environment = BTreeMap::new();
    for (key, expression) in &spec.environment {
        let value = stack
            .resolve_string(expression)
            .with_context(|| format!("{}: environment variable {key}", spec.logical_id))?;
        environment.insert(key.clone(), value);
    }
    // LocalStack accepts any credentials; pass on the host's so a function signs as the operator does.
    let env_or = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let task_root = binary.parent().map(|p| p.display().to_string()).unwrap_or_default();
    let reserved = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", stack.region.clone()),
        ("AWS_DEFAULT_REGION", stack.region.clone()),
        ("AWS_ENDPOINT_URL", args.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", env_or("AWS_ACCESS_KEY_ID", "test")),
        ("AWS_SECRET_ACCESS_KEY", env_or("AWS_SECRET_ACCESS_KEY", "test")),
        ("_HANDLER", spec.handler.clone()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
    ];
    let logging = &spec.logging;
    let log_group = logging
        .log_group
        .as_ref()
        .map(|group| stack.resolve_string(group))
        .transpose()
        .with_context(|| format!("{}: LoggingConfig.LogGroup", spec.logical_id))?;
    let logging = logging::Logging::new(
        format!("/aws/lambda/{name}"),
        log_group,
        logging.log_format.as_deref(),
        logging.application_log_level.as_deref(),
        logging.system_log_level.as_deref(),
    )
    .with_context(|| spec.logical_id.clone())?;
    if let Some(dynamodb) = &args.dynamodb_endpoint {
        environment.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), dynamodb.clone());
    }
    // Lambda's reserved variables win over the function's own, as on AWS.
    environment.extend(reserved.into_iter().chain(logging.environment()).map(|(k, v)| (k.to_owned(), v)));
    if let Ok(token) = std::env::var("AWS_SESSION_TOKEN") {
        environment.insert("AWS_SESSION_TOKEN".into(), token);
    }
    if let Ok(filter) = std::env::var("RUST_LOG") {
        environment.entry("RUST_LOG".into()).or_insert(filter);
    }
    let timeout_seconds: u64 = stack
        .resolve_string(&spec.timeout)
        .with_context(|| format!("{}: Timeout", spec.logical_id))?
        .parse()
        .with_context(|| format!("{}: Timeout is not a whole number of seconds", spec.logical_id))?;
    Ok(FunctionConfig {
        arn: format!("arn:aws:lambda:{}:{}:function:{name}", stack.region, stack.account_id),
        name,
        binary,
        timeout: Duration::from_secs(timeout_seconds),
        memory_mb: spec.memory_mb,
        logging: Arc::new(logging),
        environment,
    })
}
