//! Faults a subject can inject into its own cluster, each with its ground truth.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ParamSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosSpec {
    pub name: String,
    pub description: String,
    /// The root-cause category a correct diagnosis names; eval grades against it.
    pub root_cause: String,
    /// The invariant this fault is expected to break.
    pub expected_invariant: String,
    pub params: Vec<ParamSpec>,
    /// What the deployment target must be able to do for it (a partition needs a target
    /// that can isolate a node): a fault the target cannot inject is not offered.
    #[serde(default)]
    pub needs: Vec<Disturbance>,
}

/// A way a deployment target disturbs a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disturbance {
    Kill,
    Pause,
    Isolate,
    /// Start a node again with other flags than it had (`start_with`), as a person would.
    Reconfigure,
}

/// Finds the fault a request names in a catalog and checks its parameters as an action's are
/// checked (unknown keys, kinds, ranges); `nodes` as for `check_params`.
pub fn check_chaos<'a>(
    catalog: &'a [ChaosSpec],
    request: &ChaosRequest,
    nodes: Option<&[crate::NodeId]>,
) -> Result<&'a ChaosSpec, String> {
    let spec = catalog
        .iter()
        .find(|c| c.name == request.name)
        .ok_or_else(|| {
            let names: Vec<&str> = catalog.iter().map(|c| c.name.as_str()).collect();
            format!(
                "unknown fault {:?}; the faults are {} (`operator-tui chaos list`)",
                request.name,
                names.join(", ")
            )
        })?;
    crate::check_params(&spec.name, &spec.params, &request.params, nodes)?;
    Ok(spec)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosRequest {
    pub name: String,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// What an injection did: where it landed, so a ticket can be linked to its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosOutcome {
    pub target: String,
    pub summary: String,
    /// When the fault took effect (wall clock, ms), if the injection waited before acting;
    /// otherwise it counts from when the injection started.
    #[serde(default)]
    pub effective_ms: Option<crate::Millis>,
}
