//! The function host against the fixture stack on LocalStack: batches shaped as Lambda shapes them, partial
//! batch failures, crashes and timeouts redelivered and then dead-lettered, logs in CloudWatch Logs.

use std::time::Duration;

mod fixture;

use fixture::{
    STACK, WAIT, batches_of_run, deliveries, dlq_ids, fixture_lines, now_ms, processed_ids, queue_depth, send,
};
use nexus_tests::{LocalStack, eventually, json_lines, read_log_group, run_id};
use serde_json::{Value, json};

#[tokio::test]
async fn batches_arrive_as_lambda_shapes_them() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let bodies: Vec<Value> = (0..5).map(|i| json!({"id": format!("{run}-{i}"), "action": "ok"})).collect();
    let sent = send(&stack, "BatchQueueUrl", &run, &bodies).await;

    let batches = eventually(WAIT, || async {
        let batches = batches_of_run(&fixture_lines(&stack).await, &run);
        let records: usize = batches.iter().map(|b| b["Records"].as_array().map_or(0, Vec::len)).sum();
        (records >= 5).then_some(batches)
    })
    .await
    .expect("all five messages delivered to the function");

    assert!(
        batches.len() <= 2,
        "5 messages sent at once arrive in at most 2 batches (concurrency 2), got {}",
        batches.len()
    );
    assert!(
        batches.iter().any(|b| b["Records"].as_array().is_some_and(|r| r.len() > 1)),
        "the window batches messages"
    );
    let records: Vec<&Value> = batches.iter().flat_map(|b| b["Records"].as_array().into_iter().flatten()).collect();
    assert_eq!(records.len(), 5, "each message delivered once");
    for s in &sent {
        let record = records
            .iter()
            .find(|r| r["messageId"] == s.message_id.as_str())
            .unwrap_or_else(|| panic!("record for {}", s.id));
        assert_eq!(record["md5OfBody"], s.md5_of_body.as_str());
        assert_eq!(record["md5OfMessageAttributes"], s.md5_of_attributes.as_str());
        assert!(record["receiptHandle"].as_str().is_some_and(|h| !h.is_empty()));
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], stack.output("BatchQueueArn").as_str());
        assert_eq!(record["awsRegion"], "us-east-1");
        let attributes = &record["attributes"];
        assert_eq!(attributes["ApproximateReceiveCount"], "1");
        for key in ["SentTimestamp", "ApproximateFirstReceiveTimestamp"] {
            assert!(attributes[key].as_str().is_some_and(|t| t.parse::<u64>().is_ok()), "{key} in {attributes}");
        }
        assert!(attributes["SenderId"].as_str().is_some_and(|s| !s.is_empty()));
        // The SQS guide's example event: a string attribute has stringValue, empty list values, no binaryValue.
        let attribute = record["messageAttributes"]["run"].as_object().expect("run attribute");
        assert_eq!(attribute["stringValue"], run.as_str());
        assert_eq!(attribute["dataType"], "String");
        assert_eq!((&attribute["stringListValues"], &attribute["binaryListValues"]), (&json!([]), &json!([])));
        assert!(!attribute.contains_key("binaryValue"), "no null binaryValue: {attribute:?}");
    }

    let drained = eventually(WAIT, || async { (queue_depth(&stack, "BatchQueueUrl").await == 0).then_some(()) }).await;
    assert!(drained.is_some(), "processed messages are deleted from the queue");
}

