//! The agent: hands open tickets to the brain (a bounded few at a time) and checks what the
//! brain concluded before proposing any action. A brain that fails, times out or says
//! something invalid escalates the ticket; its answer is recorded either way.

use operator_protocol::{Diagnosis, Millis, NEEDS_A_HUMAN, Risk, TicketBrief};

use super::effect::{Effect, Write};
use super::state::EngineState;
use super::validate::validate_diagnosis;
use crate::events::EngineEvent;
use crate::model::*;
use crate::store::NewAction;

/// Why a ticket whose diagnosis found no cause goes to a human.
pub const NO_KNOWN_CAUSE: &str = "needs a human: no known cause fits the evidence";

/// Why a ticket whose remedy already ran, held only briefly, and is recommended again goes to
/// a human.
pub const FIX_DOES_NOT_HOLD: &str = "needs a human: the fix does not hold";

/// What a brain is told of a ticket.
pub fn brief(ticket: &Ticket) -> TicketBrief {
    TicketBrief {
        id: ticket.id.0,
        invariant: ticket.invariant.clone(),
        target: ticket.target.clone(),
        severity: ticket.severity,
        message: ticket.message.clone(),
        evidence: ticket.evidence.clone(),
        occurrences: ticket.occurrences,
    }
}

/// A symptom that outlasted its cause's aftermath (the cause resolved, and the symptom, which
/// should have healed by itself by now, is still there) goes to a person: nothing acted on it
/// while it was the cause's doing, and nothing guesses at it now.
pub fn outlasted_aftermath(state: &EngineState, now: Millis) -> Vec<Effect> {
    state
        .tickets
        .iter()
        .filter(|t| t.status == TicketStatus::Open && !state.diagnosing.contains(&t.id))
        .filter(|t| state.outlasted_aftermath(t, now))
        .map(|t| {
            let cause = state.recently_resolved.iter().find(|c| c.id == t.incident);
            let resolved_ms = cause.and_then(|c| c.timeline.resolved_ms).unwrap_or(now);
            escalate(
                t.id,
                Cause::Engine,
                format!(
                    "needs a human: {} on {} outlasted the aftermath of {} (ticket {}, resolved {:.1} s ago), which should have ended it by itself",
                    t.invariant,
                    t.target,
                    cause.map_or("its cause", |c| c.invariant.as_str()),
                    t.incident.0,
                    now.saturating_sub(resolved_ms) as f64 / 1000.0,
                ),
            )
        })
        .collect()
}

/// A symptom whose cause went to a person goes with it: it is the same incident, and the
/// person who has the cause decides about its aftermath too (nothing acts on it meanwhile).
pub fn follow_cause_to_a_person(state: &EngineState) -> Vec<Effect> {
    state
        .tickets
        .iter()
        .filter(|t| t.status == TicketStatus::Open && t.is_symptom())
        .filter_map(|t| {
            let cause = state
                .ticket(t.incident)
                .filter(|c| c.status == TicketStatus::Escalated)?;
            Some(escalate(
                t.id,
                Cause::Engine,
                format!(
                    "{NEEDS_A_HUMAN}: {} on {} is a symptom of ticket {} ({} on {}), which went to a person",
                    t.invariant, t.target, cause.id.0, cause.invariant, cause.target
                ),
            ))
        })
        .collect()
}

/// Open tickets go to the brain, oldest first, while fewer than the limit are being diagnosed.
/// A symptom waits while its incident's cause is open (the cause's remedy is the incident's
/// one plan), and a ticket that may be a symptom first waits the settle period for its cause
/// to show.
pub fn start_diagnoses(state: &EngineState, now: Millis) -> Vec<Effect> {
    let free = state
        .config
        .max_parallel_diagnoses
        .saturating_sub(state.diagnosing.len());
    state
        .tickets
        .iter()
        .filter(|t| t.status == TicketStatus::Open && !state.diagnosing.contains(&t.id))
        .filter(|t| !state.waits_for_its_cause(t, now) && !state.outlasted_aftermath(t, now))
        .filter(|t| {
            !state.may_be_a_symptom(&t.invariant)
                || now.saturating_sub(t.timeline.opened_ms) >= state.settle_ms()
        })
        .take(free)
        .flat_map(|t| {
            [
                Effect::Write(Write::TicketStatus {
                    ticket: t.id,
                    status: TicketStatus::Diagnosing,
                    cause: Cause::Engine,
                    reason: None,
                }),
                Effect::StartDiagnosis(t.id),
            ]
        })
        .collect()
}

