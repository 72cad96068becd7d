//! Never worse, against real components (a real rate limiter cluster, execute mode): what a
//! confident model asks for does not run where only a person may decide (a replayed
//! OpenAI-compatible model answers a node crash with a billion-check limit for a key it was
//! never asked about: the action waits for a person and the key keeps its limit), and what a
//! person did by hand stays theirs (a node started with other flags goes to a human).

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::*;
use operator_tui::deploy::SubjectName;
use operator_tui::events::Command;
use operator_tui::model::Mode;
use operator_tui::store::Store;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_models_raised_limit_for_a_key_nobody_named_waits_for_a_person() {
    let _slot = support::one_cluster_at_a_time();
    let (_server, brain) =
        support::replay::openai_replaying("openai/raise_a_denied_keys_limit.sse").await;
    let dir = tempfile::tempdir().unwrap();
    let (deployment, handle, db) = support::local_engine(
        SubjectName::Ratelimiter,
        dir.path(),
        Arc::new(brain),
        Mode::Execute,
    )
    .await;
    let before = support::tool(&deployment, "redis_key", json!({ "key": "abuser-0" })).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle
        .send(Command::InjectChaos(ChaosRequest {
            name: "kill_node".into(),
            params: Default::default(),
        }))
        .await;
    let store = Store::open(&db).unwrap();
    let action = support::wait_for_store(
        &store,
        "the model's limit waits for a person",
        Duration::from_secs(30),
        |s| {
            s.actions(None, 10)
                .unwrap()
                .into_iter()
                .find(|a| a.name == "update_limit" && a.waiting.is_some())
        },
    )
    .await;
    // Three more seconds in execute mode: it stays where it is.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let action = store.action(action.id).unwrap().unwrap();
    assert_eq!(action.status, ActionStatus::Validated, "{action:?}");
    // The model claimed 99 % for a cause the runbook has no checks for on a node crash: what
    // it earns stays below the disruptive gate, and both are in the ticket's reasoning.
    let earned = action.confidence.unwrap();
    assert!(earned <= 0.8, "earned {earned}");
    let reasoning = &store.diagnoses(action.ticket_id.unwrap()).unwrap()[0].reasoning;
    assert!(reasoning.contains("99 % claimed"), "{reasoning}");
    let waiting = action.waiting.clone().unwrap();
    assert!(
        waiting.starts_with("waiting for a human: update_limit loosens a protection"),
        "{waiting}"
    );
    let after = support::tool(&deployment, "redis_key", json!({ "key": "abuser-0" })).await;
    assert_eq!(before["redis"]["limit"], after["redis"]["limit"], "{after}");
    assert_ne!(after["redis"]["limit"], json!(1_000_000_000u64), "{after}");
    handle.shutdown().await.unwrap();
    drop(deployment);
}

/// A person stops node-2 and starts it again by hand with another default limit, on a real
/// cluster with the rules brain in execute mode: the operator names the flag it differs in,
/// waits for the person (the stop's grace, then the flag's), then hands the ticket to a
/// human as such (not as a wait that made things worse); it never restarts the node, and the
/// node keeps the person's flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_a_person_started_with_other_flags_is_theirs_and_goes_to_a_human() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (deployment, handle, db) = support::local_engine(
        SubjectName::Ratelimiter,
        dir.path(),
        Arc::new(operator_tui::brains::RulesBrain),
        Mode::Execute,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let node = NodeId::from("node-2");
    let pid_of = |d: &serde_json::Value| d["pid"].as_u64();
    deployment
        .target
        .stop(&node)
        .await
        .expect("the person's stop");
    deployment
        .target
        .start_with(&node, &[("default-limit".into(), "250".into())])
        .await
        .expect("the person's start with another limit");
    let started = pid_of(&deployment.target.describe(&node).await.unwrap());
    let store = Store::open(&db).unwrap();
    let ticket = support::wait_for_store(
        &store,
        "the other flag handed to a human",
        Duration::from_secs(120),
        |s| {
            s.tickets(20).unwrap().into_iter().find(|t| {
                t.invariant == "flags_differ"
                    && t.status == operator_tui::model::TicketStatus::Escalated
            })
        },
    )
    .await;
    assert_eq!(ticket.target, "node-2");
    assert!(
        ticket.message.contains("--default-limit 250"),
        "{}",
        ticket.message
    );
    let actions = store.actions(Some(ticket.id), 10).unwrap();
    assert!(
        actions.iter().all(|a| a.name == "wait"),
        "only waited: {actions:?}"
    );
    let reason = ticket.reason.clone().unwrap_or_default();
    assert!(reason.contains("changed nothing"), "{reason}");
    let detail = support::tool(&deployment, "node_detail", json!({ "node": "node-2" })).await;
    assert_eq!(
        detail["health"]["flags"]["default-limit"], "250",
        "{detail}"
    );
    let now = pid_of(&deployment.target.describe(&node).await.unwrap());
    assert_eq!(now, started, "nobody restarted the person's node");
    handle.shutdown().await.unwrap();
    drop(deployment);
}

