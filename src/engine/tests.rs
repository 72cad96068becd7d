//! Every lifecycle rule as a synchronous test of a decision: a state is built by hand, one
//! input goes in, and the effects that come out are the assertion. No clock, no sleep, no I/O.

use std::time::Duration;

use operator_protocol::{
    ActionOutcome, ActionSpec, Consequence, ContractError, Diagnosis, Health, Hypothesis, Millis,
    NodeId, NodeStatus, Observation, ParamKind, ParamSpec, RecommendedAction, Risk, RootCause,
    Runbook, RunbookEntry, Severity, Violation,
};
use serde_json::json;

use super::decide::{advance, decide};
use super::effect::PremiseFailure;
use super::effect::{ActionResult, Effect, Input};
use super::state::{EngineState, RunningAction};
use super::{EngineConfig, general_actions};
use crate::events::{Command, EngineEvent};
use crate::model::*;
use crate::store::{ActionUpdate, IncidentLink, Write};

const NOW: Millis = 1_000_000;

fn catalog() -> Vec<ActionSpec> {
    let node = || ParamSpec::new("node", "the node", ParamKind::Node);
    let mut catalog = vec![
        crate::testing::restart_node_spec(),
        ActionSpec::new("update_limit", "change a limit", vec![node()], Risk::Safe),
        ActionSpec::new(
            "wipe_node",
            "wipe a node's data",
            vec![node()],
            Risk::Destructive,
        ),
    ];
    catalog.extend(general_actions::specs());
    catalog
}

/// Three healthy nodes, nothing open, execute mode.
fn state() -> EngineState {
    let mut state = EngineState::new(
        EngineConfig::default(),
        "fake".into(),
        catalog(),
        Vec::new(),
    );
    state.mode = Mode::Execute;
    state.last_observation = Some(observation(&[]));
    state
}

fn observation(down: &[&str]) -> Observation {
    Observation {
        at_ms: NOW,
        nodes: ["n1", "n2", "n3"]
            .iter()
            .map(|id| NodeStatus {
                id: NodeId::from(*id),
                role: "node".into(),
                health: if down.contains(id) {
                    Health::Down
                } else {
                    Health::Healthy
                },
                facts: Default::default(),
            })
            .collect(),
        workload: None,
        facts: json!({}),
    }
}

fn violation(invariant: &str, target: &str) -> Violation {
    Violation {
        invariant: invariant.into(),
        severity: Severity::Critical,
        target: target.into(),
        message: format!("{invariant} on {target}"),
        evidence: json!({}),
    }
}

fn ticket(id: i64, status: TicketStatus) -> Ticket {
    Ticket {
        id: TicketId(id),
        subject: "fake".into(),
        invariant: "node_down".into(),
        target: "n2".into(),
        severity: Severity::Critical,
        status,
        message: "n2 is down".into(),
        evidence: json!({}),
        occurrences: 1,
        clean_checks: 0,
        reason: None,
        timeline: Timeline::default(),
        chaos: None,
        incident: TicketId(id),
        plan_start: None,
    }
}

fn action(id: i64, ticket: i64, name: &str, node: &str, status: ActionStatus) -> Action {
    Action {
        id: ActionId(id),
        ticket_id: Some(TicketId(ticket)),
        name: name.into(),
        params: json!({ "node": node })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        rationale: "because".into(),
        risk: if name == "restart_node" {
            Risk::Disruptive
        } else {
            Risk::Safe
        },
        status,
        approval: None,
        attempts: 0,
        max_attempts: 3,
        depends_on: None,
        not_before_ms: None,
        error: None,
        outcome: None,
        confidence: None,
        destroys: None,
        waiting: None,
        undo: None,
        irreversible: None,
        undoes: None,
        premises_overridden: false,
        created_ms: NOW,
        updated_ms: NOW,
    }
}

fn writes(effects: &[Effect]) -> Vec<&Write> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Write(w) => Some(w),
            _ => None,
        })
        .collect()
}

/// The status each action transition in `effects` moves to, by action id.
fn transitions(effects: &[Effect]) -> Vec<(i64, ActionStatus, String)> {
    writes(effects)
        .into_iter()
        .filter_map(|w| match w {
            Write::ActionTransition { id, to, detail, .. } => Some((id.0, *to, detail.clone())),
            _ => None,
        })
        .collect()
}

fn ticket_statuses(effects: &[Effect]) -> Vec<(i64, TicketStatus, Option<String>)> {
    writes(effects)
        .into_iter()
        .filter_map(|w| match w {
            Write::TicketStatus {
                ticket,
                status,
                reason,
                ..
            } => Some((ticket.0, *status, reason.clone())),
            _ => None,
        })
        .collect()
}

fn launched(effects: &[Effect]) -> Vec<i64> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::RunAction { id, .. } => Some(id.0),
            _ => None,
        })
        .collect()
}

fn observed(state: &EngineState, violations: Vec<Violation>) -> Vec<Effect> {
    let observation = state.last_observation.clone().unwrap();
    decide(
        state,
        Input::Observed(Ok((observation, violations))),
        NOW,
        0.5,
    )
}

// ---- the monitor: dedupe and occurrences -------------------------------------------------

#[test]
fn a_node_that_answers_but_breaks_an_invariant_is_shown_degraded() {
    let effects = observed(&state(), vec![violation("high_latency", "n2")]);
    let Some(Effect::Emit(EngineEvent::Observed { observation, .. })) = effects.first() else {
        panic!("{effects:?}")
    };
    let health: Vec<(&str, Health)> = observation
        .nodes
        .iter()
        .map(|n| (n.id.0.as_str(), n.health))
        .collect();
    assert_eq!(
        health,
        [
            ("n1", Health::Healthy),
            ("n2", Health::Degraded),
            ("n3", Health::Healthy)
        ]
    );
}

#[test]
fn a_new_problem_opens_one_ticket_even_when_reported_twice_in_one_observation() {
    let effects = observed(
        &state(),
        vec![violation("node_down", "n2"), violation("node_down", "n2")],
    );
    let opened: Vec<_> = writes(&effects)
        .into_iter()
        .filter(|w| matches!(w, Write::OpenTicket { .. }))
        .collect();
    assert_eq!(opened.len(), 1, "{effects:?}");
    assert!(matches!(
        effects.first(),
        Some(Effect::Emit(EngineEvent::Observed { .. }))
    ));
}

#[test]
fn a_problem_with_an_active_ticket_is_another_occurrence_not_a_new_ticket() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosed)];
    let effects = observed(&state, vec![violation("node_down", "n2")]);
    assert_eq!(
        writes(&effects),
        vec![&Write::Recur {
            ticket: TicketId(7),
            violation: violation("node_down", "n2")
        }]
    );
}

#[test]
fn a_new_ticket_is_linked_to_the_chaos_that_explains_it() {
    let mut state = state();
    state.recent_chaos = vec![crate::store::ChaosRecord {
        at_ms: NOW - 500,
        name: "kill_node".into(),
        target: "n2".into(),
        root_cause: "process_crash".into(),
        expected_invariant: "node_down".into(),
    }];
    let effects = observed(&state, vec![violation("node_down", "n2")]);
    assert!(matches!(
        writes(&effects)[0],
        Write::OpenTicket { chaos: Some(c), .. } if c.name == "kill_node"
    ));
    // The same fault on another node explains nothing here: its injection time is not this
    // ticket's, and a detection time measured from it would be wrong.
    state.recent_chaos[0].target = "n3".into();
    let effects = observed(&state, vec![violation("node_down", "n2")]);
    assert!(matches!(
        writes(&effects)[0],
        Write::OpenTicket { chaos: None, .. }
    ));
}

#[test]
fn what_breaks_on_a_node_our_action_is_restarting_is_neither_a_problem_nor_clean() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Acting)];
    state.running.insert(
        ActionId(1),
        RunningAction {
            disrupts: Some(NodeId::from("n2")),
            disruptive: true,
        },
    );
    let effects = observed(&state, vec![violation("node_down", "n2")]);
    assert!(writes(&effects).is_empty(), "{effects:?}");
}

#[test]
fn a_failed_observation_is_a_critical_ticket_not_all_healthy() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Verifying)];
    let effects = decide(&state, Input::Observed(Err("timeout".into())), NOW, 0.5);
    let w = writes(&effects);
    assert_eq!(w.len(), 1, "no clean check counted: {w:?}");
    assert!(matches!(
        w[0],
        Write::OpenTicket { violation, .. }
            if violation.invariant == super::OBSERVATION_FAILED && violation.severity == Severity::Critical
    ));
}

