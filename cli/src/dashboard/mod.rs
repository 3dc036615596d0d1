//! `nexus dashboard`: a live operations page on 127.0.0.1, reading the stack as the CLI does (its outputs),
//! so it works against the local stack and against AWS alike.
//!
//! Safe by default: it binds loopback only and answers only requests addressed to loopback (a page of
//! another site cannot reach it through DNS rebinding); every API call needs the token printed at start
//! (in the URL it prints), and the actions take it only in a header, which another origin cannot send
//! without a CORS preflight this server never grants. `--read-only` refuses every action.

mod actions;
mod assets;
mod board;
mod calls;
mod queues;
mod sampler;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;

use crate::stack::Nexus;
use calls::Clients;
use sampler::{Sampler, Screen};

/// The header the page sends the token in.
pub const TOKEN_HEADER: &str = "x-nexus-token";
/// Actions carry small JSON bodies.
const BODY_LIMIT: usize = 16 * 1024;

#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// The port on 127.0.0.1 (0: any free port; the URL printed says which).
    #[arg(long, default_value_t = 8642)]
    pub port: u16,
    /// Show only: every action (chaos, redrive, submit) is refused. The default against AWS (an endpoint
    /// that is not this machine's): enable the actions there with --allow-actions.
    #[arg(long, conflicts_with = "allow_actions")]
    pub read_only: bool,
    /// Enable the actions against a stack that is not local (AWS).
    #[arg(long)]
    pub allow_actions: bool,
    /// Run the invariant checker (it reads every table in full) this often; 0 never.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub verify_every: Duration,
}

pub struct Dashboard {
    nexus: Arc<Nexus>,
    clients: Clients,
    dynamo: nexus_aws::dynamo::Dynamo,
    token: String,
    read_only: bool,
    port: u16,
    screens: watch::Receiver<Arc<Screen>>,
    emails: nexus_core::domain::ids::EmailHasher,
}

type Shared = Arc<Dashboard>;

pub async fn run(nexus: Nexus, args: DashboardArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
        .await
        .with_context(|| format!("listen on 127.0.0.1:{} (taken? pick another with --port)", args.port))?;
    let port = listener.local_addr().context("the listening address")?.port();
    let nexus = Arc::new(nexus);
    let clients = Clients::new(&nexus.config);
    let emails = nexus.email_hasher().await?;
    // The stack's tables through the counting client, resolved once for the sampler and the actions.
    let dynamo = nexus.dynamo_on(clients.dynamodb.clone())?;
    let read_only = read_only(nexus.local, &args);
    let mut sampler = Sampler::new(nexus.clone(), clients.clone(), dynamo.clone(), read_only, args.verify_every).await;
    if let Some(warning) = sampler.current().emulator.as_ref().and_then(|e| e.warning.as_deref()) {
        crate::render::progress(format!("⚠ {warning}"));
    }
    // The first screen before the URL is printed: a page opened at once shows the stack, not a blank.
    sampler.refresh().await;
    let (sender, screens) = watch::channel(Arc::new(sampler.current().clone()));
    tokio::spawn(sampler.run(sender));

    let token = uuid::Uuid::new_v4().simple().to_string();
    let dashboard = Arc::new(Dashboard { nexus, clients, dynamo, token, read_only, port, screens, emails });
    let url = format!("http://127.0.0.1:{port}/?token={}", dashboard.token);
    // The one line on stdout, so a script (or the browser test) can read the URL.
    println!("{url}");
    crate::render::progress(format!(
        "nexus dashboard for stack {}{}: open {url} (Ctrl-C stops)",
        dashboard.nexus.stack,
        match (read_only, args.read_only) {
            (false, _) => "",
            (true, true) => ", read-only",
            (true, false) => ", read-only (not a local stack: --allow-actions enables the actions)",
        }
    ));
    axum::serve(listener, router(dashboard))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serve the dashboard")
}

/// Whether the page only shows: asked for, or the stack is not local and the actions were not enabled.
fn read_only(local: bool, args: &DashboardArgs) -> bool {
    args.read_only || !(local || args.allow_actions)
}

fn router(dashboard: Shared) -> Router {
    let api = Router::new()
        .route("/screen", get(actions::screen))
        .route("/events", get(actions::events))
        .route("/orders", post(actions::submit))
        .route("/orders/{order_id}", get(actions::order_detail))
        .route("/chaos", delete(actions::clear_chaos))
        .route("/chaos/{service}", post(actions::set_chaos))
        .route("/dlq/{queue}/redrive", post(actions::redrive))
        .layer(middleware::from_fn_with_state(dashboard.clone(), require_token))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .nest("/api", api)
        .layer(middleware::from_fn_with_state(dashboard.clone(), loopback_only))
        .with_state(dashboard)
}

/// A machine-readable refusal: `{"error": name, "message": why}`.
pub fn refusal(status: StatusCode, error: &'static str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": error, "message": message.into()}))).into_response()
}

/// Answers only requests addressed to this server by a loopback name (DNS rebinding), and sets the
/// headers every answer needs.
async fn loopback_only(State(dashboard): State<Shared>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let allowed = ["127.0.0.1", "localhost", "[::1]"].map(|name| format!("{name}:{}", dashboard.port));
    if !allowed.iter().any(|a| a == host) {
        return refusal(StatusCode::MISDIRECTED_REQUEST, "NotLoopback", "address the dashboard as 127.0.0.1");
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every API call needs the token; an action (anything but GET) only in the header.
async fn require_token(State(dashboard): State<Shared>, request: Request, next: Next) -> Response {
    let reading = request.method() == axum::http::Method::GET;
    let from_query = reading
        .then(|| request.uri().query())
        .flatten()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
    let given = header_token(request.headers()).or(from_query).unwrap_or_default();
    if !same_token(given, &dashboard.token) {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "BadToken",
            "open the URL nexus dashboard printed (it carries the token)",
        );
    }
    if !reading && dashboard.read_only {
        return refusal(
            StatusCode::FORBIDDEN,
            "ReadOnly",
            "the dashboard is read-only (--read-only, or a stack that is not local without --allow-actions)",
        );
    }
    next.run(request).await
}

fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(TOKEN_HEADER).and_then(|h| h.to_str().ok())
}

/// Compares in time independent of where the first difference is.
fn same_token(given: &str, token: &str) -> bool {
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_in_full() {
        assert!(same_token("abc123", "abc123"));
        assert!(!same_token("abc124", "abc123"));
        assert!(!same_token("abc12", "abc123"));
        assert!(!same_token("", "abc123"));
    }

    #[test]
    fn actions_are_off_against_aws_unless_enabled() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: DashboardArgs,
        }
        let args = |flags: &[&str]| Cli::parse_from([&["dashboard"], flags].concat()).args;
        assert!(!read_only(true, &args(&[])), "a local stack: actions on");
        assert!(read_only(true, &args(&["--read-only"])));
        assert!(read_only(false, &args(&[])), "AWS: read-only by default");
        assert!(!read_only(false, &args(&["--allow-actions"])));
        assert!(Cli::try_parse_from(["dashboard", "--read-only", "--allow-actions"]).is_err());
    }
}
