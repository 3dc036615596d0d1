//! One execution environment: a function process speaking the Runtime API, started on demand, killed and
//! restarted after a timeout or crash, as Lambda does. Writes START/END/REPORT lines like Lambda's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::cloudwatch_logs::{self, LogSink};
use crate::runtime_api::{Invocation, RuntimeApi, RuntimeReport};

/// A function as configured in the template, resolved against the stack.
#[derive(Debug)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub binary: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u64,
    /// Lambda's own variables plus the function's `Environment`, all but the per-process ones.
    pub environment: BTreeMap<String, String>,
}

impl FunctionConfig {
    pub fn log_group(&self) -> String {
        format!("/aws/lambda/{}", self.name)
    }
}

#[derive(Debug)]
pub enum Outcome {
    Success(Bytes),
    /// The handler returned an error (`/invocation/{id}/error`).
    FunctionError {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The runtime failed to initialise (`/init/error`).
    InitError {
        error_type: Option<String>,
        body: Bytes,
    },
    TimedOut,
    /// The process exited while the invocation was running.
    Crashed(String),
    /// The process could not be started at all.
    SpawnFailed(String),
}

struct Process {
    child: Child,
    pid: Option<u32>,
    stream: String,
    started: Instant,
    invoked: bool,
}

pub struct Instance {
    config: Arc<FunctionConfig>,
    api: RuntimeApi,
    logs: LogSink,
    process: Option<Process>,
}

impl Instance {
    pub async fn new(config: Arc<FunctionConfig>, logs: LogSink) -> std::io::Result<Self> {
        Ok(Self { config, api: RuntimeApi::start().await?, logs, process: None })
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        self.api.reset();
        let stream = cloudwatch_logs::new_stream_name();
        let mut command = Command::new(&self.config.binary);
        command
            .env_clear()
            .envs(&self.config.environment)
            .env("AWS_LAMBDA_RUNTIME_API", self.api.address.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &stream)
            .current_dir(self.config.binary.parent().unwrap_or(std::path::Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let group = self.config.log_group();
        if let Some(stdout) = child.stdout.take() {
            forward_lines(stdout, self.logs.clone(), group.clone(), stream.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            forward_lines(stderr, self.logs.clone(), group, stream.clone());
        }
        let pid = child.id();
        tracing::info!(function = %self.config.name, pid, stream = %stream, "function process started");
        self.process = Some(Process { child, pid, stream, started: Instant::now(), invoked: false });
        Ok(())
    }

    /// Runs one invocation to its end: response, error, timeout or crash. With `kill_after`, the process is
    /// killed that long into the invocation (fault injection), as if the sandbox had died.
    pub async fn invoke(&mut self, payload: Bytes, kill_after: Option<Duration>) -> Outcome {
        if self.process.is_none()
            && let Err(e) = self.spawn()
        {
            return Outcome::SpawnFailed(format!("{}: {e}", self.config.binary.display()));
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let deadline = chrono::Utc::now() + self.config.timeout;
        let Some(process) = self.process.as_mut() else {
            return Outcome::SpawnFailed("no process".into());
        };
        let stream = process.stream.clone();
        let group = self.config.log_group();
        self.logs.line(&group, &stream, format!("START RequestId: {request_id} Version: $LATEST"));
        self.api.submit(Invocation {
            request_id: request_id.clone(),
            payload,
            deadline_epoch_ms: deadline.timestamp_millis(),
            function_arn: self.config.arn.clone(),
            trace_id: trace_id(),
        });

        let timeout = tokio::time::sleep(self.config.timeout);
        tokio::pin!(timeout);
        let kill = tokio::time::sleep(kill_after.unwrap_or(self.config.timeout * 2));
        tokio::pin!(kill);
        let mut killed = false;
        let outcome = loop {
            tokio::select! {
                report = self.api.next_report() => match report {
                    Some(RuntimeReport::Response { request_id: id, body }) if id == request_id => break Outcome::Success(body),
                    Some(RuntimeReport::Error { request_id: id, error_type, body }) if id == request_id => {
                        break Outcome::FunctionError { error_type, body }
                    }
                    Some(RuntimeReport::InitError { error_type, body }) => break Outcome::InitError { error_type, body },
                    Some(stale) => tracing::warn!(?stale, "ignoring a report for another invocation"),
                    None => break Outcome::Crashed("runtime API closed".into()),
                },
                status = process.child.wait() => break Outcome::Crashed(describe_exit(status)),
                () = &mut timeout => break Outcome::TimedOut,
                () = &mut kill, if kill_after.is_some() && !killed => {
                    tracing::warn!(function = %self.config.name, pid = process.pid, "fault injection: killing the function process");
                    killed = true;
                    // The wait arm reports the exit (signal 9) as a crash.
                    let _ = process.child.start_kill();
                }
            }
        };
        self.api.withdraw();

        let duration = started.elapsed();
        let init_duration = (!process.invoked)
            .then(|| self.api.first_poll().map(|polled| polled.saturating_duration_since(process.started)))
            .flatten();
        process.invoked = true;
        let max_memory_mb = process.pid.and_then(peak_memory_mb);
        match &outcome {
            Outcome::TimedOut => self.logs.line(
                &group,
                &stream,
                format!(
                    "{} {request_id} Task timed out after {:.2} seconds",
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    self.config.timeout.as_secs_f64()
                ),
            ),
            Outcome::Crashed(reason) => self.logs.line(
                &group,
                &stream,
                format!("RequestId: {request_id} Error: Runtime exited with error: {reason}\nRuntime.ExitError"),
            ),
            _ => {}
        }
        self.logs.line(&group, &stream, format!("END RequestId: {request_id}"));
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            duration.as_secs_f64() * 1000.0,
            duration.as_millis() + 1,
            self.config.memory_mb,
            max_memory_mb.unwrap_or(0),
        );
        if let Some(init) = init_duration {
            report.push_str(&format!("\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0));
        }
        if matches!(outcome, Outcome::TimedOut) {
            report.push_str("\tStatus: timeout");
        }
        self.logs.line(&group, &stream, report);

        // Lambda discards the environment after a timeout, crash or failed init; the next invoke starts fresh.
        if matches!(outcome, Outcome::TimedOut | Outcome::Crashed(_) | Outcome::InitError { .. }) {
            self.stop().await;
        }
        outcome
    }

    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill().await;
            tracing::info!(function = %self.config.name, pid = process.pid, "function process stopped");
        }
    }
}

fn forward_lines(reader: impl AsyncRead + Unpin + Send + 'static, logs: LogSink, group: String, stream: String) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            logs.line(&group, &stream, line);
        }
    });
}

fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal: {signal}"),
            _ => status.to_string(),
        },
        Err(e) => format!("wait failed: {e}"),
    }
}

/// Peak resident memory of the process (VmHWM), what Lambda reports as Max Memory Used.
fn peak_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

/// An X-Ray style trace header (`Root=1-<epoch hex>-<96-bit id>`), as Lambda passes one to every invocation.
fn trace_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{:08x}-{};Parent={};Sampled=0", chrono::Utc::now().timestamp(), &id[..24], &id[16..])
}
