//! One execution environment: a function process speaking the Runtime API, started on demand, killed and
//! restarted after a timeout or crash, as Lambda does. Its lifecycle follows Lambda's phases: an init phase
//! (process start to the runtime's first poll, at most 10 s, not counted in the function timeout), then one
//! invoke phase per event. <https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html>

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::process::{Child, Command};

use crate::cloudwatch_logs::{self, LogSink};
use crate::logging::{Logging, Measures, PlatformEvent, Status};
use crate::output::{Destination, Output};
use crate::runtime_api::{InitEnd, Invocation, RuntimeApi, RuntimeReport};

/// "The Init phase is limited to 10 seconds." Past it, Lambda goes on initialising within the invoke phase,
/// where the rest of init counts against the function timeout; so does the host.
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// A function as configured in the template, resolved against the stack.
#[derive(Debug)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub binary: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub logging: Arc<Logging>,
    /// Lambda's own variables plus the function's `Environment`, all but the per-process ones.
    pub environment: BTreeMap<String, String>,
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
    /// The process exited while the invocation was running (Lambda's wording of the exit).
    Crashed(String),
    /// The process could not be started at all (`Runtime.InvalidEntrypoint`).
    SpawnFailed(String),
}

impl Outcome {
    /// How the platform reports it (a handled function error is a successful invocation to the platform).
    fn status(&self) -> Status {
        match self {
            Self::Success(_) | Self::FunctionError { .. } => Status::Success,
            Self::TimedOut => Status::Timeout,
            Self::Crashed(_) => Status::Error("Runtime.ExitError"),
            Self::InitError { .. } => Status::Error("Runtime.Unknown"),
            Self::SpawnFailed(_) => Status::Error("Runtime.InvalidEntrypoint"),
        }
    }
}

/// Where an invocation ended.
enum Phase {
    /// Before the runtime's first poll: the invocation never started.
    Init,
    /// In the invoke phase; `init` is the init duration of a cold start.
    Invoke { duration: Duration, init: Option<Duration> },
}

struct Process {
    child: Child,
    pid: Option<u32>,
    stream: String,
    started: Instant,
    output: Output,
    /// The init phase is over (the runtime has polled, or init ran past its limit).
    initialised: bool,
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

