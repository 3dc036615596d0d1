//! A function's `LoggingConfig` as Lambda applies it: the log group, the format of the lines Lambda writes
//! itself (START/END/REPORT in text, `platform.*` records in JSON), and log-level filtering.
//! <https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html>

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

/// `LoggingConfig.LogFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Lambda's log levels, least to most severe. System logs use DEBUG, INFO and WARN only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const APPLICATION: &[Self] = &[Self::Trace, Self::Debug, Self::Info, Self::Warn, Self::Error, Self::Fatal];
    pub const SYSTEM: &[Self] = &[Self::Debug, Self::Info, Self::Warn];

    /// Case-insensitive, as Lambda reads the `level` field of a JSON log line.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "TRACE" => Self::Trace,
            "DEBUG" => Self::Debug,
            "INFO" => Self::Info,
            "WARN" | "WARNING" => Self::Warn,
            "ERROR" => Self::Error,
            "FATAL" | "CRITICAL" => Self::Fatal,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("LoggingConfig.LogFormat must be Text or JSON, not {0:?}")]
    Format(String),
    #[error("LoggingConfig.{field} must be one of {allowed:?}, not {value:?}")]
    Level { field: &'static str, allowed: &'static [Level], value: String },
    #[error("LoggingConfig.{0} needs LogFormat JSON (Lambda refuses log levels with the text format)")]
    LevelNeedsJson(&'static str),
}

/// Where a function's logs go and how they are written.
#[derive(Debug, Clone)]
pub struct Logging {
    pub group: String,
    pub format: LogFormat,
    /// Only with the JSON format: application lines below this level are dropped.
    pub application_level: Level,
    /// Only with the JSON format: `platform.*` records below this level are dropped.
    pub system_level: Level,
}

impl Logging {
    /// From the template's (resolved) `LoggingConfig` values; `default_group` is `/aws/lambda/<name>`.
    pub fn new(
        default_group: String,
        group: Option<String>,
        format: Option<&str>,
        application_level: Option<&str>,
        system_level: Option<&str>,
    ) -> Result<Self, LoggingError> {
        let format = match format {
            None | Some("Text") => LogFormat::Text,
            Some("JSON") => LogFormat::Json,
            Some(other) => return Err(LoggingError::Format(other.to_owned())),
        };
        let level =
            |field: &'static str, value: Option<&str>, allowed: &'static [Level]| -> Result<Level, LoggingError> {
                let Some(value) = value else { return Ok(Level::Info) };
                if format == LogFormat::Text {
                    return Err(LoggingError::LevelNeedsJson(field));
                }
                Level::parse(value).filter(|level| allowed.contains(level)).ok_or_else(|| LoggingError::Level {
                    field,
                    allowed,
                    value: value.to_owned(),
                })
            };
        Ok(Self {
            group: group.unwrap_or(default_group),
            format,
            application_level: level("ApplicationLogLevel", application_level, Level::APPLICATION)?,
            system_level: level("SystemLogLevel", system_level, Level::SYSTEM)?,
        })
    }

    /// The variables Lambda sets for a JSON-format function, which runtimes read to format and filter their
    /// own output (the Rust runtime's `tracing` setup among them).
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut variables = vec![("AWS_LAMBDA_LOG_GROUP_NAME", self.group.clone())];
        if self.format == LogFormat::Json {
            variables.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
            variables.push(("AWS_LAMBDA_LOG_LEVEL", self.application_level.as_str().into()));
        }
        variables
    }

    /// Whether a line the function wrote reaches CloudWatch Logs. "For Lambda to filter your application logs
    /// … output log events … as JSON formatted objects that contain a key value pair with the key level. If the
    /// level value field is invalid or missing, Lambda will assign the log output the level INFO."
    pub fn keeps_application_line(&self, line: &str) -> bool {
        if self.format == LogFormat::Text {
            return true;
        }
        let level = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|value| value.get("level")?.as_str().and_then(Level::parse))
            .unwrap_or(Level::Info);
        level >= self.application_level
    }

    /// The line Lambda writes for a platform event, or none when the system log level filters it out.
    pub fn platform_line(&self, event: &PlatformEvent<'_>) -> Option<String> {
        match self.format {
            LogFormat::Text => event.text(),
            LogFormat::Json => (event.level() >= self.system_level).then(|| event.json().to_string()),
        }
    }
}

/// How an invocation (or an init) ended, as the platform reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    /// The runtime failed (an exit, a missing entrypoint, an init error); with Lambda's error type.
    Error(&'static str),
    Timeout,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error(_) => "error",
            Self::Timeout => "timeout",
        }
    }
}

