//! The executor: moves actions through their lifecycle, and is where safety lives. Every
//! action is validated against the catalog, gated by the kill switch, a held ticket, its
//! workflow's order, its schedule, the mode, the confidence its risk needs and the
//! blast-radius policy; its premises are re-checked right before it runs; it is retried with
//! backoff only when its error says a retry can help. When a ticket's actions have all
//! completed it goes to verification.

use std::collections::{BTreeMap, BTreeSet};

use operator_protocol::{ActionRequest, ActionSpec, Millis, NEEDS_A_HUMAN, NodeId, Risk};

use super::backoff::retry_delay;
use super::effect::{ActionResult, Effect, Write};
use super::general_actions;
use super::policy::{self, PolicyInput, Verdict};
use super::state::EngineState;
use super::validate::validate_request;
use crate::model::*;
use crate::store::ActionUpdate;

pub fn request_of(action: &Action) -> ActionRequest {
    ActionRequest {
        action: action.name.clone(),
        params: action.params.clone().into_iter().collect(),
    }
}

fn transition(
    action: &Action,
    to: ActionStatus,
    cause: Cause,
    detail: impl Into<String>,
    update: ActionUpdate,
) -> Effect {
    Effect::Write(Write::ActionTransition {
        id: action.id,
        from: action.status,
        to,
        cause,
        detail: detail.into(),
        update,
    })
}

fn with_error(
    action: &Action,
    to: ActionStatus,
    cause: Cause,
    reason: impl Into<String>,
) -> Effect {
    let reason = reason.into();
    let update = ActionUpdate {
        error: Some(reason.clone()),
        ..Default::default()
    };
    transition(action, to, cause, reason, update)
}

fn fail(action: &Action, cause: Cause, reason: impl Into<String>) -> Effect {
    with_error(action, ActionStatus::Failed, cause, reason)
}

fn cancel(action: &Action, cause: Cause, reason: impl Into<String>) -> Effect {
    with_error(action, ActionStatus::Cancelled, cause, reason)
}

/// What this pass has launched so far: the policy must count it before the state shows it.
struct Launched {
    disruptive: usize,
    nodes: BTreeSet<NodeId>,
    attempts: BTreeMap<TicketId, u32>,
}

/// One pass over every live action, then every ticket's progress.
pub fn advance(state: &EngineState, now: Millis) -> Vec<Effect> {
    let mut effects = Vec::new();
    let mut launched = Launched {
        disruptive: 0,
        nodes: BTreeSet::new(),
        attempts: BTreeMap::new(),
    };
    for action in state.live_actions() {
        match action.status {
            // Validated and gated in one pass: a valid action's gates are asked at once.
            ActionStatus::Proposed => match validate(state, action) {
                Validation::Valid(valid) => {
                    effects.push(valid);
                    let validated = Action {
                        status: ActionStatus::Validated,
                        ..action.clone()
                    };
                    effects.extend(gate(state, &validated, now, &mut launched));
                }
                Validation::Ended(invalid) => effects.push(invalid),
            },
            ActionStatus::Validated => effects.extend(gate(state, action, now, &mut launched)),
            ActionStatus::Executing => {
                let stop = state.kill_switch || action.approval == Some(Approval::Rejected);
                if stop && state.running.contains_key(&action.id) {
                    effects.push(Effect::CancelRunning(action.id));
                }
            }
            _ => {}
        }
    }
    for ticket in &state.tickets {
        effects.extend(progress(state, ticket));
    }
    effects
}

/// A proposed action's move to validated, or the write that ends it here.
enum Validation {
    Valid(Effect),
    Ended(Effect),
}

fn validate(state: &EngineState, action: &Action) -> Validation {
    if state.kill_switch {
        return Validation::Ended(cancel(action, Cause::Policy, "the kill switch is on"));
    }
    match validate_request(&state.catalog, &request_of(action), Some(&state.nodes())) {
        Ok(()) => Validation::Valid(transition(
            action,
            ActionStatus::Validated,
            Cause::Executor,
            "parameters valid",
            ActionUpdate::default(),
        )),
        Err(reason) => {
            Validation::Ended(fail(action, Cause::Executor, format!("invalid: {reason}")))
        }
    }
}

