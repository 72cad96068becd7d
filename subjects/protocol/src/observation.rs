//! One poll of a cluster, and what an invariant says about it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Millis, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    /// Up, but not doing its job fully (e.g. a node whose backing store is unreachable).
    Degraded,
    Down,
    /// The node is there but was not answering in a way we could read.
    Unknown,
}

/// A node fact: someone other than the operator is working on the node on purpose, and what
/// ("stopped deliberately (a clean exit)", "leaders evicted by a scheduler someone
/// else added"). A subject sets it from what it observes, the engine from what the
/// target says of the process; the engine leaves the node to that person while it lasts and
/// for a grace period after, whatever a diagnosis says.
pub const SOMEONE_AT_WORK: &str = "someone_at_work";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    /// What the node is in its cluster: "node", "redis", "store", "pd" ...
    pub role: String,
    pub health: Health,
    /// Short, display-ready facts ("p99_ms" → 0.8, "leaders" → 31); the cluster pane shows them.
    #[serde(default)]
    pub facts: BTreeMap<String, serde_json::Value>,
}

/// The traffic the cluster served since the previous observation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSample {
    pub ops_per_sec: f64,
    /// A named split of the ops ("allowed"/"denied", "read"/"write"), in ops/s.
    #[serde(default)]
    pub split: BTreeMap<String, f64>,
    pub errors_per_sec: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub at_ms: Millis,
    pub nodes: Vec<NodeStatus>,
    pub workload: Option<WorkloadSample>,
    /// Everything else the subject's invariants read, in the subject's own shape.
    pub facts: serde_json::Value,
}

impl Observation {
    /// Nothing seen: what is left where an observation was moved out.
    pub fn empty() -> Self {
        Self {
            at_ms: 0,
            nodes: Vec::new(),
            workload: None,
            facts: serde_json::Value::Null,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// How troubled a cluster looks in one observation, higher is worse: what the no-regression
/// check compares before an action and after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trouble {
    pub score: f64,
    /// What the score is made of, for the audit log ("1 critical, 2 warnings").
    pub summary: String,
}

impl Trouble {
    /// Violations by severity: a critical one weighs 10, a warning 3, a note 1.
    pub fn of_violations(violations: &[Violation]) -> Self {
        let count = |s: Severity| violations.iter().filter(|v| v.severity == s).count();
        let (critical, warning, info) = (
            count(Severity::Critical),
            count(Severity::Warning),
            count(Severity::Info),
        );
        let mut parts = Vec::new();
        for (n, word) in [(critical, "critical"), (warning, "warning"), (info, "note")] {
            if n > 0 {
                parts.push(format!("{n} {word}{}", if n > 1 { "s" } else { "" }));
            }
        }
        Self {
            score: (critical * 10 + warning * 3 + info) as f64,
            summary: if parts.is_empty() {
                "no violation".into()
            } else {
                parts.join(", ")
            },
        }
    }
}

/// An invariant that does not hold, on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: String,
    pub severity: Severity,
    /// What it is about: a node id, a key, a region; tickets are deduplicated by invariant + target.
    pub target: String,
    pub message: String,
    #[serde(default)]
    pub evidence: serde_json::Value,
}

impl Violation {
    /// An observation whose facts a subject cannot read back: critical, never "healthy".
    pub fn unreadable_facts(subject: &str, error: impl std::fmt::Display) -> Self {
        Self {
            invariant: "observation_unreadable".into(),
            severity: Severity::Critical,
            target: subject.into(),
            message: format!("the observation's facts do not parse: {error}"),
            evidence: serde_json::Value::Null,
        }
    }
}
