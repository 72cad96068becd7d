//! What a human's command changes: approvals, cancellations, the mode and the kill switch are
//! rows (each audited as the human's); chaos, questions and replays are work for the shell.

use super::effect::{Effect, Write};
use super::executor;
use super::state::EngineState;
use crate::events::{Command, EngineEvent};
use crate::model::*;

/// Why a read-only operator refuses a command that would act.
const READ_ONLY: &str =
    "read-only: operator-tui was started with --read-only, so it never acts and injects no chaos";

pub fn command(state: &EngineState, command: Command) -> Vec<Effect> {
    let acts = matches!(
        command,
        Command::InjectChaos(_) | Command::Approve(_) | Command::Undo(_) | Command::Pick(_)
    );
    if acts && state.config.read_only {
        return vec![notice(READ_ONLY.to_string())];
    }
    match command {
        Command::InjectChaos(request) => {
            // Before the first observation the nodes are not known yet: a node parameter is then
            // checked to be a name, and the subject refuses one it does not have.
            let nodes = state.nodes();
            let known = Some(nodes.as_slice()).filter(|n| !n.is_empty());
            match operator_protocol::check_chaos(&state.chaos_catalog, &request, known) {
                Ok(_) => vec![Effect::InjectChaos(request)],
                Err(refusal) => vec![Effect::Emit(EngineEvent::ChaosFailed {
                    name: request.name,
                    error: refusal,
                })],
            }
        }
        Command::Approve(id) => approval(state, id, Approval::Approved),
        Command::Reject(id) => approval(state, id, Approval::Rejected),
        Command::Cancel(id) => executor::cancel_requested(state, id, Cause::Human),
        Command::Undo(of) => vec![Effect::Write(Write::Undo {
            of,
            cause: Cause::Human,
        })],
        Command::Pick(pick) => human_pick(state, &pick),
        Command::SetMode(mode) => vec![Effect::Write(Write::Mode {
            mode,
            cause: Cause::Human,
        })],
        Command::KillSwitch(on) => vec![Effect::Write(Write::KillSwitch {
            on,
            cause: Cause::Human,
        })],
        Command::Ask(question) => vec![Effect::Ask(question)],
        Command::Replay => vec![Effect::Replay],
    }
}

fn approval(state: &EngineState, id: ActionId, approval: Approval) -> Vec<Effect> {
    match state.action(id) {
        Some(action) if !action.status.is_final() => vec![Effect::Write(Write::Approval {
            id,
            approval,
            cause: Cause::Human,
        })],
        Some(action) => vec![Effect::Emit(EngineEvent::Notice(format!(
            "action {id} is already {}; nothing to {}",
            action.status,
            if approval == Approval::Approved {
                "approve"
            } else {
                "reject"
            }
        )))],
        None => vec![Effect::Emit(EngineEvent::Notice(format!(
            "there is no live action {id}"
        )))],
    }
}

fn human_pick(state: &EngineState, pick: &super::HumanPick) -> Vec<Effect> {
    let Some(ticket) = state.ticket(pick.ticket) else {
        return vec![notice(format!("there is no open ticket {}", pick.ticket))];
    };
    let nodes = state.nodes();
    match super::pick::picked_action(
        &state.catalog,
        ticket,
        pick,
        Some(&nodes),
        state.config.max_attempts,
    ) {
        Ok(action) => vec![Effect::Write(Write::Pick {
            action,
            override_for: pick.override_for.clone(),
            cause: Cause::Human,
        })],
        Err(problem) => vec![notice(problem)],
    }
}

fn notice(text: String) -> Effect {
    Effect::Emit(EngineEvent::Notice(text))
}