#[tokio::test]
async fn function_gets_its_resolved_environment_and_lambda_log_lines() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    send(&stack, "BatchQueueUrl", &run, &[json!({"id": format!("{run}-env"), "action": "ok"})]).await;
    let events = eventually(WAIT, || async {
        let events = read_log_group(&stack.logs(), &stack.output("FixtureLogGroupName")).await;
        events
            .iter()
            .any(|e| e.message.contains(&format!("{run}-env")) && e.message.contains("record processed"))
            .then_some(events)
    })
    .await
    .expect("the function logged the record");

    let lines = json_lines(&events);
    let init = lines.iter().find(|(_, l)| l["message"] == "fixture initialised").expect("init line").1.clone();
    assert_eq!(init["greeting"], format!("hello from {}", stack.stack));
    assert_eq!(init["queueArn"], stack.output("BatchQueueArn").as_str());
    assert_eq!(init["tableName"], stack.output("FixtureTableName").as_str());
    for (_, line) in &lines {
        for field in ["timestamp", "level", "message", "function"] {
            assert!(line.get(field).is_some(), "log line without {field}: {line}");
        }
    }
    let (stream, _) = lines
        .iter()
        .find(|(_, l)| l["message"] == "record processed" && l["id"] == format!("{run}-env").as_str())
        .expect("processed line");
    let in_stream: Vec<&str> = events.iter().filter(|e| &e.stream == stream).map(|e| e.message.as_str()).collect();
    assert!(in_stream.iter().any(|m| m.starts_with("START RequestId: ")), "START line");
    assert!(in_stream.iter().any(|m| m.starts_with("END RequestId: ")), "END line");
    let report = in_stream.iter().find(|m| m.starts_with("REPORT RequestId: ")).expect("REPORT line");
    for part in ["Duration: ", "Billed Duration: ", "Memory Size: 128 MB", "Max Memory Used: ", "Init Duration: "] {
        assert!(report.contains(part), "REPORT has {part}: {report}");
    }
    assert!(stream.contains("/[$LATEST]"), "Lambda-style stream name: {stream}");
}

#[tokio::test]
async fn partial_batch_failure_redelivers_only_the_failed_items() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let bodies = [
        json!({"id": format!("{run}-a"), "action": "ok"}),
        json!({"id": format!("{run}-b"), "action": "ok"}),
        json!({"id": format!("{run}-c"), "action": "fail-once"}),
        json!({"id": format!("{run}-d"), "action": "fail"}),
    ];
    send(&stack, "PartialQueueUrl", &run, &bodies).await;

    let dead = eventually(WAIT, || async {
        let ids = dlq_ids(&stack, "PartialDlqUrl", &run).await;
        (!ids.is_empty()).then_some(ids)
    })
    .await
    .expect("the always-failing message reaches the DLQ");
    assert_eq!(dead, [format!("{run}-d")], "only the always-failing message is dead-lettered");

    let lines = fixture_lines(&stack).await;
    let seen = deliveries(&batches_of_run(&lines, &run));
    assert_eq!(seen[&format!("{run}-a")], ["1"], "a succeeded first time: delivered once");
    assert_eq!(seen[&format!("{run}-b")], ["1"], "b succeeded first time: delivered once");
    assert_eq!(seen[&format!("{run}-c")], ["1", "2"], "c failed once: delivered again");
    assert_eq!(seen[&format!("{run}-d")], ["1", "2"], "d delivered maxReceiveCount times");
    let mut processed = processed_ids(&lines, &run);
    processed.sort();
    let expected: Vec<(String, String)> =
        [("a", "1"), ("b", "1"), ("c", "2")].iter().map(|(id, n)| (format!("{run}-{id}"), (*n).to_owned())).collect();
    assert_eq!(processed, expected, "every good message processed exactly once, nothing lost");
    assert_eq!(queue_depth(&stack, "PartialQueueUrl").await, 0);
}