// ---- verification: the stability window and the timeout ---------------------------------

#[test]
fn a_ticket_resolves_only_after_the_stability_window_of_clean_checks() {
    let mut state = state();
    let mut verifying = ticket(7, TicketStatus::Verifying);
    verifying.clean_checks = state.config.stability_checks - 2;
    state.tickets = vec![verifying.clone()];
    let early = observed(&state, vec![]);
    assert_eq!(
        writes(&early),
        vec![&Write::CleanCheck(TicketId(7))],
        "one clean check short of the window"
    );

    verifying.clean_checks = state.config.stability_checks - 1;
    state.tickets = vec![verifying];
    state.actions = vec![action(1, 7, "restart_node", "n2", ActionStatus::Completed)];
    let effects = observed(&state, vec![]);
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].1, TicketStatus::Resolved);
    assert!(statuses[0].2.as_deref().unwrap().starts_with("verified"));
    // A note is not a fix: the problem passed by itself.
    state.actions = vec![action(1, 7, "log_message", "n2", ActionStatus::Completed)];
    let statuses = ticket_statuses(&observed(&state, vec![]));
    assert!(
        statuses[0]
            .2
            .as_deref()
            .unwrap()
            .starts_with("cleared without an action"),
        "{statuses:?}"
    );
}

#[test]
fn a_problem_that_clears_by_itself_resolves_as_cleared_and_its_waiting_actions_are_cancelled() {
    let mut state = state();
    let mut open = ticket(7, TicketStatus::Diagnosed);
    open.clean_checks = state.config.stability_checks - 1;
    state.tickets = vec![open];
    state.actions = vec![action(1, 7, "restart_node", "n2", ActionStatus::Validated)];
    let effects = observed(&state, vec![]);
    assert!(
        ticket_statuses(&effects)[0]
            .2
            .as_deref()
            .unwrap()
            .starts_with("cleared without an action")
    );
    assert_eq!(transitions(&effects)[0].1, ActionStatus::Cancelled);
}

#[test]
fn a_ticket_whose_action_is_running_does_not_resolve_mid_action() {
    let mut state = state();
    let mut acting = ticket(7, TicketStatus::Acting);
    acting.clean_checks = 10;
    state.tickets = vec![acting];
    let effects = observed(&state, vec![]);
    assert!(ticket_statuses(&effects).is_empty(), "{effects:?}");
}

#[test]
fn a_fix_that_does_not_hold_within_the_timeout_escalates() {
    let mut state = state();
    state.config.verify_timeout = Duration::from_secs(30);
    let mut verifying = ticket(7, TicketStatus::Verifying);
    verifying.timeline.verifying_since_ms = Some(NOW - 30_000);
    state.tickets = vec![verifying];
    state.actions = vec![action(1, 7, "restart_node", "n2", ActionStatus::Completed)];
    let waiting = advance(&state, NOW);
    assert_eq!(waiting, vec![Effect::WakeAt(NOW + 1)]);
    let effects = advance(&state, NOW + 1);
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses[0].1, TicketStatus::Escalated);
    assert!(statuses[0].2.as_deref().unwrap().contains("did not hold"));
}

/// A ticket waiting for its trouble to pass (or for a person to finish) resolves when it
/// passed, and the wait still running is cancelled as no longer needed; a ticket whose
/// running action changes the cluster does not resolve mid-action.
#[test]
fn a_trouble_that_passed_while_its_ticket_waited_resolves_and_the_wait_ends() {
    let mut state = state();
    let mut waiting = ticket(7, TicketStatus::Acting);
    waiting.clean_checks = state.config.stability_checks;
    state.tickets = vec![waiting];
    state.actions = vec![action(1, 7, "wait", "n2", ActionStatus::Executing)];
    state.running.insert(
        ActionId(1),
        RunningAction {
            disrupts: None,
            disruptive: false,
        },
    );
    let effects = observed(&state, vec![]);
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses.len(), 1, "{effects:?}");
    assert_eq!(statuses[0].1, TicketStatus::Resolved);
    assert!(
        statuses[0]
            .2
            .as_deref()
            .unwrap()
            .starts_with("cleared without an action")
    );
    assert!(
        effects.contains(&Effect::CancelRunning(ActionId(1))),
        "{effects:?}"
    );

    state.actions = vec![action(1, 7, "restart_node", "n2", ActionStatus::Executing)];
    let effects = observed(&state, vec![]);
    assert!(ticket_statuses(&effects).is_empty(), "{effects:?}");
}

/// A plan that only waited (for a person to finish) changed nothing: a trouble still there
/// once it ran goes to a human after a few checks, not after a fix's whole timeout.
#[test]
fn a_trouble_still_there_after_a_plan_that_only_waited_goes_to_a_human_soon() {
    let mut state = state();
    state.config.verify_timeout = Duration::from_secs(30);
    let mut verifying = ticket(7, TicketStatus::Verifying);
    verifying.timeline.verifying_since_ms = Some(NOW);
    state.tickets = vec![verifying];
    state.actions = vec![action(1, 7, "wait", "n2", ActionStatus::Completed)];
    assert!(ticket_statuses(&advance(&state, NOW + 4_000)).is_empty());
    let effects = advance(&state, NOW + 5_001);
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses[0].1, TicketStatus::Escalated, "{effects:?}");
    assert!(
        statuses[0]
            .2
            .as_deref()
            .unwrap()
            .contains("changed nothing"),
        "{statuses:?}"
    );
}

// ---- incidents ----------------------------------------------------------------------------

fn with_consequences(mut state: EngineState) -> EngineState {
    state.consequences = vec![Consequence::new("node_down", "counter_drift")];
    state
}

