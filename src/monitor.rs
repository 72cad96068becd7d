//! The monitor's half of the loop: turn each observation into ticket changes (open, recur,
//! count clean checks, resolve after the stability window) and escalate fixes that did not
//! hold. A failed observation is a ticket of its own, never "all healthy".

use std::collections::HashSet;

use color_eyre::eyre::Result;
use operator_protocol::{Observation, Severity, Violation};

use crate::engine::Core;
use crate::events::EngineEvent;
use crate::model::*;
use crate::store::TicketChange;

pub const OBSERVATION_FAILED: &str = "observation_failed";

/// How far back an injected fault can explain a new ticket.
const CHAOS_LINK_WINDOW_MS: u64 = 60_000;

pub(crate) fn apply_observation(
    core: &mut Core,
    result: Result<Observation, String>,
) -> Result<()> {
    let now = core.now();
    let violations = match result {
        Ok(observation) => {
            let violations = core.subject.check(&observation);
            core.emit(EngineEvent::Observed {
                observation: observation.clone(),
                violations: violations.clone(),
            });
            core.last_observation = Some(observation);
            violations
        }
        Err(error) => {
            core.emit(EngineEvent::ObservationFailed {
                error: error.clone(),
            });
            // Nothing was seen, so nothing counts as clean; the failure itself is a problem.
            let violation = Violation {
                invariant: OBSERVATION_FAILED.into(),
                severity: Severity::Critical,
                target: core.subject.name().to_string(),
                message: format!("could not observe the cluster: {error}"),
                evidence: serde_json::json!({ "error": error }),
            };
            record(core, &violation, now)?;
            return Ok(());
        }
    };

    let mut broken = HashSet::new();
    for violation in &violations {
        broken.insert((violation.invariant.clone(), violation.target.clone()));
        // Neither a new problem nor a clean check: our own action is restarting that node.
        if core.disrupting.iter().any(|n| n.0 == violation.target) {
            continue;
        }
        record(core, violation, now)?;
    }
    let stability = core.config.stability_checks;
    for ticket in core.store.active_tickets()? {
        if broken.contains(&(ticket.invariant.clone(), ticket.target.clone())) {
            continue;
        }
        let clean = core.store.record_clean_check(ticket.id, now)?;
        let resolvable = matches!(
            ticket.status,
            TicketStatus::Open
                | TicketStatus::Diagnosed
                | TicketStatus::Verifying
                | TicketStatus::Escalated
        );
        if clean >= stability && resolvable {
            let reason = if ticket.status == TicketStatus::Verifying {
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
            core.store.set_ticket_status(
                ticket.id,
                TicketStatus::Resolved,
                Cause::Monitor,
                Some(&reason),
                now,
            )?;
            crate::executor::cancel_leftovers(core, ticket.id)?;
            core.emit_ticket(ticket.id);
        }
    }
    Ok(())
}

fn record(core: &mut Core, violation: &Violation, now: u64) -> Result<()> {
    let subject = core.subject.name().to_string();
    let chaos = core
        .store
        .recent_chaos(&subject, now.saturating_sub(CHAOS_LINK_WINDOW_MS))?
        .into_iter()
        .find(|c| c.expected_invariant == violation.invariant);
    let change = core
        .store
        .record_violation(&subject, violation, now, chaos.as_ref())?;
    match change {
        TicketChange::Opened(id) => {
            tracing::info!(ticket = id.0, invariant = %violation.invariant, target = %violation.target, "ticket opened");
            core.emit_ticket(id);
        }
        TicketChange::Recurred(id) => core.emit_ticket(id),
    }
    Ok(())
}

/// A fix that has not held within the verification timeout goes to a human.
pub(crate) fn check_verification_timeouts(core: &mut Core) -> Result<()> {
    let now = core.now();
    let timeout = core.config.verify_timeout.as_millis() as u64;
    for ticket in core.store.active_tickets()? {
        if ticket.status != TicketStatus::Verifying {
            continue;
        }
        let since = ticket.timeline.verifying_since_ms.unwrap_or(now);
        if now.saturating_sub(since) > timeout {
            let reason = format!(
                "the fix did not hold: {} still broken {} s after the action",
                ticket.invariant,
                timeout / 1000
            );
            core.store.set_ticket_status(
                ticket.id,
                TicketStatus::Escalated,
                Cause::Monitor,
                Some(&reason),
                now,
            )?;
            core.emit_ticket(ticket.id);
        }
    }
    Ok(())
}
