//! Vyapaar Nexus shared library: everything the Lambda functions have in common.
//!
//! - [`observability`]: JSON log lines with the fields of the public contract.
//! - [`sqs_batch`]: per-record handling of an SQS batch with `ReportBatchItemFailures`.

pub mod observability;
pub mod sqs_batch;
