//! The Lambda Runtime API (2018-06-01), served to one function process at a time on its own loopback port:
//! `GET /runtime/invocation/next`, `POST /runtime/invocation/{id}/response|error`, `POST /runtime/init/error`.
//! One port per process slot keeps invocations of concurrent processes apart without routing.
//!
//! The Extensions API (and the Telemetry and Logs APIs extensions subscribe with) is not served: a register
//! call is refused with a JSON error naming what is missing, so an extension fails at once and says why
//! rather than waiting on a route that never answers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::sync::{Notify, mpsc, watch};

/// An invocation waiting for the runtime to fetch it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_epoch_ms: i64,
    pub function_arn: String,
    pub trace_id: String,
}

/// What the runtime reported back.
#[derive(Debug)]
pub enum RuntimeReport {
    Response { request_id: String, body: Bytes },
    Error { request_id: String, error_type: Option<String>, body: Bytes },
    InitError { error_type: Option<String>, body: Bytes },
}

struct Shared {
    pending: Mutex<Option<Invocation>>,
    pending_ready: Notify,
    first_poll: watch::Sender<Option<Instant>>,
    reports: mpsc::UnboundedSender<RuntimeReport>,
}

/// The host side of one slot's Runtime API.
pub struct RuntimeApi {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    reports: mpsc::UnboundedReceiver<RuntimeReport>,
}

/// How a process's init phase ended.
#[derive(Debug)]
pub enum InitEnd {
    /// The runtime asked for its first event, at this moment.
    Ready(Instant),
    /// The runtime reported an init error.
    Failed(RuntimeReport),
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pending: Mutex::new(None),
            pending_ready: Notify::new(),
            first_poll: watch::Sender::new(None),
            reports: reports_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2020-01-01/extension/{*rest}", any(extensions_refused))
            .route("/2020-08-15/logs", any(extensions_refused))
            .route("/2022-07-01/telemetry", any(extensions_refused))
            .with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "runtime API server stopped");
            }
        });
        Ok(Self { address, shared, reports })
    }

    /// Forgets everything of the previous process (called before a new process starts).
    pub fn reset(&mut self) {
        *lock(&self.shared.pending) = None;
        self.shared.first_poll.send_replace(None);
        while self.reports.try_recv().is_ok() {}
    }

    /// Queues an invocation for the runtime's next poll.
    pub fn submit(&self, invocation: Invocation) {
        *lock(&self.shared.pending) = Some(invocation);
        self.shared.pending_ready.notify_one();
    }

    /// Withdraws an invocation the runtime never fetched.
    pub fn withdraw(&self) {
        *lock(&self.shared.pending) = None;
    }

    /// Waits for the end of the current process's init phase: its first poll for work, or an init error.
    /// `None`: the API is gone.
    pub async fn init_end(&mut self) -> Option<InitEnd> {
        let mut first_poll = self.shared.first_poll.subscribe();
        loop {
            tokio::select! {
                polled = first_poll.wait_for(Option::is_some) => return polled.ok().and_then(|at| Some(InitEnd::Ready((*at)?))),
                report = self.reports.recv() => match report? {
                    report @ RuntimeReport::InitError { .. } => return Some(InitEnd::Failed(report)),
                    stale => tracing::warn!(?stale, "ignoring a report before the first invocation"),
                },
            }
        }
    }

    pub async fn next_report(&mut self) -> Option<RuntimeReport> {
        self.reports.recv().await
    }
}

/// A poisoned lock only means another request handler panicked; the data (an Option) is still sound.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.send_if_modified(|first| {
        let is_first = first.is_none();
        first.get_or_insert_with(Instant::now);
        is_first
    });
    loop {
        let ready = shared.pending_ready.notified();
        if let Some(invocation) = lock(&shared.pending).take() {
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: &str| {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            };
            set("lambda-runtime-aws-request-id", &invocation.request_id);
            set("lambda-runtime-deadline-ms", &invocation.deadline_epoch_ms.to_string());
            set("lambda-runtime-invoked-function-arn", &invocation.function_arn);
            set("lambda-runtime-trace-id", &invocation.trace_id);
            set("content-type", "application/json");
            return (StatusCode::OK, headers, invocation.payload).into_response();
        }
        ready.await;
    }
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn response(State(shared): State<Arc<Shared>>, Path(request_id): Path<String>, body: Bytes) -> StatusCode {
    let _ = shared.reports.send(RuntimeReport::Response { request_id, body });
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = shared.reports.send(RuntimeReport::Error { request_id, error_type: error_type(&headers), body });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = shared.reports.send(RuntimeReport::InitError { error_type: error_type(&headers), body });
    StatusCode::ACCEPTED
}

/// The body of every Extensions, Telemetry and Logs API call.
pub const EXTENSIONS_REFUSED: &str = "the function host runs no Lambda extensions: the Extensions, Telemetry and \
    Logs APIs are not served (see docs/local-environment.md, the function host)";

async fn extensions_refused(headers: HeaderMap) -> Response {
    let name = headers.get("lambda-extension-name").and_then(|v| v.to_str().ok()).unwrap_or("(unnamed)");
    tracing::warn!(extension = name, "refused an extension: the Extensions API is not served");
    let body = serde_json::json!({"errorType": "Extension.NotSupported", "errorMessage": EXTENSIONS_REFUSED});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}
