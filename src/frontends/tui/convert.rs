//! Engine events in the widgets' vocabulary: the one place engine types become display rows.

use operator_widgets::update::EngineUpdate;
use operator_widgets::view::{ActionRow, TicketRow};

use crate::events::{EngineEvent, ReasoningFor};
use crate::model::{Action, Approval, Ticket};

pub fn ticket_row(t: &Ticket) -> TicketRow {
    TicketRow {
        id: t.id.0,
        incident: t.incident.0,
        status: t.status,
        invariant: t.invariant.clone(),
        target: t.target.clone(),
        severity: t.severity,
        occurrences: t.occurrences,
        message: t.message.clone(),
        reason: t.reason.clone(),
        opened_ms: t.timeline.opened_ms,
        detect_ms: t.timeline.time_to_detect_ms(),
        diagnose_ms: t.timeline.time_to_diagnose_ms(),
        mitigate_ms: t.timeline.time_to_mitigate_ms(),
    }
}

pub fn action_row(a: &Action) -> ActionRow {
    ActionRow {
        id: a.id.0,
        ticket: a.ticket_id.map(|t| t.0),
        name: a.name.clone(),
        params: serde_json::Value::Object(a.params.clone()).to_string(),
        status: a.status,
        approved: a.approval == Some(Approval::Approved),
        rejected: a.approval == Some(Approval::Rejected),
        attempts: a.attempts,
        max_attempts: a.max_attempts,
        error: a.error.clone(),
        outcome: a.outcome.clone(),
        destroys: a.destroys.clone(),
        waiting: a.waiting.clone(),
        undo: a.undo.as_ref().map(|plan| {
            format!(
                "{} {}",
                plan.action,
                serde_json::Value::Object(plan.params.clone())
            )
        }),
        irreversible: a.irreversible.clone(),
        disruptive: a.risk.is_disruptive(),
    }
}

pub fn engine_update(event: EngineEvent) -> Option<EngineUpdate> {
    Some(match event {
        EngineEvent::Observed {
            observation,
            violations,
        } => EngineUpdate::Observed {
            nodes: observation.nodes,
            workload: observation.workload,
            violations,
        },
        EngineEvent::ObservationFailed { error } => EngineUpdate::ObservationFailed(error),
        EngineEvent::TicketChanged(t) => EngineUpdate::Ticket(ticket_row(&t)),
        // A question's reasoning has no ticket to show it under; its answer arrives whole.
        EngineEvent::Reasoning {
            about: ReasoningFor::Question,
            ..
        } => return None,
        EngineEvent::Reasoning {
            about: ReasoningFor::Ticket(ticket),
            event,
        } => EngineUpdate::Reasoning {
            ticket: ticket.0,
            event,
        },
        EngineEvent::DiagnosisReady { ticket, diagnosis } => EngineUpdate::Diagnosis {
            ticket: ticket.0,
            diagnosis,
        },
        EngineEvent::DiagnosisRefused { ticket, reason } => EngineUpdate::DiagnosisRefused {
            ticket: ticket.0,
            reason,
        },
        EngineEvent::ActionChanged(a) => EngineUpdate::Action(action_row(&a)),
        EngineEvent::ChaosInjected {
            name,
            target,
            summary,
        } => EngineUpdate::Notice(format!("chaos {name} on {target}: {summary}")),
        EngineEvent::ChaosFailed { name, error } => {
            EngineUpdate::Notice(format!("chaos {name} failed: {error}"))
        }
        EngineEvent::Settings { mode, kill_switch } => EngineUpdate::Settings { mode, kill_switch },
        EngineEvent::Notice(text) => EngineUpdate::Notice(text),
        EngineEvent::Answer { question, answer } => EngineUpdate::Answer(match answer {
            Ok(text) => format!("“{question}” {text}"),
            Err(why) => format!("“{question}”: no answer: {why}"),
        }),
    })
}
