//! operator-tui's TiKV subject: the client for PD's HTTP API in PD's exact shapes (see the
//! team's reference `pd-api.md`), the facts an observation holds, the invariants over them,
//! the subject (observe, act, chaos, runbook), and a PD-compatible simulator with its target.

pub mod actions;
pub mod facts;
pub mod invariants;
pub mod metrics;
pub mod pd;
pub mod prometheus;
pub mod subject;
pub mod telemetry;
#[cfg(feature = "tikv-client")]
pub mod workload;
