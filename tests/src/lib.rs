//! Harness for the integration and end-to-end tests: they run against the local stack that `make test`
//! starts (LocalStack + deployed stacks + function host), found through `NEXUS_TEST_ENDPOINT`.

pub mod shop;

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;

/// A deployed stack on the local endpoint, with its outputs.
pub struct LocalStack {
    pub config: SdkConfig,
    pub stack: String,
    outputs: nexus_ops::stack_outputs::Outputs,
}

impl LocalStack {
    /// Connects to the stack named by the environment variable `stack_variable`.
    pub async fn connect(stack_variable: &str) -> Self {
        let endpoint = std::env::var("NEXUS_TEST_ENDPOINT")
            .expect("NEXUS_TEST_ENDPOINT is not set: run the integration tests with `make test`");
        let stack = std::env::var(stack_variable)
            .unwrap_or_else(|_| panic!("{stack_variable} is not set: run the integration tests with `make test`"));
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            // LocalStack accepts any credentials.
            .test_credentials()
            .load()
            .await;
        let outputs = nexus_ops::stack_outputs::describe(&aws_sdk_cloudformation::Client::new(&config), &stack)
            .await
            .unwrap_or_else(|e| panic!("stack {stack}: {}", aws_sdk_cloudformation::error::DisplayErrorContext(e)));
        Self { config, stack, outputs }
    }

    pub fn output(&self, key: &str) -> String {
        self.outputs.get(key).cloned().unwrap_or_else(|| panic!("stack {} has no output {key}", self.stack))
    }

    /// The stack's saga, through the adapter the CLI uses.
    pub fn saga(&self) -> nexus_aws::sfn::StepFunctions {
        nexus_aws::sfn::StepFunctions::new(
            aws_sdk_sfn::Client::new(&self.config),
            self.output("OrderSagaStateMachineArn"),
        )
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }

    /// The stack's tables behind the domain's DynamoDB adapter. Through `NEXUS_TEST_DYNAMODB` when `make test` sets it: the DynamoDB Local that
    /// LocalStack runs and the functions call directly (one shared database, the same tables and items), so
    /// that the tests' polling reads do not queue in LocalStack's gateway behind the sagas they wait for.
    pub fn dynamo(&self) -> nexus_aws::dynamo::Dynamo {
        let tables =
            nexus_ops::stack_outputs::tables(&self.outputs).unwrap_or_else(|e| panic!("stack {}: {e}", self.stack));
        let mut config = aws_sdk_dynamodb::config::Builder::from(&self.config);
        if let Some(direct) = std::env::var("NEXUS_TEST_DYNAMODB").ok().filter(|url| !url.is_empty()) {
            config = config.endpoint_url(direct);
        }
        nexus_aws::dynamo::Dynamo::new(aws_sdk_dynamodb::Client::from_conf(config.build()), tables)
    }

    /// Every queue of the stack with its DLQ, by name.
    pub fn queues(&self) -> Vec<nexus_ops::stack_outputs::QueuePair> {
        nexus_ops::stack_outputs::queues(&self.outputs)
    }

    /// The functions' log groups.
    pub fn function_log_groups(&self) -> Vec<String> {
        nexus_ops::stack_outputs::function_log_groups(&self.outputs).into_values().collect()
    }
}

/// Polls `check` every half second until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_every(Duration::from_millis(500), timeout, check).await
}

/// [`eventually`], asking every `every`: for a check that costs the emulator many calls (every queue's
/// depth), which a concurrent saga would wait behind.
pub async fn eventually_every<T, F, Fut>(every: Duration, timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

#[derive(Debug, Clone)]
pub struct LogEvent {
    pub stream: String,
    pub message: String,
}

/// Every event of every stream of `group`, read with DescribeLogStreams + GetLogEvents as a user would.
pub async fn read_log_group(logs: &aws_sdk_cloudwatchlogs::Client, group: &str) -> Vec<LogEvent> {
    let mut events = Vec::new();
    // Every page: a group can hold more streams than one DescribeLogStreams answer (50).
    let mut names = Vec::new();
    let mut pages = logs.describe_log_streams().log_group_name(group).into_paginator().send();
    while let Some(Ok(page)) = pages.next().await {
        names.extend(page.log_streams().iter().filter_map(|s| s.log_stream_name().map(str::to_owned)));
    }
    for stream in &names {
        let mut token: Option<String> = None;
        loop {
            let page = logs
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .expect("get-log-events");
            events.extend(
                page.events()
                    .iter()
                    .filter_map(|e| Some(LogEvent { stream: stream.to_owned(), message: e.message()?.to_owned() })),
            );
            let next = page.next_forward_token().map(str::to_owned);
            if next.is_none() || next == token || page.events().is_empty() {
                break;
            }
            token = next;
        }
    }
    events
}

/// The JSON log lines among `events`.
pub fn json_lines(events: &[LogEvent]) -> Vec<(String, serde_json::Value)> {
    events
        .iter()
        .filter(|e| e.message.starts_with('{'))
        .filter_map(|e| Some((e.stream.clone(), serde_json::from_str(&e.message).ok()?)))
        .collect()
}

/// A fresh id tying a test's messages together.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Stops the execution `execution_arn` soon after it starts (`aws stepfunctions stop-execution`), and makes
/// sure the stop took: LocalStack accepts a stop that lands before the execution's program runs (a moment
/// after it is listed) and ignores it, and the execution then runs to its end. So the stop is sent again
/// until the execution reads ABORTED; and a stop that lands while the program sets up its first task ends
/// it FAILED there (its worker's task is interrupted), which counts once a stop was sent. Where the saga is
/// then is a matter of milliseconds: a test must accept any step.
pub async fn stop_execution_once_started(sfn: &aws_sdk_sfn::Client, execution_arn: &str) {
    use aws_sdk_sfn::types::ExecutionStatus;
    let stop_sent = std::sync::atomic::AtomicBool::new(false);
    let aborted = eventually_every(Duration::from_millis(20), Duration::from_secs(60), || async {
        let status = sfn.describe_execution().execution_arn(execution_arn).send().await.ok()?.status().clone();
        match status {
            ExecutionStatus::Aborted => Some(()),
            ExecutionStatus::Failed if stop_sent.load(std::sync::atomic::Ordering::Relaxed) => Some(()),
            ExecutionStatus::Running => {
                let _ = sfn.stop_execution().execution_arn(execution_arn).cause("stopped by a test").send().await;
                stop_sent.store(true, std::sync::atomic::Ordering::Relaxed);
                None
            }
            ended => panic!("the execution {execution_arn} ended {ended:?} before a stop was sent"),
        }
    })
    .await;
    assert!(aborted.is_some(), "the execution {execution_arn} never started, or never stopped");
}
