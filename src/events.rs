//! What the engine tells its front ends, and what they ask of it. Front ends build their read
//! model from these events alone; the engine never knows which front end is attached.

use operator_protocol::{ChaosRequest, Diagnosis, Observation, ReasoningEvent, Violation};

use crate::model::{Action, ActionId, Mode, Ticket, TicketId};

/// `run --headless --json` prints each as one line: `{"event": "ticket_changed", "data": …}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum EngineEvent {
    Observed {
        observation: Observation,
        violations: Vec<Violation>,
    },
    ObservationFailed {
        error: String,
    },
    TicketChanged(Ticket),
    Reasoning {
        about: ReasoningFor,
        event: ReasoningEvent,
    },
    DiagnosisReady {
        ticket: TicketId,
        diagnosis: Box<Diagnosis>,
    },
    DiagnosisRefused {
        ticket: TicketId,
        reason: String,
    },
    ActionChanged(Action),
    ChaosInjected {
        name: String,
        target: String,
        summary: String,
    },
    ChaosFailed {
        name: String,
        error: String,
    },
    Settings {
        mode: Mode,
        kill_switch: bool,
    },
    /// Something a person should read that is no state change (a refused command, say).
    Notice(String),
    /// The brain's answer to a question asked with `Command::Ask`.
    Answer {
        question: String,
        answer: Result<String, String>,
    },
}

/// Whose reasoning a stream carries: a ticket's diagnosis, or the answer to a free question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningFor {
    Ticket(TicketId),
    Question,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    InjectChaos(ChaosRequest),
    Approve(ActionId),
    Reject(ActionId),
    Cancel(ActionId),
    /// Take a completed action back (its prepared inverse, approved by the human).
    Undo(ActionId),
    /// A human picked an action from the catalog for a ticket.
    Pick(crate::engine::HumanPick),
    SetMode(Mode),
    KillSwitch(bool),
    /// Re-send the current tickets, actions and settings (a front end that just attached).
    Replay,
    /// A free question to the brain about the live cluster, answered read-only.
    Ask(String),
}
