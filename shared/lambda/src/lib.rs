//! Vyapaar Nexus Lambda edge: what turns a service of the core into a Lambda function.
//!
//! - [`run`]: a function's whole `main` (logging, clients, chaos, then every SQS batch through the
//!   [`pipeline`]); [`consumers`] say what each function does with one record.
//! - [`config`]: environment and AWS clients; [`observability`]: the contract's JSON log lines;
//!   [`sqs_batch`]: partial batch failures; [`chaos`]: fault injection in the process.

pub mod chaos;
pub mod config;
pub mod consumers;
pub mod crash_points;
pub mod observability;
pub mod pipeline;
pub mod sqs_batch;

pub use pipeline::run;
