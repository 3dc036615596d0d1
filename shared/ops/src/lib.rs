//! Vyapaar Nexus operations, for the `nexus` CLI and the tests only (no function crate depends on this
//! one, so no Lambda links it): reading a deployed stack's outputs, a consistent-enough snapshot of every
//! table, the invariant checker over it, DLQ depth and redrive, masking personal data for display, retrying failed orders and publishing an order's events again.

pub mod dlq;
pub mod forget;
pub mod invariants;
pub mod pii;
pub mod republish;
pub mod retry;
pub mod slots;
pub mod snapshot;
pub mod stack_outputs;
