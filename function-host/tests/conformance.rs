//! The function host held to AWS Lambda's documented behaviour, on the fixture stack: what `runtime_and_event_source.rs`
//! does not already cover (event shape, batching window, partial failures, crash, timeout, DLQ, redrive).
//! Each test quotes the documentation it holds the host to.

use std::collections::HashMap;
use std::time::Duration;

mod fixture;

use fixture::{STACK, WAIT, batches_of_run, deliveries, dlq_ids, group_lines, processed_ids, send};
use nexus_tests::{LocalStack, LogEvent, eventually, read_log_group, run_id};
use serde_json::{Value, json};

/// The queues' visibility timeout in the fixture template, plus a margin: a failed batch would be back by then.
const REDELIVERY: Duration = Duration::from_secs(7);

async fn events(stack: &LocalStack, group_output: &str) -> Vec<LogEvent> {
    read_log_group(&stack.logs(), &stack.output(group_output)).await
}

/// Lambda's SQS guide, "Reporting batch item failures": "Lambda treats a batch as a complete success if your
/// function returns any of the following: an empty batchItemFailures list, a null batchItemFailures list, an
/// empty EventResponse, a null EventResponse" — and "as a complete failure if your function returns … a null
/// itemIdentifier".
#[tokio::test]
async fn null_and_empty_partial_batch_responses_are_complete_success() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let successes = [json!(null), json!({}), json!({"batchItemFailures": null}), json!({"batchItemFailures": []})];
    // One at a time: each response must be judged on its own, not merged into another's batch.
    for (i, response) in successes.iter().enumerate() {
        let id = format!("{run}-ok{i}");
        send(&stack, "ResponseQueueUrl", &run, &[json!({"id": id, "action": "respond", "response": response})]).await;
        let processed = eventually(WAIT, || async {
            let lines = group_lines(&stack, "FixtureLogGroupName").await;
            processed_ids(&lines, &run).iter().any(|(seen, _)| *seen == id).then_some(())
        })
        .await;
        assert!(processed.is_some(), "{id} processed");
    }
    let invalid = format!("{run}-invalid");
    let response = json!({"batchItemFailures": [{"itemIdentifier": null}]});
    send(&stack, "ResponseQueueUrl", &run, &[json!({"id": invalid, "action": "respond", "response": response})]).await;
    let dead = eventually(WAIT, || async {
        let ids = dlq_ids(&stack, "ResponseDlqUrl", &run).await;
        (!ids.is_empty()).then_some(ids)
    })
    .await
    .expect("the batch with a null itemIdentifier fails as a whole until it is dead-lettered");
    assert_eq!(dead, std::slice::from_ref(&invalid), "only the invalid response's message is dead-lettered");

    tokio::time::sleep(REDELIVERY).await;
    let seen = deliveries(&batches_of_run(&group_lines(&stack, "FixtureLogGroupName").await, &run));
    for (i, response) in successes.iter().enumerate() {
        assert_eq!(seen[&format!("{run}-ok{i}")], ["1"], "a response of {response} is a complete success");
    }
    assert_eq!(seen[&invalid], ["1", "2"], "a null itemIdentifier fails the batch, delivered maxReceiveCount times");
}

