//! Vyapaar Nexus AWS adapters: the core's ports over DynamoDB ([`dynamo`], one module per aggregate), SNS
//! ([`sns`]: order events), Step Functions ([`sfn`]: saga start, task callbacks) and SQS ([`sqs`]: the
//! intake DLQ), Secrets Manager ([`secrets`]: the email hash key). [`ext`] is the one place that speaks the
//! SDK's error and item types.

pub mod dynamo;
pub(crate) mod ext;

/// For operator code over the SDK (`nexus-ops`): an SDK error as a transient [`nexus_core::ports::PortError`].
pub use ext::unavailable;
pub mod secrets;
pub mod sfn;
pub mod sns;
pub mod sqs;
