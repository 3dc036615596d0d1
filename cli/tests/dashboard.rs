//! `nexus dashboard` in a real browser: Debian's headless Chromium driven over WebDriver (chromedriver),
//! against the stack `NEXUS_DASHBOARD_STACK` names (`make test` runs it on the priority stack, before the
//! priority test: a stack no other test writes chaos settings on while this one runs).
//!
//! The page loads with no console errors; an order submitted through the page's form appears and reaches
//! COMPLETED on the page; its timeline shows every step; the chaos control changes the settings item; the
//! token and loopback guards refuse what they must. A screenshot is kept in `NEXUS_TEST_ARTIFACTS`.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use nexus_aws::dynamo::catalog::CustomerRecord;
use nexus_core::domain::checkout::Tier;
use nexus_core::ports::ChaosSource;
use nexus_tests::{LocalStack, eventually, run_id};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const STACK: &str = "NEXUS_DASHBOARD_STACK";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// chromedriver and every browser it started (its process group), stopped when the test ends.
struct Browsers(Running);

impl Drop for Browsers {
    fn drop(&mut self) {
        if let Some(group) = self.0.0.id() {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Starts `nexus dashboard` on a free port and returns it with the URL it printed.
async fn start_dashboard() -> (Running, String) {
    let endpoint = std::env::var("NEXUS_TEST_ENDPOINT").expect("NEXUS_TEST_ENDPOINT: run with `make test`");
    let stack = std::env::var(STACK).expect("NEXUS_DASHBOARD_STACK: run with `make test`");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["dashboard", "--port", "0", "--verify-every", "10s"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("NEXUS_STACK", stack)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run nexus dashboard");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    tokio::time::timeout(Duration::from_secs(60), BufReader::new(stdout).read_line(&mut first))
        .await
        .expect("the dashboard prints its URL within a minute")
        .expect("read the URL");
    let url = first.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("/?token="), "printed {url:?}");
    (Running(child), url)
}

/// One raw HTTP/1.1 request (the guards are about exact headers, which a browser would not let us forge).
async fn raw_request(port: u16, request: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn start_browser() -> (Browsers, Client) {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} missing: `make test` installs Debian's chromium and chromium-driver (scripts/test/install-browser.sh)"
        );
    }
    let port = free_port();
    // Its own process group, so the browsers it starts go with it, even when the test fails mid-way.
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let driver = Browsers(Running(driver));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // No sandbox: CI runs as root, where Chromium's sandbox cannot start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1800"]
        },
        "goog:loggingPrefs": {"browser": "ALL"}
    });
    let capabilities = match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    };
    let url = format!("http://127.0.0.1:{port}");
    let client = eventually(Duration::from_secs(30), || {
        let capabilities = capabilities.clone();
        let url = url.clone();
        async move {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&url)
                .await
                .ok()
        }
    })
    .await
    .expect("chromedriver starts a headless Chromium");
    (driver, client)
}

