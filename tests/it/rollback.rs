//! The no-regression check against real components: a replayed OpenAI-compatible model that is
//! confidently wrong gets its reversible remedy run (outside its ticket's evidence it waits for
//! a person, and the test approves it as one), the cluster gets worse, and the executor
//! takes it back: a hot key throttled to one check a second on a real rate limiter cluster
//! (denials surge), a healthy store drained on the TiKV simulator (its leaders pile up
//! elsewhere, a new violation).
//! The action ends rolled_back with the trouble before and after, its undo restores what was
//! there, and the ticket goes to a human.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::*;
use operator_tui::deploy::{self, DeploySpec, Deployment, SubjectName, TargetName};
use operator_tui::engine::{Engine, EngineConfig};
use operator_tui::events::Command;
use operator_tui::model::{Action, ActionStatus, Mode, TicketStatus};
use operator_tui::store::Store;
use serde_json::{Value, json};

struct Rolled {
    action: Action,
    undo: Action,
    store: Store,
    deployment: Deployment,
    _dir: tempfile::TempDir,
}

/// What goes wrong first: a chaos of the catalog, or a drill done from outside.
enum Fault {
    Chaos(&'static str, Value),
    Drill(&'static str),
}

/// A cluster of `subject`, an engine in execute mode on a model replaying `fixture`, the
/// `fault` done; returns once the recommended action has been rolled back and its undo has
/// completed. The engine is stopped; the cluster still runs.
async fn wrong_and_rolled_back(subject: SubjectName, fixture: &str, fault: Fault) -> Rolled {
    let dir = tempfile::tempdir().unwrap();
    let (_server, brain) = support::replay::openai_replaying(fixture).await;
    let spec = DeploySpec {
        subject,
        target: TargetName::Local,
        ..DeploySpec::default()
    };
    let deployment = deploy::bring_up(&spec, dir.path(), &|_| {})
        .await
        .expect("the local cluster starts");
    let db = dir.path().join("operator.db");
    let handle = Engine::new(
        deployment.subject.clone(),
        deployment.target.clone(),
        Arc::new(brain),
        Store::open(&db).unwrap(),
        Arc::new(operator_tui::clock::SystemClock),
        EngineConfig {
            mode: Some(Mode::Execute),
            ..Default::default()
        },
    )
    .start();
    // A few observations of the healthy cluster first: the workload's rates settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    match fault {
        Fault::Chaos(name, params) => {
            handle
                .send(Command::InjectChaos(ChaosRequest {
                    name: name.into(),
                    params: serde_json::from_value(params).unwrap(),
                }))
                .await
        }
        Fault::Drill(name) => {
            let drills = deployment.drills.clone().expect("the subject has drills");
            drills.start(name).await.unwrap();
        }
    }
    let store = Store::open(&db).unwrap();
    // A wrong remedy outside its ticket's evidence waits for a person: these tests are about
    // what follows when one says yes.
    let ((action, undo), _) = support::approving_until(
        &store,
        &handle,
        "the wrong remedy rolled back and its undo completed",
        Duration::from_secs(45),
        |s| {
            let actions = s.actions(None, 20).unwrap();
            let rolled = actions
                .iter()
                .find(|a| a.status == ActionStatus::RolledBack)?;
            let undo = actions
                .iter()
                .find(|a| a.undoes == Some(rolled.id) && a.status == ActionStatus::Completed)?;
            Some((rolled.clone(), undo.clone()))
        },
    )
    .await;
    handle.shutdown().await.unwrap();
    Rolled {
        action,
        undo,
        store,
        deployment,
        _dir: dir,
    }
}

fn assert_rolled_back_and_handed_over(rolled: &Rolled, name: &str) {
    assert_eq!(rolled.action.name, name);
    let events = rolled.store.action_events(rolled.action.id).unwrap();
    let why = events
        .iter()
        .find(|e| e.to == ActionStatus::RolledBack)
        .map(|e| e.detail.clone())
        .unwrap_or_else(|| panic!("no rolled_back event: {events:?}"));
    assert!(
        why.starts_with("the cluster got worse after it: trouble "),
        "{why}"
    );
    let ticket = rolled
        .store
        .ticket(rolled.action.ticket_id.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(ticket.status, TicketStatus::Escalated);
    let reason = ticket.reason.unwrap();
    assert!(
        reason.starts_with("needs a human: the cluster got worse after action")
            && reason.ends_with("rolled back"),
        "{reason}"
    );
    let audit = rolled.store.audit_log(ticket.id.into(), 200).unwrap();
    assert!(
        audit.iter().any(|r| r.event == "undo_requested" && r.cause == operator_tui::model::Cause::Executor),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_throttled_by_a_wrong_diagnosis_gets_its_limit_back() {
    let _slot = support::one_cluster_at_a_time();
    let rolled = wrong_and_rolled_back(
        SubjectName::Ratelimiter,
        "openai/limit_the_hot_key_to_one.sse",
        Fault::Chaos("kill_node", json!({})),
    )
    .await;
    assert_rolled_back_and_handed_over(&rolled, "update_limit");
    assert_eq!(rolled.undo.name, "update_limit");
    let limit = support::tool(
        &rolled.deployment,
        "redis_key",
        json!({ "key": "demo-hot" }),
    )
    .await;
    assert_eq!(
        limit["redis"]["limit"],
        json!(operator_ratelimiter::workload::HOT_KEY_LIMIT),
        "the limit in force before the wrong remedy is back: {limit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_store_drained_by_a_wrong_diagnosis_is_undrained() {
    let rolled = wrong_and_rolled_back(
        SubjectName::Tikv,
        // max-replicas set past the store count: every region short of a replica.
        "openai/drain_a_healthy_store.sse",
        Fault::Drill("max_replicas_raised"),
    )
    .await;
    assert_rolled_back_and_handed_over(&rolled, "drain_store");
    assert_eq!(rolled.undo.name, "undrain_store");
    // store_detail reads evictions from the latest observation: take a fresh one.
    rolled.deployment.subject.observe().await.unwrap();
    let store = support::tool(
        &rolled.deployment,
        "store_detail",
        json!({ "store": "store-1" }),
    )
    .await;
    assert_eq!(
        store["leader_eviction"],
        Value::Null,
        "no eviction left: {store}"
    );
    assert!(rolled.store.open_residue("tikv").unwrap().is_empty());
}
