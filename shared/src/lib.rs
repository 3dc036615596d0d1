//! Vyapaar Nexus shared library: everything the Lambda functions have in common, as ports and adapters.
//!
//! - [`domain`]: orders, statuses and transitions, the submission contract, the saga's messages (no AWS).
//! - [`ports`]: the traits the services need; [`adapters`]: DynamoDB / SNS / SFN / SQS and in-memory twins.
//! - [`services`]: what each function does, against the ports.
//! - [`chaos`]: run-time fault settings the services honour.
//! - [`invariants`]: the invariant checker; [`dlq`]: DLQ depth and redrive for operators; [`stack_outputs`]:
//!   what tools read from a deployed stack.
//! - [`entry`]: the shared `main` of the saga step functions.
//! - [`observability`]: JSON log lines with the contract's fields; [`metrics`]: EMF metrics in them; [`sqs_batch`] and [`commands`]: the
//!   Lambda plumbing shared by every function; [`config`]: environment and AWS clients.

pub mod adapters;
pub mod chaos;
pub mod commands;
pub mod config;
pub mod dlq;
pub mod domain;
pub mod entry;
pub mod invariants;
pub mod metrics;
pub mod observability;
pub mod ports;
pub mod services;
pub mod sqs_batch;
pub mod stack_outputs;