fn opened_incident(effects: &[Effect]) -> Vec<IncidentLink> {
    writes(effects)
        .into_iter()
        .filter_map(|w| match w {
            Write::OpenTicket { incident, .. } => Some(incident.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_symptom_joins_its_open_causes_incident_and_waits_for_it() {
    let mut state = with_consequences(state());
    state.tickets = vec![ticket(7, TicketStatus::Acting)];
    let effects = observed(&state, vec![violation("counter_drift", "demo-hot")]);
    assert_eq!(
        opened_incident(&effects),
        vec![IncidentLink::SymptomOf(TicketId(7))]
    );

    let mut symptom = ticket(8, TicketStatus::Open);
    symptom.invariant = "counter_drift".into();
    symptom.incident = TicketId(7);
    state.tickets.push(symptom);
    assert!(
        !advance(&state, NOW + 10_000).contains(&Effect::StartDiagnosis(TicketId(8))),
        "no remedy of its own while the cause is open"
    );
    state.tickets.remove(0);
    assert!(
        advance(&state, NOW + 10_000).contains(&Effect::StartDiagnosis(TicketId(8))),
        "once the cause is resolved, what is left is diagnosed on its own"
    );
}

#[test]
fn a_symptom_goes_to_a_person_with_its_cause() {
    let mut state = with_consequences(state());
    let mut symptom = ticket(8, TicketStatus::Open);
    symptom.invariant = "counter_drift".into();
    symptom.incident = TicketId(7);
    state.tickets = vec![ticket(7, TicketStatus::Acting), symptom];
    assert!(ticket_statuses(&advance(&state, NOW)).is_empty());
    state.tickets[0].status = TicketStatus::Escalated;
    let effects = advance(&state, NOW);
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses.len(), 1, "{effects:?}");
    assert_eq!(statuses[0].0, 8);
    assert_eq!(statuses[0].1, TicketStatus::Escalated);
    assert!(
        statuses[0]
            .2
            .as_deref()
            .is_some_and(|r| r.contains("a symptom of ticket 7")),
        "{statuses:?}"
    );
    assert!(!effects.contains(&Effect::StartDiagnosis(TicketId(8))));
}

#[test]
fn a_cause_seen_after_its_symptom_takes_the_symptom_into_its_incident() {
    let mut state = with_consequences(state());
    let mut symptom = ticket(8, TicketStatus::Open);
    symptom.invariant = "counter_drift".into();
    symptom.target = "demo-hot".into();
    symptom.incident = TicketId(8);
    state.tickets = vec![symptom];
    let effects = observed(&state, vec![violation("node_down", "n2")]);
    assert_eq!(
        opened_incident(&effects),
        vec![IncidentLink::Cause {
            adopts: vec![TicketId(8)]
        }]
    );
}

#[test]
fn a_cause_and_its_symptom_seen_in_one_observation_open_as_one_incident_cause_first() {
    let state = with_consequences(state());
    let effects = observed(
        &state,
        vec![
            violation("counter_drift", "demo-hot"),
            violation("node_down", "n2"),
        ],
    );
    assert_eq!(
        opened_incident(&effects),
        vec![
            IncidentLink::Cause { adopts: vec![] },
            IncidentLink::SymptomOfOpening {
                invariant: "node_down".into(),
                target: "n2".into()
            }
        ]
    );
}

#[test]
fn problems_on_one_node_that_open_together_are_one_incident_and_others_are_their_own() {
    let mut state = state();
    let mut first = ticket(7, TicketStatus::Open);
    first.timeline.opened_ms = NOW - 2_000;
    state.tickets = vec![first];
    let effects = observed(
        &state,
        vec![
            violation("high_latency", "n2"),
            violation("high_latency", "n3"),
        ],
    );
    assert_eq!(
        opened_incident(&effects),
        vec![
            IncidentLink::SymptomOf(TicketId(7)),
            IncidentLink::Cause { adopts: vec![] }
        ]
    );
}

/// Redis trouble resolved at NOW; a count that drifted meanwhile heals at its window's end,
/// which the subject declares as 10 s of aftermath.
fn resolved_cause_with_aftermath() -> EngineState {
    let mut state = state();
    state.consequences =
        vec![Consequence::new("redis_disconnected", "counter_drift").outlasting(10_000)];
    let mut cause = ticket(7, TicketStatus::Resolved);
    cause.invariant = "redis_disconnected".into();
    cause.timeline.resolved_ms = Some(NOW);
    state.recently_resolved = vec![cause];
    state
}

#[test]
fn what_shows_in_a_resolved_causes_aftermath_joins_its_incident_and_nothing_acts_on_it() {
    let mut state = resolved_cause_with_aftermath();
    let seen = |now| {
        decide(
            &state,
            Input::Observed(Ok((
                observation(&[]),
                vec![violation("counter_drift", "demo-1")],
            ))),
            now,
            0.5,
        )
    };
    let effects = seen(NOW + 3_000);
    assert_eq!(
        opened_incident(&effects),
        vec![IncidentLink::SymptomOf(TicketId(7))],
        "3 s after the cause resolved, a drift is its aftermath"
    );
    let late = seen(NOW + 11_000);
    assert_eq!(
        opened_incident(&late),
        vec![IncidentLink::Cause { adopts: vec![] }],
        "once the aftermath has passed, a new drift is a problem of its own"
    );

    let mut drift = ticket(8, TicketStatus::Open);
    drift.invariant = "counter_drift".into();
    drift.target = "demo-1".into();
    drift.incident = TicketId(7);
    state.tickets = vec![drift];
    let during = advance(&state, NOW + 9_000);
    assert!(
        !during.contains(&Effect::StartDiagnosis(TicketId(8))),
        "{during:?}"
    );
    assert!(ticket_statuses(&during).is_empty(), "{during:?}");
}

#[test]
fn a_symptom_that_outlasts_its_causes_aftermath_goes_to_a_person_not_to_a_remedy() {
    let mut state = resolved_cause_with_aftermath();
    let mut drift = ticket(8, TicketStatus::Open);
    drift.invariant = "counter_drift".into();
    drift.target = "demo-1".into();
    drift.incident = TicketId(7);
    state.tickets = vec![drift];
    let after = advance(&state, NOW + 10_000);
    assert!(
        !after.contains(&Effect::StartDiagnosis(TicketId(8))),
        "{after:?}"
    );
    let statuses = ticket_statuses(&after);
    assert_eq!(statuses.len(), 1, "{after:?}");
    assert_eq!(statuses[0].1, TicketStatus::Escalated);
    assert!(
        statuses[0]
            .2
            .as_deref()
            .is_some_and(|r| r.contains("outlasted the aftermath of redis_disconnected (ticket 7")),
        "{statuses:?}"
    );
    // A consequence that ends with its cause keeps the old way: what is left is diagnosed.
    state.consequences = vec![Consequence::new("redis_disconnected", "counter_drift")];
    assert!(advance(&state, NOW + 10_000).contains(&Effect::StartDiagnosis(TicketId(8))));
}

#[test]
fn a_ticket_that_may_be_a_symptom_waits_the_settle_period_for_its_cause() {
    let mut state = with_consequences(state());
    state.config.settle_ticks = 2;
    let mut drift = ticket(8, TicketStatus::Open);
    drift.invariant = "counter_drift".into();
    drift.timeline.opened_ms = NOW;
    state.tickets = vec![drift];
    assert!(!advance(&state, NOW + 250).contains(&Effect::StartDiagnosis(TicketId(8))));
    assert!(advance(&state, NOW + 500).contains(&Effect::StartDiagnosis(TicketId(8))));
    // A ticket that is never anyone's symptom goes to the brain at once.
    let mut down = ticket(9, TicketStatus::Open);
    down.timeline.opened_ms = NOW;
    state.tickets = vec![down];
    assert!(advance(&state, NOW).contains(&Effect::StartDiagnosis(TicketId(9))));
}

// ---- the agent ---------------------------------------------------------------------------

#[test]
fn open_tickets_go_to_the_brain_a_bounded_few_at_a_time() {
    let mut state = state();
    state.config.max_parallel_diagnoses = 2;
    state.diagnosing.insert(TicketId(1));
    state.tickets = vec![
        ticket(1, TicketStatus::Diagnosing),
        ticket(2, TicketStatus::Open),
        ticket(3, TicketStatus::Open),
    ];
    let effects = advance(&state, NOW);
    assert!(effects.contains(&Effect::StartDiagnosis(TicketId(2))));
    assert!(!effects.contains(&Effect::StartDiagnosis(TicketId(3))));
}

fn diagnosis(actions: Vec<RecommendedAction>) -> Diagnosis {
    Diagnosis {
        summary: "n2 crashed".into(),
        root_cause: RootCause {
            category: "process_crash".into(),
            explanation: "it exited".into(),
        },
        evidence: vec![],
        alternatives: vec![],
        recommended_actions: actions,
        confidence: 0.9,
        cost: Default::default(),
    }
}

fn step(action: &str, node: &str, after_ms: Option<u64>) -> RecommendedAction {
    RecommendedAction {
        action: action.into(),
        params: [("node".to_string(), json!(node))].into_iter().collect(),
        rationale: "r".into(),
        after_ms,
    }
}

fn diagnosed(state: &EngineState, result: Result<Diagnosis, String>) -> Vec<Effect> {
    let input = Input::Diagnosed {
        ticket: TicketId(7),
        brain: "rules".into(),
        reasoning: "thinking".into(),
        result,
    };
    decide(state, input, NOW, 0.5)
}

#[test]
fn a_valid_diagnosis_becomes_one_workflow_with_its_schedule() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let d = diagnosis(vec![
        step("restart_node", "n2", None),
        step("update_limit", "n2", Some(5_000)),
    ]);
    let effects = diagnosed(&state, Ok(d));
    let w = writes(&effects);
    assert!(matches!(w[0], Write::Diagnosis { refusal: None, .. }));
    assert_eq!(ticket_statuses(&effects)[0].1, TicketStatus::Diagnosed);
    let Some(Write::Workflow { steps, cause }) = w.last() else {
        panic!("{w:?}")
    };
    assert_eq!(*cause, Cause::Brain);
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].risk, Risk::Disruptive);
    assert_eq!(steps[1].not_before_ms, Some(NOW + 5_000));
}

#[test]
fn a_remedy_that_held_only_briefly_is_not_run_again_the_ticket_goes_to_a_human() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let fix = |invariant: &str, node: &str| crate::store::RecentFix {
        ticket: TicketId(4),
        cause: "process_crash".into(),
        invariant: invariant.into(),
        target: "n2".into(),
        action: "restart_node".into(),
        params: json!({ "node": node })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        resolved_ms: NOW - 12_000,
    };
    // The same remedy for another problem, or for this one on another node, is no loop.
    state.recent_fixes = vec![fix("node_slow", "n2"), fix("node_down", "n3")];
    let restart = || diagnosis(vec![step("restart_node", "n2", None)]);
    let effects = diagnosed(&state, Ok(restart()));
    assert!(matches!(
        writes(&effects).last(),
        Some(Write::Workflow { .. })
    ));

    // The same node down again for another cause (a crash fixed, then a stall) is a new
    // problem, not a fix that did not hold.
    state.recent_fixes.push(crate::store::RecentFix {
        cause: "process_stall".into(),
        ..fix("node_down", "n2")
    });
    let effects = diagnosed(&state, Ok(restart()));
    assert!(matches!(
        writes(&effects).last(),
        Some(Write::Workflow { .. })
    ));

    state.recent_fixes.push(fix("node_down", "n2"));
    let effects = diagnosed(&state, Ok(restart()));
    assert!(
        !writes(&effects)
            .iter()
            .any(|w| matches!(w, Write::Workflow { .. }))
    );
    let Some(Write::TicketStatus {
        status,
        reason: Some(reason),
        cause,
        ..
    }) = writes(&effects).last().copied()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(*status, TicketStatus::Escalated);
    assert_eq!(*cause, Cause::Engine);
    assert!(
        reason.starts_with(super::agent::FIX_DOES_NOT_HOLD),
        "{reason}"
    );
    assert!(reason.contains("ticket #4 12 s ago"), "{reason}");
    assert!(reason.contains("node_down on n2 is back"), "{reason}");
}

