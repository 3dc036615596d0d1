//! Adapters of the ports: DynamoDB (orders, event log, inventory, the effects ledger), SNS (events), Step
//! Functions (saga start, task callbacks), SQS (intake DLQ), and in-memory twins for tests.

pub mod dynamodb;
pub mod memory;
pub mod sfn;
pub mod sns;
pub mod sqs;

use crate::ports::PortError;

/// A transient failure of an AWS call, with the SDK's full error context.
pub(crate) fn unavailable<E>(operation: &'static str, error: E) -> PortError
where
    E: std::error::Error + 'static,
{
    PortError::Unavailable {
        operation,
        message: aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
    }
}
