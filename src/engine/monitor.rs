//! The monitor: each observation's violations become tickets (opened once per invariant and
//! target, then counted as occurrences). A failed observation is a ticket of its own, never
//! "all healthy". What breaks on a node our own action is taking out is neither a new problem
//! nor a clean check.

use std::collections::BTreeSet;

use operator_protocol::{Health, Millis, Observation, Severity, Violation};

use super::effect::{Effect, Write};
use super::state::EngineState;
use super::verify;
use crate::events::EngineEvent;
use crate::model::{ActionStatus, Cause, TicketId, TicketStatus};
use crate::store::IncidentLink;

pub const OBSERVATION_FAILED: &str = "observation_failed";

/// How far back an injected fault can explain a new ticket.
pub const CHAOS_LINK_WINDOW_MS: Millis = 60_000;

/// Tickets on the same node or resource that open this close together share a cause.
pub const INCIDENT_JOIN_WINDOW_MS: Millis = 10_000;

/// What the front ends show: a node that answers its health probe but breaks an invariant (a
/// p99 hundreds of times its peers', decisions Redis never made) is degraded, not healthy, so
/// the screen's glyph and the `degraded` filter agree with the tickets.
fn degraded_where_violated(observation: &Observation, violations: &[Violation]) -> Observation {
    let mut shown = observation.clone();
    for node in &mut shown.nodes {
        if node.health == Health::Healthy && violations.iter().any(|v| v.target == node.id.0) {
            node.health = Health::Degraded;
        }
    }
    shown
}

/// The shell has stored the observation in the state; this decides what it means.
pub fn observed(state: &EngineState, violations: &[Violation], now: Millis) -> Vec<Effect> {
    let mut effects = Vec::new();
    if let Some(observation) = &state.last_observation {
        effects.push(Effect::Emit(EngineEvent::Observed {
            observation: degraded_where_violated(observation, violations),
            violations: violations.to_vec(),
        }));
    }
    let disrupting = state.disrupting();
    let mut recorded = BTreeSet::new();
    // Causes first: a symptom seen in the same observation as its cause joins the incident
    // its ticket opens.
    let (causes, rest): (Vec<&Violation>, Vec<&Violation>) = violations.iter().partition(|v| {
        violations
            .iter()
            .any(|s| state.brings_about(&v.invariant, &s.invariant))
    });
    for violation in causes.into_iter().chain(rest) {
        if disrupting.iter().any(|n| n.0 == violation.target) {
            continue;
        }
        // Two reports of one problem in one observation are one occurrence.
        if recorded.insert((violation.invariant.as_str(), violation.target.as_str())) {
            effects.push(record(state, violation, violations, now));
            effects.extend(comes_and_goes(state, violation));
        }
    }
    let broken: BTreeSet<(&str, &str)> = violations
        .iter()
        .map(|v| (v.invariant.as_str(), v.target.as_str()))
        .collect();
    effects.extend(verify::clean_checks(state, &broken));
    effects
}

/// Nothing was seen, so nothing counts as clean; the failure itself is a problem.
pub fn observation_failed(state: &EngineState, error: &str, now: Millis) -> Vec<Effect> {
    let violation = Violation {
        invariant: OBSERVATION_FAILED.into(),
        severity: Severity::Critical,
        target: state.subject.clone(),
        message: format!("could not observe the cluster: {error}"),
        evidence: serde_json::json!({ "error": error }),
    };
    vec![
        Effect::Emit(EngineEvent::ObservationFailed {
            error: error.to_string(),
        }),
        record(state, &violation, &[], now),
    ]
}