/// A runbook where a stalled process may pass by itself and a crash does not.
fn runbook_with_a_transient_stall() -> Runbook {
    let hypothesis = |root_cause: &str, transient| Hypothesis {
        root_cause: root_cause.into(),
        description: root_cause.into(),
        evidence: vec![],
        remedy: vec![],
        transient,
    };
    Runbook {
        entries: vec![RunbookEntry {
            symptom: "node_down".into(),
            description: "a node does not answer".into(),
            hypotheses: vec![
                hypothesis("process_crash", false),
                hypothesis("process_stalled", true),
            ],
        }],
    }
}

#[test]
fn a_cause_that_may_pass_is_watched_before_anything_acts_on_the_cluster() {
    let mut state = state();
    state.runbook = runbook_with_a_transient_stall();
    state.config.watch_period = Duration::from_secs(3);
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let note = RecommendedAction {
        params: [("message".to_string(), json!("n2 stalls"))]
            .into_iter()
            .collect(),
        ..step("log_message", "n2", None)
    };
    let mut stall = diagnosis(vec![
        note,
        step("restart_node", "n2", None),
        step("update_limit", "n2", None),
    ]);
    stall.root_cause.category = "process_stalled".into();
    let effects = diagnosed(&state, Ok(stall));
    let w = writes(&effects);
    let Some(Write::Workflow { steps, .. }) = w.last() else {
        panic!("{w:?}")
    };
    // A note goes at once; the restart, and even a safe change, wait out the watch.
    assert_eq!(steps[0].not_before_ms, None);
    assert_eq!(steps[1].not_before_ms, Some(NOW + 3_000));
    assert_eq!(steps[2].not_before_ms, Some(NOW + 3_000));
    assert!(w.iter().any(|w| matches!(
        w,
        Write::Audit { event, detail, .. } if event == "watch"
            && detail == "process_stalled may pass by itself: watching 3000 ms before restart_node runs"
    )));

    // A crash does not pass by itself: no watch.
    let crash = diagnosis(vec![step("restart_node", "n2", None)]);
    let effects = diagnosed(&state, Ok(crash));
    let Some(Write::Workflow { steps, .. }) = writes(&effects).last().cloned() else {
        panic!()
    };
    assert_eq!(steps[0].not_before_ms, None);
}

#[test]
fn a_stall_that_keeps_coming_back_goes_to_a_person_instead_of_another_watch() {
    let mut state = state();
    state.runbook = runbook_with_a_transient_stall();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let stall = || {
        let mut d = diagnosis(vec![step("restart_node", "n2", None)]);
        d.root_cause.category = "process_stalled".into();
        d
    };
    let cleared = |target: &str| ("node_down".to_string(), target.to_string(), NOW - 5_000);
    // Once before, or on another node: still a watch.
    state.recent_clears = vec![cleared("n2"), cleared("n3")];
    assert!(matches!(
        writes(&diagnosed(&state, Ok(stall()))).last(),
        Some(Write::Workflow { .. })
    ));
    // The third time in the window: a pattern, for a person.
    state.recent_clears.push(cleared("n2"));
    let effects = diagnosed(&state, Ok(stall()));
    let (_, status, reason) = ticket_statuses(&effects).pop().unwrap();
    assert_eq!(status, TicketStatus::Escalated);
    let reason = reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "needs a human: node_down on n2 comes and goes (process_stalled): 3 times"
        ),
        "{reason}"
    );
    assert!(
        !writes(&effects)
            .iter()
            .any(|w| matches!(w, Write::Workflow { .. }))
    );
    // A crash is no pattern of passing by itself: it is restarted as ever.
    let crash = diagnosis(vec![step("restart_node", "n2", None)]);
    assert!(matches!(
        writes(&diagnosed(&state, Ok(crash))).last(),
        Some(Write::Workflow { .. })
    ));
}

#[test]
fn a_stall_that_lets_go_and_comes_back_before_its_restart_runs_goes_to_a_person() {
    let mut state = state();
    let mut watched = ticket(7, TicketStatus::Acting);
    let mut restart = action(1, 7, "restart_node", "n2", ActionStatus::Validated);
    restart.not_before_ms = Some(NOW + 3_000);
    state.actions = vec![restart];
    // Held on every look so far: the watch goes on.
    state.tickets = vec![watched.clone()];
    assert!(ticket_statuses(&observed(&state, vec![violation("node_down", "n2")])).is_empty());
    // It let go once (a clean look) and is back: it comes and goes, a person gets it.
    watched.clean_checks = 1;
    state.tickets = vec![watched];
    let effects = observed(&state, vec![violation("node_down", "n2")]);
    let (id, status, reason) = ticket_statuses(&effects).pop().unwrap();
    assert_eq!((id, status), (7, TicketStatus::Escalated));
    assert!(
        reason
            .unwrap_or_default()
            .contains("let go by itself and came back"),
        "{effects:?}"
    );
    // Without a disruptive step still to run, a recurrence is only an occurrence.
    state.actions[0].status = ActionStatus::Completed;
    assert!(ticket_statuses(&observed(&state, vec![violation("node_down", "n2")])).is_empty());
}

/// A restart of n2 ready to run in execute mode, and an observation of n2 stopped by a person.
fn restart_waiting_on_a_persons_stop() -> (EngineState, Observation) {
    let mut state = state();
    state.mode = Mode::Execute;
    state.tickets = vec![ticket(7, TicketStatus::Acting)];
    state.actions = vec![action(1, 7, "restart_node", "n2", ActionStatus::Validated)];
    let mut seen = observation(&["n2"]);
    for node in &mut seen.nodes {
        if node.id.0 == "n2" {
            node.facts.insert(
                operator_protocol::SOMEONE_AT_WORK.into(),
                json!("stopped deliberately (a clean exit)"),
            );
        }
    }
    (state, seen)
}

#[test]
fn a_node_someone_stopped_deliberately_is_theirs_for_the_grace_period() {
    let (mut state, seen) = restart_waiting_on_a_persons_stop();
    state.saw_processes(&seen, NOW - 10_000);
    let effects = advance(&state, NOW);
    assert!(launched(&effects).is_empty(), "{effects:?}");
    assert!(writes(&effects).iter().any(|w| matches!(
        w,
        Write::ActionWaiting { reason: Some(r), .. } if r.contains("n2 is someone else's work (stopped deliberately (a clean exit), seen 10 s ago)")
    )));
    // Past the grace period (30 s after it was last seen stopped), a crash rule applies again.
    assert_eq!(launched(&advance(&state, NOW + 21_000)), vec![1]);
    // Started again by whoever stopped it: the grace runs from their start.
    state.saw_processes(&observation(&[]), NOW + 15_000);
    assert!(launched(&advance(&state, NOW + 30_000)).is_empty());
    assert_eq!(launched(&advance(&state, NOW + 45_001)), vec![1]);
}

#[test]
fn a_persons_stop_that_outlasts_the_grace_goes_to_a_person_instead_of_waiting_forever() {
    let (mut state, seen) = restart_waiting_on_a_persons_stop();
    // Seen stopped on every look for longer than the grace: nobody is coming back for it.
    for at in (NOW - 31_000..=NOW).step_by(250) {
        state.saw_processes(&seen, at);
    }
    let effects = advance(&state, NOW);
    assert!(launched(&effects).is_empty(), "{effects:?}");
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses.len(), 1, "{effects:?}");
    assert_eq!(statuses[0].1, TicketStatus::Escalated);
    // Within the grace it still only waits.
    let mut state = EngineState {
        people_at_work: Default::default(),
        at_work_now: Default::default(),
        ..state
    };
    for at in (NOW - 10_000..=NOW).step_by(250) {
        state.saw_processes(&seen, at);
    }
    assert!(ticket_statuses(&advance(&state, NOW)).is_empty());
}