/// Every node an action names or takes out.
fn touched_nodes<'a>(
    spec: &'a ActionSpec,
    request: &'a ActionRequest,
) -> impl Iterator<Item = NodeId> + 'a {
    spec.objects(request)
        .map(NodeId::from)
        .chain(spec.disrupted_node(request))
}

/// A ticket handed to a person is theirs: what its plan still holds waits for their approval
/// (an undo of the operator's own action excepted: undoing what made things worse is never
/// a person's chore).
fn handed_over(ticket: Option<&Ticket>, action: &Action) -> Option<String> {
    let ticket = ticket.filter(|t| t.status == TicketStatus::Escalated)?;
    action.undoes.is_none().then(|| {
        format!(
            "ticket #{} went to a person ({}): its remaining steps wait for their approval",
            ticket.id.0,
            ticket.reason.as_deref().unwrap_or("escalated")
        )
    })
}

/// One action at the gates that ask about its ticket, its catalog entry and its request.
#[derive(Clone, Copy)]
struct AtTheGate<'a> {
    state: &'a EngineState,
    ticket: Option<&'a Ticket>,
    action: &'a Action,
    spec: &'a ActionSpec,
    request: &'a ActionRequest,
    now: Millis,
}

/// A gate either lets the action through to the next, or stops it here with what to write
/// (nothing, to look again on a later pass).
type Gate<T = ()> = Result<T, Vec<Effect>>;

/// The gates between validated and executing, in the order a person would ask them.
fn gate(state: &EngineState, action: &Action, now: Millis, launched: &mut Launched) -> Vec<Effect> {
    let mut effects = Vec::new();
    let passed = (|| {
        not_stopped(state, action)?;
        let ticket = action.ticket_id.and_then(|id| state.ticket(id));
        not_held(state, ticket, now)?;
        not_rejected(action)?;
        after_its_dependency(state, action)?;
        on_schedule(action, now)?;
        let spec = in_the_catalog(state, action)?;
        not_read_only(state, action)?;
        let request = request_of(action);
        let at = AtTheGate {
            state,
            ticket,
            action,
            spec,
            request: &request,
            now,
        };
        not_a_persons_unfinished_work(&at)?;
        nothing_to_wait_for(&at, &mut effects)?;
        mode_allows(state, action)?;
        Ok(launch(state, action, spec, request, now, launched))
    })();
    match passed {
        Ok(launch) | Err(launch) => {
            effects.extend(launch);
            effects
        }
    }
}

fn not_stopped(state: &EngineState, action: &Action) -> Gate {
    if state.kill_switch {
        return Err(vec![cancel(action, Cause::Policy, "the kill switch is on")]);
    }
    Ok(())
}

/// A held ticket, or a symptom waiting for its cause, runs nothing yet.
fn not_held(state: &EngineState, ticket: Option<&Ticket>, now: Millis) -> Gate {
    if ticket.is_some_and(|t| t.status == TicketStatus::Held || state.waits_for_its_cause(t, now)) {
        return Err(vec![]);
    }
    Ok(())
}

fn not_rejected(action: &Action) -> Gate {
    if action.approval == Some(Approval::Rejected) {
        return Err(vec![cancel(action, Cause::Human, "rejected by a human")]);
    }
    Ok(())
}

/// A workflow's step runs after the one it depends on completed, and not if that one failed.
fn after_its_dependency(state: &EngineState, action: &Action) -> Gate {
    let Some(dependency) = action.depends_on else {
        return Ok(());
    };
    let status = state
        .action(dependency)
        .map_or(ActionStatus::Cancelled, |a| a.status);
    match status {
        ActionStatus::Completed => Ok(()),
        ActionStatus::Failed | ActionStatus::Cancelled => Err(vec![cancel(
            action,
            Cause::Executor,
            format!("step {dependency} did not complete"),
        )]),
        _ => Err(vec![]),
    }
}

/// A retry's backoff, or a wait for a trouble to pass, ends at `not_before`.
fn on_schedule(action: &Action, now: Millis) -> Gate {
    match action.not_before_ms.filter(|at| *at > now) {
        Some(at) => Err(vec![Effect::WakeAt(at)]),
        None => Ok(()),
    }
}

fn in_the_catalog<'a>(state: &'a EngineState, action: &Action) -> Gate<&'a ActionSpec> {
    state
        .spec(&action.name)
        .ok_or_else(|| vec![fail(action, Cause::Executor, "the action left the catalog")])
}