#[tokio::test]
async fn crashing_and_timing_out_handlers_are_redelivered_then_dead_lettered() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    let bodies = [
        json!({"id": format!("{run}-crash"), "action": "crash"}),
        json!({"id": format!("{run}-slow"), "action": "sleep", "sleepMs": 10_000}),
        json!({"id": format!("{run}-ok"), "action": "ok"}),
    ];
    send(&stack, "CrashQueueUrl", &run, &bodies).await;

    let mut dead = Vec::new();
    let give_up = std::time::Instant::now() + Duration::from_secs(90);
    while dead.len() < 2 && std::time::Instant::now() < give_up {
        dead.extend(dlq_ids(&stack, "CrashDlqUrl", &run).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    dead.sort();
    assert_eq!(dead, [format!("{run}-crash"), format!("{run}-slow")]);

    let events = read_log_group(&stack.logs(), &stack.output("FixtureLogGroupName")).await;
    let lines = json_lines(&events);
    let seen = deliveries(&batches_of_run(&lines, &run));
    assert_eq!(seen[&format!("{run}-crash")], ["1", "2"], "the crashing message is redelivered up to maxReceiveCount");
    assert_eq!(seen[&format!("{run}-slow")], ["1", "2"], "the timing-out message is redelivered up to maxReceiveCount");
    assert_eq!(
        processed_ids(&lines, &run),
        [(format!("{run}-ok"), "1".to_owned())],
        "the good message is processed once"
    );
    assert!(events.iter().any(|e| e.message.contains("Task timed out after 2.00 seconds")), "Lambda's timeout line");
    // Lambda's wording (its runtime interface words exits as Go does): "Runtime exited with error: signal:
    // aborted" then "Runtime.ExitError"; a timeout's "Task timed out after 2.00 seconds"; REPORT's status.
    let request_of = |id: &str| -> String {
        lines
            .iter()
            .find(|(_, l)| l["message"] == "batch received" && l["event"].as_str().is_some_and(|e| e.contains(id)))
            .and_then(|(_, l)| l["requestId"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("a batch holding {id}"))
    };
    let (crash, slow) = (request_of(&format!("{run}-crash")), request_of(&format!("{run}-slow")));
    let has = |predicate: &dyn Fn(&str) -> bool| events.iter().any(|e| predicate(&e.message));
    let crash_line = format!("RequestId: {crash} Error: Runtime exited with error: signal: aborted\nRuntime.ExitError");
    assert!(has(&|m| m == crash_line), "Lambda's crash line: {crash_line:?}");
    assert!(
        has(&|m| m.starts_with(&format!("REPORT RequestId: {crash}"))
            && m.ends_with("\tStatus: error\tError Type: Runtime.ExitError")),
        "the crash's REPORT carries its status"
    );
    assert!(has(&|m| m.contains(&format!("{slow} Task timed out after 2.00 seconds"))), "Lambda's timeout line");
    assert!(
        has(&|m| m.starts_with(&format!("REPORT RequestId: {slow}")) && m.ends_with("\tStatus: timeout")),
        "the timeout's REPORT carries its status"
    );
    assert_eq!(queue_depth(&stack, "CrashQueueUrl").await, 0);
}

#[tokio::test]
async fn messages_that_keep_failing_reach_the_dlq_and_a_redrive_brings_them_back_once() {
    let stack = LocalStack::connect(STACK).await;
    let run = run_id();
    // Fails on every delivery for the next 12 s: long enough to exhaust maxReceiveCount (2) and be dead-lettered.
    let until = now_ms() + 12_000;
    let bodies: Vec<Value> =
        (0..3).map(|i| json!({"id": format!("{run}-r{i}"), "action": "fail-until", "untilEpochMs": until})).collect();
    send(&stack, "RedriveQueueUrl", &run, &bodies).await;

    let sqs = stack.sqs();
    let dlq = stack.output("RedriveDlqUrl");
    let parked =
        eventually(WAIT, || async { (nexus_ops::dlq::depth(&sqs, &dlq).await.expect("depth") >= 3).then_some(()) })
            .await;
    assert!(parked.is_some(), "the failing messages are dead-lettered after maxReceiveCount");
    let wait = until.saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64 + 500)).await;

    let report = nexus_ops::dlq::redrive(&sqs, &dlq, Duration::from_secs(60)).await.expect("redrive");
    assert_eq!((report.before, report.after), (3, 0), "{report:?}");
    assert_eq!(report.moved, 3);

    let processed = eventually(WAIT, || async {
        let lines = fixture_lines(&stack).await;
        let ids = processed_ids(&lines, &run);
        (ids.len() >= 3).then_some(ids)
    })
    .await
    .expect("redriven messages are processed");
    let mut ids: Vec<String> = processed.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, [format!("{run}-r0"), format!("{run}-r1"), format!("{run}-r2")], "each processed exactly once");
    assert_eq!(nexus_ops::dlq::depth(&sqs, &dlq).await.expect("depth"), 0, "nothing left behind");
}
