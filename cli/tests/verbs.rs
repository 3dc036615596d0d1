//! Every `nexus` verb, run as the built binary against the local stack `make test` starts: what it prints
//! (`--output json`) and its exit code.

use std::process::Output;
use std::time::Duration;

use nexus_tests::{LocalStack, eventually, eventually_every, run_id};
use serde_json::{Value, json};

const MAIN: &str = "NEXUS_MAIN_STACK";
/// A stack of this test's own with 5 s visibility timeouts (3 s function timeouts): a message that keeps
/// failing reaches its DLQ after its 5 deliveries in about 25 s, and no other test's messages are in its queues.
const DLQ: &str = "NEXUS_DLQ_STACK";

async fn nexus(stack_variable: &str, args: &[&str]) -> Output {
    let endpoint = std::env::var("NEXUS_TEST_ENDPOINT").expect("NEXUS_TEST_ENDPOINT: run with `make test`");
    let stack = std::env::var(stack_variable).expect("stack variable: run with `make test`");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("NEXUS_STACK", stack)
        .env_remove("NEXUS_OUTPUT")
        .output()
        .await
        .expect("run nexus")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn parsed(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}\nstderr: {}", stdout(output), String::from_utf8_lossy(&output.stderr))
    })
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

fn order_file(run: &str, key: &str, sku: &str, token: &str) -> tempfile_path::TempFile {
    let order = json!({
        "schemaVersion": 1, "idempotencyKey": format!("cli-{run}-{key}"), "customerId": format!("c-cli-{run}"),
        "customerEmail": "meera.cli@example.com", "tier": "VIP", "currency": "INR",
        "items": [{"sku": sku, "quantity": 1}],
        "payment": {"method": "card", "token": token},
        "shippingAddress": {"line1": "4 Park Street", "city": "Kolkata", "postalCode": "700016", "country": "IN"}
    });
    tempfile_path::TempFile::with(&order.to_string())
}

