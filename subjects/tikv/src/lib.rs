//! operator-tui's TiKV subject: the client for PD's HTTP API in PD's exact shapes (see the
//! team's reference `pd-api.md`), the facts an observation holds, the invariants over them,
//! the subject (observe, act, chaos, runbook), and a PD-compatible simulator with its target.

pub mod actions;
mod chaos;
pub mod facts;
pub mod invariants;
pub mod metrics;
mod observe;
pub mod pd;
pub mod prometheus;
mod remedies;
mod runbook;
pub mod subject;
pub mod telemetry;
mod tools;
#[cfg(feature = "tikv-client")]
pub mod workload;