/// A read-only operator never acts: what it would have done stays on screen, and why not.
fn not_read_only(state: &EngineState, action: &Action) -> Gate {
    if !state.config.read_only {
        return Ok(());
    }
    let reason = Some("read-only: this operator never acts (started with --read-only)".to_string());
    Err(waiting_changed(action, reason, Cause::Policy)
        .into_iter()
        .collect())
}

/// A person's work that outlasts the grace (a node stopped on purpose and not started again)
/// is theirs to finish: the ticket goes to a person rather than wait forever.
fn not_a_persons_unfinished_work(at: &AtTheGate) -> Gate {
    let AtTheGate {
        state,
        ticket,
        action,
        spec,
        request,
        now,
    } = *at;
    if action.approval == Some(Approval::Approved) {
        return Ok(());
    }
    let ticket = ticket.filter(|t| t.status != TicketStatus::Escalated);
    let outlasting = touched_nodes(spec, request).find_map(|n| {
        state
            .a_persons_work_outlasting_grace(&n.0, now)
            .map(|w| (n, w))
    });
    let (Some(ticket), Some((node, work))) = (ticket, outlasting) else {
        return Ok(());
    };
    Err(vec![super::agent::escalate(
        ticket.id,
        Cause::Executor,
        format!(
            "{NEEDS_A_HUMAN}: {node} is still someone else's work ({}) after {} s: the operator hands it over rather than race them",
            work.what,
            state.config.person_grace.as_secs()
        ),
    )])
}

/// What execute mode waits for before acting on its own, first found first said: a person's
/// ticket, a person's decision, too little confidence, a trouble not seen now, a stop that
/// may pass by itself. The reason is written when it changes; `effects` keeps it either way.
fn nothing_to_wait_for(at: &AtTheGate, effects: &mut Vec<Effect>) -> Gate {
    let AtTheGate {
        state,
        ticket,
        action,
        spec,
        request,
        now,
    } = *at;
    if state.mode == Mode::Observe || action.approval == Some(Approval::Approved) {
        return Ok(());
    }
    // Whatever the diagnosis called it, a process that is stopped now, or runs without
    // answering, may be back (or cleanly gone) by itself in a moment: nothing acts on it
    // before that has lasted the watch period without a break.
    let passing = touched_nodes(spec, request)
        .find_map(|n| state.stop_may_pass(&n, now).map(|until| (n, until)));
    let reason = handed_over(ticket, action)
        .or_else(|| for_a_person(state, action, spec, now))
        .or_else(|| confidence_gate(state, action, spec.risk))
        .or_else(|| destroys_for_trouble_not_seen(ticket, action, spec))
        .or_else(|| {
            passing.as_ref().map(|(node, _)| {
                format!(
                    "watching: {node} is stopped or does not answer, which may pass by itself; {} waits until that has lasted {} s",
                    action.name,
                    state.config.watch_period.as_secs()
                )
            })
        });
    let waits = reason.is_some();
    effects.extend(waiting_changed(action, reason, Cause::Executor));
    if waits {
        return Err(passing
            .map(|(_, until)| Effect::WakeAt(until))
            .into_iter()
            .collect());
    }
    Ok(())
}

/// The write that shows why an action waits, when that changed.
fn waiting_changed(action: &Action, reason: Option<String>, cause: Cause) -> Option<Effect> {
    let changed = reason != action.waiting;
    changed.then_some(Effect::Write(Write::ActionWaiting {
        id: action.id,
        reason,
        cause,
    }))
}

/// Observe mode never acts; approve mode acts on what a person approved.
fn mode_allows(state: &EngineState, action: &Action) -> Gate {
    let approved = action.approval == Some(Approval::Approved);
    match state.mode {
        Mode::Observe => Err(vec![]),
        Mode::Approve if !approved => Err(vec![]),
        _ => Ok(()),
    }
}