/// A counter drift on a real cluster, answered by a brain sure (99 %) that the counter is
/// corrupt and must be reset, in execute mode: the drift ends with the key's window, and the
/// reset would destroy the key's count for exactly as long, so it waits and says so; the
/// window passes, the ticket resolves, and the key's count was never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confident_reset_of_a_drift_that_ends_with_its_window_waits_and_never_runs() {
    use operator_tui::model::{ActionStatus as Status, TicketStatus};
    use operator_tui::testing::{ScriptedBrain, diagnosis_with, step};

    let _slot = support::one_cluster_at_a_time();
    let sure_it_is_corrupt = ScriptedBrain(Box::new(|context| {
        let mut diagnosis = diagnosis_with(vec![step(
            "reset_counter",
            json!({ "key": context.ticket.target }),
        )]);
        diagnosis.root_cause.category = "counter_corruption".into();
        diagnosis.confidence = 0.99;
        Ok(diagnosis)
    }));
    let dir = tempfile::tempdir().unwrap();
    let (deployment, handle, db) = support::local_engine(
        SubjectName::Ratelimiter,
        dir.path(),
        Arc::new(sure_it_is_corrupt),
        Mode::Execute,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = support::tool(&deployment, "redis_key", json!({ "key": "demo-hot" })).await;
    handle
        .send(Command::InjectChaos(ChaosRequest {
            name: "counter_drift".into(),
            params: Default::default(),
        }))
        .await;
    let store = Store::open(&db).unwrap();
    let waiting = support::wait_for_store(
        &store,
        "the reset waits for the window",
        Duration::from_secs(30),
        |s| {
            s.actions(None, 10)
                .unwrap()
                .into_iter()
                .find(|a| a.name == "reset_counter" && a.waiting.is_some())
        },
    )
    .await;
    let reason = waiting.waiting.clone().unwrap();
    assert!(
        reason.starts_with("waiting: the drift on demo-hot ends with its window in "),
        "{reason}"
    );
    assert!(
        reason.contains("reset_counter would destroy the key's count"),
        "{reason}"
    );
    let ticket = waiting.ticket_id.unwrap();
    support::wait_for_store(
        &store,
        "the drift's ticket to resolve with the window",
        Duration::from_secs(60),
        |s| {
            s.ticket(ticket)
                .unwrap()
                .filter(|t| t.status == TicketStatus::Resolved)
        },
    )
    .await;
    let reset = store.action(waiting.id).unwrap().unwrap();
    assert_eq!(reset.status, Status::Cancelled, "{reset:?}");
    assert_eq!(reset.attempts, 0, "it never ran: {reset:?}");
    let after = support::tool(&deployment, "redis_key", json!({ "key": "demo-hot" })).await;
    assert_eq!(
        before["redis"]["generation"], after["redis"]["generation"],
        "the key's count was never dropped: {after}"
    );
    handle.shutdown().await.unwrap();
    drop(deployment);
}
