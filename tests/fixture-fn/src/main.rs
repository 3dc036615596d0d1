//! Test-only Lambda for the function-host conformance tests. Each record's body says what to do:
//! `{"id": "...", "action": "...", …}` with actions
//! - `ok`, `fail` (reported as a batch item failure), `fail-once`, `fail-until` (`untilEpochMs`);
//! - whole-invocation: `error` (the handler returns an error), `panic`, `crash` (abort), `sleep` (`sleepMs`),
//!   `respond` (the handler returns `response` as is: null, `{}`, `{"batchItemFailures": null}` …);
//! - `levels`: prints raw JSON lines at each log level (for log-level filtering);
//! - `burst`: logs `lines` lines just before answering, the last of them without its newline (output still
//!   in flight, or not even a whole line, when the response arrives);
//! - `extension`: tries to register an extension with the Extensions API and logs the answer.
//!
//! It logs every batch it receives as JSON (the tests read those lines back from CloudWatch Logs), and a
//! "batch done" line as the very last thing before answering. With `FIXTURE_INIT_SLEEP_MS` its init phase
//! takes that long.

use std::io::{Read, Write};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Instruction {
    id: String,
    action: String,
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    until_epoch_ms: i64,
    #[serde(default)]
    response: Value,
    #[serde(default)]
    lines: usize,
}

#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("record body is not an instruction: {0}")]
    BadBody(#[from] serde_json::Error),
    #[error("record {0} asked to fail")]
    AskedToFail(String),
}

#[derive(Debug, thiserror::Error)]
#[error("batch asked to error by record {0}")]
struct BatchAskedToError(String);

fn instruction(record: &SqsMessage) -> Result<Instruction, serde_json::Error> {
    serde_json::from_str(record.body.as_deref().unwrap_or_default())
}

async fn handle_record(record: SqsMessage) -> Result<(), RecordError> {
    let instruction = instruction(&record)?;
    let receive_count = record.attributes.get("ApproximateReceiveCount").cloned().unwrap_or_default();
    match instruction.action.as_str() {
        "fail" => return Err(RecordError::AskedToFail(instruction.id)),
        "fail-once" if receive_count == "1" => return Err(RecordError::AskedToFail(instruction.id)),
        "fail-until" if now_epoch_ms() < instruction.until_epoch_ms => {
            return Err(RecordError::AskedToFail(instruction.id));
        }
        _ => {}
    }
    tracing::info!(id = %instruction.id, receiveCount = %receive_count, "record processed");
    Ok(())
}

fn now_epoch_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A register call as an extension makes it, over plain HTTP/1.1 (an extension speaks to the same address
/// as the runtime). Returns the status code and the body.
fn register_extension() -> std::io::Result<(String, String)> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(&api)?;
    let body = r#"{"events":["INVOKE","SHUTDOWN"]}"#;
    write!(
        stream,
        "POST /2020-01-01/extension/register HTTP/1.1\r\nHost: {api}\r\nLambda-Extension-Name: fixture-probe\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Raw JSON lines at every level, written past the tracing subscriber so that only the host can filter them.
/// Each line also carries the log variables Lambda set, as the function saw them.
fn print_levels(id: &str) {
    let variable = |name: &str| std::env::var(name).unwrap_or_default();
    for level in ["debug", "info", "warn", "error"] {
        let line = serde_json::json!({"level": level, "message": "level line", "id": id,
            "logFormat": variable("AWS_LAMBDA_LOG_FORMAT"), "logLevel": variable("AWS_LAMBDA_LOG_LEVEL"),
            "logGroup": variable("AWS_LAMBDA_LOG_GROUP_NAME")});
        println!("{line}");
    }
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let request_id = event.context.request_id.clone();
    // Logged as received, so the tests see the event's exact shape.
    tracing::info!(requestId = %request_id, event = %event.payload, "batch received");
    let payload: SqsEvent = serde_json::from_value(event.payload)?;
    let mut response = None;
    let mut burst = 0;
    // Whole-invocation behaviours act before any record is handled, as a real failure would.
    for record in &payload.records {
        let Ok(instruction) = instruction(record) else { continue };
        match instruction.action.as_str() {
            "error" => return Err(BatchAskedToError(instruction.id).into()),
            "panic" => panic!("record {} asked to panic", instruction.id),
            "crash" => {
                tracing::error!(id = %instruction.id, "crashing on purpose");
                std::process::abort();
            }
            "sleep" => tokio::time::sleep(std::time::Duration::from_millis(instruction.sleep_ms)).await,
            "respond" => response = Some(instruction.response),
            "levels" => print_levels(&instruction.id),
            "burst" => burst += instruction.lines,
            "extension" => {
                let (status, body) = register_extension()?;
                tracing::info!(id = %instruction.id, status = %status, body = %body, "extension register answered");
            }
            _ => {}
        }
    }
    let computed = nexus_lambda::sqs_batch::process_batch(payload, handle_record).await?;
    let response = match response {
        Some(response) => response,
        None => serde_json::to_value(computed)?,
    };
    for line in 0..burst {
        tracing::info!(requestId = %request_id, line, "burst line");
    }
    tracing::info!(requestId = %request_id, "batch done");
    if burst > 0 {
        let mut stdout = std::io::stdout();
        let line = serde_json::json!({"timestamp": now_epoch_ms().to_string(), "level": "INFO",
            "function": "fixture-fn", "message": "unterminated last line", "requestId": request_id});
        write!(stdout, "{line}")?;
        stdout.flush()?;
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    nexus_lambda::observability::init("fixture-fn");
    let variable = |name: &str| std::env::var(name).unwrap_or_default();
    if let Ok(ms) = variable("FIXTURE_INIT_SLEEP_MS").parse::<u64>() {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    tracing::info!(
        greeting = %variable("FIXTURE_GREETING"),
        queueArn = %variable("FIXTURE_QUEUE_ARN"),
        tableName = %variable("FIXTURE_TABLE"),
        logFormat = %variable("AWS_LAMBDA_LOG_FORMAT"),
        logLevel = %variable("AWS_LAMBDA_LOG_LEVEL"),
        logGroup = %variable("AWS_LAMBDA_LOG_GROUP_NAME"),
        "fixture initialised"
    );
    lambda_runtime::run(service_fn(handler)).await
}