/// A new ticket, or another occurrence of the active one for the same invariant and target.
fn record(state: &EngineState, violation: &Violation, seen: &[Violation], now: Millis) -> Effect {
    let active = state
        .tickets
        .iter()
        .rev()
        .find(|t| t.invariant == violation.invariant && t.target == violation.target);
    Effect::Write(match active {
        Some(ticket) => Write::Recur {
            ticket: ticket.id,
            violation: violation.clone(),
        },
        None => Write::OpenTicket {
            subject: state.subject.clone(),
            cluster: state.config.cluster.clone(),
            violation: violation.clone(),
            chaos: state
                .recent_chaos
                .iter()
                .find(|c| c.explains(violation))
                .cloned(),
            incident: incident_of(state, violation, seen, now),
        },
    })
}

/// A problem that let go by itself (a clean observation) and came back while a disruptive
/// step of its ticket has yet to run (waiting out its watch, its schedule or its gates) comes
/// and goes: whatever stops it keeps letting it go, and a restart would destroy what the
/// process holds without stopping what stops it. A person gets it, with the pattern.
fn comes_and_goes(state: &EngineState, violation: &Violation) -> Option<Effect> {
    let ticket = state.tickets.iter().rev().find(|t| {
        t.invariant == violation.invariant
            && t.target == violation.target
            && t.status != TicketStatus::Resolved
            && t.status != TicketStatus::Escalated
            && t.clean_checks > 0
    })?;
    let waiting = state.ticket_actions(ticket.id).any(|a| {
        matches!(a.status, ActionStatus::Proposed | ActionStatus::Validated)
            && a.risk.is_disruptive()
            && a.undoes.is_none()
    });
    waiting.then(|| {
        Effect::Write(Write::TicketStatus {
            ticket: ticket.id,
            status: TicketStatus::Escalated,
            cause: Cause::Engine,
            reason: Some(format!(
                "needs a human: {} on {} let go by itself and came back before its disruptive step ran: it comes and goes, and whatever stops it would outlast a restart",
                ticket.invariant, ticket.target
            )),
        })
    })
}

/// One cause, one incident. A new problem is a symptom of an open ticket whose invariant the
/// subject declares brings it about, or of a ticket on the same node or resource opened just
/// before it; it is the cause of open tickets it is declared to bring about (seen first);
/// otherwise an incident of its own.
fn incident_of(
    state: &EngineState,
    violation: &Violation,
    seen: &[Violation],
    now: Millis,
) -> IncidentLink {
    let brings_about = |cause: &str, symptom: &str| state.brings_about(cause, symptom);
    let open = || {
        state
            .tickets
            .iter()
            .filter(|t| t.status != TicketStatus::Resolved)
    };
    if let Some(cause) = open().find(|t| brings_about(&t.invariant, &violation.invariant)) {
        return IncidentLink::SymptomOf(cause.incident);
    }
    // A cause already resolved whose aftermath is still passing: what shows now is its doing
    // (a count that drifted while Redis was away), not a problem of its own.
    if let Some(cause) = state.recently_resolved.iter().rev().find(|t| {
        let outlasts = state.outlasts_ms(&t.invariant, &violation.invariant);
        outlasts > 0 && now < t.timeline.resolved_ms.unwrap_or(0) + outlasts
    }) {
        return IncidentLink::SymptomOf(cause.incident);
    }
    // Its cause broke in this same observation: its ticket opens just before this one.
    if let Some(cause) = seen
        .iter()
        .find(|c| brings_about(&c.invariant, &violation.invariant))
    {
        return IncidentLink::SymptomOfOpening {
            invariant: cause.invariant.clone(),
            target: cause.target.clone(),
        };
    }
    let adopts: BTreeSet<TicketId> = open()
        .filter(|t| brings_about(&violation.invariant, &t.invariant))
        .map(|t| t.incident)
        .collect();
    if !adopts.is_empty() {
        return IncidentLink::Cause {
            adopts: adopts.into_iter().collect(),
        };
    }
    if let Some(neighbour) = open().find(|t| {
        t.target == violation.target
            && now.saturating_sub(t.timeline.opened_ms) <= INCIDENT_JOIN_WINDOW_MS
    }) {
        return IncidentLink::SymptomOf(neighbour.incident);
    }
    IncidentLink::Cause { adopts: Vec::new() }
}