/// The blast-radius policy has the last word; what it allows is launched.
fn launch(
    state: &EngineState,
    action: &Action,
    spec: &ActionSpec,
    request: ActionRequest,
    now: Millis,
    launched: &mut Launched,
) -> Vec<Effect> {
    let node = spec.disrupted_node(&request);
    let disruptive = spec.risk.is_disruptive();
    let started: u32 = action.ticket_id.map_or(0, |t| {
        state.ticket_actions(t).map(|a| a.attempts).sum::<u32>()
            + launched.attempts.get(&t).copied().unwrap_or(0)
    });
    let mut recently = state.recently_disrupted(now);
    recently.extend(launched.nodes.iter().cloned());
    let disruptive_running =
        state.running.values().filter(|r| r.disruptive).count() + launched.disruptive;
    let verdict = policy::evaluate(&PolicyInput {
        disruptive,
        node: node.as_ref(),
        cluster_nodes: state.nodes().len(),
        down: &state.down_nodes(),
        recently_disrupted: &recently,
        disruptive_running,
        ticket_actions_started: started,
        ticket_action_budget: state.config.ticket_action_budget,
    });
    match verdict {
        Verdict::Wait(_) => vec![],
        Verdict::Refuse(reason) => vec![fail(action, Cause::Policy, format!("policy: {reason}"))],
        Verdict::Allow => {
            launched.disruptive += usize::from(disruptive);
            launched.nodes.extend(node.clone());
            if let Some(t) = action.ticket_id {
                *launched.attempts.entry(t).or_default() += 1;
            }
            let update = ActionUpdate {
                count_attempt: true,
                not_before_ms: Some(None),
                ..Default::default()
            };
            let detail = format!(
                "attempt {} of {} ({} mode)",
                action.attempts + 1,
                action.max_attempts,
                state.mode
            );
            let approved = action.approval == Some(Approval::Approved);
            vec![
                transition(
                    action,
                    ActionStatus::Executing,
                    Cause::Executor,
                    detail,
                    update,
                ),
                Effect::RunAction {
                    id: action.id,
                    request,
                    disrupts: node,
                    disruptive,
                    // A human who typed the target's name takes the premises on themselves.
                    premises: if action.premises_overridden {
                        Vec::new()
                    } else {
                        spec.premises.clone()
                    },
                    reversal: spec.reversal.clone(),
                    // Taking back the operator's own action restores what was there.
                    on_its_own: !approved && action.undoes.is_none(),
                },
            ]
        }
    }
}

/// What only a person decides, whatever the mode and whoever recommended it: loosening a
/// protection, and acting on something the ticket's evidence never named (a node-crash ticket
/// answered with another key's limit). Taking back the operator's own action restores what was
/// there, and passes.
fn for_a_person(
    state: &EngineState,
    action: &Action,
    spec: &ActionSpec,
    now: Millis,
) -> Option<String> {
    if action.undoes.is_some() {
        return None;
    }
    if let Some(what) = &spec.loosens {
        return Some(format!(
            "waiting for a human: {} loosens a protection ({what}); only a person decides that",
            spec.name
        ));
    }
    let request = request_of(action);
    for node in touched_nodes(spec, &request) {
        if let Some((work, ago)) = state.a_persons_work(&node.0, now) {
            return Some(format!(
                "waiting for a human: {node} is someone else's work ({}, seen {:.0} s ago): whoever did it is likely not done, and the operator does not race or revert them",
                work.what,
                ago as f64 / 1000.0
            ));
        }
    }
    let ticket = state.ticket(action.ticket_id?)?;
    let outside: Vec<&str> = spec
        .objects(&request)
        .filter(|name| !state.incident_names(ticket, name))
        .collect();
    (!outside.is_empty()).then(|| {
        format!(
            "waiting for a human: {} is not in the evidence of ticket {} or its incident",
            outside.join(", "),
            ticket.id
        )
    })
}

/// Nothing is destroyed on the operator's own for a trouble the latest observation did not
/// show: it may have passed (a drift whose window ended), and then the ticket resolves and
/// the action is dropped; if it shows again, the action is weighed again.
fn destroys_for_trouble_not_seen(
    ticket: Option<&Ticket>,
    action: &Action,
    spec: &ActionSpec,
) -> Option<String> {
    let ticket = ticket.filter(|t| t.clean_checks > 0 && action.undoes.is_none())?;
    let destroys = spec.destroys.as_deref()?;
    Some(format!(
        "waiting: {} on {} was not seen on the last {} check(s); {} would destroy {destroys}",
        ticket.invariant, ticket.target, ticket.clean_checks, spec.name
    ))
}