/// "If your function returns an error, Lambda … makes the messages in the batch visible again" (SQS guide,
/// error handling); the Rust runtime reports a handler's panic as an error, and the environment lives on.
#[tokio::test]
async fn handler_errors_and_panics_fail_the_whole_batch_until_dead_lettered() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let bodies = [
        json!({"id": format!("{run}-error"), "action": "error"}),
        json!({"id": format!("{run}-panic"), "action": "panic"}),
        json!({"id": format!("{run}-ok"), "action": "ok"}),
    ];
    send(&stack, "CrashQueueUrl", &run, &bodies).await;
    let mut dead = Vec::new();
    let give_up = std::time::Instant::now() + WAIT;
    while dead.len() < 2 && std::time::Instant::now() < give_up {
        dead.extend(dlq_ids(&stack, "CrashDlqUrl", &run).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    dead.sort();
    assert_eq!(dead, [format!("{run}-error"), format!("{run}-panic")]);
    let lines = group_lines(&stack, "FixtureLogGroupName").await;
    let seen = deliveries(&batches_of_run(&lines, &run));
    assert_eq!(seen[&format!("{run}-error")], ["1", "2"]);
    assert_eq!(seen[&format!("{run}-panic")], ["1", "2"]);
    assert_eq!(processed_ids(&lines, &run), [(format!("{run}-ok"), "1".to_owned())]);
}

/// The execution environment guide: "The Init phase is limited to 10 seconds", and the function timeout
/// applies to the Invoke phase; REPORT's "Duration" is the invocation's, "Init Duration" the init phase's.
#[tokio::test]
async fn init_is_its_own_phase_not_counted_against_the_timeout() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    // First one that times out (3 s), so the next invocation is cold whatever ran before.
    let slow = format!("{run}-slow");
    send(&stack, "SlowInitQueueUrl", &run, &[json!({"id": slow, "action": "sleep", "sleepMs": 4_000})]).await;
    let dead = eventually(WAIT, || async {
        let ids = dlq_ids(&stack, "SlowInitDlqUrl", &run).await;
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert_eq!(dead, Some(vec![slow]), "a handler slower than the timeout still times out");

    // 2.5 s of init + 1 s of handler, Timeout 3: on Lambda this succeeds at the first attempt.
    let cold = format!("{run}-cold");
    send(&stack, "SlowInitQueueUrl", &run, &[json!({"id": cold, "action": "sleep", "sleepMs": 1_000})]).await;
    let processed = eventually(WAIT, || async {
        let lines = group_lines(&stack, "SlowInitLogGroupName").await;
        let ids = processed_ids(&lines, &run);
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert_eq!(processed, Some(vec![(cold.clone(), "1".to_owned())]), "processed at the first attempt");

    let events = events(&stack, "SlowInitLogGroupName").await;
    assert!(events.iter().any(|e| e.message.contains("Task timed out after 3.00 seconds")));
    let request_id = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.message).ok())
        .find(|line| line["message"] == "batch received" && line["event"].as_str().is_some_and(|e| e.contains(&cold)))
        .and_then(|line| line["requestId"].as_str().map(str::to_owned))
        .expect("the cold invocation's batch line");
    let report = events
        .iter()
        .find(|e| e.message.starts_with(&format!("REPORT RequestId: {request_id}")))
        .expect("its REPORT line");
    let field = |name: &str| -> f64 {
        let rest = report.message.split(&format!("{name}: ")).nth(1).unwrap_or_else(|| panic!("{name} in {report:?}"));
        rest.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{name} in {report:?}"))
    };
    assert!(field("Init Duration") >= 2_500.0, "init measured: {}", report.message);
    let duration = field("Duration");
    assert!((1_000.0..3_000.0).contains(&duration), "Duration excludes init: {}", report.message);
    assert!(field("Billed Duration") >= duration + 2_500.0, "a custom runtime's init is billed: {}", report.message);
}

/// CloudWatch Logs guide: "Lambda … sends … a START, END and REPORT" line per invocation; everything the
/// function writes during an invocation lies between its START and its END.
#[tokio::test]
async fn every_function_line_falls_between_start_and_end() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    // Output in flight when the response arrives: 300 lines logged just before answering, the very last one
    // without its newline (Lambda still ships it before END).
    let bodies: Vec<Value> =
        (0..6).map(|i| json!({"id": format!("{run}-{i}"), "action": "burst", "lines": 300})).collect();
    send(&stack, "BatchQueueUrl", &run, &bodies).await;
    let processed = eventually(WAIT, || async {
        let lines = group_lines(&stack, "FixtureLogGroupName").await;
        (processed_ids(&lines, &run).len() >= 6).then_some(())
    })
    .await;
    assert!(processed.is_some(), "all six processed");
    // The last lines are shipped within half a second.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let events = events(&stack, "FixtureLogGroupName").await;
    let mut streams: HashMap<&str, Vec<&str>> = HashMap::new();
    for event in &events {
        streams.entry(event.stream.as_str()).or_default().push(event.message.as_str());
    }
    let mut checked = 0;
    for messages in streams.values() {
        let position = |prefix: &str| messages.iter().position(|m| m.starts_with(prefix));
        for (index, message) in messages.iter().enumerate() {
            if !(message.contains("\"batch received\"") && message.contains(&run)) {
                continue;
            }
            // An unterminated line left behind by the previous invocation would be glued to this one.
            let line: Value = serde_json::from_str(message)
                .unwrap_or_else(|_| panic!("a line merged with another one's output: {message}"));
            let request_id = line["requestId"].as_str().expect("requestId");
            let start = position(&format!("START RequestId: {request_id}")).expect("START");
            let end = position(&format!("END RequestId: {request_id}")).expect("END");
            let report = position(&format!("REPORT RequestId: {request_id}")).expect("REPORT");
            let last_own = messages
                .iter()
                .rposition(|m| m.contains(&format!("\"requestId\":\"{request_id}\"")))
                .expect("the invocation's own lines");
            assert!(
                start < index && last_own < end && end < report,
                "START {start}, first line {index}, last line {last_own}, END {end}, REPORT {report}"
            );
            assert!(
                messages[last_own].contains("unterminated last line"),
                "the function's last line, unterminated, is shipped before END: {}",
                messages[last_own]
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "at least one invocation of the run checked");
}

/// Log-level filtering guide: with `LogFormat: JSON`, "Lambda sends logs of the selected level and lower"
/// (application lines by their "level" key, INFO when missing), system logs at INFO are platform.start and
/// platform.report; `LoggingConfig.LogGroup` names the group the function logs to, passed to it as
/// AWS_LAMBDA_LOG_GROUP_NAME with AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL.
#[tokio::test]
async fn logging_config_is_honoured() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let id = format!("{run}-levels");
    send(&stack, "JsonLogsQueueUrl", &run, &[json!({"id": id, "action": "levels"})]).await;
    let group = stack.output("JsonLogGroupName");
    let arrived = eventually(WAIT, || async {
        let events = events(&stack, "JsonLogGroupName").await;
        events.iter().any(|e| e.message.contains(&id) && e.message.contains("\"error\"")).then_some(())
    })
    .await;
    assert!(arrived.is_some(), "the function's lines reach its own log group");
    // The last lines are shipped within half a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = read_log_group(&stack.logs(), &group).await;
    let lines: Vec<Value> = events.iter().filter_map(|e| serde_json::from_str(&e.message).ok()).collect();
    let levels: Vec<&str> =
        lines.iter().filter(|l| l["id"] == id.as_str()).filter_map(|l| l["level"].as_str()).collect();
    assert_eq!(levels, ["warn", "error"], "ApplicationLogLevel WARN drops debug and info");
    let warn = lines.iter().find(|l| l["id"] == id.as_str() && l["level"] == "warn").expect("warn line");
    assert_eq!((warn["logFormat"].as_str(), warn["logLevel"].as_str()), (Some("JSON"), Some("WARN")));
    assert_eq!(warn["logGroup"], group.as_str());
    let types: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert!(types.contains(&"platform.start") && types.contains(&"platform.report"), "platform records: {types:?}");
    assert!(!types.contains(&"platform.runtimeDone"), "runtimeDone is DEBUG, below SystemLogLevel INFO");
    assert!(!events.iter().any(|e| e.message.starts_with("START RequestId")), "no text lines in the JSON format");
    let report = lines.iter().find(|l| l["type"] == "platform.report").expect("report");
    assert!(report["record"]["metrics"]["durationMs"].is_number() && report["record"]["status"] == "success");
    let default_group = format!("/aws/lambda/{}-json-logs", stack.stack);
    let elsewhere = read_log_group(&stack.logs(), &default_group).await;
    assert!(!elsewhere.iter().any(|e| e.message.contains(&id)), "nothing goes to {default_group}");
}

/// Lambda's troubleshooting guide: a bootstrap that cannot be executed fails with
/// `Runtime.InvalidEntrypoint` ("permission denied"), written to the function's log group.
#[tokio::test]
async fn a_bootstrap_that_cannot_run_is_an_invalid_entrypoint() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let id = format!("{run}-entrypoint");
    // The group outlives a run: count what earlier runs left.
    let count = |events: &[LogEvent], text: &str| events.iter().filter(|e| e.message.contains(text)).count();
    let before = events(&stack, "BadEntrypointLogGroupName").await;
    let error_text = "permission denied\nRuntime.InvalidEntrypoint";
    let report_text = "Status: error\tError Type: Runtime.InvalidEntrypoint";
    send(&stack, "BadEntrypointQueueUrl", &run, &[json!({"id": id, "action": "ok"})]).await;
    let dead = eventually(WAIT, || async {
        let ids = dlq_ids(&stack, "BadEntrypointDlqUrl", &run).await;
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert_eq!(dead, Some(vec![id]), "the message fails and is dead-lettered");
    let after = eventually(WAIT, || async {
        let events = events(&stack, "BadEntrypointLogGroupName").await;
        (count(&events, "REPORT RequestId") > count(&before, "REPORT RequestId")).then_some(events)
    })
    .await
    .expect("the failed invocation is logged in the function's log group");
    assert!(count(&after, error_text) > count(&before, error_text), "Lambda's error text: {after:?}");
    assert!(count(&after, report_text) > count(&before, report_text), "REPORT's status: {after:?}");
}

/// docs/local-environment.md, the function host: the Extensions API is not served, and says so to an extension that
/// tries to register (rather than leave it waiting).
#[tokio::test]
async fn an_extension_is_refused_with_a_clear_message() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let id = format!("{run}-extension");
    send(&stack, "BatchQueueUrl", &run, &[json!({"id": id, "action": "extension"})]).await;
    let answer = eventually(WAIT, || async {
        let lines = group_lines(&stack, "FixtureLogGroupName").await;
        lines
            .into_iter()
            .map(|(_, l)| l)
            .find(|l| l["message"] == "extension register answered" && l["id"] == id.as_str())
    })
    .await
    .expect("the register call is answered");
    assert_eq!(answer["status"], "403");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("{}")).expect("a JSON error body");
    assert_eq!(body["errorType"], "Extension.NotSupported");
    assert!(body["errorMessage"].as_str().is_some_and(|m| m.contains("Extensions")), "{body}");
}

/// Lambda's SQS guide: "set the source queue's visibility timeout to at least six times the timeout that you
/// configure on your function"; below the function timeout, CreateEventSourceMapping is refused
/// ("Queue visibility timeout: … seconds is less than Function timeout: … seconds"). The host refuses at
/// start-up, before it polls any queue.
#[tokio::test]
async fn a_mapping_aws_would_refuse_stops_the_host_at_start_up() {
    let stack = LocalStack::connect(STACK).await;
    let lambda_dir = std::env::var("NEXUS_FIXTURE_LAMBDA_DIR").expect("NEXUS_FIXTURE_LAMBDA_DIR: run with make test");
    let endpoint = std::env::var("NEXUS_TEST_ENDPOINT").expect("NEXUS_TEST_ENDPOINT");
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/template.yaml"))
        .expect("fixture template");
    // The Globals timeout of 2 s raised to 30 s: above every fixture queue's visibility timeout.
    let raised = template.replacen("    Timeout: 2\n", "    Timeout: 30\n", 1);
    assert_ne!(raised, template, "the fixture template's Globals timeout moved; update this test");
    let path = std::env::temp_dir().join(format!("fixture-template-{}.yaml", run_id()));
    std::fs::write(&path, raised).expect("write template");

    let child = tokio::process::Command::new(format!("{lambda_dir}/function-host/bootstrap"))
        .args(["--template", &path.display().to_string(), "--stack", &stack.stack, "--endpoint", &endpoint])
        .args(["--lambda-dir", &lambda_dir])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the function host");
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await;
    let _ = std::fs::remove_file(&path);
    let output = output.expect("the host stops by itself instead of polling").expect("host output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "refused: {stderr}");
    for part in [
        format!("function {}-", stack.stack),
        "has a visibility timeout of".to_owned(),
        "less than the function timeout of 30 s".to_owned(),
        "Function timeout: 30 seconds".to_owned(),
    ] {
        assert!(stderr.contains(&part), "{part:?} in {stderr}");
    }
}
