//! What one happy order uses of each thing AWS bills, counted after the burst: state transitions and the
//! state machine's own publishes from execution histories, Lambda invocations and billed GB-seconds from
//! the REPORT lines, log bytes from every log group the orders wrote to, DynamoDB units from the proxy,
//! SNS and SQS requests from LocalStack's log.

use anyhow::Context;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};

use super::cost::Usage;
use super::report::Run;
use crate::stack::aws_error;

/// CloudWatch Logs bills each event as its message plus 26 bytes.
const EVENT_OVERHEAD_BYTES: f64 = 26.0;
/// Enough for a burst of 2000 orders; past it the figure would undercount, so the bench stops.
const MAX_EVENTS_PER_GROUP: usize = 500_000;
/// Executions of a happy run whose histories are read (they all take the same path).
const HISTORIES: usize = 5;

/// Which executions of a run are read for their transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Histories {
    /// A few succeeded ones, averaged: a happy run, whose executions all take the same path.
    HappySample,
    /// Every execution of the run, whatever its end, summed and divided by the run's `orders` submissions
    /// (a mixed run: declines, compensations and retries each take their own path; a rejected order has
    /// no execution).
    AllOf { orders: usize },
}

/// `(state transitions, sns publish tasks)` per order of the run.
pub async fn transitions(
    sfn: &aws_sdk_sfn::Client,
    state_machine: &str,
    run: &str,
    histories: Histories,
) -> anyhow::Result<(f64, f64)> {
    // After the burst's window: these calls are not counted against the orders.
    let own = &mut super::saga::OwnCalls::default();
    let (status, read) = match histories {
        Histories::HappySample => (Some(ExecutionStatus::Succeeded), HISTORIES),
        Histories::AllOf { .. } => (None, usize::MAX),
    };
    let executions = super::saga::executions(sfn, state_machine, run, status, own).await?;
    let arns: Vec<String> = executions.iter().take(read).map(|e| e.execution_arn().to_owned()).collect();
    anyhow::ensure!(!arns.is_empty(), "no execution of {run} to count transitions on");
    let (mut transitions, mut published) = (0.0, 0.0);
    for arn in &arns {
        // A whole history at once: a retried task's entry and its later attempts may fall on different pages.
        let history: Vec<HistoryEvent> = sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(aws_error)
            .context("read an execution's history")?;
        let (t, p) = billed(&history);
        (transitions, published) = (transitions + t, published + p);
    }
    let per = match histories {
        Histories::HappySample => arns.len(),
        Histories::AllOf { orders } => orders.max(1),
    } as f64;
    Ok((transitions / per, published / per))
}

