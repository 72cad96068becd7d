//! The agent's half of the loop: hand open tickets to the brain (a bounded few at a time),
//! stream its reasoning out as events, then check what it concluded before proposing any
//! action. A brain that fails, times out or says something invalid escalates the ticket.

use std::sync::{Arc, Mutex};

use color_eyre::eyre::Result;
use operator_protocol::{
    BoxFuture, ContractResult, DeploymentTarget, Diagnosis, DiagnosisContext, ReasoningEvent,
    ReasoningSink, Subject, TicketBrief, ToolBox, ToolCall, ToolSpec,
};
use tokio::sync::broadcast;

use crate::engine::{Core, Finished};
use crate::events::EngineEvent;
use crate::model::*;
use crate::store::NewAction;
use crate::validate::validate_diagnosis;

/// The subject's read-only tools, as brains see them.
pub struct SubjectTools(pub Arc<dyn Subject>, pub Arc<dyn DeploymentTarget>);

impl ToolBox for SubjectTools {
    fn specs(&self) -> Vec<ToolSpec> {
        self.0.tools()
    }

    fn call<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        self.0.call_tool(call, &*self.1)
    }
}

/// Streams reasoning to front ends and keeps the transcript for the store.
pub struct EventSink {
    pub ticket: TicketId,
    pub events: broadcast::Sender<EngineEvent>,
    pub transcript: Mutex<String>,
}

impl ReasoningSink for EventSink {
    fn emit(&self, event: ReasoningEvent) {
        if let ReasoningEvent::Text { text } = &event {
            self.transcript
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_str(text);
        }
        let _ = self.events.send(EngineEvent::Reasoning {
            ticket: self.ticket,
            event,
        });
    }
}

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

pub(crate) fn start_diagnoses(core: &mut Core) -> Result<()> {
    if core.diagnosing.len() >= core.config.max_parallel_diagnoses {
        return Ok(());
    }
    let now = core.now();
    for ticket in core.store.active_tickets()? {
        if core.diagnosing.len() >= core.config.max_parallel_diagnoses {
            break;
        }
        if ticket.status != TicketStatus::Open || core.diagnosing.contains(&ticket.id) {
            continue;
        }
        core.store.set_ticket_status(
            ticket.id,
            TicketStatus::Diagnosing,
            Cause::Engine,
            None,
            now,
        )?;
        core.emit_ticket(ticket.id);
        core.diagnosing.insert(ticket.id);
        let context = DiagnosisContext {
            subject: core.subject.name().to_string(),
            ticket: brief(&ticket),
            observation: core.last_observation.clone(),
            runbook: core.subject.runbook(),
            actions: core.catalog.clone(),
            tools: core.subject.tools(),
        };
        let brain = core.brain.clone();
        let tools = SubjectTools(core.subject.clone(), core.target.clone());
        let sink = EventSink {
            ticket: ticket.id,
            events: core.events.clone(),
            transcript: Mutex::new(String::new()),
        };
        let finished = core.finished.clone();
        let timeout = core.config.brain_timeout;
        let id = ticket.id;
        tokio::spawn(async move {
            let result = match tokio::time::timeout(
                timeout,
                brain.diagnose(&context, &tools, &sink),
            )
            .await
            {
                Ok(Ok(diagnosis)) => Ok(diagnosis),
                Ok(Err(error)) => Err(format!("the brain failed: {error}")),
                Err(_) => Err(format!(
                    "the brain did not answer within {} s",
                    timeout.as_secs()
                )),
            };
            let reasoning = sink
                .transcript
                .into_inner()
                .unwrap_or_else(|p| p.into_inner());
            let _ = finished.send(Finished::Diagnosed {
                ticket: id,
                brain: brain.name(),
                reasoning,
                result,
            });
        });
    }
    Ok(())
}

pub(crate) fn accept_diagnosis(
    core: &mut Core,
    id: TicketId,
    brain: &str,
    reasoning: &str,
    result: Result<Diagnosis, String>,
) -> Result<()> {
    let now = core.now();
    let Some(ticket) = core.store.ticket(id)? else {
        return Ok(());
    };
    let body = match &result {
        Ok(d) => serde_json::to_value(d).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e }),
    };
    let refusal = match &result {
        _ if ticket.status == TicketStatus::Resolved => {
            Some("it arrived after the ticket was resolved".to_string())
        }
        _ if ticket.status != TicketStatus::Diagnosing => Some(format!(
            "the ticket is {} now, no longer waiting for a diagnosis",
            ticket.status
        )),
        Err(e) => Some(e.clone()),
        Ok(d) => validate_diagnosis(d, &core.catalog, &core.nodes()).err(),
    };
    core.store
        .insert_diagnosis(id, brain, &body, reasoning, refusal.as_deref(), now)?;
    if let Some(reason) = refusal {
        tracing::warn!(ticket = id.0, %reason, "diagnosis refused");
        core.emit(EngineEvent::DiagnosisRefused {
            ticket: id,
            reason: reason.clone(),
        });
        if ticket.status == TicketStatus::Diagnosing {
            let why = format!("diagnosis refused: {reason}");
            core.store.set_ticket_status(
                id,
                TicketStatus::Escalated,
                Cause::Engine,
                Some(&why),
                now,
            )?;
            core.emit_ticket(id);
        }
        return Ok(());
    }
    let diagnosis = result.expect("refused above when it was an error");
    core.store.set_ticket_status(
        id,
        TicketStatus::Diagnosed,
        Cause::Brain,
        Some(&diagnosis.summary),
        now,
    )?;
    core.emit(EngineEvent::DiagnosisReady {
        ticket: id,
        diagnosis: Box::new(diagnosis.clone()),
    });
    if diagnosis.recommended_actions.is_empty() {
        core.store.set_ticket_status(
            id,
            TicketStatus::Escalated,
            Cause::Brain,
            Some("the diagnosis recommends no action"),
            now,
        )?;
        core.emit_ticket(id);
        return Ok(());
    }
    // The recommended actions form a workflow: each step waits for the one before it.
    let mut previous = None;
    for step in &diagnosis.recommended_actions {
        let spec = core
            .catalog
            .iter()
            .find(|s| s.name == step.action)
            .expect("validated");
        let new = NewAction {
            ticket_id: Some(id),
            name: step.action.clone(),
            params: step.params.clone().into_iter().collect(),
            rationale: step.rationale.clone(),
            risk: spec.risk,
            max_attempts: core.config.max_attempts,
            depends_on: previous,
            not_before_ms: step.after_ms.map(|after| now + after),
        };
        let action = core.store.insert_action(&new, Cause::Brain, now)?;
        core.emit_action(action);
        previous = Some(action);
    }
    core.emit_ticket(id);
    Ok(())
}