/// A brain finished: record what it said, refuse what does not hold up, and otherwise propose
/// its recommended actions as one workflow.
pub fn diagnosed(
    state: &EngineState,
    id: TicketId,
    brain: &str,
    reasoning: &str,
    mut result: Result<Diagnosis, String>,
    now: Millis,
) -> Vec<Effect> {
    // Resolved tickets are not in the state: the diagnosis came too late.
    let status = state.ticket(id).map(|t| t.status);
    let mut effects = Vec::new();
    // Other trouble, open or just ended, may be what the evidence shows: nothing is sure then.
    if let (Ok(diagnosis), Some(ticket)) = (&mut result, state.ticket(id)) {
        let others = state.could_explain(ticket);
        let (confidence, contested) = super::earned::contested(diagnosis.confidence, &others);
        if let Some(detail) = contested {
            diagnosis.confidence = confidence;
            effects.push(Effect::Write(Write::Audit {
                cause: Cause::Engine,
                ticket: Some(id),
                event: "confidence_contested".into(),
                detail,
            }));
        }
    }
    let body = match &result {
        Ok(d) => serde_json::to_value(d).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e }),
    };
    let refusal = match (&result, status) {
        (_, None) => Some("it arrived after the ticket was resolved".to_string()),
        (_, Some(status)) if status != TicketStatus::Diagnosing => Some(format!(
            "the ticket is {status} now, no longer waiting for a diagnosis"
        )),
        (Err(e), _) => Some(e.clone()),
        (Ok(d), _) => validate_diagnosis(d, &state.catalog, &state.nodes()).err(),
    };
    effects.insert(
        0,
        Effect::Write(Write::Diagnosis {
            ticket: id,
            brain: brain.to_string(),
            body,
            reasoning: reasoning.to_string(),
            refusal: refusal.clone(),
        }),
    );
    let diagnosis = match (refusal, result) {
        (None, Ok(diagnosis)) => diagnosis,
        (refusal, result) => {
            let reason = refusal.unwrap_or_else(|| result.err().unwrap_or_default());
            effects.push(Effect::Emit(EngineEvent::DiagnosisRefused {
                ticket: id,
                reason: reason.clone(),
            }));
            if status == Some(TicketStatus::Diagnosing) {
                effects.push(escalate(
                    id,
                    Cause::Engine,
                    format!("diagnosis refused: {reason}"),
                ));
            }
            return effects;
        }
    };
    effects.push(Effect::Write(Write::TicketStatus {
        ticket: id,
        status: TicketStatus::Diagnosed,
        cause: Cause::Brain,
        reason: Some(diagnosis.summary.clone()),
    }));
    effects.push(Effect::Emit(EngineEvent::DiagnosisReady {
        ticket: id,
        diagnosis: Box::new(diagnosis.clone()),
    }));
    // An unknown cause is an honest answer, not a failure: nothing it might recommend runs.
    if diagnosis.is_unknown() {
        effects.push(escalate(id, Cause::Brain, NO_KNOWN_CAUSE.into()));
        return effects;
    }
    if diagnosis.recommended_actions.is_empty() {
        effects.push(escalate(
            id,
            Cause::Brain,
            "the diagnosis recommends no action".into(),
        ));
        return effects;
    }
    // The same remedy, verified lately for the same problem, did not hold: running it again is
    // a loop (a crash loop restarted for ever), so a human gets the ticket and the history.
    if let Some(reason) = state
        .ticket(id)
        .and_then(|ticket| repeated_fix(state, ticket, &diagnosis, now))
    {
        effects.push(escalate(id, Cause::Engine, reason));
        return effects;
    }
    // A cause that may pass gets a bounded watch before anything acts on the cluster: if the symptom
    // clears meanwhile, the ticket resolves without an action and the waiting steps are moot.
    // One that has come and gone again and again is a pattern for a person, not another watch.
    let ticket = state.ticket(id);
    if let Some(reason) = ticket.and_then(|t| intermittent(state, t, &diagnosis)) {
        effects.push(escalate(id, Cause::Engine, reason));
        return effects;
    }
    let watch_until = ticket
        .filter(|t| {
            state
                .runbook
                .is_transient(&t.invariant, &diagnosis.root_cause.category)
        })
        .map(|_| now + state.config.watch_period.as_millis() as Millis);
    let steps: Vec<NewAction> = diagnosis
        .recommended_actions
        .iter()
        .map(|step| {
            let spec = state.spec(&step.action);
            let scheduled = step.after_ms.map(|after| now + after);
            // Anything that acts on the cluster waits out the watch (a heal of a node that is
            // only shutting down races whoever stopped it, as a restart would); a note or a
            // wait goes at once.
            let watched = watch_until.filter(|_| {
                !super::general_actions::is_general(&step.action)
                    && spec.is_some_and(|s| s.risk != Risk::ReadOnly)
            });
            NewAction {
                ticket_id: Some(id),
                name: step.action.clone(),
                params: step.params.clone().into_iter().collect(),
                rationale: step.rationale.clone(),
                // Validated above; a step the catalog lost gets the strictest gate.
                risk: spec.map_or(Risk::Destructive, |s| s.risk),
                max_attempts: state.config.max_attempts,
                depends_on: None,
                not_before_ms: scheduled.max(watched),
                confidence: Some(diagnosis.confidence),
                destroys: spec.and_then(|s| s.destroys.clone()),
                irreversible: spec.map_or(Some("not in the catalog".into()), |s| {
                    s.reversal.irreversible_because()
                }),
                undoes: None,
            }
        })
        .collect();
    if let Some(until) = watch_until
        && let Some(first) = steps.iter().find(|s| s.not_before_ms == Some(until))
    {
        effects.push(Effect::Write(Write::Audit {
            cause: Cause::Executor,
            ticket: Some(id),
            event: "watch".into(),
            detail: format!(
                "{} may pass by itself: watching {} ms before {} runs",
                diagnosis.root_cause.category,
                until - now,
                first.name
            ),
        }));
    }
    effects.push(Effect::Write(Write::Workflow {
        steps,
        cause: Cause::Brain,
    }));
    effects
}

