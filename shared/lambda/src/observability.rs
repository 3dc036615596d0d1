//! JSON logging with the contract's fields (docs/architecture.md §3): every line is one JSON object with
//! `timestamp`, `level`, `message`, `function`, plus the fields of every enclosing span flattened onto the
//! line (so `orderId`, `executionArn`, `correlationId` recorded on a span appear on each line inside it).
//!
//! Why a hand-written event formatter: tracing-subscriber's JSON formatter nests span fields under
//! `span`/`spans` and has no way to flatten them onto the top level, which the contract requires.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global JSON logger for `function`. Level: `RUST_LOG`, else the function's
/// `LoggingConfig.ApplicationLogLevel` (Lambda passes it as `AWS_LAMBDA_LOG_LEVEL`), else `info`.
/// Lambda ships stdout to CloudWatch Logs, so logs go to stdout.
pub fn init(function: &str) {
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(ContractJsonFormat::new(function))
        .with_writer(std::io::stdout);
    // A second init (tests) keeps the first subscriber; nothing to report.
    let _ = tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(lambda_log_level())))
        .with(layer)
        .try_init();
}

/// `AWS_LAMBDA_LOG_LEVEL` as a tracing level: Lambda's TRACE…FATAL, FATAL being tracing's ERROR.
fn lambda_log_level() -> String {
    match std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|level| level.to_ascii_lowercase()).as_deref() {
        Ok(level @ ("trace" | "debug" | "info" | "warn" | "error")) => level.to_owned(),
        Ok("fatal") => "error".to_owned(),
        _ => "info".to_owned(),
    }
}

/// Formats each event as one JSON line with the contract's fields.
#[derive(Debug, Clone)]
pub struct ContractJsonFormat {
    function: String,
}

impl ContractJsonFormat {
    pub fn new(function: &str) -> Self {
        Self { function: function.to_owned() }
    }
}

impl<S, N> FormatEvent<S, N> for ContractJsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(now_rfc3339()));
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("function".into(), Value::String(self.function.clone()));
        // Outer spans first, so the innermost value of a repeated field wins.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields.as_str())
                {
                    line.extend(map);
                }
            }
        }
        let mut visitor = JsonVisitor(&mut line);
        event.record(&mut visitor);
        // A metric (crate::metrics): its EMF document goes onto the line's top level, where CloudWatch
        // looks for `_aws`.
        if let Some(Value::String(emf)) = line.remove("emf")
            && let Ok(Value::Object(document)) = serde_json::from_str::<Value>(&emf)
        {
            line.extend(document);
        }
        line.entry("message").or_insert_with(|| Value::String(String::new()));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), Value::String(error_chain(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

/// `outer: inner: root cause`, so a logged error carries its whole context.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The one JSON line `log` writes through the contract's formatter for `function`.
    fn logged_line(function: &str, log: impl FnOnce()) -> Value {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(ContractJsonFormat::new(function))
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
        serde_json::from_str(text.trim()).expect("one JSON line")
    }

    #[test]
    fn lines_carry_contract_fields_and_flattened_span_fields() {
        let line = logged_line("order-intake", || {
            let span = tracing::info_span!("record", orderId = "o-1", correlationId = "c-1");
            let _guard = span.enter();
            tracing::warn!(attempt = 2, "payment slow");
        });
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "payment slow");
        assert_eq!(line["function"], "order-intake");
        assert_eq!(line["orderId"], "o-1");
        assert_eq!(line["correlationId"], "c-1");
        assert_eq!(line["attempt"], 2);
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn metric_lines_are_contract_lines_with_an_emf_block() {
        let line = logged_line("payment", || {
            let span = tracing::info_span!("command", orderId = "o-9");
            let _guard = span.enter();
            nexus_core::metrics::count("OrdersCompleted", &[]);
        });
        assert_eq!((line["function"].as_str(), line["orderId"].as_str()), (Some("payment"), Some("o-9")));
        assert_eq!(line["OrdersCompleted"], 1.0);
        assert!(line["_aws"]["CloudWatchMetrics"].is_array(), "{line}");
        assert!(line.get("emf").is_none());
    }
}
