//! operator-tui: an AI operator for distributed systems. The engine (monitor, agent, executor,
//! policy, verification: pure decisions and one I/O shell) runs headless; the TUI, the
//! headless runner and eval are front ends on it. `docs/architecture.md` has the map.

pub mod brains;
pub mod cli;
pub mod clock;
pub mod config_file;
pub mod deploy;
pub mod engine;
pub mod events;
pub mod frontends;
pub mod model;
pub mod run;
pub mod store;
pub mod targets;
pub mod testing;
pub mod user_error;
