//! `nexus logs`: the functions' CloudWatch Logs, merged in time order and filtered on the client (LocalStack
//! ignores filter patterns, and the JSON fields are what an operator filters by anyway).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::exit::Failure;
use crate::render::{self, Format};
use crate::stack::Nexus;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Only this function (order-intake, inventory, payment, shipping, notification).
    #[arg(long)]
    pub function: Option<String>,
    /// Only lines about this order (its `orderId` field).
    #[arg(long = "order")]
    pub order_id: Option<String>,
    /// Only lines at this level or more severe.
    #[arg(long, value_enum)]
    pub level: Option<Level>,
    /// From this far back (15m, 2h) or this RFC 3339 time.
    #[arg(long, value_parser = render::parse_since, default_value = "1h")]
    pub since: DateTime<Utc>,
    /// Keep reading new lines as they arrive (Ctrl-C stops).
    #[arg(long)]
    pub follow: bool,
    /// Print each line as the function wrote it.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn of(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "TRACE" => Some(Self::Trace),
            "DEBUG" => Some(Self::Debug),
            "INFO" => Some(Self::Info),
            "WARN" | "WARNING" => Some(Self::Warn),
            "ERROR" => Some(Self::Error),
            _ => None,
        }
    }
}

/// One log event of one function.
#[derive(Debug, Clone)]
pub struct Line {
    pub function: String,
    pub timestamp_ms: i64,
    pub message: String,
    pub json: Option<Value>,
}

impl LogsArgs {
    fn keeps(&self, line: &Line) -> bool {
        // Lines without JSON (Lambda's START/END/REPORT, a crash's message) carry no order id or level:
        // they are kept only when not filtering by either.
        let field = |name: &str| line.json.as_ref().and_then(|j| j.get(name)).and_then(Value::as_str);
        if let Some(order_id) = &self.order_id
            && field("orderId") != Some(order_id.as_str())
        {
            return false;
        }
        if let Some(level) = self.level
            && field("level").and_then(Level::of).is_none_or(|l| l < level)
        {
            return false;
        }
        true
    }
}

pub async fn run(nexus: &Nexus, format: Format, args: LogsArgs) -> anyhow::Result<()> {
    let mut groups = nexus.function_log_groups();
    if let Some(function) = &args.function {
        let known: Vec<String> = groups.keys().cloned().collect();
        groups.retain(|name, _| name == function);
        if groups.is_empty() {
            return Err(
                Failure::NotFound(format!("no function {function}; the functions are {}", known.join(", "))).into()
            );
        }
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&nexus.config);
    let mut since_ms = args.since.timestamp_millis();
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let lines = read(&logs, &groups, since_ms, &mut seen).await?;
        for line in lines.iter().filter(|l| args.keeps(l)) {
            print(line, format, args.raw)?;
        }
        if !args.follow {
            return Ok(());
        }
        // Re-read the last second too (late arrivals share timestamps); `seen` drops repeats.
        since_ms = lines.iter().map(|l| l.timestamp_ms).max().unwrap_or(since_ms).max(since_ms) - 1_000;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Every event since `since_ms` of every group, oldest first, skipping those already `seen`.
pub async fn read(
    logs: &aws_sdk_cloudwatchlogs::Client,
    groups: &BTreeMap<String, String>,
    since_ms: i64,
    seen: &mut HashSet<String>,
) -> anyhow::Result<Vec<Line>> {
    let mut lines = Vec::new();
    for (function, group) in groups {
        let mut pages = logs.filter_log_events().log_group_name(group).start_time(since_ms).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                // A function that has not run yet has no log group.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => break,
                Err(e) => {
                    return Err(crate::stack::aws_error(e)).with_context(|| format!("read log group {group}"));
                }
            };
            for event in page.events() {
                let id = event.event_id().map(str::to_owned).unwrap_or_else(|| {
                    format!(
                        "{}:{}:{}",
                        group,
                        event.timestamp().unwrap_or_default(),
                        event.message().unwrap_or_default()
                    )
                });
                if !seen.insert(id) {
                    continue;
                }
                let message = event.message().unwrap_or_default().trim_end().to_owned();
                let json = message.starts_with('{').then(|| serde_json::from_str(&message).ok()).flatten();
                lines.push(Line {
                    function: function.clone(),
                    timestamp_ms: event.timestamp().unwrap_or_default(),
                    message,
                    json,
                });
            }
        }
    }
    lines.sort_by_key(|l| l.timestamp_ms);
    Ok(lines)
}

