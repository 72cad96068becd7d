//! The monitor: each observation's violations become tickets (opened once per invariant and
//! target, then counted as occurrences). A failed observation is a ticket of its own, never
//! "all healthy". What breaks on a node our own action is taking out is neither a new problem
//! nor a clean check.

use std::collections::BTreeSet;

use operator_protocol::{Millis, Severity, Violation};

use super::effect::{Effect, Write};
use super::state::EngineState;
use super::verify;
use crate::events::EngineEvent;

pub const OBSERVATION_FAILED: &str = "observation_failed";

/// How far back an injected fault can explain a new ticket.
pub const CHAOS_LINK_WINDOW_MS: Millis = 60_000;

/// The shell has stored the observation in the state; this decides what it means.
pub fn observed(state: &EngineState, violations: &[Violation]) -> Vec<Effect> {
    let mut effects = Vec::new();
    if let Some(observation) = &state.last_observation {
        effects.push(Effect::Emit(EngineEvent::Observed {
            observation: observation.clone(),
            violations: violations.to_vec(),
        }));
    }
    let disrupting = state.disrupting();
    let mut recorded = BTreeSet::new();
    for violation in violations {
        if disrupting.iter().any(|n| n.0 == violation.target) {
            continue;
        }
        // Two reports of one problem in one observation are one occurrence.
        if recorded.insert((violation.invariant.as_str(), violation.target.as_str())) {
            effects.push(record(state, violation));
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
pub fn observation_failed(state: &EngineState, error: &str) -> Vec<Effect> {
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
        record(state, &violation),
    ]
}

/// A new ticket, or another occurrence of the active one for the same invariant and target.
fn record(state: &EngineState, violation: &Violation) -> Effect {
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
            violation: violation.clone(),
            chaos: state
                .recent_chaos
                .iter()
                .find(|c| c.expected_invariant == violation.invariant)
                .cloned(),
        },
    })
}
