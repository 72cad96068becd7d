//! The no-regression check: while a ticket verifies its fix, the cluster's trouble (the
//! subject's measure over each observation) is set against what it was when the ticket's
//! first action started. Worse beyond the margin on the last few observations in a row means
//! the fix made things worse: every reversible action of the ticket is taken back (newest
//! first), each marked rolled back with the trouble before and after, and the ticket goes to a
//! human.

use operator_protocol::{Millis, NEEDS_A_HUMAN, Trouble};

use super::effect::{Effect, Write};
use super::general_actions;
use super::state::EngineState;
use crate::model::*;
use crate::store::ActionUpdate;

pub fn regressions(state: &EngineState, _now: Millis) -> Vec<Effect> {
    let needed = state.config.regression_checks as usize;
    let mut effects = Vec::new();
    for ticket in state
        .tickets
        .iter()
        .filter(|t| t.status == TicketStatus::Verifying)
    {
        // A wait or a note changed nothing: whatever got worse meanwhile is not its doing.
        let ran: Vec<&Action> = state
            .ticket_actions(ticket.id)
            .filter(|a| a.status == ActionStatus::Completed && a.undoes.is_none())
            .filter(|a| !general_actions::is_general(&a.name))
            .collect();
        let Some(before) = ran.iter().find_map(|a| state.trouble_before.get(&a.id)) else {
            continue;
        };
        let since = ticket.timeline.verifying_since_ms.unwrap_or(Millis::MAX);
        let after: Vec<&Trouble> = state
            .trouble
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, t)| t)
            .collect();
        let worse = after.len() >= needed
            && after[after.len() - needed..]
                .iter()
                .all(|t| t.score > before.score + state.config.regression_margin);
        if !worse {
            continue;
        }
        let now_trouble = after[after.len() - 1];
        let reversible: Vec<&&Action> = ran
            .iter()
            .rev()
            .filter(|a| a.undo.is_some())
            .filter(|a| !state.actions.iter().any(|u| u.undoes == Some(a.id)))
            .collect();
        let change = format!(
            "trouble {} ({}) before it, {} ({}) on the last {needed} observations",
            before.score, before.summary, now_trouble.score, now_trouble.summary
        );
        for action in &reversible {
            effects.push(Effect::Write(Write::Undo {
                of: action.id,
                cause: Cause::Executor,
            }));
            effects.push(Effect::Write(Write::ActionTransition {
                id: action.id,
                from: ActionStatus::Completed,
                to: ActionStatus::RolledBack,
                cause: Cause::Executor,
                detail: format!("the cluster got worse after it: {change}; taking it back"),
                update: ActionUpdate::default(),
            }));
        }
        let names: Vec<String> = ran.iter().map(|a| format!("{} {}", a.id, a.name)).collect();
        let reason = if reversible.is_empty() {
            format!(
                "{NEEDS_A_HUMAN}: the cluster got worse after action {} ({change}), and nothing it did can be taken back",
                names.join(", ")
            )
        } else {
            format!(
                "{NEEDS_A_HUMAN}: the cluster got worse after action {} ({change}): rolled back",
                names.join(", ")
            )
        };
        effects.push(Effect::Write(Write::TicketStatus {
            ticket: ticket.id,
            status: TicketStatus::Escalated,
            cause: Cause::Executor,
            reason: Some(reason),
        }));
    }
    effects
}
