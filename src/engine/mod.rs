//! The engine: the loop monitor → agent → executor → verification. Every rule is a pure
//! decision over an immutable [`EngineState`] and one input, returning [`Effect`]s; the shell
//! (`shell/`) is the only code that does I/O: it owns the `select!` loop, runs the effects
//! (SQLite in one transaction per step, brains, actions, chaos) and feeds results back, and
//! holds everything else that reads or writes the world: the premise and worth reads, undo
//! preparation, the ledger and the tools brains are handed. Nothing outside `shell/` awaits.
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
mod monitor;
pub mod pick;
pub mod policy;
mod rollback;
mod shell;
mod state;
pub mod validate;
mod verify;
pub mod worth;

pub use config::{ConfidenceGates, EngineConfig};
pub use effect::PremiseFailure;
pub use effect::{ActionResult, Effect, Input, Write};
pub use monitor::OBSERVATION_FAILED;
pub use pick::HumanPick;
pub use shell::tools::{EventSink, SubjectTools};
pub use shell::{Engine, EngineHandle};
pub use state::{EngineState, RunningAction};

#[cfg(test)]
mod tests;