#[test]
fn a_stopped_process_is_disrupted_only_once_its_stop_has_lasted_the_watch_whatever_the_cause() {
    let mut state = state();
    state.mode = Mode::Execute;
    state.tickets = vec![ticket(7, TicketStatus::Acting)];
    state.actions = vec![action(1, 7, "restart_node", "n2", ActionStatus::Validated)];
    let stopped = |stopped: bool| {
        let mut seen = observation(&[]);
        for node in &mut seen.nodes {
            if node.id.0 == "n2" && stopped {
                node.facts.insert("state".into(), json!("stopped"));
            }
        }
        seen
    };
    state.saw_processes(&stopped(true), NOW - 1_000);
    state.saw_processes(&stopped(true), NOW);
    let effects = advance(&state, NOW);
    assert!(launched(&effects).is_empty(), "{effects:?}");
    assert!(
        effects.contains(&Effect::WakeAt(NOW + 4_000)),
        "{effects:?}"
    );
    // Stopped without a break for the watch period: now it may be stuck.
    state.saw_processes(&stopped(true), NOW + 4_000);
    assert_eq!(launched(&advance(&state, NOW + 4_000)), vec![1]);
    // Seen running once in between (stopped and resumed by turns): the watch starts over.
    state.saw_processes(&stopped(false), NOW + 4_250);
    state.saw_processes(&stopped(true), NOW + 4_500);
    assert!(launched(&advance(&state, NOW + 4_500)).is_empty());
    // Running without answering (a node draining after SIGTERM looks cut off) is watched too.
    let mut draining = observation(&["n2"]);
    for node in &mut draining.nodes {
        node.facts.insert("state".into(), json!("running"));
    }
    let mut state = EngineState {
        stopped_since: Default::default(),
        ..state
    };
    state.saw_processes(&draining, NOW);
    assert!(launched(&advance(&state, NOW + 1_000)).is_empty());
    assert_eq!(launched(&advance(&state, NOW + 5_000)), vec![1]);
}

#[test]
fn the_remaining_steps_of_a_ticket_handed_to_a_person_wait_for_their_approval() {
    let mut state = state();
    state.mode = Mode::Execute;
    let mut escalated = ticket(7, TicketStatus::Escalated);
    escalated.reason = Some("needs a human: it comes and goes".into());
    state.tickets = vec![escalated];
    state.actions = vec![action(1, 7, "restart_node", "n2", ActionStatus::Validated)];
    let effects = advance(&state, NOW);
    assert!(launched(&effects).is_empty(), "{effects:?}");
    assert!(writes(&effects).iter().any(|w| matches!(
        w,
        Write::ActionWaiting { reason: Some(r), .. } if r.contains("went to a person")
    )));
    // The person approves: it runs.
    state.actions[0].approval = Some(Approval::Approved);
    assert_eq!(launched(&advance(&state, NOW)), vec![1]);
    // Undoing the operator's own action never waits for anyone.
    state.actions[0].approval = None;
    state.actions[0].undoes = Some(ActionId(9));
    assert_eq!(launched(&advance(&state, NOW)), vec![1]);
}

#[test]
fn a_diagnosis_naming_an_unknown_node_is_recorded_refused_and_escalated() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let effects = diagnosed(
        &state,
        Ok(diagnosis(vec![step("restart_node", "n9", None)])),
    );
    assert!(matches!(
        writes(&effects)[0],
        Write::Diagnosis { refusal: Some(r), .. } if r.contains("not a node")
    ));
    assert_eq!(ticket_statuses(&effects)[0].1, TicketStatus::Escalated);
    assert!(
        !writes(&effects)
            .iter()
            .any(|w| matches!(w, Write::Workflow { .. }))
    );
}

#[test]
fn a_plan_that_disrupts_a_majority_is_refused_before_anything_is_proposed() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let d = diagnosis(vec![
        step("restart_node", "n1", None),
        step("restart_node", "n2", None),
    ]);
    let effects = diagnosed(&state, Ok(d));
    assert!(matches!(
        writes(&effects)[0],
        Write::Diagnosis { refusal: Some(r), .. } if r.contains("majority")
    ));
}

#[test]
fn a_diagnosis_for_a_resolved_ticket_is_recorded_but_changes_nothing() {
    let effects = diagnosed(&state(), Ok(diagnosis(vec![])));
    assert!(matches!(
        writes(&effects)[..],
        [Write::Diagnosis { refusal: Some(r), .. }] if r.contains("after the ticket was resolved")
    ));
}

#[test]
fn a_diagnosis_without_a_remedy_goes_to_a_human() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let effects = diagnosed(&state, Ok(diagnosis(vec![])));
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses.last().unwrap().1, TicketStatus::Escalated);
}

#[test]
fn an_unknown_cause_goes_to_a_human_and_nothing_it_names_runs() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let mut d = diagnosis(vec![step("restart_node", "n2", None)]);
    d.root_cause.category = operator_protocol::UNKNOWN_ROOT_CAUSE.into();
    let effects = diagnosed(&state, Ok(d));
    assert!(matches!(
        writes(&effects)[0],
        Write::Diagnosis { refusal: None, .. }
    ));
    let statuses = ticket_statuses(&effects);
    assert_eq!(
        statuses.last().unwrap(),
        &(
            7,
            TicketStatus::Escalated,
            Some(super::agent::NO_KNOWN_CAUSE.to_string())
        )
    );
    assert!(
        !writes(&effects)
            .iter()
            .any(|w| matches!(w, Write::Workflow { .. }))
    );
}

#[test]
fn a_brain_failure_escalates_with_its_reason() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosing)];
    let effects = diagnosed(&state, Err("the brain did not answer within 120 s".into()));
    let statuses = ticket_statuses(&effects);
    assert!(statuses[0].2.as_deref().unwrap().contains("did not answer"));
}

// ---- the executor: validation, the gates, the policy ------------------------------------

fn with_action(mut state: EngineState, action: Action) -> EngineState {
    let status = match action.status {
        ActionStatus::Executing => TicketStatus::Acting,
        _ => TicketStatus::Diagnosed,
    };
    state.tickets = vec![ticket(7, status)];
    state.actions = vec![action];
    state
}

#[test]
fn a_proposed_action_is_validated_against_the_catalog_and_the_cluster() {
    let ok = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Proposed),
    );
    assert_eq!(
        transitions(&advance(&ok, NOW))[0].1,
        ActionStatus::Validated
    );
    let bad = with_action(
        state(),
        action(1, 7, "restart_node", "n9", ActionStatus::Proposed),
    );
    let t = transitions(&advance(&bad, NOW));
    assert_eq!(t[0].1, ActionStatus::Failed);
    assert!(t[0].2.starts_with("invalid"));
}

#[test]
fn observe_mode_never_launches_and_approve_mode_waits_for_an_approval() {
    let validated = action(1, 7, "restart_node", "n2", ActionStatus::Validated);
    let mut observe = with_action(state(), validated.clone());
    observe.mode = Mode::Observe;
    assert!(advance(&observe, NOW).is_empty());

    let mut approve = with_action(state(), validated.clone());
    approve.mode = Mode::Approve;
    assert!(advance(&approve, NOW).is_empty());

    let mut approved = validated.clone();
    approved.approval = Some(Approval::Approved);
    let mut approve = with_action(state(), approved);
    approve.mode = Mode::Approve;
    assert_eq!(launched(&advance(&approve, NOW)), vec![1]);

    let execute = with_action(state(), validated);
    let effects = advance(&execute, NOW);
    assert_eq!(launched(&effects), vec![1]);
    let t = transitions(&effects);
    assert_eq!(t[0].1, ActionStatus::Executing);
    assert_eq!(t[0].2, "attempt 1 of 3 (execute mode)");
}

#[test]
fn a_rejected_action_is_cancelled_as_the_humans_decision() {
    let mut rejected = action(1, 7, "restart_node", "n2", ActionStatus::Validated);
    rejected.approval = Some(Approval::Rejected);
    let effects = advance(&with_action(state(), rejected), NOW);
    assert!(matches!(
        writes(&effects)[0],
        Write::ActionTransition {
            to: ActionStatus::Cancelled,
            cause: Cause::Human,
            ..
        }
    ));
}

