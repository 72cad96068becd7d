//! The engine's own vocabulary: ids, lifecycles, modes and who caused a change. Parsed once at
//! the SQLite boundary; everywhere else these are enums, never strings.

use serde::{Deserialize, Serialize};

use operator_protocol::{Millis, Risk, Severity, named_enum};

pub use operator_protocol::{ActionStatus, Mode, TicketStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionId(pub i64);

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl std::fmt::Display for ActionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "A{}", self.0)
    }
}

named_enum!(
    /// Who caused a state change; every audit row names one.
    Cause {
        Monitor => "monitor",
        Brain => "brain",
        Human => "human",
        Cli => "cli",
        Policy => "policy",
        Executor => "executor",
        Engine => "engine",
        Chaos => "chaos",
    }
);

named_enum!(
    Approval {
        Approved => "approved",
        Rejected => "rejected",
    }
);

pub fn severity_str(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

pub fn parse_severity(text: &str) -> Option<Severity> {
    match text {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

/// A ticket and its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub subject: String,
    pub invariant: String,
    pub target: String,
    pub severity: Severity,
    pub status: TicketStatus,
    pub message: String,
    pub evidence: serde_json::Value,
    pub occurrences: u64,
    /// Consecutive observations in which the invariant held.
    pub clean_checks: u64,
    /// Why it was escalated, held or resolved, in words.
    pub reason: Option<String>,
    pub timeline: Timeline,
    /// When the fault came from our own chaos: which one, and its ground-truth category.
    pub chaos: Option<ChaosLink>,
    /// The cause ticket of the incident this ticket belongs to: its own id for a cause.
    pub incident: TicketId,
    /// The first action of the plan the ticket now follows: a human's pick starts a new plan,
    /// and the ticket's progress is judged on it alone, not on what failed before it.
    pub plan_start: Option<ActionId>,
}

impl Ticket {
    /// A consequence of another ticket's problem, not a cause of its own.
    pub fn is_symptom(&self) -> bool {
        self.incident != self.id
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub fault_injected_ms: Option<Millis>,
    pub first_seen_ms: Millis,
    pub opened_ms: Millis,
    pub diagnosed_ms: Option<Millis>,
    pub action_started_ms: Option<Millis>,
    pub action_done_ms: Option<Millis>,
    pub verifying_since_ms: Option<Millis>,
    pub resolved_ms: Option<Millis>,
}

impl Timeline {
    /// Time to detect: from the injected fault (when known) to the ticket.
    pub fn time_to_detect_ms(&self) -> Option<Millis> {
        self.fault_injected_ms
            .map(|f| self.opened_ms.saturating_sub(f))
    }

    pub fn time_to_diagnose_ms(&self) -> Option<Millis> {
        self.diagnosed_ms.map(|d| d.saturating_sub(self.opened_ms))
    }

    /// Time to mitigate: from the ticket to verified resolution.
    pub fn time_to_mitigate_ms(&self) -> Option<Millis> {
        self.resolved_ms.map(|r| r.saturating_sub(self.opened_ms))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosLink {
    pub name: String,
    pub root_cause: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: ActionId,
    pub ticket_id: Option<TicketId>,
    pub name: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub rationale: String,
    pub risk: Risk,
    pub status: ActionStatus,
    pub approval: Option<Approval>,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Runs only after this action completed; cancelled if it did not.
    pub depends_on: Option<ActionId>,
    /// Scheduled (or backing off before a retry) until then.
    pub not_before_ms: Option<Millis>,
    pub error: Option<String>,
    pub outcome: Option<String>,
    /// The confidence of the diagnosis that recommended it; `None` for a human's action.
    pub confidence: Option<f64>,
    /// What running it loses or gives away, from its spec when it was proposed.
    pub destroys: Option<String>,
    /// Why it waits for a human although the mode would let it run (a gate's decision).
    pub waiting: Option<String>,
    /// How to take it back, prepared when it ran; `None` before, or when it cannot be.
    pub undo: Option<UndoPlan>,
    /// Why it cannot be taken back (from its spec, or because its undo could not be prepared).
    pub irreversible: Option<String>,
    /// The action this one takes back.
    pub undoes: Option<ActionId>,
    /// A human typed the target's name to run it although its premises may not hold: the
    /// executor does not re-check them (the override is in the audit log).
    pub premises_overridden: bool,
    pub created_ms: Millis,
    pub updated_ms: Millis,
}

/// The request that takes an action back, and the risk it runs at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoPlan {
    pub action: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub risk: operator_protocol::Risk,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: Millis,
    pub cause: Cause,
    pub ticket_id: Option<TicketId>,
    pub action_id: Option<ActionId>,
    pub event: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub at_ms: Millis,
    pub from: Option<ActionStatus>,
    pub to: ActionStatus,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDiagnosis {
    pub id: i64,
    pub ticket_id: TicketId,
    pub brain: String,
    /// The raw diagnosis as the brain gave it (parsed when accepted).
    pub body: serde_json::Value,
    pub accepted: bool,
    pub refusal: Option<String>,
    /// The brain's streamed reasoning, as it was shown.
    pub reasoning: String,
    pub created_ms: Millis,
}
