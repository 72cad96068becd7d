//! The three front ends on the engine. None is known to the engine: each builds what it shows
//! from `EngineEvent`s and sends `Command`s.
//!
//! - `tui`: the full-screen terminal (the screen itself is the `operator-widgets` crate);
//! - `headless`: the same events printed as lines;
//! - `eval`: scenarios on fresh clusters, graded from ground truth.

pub mod eval;
pub mod headless;
pub mod tui;
