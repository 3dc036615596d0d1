//! Vyapaar Nexus core: everything the saga means, with no AWS SDK and no Lambda types (the dependency
//! graph keeps it so: this crate depends on neither).
//!
//! - [`domain`]: checkout values, orders and statuses, the submission contract, the saga's messages and
//!   error names, the typed effects ledger, stock.
//! - [`ports`]: the traits the services need (AWS adapters in `nexus-aws`, in-memory twins in
//!   `nexus-testkit`).
//! - [`services`]: what each function does, against the ports.
//! - [`chaos`]: the run-time fault settings and their decision; [`metrics`]: EMF metrics as log lines.

pub mod chaos;
pub mod domain;
pub mod metrics;
pub mod ports;
pub mod services;
