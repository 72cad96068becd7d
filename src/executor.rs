//! The executor: moves actions through their lifecycle, and is where safety lives. Every
//! action is validated against the catalog, gated by the mode and the kill switch, checked by
//! the blast-radius policy, retried with backoff, and chained in workflows. When a ticket's
//! actions have all completed it goes to verification.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use color_eyre::eyre::Result;
use operator_protocol::{ActionRequest, NodeId, Risk};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::retry_delay;
use crate::engine::{ActionResult, Core, Finished};
use crate::general_actions;
use crate::model::*;
use crate::policy::{self, PolicyInput, Verdict};
use crate::store::ActionUpdate;
use crate::validate::{disrupted_node, validate_request};

struct Running {
    token: CancellationToken,
    disrupts: Option<NodeId>,
    disruptive: bool,
}

#[derive(Default)]
pub struct Executor {
    running: HashMap<ActionId, Running>,
    /// Nodes disrupted by finished actions, and when they finished.
    recent_disruptions: Vec<(NodeId, u64)>,
}

fn request_of(action: &Action) -> ActionRequest {
    ActionRequest {
        action: action.name.clone(),
        params: action.params.clone().into_iter().collect(),
    }
}

fn move_action(
    core: &mut Core,
    action: &Action,
    to: ActionStatus,
    cause: Cause,
    detail: &str,
    update: ActionUpdate,
) -> Result<bool> {
    let now = core.now();
    let moved =
        core.store
            .transition_action(action.id, action.status, to, cause, detail, now, update)?;
    if moved {
        core.emit_action(action.id);
    }
    Ok(moved)
}

fn fail(core: &mut Core, action: &Action, cause: Cause, reason: &str) -> Result<bool> {
    let update = ActionUpdate {
        error: Some(reason.to_string()),
        ..Default::default()
    };
    move_action(core, action, ActionStatus::Failed, cause, reason, update)
}

fn cancel_now(core: &mut Core, action: &Action, cause: Cause, reason: &str) -> Result<bool> {
    let update = ActionUpdate {
        error: Some(reason.to_string()),
        ..Default::default()
    };
    move_action(core, action, ActionStatus::Cancelled, cause, reason, update)
}

/// Actions still waiting on a ticket that resolved are moot.
pub(crate) fn cancel_leftovers(core: &mut Core, ticket: TicketId) -> Result<()> {
    for action in core.store.live_actions()? {
        if action.ticket_id == Some(ticket) && action.status != ActionStatus::Executing {
            cancel_now(
                core,
                &action,
                Cause::Engine,
                "the ticket resolved before this ran",
            )?;
        }
    }
    Ok(())
}

/// Brings a ticket's status in line with its actions.
fn refresh_ticket(core: &mut Core, id: TicketId) -> Result<()> {
    let Some(ticket) = core.store.ticket(id)? else {
        return Ok(());
    };
    if !matches!(
        ticket.status,
        TicketStatus::Diagnosed | TicketStatus::Acting
    ) {
        return Ok(());
    }
    let actions = core.store.actions(Some(id), 100)?;
    if actions.is_empty() {
        return Ok(());
    }
    let now = core.now();
    let all_final = actions.iter().all(|a| a.status.is_final());
    let next = if actions.iter().any(|a| a.status == ActionStatus::Executing) {
        (ticket.status != TicketStatus::Acting).then_some((TicketStatus::Acting, None))
    } else if actions.iter().all(|a| a.status == ActionStatus::Completed) {
        Some((
            TicketStatus::Verifying,
            Some("every action completed; verifying that the fix holds".to_string()),
        ))
    } else if all_final {
        actions
            .iter()
            .rev()
            .find(|a| matches!(a.status, ActionStatus::Failed | ActionStatus::Cancelled))
            .map(|bad| {
                let why = format!(
                    "action {} {} {}: {}",
                    bad.id,
                    bad.name,
                    bad.status,
                    bad.error.clone().unwrap_or_default()
                );
                (TicketStatus::Escalated, Some(why))
            })
    } else {
        None
    };
    if let Some((status, reason)) = next {
        core.store
            .set_ticket_status(id, status, Cause::Executor, reason.as_deref(), now)?;
        core.emit_ticket(id);
    }
    Ok(())
}

impl Executor {
    pub(crate) fn step(&mut self, core: &mut Core) -> Result<()> {
        let now = core.now();
        let memory = core.config.disruption_memory.as_millis() as u64;
        self.recent_disruptions
            .retain(|(_, at)| now.saturating_sub(*at) <= memory);
        let live = core.store.live_actions()?;
        let mut touched = BTreeSet::new();
        for action in &live {
            if let Some(ticket) = action.ticket_id {
                touched.insert(ticket);
            }
            match action.status {
                ActionStatus::Proposed => self.validate(core, action)?,
                ActionStatus::Validated => self.gate(core, action, &live)?,
                ActionStatus::Executing => {
                    if action.approval == Some(Approval::Rejected)
                        && let Some(running) = self.running.get(&action.id)
                    {
                        running.token.cancel();
                    }
                }
                _ => {}
            }
        }
        for ticket in touched {
            refresh_ticket(core, ticket)?;
        }
        Ok(())
    }