/// The browser's console messages at level SEVERE (errors: an exception, a failed load, a CSP refusal).
async fn console_errors(browser: &Client) -> Vec<String> {
    let logs =
        browser.issue_cmd(BrowserLog).await.expect("read the browser's console log (chromedriver's log endpoint)");
    logs.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// chromedriver's `POST /session/{id}/se/log` (not in W3C WebDriver, which has no console log).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// Reads in the page in one script run: tables are redrawn with every screen, so an element found in one
/// WebDriver call may be gone by the next.
async fn in_page(browser: &Client, css: &str, read: &str) -> Option<String> {
    let script = format!("const e = document.querySelector(arguments[0]); return e ? String({read}) : null;");
    browser.execute(&script, vec![json!(css)]).await.ok()?.as_str().map(str::to_owned)
}

async fn attribute(browser: &Client, css: &str, name: &str) -> Option<String> {
    in_page(browser, css, &format!("e.getAttribute({})", json!(name))).await.filter(|v| v != "null")
}

async fn text(browser: &Client, css: &str) -> Option<String> {
    in_page(browser, css, "e.textContent").await
}

async fn set_value(browser: &Client, css: &str, value: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("clear the field");
    field.send_keys(value).await.expect("type into the field");
}

async fn select(browser: &Client, css: &str, value: &str) {
    let list = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    list.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
}

/// Clicks the element inside the page (its own handlers run, as for a person's click): a WebDriver click
/// aims at coordinates, which a redraw of the tables every screen can move between the aim and the click.
async fn click(browser: &Client, css: &str) {
    let clicked = browser
        .execute("const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;", vec![json!(css)])
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    assert_eq!(clicked, json!(true), "no element {css} to click");
}

/// Confirms the page's dialog and waits for the action's outcome.
async fn confirm_and_wait(browser: &Client) -> String {
    let asked = eventually(Duration::from_secs(10), || async {
        in_page(browser, "#confirm", "e.open || null").await.filter(|o| o == "true")
    })
    .await;
    if asked.is_none() {
        panic!(
            "the page did not ask for confirmation (result: {:?}); console: {:#?}",
            text(browser, "#result").await,
            console_errors(browser).await
        );
    }
    click(browser, "#confirm-yes").await;
    eventually(Duration::from_secs(90), || async {
        attribute(browser, "#result", "data-outcome").await.filter(|o| o == "ok" || o == "error")
    })
    .await
    .expect("the action answers")
}

#[tokio::test]
async fn the_dashboard_shows_an_order_submitted_from_it_completing_and_drives_chaos() {
    let started = std::time::Instant::now();
    let stage = |what: &str| eprintln!("dashboard test: {what} after {:.1} s", started.elapsed().as_secs_f64());
    let stack = LocalStack::connect(STACK).await;
    let sku = format!("DASH-{}", run_id());
    let store = stack.dynamo();
    store.set_stock(&sku, 3).await.expect("stock the SKU");
    store.set_price(&sku, 1999).await.expect("price the SKU");
    // The page's VIP sample is an order of the sample VIP customer, whose record makes it VIP.
    let vip = CustomerRecord { customer_id: "c-sample-vip".into(), tier: Tier::Vip };
    store.set_customer(&vip).await.expect("record the sample VIP customer");
    let (_dashboard, url) = start_dashboard().await;
    let port: u16 =
        url.trim_start_matches("http://127.0.0.1:").split('/').next().and_then(|p| p.parse().ok()).expect("port");
    let token = url.split("token=").nth(1).expect("token").to_owned();

    // The guards, as another page or a rebinding DNS name would meet them.
    let no_token =
        raw_request(port, &format!("GET /api/screen HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"))
            .await;
    assert_eq!((no_token.0, no_token.1["error"].as_str()), (401, Some("BadToken")));
    let rebound = raw_request(
        port,
        &format!("GET /api/screen?token={token} HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!((rebound.0, rebound.1["error"].as_str()), (421, Some("NotLoopback")));
    let action_by_query = raw_request(
        port,
        &format!("DELETE /api/chaos?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(action_by_query.0, 401, "an action takes the token only in its header");
    let read = raw_request(
        port,
        &format!("GET /api/screen?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(read.0, 200);
    assert!(read.1["refresh"].as_u64().is_some_and(|r| r >= 1), "a screen: {}", read.1);

    stage("the guards answered");
    let (_driver, browser) = start_browser().await;
    stage("the browser started");
    browser.goto(&url).await.expect("open the dashboard");
    let live =
        eventually(Duration::from_secs(30), || async { text(&browser, "#live").await.filter(|t| t == "live") }).await;
    assert!(live.is_some(), "the page receives screens (server-sent events)");
    let first_refresh: u64 =
        attribute(&browser, "#refreshed", "data-refresh").await.and_then(|r| r.parse().ok()).expect("a refresh number");
    let later = eventually(Duration::from_secs(20), || async {
        attribute(&browser, "#refreshed", "data-refresh")
            .await
            .and_then(|r| r.parse::<u64>().ok())
            .filter(|r| *r > first_refresh)
    })
    .await;
    assert!(later.is_some(), "the page updates by itself");
    assert!(browser.find(Locator::Css("#chart canvas")).await.is_ok(), "the throughput chart is drawn");
    let queue_rows = browser.find_all(Locator::Css("#queues tbody tr")).await.expect("queue rows").len();
    assert_eq!(queue_rows, stack.queues().len(), "every queue is listed");

    stage("the page is live");
    // A VIP order through the page's form.
    set_value(&browser, "#submit-sku", &sku).await;
    select(&browser, "#submit-tier", "VIP").await;
    click(&browser, "#submit-form button[type=submit]").await;
    assert_eq!(confirm_and_wait(&browser).await, "ok", "{:?}", text(&browser, "#result").await);
    let order_id = attribute(&browser, "#result", "data-order-id").await.expect("the submitted order's id");

    let row = format!("#orders tr[data-order-id='{order_id}']");
    let completed = eventually(Duration::from_secs(150), || async {
        attribute(&browser, &row, "data-status").await.filter(|s| s == "COMPLETED")
    })
    .await;
    assert!(completed.is_some(), "order {order_id} reaches COMPLETED on the page");
    assert_eq!(attribute(&browser, &row, "data-lane").await.as_deref(), Some("VIP"));

    stage("the order completed on the page");
    // Its timeline: every event of the saga and the execution's states, and its log lines.
    click(&browser, &row).await;
    let timeline = eventually(Duration::from_secs(30), || async {
        let script = "return Array.from(document.querySelectorAll('#detail-events tbody tr')).map(r => r.dataset.step).join(' ')";
        let steps = browser.execute(script, vec![]).await.ok()?.as_str()?.to_owned();
        let steps: Vec<String> = steps.split_whitespace().map(str::to_owned).collect();
        steps.contains(&"COMPLETED".to_owned()).then_some(steps)
    })
    .await
    .expect("the timeline shows the order completed");
    assert_eq!(timeline, ["PENDING", "INVENTORY_RESERVED", "PAYMENT_CHARGED", "SHIPPED", "COMPLETED"]);
    let states = browser.find_all(Locator::Css("#detail-states tbody tr")).await.expect("states").len();
    assert!(states >= 4, "the execution's states are listed ({states})");
    let ended = text(&browser, "#detail-ended").await.expect("the execution's end");
    assert!(ended.starts_with("(SUCCEEDED at ") || ended == "(running)", "the execution's end: {ended:?}");
    let order_text = text(&browser, "#detail-order").await.expect("the order");
    assert!(order_text.contains("customerEmailHash") && !order_text.contains("@example.com"), "no email in clear");
    let log_lines = browser.find_all(Locator::Css("#detail-logs tbody tr")).await.expect("log lines").len();
    assert!(log_lines > 0, "the order's log lines are shown");

    stage("the timeline was shown");
    // The chaos control writes the settings item the functions read.
    select(&browser, "#chaos-service", "notification").await;
    set_value(&browser, "#chaos-latency", "100").await;
    set_value(&browser, "#chaos-failure", "0.25").await;
    click(&browser, "#chaos-form button[type=submit]").await;
    assert_eq!(confirm_and_wait(&browser).await, "ok", "{:?}", text(&browser, "#result").await);
    let settings = stack.dynamo().load().await.expect("read the chaos settings");
    let notification = settings.services.get("notification").cloned().unwrap_or_default();
    assert_eq!((notification.failure_rate, notification.latency_ms), (0.25, 100), "the settings item changed");
    let shown = eventually(Duration::from_secs(10), || async {
        text(&browser, "#chaos tr[data-service=notification] td:nth-child(2)").await.filter(|t| t == "0.25")
    })
    .await;
    assert!(shown.is_some(), "the page shows the new setting");
    click(&browser, "#chaos-clear").await;
    assert_eq!(confirm_and_wait(&browser).await, "ok");
    assert!(stack.dynamo().load().await.expect("read").services.is_empty(), "cleared");

    // Out-of-range input is refused with a machine-readable reason (the form's own limits stop a person
    // first; the server does not rely on them).
    let body = r#"{"failureRate":7}"#;
    let refused = raw_request(
        port,
        &format!(
            "POST /api/chaos/notification HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Nexus-Token: {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!((refused.0, refused.1["error"].as_str()), (400, Some("BadChaosSettings")), "{}", refused.1);

    stage("chaos set and cleared");
    // The invariant checker's verdict is on the page.
    let verdict =
        eventually(Duration::from_secs(30), || async { attribute(&browser, "#verdict", "data-violations").await })
            .await;
    assert_eq!(verdict.as_deref(), Some("0"), "{:?}", text(&browser, "#verdict").await);

    if let Ok(folder) = std::env::var("NEXUS_TEST_ARTIFACTS") {
        std::fs::create_dir_all(&folder).expect("artifacts folder");
        browser.execute("window.scrollTo(0, 0)", vec![]).await.expect("scroll to the top");
        let png = browser.screenshot().await.expect("a screenshot");
        std::fs::write(std::path::Path::new(&folder).join("dashboard.png"), png).expect("keep the screenshot");
    }
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await.expect("close the browser");
}