fn print(line: &Line, format: Format, raw: bool) -> anyhow::Result<()> {
    if raw {
        println!("{}", line.message);
        return Ok(());
    }
    if format == Format::Json {
        let value = line.json.clone().unwrap_or_else(|| {
            serde_json::json!({"function": line.function, "timestamp_ms": line.timestamp_ms, "message": line.message})
        });
        return render::json_line(&value);
    }
    println!("{}", pretty(line));
    Ok(())
}

/// `time  function  LEVEL  message  key=value …` (the contract's fields first, then the rest).
pub fn pretty(line: &Line) -> String {
    let time = DateTime::<Utc>::from_timestamp_millis(line.timestamp_ms)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let Some(Value::Object(fields)) = &line.json else {
        return format!("{time}  {:<12}  {:<5}  {}", line.function, "", line.message.replace('\n', " | "));
    };
    let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default();
    let mut rest: Vec<String> = Vec::new();
    for key in ["orderId", "command"] {
        if let Some(value) = fields.get(key) {
            rest.push(format!("{key}={}", value.as_str().map_or_else(|| value.to_string(), str::to_owned)));
        }
    }
    // Shown already, or noise on a terminal (`--raw` and `-o json` keep everything).
    const HIDDEN: [&str; 12] = [
        "metric",
        "timestamp",
        "level",
        "function",
        "message",
        "orderId",
        "command",
        "executionArn",
        "correlationId",
        "requestId",
        "xrayTraceId",
        "_aws",
    ];
    for (key, value) in fields {
        if !HIDDEN.contains(&key.as_str()) {
            rest.push(format!("{key}={}", value.as_str().map_or_else(|| value.to_string(), str::to_owned)));
        }
    }
    format!("{time}  {:<12}  {:<5}  {}  {}", line.function, text("level"), text("message"), rest.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> Line {
        Line {
            function: "payment".into(),
            timestamp_ms: 1_764_230_400_000,
            message: json.into(),
            json: serde_json::from_str(json).ok(),
        }
    }

    fn args(order: Option<&str>, level: Option<Level>) -> LogsArgs {
        LogsArgs {
            function: None,
            order_id: order.map(str::to_owned),
            level,
            since: Utc::now(),
            follow: false,
            raw: false,
        }
    }

    #[test]
    fn filters_by_order_and_level() {
        let info = line(r#"{"level":"INFO","message":"step succeeded","orderId":"o-1"}"#);
        let warn = line(r#"{"level":"WARN","message":"retry","orderId":"o-2"}"#);
        let report = line("REPORT RequestId: 1\tDuration: 2.00 ms");
        assert!(args(Some("o-1"), None).keeps(&info));
        assert!(!args(Some("o-1"), None).keeps(&warn));
        assert!(!args(Some("o-1"), None).keeps(&report), "no order id: not about the order");
        assert!(args(None, Some(Level::Warn)).keeps(&warn));
        assert!(!args(None, Some(Level::Warn)).keeps(&info));
        assert!(args(None, None).keeps(&report));
    }

    #[test]
    fn pretty_lines_lead_with_the_contract_fields() {
        let text = pretty(&line(
            r#"{"timestamp":"t","level":"INFO","function":"payment","message":"charged","orderId":"o-1","amountCents":500}"#,
        ));
        assert!(text.ends_with("payment       INFO   charged  orderId=o-1 amountCents=500"), "{text}");
    }
}