/// A file under the system temp dir, removed on drop (std only: no crate needed for this).
mod tempfile_path {
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn with(contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!("nexus-cli-{}.json", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).expect("write temp file");
            Self(path)
        }
        pub fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 path")
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[tokio::test]
async fn submit_status_timeline_orders_and_logs_follow_one_order() {
    let run = run_id();
    let sku = format!("CLI-{run}");
    let set = nexus(MAIN, &["-o", "json", "inventory", "set", &sku, "3", "--price", "2500"]).await;
    assert_eq!(code(&set), 0, "{}", String::from_utf8_lossy(&set.stderr));
    assert_eq!(parsed(&set)["unitPriceCents"], 2500);
    // The order's lane is its customer's record.
    let customer = format!("c-cli-{run}");
    let vip = nexus(MAIN, &["-o", "json", "customers", "set", &customer, "--tier", "vip"]).await;
    assert_eq!(code(&vip), 0, "{}", String::from_utf8_lossy(&vip.stderr));
    assert_eq!(parsed(&nexus(MAIN, &["-o", "json", "customers", "show", &customer]).await)["tier"], "VIP");

    let file = order_file(&run, "ok", &sku, "tok_ok");
    let submitted = nexus(MAIN, &["-o", "json", "submit", file.path(), "--wait", "--timeout", "150s"]).await;
    assert_eq!(code(&submitted), 0, "completed: {}", String::from_utf8_lossy(&submitted.stderr));
    let order = parsed(&submitted);
    let order_id = order["orderId"].as_str().expect("order id").to_owned();
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!((order["tier"].as_str(), order["totalCents"].as_u64()), (Some("VIP"), Some(2500)), "{order}");

    let status = parsed(&nexus(MAIN, &["-o", "json", "status", &order_id]).await);
    assert_eq!((status["status"].as_str(), status["version"].as_u64()), (Some("COMPLETED"), Some(5)));
    assert!(status.get("customerEmail").is_none(), "no email in clear: {status}");
    assert_eq!(status["customerEmailHash"].as_str().map(str::len), Some(64));
    let table = stdout(&nexus(MAIN, &["status", &order_id]).await);
    assert!(table.contains("COMPLETED") && table.contains("25.00 INR"), "{table}");

    // The customer asks to be forgotten: the ended order keeps its money facts, not their personal data;
    // a second run finds nothing left to do.
    let forgot = nexus(MAIN, &["-o", "json", "forget", &customer]).await;
    assert_eq!(code(&forgot), 0, "{}", String::from_utf8_lossy(&forgot.stderr));
    assert_eq!(parsed(&forgot)["erased"], json!([order_id]));
    let erased = parsed(&nexus(MAIN, &["-o", "json", "status", &order_id]).await);
    assert_eq!((erased["shippingAddress"]["line1"].as_str(), erased["totalCents"].as_u64()), (Some(""), Some(2500)));
    assert!(erased["personalDataErasedAt"].is_string(), "{erased}");
    let again = parsed(&nexus(MAIN, &["-o", "json", "forget", &customer]).await);
    assert_eq!((again["erased"].clone(), again["alreadyErased"].clone()), (json!([]), json!([order_id])));

    // The execution ends on the task that wrote COMPLETED, moments after the write: its end is in the timeline.
    let timeline = eventually(Duration::from_secs(30), || async {
        let timeline = parsed(&nexus(MAIN, &["-o", "json", "timeline", &order_id]).await);
        timeline["executionEnded"].is_object().then_some(timeline)
    })
    .await
    .expect("the timeline shows the execution's end");
    assert_eq!(timeline["executionEnded"]["status"], "SUCCEEDED", "{timeline}");
    let statuses: Vec<&str> =
        timeline["events"].as_array().expect("events").iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(statuses, ["PENDING", "INVENTORY_RESERVED", "PAYMENT_CHARGED", "SHIPPED", "COMPLETED"]);
    let states: Vec<&str> =
        timeline["states"].as_array().expect("states").iter().filter_map(|s| s["state"].as_str()).collect();
    for state in ["ReserveInventory", "ChargePayment", "DispatchShipping", "CompleteOrder"] {
        assert!(states.contains(&state), "{state} in {states:?}");
    }
    assert!(timeline["states"].as_array().expect("states").iter().all(|s| s["durationMs"].is_number()), "{timeline}");

    let listed = parsed(
        &nexus(MAIN, &["-o", "json", "orders", "--status", "completed", "--since", "10m", "--limit", "1000"]).await,
    );
    assert!(listed.as_array().expect("orders").iter().any(|o| o["orderId"] == order_id.as_str()), "listed");

    // Every function that touched the order logged it, with the contract's fields, and never the email.
    let functions = eventually(Duration::from_secs(30), || async {
        let logs = nexus(MAIN, &["-o", "json", "logs", "--order", &order_id, "--since", "15m"]).await;
        let text = stdout(&logs);
        assert!(!text.contains("meera.cli@example.com"), "raw email in the logs");
        let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert!(
            lines
                .iter()
                .all(|l| l["orderId"] == order_id.as_str() && l["timestamp"].is_string() && l["level"].is_string())
        );
        let functions: std::collections::BTreeSet<String> =
            lines.iter().filter_map(|l| l["function"].as_str().map(str::to_owned)).collect();
        (functions.len() >= 5).then_some(functions)
    })
    .await;
    assert!(functions.is_some(), "intake, inventory, payment, shipping and notification all logged the order");
    let pretty = stdout(&nexus(MAIN, &["logs", "--order", &order_id, "--function", "payment", "--since", "15m"]).await);
    assert!(pretty.lines().count() >= 1 && pretty.lines().all(|l| l.contains("payment")), "{pretty}");

    let listed = parsed(&nexus(MAIN, &["-o", "json", "inventory", "list"]).await);
    let stock =
        listed.as_array().expect("stock").iter().find(|s| s["sku"] == sku.as_str()).cloned().expect("sku listed");
    assert_eq!((stock["available"].as_u64(), stock["initial"].as_u64()), (Some(2), Some(3)), "one sold");

    // A catalog load sets stock the same way: the sold unit stays accounted for (initial moves with it).
    let catalog = tempfile_path::TempFile::with(
        &json!({"schemaVersion": 1, "items": [{"sku": sku, "available": 10}, {"sku": format!("{sku}-new"), "available": 4}]})
            .to_string(),
    );
    let loaded = nexus(MAIN, &["-o", "json", "inventory", "load", catalog.path()]).await;
    assert_eq!(code(&loaded), 0, "{}", String::from_utf8_lossy(&loaded.stderr));
    let listed = parsed(&nexus(MAIN, &["-o", "json", "inventory", "list"]).await);
    let find =
        |name: &str| listed.as_array().and_then(|a| a.iter().find(|s| s["sku"] == name).cloned()).expect("listed");
    assert_eq!((find(&sku)["available"].as_u64(), find(&sku)["initial"].as_u64()), (Some(10), Some(11)));
    assert_eq!(find(&format!("{sku}-new"))["available"].as_u64(), Some(4));
}

#[tokio::test]
async fn submit_wait_reports_an_order_that_did_not_complete_and_unknown_things_exit_3() {
    let run = run_id();
    let file = order_file(&run, "declined", "SKU-1", "tok_decline");
    let declined = nexus(MAIN, &["-o", "json", "submit", file.path(), "--wait", "--timeout", "150s"]).await;
    assert_eq!(code(&declined), 5, "{}", String::from_utf8_lossy(&declined.stderr));
    assert_eq!(parsed(&declined)["reason"], "Payment.Declined");
    // A declined card is a business refusal: retrying it would end the same way, so it is refused.
    let order_id = parsed(&declined)["orderId"].as_str().expect("order id").to_owned();
    let retry = nexus(MAIN, &["retry", &order_id]).await;
    assert_eq!(code(&retry), 7, "{}", String::from_utf8_lossy(&retry.stderr));
    assert!(String::from_utf8_lossy(&retry.stderr).contains("CANCELLED (Payment.Declined)"), "says why");
    assert_eq!(code(&nexus(MAIN, &["retry", "no-such-order"]).await), 3);
    // The dry run of the same order says so too, and changes nothing; a bulk retry needs a filter.
    let dry = nexus(MAIN, &["-o", "json", "retry", &order_id, "--dry-run"]).await;
    assert_eq!(code(&dry), 7, "{}", String::from_utf8_lossy(&dry.stderr));
    assert!(
        parsed(&dry)[0]["refused"].as_str().is_some_and(|why| why.contains("business") || why.contains("unavailable"))
    );
    assert_eq!(code(&nexus(MAIN, &["retry"]).await), 2, "no order and no filter is a usage error");

    let missing = nexus(MAIN, &["status", "no-such-order"]).await;
    assert_eq!(code(&missing), 3);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nexus orders"), "says what to do next");

    let endpoint = std::env::var("NEXUS_TEST_ENDPOINT").expect("endpoint");
    let no_stack = tokio::process::Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["--stack", "no-such-stack", "verify"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .await
        .expect("run nexus");
    assert_eq!(code(&no_stack), 3);
    assert!(String::from_utf8_lossy(&no_stack.stderr).contains("make up"), "says what to do next");

    let unreadable = nexus(MAIN, &["submit", "/no/such/order.json"]).await;
    assert_eq!(code(&unreadable), 2);
    let bad_flag = nexus(MAIN, &["orders", "--status", "LOST"]).await;
    assert_eq!(code(&bad_flag), 2);
}

#[tokio::test]
async fn top_and_dlq_list_show_every_queue() {
    let top = parsed(&nexus(MAIN, &["-o", "json", "top"]).await);
    assert_eq!(top["queues"].as_array().map(Vec::len), Some(11), "6 queues and 5 VIP lanes: {top}");
    assert!(top["ordersByStatus"].is_object() && top["executionsByStatus"].is_object(), "{top}");
    // The stack's LocalStack is Nexus's own, patched: its launcher says so (GET /_localstack/nexus), and
    // top warns of nothing.
    let emulator = serde_json::json!({"nexusLauncher": true, "patched": true, "warning": null});
    assert_eq!(top["emulator"], emulator, "{top}");
    let table = stdout(&nexus(MAIN, &["top"]).await);
    assert!(table.contains("active sagas") && table.contains("payment-vip"), "{table}");
    assert!(table.starts_with("nexus top"), "no warning first: {table}");

    let queues = parsed(&nexus(MAIN, &["-o", "json", "dlq", "list"]).await);
    let names: Vec<&str> = queues.as_array().expect("queues").iter().filter_map(|q| q["queue"].as_str()).collect();
    let lanes = [
        "inventory",
        "inventory-vip",
        "notification",
        "order-commands",
        "order-commands-vip",
        "order-intake",
        "order-intake-vip",
        "payment",
        "payment-vip",
        "shipping",
        "shipping-vip",
    ];
    assert_eq!(names, lanes, "every queue, each lane its own row");
}

/// One operator's session on a quiet stack of its own (short visibility timeouts), in order: break
/// notifications with chaos, watch their messages reach the DLQ, clear the chaos, redrive, and verify; then
/// corrupt the stock and see `nexus verify` fail, and repair it.
#[tokio::test]
async fn chaos_dlq_redrive_and_verify_on_a_quiet_stack() {
    let stack = LocalStack::connect(DLQ).await;
    let run = run_id();
    let sku = format!("CLI-{run}");
    assert_eq!(code(&nexus(DLQ, &["inventory", "set", &sku, "5", "--price", "2500"]).await), 0);

    let set = parsed(
        &nexus(DLQ, &["-o", "json", "chaos", "set", "notification", "--failure-rate", "1", "--latency-ms", "10"]).await,
    );
    assert_eq!(set["services"]["notification"]["failureRate"], 1.0);
    let shown = parsed(&nexus(DLQ, &["-o", "json", "chaos", "show"]).await);
    assert_eq!(shown, set, "show reads what set wrote");
    tokio::time::sleep(nexus_core::chaos::CACHE_TTL + Duration::from_secs(1)).await;

    // The order completes (notifications never block it), but its notifications keep failing.
    let file = order_file(&run, "dlq", &sku, "tok_ok");
    let submitted = nexus(DLQ, &["-o", "json", "submit", file.path(), "--wait", "--timeout", "150s"]).await;
    assert_eq!(code(&submitted), 0, "{}", String::from_utf8_lossy(&submitted.stderr));
    let order_id = parsed(&submitted)["orderId"].as_str().expect("id").to_owned();

    // Every 3 s: each `dlq list` asks for all 22 queues' depths.
    let dead = eventually_every(Duration::from_secs(3), Duration::from_secs(200), || async {
        let queues = parsed(&nexus(DLQ, &["-o", "json", "dlq", "list"]).await);
        let notification = queues.as_array()?.iter().find(|q| q["queue"] == "notification")?.clone();
        (notification["dlqDepth"].as_u64()? >= 5 && notification["depth"].as_u64()? == 0).then_some(notification)
    })
    .await;
    assert!(dead.is_some(), "the five status notifications reached the DLQ after maxReceiveCount deliveries");

    let peeked = parsed(&nexus(DLQ, &["-o", "json", "dlq", "peek", "notification"]).await);
    let bodies: Vec<&str> = peeked.as_array().expect("messages").iter().filter_map(|m| m["body"].as_str()).collect();
    assert!(!bodies.is_empty() && bodies.iter().all(|b| b.contains(&order_id)), "peek shows the order's events");

    let cleared = parsed(&nexus(DLQ, &["-o", "json", "chaos", "clear"]).await);
    assert_eq!(cleared["services"], json!({}));
    tokio::time::sleep(nexus_core::chaos::CACHE_TTL + Duration::from_secs(1)).await;

    let redriven = nexus(DLQ, &["-o", "json", "dlq", "redrive", "notification"]).await;
    assert_eq!(code(&redriven), 0, "{}", String::from_utf8_lossy(&redriven.stderr));
    let report = parsed(&redriven);
    assert!(report["moved"].as_u64() >= Some(5) && report["after"] == 0, "{report}");
    let notified = eventually(Duration::from_secs(90), || async {
        let ledger = stack.dynamo().ledger(&order_id).await.ok()?;
        (ledger.iter().filter(|e| e.entry.starts_with("notification")).count() == 5).then_some(())
    })
    .await;
    assert!(notified.is_some(), "every redriven notification was processed, once");

    let clean = nexus(DLQ, &["-o", "json", "verify"]).await;
    assert_eq!(code(&clean), 0, "{}", stdout(&clean));
    assert_eq!(parsed(&clean)["report"]["violations"], json!([]));

    // Corrupt: a unit appears from nowhere (available up, initial not).
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.config);
    let bump = |delta: i64| {
        dynamo
            .update_item()
            .table_name(stack.output("InventoryTableName"))
            .key("sku", aws_sdk_dynamodb::types::AttributeValue::S(sku.clone()))
            .update_expression("ADD available :d")
            .expression_attribute_values(":d", aws_sdk_dynamodb::types::AttributeValue::N(delta.to_string()))
            .send()
    };
    bump(1).await.expect("corrupt");
    let corrupted = nexus(DLQ, &["-o", "json", "verify"]).await;
    assert_eq!(code(&corrupted), 4, "verify fails on a violation");
    let violations = parsed(&corrupted)["report"]["violations"].clone();
    assert!(violations.as_array().is_some_and(|v| v.iter().any(|v| v["subject"] == sku.as_str())), "{violations}");
    bump(-1).await.expect("repair");
    assert_eq!(code(&nexus(DLQ, &["verify"]).await), 0, "clean again");
}

/// An execution stopped mid-saga (`aws stepfunctions stop-execution`) leaves its order without its final
/// status: `nexus verify` names it and exits 4; `nexus retry` takes it to a terminal state; `nexus verify`
/// is then clean. (Checked on the order, `--order`: the main stack is busy with the other tests' orders.)
#[tokio::test]
async fn a_stopped_execution_is_flagged_by_verify_and_ended_by_retry() {
    let run = run_id();
    let stack = LocalStack::connect(MAIN).await;
    let file = order_file(&run, "stopped", "SKU-2", "tok_ok");
    let order_id = nexus_core::domain::ids::order_id_for_key(&format!("cli-{run}-stopped"));
    let execution_arn =
        format!("{}:{order_id}", stack.output("OrderSagaStateMachineArn").replacen(":stateMachine:", ":execution:", 1));
    // Stopped soon after it starts: the stopper is already waiting when the submission goes out (a VIP saga
    // on an idle stack completes within a second).
    let sfn = aws_sdk_sfn::Client::new(&stack.config);
    let stopper = tokio::spawn(async move { nexus_tests::stop_execution_once_started(&sfn, &execution_arn).await });
    let submitted = nexus(MAIN, &["submit", file.path()]).await;
    assert_eq!(code(&submitted), 0, "{}", String::from_utf8_lossy(&submitted.stderr));
    stopper.await.expect("the execution started and was stopped");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = nexus(MAIN, &["-o", "json", "status", &order_id]).await;
    assert_ne!(parsed(&status)["status"], "COMPLETED", "stopped before its end: {}", stdout(&status));

    let flagged = nexus(MAIN, &["-o", "json", "verify", "--order", &order_id]).await;
    assert_eq!(code(&flagged), 4, "{}", String::from_utf8_lossy(&flagged.stderr));
    let rules: Vec<String> = parsed(&flagged)["report"]["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["rule"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(rules, ["execution-ended-order-open"], "{}", stdout(&flagged));

    let retried = nexus(MAIN, &["retry", &order_id]).await;
    assert_eq!(code(&retried), 0, "{}", String::from_utf8_lossy(&retried.stderr));
    // Where the stop landed decides the way out: every step done, completed; else compensated, cancelled.
    let ended = eventually(Duration::from_secs(120), || async {
        let status = parsed(&nexus(MAIN, &["-o", "json", "status", &order_id]).await);
        (status["status"] == "CANCELLED" || status["status"] == "COMPLETED").then_some(status)
    })
    .await
    .expect("the retry ended the order");
    if ended["status"] == "CANCELLED" {
        assert_eq!(ended["reason"], nexus_ops::retry::EXECUTION_ENDED);
    }
    let clean = eventually(Duration::from_secs(60), || async {
        let verified = nexus(MAIN, &["verify", "--order", &order_id]).await;
        (code(&verified) == 0).then_some(())
    })
    .await;
    assert!(clean.is_some(), "{}", stdout(&nexus(MAIN, &["verify", "--order", &order_id]).await));
}