    fn spawn(&mut self, stream: &str) -> std::io::Result<()> {
        self.api.reset();
        let destination =
            Destination { logs: self.logs.clone(), logging: self.config.logging.clone(), stream: stream.to_owned() };
        let (output, stdout, stderr) = Output::open(&destination)?;
        let mut command = Command::new(&self.config.binary);
        command
            .env_clear()
            .envs(&self.config.environment)
            .env("AWS_LAMBDA_RUNTIME_API", self.api.address.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
            .current_dir(self.config.binary.parent().unwrap_or(std::path::Path::new(".")))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let child = command.spawn()?;
        let pid = child.id();
        tracing::info!(function = %self.config.name, pid, stream = %stream, "function process started");
        self.process = Some(Process {
            child,
            pid,
            stream: stream.to_owned(),
            started: Instant::now(),
            output,
            initialised: false,
        });
        Ok(())
    }

    fn platform(&self, stream: &str, event: &PlatformEvent<'_>) {
        if let Some(line) = self.config.logging.platform_line(event) {
            self.logs.line(&self.config.logging.group, stream, line);
        }
    }

    fn error_line(&self, stream: &str, line: String) {
        if self.config.logging.format == crate::logging::LogFormat::Text {
            self.logs.line(&self.config.logging.group, stream, line);
        }
    }

    /// Runs one invocation to its end: response, error, timeout or crash. With `kill_after`, the process is
    /// killed that long into the invocation (fault injection), as if the sandbox had died.
    pub async fn invoke(&mut self, payload: Bytes, kill_after: Option<Duration>) -> Outcome {
        let request_id = uuid::Uuid::new_v4().to_string();
        if self.process.is_none() {
            let stream = cloudwatch_logs::new_stream_name();
            if let Err(e) = self.spawn(&stream) {
                return self.entrypoint_failed(&stream, &request_id, &e);
            }
        }
        let init = match self.init_phase().await {
            Ok(init) => init,
            Err(outcome) => return self.finish(&request_id, outcome, Phase::Init).await,
        };

        let Some(process) = self.process.as_ref() else {
            return Outcome::SpawnFailed("no process".into());
        };
        self.platform(&process.stream.clone(), &PlatformEvent::Start { request_id: &request_id });
        let started = Instant::now();
        self.api.submit(Invocation {
            request_id: request_id.clone(),
            payload,
            deadline_epoch_ms: (chrono::Utc::now() + self.config.timeout).timestamp_millis(),
            function_arn: self.config.arn.clone(),
            trace_id: trace_id(),
        });
        let outcome = self.run(&request_id, kill_after).await;
        self.api.withdraw();
        self.finish(&request_id, outcome, Phase::Invoke { duration: started.elapsed(), init }).await
    }

    /// The init phase of a new process: `Ok(Some(duration))` when it ended in time, `Ok(None)` when the process
    /// was already initialised or init ran past its limit, `Err` when init failed.
    async fn init_phase(&mut self) -> Result<Option<Duration>, Outcome> {
        let Some(process) = self.process.as_mut().filter(|p| !p.initialised) else { return Ok(None) };
        process.initialised = true;
        let limit = tokio::time::sleep(INIT_LIMIT);
        tokio::pin!(limit);
        let ended = tokio::select! {
            end = self.api.init_end() => end,
            status = process.child.wait() => return Err(Outcome::Crashed(describe_exit(status))),
            () = &mut limit => {
                let stream = process.stream.clone();
                self.platform(&stream, &PlatformEvent::InitReport { duration: INIT_LIMIT, status: Status::Timeout });
                return Ok(None);
            }
        };
        match ended {
            Some(InitEnd::Ready(at)) => Ok(Some(at.saturating_duration_since(process.started))),
            Some(InitEnd::Failed(RuntimeReport::InitError { error_type, body })) => {
                Err(Outcome::InitError { error_type, body })
            }
            Some(InitEnd::Failed(_)) | None => Err(Outcome::Crashed("runtime API closed".into())),
        }
    }

    /// The invoke phase: waits for the runtime's answer, the process's end or the timeout.
    async fn run(&mut self, request_id: &str, kill_after: Option<Duration>) -> Outcome {
        let Some(process) = self.process.as_mut() else { return Outcome::SpawnFailed("no process".into()) };
        let timeout = tokio::time::sleep(self.config.timeout);
        tokio::pin!(timeout);
        let kill = tokio::time::sleep(kill_after.unwrap_or(self.config.timeout * 2));
        tokio::pin!(kill);
        let mut killed = false;
        loop {
            tokio::select! {
                report = self.api.next_report() => match report {
                    Some(RuntimeReport::Response { request_id: id, body }) if id == request_id => return Outcome::Success(body),
                    Some(RuntimeReport::Error { request_id: id, error_type, body }) if id == request_id => {
                        return Outcome::FunctionError { error_type, body }
                    }
                    Some(RuntimeReport::InitError { error_type, body }) => return Outcome::InitError { error_type, body },
                    Some(stale) => tracing::warn!(?stale, "ignoring a report for another invocation"),
                    None => return Outcome::Crashed("runtime API closed".into()),
                },
                status = process.child.wait() => return Outcome::Crashed(describe_exit(status)),
                () = &mut timeout => return Outcome::TimedOut,
                () = &mut kill, if kill_after.is_some() && !killed => {
                    tracing::warn!(function = %self.config.name, pid = process.pid, "fault injection: killing the function process");
                    killed = true;
                    // The wait arm reports the exit (signal 9) as a crash.
                    let _ = process.child.start_kill();
                }
            }
        }
    }

    /// Ships the function's output, then writes Lambda's lines for the outcome: for a failed init its
    /// INIT_REPORT and the START of the invocation it could not run, then the error, END and REPORT.
    async fn finish(&mut self, request_id: &str, outcome: Outcome, phase: Phase) -> Outcome {
        let Some(process) = self.process.as_mut() else { return outcome };
        process.output.drain().await;
        let stream = process.stream.clone();
        let age = process.started.elapsed();
        let max_memory_mb = process.pid.and_then(peak_memory_mb).unwrap_or(0);
        let status = outcome.status();
        let (duration, init) = match phase {
            Phase::Init => {
                self.platform(&stream, &PlatformEvent::InitReport { duration: age, status });
                self.platform(&stream, &PlatformEvent::Start { request_id });
                (Duration::ZERO, None)
            }
            Phase::Invoke { duration, init } => (duration, init),
        };
        match &outcome {
            Outcome::TimedOut => self.error_line(
                &stream,
                format!(
                    "{} {request_id} Task timed out after {:.2} seconds",
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    self.config.timeout.as_secs_f64()
                ),
            ),
            Outcome::Crashed(reason) => self.error_line(
                &stream,
                format!("RequestId: {request_id} Error: Runtime exited with error: {reason}\nRuntime.ExitError"),
            ),
            Outcome::InitError { error_type, body } => self.error_line(
                &stream,
                format!(
                    "RequestId: {request_id} Error: {}\n{}",
                    String::from_utf8_lossy(body),
                    error_type.as_deref().unwrap_or("Runtime.Unknown")
                ),
            ),
            _ => {}
        }
        self.platform(&stream, &PlatformEvent::RuntimeDone { request_id, duration, status });
        let measures = Measures { duration, init, memory_mb: self.config.memory_mb, max_memory_mb };
        self.platform(&stream, &PlatformEvent::Report { request_id, measures, status });

        // Lambda discards the environment after a timeout, crash or failed init; the next invoke starts fresh.
        if matches!(outcome, Outcome::TimedOut | Outcome::Crashed(_) | Outcome::InitError { .. }) {
            self.stop().await;
        }
        outcome
    }

    /// The bootstrap could not be executed: Lambda's `Runtime.InvalidEntrypoint`, logged in a stream of its own.
    fn entrypoint_failed(&self, stream: &str, request_id: &str, error: &std::io::Error) -> Outcome {
        let status = Status::Error("Runtime.InvalidEntrypoint");
        let reason = format!("fork/exec {}: {}", self.config.binary.display(), exec_error(error));
        self.platform(stream, &PlatformEvent::InitReport { duration: Duration::ZERO, status });
        self.platform(stream, &PlatformEvent::Start { request_id });
        self.error_line(stream, format!("RequestId: {request_id} Error: {reason}\nRuntime.InvalidEntrypoint"));
        self.platform(stream, &PlatformEvent::RuntimeDone { request_id, duration: Duration::ZERO, status });
        let measures =
            Measures { duration: Duration::ZERO, init: None, memory_mb: self.config.memory_mb, max_memory_mb: 0 };
        self.platform(stream, &PlatformEvent::Report { request_id, measures, status });
        tracing::error!(function = %self.config.name, %reason, "Runtime.InvalidEntrypoint");
        Outcome::SpawnFailed(reason)
    }

    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill().await;
            tracing::info!(function = %self.config.name, pid = process.pid, "function process stopped");
        }
    }
}

