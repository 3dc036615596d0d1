//! What an operator reads, checked after the end-to-end suite has run on the main stack (`make test` runs
//! this binary after the others): every log line every function wrote is one JSON object with the
//! contract's fields, no line carries a customer email in clear, and the EMF metrics reached CloudWatch.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Datapoint, Dimension, Statistic};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use nexus_tests::{LocalStack, eventually, read_log_group};
use serde_json::Value;

const STACK: &str = "NEXUS_MAIN_STACK";

/// Lines the Lambda platform itself writes (not the functions): START/END/REPORT and a crash's report.
fn platform_line(message: &str) -> bool {
    ["START RequestId:", "END RequestId:", "REPORT RequestId:", "RequestId:", "Runtime.ExitError"]
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// Something shaped like an email address: `local@domain.tld`.
fn contains_email(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices('@').any(|(at, _)| {
        let local = bytes[..at].iter().rev().take_while(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(b)).count();
        let domain = &text[at + 1..];
        let host: String = domain.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect();
        local > 0 && host.contains('.') && host.rsplit('.').next().is_some_and(|tld| tld.len() >= 2)
    })
}

/// What a line lacks of the contract: the four fields on every line; the order id, execution ARN and
/// correlation id on every line written while handling a saga command (those know all three); the
/// correlation id on every other line about an order.
fn missing_fields(line: &Value) -> Vec<&'static str> {
    let present = |field: &str| line.get(field).and_then(Value::as_str).is_some_and(|v| !v.is_empty());
    let mut missing: Vec<&'static str> =
        ["timestamp", "level", "message", "function"].into_iter().filter(|f| !present(f)).collect();
    if line.get("command").is_some() {
        missing.extend(["orderId", "executionArn", "correlationId"].into_iter().filter(|f| !present(f)));
    } else if line.get("orderId").is_some() && !present("correlationId") {
        missing.push("correlationId");
    }
    missing
}

