//! `nexus bench`, run small on the test environment (`make test` deploys the null saga beside the stacks and
//! names everything the bench needs): every run ends all its orders, the counting is exact where the
//! protocol fixes the count (one StartExecution and four SendTaskSuccess per happy order, whatever idle
//! polling goes on meanwhile), the proxy sees Nexus's DynamoDB calls and none of the null saga's, and every
//! cost line is priced. No time is asserted: the bench prints figures.

use std::process::Command;

use serde_json::Value;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the bench test with `make test`"))
}

fn per_order(run: &Value, operation: &str) -> f64 {
    run["localstackRequestsPerOrder"][operation].as_f64().unwrap_or(0.0)
}

#[test]
fn nexus_bench_measures_both_sagas_and_counts_exactly() {
    let (burst, sequential) = (6, 2);
    let output = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["--endpoint", &env("NEXUS_TEST_ENDPOINT"), "--stack", &env("NEXUS_BENCH_STACK"), "-o", "json", "bench"])
        .args(["--burst", &burst.to_string(), "--sequential", &sequential.to_string(), "--idle-seconds", "3"])
        .args(["--template", &env("NEXUS_TEMPLATE"), "--null-stack", &env("NEXUS_BENCH_NULL_STACK")])
        .args(["--null-template", &env("NEXUS_BENCH_NULL_TEMPLATE"), "--lambda-dir", &env("NEXUS_BENCH_LAMBDA_DIR")])
        .args(["--function-host", &format!("{}/function-host/bootstrap", env("NEXUS_BENCH_LAMBDA_DIR"))])
        .args([
            "--dynamodb-endpoint",
            &env("NEXUS_BENCH_DYNAMODB"),
            "--localstack-log",
            &env("NEXUS_BENCH_LOCALSTACK_LOG"),
        ])
        .args(["--localstack-pid", &env("NEXUS_BENCH_LOCALSTACK_PID"), "--work-dir", &env("NEXUS_BENCH_WORK_DIR")])
        .output()
        .expect("run nexus bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nexus bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    let runs = report["runs"].as_array().expect("runs");
    let run = |saga: &str, workload: &str, mode: &str| {
        runs.iter()
            .find(|r| r["saga"] == saga && r["workload"] == workload && r["mode"] == mode)
            .unwrap_or_else(|| panic!("no {saga} {workload} {mode} run in {report:#}"))
    };

    // Every order of every run ended, as its saga ends orders.
    let outcomes = |r: &Value| r["outcomes"].as_object().cloned().unwrap_or_default();
    assert_eq!(outcomes(run("null", "happy", "sequential"))["SUCCEEDED"], sequential);
    assert_eq!(outcomes(run("null", "happy", "burst"))["SUCCEEDED"], burst);
    assert_eq!(outcomes(run("nexus", "happy", "sequential"))["COMPLETED"], sequential);
    assert_eq!(outcomes(run("nexus", "happy", "burst"))["COMPLETED"], burst);
    let mixed = run("nexus", "mixed", "burst");
    assert_eq!(mixed["orders"], burst, "every mixed order ended: {mixed:#}");

    // The protocol fixes these counts: LocalStack's log, net of idle and of the bench's own calls, shows them.
    for saga in ["null", "nexus"] {
        let happy = run(saga, "happy", "burst");
        assert_eq!(per_order(happy, "stepfunctions.StartExecution"), 1.0, "{saga}: {happy:#}");
        assert_eq!(per_order(happy, "stepfunctions.SendTaskSuccess"), 4.0, "{saga}: {happy:#}");
        assert_eq!(per_order(happy, "stepfunctions.ListExecutions"), 0.0, "the bench's own polls are not the saga's");
        assert_eq!(per_order(happy, "sns.PublishBatch"), 0.0, "the submissions are the bench's own calls");
        // Every process is found and grouped (LocalStack's CPU is net of idle, which on this busy test
        // environment can be all of it in a burst this small: only present, not positive).
        assert!(happy["cpuMsPerOrder"]["LocalStack"].is_number(), "{happy:#}");
        assert!(happy["peakMemoryMib"]["LocalStack"].as_f64().unwrap_or(0.0) > 0.0, "{happy:#}");
        assert!(happy["peakMemoryMib"]["function host"].as_f64().unwrap_or(0.0) > 0.0, "{happy:#}");
    }
    // Every function's processes are found and grouped. The null responder's CPU for six orders can be less
    // than the one clock tick (10 ms) that /proc counts in, so it is only present; Nexus's five functions
    // together spend several ticks on them.
    let null = run("null", "happy", "burst");
    assert!(null["cpuMsPerOrder"]["fn null-responder"].is_number(), "{null:#}");
    assert!(null["peakMemoryMib"]["fn null-responder"].as_f64().unwrap_or(0.0) > 0.0, "{null:#}");
    // Nexus's functions call DynamoDB through the counting proxy; the null saga has no table.
    let nexus = run("nexus", "happy", "burst");
    assert!(nexus["dynamodbPerOrder"]["TransactWriteItems"]["requests"].as_f64().unwrap_or(0.0) >= 1.0, "{nexus:#}");
    assert!(run("null", "happy", "burst")["dynamodbPerOrder"].as_object().is_none_or(|m| m.is_empty()));
    let cpu = nexus["cpuMsPerOrder"].as_object().cloned().unwrap_or_default();
    let functions_cpu: f64 =
        cpu.iter().filter(|(group, _)| group.starts_with("fn ")).filter_map(|(_, ms)| ms.as_f64()).sum();
    assert!(functions_cpu > 0.0, "{nexus:#}");
    // Nexus publishes an event per status change: five on the happy path.
    assert_eq!(per_order(nexus, "sns.Publish"), 5.0, "{nexus:#}");

    // The cost: the happy path's transitions (its four tasks, the last of which ends the execution) and every
    // line priced.
    let cost = &report["cost"];
    let lines = cost["lines"].as_array().expect("cost lines");
    assert_eq!(lines.len(), 8, "{cost:#}");
    let line = |item: &str| lines.iter().find(|l| l["item"] == item).unwrap_or_else(|| panic!("no {item}: {cost:#}"));
    assert_eq!(line("Step Functions state transitions")["perOrder"], 4.0, "{cost:#}");
    for l in lines {
        assert!(l["usdPerMillionOrders"].as_f64().unwrap_or(0.0) > 0.0, "unpriced or uncounted: {l:#}");
    }
    assert!(report["ratios"]["throughput"].as_f64().unwrap_or(0.0) > 0.0);
    // The mixed workload's cost: every execution of its run counted, whatever its end, per order of the mix
    // (a rejected order has no execution), with the mix it stands for.
    let mixed = &report["mixedCost"];
    let mixed_lines = mixed["lines"].as_array().expect("mixed cost lines");
    let transitions = mixed_lines.iter().find(|l| l["item"] == "Step Functions state transitions").expect("{mixed:#}");
    assert!(transitions["perOrder"].as_f64().unwrap_or(0.0) > 0.0, "{mixed:#}");
    let mix = mixed["assumptions"][0].as_str().unwrap_or_default();
    assert!(mix.starts_with("the mixed workload as run: "), "{mixed:#}");

    // The capacity: every limit at the rate where it binds, lowest first; the callbacks counted (4 tasks).
    let limits = report["capacity"]["limits"].as_array().expect("capacity limits");
    let rates: Vec<f64> = limits.iter().filter_map(|l| l["ordersPerSecond"].as_f64()).collect();
    assert!(rates.len() >= 7 && rates.windows(2).all(|w| w[0] <= w[1]), "{limits:#?}");
    let callbacks = limits.iter().find(|l| l["limit"].as_str().is_some_and(|s| s.contains("SendTaskSuccess")));
    assert_eq!(callbacks.map(|l| l["perOrder"].clone()), Some(serde_json::json!(4.0)), "{limits:#?}");
    // The mappings' concurrency is the stack's (a local stack deploys QueueMaximumConcurrency=2).
    let mapping = limits.iter().filter_map(|l| l["limit"].as_str()).find(|l| l.contains("event source mapping"));
    assert!(mapping.is_some_and(|l| l.contains("MaximumConcurrency 2 (the stack's")), "{limits:#?}");
}