/// Why execute mode may not run this action on its own: the diagnosis that recommended it is
/// not confident enough for what the action risks. A human's own action carries no confidence
/// and passes; approval overrides the gate.
fn confidence_gate(state: &EngineState, action: &Action, risk: Risk) -> Option<String> {
    let confidence = action.confidence?;
    let needed = state.config.confidence_gates.for_risk(risk);
    (confidence < needed).then(|| {
        format!(
            "waiting for a human: confidence {:.0} % < {:.0} % for a {} action",
            confidence * 100.0,
            needed * 100.0,
            risk.as_str().replace('_', "-")
        )
    })
}

/// Brings a ticket's status in line with its actions: acting while one runs, verifying when
/// all completed, escalated when the workflow ended in a failure or a cancellation.
fn progress(state: &EngineState, ticket: &Ticket) -> Option<Effect> {
    if !matches!(
        ticket.status,
        TicketStatus::Diagnosed | TicketStatus::Acting
    ) {
        return None;
    }
    // Judged on the plan it follows now: a human's pick starts it over.
    let actions: Vec<&Action> = state
        .ticket_actions(ticket.id)
        .filter(|a| ticket.plan_start.is_none_or(|start| a.id >= start))
        .collect();
    if actions.is_empty() {
        return None;
    }
    let (status, reason) = if actions.iter().any(|a| a.status == ActionStatus::Executing) {
        if ticket.status == TicketStatus::Acting {
            return None;
        }
        (TicketStatus::Acting, None)
    } else if actions.iter().all(|a| a.status == ActionStatus::Completed) {
        (
            TicketStatus::Verifying,
            Some("every action completed; verifying that the fix holds".to_string()),
        )
    } else if actions.iter().all(|a| a.status.is_final()) {
        let bad = actions.iter().rev().find(|a| {
            matches!(
                a.status,
                ActionStatus::Failed | ActionStatus::Cancelled | ActionStatus::PremiseFailed
            )
        })?;
        let error = bad.error.clone().unwrap_or_default();
        let why = if bad.status == ActionStatus::PremiseFailed {
            format!(
                "{NEEDS_A_HUMAN}: action {} {} did not run: {error}",
                bad.id, bad.name
            )
        } else {
            format!("action {} {} {}: {error}", bad.id, bad.name, bad.status)
        };
        (TicketStatus::Escalated, Some(why))
    } else {
        return None;
    };
    Some(Effect::Write(Write::TicketStatus {
        ticket: ticket.id,
        status,
        cause: Cause::Executor,
        reason,
    }))
}