/// What an invocation measured, for REPORT.
#[derive(Debug, Clone, Copy)]
pub struct Measures {
    pub duration: Duration,
    pub init: Option<Duration>,
    pub memory_mb: u64,
    pub max_memory_mb: u64,
}

impl Measures {
    /// Milliseconds, rounded up. A custom runtime's init phase is billed with its first invocation.
    fn billed_ms(&self) -> u128 {
        (self.duration + self.init.unwrap_or_default()).as_micros().div_ceil(1000)
    }
}

/// The events Lambda logs on its own account.
#[derive(Debug)]
pub enum PlatformEvent<'a> {
    /// Only written when init did not succeed (a successful init shows as REPORT's `Init Duration`).
    InitReport {
        duration: Duration,
        status: Status,
    },
    Start {
        request_id: &'a str,
    },
    /// END in the text format.
    RuntimeDone {
        request_id: &'a str,
        duration: Duration,
        status: Status,
    },
    Report {
        request_id: &'a str,
        measures: Measures,
        status: Status,
    },
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 100_000.0).round() / 100.0
}

impl PlatformEvent<'_> {
    /// Levels of the system log-level table: start and report at INFO, runtimeDone at DEBUG.
    fn level(&self) -> Level {
        match self {
            Self::RuntimeDone { .. } => Level::Debug,
            Self::InitReport { .. } | Self::Start { .. } | Self::Report { .. } => Level::Info,
        }
    }

    fn text(&self) -> Option<String> {
        let status_suffix = |status: Status| match status {
            Status::Success => String::new(),
            Status::Timeout => "\tStatus: timeout".into(),
            Status::Error(error_type) => format!("\tStatus: error\tError Type: {error_type}"),
        };
        Some(match self {
            Self::InitReport { duration, status } => format!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: init{}",
                millis(*duration),
                match status {
                    Status::Success => return None,
                    other => status_suffix(*other),
                }
            ),
            Self::Start { request_id } => format!("START RequestId: {request_id} Version: $LATEST"),
            Self::RuntimeDone { request_id, .. } => format!("END RequestId: {request_id}"),
            Self::Report { request_id, measures, status } => {
                let mut line = format!(
                    "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
                    millis(measures.duration),
                    measures.billed_ms(),
                    measures.memory_mb,
                    measures.max_memory_mb,
                );
                if let Some(init) = measures.init {
                    let _ = write!(line, "\tInit Duration: {:.2} ms", millis(init));
                }
                line.push_str(&status_suffix(*status));
                line
            }
        })
    }

    fn json(&self) -> Value {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let with_error = |mut record: Value, status: Status| {
            record["status"] = status.name().into();
            if let Status::Error(error_type) = status {
                record["errorType"] = error_type.into();
            }
            record
        };
        let (kind, record) = match self {
            Self::InitReport { duration, status } => (
                "platform.initReport",
                with_error(
                    json!({"initializationType": "on-demand", "phase": "init",
                        "metrics": {"durationMs": millis(*duration)}}),
                    *status,
                ),
            ),
            Self::Start { request_id } => ("platform.start", json!({"requestId": request_id, "version": "$LATEST"})),
            Self::RuntimeDone { request_id, duration, status } => (
                "platform.runtimeDone",
                with_error(json!({"requestId": request_id, "metrics": {"durationMs": millis(*duration)}}), *status),
            ),
            Self::Report { request_id, measures, status } => {
                let mut metrics = json!({
                    "durationMs": millis(measures.duration),
                    "billedDurationMs": measures.billed_ms(),
                    "memorySizeMB": measures.memory_mb,
                    "maxMemoryUsedMB": measures.max_memory_mb,
                });
                if let Some(init) = measures.init {
                    metrics["initDurationMs"] = millis(init).into();
                }
                ("platform.report", with_error(json!({"requestId": request_id, "metrics": metrics}), *status))
            }
        };
        json!({"time": time, "type": kind, "record": record})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_logging(application: &str, system: &str) -> Logging {
        Logging::new("/aws/lambda/f".into(), Some("/custom/f".into()), Some("JSON"), Some(application), Some(system))
            .expect("valid")
    }

    fn measures() -> Measures {
        Measures {
            duration: Duration::from_micros(1_234_560),
            init: Some(Duration::from_micros(2_500_004)),
            memory_mb: 128,
            max_memory_mb: 20,
        }
    }

    #[test]
    fn text_format_writes_lambdas_lines() {
        let logging = Logging::new("/aws/lambda/f".into(), None, None, None, None).expect("defaults");
        assert_eq!(logging.group, "/aws/lambda/f");
        assert_eq!(logging.environment(), [("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/f".to_owned())]);
        let line = |event| logging.platform_line(&event).expect("text lines are never filtered");
        assert_eq!(line(PlatformEvent::Start { request_id: "r" }), "START RequestId: r Version: $LATEST");
        let done = PlatformEvent::RuntimeDone { request_id: "r", duration: Duration::ZERO, status: Status::Success };
        assert_eq!(line(done), "END RequestId: r");
        assert_eq!(
            line(PlatformEvent::Report { request_id: "r", measures: measures(), status: Status::Success }),
            "REPORT RequestId: r\tDuration: 1234.56 ms\tBilled Duration: 3735 ms\tMemory Size: 128 MB\t\
             Max Memory Used: 20 MB\tInit Duration: 2500.00 ms"
        );
        let crashed = PlatformEvent::Report {
            request_id: "r",
            measures: Measures { init: None, ..measures() },
            status: Status::Error("Runtime.ExitError"),
        };
        assert!(line(crashed).ends_with("Billed Duration: 1235 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tStatus: error\tError Type: Runtime.ExitError"));
        let init_ok = PlatformEvent::InitReport { duration: Duration::from_millis(5), status: Status::Success };
        assert_eq!(logging.platform_line(&init_ok), None, "a successful init shows only in REPORT");
        let init_timeout = PlatformEvent::InitReport { duration: Duration::from_secs(10), status: Status::Timeout };
        assert_eq!(line(init_timeout), "INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout");
    }

    #[test]
    fn json_format_writes_platform_records_filtered_by_system_level() {
        let logging = json_logging("WARN", "INFO");
        assert_eq!(logging.group, "/custom/f");
        let start: Value = serde_json::from_str(
            &logging.platform_line(&PlatformEvent::Start { request_id: "r" }).expect("start is INFO"),
        )
        .expect("json");
        assert_eq!(
            (start["type"].as_str(), start["record"]["requestId"].as_str()),
            (Some("platform.start"), Some("r"))
        );
        let done = PlatformEvent::RuntimeDone { request_id: "r", duration: Duration::ZERO, status: Status::Success };
        assert_eq!(logging.platform_line(&done), None, "runtimeDone is DEBUG");
        let report: Value = serde_json::from_str(
            &logging
                .platform_line(&PlatformEvent::Report {
                    request_id: "r",
                    measures: measures(),
                    status: Status::Error("Runtime.ExitError"),
                })
                .expect("report is INFO"),
        )
        .expect("json");
        assert_eq!(report["type"], "platform.report");
        assert_eq!(report["record"]["status"], "error");
        assert_eq!(report["record"]["errorType"], "Runtime.ExitError");
        assert_eq!(report["record"]["metrics"]["billedDurationMs"], 3735);
        assert_eq!(report["record"]["metrics"]["initDurationMs"], 2500.0);
        let warn_only = json_logging("WARN", "WARN");
        assert_eq!(warn_only.platform_line(&PlatformEvent::Start { request_id: "r" }), None);
        let debug = json_logging("DEBUG", "DEBUG");
        assert!(debug.platform_line(&done).is_some_and(|l| l.contains("platform.runtimeDone")));
    }

    #[test]
    fn json_format_filters_application_lines_by_their_level() {
        let logging = json_logging("WARN", "INFO");
        assert_eq!(
            logging.environment(),
            [
                ("AWS_LAMBDA_LOG_GROUP_NAME", "/custom/f".to_owned()),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
                ("AWS_LAMBDA_LOG_LEVEL", "WARN".to_owned())
            ]
        );
        assert!(!logging.keeps_application_line(r#"{"level":"info","message":"m"}"#));
        assert!(!logging.keeps_application_line("plain text counts as INFO"));
        assert!(!logging.keeps_application_line(r#"{"level":"nonsense"}"#), "an invalid level is INFO");
        assert!(logging.keeps_application_line(r#"{"level":"WARN","message":"m"}"#));
        assert!(logging.keeps_application_line(r#"{"level":"error"}"#));
        let text = Logging::new("/g".into(), None, Some("Text"), None, None).expect("text");
        assert!(text.keeps_application_line(r#"{"level":"trace"}"#), "the text format filters nothing");
    }

    #[test]
    fn rejects_what_lambda_rejects() {
        assert!(matches!(
            Logging::new("/g".into(), None, None, Some("WARN"), None),
            Err(LoggingError::LevelNeedsJson("ApplicationLogLevel"))
        ));
        assert!(matches!(Logging::new("/g".into(), None, Some("XML"), None, None), Err(LoggingError::Format(_))));
        assert!(matches!(
            Logging::new("/g".into(), None, Some("JSON"), None, Some("ERROR")),
            Err(LoggingError::Level { field: "SystemLogLevel", .. })
        ));
    }
}
