//! The contract between operator-tui's engine and the systems it watches: the `Subject`,
//! `DeploymentTarget` and `Brain` traits and the plain data they exchange. Serde only, so a
//! subject adapter depends on nothing of the engine.

mod action;
mod chaos;
mod diagnosis;
mod disturbance;
mod drill;
mod http;
mod latest;
mod lifecycle;
mod observation;
mod params;
mod premise;
mod process;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod residue;
mod runbook;
#[cfg(feature = "tasks")]
mod tasks;
mod template;
mod traits;
mod world;
mod worth;

pub use action::*;
pub use chaos::*;
pub use diagnosis::*;
pub use disturbance::*;
pub use drill::*;
pub use http::*;
pub use latest::*;
pub use lifecycle::*;
pub use observation::*;
pub use params::*;
pub use premise::*;
pub use process::*;
pub use residue::*;
pub use runbook::*;
#[cfg(feature = "tasks")]
pub use tasks::*;
pub use template::*;
pub use traits::*;
pub use world::*;
pub use worth::*;

/// Milliseconds since the Unix epoch, as the engine's clock tells them.
pub type Millis = u64;

/// The wall clock in `Millis` (0 for a clock set before 1970).
pub fn unix_now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A subject's name for one of its nodes (a process, container or store).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}