#[test]
fn the_email_detector_finds_emails_and_only_emails() {
    assert!(contains_email(r#"{"customerEmail":"asha@example.com"}"#));
    assert!(contains_email("mail a.b+c@mail.co.in now"));
    assert!(!contains_email(r#"{"customerEmailHash":"9f86d081884c7d659a2feaa0c55ad015"}"#));
    assert!(!contains_email("arn:aws:states:us-east-1:000000000000:execution:saga@x"), "no dot-tld host");
}

#[tokio::test]
async fn every_log_line_has_the_contract_fields_and_no_email_in_clear() {
    let stack = LocalStack::connect(STACK).await;
    let mut per_function: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    for group in stack.function_log_groups() {
        for event in read_log_group(&stack.logs(), &group).await {
            *per_function.entry(group.clone()).or_default() += 1;
            let message = event.message.trim_end();
            if contains_email(message) {
                problems.push(format!("{group}: email in clear: {message}"));
            }
            if platform_line(message) {
                continue;
            }
            match serde_json::from_str::<Value>(message) {
                Ok(line @ Value::Object(_)) => {
                    let missing = missing_fields(&line);
                    if !missing.is_empty() {
                        problems.push(format!("{group}: missing {missing:?}: {message}"));
                    }
                }
                _ => problems.push(format!("{group}: not a JSON object: {message}")),
            }
        }
    }
    println!("log lines scanned per group: {per_function:?}");
    assert!(
        per_function.len() >= 5 && per_function.values().all(|n| *n > 20),
        "the suite wrote logs: {per_function:?}"
    );
    assert!(
        problems.is_empty(),
        "{} bad line(s), first ones: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
}

/// The datapoints of one metric (with one dimension at most) over the last hour, one per hour.
async fn datapoints(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric: &str,
    dimension: Option<(&str, &str)>,
    statistics: &[Statistic],
) -> Vec<Datapoint> {
    let now = std::time::SystemTime::now();
    cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(dimension.map(|(name, value)| vec![Dimension::builder().name(name).value(value).build()]))
        .start_time(DateTime::from(now - Duration::from_secs(3600)))
        .end_time(DateTime::from(now + Duration::from_secs(60)))
        .period(3600)
        .set_statistics(Some(statistics.to_vec()))
        .send()
        .await
        .expect("get-metric-statistics")
        .datapoints()
        .to_vec()
}

#[tokio::test]
async fn emf_metrics_answer_get_metric_statistics() {
    let stack = LocalStack::connect(STACK).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.config);
    let namespace = stack.output("MetricsNamespace");
    let statistic = |metric: &'static str, dimension: Option<(&'static str, &'static str)>, statistic: Statistic| {
        let (cloudwatch, namespace) = (&cloudwatch, &namespace);
        async move {
            let points = datapoints(cloudwatch, namespace, metric, dimension, std::slice::from_ref(&statistic)).await;
            points
                .iter()
                .map(|p| match statistic {
                    Statistic::SampleCount => p.sample_count().unwrap_or_default(),
                    _ => p.sum().unwrap_or_default(),
                })
                .sum::<f64>()
        }
    };
    // The metric shipper flushes every second; give it a moment after the suite.
    let figures = eventually(Duration::from_secs(30), || async {
        let submitted = statistic("OrdersSubmitted", None, Statistic::Sum).await;
        let completed = statistic("OrdersCompleted", None, Statistic::Sum).await;
        let out_of_stock = statistic("OrdersCancelled", Some(("Reason", "Inventory.OutOfStock")), Statistic::Sum).await;
        let step_latency = statistic("StepLatency", Some(("Step", "COMPLETED")), Statistic::SampleCount).await;
        (submitted > 0.0 && completed > 0.0 && out_of_stock > 0.0 && step_latency > 0.0).then_some((
            submitted,
            completed,
            out_of_stock,
            step_latency,
        ))
    })
    .await;
    println!("metrics: submitted, completed, cancelled out of stock, COMPLETED step latency samples: {figures:?}");
    let (submitted, completed, _, _) = figures.expect("the suite's orders show in the metrics");
    assert!(completed <= submitted, "no order completes twice: {completed} completed of {submitted} submitted");
}

/// SQS's own metrics (AWS/SQS) reach CloudWatch and count each message once: the local environment's
/// LocalStack sums them per queue and second before putting them (localstack/patches, docs/local-environment.md),
/// which must leave every statistic as AWS would report it. On a queue of its own, with one batch of
/// messages: they land in one or two of the sums, so a sum put as one sample would show.
#[tokio::test]
async fn sqs_metrics_count_every_message_once() {
    const MESSAGES: usize = 5;
    let stack = LocalStack::connect(STACK).await;
    let (sqs, cloudwatch) = (stack.sqs(), aws_sdk_cloudwatch::Client::new(&stack.config));
    let queue = format!("nexus-test-sqs-metrics-{}", uuid::Uuid::new_v4().simple());
    let url = sqs.create_queue().queue_name(&queue).send().await.expect("create queue").queue_url.expect("a URL");
    let entries = (0..MESSAGES)
        .map(|i| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body("x".repeat(10 * (i + 1)))
                .build()
                .expect("an entry")
        })
        .collect();
    sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("send the batch");
    let statistics = |metric: &'static str| {
        let (cloudwatch, queue) = (&cloudwatch, &queue);
        async move {
            let every = [Statistic::Sum, Statistic::SampleCount, Statistic::Minimum, Statistic::Maximum];
            let points = datapoints(cloudwatch, "AWS/SQS", metric, Some(("QueueName", queue)), &every).await;
            let total = |value: fn(&Datapoint) -> Option<f64>| points.iter().filter_map(value).sum::<f64>();
            let lowest = points.iter().filter_map(Datapoint::minimum).fold(f64::INFINITY, f64::min);
            let highest = points.iter().filter_map(Datapoint::maximum).fold(0.0, f64::max);
            (total(Datapoint::sum), total(Datapoint::sample_count), lowest, highest)
        }
    };
    // Put once a second.
    let sent = eventually(Duration::from_secs(15), || async {
        let sent = statistics("NumberOfMessagesSent").await;
        (sent.0 >= MESSAGES as f64).then_some(sent)
    })
    .await;
    let sizes = statistics("SentMessageSize").await;
    sqs.delete_queue().queue_url(&url).send().await.expect("delete queue");
    println!("metrics: {queue}: NumberOfMessagesSent (sum, samples, min, max) {sent:?}; SentMessageSize {sizes:?}");
    let n = MESSAGES as f64;
    assert_eq!(sent, Some((n, n, 1.0, 1.0)), "each message sent counts once, as one sample of 1");
    assert_eq!(sizes, (150.0, n, 10.0, 50.0), "one SentMessageSize sample per message: 10 to 50 bytes");
}
