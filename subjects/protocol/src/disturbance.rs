//! The generated eval's vocabulary: disturbances the world applies to a cluster from outside
//! the operator (a signal, an admin command someone types, a person restarting a node, a burst
//! of traffic), each with the ranges its parameters are drawn from. A subject lists what it can
//! do to its own dependencies (Redis commands, simulator controls); the eval adds what every
//! target can do to any process. The engine never sees this contract.

use serde::{Deserialize, Serialize};

use crate::{BoxFuture, ContractResult, Params};

crate::named_enum!(
    /// Which kind of trouble a disturbance is, for the eval's figures by family.
    Family {
        /// Signals to a process: STOP/CONT cycles, TERM, KILL.
        Process => "process",
        /// A command on a dependency the cluster shares (Redis, PD): pauses, limits, flushes.
        Dependency => "dependency",
        /// Somebody doing their job: stopping a node and starting it again, changing a setting.
        Person => "person",
        /// The load: bursts, many keys, a client over its limit, quiet.
        Traffic => "traffic",
        /// A fault from the subject's own chaos catalog, applied behind the operator's back.
        Catalog => "catalog",
    }
);

/// One drawn parameter: an integer in `min..=max`, drawn evenly on a log scale when the range
/// spans orders of magnitude (a pause of 0.5 s to 40 s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawnRange {
    pub name: String,
    pub min: i64,
    pub max: i64,
    #[serde(default)]
    pub log_scale: bool,
}

impl DrawnRange {
    pub fn new(name: &str, min: i64, max: i64) -> Self {
        Self {
            name: name.into(),
            min,
            max,
            log_scale: false,
        }
    }

    pub fn log(name: &str, min: i64, max: i64) -> Self {
        Self {
            log_scale: true,
            ..Self::new(name, min, max)
        }
    }
}

/// What a disturbance does to what a cluster keeps, as ground truth for the harm oracle: a
/// FLUSHALL loses counts, and an action that ran beside it must not be blamed for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loses {
    #[default]
    Nothing,
    /// Counts or data the cluster held.
    State,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisturbanceSpec {
    pub name: String,
    pub family: Family,
    /// What happens, with `{target}` and `{param}` placeholders: "CLIENT PAUSE {ms} ALL".
    pub description: String,
    /// The nodes it can be applied to; empty: the cluster as a whole.
    pub targets: Vec<String>,
    pub params: Vec<DrawnRange>,
    /// It lasts until undone (a pause, a limit), so the schedule draws how long it is held;
    /// otherwise it is a moment (a kill, a flush) or ends by itself.
    pub held: bool,
    #[serde(default)]
    pub loses: Loses,
    /// A person did it on purpose and will finish it (the operator must not race them).
    #[serde(default)]
    pub deliberate: bool,
    /// For a moment that lasts by itself (a pause, a busy script): the parameter that says for
    /// how many milliseconds.
    #[serde(default)]
    pub lasts_ms_param: Option<String>,
    /// What the deployment target must be able to do for it (start a node with other
    /// flags): a disturbance the target cannot apply is not drawn.
    #[serde(default)]
    pub needs: Vec<crate::Disturbance>,
}

/// One drawn disturbance: which, on what, with which parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawnDisturbance {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub params: Params,
}

impl DrawnDisturbance {
    /// The integer parameter `name`, or `default`.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.params
            .get(name)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(default)
    }

    /// "CLIENT PAUSE 2400 ALL", "STOP/CONT node-2 (period 400 ms, 75 % stopped)".
    pub fn describe(&self, spec: &DisturbanceSpec) -> String {
        let mut text = spec
            .description
            .replace("{target}", self.target.as_deref().unwrap_or("the cluster"));
        for (name, value) in &self.params {
            text = text.replace(&format!("{{{name}}}"), &value.to_string());
        }
        text
    }
}

/// What a subject can do to its own cluster for the generated eval, and what it reads of the
/// world for the harm oracle. Implemented beside the subject's drills, outside its catalog.
pub trait Disturber: Send + Sync {
    fn disturbances(&self) -> Vec<DisturbanceSpec>;
    /// Applies it; a held disturbance lasts until `undo`.
    fn apply<'a>(&'a self, disturbance: &'a DrawnDisturbance) -> BoxFuture<'a, ContractResult<()>>;
    /// Ends it, whatever the operator did meanwhile; safe to call twice or on a moment.
    fn undo<'a>(&'a self, disturbance: &'a DrawnDisturbance) -> BoxFuture<'a, ContractResult<()>>;
    /// The world as an outside observer sees it now, read directly (never through the
    /// subject's observation): counts, protections, processes, how much of it serves.
    fn world(&self) -> BoxFuture<'_, crate::World>;
}
