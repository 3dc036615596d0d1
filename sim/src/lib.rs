//! `nexus-sim`: the whole saga under a deterministic scheduler. The real services (`nexus-core`), the real
//! record pipeline (`nexus-lambda`), the real state machine (`infra/order-saga.asl.json`, interpreted) and
//! the topology of `template.yaml`, over the in-memory twins of the stores; no emulator, no wall clock, no
//! thread it does not schedule. A seed draws the orders, the interleaving of every invocation at every port
//! call, the faults (a failed call, a crash after any call, an outage, a duplicate delivery, a stopped
//! execution, an operator's retry, the admission bound changed) and the operator's runbook once they stop;
//! the same seed replays the same run, and its trace's digest says so. After every seed the invariant
//! checker of `nexus verify` runs over every store, with quiescence: every order terminal, every slot free,
//! every execution ended, every event notified.

pub mod asl;
pub mod differential;
pub mod functions;
pub mod ports;
pub mod scenario;
pub mod template;
pub mod world;