    fn validate(&mut self, core: &mut Core, action: &Action) -> Result<()> {
        if core.kill_switch {
            cancel_now(core, action, Cause::Policy, "the kill switch is on")?;
            return Ok(());
        }
        match validate_request(&core.catalog, &request_of(action), &core.nodes()) {
            Ok(()) => move_action(
                core,
                action,
                ActionStatus::Validated,
                Cause::Executor,
                "parameters valid",
                ActionUpdate::default(),
            )?,
            Err(reason) => fail(core, action, Cause::Executor, &format!("invalid: {reason}"))?,
        };
        Ok(())
    }

    fn gate(&mut self, core: &mut Core, action: &Action, live: &[Action]) -> Result<()> {
        let now = core.now();
        if core.kill_switch {
            cancel_now(core, action, Cause::Policy, "the kill switch is on")?;
            return Ok(());
        }
        let ticket = match action.ticket_id {
            Some(id) => core.store.ticket(id)?,
            None => None,
        };
        if ticket
            .as_ref()
            .is_some_and(|t| t.status == TicketStatus::Held)
        {
            return Ok(());
        }
        if action.approval == Some(Approval::Rejected) {
            cancel_now(core, action, Cause::Human, "rejected by a human")?;
            return Ok(());
        }
        if let Some(dependency) = action.depends_on {
            let status = match live.iter().find(|a| a.id == dependency) {
                Some(a) => a.status,
                None => core
                    .store
                    .action(dependency)?
                    .map(|a| a.status)
                    .unwrap_or(ActionStatus::Cancelled),
            };
            match status {
                ActionStatus::Completed => {}
                ActionStatus::Failed | ActionStatus::Cancelled => {
                    cancel_now(
                        core,
                        action,
                        Cause::Executor,
                        &format!("step {dependency} did not complete"),
                    )?;
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
        if action.not_before_ms.is_some_and(|t| t > now) {
            return Ok(());
        }
        match core.mode {
            Mode::Observe => return Ok(()),
            Mode::Approve if action.approval != Some(Approval::Approved) => return Ok(()),
            _ => {}
        }
        let spec = core.catalog.iter().find(|s| s.name == action.name).cloned();
        let Some(spec) = spec else {
            fail(core, action, Cause::Executor, "the action left the catalog")?;
            return Ok(());
        };
        let request = request_of(action);
        let node = disrupted_node(&spec, &request);
        let started: u32 = match action.ticket_id {
            Some(t) => core
                .store
                .actions(Some(t), 100)?
                .iter()
                .map(|a| a.attempts)
                .sum(),
            None => 0,
        };
        let down = core.down_nodes();
        let recently: BTreeSet<NodeId> = self
            .recent_disruptions
            .iter()
            .map(|(n, _)| n.clone())
            .chain(self.running.values().filter_map(|r| r.disrupts.clone()))
            .collect();
        let verdict = policy::evaluate(&PolicyInput {
            disruptive: spec.risk == Risk::Disruptive,
            node: node.as_ref(),
            cluster_nodes: core.nodes().len(),
            down: &down,
            recently_disrupted: &recently,
            disruptive_running: self.running.values().filter(|r| r.disruptive).count(),
            ticket_actions_started: started,
            ticket_action_budget: core.config.ticket_action_budget,
        });
        match verdict {
            Verdict::Wait(_) => Ok(()),
            Verdict::Refuse(reason) => {
                fail(core, action, Cause::Policy, &format!("policy: {reason}"))?;
                Ok(())
            }
            Verdict::Allow => {
                self.launch(core, action, request, node, spec.risk == Risk::Disruptive)
            }
        }
    }

    fn launch(
        &mut self,
        core: &mut Core,
        action: &Action,
        request: ActionRequest,
        node: Option<NodeId>,
        disruptive: bool,
    ) -> Result<()> {
        let update = ActionUpdate {
            count_attempt: true,
            not_before_ms: Some(None),
            ..Default::default()
        };
        let detail = format!(
            "attempt {} of {} ({} mode)",
            action.attempts + 1,
            action.max_attempts,
            core.mode
        );
        if !move_action(
            core,
            action,
            ActionStatus::Executing,
            Cause::Executor,
            &detail,
            update,
        )? {
            return Ok(());
        }
        let token = CancellationToken::new();
        core.disrupting.extend(node.clone());
        self.running.insert(
            action.id,
            Running {
                token: token.clone(),
                disrupts: node,
                disruptive,
            },
        );
        let subject = core.subject.clone();
        let target = core.target.clone();
        let finished = core.finished.clone();
        let id = action.id;
        tokio::spawn(async move {
            let work = async {
                if general_actions::is_general(&request.action) {
                    general_actions::run(&request).await
                } else {
                    subject
                        .execute(&request, &*target)
                        .await
                        .map_err(|e| e.to_string())
                }
            };
            let result = tokio::select! {
                r = work => ActionResult::Done(r),
                _ = token.cancelled() => ActionResult::Cancelled,
            };
            let _ = finished.send(Finished::Action { id, result });
        });
        if let Some(ticket) = action.ticket_id {
            refresh_ticket(core, ticket)?;
        }
        Ok(())
    }

    pub(crate) fn finish(
        &mut self,
        core: &mut Core,
        id: ActionId,
        result: ActionResult,
    ) -> Result<()> {
        let now = core.now();
        if let Some(running) = self.running.remove(&id)
            && let Some(node) = running.disrupts
        {
            core.disrupting.remove(&node);
            self.recent_disruptions.push((node, now));
        }
        let Some(action) = core.store.action(id)? else {
            return Ok(());
        };
        match result {
            ActionResult::Done(Ok(outcome)) => {
                let update = ActionUpdate {
                    outcome: Some(outcome.summary.clone()),
                    ..Default::default()
                };
                move_action(
                    core,
                    &action,
                    ActionStatus::Completed,
                    Cause::Executor,
                    &outcome.summary,
                    update,
                )?;
                if action.name == general_actions::LOG_MESSAGE {
                    core.store.audit_event(
                        Cause::Brain,
                        action.ticket_id,
                        "log_message",
                        &outcome.summary,
                        now,
                    )?;
                }
            }
            ActionResult::Done(Err(error))
                if action.attempts < action.max_attempts && !core.kill_switch =>
            {
                let delay = retry_delay(
                    action.attempts,
                    core.config.retry_base,
                    core.config.retry_cap,
                    fastrand::f64(),
                );
                let detail = format!(
                    "attempt {} failed: {error}; retrying in {} ms",
                    action.attempts,
                    delay.as_millis()
                );
                let update = ActionUpdate {
                    not_before_ms: Some(Some(now + delay.as_millis() as u64)),
                    error: Some(error),
                    ..Default::default()
                };
                move_action(
                    core,
                    &action,
                    ActionStatus::Validated,
                    Cause::Executor,
                    &detail,
                    update,
                )?;
            }
            ActionResult::Done(Err(error)) => {
                fail(
                    core,
                    &action,
                    Cause::Executor,
                    &format!("failed after {} attempt(s): {error}", action.attempts),
                )?;
            }
            ActionResult::Cancelled => {
                let (cause, why) = if core.kill_switch {
                    (Cause::Policy, "stopped by the kill switch")
                } else if action.approval == Some(Approval::Rejected) {
                    (Cause::Human, "cancelled by a human while running")
                } else {
                    (Cause::Engine, "cancelled: the engine is shutting down")
                };
                cancel_now(core, &action, cause, why)?;
            }
        }
        if let Some(ticket) = action.ticket_id {
            refresh_ticket(core, ticket)?;
        }
        Ok(())
    }

    /// Cancels one action at a human's request.
    pub(crate) fn cancel(&mut self, core: &mut Core, id: ActionId, cause: Cause) -> Result<()> {
        let now = core.now();
        if let Some(running) = self.running.get(&id) {
            core.store
                .set_approval(id, Approval::Rejected, cause, now)?;
            running.token.cancel();
        } else if let Some(action) = core.store.action(id)?.filter(|a| !a.status.is_final()) {
            cancel_now(core, &action, cause, "cancelled by a human")?;
        }
        Ok(())
    }

    /// Stops everything at once: running actions are cancelled, waiting ones too.
    pub(crate) fn engage_kill_switch(&mut self, core: &mut Core) -> Result<()> {
        for running in self.running.values() {
            running.token.cancel();
        }
        for action in core.store.live_actions()? {
            if action.status != ActionStatus::Executing {
                cancel_now(core, &action, Cause::Policy, "the kill switch is on")?;
            }
        }
        tracing::warn!(running = self.running.len(), "kill switch engaged");
        Ok(())
    }

    /// On shutdown, running actions are cancelled and recorded as such before the loop ends.
    pub(crate) async fn shutdown(
        &mut self,
        core: &mut Core,
        finished: &mut mpsc::UnboundedReceiver<Finished>,
    ) -> Result<()> {
        for running in self.running.values() {
            running.token.cancel();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.running.is_empty() {
            match tokio::time::timeout_at(deadline, finished.recv()).await {
                Ok(Some(Finished::Action { id, result })) => self.finish(core, id, result)?,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        Ok(())
    }
}