/// Says why, when the diagnosis recommends a remedy that already ran and was verified on a
/// recent ticket of this cluster for the same invariant, target and cause: what repeats is
/// the problem the fix was for, not any trouble on a node of that name (a node stalled after
/// it was restarted from a crash is a new problem).
fn repeated_fix(
    state: &EngineState,
    ticket: &Ticket,
    diagnosis: &Diagnosis,
    now: Millis,
) -> Option<String> {
    diagnosis.recommended_actions.iter().find_map(|step| {
        let params: serde_json::Map<String, serde_json::Value> =
            step.params.clone().into_iter().collect();
        let fix = state.recent_fixes.iter().find(|f| {
            f.invariant == ticket.invariant
                && f.target == ticket.target
                && f.cause == diagnosis.root_cause.category
                && f.action == step.action
                && f.params == params
        })?;
        Some(format!(
            "{FIX_DOES_NOT_HOLD}: {} {} was verified on ticket #{} {} s ago, and {} on {} is back",
            step.action,
            serde_json::Value::Object(params),
            fix.ticket.0,
            now.saturating_sub(fix.resolved_ms) / 1000,
            ticket.invariant,
            ticket.target
        ))
    })
}

/// Says why, when a cause that may pass by itself has already cleared by itself on this target
/// often enough lately to be a pattern ("Redis stalls intermittently").
fn intermittent(state: &EngineState, ticket: &Ticket, diagnosis: &Diagnosis) -> Option<String> {
    let cause = &diagnosis.root_cause.category;
    if !state.runbook.is_transient(&ticket.invariant, cause) {
        return None;
    }
    let cleared = state
        .recent_clears
        .iter()
        .filter(|(invariant, target, _)| *invariant == ticket.invariant && *target == ticket.target)
        .count();
    (cleared >= state.config.intermittent_clears).then(|| {
        format!(
            "needs a human: {} on {} comes and goes ({cause}): {} times in the last {} s, each time clearing by itself; watching it again fixes nothing",
            ticket.invariant,
            ticket.target,
            cleared + 1,
            state.config.intermittent_window.as_secs(),
        )
    })
}

pub(super) fn escalate(ticket: TicketId, cause: Cause, reason: String) -> Effect {
    Effect::Write(Write::TicketStatus {
        ticket,
        status: TicketStatus::Escalated,
        cause,
        reason: Some(reason),
    })
}