/// The error text of a failed exec, as Go (Lambda's runtime interface) words it.
fn exec_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => error.to_string(),
    }
}

/// An exit as Lambda's runtime interface (Go's `os.ProcessState`) describes it: `exit status 2`,
/// `signal: aborted`, `signal: segmentation fault (core dumped)`.
fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let status = match status {
        Ok(status) => status,
        Err(e) => return format!("wait failed: {e}"),
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => {
            let core = if status.core_dumped() { " (core dumped)" } else { "" };
            format!("signal: {}{core}", signal_name(signal))
        }
        _ => status.to_string(),
    }
}

/// Go's names of the Linux signals (`syscall.Signal.String`).
fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        5 => "trace/breakpoint trap",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        10 => "user defined signal 1",
        11 => "segmentation fault",
        12 => "user defined signal 2",
        13 => "broken pipe",
        14 => "alarm clock",
        15 => "terminated",
        other => return format!("signal {other}"),
    };
    name.to_owned()
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

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exits_are_worded_as_lambda_words_them() {
        // Raw wait statuses: exit code in the high byte, terminating signal in the low 7 bits, 0x80 = core.
        let wait = |raw: i32| describe_exit(Ok(ExitStatus::from_raw(raw)));
        assert_eq!(wait(2 << 8), "exit status 2");
        assert_eq!(wait(6), "signal: aborted");
        assert_eq!(wait(9), "signal: killed");
        assert_eq!(wait(11 | 0x80), "signal: segmentation fault (core dumped)");
        assert_eq!(wait(40), "signal: signal 40");
    }

    #[test]
    fn exec_failures_are_worded_as_go_words_them() {
        assert_eq!(exec_error(&std::io::Error::from(std::io::ErrorKind::PermissionDenied)), "permission denied");
        assert_eq!(exec_error(&std::io::Error::from(std::io::ErrorKind::NotFound)), "no such file or directory");
    }
}
