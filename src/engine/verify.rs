//! Verification: a ticket resolves only after its invariant held for the stability window
//! (consecutive clean observations), and a fix that has not held within the verification
//! timeout goes to a human.

use std::collections::BTreeSet;

use operator_protocol::Millis;

use super::effect::{Effect, Write};
use super::executor;
use super::general_actions;
use super::state::EngineState;
use crate::model::*;

/// Counts a clean check on every active ticket whose invariant held in this observation, and
/// resolves those that have held for the stability window.
pub fn clean_checks(state: &EngineState, broken: &BTreeSet<(&str, &str)>) -> Vec<Effect> {
    let mut effects = Vec::new();
    for ticket in &state.tickets {
        if broken.contains(&(ticket.invariant.as_str(), ticket.target.as_str())) {
            continue;
        }
        effects.push(Effect::Write(Write::CleanCheck(ticket.id)));
        let clean = ticket.clean_checks + 1;
        let resolvable = matches!(
            ticket.status,
            TicketStatus::Open
                | TicketStatus::Diagnosed
                | TicketStatus::Verifying
                | TicketStatus::Escalated
        ) || (ticket.status == TicketStatus::Acting
            && only_waiting(state, ticket));
        if clean < state.config.stability_checks || !resolvable {
            continue;
        }
        // Only an action that changed the cluster can be verified: a note or a wait that
        // completed before the problem passed did not fix it.
        let reason =
            if ticket.status == TicketStatus::Verifying && changed_the_cluster(state, ticket) {
                format!(
                    "verified: {} held for {clean} consecutive checks",
                    ticket.invariant
                )
            } else {
                format!(
                    "cleared without an action: {} held for {clean} consecutive checks",
                    ticket.invariant
                )
            };
        effects.push(Effect::Write(Write::TicketStatus {
            ticket: ticket.id,
            status: TicketStatus::Resolved,
            cause: Cause::Monitor,
            reason: Some(reason),
        }));
        effects.extend(executor::cancel_leftovers(state, ticket.id));
        // A wait for the trouble to pass (or for a person to finish) is moot once it passed.
        effects.extend(
            state
                .ticket_actions(ticket.id)
                .filter(|a| {
                    a.status == ActionStatus::Executing && state.running.contains_key(&a.id)
                })
                .map(|a| Effect::CancelRunning(a.id)),
        );
    }
    effects
}

/// Whether everything the ticket still has running or to run only waits or notes: nothing it
/// would do changes the cluster, so the trouble passing ends it.
fn only_waiting(state: &EngineState, ticket: &Ticket) -> bool {
    let mut live = state
        .ticket_actions(ticket.id)
        .filter(|a| !a.status.is_final())
        .peekable();
    live.peek().is_some() && live.all(|a| general_actions::is_general(&a.name))
}

/// Whether a completed action of the ticket changed the cluster (not only waited or noted).
fn changed_the_cluster(state: &EngineState, ticket: &Ticket) -> bool {
    state
        .ticket_actions(ticket.id)
        .any(|a| a.status == ActionStatus::Completed && !general_actions::is_general(&a.name))
}

/// How long a ticket whose plan only waited or noted is watched once the plan ran: the
/// waiting was the time given for it to pass; a few checks tell whether it did.
const AFTER_WAITING_MS: Millis = 5_000;

/// A fix that has not held within the verification timeout goes to a human; so does a
/// trouble still there once a plan that changed nothing (a wait for a person, a note) ran.
pub fn timeouts(state: &EngineState, now: Millis) -> Vec<Effect> {
    let mut effects = Vec::new();
    for ticket in &state.tickets {
        if ticket.status != TicketStatus::Verifying {
            continue;
        }
        let changed = changed_the_cluster(state, ticket);
        let timeout = if changed {
            state.config.verify_timeout.as_millis() as Millis
        } else {
            AFTER_WAITING_MS
        };
        let since = ticket.timeline.verifying_since_ms.unwrap_or(now);
        let deadline = since + timeout;
        if now > deadline {
            let reason = if changed {
                format!(
                    "the fix did not hold: {} still broken {} s after the action",
                    ticket.invariant,
                    timeout / 1000
                )
            } else {
                format!(
                    "{} is still broken after the plan ran, and it changed nothing (a wait, a note): it will not pass by itself, a human decides",
                    ticket.invariant
                )
            };
            effects.push(Effect::Write(Write::TicketStatus {
                ticket: ticket.id,
                status: TicketStatus::Escalated,
                cause: Cause::Monitor,
                reason: Some(reason),
            }));
        } else {
            effects.push(Effect::WakeAt(deadline + 1));
        }
    }
    effects
}
