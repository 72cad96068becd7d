//! A subject's runbook as data: for each symptom (a broken invariant) the hypotheses that could
//! explain it, the read-only evidence that tells them apart, and the remedy for each. The rules
//! brain scores hypotheses from it; LLM prompts include it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runbook {
    #[serde(default)]
    pub entries: Vec<RunbookEntry>,
}

impl Runbook {
    pub fn entry(&self, symptom: &str) -> Option<&RunbookEntry> {
        self.entries.iter().find(|e| e.symptom == symptom)
    }

    /// Whether the runbook says this cause of this symptom may pass by itself.
    pub fn is_transient(&self, symptom: &str, root_cause: &str) -> bool {
        self.entry(symptom).is_some_and(|e| {
            e.hypotheses
                .iter()
                .any(|h| h.root_cause == root_cause && h.transient)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookEntry {
    /// The invariant whose violation this entry explains.
    pub symptom: String,
    pub description: String,
    pub hypotheses: Vec<Hypothesis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// The root-cause category this hypothesis stands for.
    pub root_cause: String,
    pub description: String,
    pub evidence: Vec<EvidenceCheck>,
    #[serde(default)]
    pub remedy: Vec<RemedyStep>,
    /// The cause may pass by itself (a stall, a latency spike, a burst): before a disruptive
    /// remedy the executor watches for a bounded period, and a symptom that clears meanwhile
    /// resolves without an action.
    #[serde(default)]
    pub transient: bool,
}

/// One discriminating question (a [`Probe`](crate::Probe), whose args may hold `{target}` or
/// `{evidence.NAME}`, filled from the ticket, as may remedy params) and what its answer is worth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceCheck {
    #[serde(flatten)]
    pub probe: crate::Probe,
    /// How strongly a match supports the hypothesis (and a mismatch counts against it).
    #[serde(default = "unit_weight")]
    pub weight: f64,
    /// A premise refutes the hypothesis when it fails; a hint only moves its score.
    #[serde(default)]
    pub role: EvidenceRole,
}

impl std::ops::Deref for EvidenceCheck {
    type Target = crate::Probe;

    fn deref(&self) -> &crate::Probe {
        &self.probe
    }
}

/// What a failed check means for its hypothesis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceRole {
    /// The hypothesis cannot be true without it: when it fails (or cannot be read), the
    /// hypothesis is refuted, whatever the other checks say.
    Required,
    /// It makes the hypothesis more or less likely.
    #[default]
    Supporting,
}

fn unit_weight() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Expectation {
    Equals { value: serde_json::Value },
    Above { value: f64 },
    Below { value: f64 },
    Present,
    Absent,
}

impl Expectation {
    /// Whether a value read from a tool's answer meets the expectation.
    pub fn holds(&self, found: Option<&serde_json::Value>) -> bool {
        let number = found.and_then(|v| v.as_f64());
        match self {
            Expectation::Equals { value } => found == Some(value),
            Expectation::Above { value } => number.is_some_and(|n| n > *value),
            Expectation::Below { value } => number.is_some_and(|n| n < *value),
            Expectation::Present => found.is_some_and(|v| !v.is_null()),
            Expectation::Absent => found.is_none_or(|v| v.is_null()),
        }
    }
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expectation::Equals { value } => write!(f, "= {value}"),
            Expectation::Above { value } => write!(f, "> {value}"),
            Expectation::Below { value } => write!(f, "< {value}"),
            Expectation::Present => write!(f, "present"),
            Expectation::Absent => write!(f, "absent"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemedyStep {
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    pub rationale: String,
}
