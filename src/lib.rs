//! operator-tui: an AI operator for distributed systems. The engine (monitor, agent, executor,
//! policy, verification) runs headless; the TUI, the headless runner and eval are front ends
//! on it. See ARCHITECTURE in the README for the map.

pub mod agent;
pub mod backoff;
pub mod brains;
pub mod cli;
pub mod clock;
pub mod deploy;
pub mod engine;
pub mod eval;
pub mod events;
pub mod executor;
pub mod general_actions;
pub mod headless;
pub mod model;
pub mod monitor;
pub mod policy;
pub mod run;
pub mod store;
pub mod targets;
pub mod tui;
pub mod validate;