/// A running action came back. `jitter` (0..1) spreads retries so they do not line up.
pub fn finished(
    state: &EngineState,
    id: ActionId,
    result: ActionResult,
    undo: Result<Option<ActionRequest>, String>,
    now: Millis,
    jitter: f64,
) -> Vec<Effect> {
    let Some(action) = state
        .action(id)
        .filter(|a| a.status == ActionStatus::Executing)
    else {
        return vec![];
    };
    match result {
        ActionResult::Done(Ok(outcome)) => {
            let (undo, irreversible) = undo_plan(state, &action.name, undo);
            let update = ActionUpdate {
                outcome: Some(outcome.summary.clone()),
                undo,
                irreversible,
                ..Default::default()
            };
            let mut effects = vec![transition(
                action,
                ActionStatus::Completed,
                Cause::Executor,
                outcome.summary.clone(),
                update,
            )];
            if action.name == general_actions::LOG_MESSAGE {
                effects.push(Effect::Write(Write::Audit {
                    cause: Cause::Brain,
                    ticket: action.ticket_id,
                    event: "log_message".into(),
                    detail: outcome.summary,
                }));
            }
            effects
        }
        ActionResult::Done(Err(error))
            if error.is_retryable()
                && action.attempts < action.max_attempts
                && !state.kill_switch =>
        {
            let delay = retry_delay(
                action.attempts,
                state.config.retry_base,
                state.config.retry_cap,
                jitter,
            );
            let at = now + delay.as_millis() as u64;
            let detail = format!(
                "attempt {} failed: {error}; retrying in {} ms",
                action.attempts,
                delay.as_millis()
            );
            let update = ActionUpdate {
                not_before_ms: Some(Some(at)),
                error: Some(error.to_string()),
                ..Default::default()
            };
            vec![
                transition(
                    action,
                    ActionStatus::Validated,
                    Cause::Executor,
                    detail,
                    update,
                ),
                Effect::WakeAt(at),
            ]
        }
        ActionResult::Done(Err(error)) if !error.is_retryable() => vec![fail(
            action,
            Cause::Executor,
            format!("failed, and a retry cannot help: {error}"),
        )],
        ActionResult::Done(Err(error)) => vec![fail(
            action,
            Cause::Executor,
            format!("failed after {} attempt(s): {error}", action.attempts),
        )],
        ActionResult::Waits { for_ms, reason } => {
            // Long enough past the trouble's end for the ticket to resolve on clean checks.
            let settle = state.config.tick * (state.config.stability_checks as u32 + 2);
            let at = now + for_ms + settle.as_millis() as u64;
            let update = ActionUpdate {
                give_back_attempt: true,
                not_before_ms: Some(Some(at)),
                ..Default::default()
            };
            let mut effects = vec![
                transition(
                    action,
                    ActionStatus::Validated,
                    Cause::Executor,
                    reason.clone(),
                    update,
                ),
                Effect::Write(Write::ActionWaiting {
                    id,
                    reason: Some(reason.clone()),
                    cause: Cause::Executor,
                }),
                Effect::WakeAt(at),
            ];
            // Nothing acts for the ticket now: it is diagnosed and waiting, and resolves like
            // one when the trouble passes.
            let acting_otherwise = |t: TicketId| {
                state
                    .ticket_actions(t)
                    .any(|a| a.id != id && a.status == ActionStatus::Executing)
            };
            if let Some(ticket) = action.ticket_id.and_then(|t| state.ticket(t))
                && ticket.status == TicketStatus::Acting
                && !acting_otherwise(ticket.id)
            {
                effects.push(Effect::Write(Write::TicketStatus {
                    ticket: ticket.id,
                    status: TicketStatus::Diagnosed,
                    cause: Cause::Executor,
                    reason: Some(reason),
                }));
            }
            effects
        }
        ActionResult::PremiseFailed(failure) => vec![with_error(
            action,
            ActionStatus::PremiseFailed,
            Cause::Executor,
            format!("its premise failed: {failure}"),
        )],
        ActionResult::Cancelled => {
            let (cause, why) = if state.kill_switch {
                (Cause::Policy, "stopped by the kill switch")
            } else if action.approval == Some(Approval::Rejected) {
                (Cause::Human, "cancelled by a human while running")
            } else if action.ticket_id.is_some_and(|t| state.ticket(t).is_none()) {
                (
                    Cause::Engine,
                    "its ticket resolved while it ran (the trouble passed): no longer needed",
                )
            } else {
                (Cause::Engine, "cancelled: the engine is shutting down")
            };
            vec![cancel(action, cause, why)]
        }
    }
}

/// The prepared undo as stored with the action, or why there is none after all.
fn undo_plan(
    state: &EngineState,
    name: &str,
    undo: Result<Option<ActionRequest>, String>,
) -> (Option<UndoPlan>, Option<String>) {
    match undo {
        Ok(None) => (
            None,
            state
                .spec(name)
                .and_then(|spec| spec.reversal.irreversible_because()),
        ),
        Ok(Some(request)) => match state.spec(&request.action) {
            Some(spec) => (
                Some(UndoPlan {
                    action: request.action,
                    params: request.params.into_iter().collect(),
                    risk: spec.risk,
                }),
                None,
            ),
            None => (
                None,
                Some(format!(
                    "its inverse {} is not in the catalog",
                    request.action
                )),
            ),
        },
        Err(why) => (None, Some(format!("its undo could not be prepared: {why}"))),
    }
}

/// Cancels one action at a human's request: a running one is stopped, a waiting one dropped.
pub fn cancel_requested(state: &EngineState, id: ActionId, cause: Cause) -> Vec<Effect> {
    let Some(action) = state.action(id).filter(|a| !a.status.is_final()) else {
        return vec![];
    };
    if state.running.contains_key(&id) {
        vec![
            Effect::Write(Write::Approval {
                id,
                approval: Approval::Rejected,
                cause,
            }),
            Effect::CancelRunning(id),
        ]
    } else {
        vec![cancel(action, cause, "cancelled by a human")]
    }
}

/// Actions still waiting on a ticket that resolved are moot.
pub fn cancel_leftovers(state: &EngineState, ticket: TicketId) -> Vec<Effect> {
    state
        .live_actions()
        .filter(|a| a.ticket_id == Some(ticket) && a.status != ActionStatus::Executing)
        .map(|a| cancel(a, Cause::Engine, "the ticket resolved before this ran"))
        .collect()
}