#[test]
fn the_kill_switch_cancels_waiting_actions_and_stops_running_ones() {
    let mut state = state();
    state.kill_switch = true;
    state.tickets = vec![ticket(7, TicketStatus::Acting)];
    state.actions = vec![
        action(1, 7, "update_limit", "n1", ActionStatus::Executing),
        action(2, 7, "restart_node", "n2", ActionStatus::Validated),
        action(3, 7, "update_limit", "n3", ActionStatus::Proposed),
    ];
    state.running.insert(
        ActionId(1),
        RunningAction {
            disrupts: None,
            disruptive: false,
        },
    );
    let effects = advance(&state, NOW);
    assert!(effects.contains(&Effect::CancelRunning(ActionId(1))));
    let t = transitions(&effects);
    assert_eq!(
        t.iter().map(|(id, to, _)| (*id, *to)).collect::<Vec<_>>(),
        vec![(2, ActionStatus::Cancelled), (3, ActionStatus::Cancelled)]
    );
    assert!(t.iter().all(|(_, _, why)| why == "the kill switch is on"));
    assert!(launched(&effects).is_empty());
}

#[test]
fn a_cancelled_running_action_names_who_stopped_it() {
    let mut state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Executing),
    );
    state.kill_switch = true;
    let input = Input::ActionFinished {
        undo: Ok(None),
        id: ActionId(1),
        result: ActionResult::Cancelled,
    };
    let effects = decide(&state, input, NOW, 0.5);
    assert!(matches!(
        writes(&effects)[0],
        Write::ActionTransition { cause: Cause::Policy, detail, .. } if detail == "stopped by the kill switch"
    ));
}

#[test]
fn a_held_ticket_runs_nothing() {
    let mut state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Validated),
    );
    state.tickets[0].status = TicketStatus::Held;
    assert!(advance(&state, NOW).is_empty());
}

#[test]
fn a_second_disruptive_action_waits_for_the_first_even_in_the_same_pass() {
    let mut state = state();
    state.tickets = vec![ticket(7, TicketStatus::Diagnosed), {
        let mut t = ticket(8, TicketStatus::Diagnosed);
        t.target = "n3".into();
        t
    }];
    state.actions = vec![
        action(1, 7, "restart_node", "n2", ActionStatus::Validated),
        action(2, 8, "restart_node", "n3", ActionStatus::Validated),
    ];
    assert_eq!(launched(&advance(&state, NOW)), vec![1]);
}

#[test]
fn the_policy_refuses_to_disrupt_a_majority() {
    let mut state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Validated),
    );
    state.last_observation = Some(observation(&["n1"]));
    state.finished_disruptions = vec![(NodeId::from("n3"), NOW - 1_000)];
    let t = transitions(&advance(&state, NOW));
    assert_eq!(t[0].1, ActionStatus::Failed);
    assert!(t[0].2.contains("never a majority"), "{t:?}");
}

#[test]
fn a_disruption_is_forgotten_after_the_disruption_memory() {
    let mut state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Validated),
    );
    let memory = state.config.disruption_memory.as_millis() as u64;
    state.finished_disruptions = vec![
        (NodeId::from("n1"), NOW - memory),
        (NodeId::from("n3"), NOW - memory),
    ];
    assert!(
        launched(&advance(&state, NOW)).is_empty(),
        "still remembered"
    );
    assert_eq!(launched(&advance(&state, NOW + 1)), vec![1]);
}

#[test]
fn the_ticket_action_budget_is_enforced() {
    let mut spent = action(1, 7, "update_limit", "n2", ActionStatus::Failed);
    spent.attempts = 3;
    let mut state = with_action(
        state(),
        action(2, 7, "update_limit", "n2", ActionStatus::Validated),
    );
    state.actions.insert(0, spent);
    let t = transitions(&advance(&state, NOW));
    assert!(t[0].2.contains("budget"), "{t:?}");
}

// ---- workflows and schedules -------------------------------------------------------------

#[test]
fn a_workflow_step_waits_for_the_one_before_and_is_cancelled_when_it_fails() {
    let first = action(1, 7, "update_limit", "n2", ActionStatus::Executing);
    let mut second = action(2, 7, "update_limit", "n2", ActionStatus::Validated);
    second.depends_on = Some(ActionId(1));
    let mut state = with_action(state(), first.clone());
    state.actions.push(second);
    assert!(launched(&advance(&state, NOW)).is_empty());

    state.actions[0].status = ActionStatus::Failed;
    let t = transitions(&advance(&state, NOW));
    assert_eq!(t[0].0, 2);
    assert_eq!(t[0].1, ActionStatus::Cancelled);
    assert!(t[0].2.contains("did not complete"));

    state.actions[0].status = ActionStatus::Completed;
    assert_eq!(launched(&advance(&state, NOW)), vec![2]);
}

#[test]
fn a_scheduled_action_wakes_the_engine_at_its_time_and_runs_then() {
    let mut scheduled = action(1, 7, "update_limit", "n2", ActionStatus::Validated);
    scheduled.not_before_ms = Some(NOW + 5_000);
    let state = with_action(state(), scheduled);
    assert_eq!(advance(&state, NOW), vec![Effect::WakeAt(NOW + 5_000)]);
    assert_eq!(launched(&advance(&state, NOW + 5_000)), vec![1]);
}

// ---- confidence gates and premises -----------------------------------------------------------

fn validated_at(name: &str, confidence: f64) -> Action {
    let mut validated = action(1, 7, name, "n2", ActionStatus::Validated);
    validated.risk = catalog()
        .iter()
        .find(|s| s.name == name)
        .map_or(Risk::Safe, |s| s.risk);
    validated.confidence = Some(confidence);
    validated
}

