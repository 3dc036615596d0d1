//! What every adapter needs from the SDK, written once: item mapping (serde_dynamo), request-builder
//! errors, and error classification from the SDK's typed errors and error codes (never from Display
//! text), plus the one retry loop for a conditional write that lost a race.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_smithy_types::error::operation::BuildError;
use nexus_core::ports::{PortError, PortResult};
use serde::{Deserialize, Serialize};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// A transient failure of an AWS call, with the SDK's full error context.
pub fn unavailable<E>(operation: &'static str, error: E) -> PortError
where
    E: std::error::Error + 'static,
{
    PortError::Unavailable {
        operation,
        message: aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
    }
}

/// A request the SDK refused to build (a required field missing): a bug here, not a transient failure.
pub(crate) fn built<T>(operation: &'static str, result: Result<T, BuildError>) -> PortResult<T> {
    result.map_err(|e| PortError::Corrupt { operation, message: e.to_string() })
}

pub(crate) fn to_item<T: Serialize>(operation: &'static str, value: &T) -> PortResult<Item> {
    serde_dynamo::to_item(value).map_err(|e| PortError::Corrupt { operation, message: e.to_string() })
}

pub(crate) fn from_item<T: for<'de> Deserialize<'de>>(operation: &'static str, item: Item) -> PortResult<T> {
    serde_dynamo::from_item(item).map_err(|e| PortError::Corrupt { operation, message: e.to_string() })
}

/// A value as the attribute it is stored as (its serde name: an effect state is spelled once, in the core).
pub(crate) fn to_attribute<T: Serialize>(value: T) -> PortResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| PortError::Corrupt { operation: "encode attribute", message: e.to_string() })
}

pub(crate) fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A conditional put inside a transaction.
pub(crate) fn put(table: &str, item: Item, condition: &str, values: Option<Item>) -> PortResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(values);
    Ok(TransactWriteItem::builder().put(built("build put", put.build())?).build())
}

/// An update inside a transaction.
pub(crate) fn update(update: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> PortResult<TransactWriteItem> {
    let update: Update = built("build update", update.build())?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Why DynamoDB cancelled a transaction, item by item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cancelled {
    /// Per item of the request, in order: whether its condition failed.
    pub conditions: Vec<bool>,
    /// Another transaction or write touched the same item at the same time.
    pub conflict: bool,
}

impl Cancelled {
    pub fn condition_failed(&self, index: usize) -> bool {
        self.conditions.get(index).copied().unwrap_or(false)
    }

    pub fn any_condition_failed(&self) -> bool {
        self.conditions.contains(&true)
    }
}

/// The cancellation reasons of a failed `TransactWriteItems` (None: it failed for another reason).
pub(crate) fn cancelled(error: &TransactWriteItemsError) -> Option<Cancelled> {
    match error {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
            let codes: Vec<Option<&str>> = cancelled.cancellation_reasons().iter().map(|r| r.code()).collect();
            Some(Cancelled {
                conditions: codes.iter().map(|code| *code == Some("ConditionalCheckFailed")).collect(),
                conflict: codes.contains(&Some("TransactionConflict")),
            })
        }
        other if other.code() == Some("TransactionConflictException") => {
            Some(Cancelled { conditions: Vec::new(), conflict: true })
        }
        _ => None,
    }
}

/// How many times a conditional write that lost a race is re-read and tried again before the caller gets
/// a conflict (the message is then retried as a whole).
pub(crate) const CONDITION_ATTEMPTS: usize = 8;

/// Runs `attempt` until it gives a value: `Ok(None)` means its conditional write lost a race and it should
/// re-read and try again. After [`CONDITION_ATTEMPTS`], a `Conflict` for `operation`.
pub(crate) async fn retry_on_condition<T, F, Fut>(operation: &'static str, mut attempt: F) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PortResult<Option<T>>>,
{
    for _ in 0..CONDITION_ATTEMPTS {
        if let Some(value) = attempt().await? {
            return Ok(value);
        }
    }
    Err(PortError::Conflict { operation })
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;

    use super::*;

    pub(crate) fn cancelled_with(codes: &[&str]) -> TransactWriteItemsError {
        let reasons = codes.iter().map(|code| CancellationReason::builder().code(*code).build()).collect();
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .message("cancelled")
                .build(),
        )
    }

    #[test]
    fn cancellation_reasons_are_read_item_by_item() {
        let reasons = cancelled(&cancelled_with(&["None", "ConditionalCheckFailed"])).expect("cancelled");
        assert_eq!((reasons.condition_failed(0), reasons.condition_failed(1), reasons.conflict), (false, true, false));
        let raced = cancelled(&cancelled_with(&["TransactionConflict", "None"])).expect("cancelled");
        assert!(raced.conflict && !raced.any_condition_failed());
    }

    #[tokio::test]
    async fn a_write_that_keeps_losing_its_race_is_a_conflict() {
        let mut tries = 0;
        let result: PortResult<()> = retry_on_condition("test", || {
            tries += 1;
            async { Ok(None) }
        })
        .await;
        assert!(matches!(result, Err(PortError::Conflict { operation: "test" })));
        assert_eq!(tries, CONDITION_ATTEMPTS);
    }
}
