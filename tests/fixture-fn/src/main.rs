//! Test-only Lambda for the function-host integration tests. Each record's body says what to do:
//! `{"id": "...", "action": "ok" | "fail" | "fail-once" | "fail-until" | "error" | "crash" | "sleep", "sleepMs": 5000,
//! "untilEpochMs": …}`.
//! It logs every batch it receives as JSON (the tests read those lines back from CloudWatch Logs) and
//! reports `fail` records through `ReportBatchItemFailures`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Instruction {
    id: String,
    action: String,
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    until_epoch_ms: i64,
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

async fn handler(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let raw = serde_json::to_value(&event.payload)?;
    tracing::info!(requestId = %event.context.request_id, event = %raw, "batch received");
    // Whole-invocation behaviours act before any record is handled, as a real failure would.
    for record in &event.payload.records {
        let Ok(instruction) = instruction(record) else { continue };
        match instruction.action.as_str() {
            "error" => return Err(BatchAskedToError(instruction.id).into()),
            "crash" => {
                tracing::error!(id = %instruction.id, "crashing on purpose");
                std::process::abort();
            }
            "sleep" => tokio::time::sleep(std::time::Duration::from_millis(instruction.sleep_ms)).await,
            _ => {}
        }
    }
    Ok(nexus_lambda::sqs_batch::process_batch(event.payload, handle_record).await?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    nexus_lambda::observability::init("fixture-fn");
    tracing::info!(
        greeting = %std::env::var("FIXTURE_GREETING").unwrap_or_default(),
        queueArn = %std::env::var("FIXTURE_QUEUE_ARN").unwrap_or_default(),
        tableName = %std::env::var("FIXTURE_TABLE").unwrap_or_default(),
        "fixture initialised"
    );
    lambda_runtime::run(service_fn(handler)).await
}
