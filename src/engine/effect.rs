//! What the decision parts are given (an [`Input`]) and what they return ([`Effect`]s): the
//! whole vocabulary between the pure engine and its shell.

use std::fmt;

use operator_protocol::{
    ActionOutcome, ActionRequest, ChaosOutcome, ChaosRequest, ContractError, Diagnosis, Millis,
    NodeId, Observation, Premise, Reversal, Violation,
};

use crate::events::{Command, EngineEvent};
use crate::model::{ActionId, TicketId};
pub use crate::store::Write;

/// One thing that happened, handed to the decision parts.
#[derive(Debug)]
pub enum Input {
    /// The engine's clock moved: schedules, backoffs, gates and timeouts are due for a look.
    Tick,
    /// One poll of the cluster and the subject's verdict on it, or why nothing could be seen.
    Observed(Result<(Observation, Vec<Violation>), String>),
    Diagnosed {
        ticket: TicketId,
        brain: String,
        reasoning: String,
        result: Result<Diagnosis, String>,
    },
    ActionFinished {
        id: ActionId,
        result: ActionResult,
        /// The request that takes it back, prepared before it ran; `Err` says why it could
        /// not be; `Ok(None)` when its spec has no inverse.
        undo: Result<Option<ActionRequest>, String>,
    },
    ChaosFinished {
        request: ChaosRequest,
        at_ms: Millis,
        result: Result<ChaosOutcome, String>,
    },
    Command(Command),
    /// What was left in the cluster was removed (or not): the audit rows that say so.
    CleanedUp(Vec<Write>),
}

#[derive(Debug)]
pub enum ActionResult {
    Done(Result<ActionOutcome, ContractError>),
    /// Not run: a premise did not hold on a fresh read.
    PremiseFailed(PremiseFailure),
    /// Not run yet: the trouble ends by itself in `for_ms`, sooner than what the action
    /// destroys would come back.
    Waits {
        for_ms: Millis,
        reason: String,
    },
    Cancelled,
}

/// What a decision asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A row to write; all of one step's writes go in one SQLite transaction.
    Write(Write),
    /// Hand this ticket to the brain (the ticket was moved to diagnosing by a `Write`).
    StartDiagnosis(TicketId),
    /// Run this action (already moved to executing by a `Write`).
    RunAction {
        id: ActionId,
        request: ActionRequest,
        /// The node it takes out on purpose, if any: what breaks there meanwhile is ours.
        disrupts: Option<NodeId>,
        disruptive: bool,
        /// Re-checked on a fresh observation right before it runs; empty runs it at once.
        premises: Vec<Premise>,
        /// How it is taken back: what its undo needs is read right before it runs.
        reversal: Reversal,
        /// Nobody approved it: what it buys is weighed against what it destroys first.
        on_its_own: bool,
    },
    /// Stop a running action; it finishes as cancelled.
    CancelRunning(ActionId),
    InjectChaos(ChaosRequest),
    Ask(String),
    /// Re-send the current tickets, actions and settings to the front ends.
    Replay,
    Emit(EngineEvent),
    /// Nothing is due before then; wake the loop at that time at the latest.
    WakeAt(Millis),
}

impl Effect {
    pub fn is_write(&self) -> bool {
        matches!(self, Effect::Write(_))
    }
}

/// The first premise that did not hold, with what each of its checks found.
#[derive(Debug, Clone, PartialEq)]
pub struct PremiseFailure {
    pub premise: String,
    /// One line per check: "the process has exited: found \"running\", expected = \"exited\"".
    pub found: Vec<String>,
}

impl fmt::Display for PremiseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} does not hold ({})",
            self.premise,
            self.found.join("; ")
        )
    }
}