/// `(state transitions, publish tasks)` in an execution's history. Step Functions bills a
/// transition for every state entered and for every retry of a task: a task scheduled again after its
/// state was entered (one `TaskScheduled` per attempt, one `TaskStateEntered` per entry).
pub fn billed(events: &[HistoryEvent]) -> (f64, f64) {
    let count = |pick: &dyn Fn(&HistoryEventType) -> bool| events.iter().filter(|e| pick(e.r#type())).count() as f64;
    let entered = count(&|t| t.as_str().ends_with("StateEntered"));
    let task_entries = count(&|t| *t == HistoryEventType::TaskStateEntered);
    let scheduled = count(&|t| *t == HistoryEventType::TaskScheduled);
    (entered + (scheduled - task_entries).max(0.0), scheduled)
}

/// `(bytes as billed, REPORT lines' (billed ms, memory MB))` of every event in the groups between two
/// instants (milliseconds since the epoch).
pub async fn log_events(
    logs: &aws_sdk_cloudwatchlogs::Client,
    groups: &[String],
    from_ms: i64,
    to_ms: i64,
) -> anyhow::Result<(f64, Vec<(f64, f64)>)> {
    let (mut bytes, mut reports) = (0.0, Vec::new());
    for group in groups {
        let (mut token, mut seen) = (None, 0);
        loop {
            let page = logs
                .filter_log_events()
                .log_group_name(group)
                .start_time(from_ms)
                .end_time(to_ms)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws_error)
                .with_context(|| format!("read log group {group}"))?;
            for event in page.events() {
                let message = event.message().unwrap_or_default();
                bytes += message.len() as f64 + EVENT_OVERHEAD_BYTES;
                reports.extend(report_line(message));
            }
            seen += page.events().len();
            anyhow::ensure!(
                seen <= MAX_EVENTS_PER_GROUP,
                "{group}: over {MAX_EVENTS_PER_GROUP} events; bench fewer orders"
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() || page.events().is_empty() {
                break;
            }
        }
    }
    Ok((bytes, reports))
}

/// `(billed ms, memory MB)` of a Lambda REPORT line.
pub fn report_line(message: &str) -> Option<(f64, f64)> {
    let field = |name: &str| -> Option<f64> {
        let rest = message.split_once(name)?.1.trim_start();
        rest.split_whitespace().next()?.parse().ok()
    };
    message.starts_with("REPORT RequestId:").then_some(())?;
    Some((field("Billed Duration:")?, field("Memory Size:")?))
}

pub struct Counted {
    pub transitions: f64,
    pub task_publishes: f64,
    pub log_bytes: f64,
    pub reports: Vec<(f64, f64)>,
}

pub fn per_order(run: &Run, counted: &Counted) -> Usage {
    let orders = run.orders.max(1) as f64;
    let requests = &run.localstack_requests_per_order;
    let sum = |prefix: &str| requests.iter().filter(|(op, _)| op.starts_with(prefix)).map(|(_, n)| n).sum::<f64>();
    let units = |pick: fn(&super::proxy::OperationCount) -> f64| run.dynamodb_per_order.values().map(pick).sum();
    Usage {
        state_transitions: counted.transitions,
        callbacks: counted.task_publishes,
        lambda_invocations: counted.reports.len() as f64 / orders,
        lambda_gb_seconds: counted.reports.iter().map(|(ms, mb)| ms / 1000.0 * mb / 1024.0).sum::<f64>() / orders,
        dynamodb_write_units: units(|c| c.write_units),
        dynamodb_read_units: units(|c| c.read_units),
        // The submission itself, the functions' publishes, and the state machine's command publishes.
        sns_publishes: 1.0 + requests.get("sns.Publish").unwrap_or(&0.0) + counted.task_publishes,
        sqs_requests: sum("sqs."),
        log_bytes: counted.log_bytes / orders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_entered_and_every_retry_of_a_task_is_a_transition() {
        let event = |id: i64, kind: HistoryEventType| {
            HistoryEvent::builder()
                .id(id)
                .r#type(kind)
                .timestamp(aws_sdk_sfn::primitives::DateTime::from_secs(0))
                .build()
                .expect("an event")
        };
        use HistoryEventType::*;
        let once =
            [ExecutionStarted, TaskStateEntered, TaskScheduled, TaskSucceeded, TaskStateExited, SucceedStateEntered];
        let once: Vec<HistoryEvent> = once.into_iter().enumerate().map(|(i, k)| event(i as i64, k)).collect();
        assert_eq!(billed(&once), (2.0, 1.0));
        // The task failed twice and was retried twice: two more transitions, and two more publishes.
        let retried =
            [TaskStateEntered, TaskScheduled, TaskFailed, TaskScheduled, TaskFailed, TaskScheduled, TaskSucceeded];
        let retried: Vec<HistoryEvent> = retried.into_iter().enumerate().map(|(i, k)| event(i as i64, k)).collect();
        assert_eq!(billed(&retried), (3.0, 3.0));
    }

    #[test]
    fn a_report_line_gives_its_billed_duration_and_memory() {
        let line = "REPORT RequestId: r\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 20 MB";
        assert_eq!(report_line(line), Some((13.0, 256.0)));
        assert_eq!(report_line("START RequestId: r Version: $LATEST"), None);
        assert_eq!(report_line("{\"message\":\"REPORT RequestId: spoofed\"}"), None);
    }
}
