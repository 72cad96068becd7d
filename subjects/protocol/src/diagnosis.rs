//! What a brain concludes about a ticket, and what it sees while it works.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ActionSpec, Observation, Runbook, Severity, ToolSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnosis {
    pub summary: String,
    pub root_cause: RootCause,
    pub evidence: Vec<Evidence>,
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
    #[serde(default)]
    pub recommended_actions: Vec<RecommendedAction>,
    /// 0.0 to 1.0.
    pub confidence: f64,
    #[serde(default)]
    pub cost: Cost,
}

/// The root-cause category of a diagnosis that found no cause the evidence supports: it
/// recommends nothing and hands the ticket to a human with the evidence.
pub const UNKNOWN_ROOT_CAUSE: &str = "unknown";

impl Diagnosis {
    pub fn is_unknown(&self) -> bool {
        self.root_cause.category == UNKNOWN_ROOT_CAUSE
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootCause {
    pub category: String,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Which tool (or observation) it came from.
    pub source: String,
    pub observation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    pub category: String,
    pub why_rejected: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendedAction {
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    pub rationale: String,
    /// Run no sooner than this long after the diagnosis (a scheduled action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub tool_calls: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Dollars, where the price of the model is known.
    pub usd: Option<f64>,
}

/// The ticket as a brain sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketBrief {
    pub id: i64,
    pub invariant: String,
    pub target: String,
    pub severity: Severity,
    pub message: String,
    pub evidence: serde_json::Value,
    pub occurrences: u64,
}

/// Everything a brain is given to diagnose one ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisContext {
    pub subject: String,
    pub ticket: TicketBrief,
    pub observation: Option<Observation>,
    pub runbook: Runbook,
    pub actions: Vec<ActionSpec>,
    pub tools: Vec<ToolSpec>,
}

/// A free question about the live cluster, answered read-only with the same tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionContext {
    pub subject: String,
    pub question: String,
    pub observation: Option<Observation>,
    pub runbook: Runbook,
    pub actions: Vec<ActionSpec>,
    pub tools: Vec<ToolSpec>,
}

/// What streams to the screen while a brain works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReasoningEvent {
    /// A piece of the brain's visible reasoning; pieces concatenate.
    Text {
        text: String,
    },
    Thinking {
        text: String,
    },
    ToolCall {
        tool: String,
        args: serde_json::Value,
    },
    ToolResult {
        tool: String,
        ok: bool,
        summary: String,
    },
}
