//! The engine: the loop monitor → agent → executor → verification. Every rule is a pure
//! decision over an immutable [`EngineState`] and one input, returning [`Effect`]s; the shell
//! (`shell.rs`) is the only code that does I/O: it owns the `select!` loop, runs the effects
//! (SQLite in one transaction per step, brains, actions, chaos) and feeds results back.
//!
//! Arrows point one way: `shell` → the decision parts → `state`/`effect` → domain types.

mod agent;
pub mod backoff;
mod commands;
mod config;
mod decide;
mod earned;
mod effect;
mod executor;
pub mod general_actions;
mod ledger;
mod monitor;
pub mod pick;
pub mod policy;
mod premises;
mod rollback;
mod shell;
mod state;
mod tools;
mod undo;
pub mod validate;
mod verify;
pub mod worth;

pub use config::{ConfidenceGates, EngineConfig};
pub use effect::{ActionResult, Effect, Input, Write};
pub use monitor::OBSERVATION_FAILED;
pub use pick::HumanPick;
pub use premises::PremiseFailure;
pub use shell::{Engine, EngineHandle};
pub use state::{EngineState, RunningAction};
pub use tools::{EventSink, SubjectTools};

#[cfg(test)]
mod tests;