fn gate_reasons(effects: &[Effect]) -> Vec<Option<String>> {
    writes(effects)
        .into_iter()
        .filter_map(|w| match w {
            Write::ActionWaiting { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn execute_mode_waits_for_a_human_below_the_confidence_its_risk_needs_and_says_why() {
    let state = with_action(state(), validated_at("restart_node", 0.41));
    let effects = advance(&state, NOW);
    assert!(launched(&effects).is_empty(), "{effects:?}");
    assert_eq!(
        gate_reasons(&effects),
        vec![Some(
            "waiting for a human: confidence 41 % < 85 % for a disruptive action".to_string()
        )]
    );

    // The reason is written once, not on every pass.
    let mut recorded = state.clone();
    recorded.actions[0].waiting = gate_reasons(&effects)[0].clone();
    assert!(advance(&recorded, NOW).is_empty());

    // A human's approval overrides the gate.
    recorded.actions[0].approval = Some(Approval::Approved);
    assert_eq!(launched(&advance(&recorded, NOW)), vec![1]);
}

#[test]
fn the_gate_is_strictest_for_destructive_actions_and_lenient_for_safe_ones() {
    let destructive = with_action(state(), validated_at("wipe_node", 0.9));
    assert_eq!(
        gate_reasons(&advance(&destructive, NOW)),
        vec![Some(
            "waiting for a human: confidence 90 % < 95 % for a destructive action".to_string()
        )]
    );
    let confident = with_action(state(), validated_at("restart_node", 0.9));
    assert_eq!(launched(&advance(&confident, NOW)), vec![1]);
    let safe = with_action(state(), validated_at("update_limit", 0.6));
    assert_eq!(launched(&advance(&safe, NOW)), vec![1]);
    // A human's own action has no diagnosis behind it and no confidence to gate on.
    let human = with_action(
        state(),
        action(1, 7, "wipe_node", "n2", ActionStatus::Validated),
    );
    assert_eq!(launched(&advance(&human, NOW)), vec![1]);
}

#[test]
fn loosening_a_protection_waits_for_a_person_in_every_mode_whatever_the_confidence() {
    let mut state = with_action(state(), validated_at("update_limit", 0.99));
    let loosens = "it can raise a limit";
    for spec in &mut state.catalog {
        if spec.name == "update_limit" {
            spec.loosens = Some(loosens.into());
        }
    }
    let effects = advance(&state, NOW);
    assert!(launched(&effects).is_empty(), "{effects:?}");
    assert_eq!(
        gate_reasons(&effects),
        vec![Some(format!(
            "waiting for a human: update_limit loosens a protection ({loosens}); only a person decides that"
        ))]
    );
    // Taking back the operator's own change restores what was there: it is no loosening.
    let mut undo = state.clone();
    undo.actions[0].undoes = Some(ActionId(9));
    assert_eq!(launched(&advance(&undo, NOW)), vec![1]);
    // A person's approval is the decision.
    state.actions[0].approval = Some(Approval::Approved);
    assert_eq!(launched(&advance(&state, NOW)), vec![1]);
}

#[test]
fn an_action_on_something_its_ticket_never_named_waits_for_a_person() {
    let scoped = |mut state: EngineState| {
        for spec in &mut state.catalog {
            if spec.name == "update_limit" {
                spec.acts_on = vec!["node".into()];
            }
        }
        state
    };
    // The ticket is about n2; a limit on n3 is outside it.
    let mut elsewhere = action(1, 7, "update_limit", "n3", ActionStatus::Validated);
    elsewhere.confidence = Some(0.99);
    let outside = scoped(with_action(state(), elsewhere));
    assert_eq!(
        gate_reasons(&advance(&outside, NOW)),
        vec![Some(
            "waiting for a human: n3 is not in the evidence of ticket #7 or its incident"
                .to_string()
        )]
    );
    // Named by the evidence of a ticket of the same incident, it is in scope.
    let mut named = outside.clone();
    let mut symptom = ticket(8, TicketStatus::Open);
    symptom.incident = TicketId(7);
    symptom.evidence = json!({ "peers": ["n3"] });
    named.tickets.push(symptom);
    assert_eq!(launched(&advance(&named, NOW)), vec![1]);
    // The ticket's own target is in scope.
    let mut own = action(1, 7, "update_limit", "n2", ActionStatus::Validated);
    own.confidence = Some(0.99);
    assert_eq!(
        launched(&advance(&scoped(with_action(state(), own)), NOW)),
        vec![1]
    );
}

#[test]
fn an_action_runs_with_its_premises_for_the_shell_to_check_first() {
    let state = with_action(state(), validated_at("restart_node", 0.99));
    let effects = advance(&state, NOW);
    let premises = effects.iter().find_map(|e| match e {
        Effect::RunAction { premises, .. } => Some(premises.clone()),
        _ => None,
    });
    assert_eq!(premises, Some(catalog()[0].premises.clone()));
}

#[test]
fn a_failed_premise_ends_the_action_unrun_and_hands_the_ticket_to_a_human() {
    let state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Executing),
    );
    let failure = PremiseFailure {
        premise: "the node is not serving".into(),
        found: vec!["it is not healthy: found true, expected = false".into()],
    };
    let effects = decide(
        &state,
        Input::ActionFinished {
            undo: Ok(None),
            id: ActionId(1),
            result: ActionResult::PremiseFailed(failure),
        },
        NOW,
        0.5,
    );
    let t = transitions(&effects);
    assert_eq!(t[0].1, ActionStatus::PremiseFailed);
    assert_eq!(
        t[0].2,
        "its premise failed: the node is not serving does not hold (it is not healthy: found true, expected = false)"
    );

    let mut after = state.clone();
    after.actions[0].status = ActionStatus::PremiseFailed;
    after.actions[0].error = Some(t[0].2.clone());
    let tickets = ticket_statuses(&advance(&after, NOW));
    assert_eq!(tickets[0].1, TicketStatus::Escalated);
    assert!(
        tickets[0]
            .2
            .as_deref()
            .unwrap()
            .starts_with("needs a human: action A1 restart_node did not run: its premise failed"),
        "{tickets:?}"
    );
}

// ---- retries ----------------------------------------------------------------------------

fn finished_with(state: &EngineState, error: ContractError, jitter: f64) -> Vec<Effect> {
    let input = Input::ActionFinished {
        undo: Ok(None),
        id: ActionId(1),
        result: ActionResult::Done(Err(error)),
    };
    decide(state, input, NOW, jitter)
}

#[test]
fn a_retryable_failure_backs_off_on_the_engine_clock_with_jitter() {
    let mut running = action(1, 7, "restart_node", "n2", ActionStatus::Executing);
    running.attempts = 2;
    let mut state = with_action(state(), running);
    state.config.retry_base = Duration::from_millis(500);
    state.config.retry_cap = Duration::from_secs(10);
    // The second retry waits 2 × base, of which half is jitter.
    for (jitter, delay) in [(0.0, 500), (1.0, 1_000)] {
        let effects = finished_with(
            &state,
            ContractError::Retryable("connection refused".into()),
            jitter,
        );
        assert_eq!(
            writes(&effects)[0],
            &Write::ActionTransition {
                id: ActionId(1),
                from: ActionStatus::Executing,
                to: ActionStatus::Validated,
                cause: Cause::Executor,
                detail: format!("attempt 2 failed: connection refused; retrying in {delay} ms"),
                update: ActionUpdate {
                    not_before_ms: Some(Some(NOW + delay)),
                    error: Some("connection refused".into()),
                    ..Default::default()
                },
            }
        );
        assert_eq!(effects.last(), Some(&Effect::WakeAt(NOW + delay)));
    }
}

#[test]
fn a_permanent_failure_is_not_retried() {
    let state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Executing),
    );
    let effects = finished_with(
        &state,
        ContractError::Permanent("PD answered 400: store is tombstone".into()),
        0.5,
    );
    let t = transitions(&effects);
    assert_eq!(t[0].1, ActionStatus::Failed);
    assert!(t[0].2.contains("a retry cannot help"), "{t:?}");
}

#[test]
fn a_retryable_failure_fails_once_the_attempts_are_used_up() {
    let mut running = action(1, 7, "restart_node", "n2", ActionStatus::Executing);
    running.attempts = 3;
    let state = with_action(state(), running);
    let effects = finished_with(&state, ContractError::Retryable("timeout".into()), 0.5);
    let t = transitions(&effects);
    assert_eq!(t[0].1, ActionStatus::Failed);
    assert_eq!(t[0].2, "failed after 3 attempt(s): timeout");
}

#[test]
fn a_completed_log_message_writes_its_note_to_the_audit_log() {
    let mut note = action(
        1,
        7,
        general_actions::LOG_MESSAGE,
        "n2",
        ActionStatus::Executing,
    );
    note.params = json!({"message": "hi"}).as_object().cloned().unwrap();
    let state = with_action(state(), note);
    let input = Input::ActionFinished {
        undo: Ok(None),
        id: ActionId(1),
        result: ActionResult::Done(Ok(ActionOutcome {
            summary: "noted: hi".into(),
        })),
    };
    let effects = decide(&state, input, NOW, 0.5);
    assert!(writes(&effects).iter().any(|w| matches!(
        w,
        Write::Audit { event, detail, .. } if event == "log_message" && detail == "noted: hi"
    )));
}

// ---- a ticket follows its actions --------------------------------------------------------

#[test]
fn a_ticket_is_acting_while_an_action_runs_verifying_when_all_completed_escalated_on_failure() {
    let mut state = with_action(
        state(),
        action(1, 7, "update_limit", "n2", ActionStatus::Executing),
    );
    state.tickets[0].status = TicketStatus::Diagnosed;
    assert_eq!(
        ticket_statuses(&advance(&state, NOW))[0].1,
        TicketStatus::Acting
    );

    state.tickets[0].status = TicketStatus::Acting;
    state.actions[0].status = ActionStatus::Completed;
    assert_eq!(
        ticket_statuses(&advance(&state, NOW))[0].1,
        TicketStatus::Verifying
    );

    state.actions[0].status = ActionStatus::Failed;
    state.actions[0].error = Some("boom".into());
    let statuses = ticket_statuses(&advance(&state, NOW));
    assert_eq!(statuses[0].1, TicketStatus::Escalated);
    assert!(statuses[0].2.as_deref().unwrap().contains("boom"));
}

// ---- a human's commands -----------------------------------------------------------------

fn pick(action: &str, params: serde_json::Value, override_for: Option<&str>) -> Command {
    Command::Pick(super::HumanPick {
        ticket: TicketId(7),
        request: operator_protocol::ActionRequest {
            action: action.into(),
            params: params
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        },
        override_for: override_for.map(String::from),
    })
}

#[test]
fn a_humans_pick_is_checked_as_typed_and_written_as_theirs() {
    let mut state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::PremiseFailed),
    );
    state.tickets[0].status = TicketStatus::Escalated;
    let decided = |command| decide(&state, Input::Command(command), NOW, 0.5);

    let effects = decided(pick("restart_node", json!({ "node": "n2" }), None));
    let [
        Effect::Write(Write::Pick {
            action,
            override_for: None,
            cause: Cause::Human,
        }),
    ] = &effects[..]
    else {
        panic!("{effects:?}");
    };
    assert_eq!(action.ticket_id, Some(TicketId(7)));
    assert_eq!(action.risk, Risk::Disruptive);
    assert_eq!(
        action.confidence, None,
        "a human's action carries no confidence"
    );

    for (command, says) in [
        (
            pick("restart_node", json!({ "node": "n9" }), None),
            "is not a node of this cluster",
        ),
        (pick("reboot_everything", json!({}), None), "unknown action"),
        (pick("restart_node", json!({}), None), "missing parameter"),
        (
            pick("restart_node", json!({ "node": "n2" }), Some("n3")),
            "type its target's name exactly: \"n2\"",
        ),
    ] {
        let effects = decided(command);
        let [Effect::Emit(EngineEvent::Notice(text))] = &effects[..] else {
            panic!("{effects:?}");
        };
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn a_pick_starts_the_tickets_plan_over_and_an_override_runs_without_premises() {
    let mut state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::PremiseFailed),
    );
    let mut picked = action(2, 7, "restart_node", "n2", ActionStatus::Validated);
    picked.approval = Some(Approval::Approved);
    picked.premises_overridden = true;
    state.actions.push(picked);
    state.tickets[0].status = TicketStatus::Diagnosed;
    state.tickets[0].plan_start = Some(ActionId(2));

    let effects = advance(&state, NOW);
    let premises = effects.iter().find_map(|e| match e {
        Effect::RunAction { id, premises, .. } if *id == ActionId(2) => Some(premises.clone()),
        _ => None,
    });
    assert_eq!(premises, Some(vec![]), "{effects:?}");

    // Its earlier failure no longer decides the ticket: the pick completed, so it verifies.
    state.actions[1].status = ActionStatus::Completed;
    assert_eq!(
        ticket_statuses(&advance(&state, NOW))[0].1,
        TicketStatus::Verifying
    );
}

#[test]
fn approving_a_live_action_is_a_write_and_approving_an_ended_one_is_a_notice() {
    let state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Validated),
    );
    let effects = decide(
        &state,
        Input::Command(Command::Approve(ActionId(1))),
        NOW,
        0.5,
    );
    assert_eq!(
        effects,
        vec![Effect::Write(Write::Approval {
            id: ActionId(1),
            approval: Approval::Approved,
            cause: Cause::Human,
        })]
    );
    let effects = decide(
        &state,
        Input::Command(Command::Approve(ActionId(9))),
        NOW,
        0.5,
    );
    assert!(matches!(
        &effects[..],
        [Effect::Emit(EngineEvent::Notice(_))]
    ));
}

#[test]
fn cancelling_a_running_action_stops_it_and_records_the_rejection() {
    let mut state = with_action(
        state(),
        action(1, 7, "restart_node", "n2", ActionStatus::Executing),
    );
    state.running.insert(
        ActionId(1),
        RunningAction {
            disrupts: Some(NodeId::from("n2")),
            disruptive: true,
        },
    );
    let effects = decide(
        &state,
        Input::Command(Command::Cancel(ActionId(1))),
        NOW,
        0.5,
    );
    assert!(effects.contains(&Effect::CancelRunning(ActionId(1))));
    assert!(matches!(
        writes(&effects)[..],
        [Write::Approval {
            approval: Approval::Rejected,
            cause: Cause::Human,
            ..
        }]
    ));
}

#[test]
fn mode_and_kill_switch_commands_are_written_as_the_humans() {
    let effects = decide(
        &state(),
        Input::Command(Command::KillSwitch(true)),
        NOW,
        0.5,
    );
    assert_eq!(
        effects,
        vec![Effect::Write(Write::KillSwitch {
            on: true,
            cause: Cause::Human
        })]
    );
}

// ---- the no-regression check --------------------------------------------------------------

/// Ticket 7 verifying since NOW, its update_limit completed (started at trouble 3) with an
/// undo prepared, and these troubles observed after.
fn verifying_after(troubles: &[f64], undo: bool) -> EngineState {
    let mut action = action(1, 7, "update_limit", "n2", ActionStatus::Completed);
    action.undo = undo.then(|| UndoPlan {
        action: "update_limit".into(),
        params: Default::default(),
        risk: Risk::Safe,
    });
    let mut state = with_action(state(), action);
    state.tickets[0].status = TicketStatus::Verifying;
    state.tickets[0].timeline.verifying_since_ms = Some(NOW);
    let trouble = |score: f64| operator_protocol::Trouble {
        score,
        summary: format!("score {score}"),
    };
    state.trouble_before.insert(ActionId(1), trouble(3.0));
    state.trouble = troubles
        .iter()
        .enumerate()
        .map(|(i, s)| (NOW + i as u64 * 250, trouble(*s)))
        .collect();
    state
}

fn regressions(state: &EngineState) -> Vec<Effect> {
    super::rollback::regressions(state, NOW + 1_000)
}

#[test]
fn a_fix_that_makes_things_worse_is_rolled_back_and_the_ticket_goes_to_a_human() {
    let effects = regressions(&verifying_after(&[3.0, 6.0, 6.0, 6.0], true));
    let w = writes(&effects);
    assert!(
        matches!(
            w[0],
            Write::Undo {
                of: ActionId(1),
                cause: Cause::Executor
            }
        ),
        "{w:?}"
    );
    let t = transitions(&effects);
    assert_eq!(t[0].0, 1);
    assert_eq!(t[0].1, ActionStatus::RolledBack);
    assert!(
        t[0].2
            .contains("trouble 3 (score 3) before it, 6 (score 6)"),
        "{}",
        t[0].2
    );
    let statuses = ticket_statuses(&effects);
    assert_eq!(statuses[0].1, TicketStatus::Escalated);
    let reason = statuses[0].2.clone().unwrap();
    assert!(
        reason.starts_with("needs a human: the cluster got worse after action A1 update_limit")
            && reason.ends_with("rolled back"),
        "{reason}"
    );
}

#[test]
fn noise_within_the_margin_or_too_few_observations_roll_nothing_back() {
    assert!(regressions(&verifying_after(&[3.5, 4.0, 3.9], true)).is_empty());
    assert!(regressions(&verifying_after(&[9.0, 9.0], true)).is_empty());
    assert!(regressions(&verifying_after(&[9.0, 3.0, 9.0, 9.0], true)).is_empty());
}

#[test]
fn worse_after_an_irreversible_fix_goes_to_a_human_without_an_undo() {
    let effects = regressions(&verifying_after(&[9.0, 9.0, 9.0], false));
    assert!(
        !writes(&effects)
            .iter()
            .any(|w| matches!(w, Write::Undo { .. }))
    );
    let reason = ticket_statuses(&effects)[0].2.clone().unwrap();
    assert!(
        reason.contains("nothing it did can be taken back"),
        "{reason}"
    );
}

/// Trouble that can bring a symptom about contests any cause named for it while it is there,
/// in the symptom's incident or not, and for its aftermath and a settle after it ended.
#[test]
fn trouble_that_could_bring_a_symptom_about_keeps_its_diagnosis_below_sure() {
    let mut state = state();
    state.consequences = vec![Consequence::new("redis_disconnected", "ghost_allowing")];
    let mut ghost = ticket(8, TicketStatus::Diagnosing);
    ghost.invariant = "ghost_allowing".into();
    ghost.target = "n1".into();
    ghost.timeline.opened_ms = NOW;
    let mut redis = ticket(7, TicketStatus::Open);
    redis.invariant = "redis_disconnected".into();
    redis.target = "n1".into();
    ghost.incident = redis.id;
    state.tickets = vec![redis.clone(), ghost.clone()];
    assert_eq!(
        state.could_explain(&ghost),
        vec!["#7 redis_disconnected on n1"],
        "its incident's open cause"
    );
    assert!(
        state.could_explain(&redis).is_empty(),
        "a symptom explains no cause"
    );

    // Resolved as the symptom opened: still there when it broke.
    redis.status = TicketStatus::Resolved;
    redis.timeline.resolved_ms = Some(NOW - state.settle_ms());
    state.tickets = vec![ghost.clone()];
    state.recently_resolved = vec![redis.clone()];
    assert_eq!(state.could_explain(&ghost).len(), 1);
    // Resolved well before: the symptom is a problem of its own.
    redis.timeline.resolved_ms = Some(NOW - state.settle_ms() - 1);
    state.recently_resolved = vec![redis];
    assert!(state.could_explain(&ghost).is_empty());

    // Any open trouble of another incident counts, related or not.
    let mut elsewhere = ticket(9, TicketStatus::Open);
    elsewhere.target = "n3".into();
    state.tickets.push(elsewhere);
    assert_eq!(state.could_explain(&ghost), vec!["#9 node_down on n3"]);
}
