//! The executor's own premise checks against a real rate limiter cluster (real redis-server,
//! real nodes): a replayed model that is confidently wrong (Claude recommending a restart of a
//! node that serves, an OpenAI-compatible model recommending a reset of a counter that agrees)
//! gets its action validated; outside its ticket's evidence it first waits for a person, and
//! once a person approves it, it is still not run, because the fresh read right before it
//! shows the premise false. The ticket goes to a human with what was found.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::*;
use operator_tui::brains::anthropic::{AnthropicBrain, AnthropicConfig};
use operator_tui::deploy::{self, DeploySpec, SubjectName, TargetName};
use operator_tui::engine::{Engine, EngineConfig};
use operator_tui::events::Command;
use operator_tui::model::{Action, Mode, TicketStatus};
use operator_tui::store::Store;
use serde_json::json;
use support::replay::{ReplayServer, Reply};

/// Starts a local cluster and an engine in execute mode on `brain`, injects `chaos`, approves
/// as a person the remedy that waits for one (it acts outside its ticket's evidence), and
/// returns the action once it has ended, with the store and what the target said of
/// `watched` before and after.
async fn wrong_remedy(
    brain: Arc<dyn Brain>,
    chaos: &str,
    chaos_params: serde_json::Value,
    watched: &str,
) -> (Action, Store, serde_json::Value, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let spec = DeploySpec {
        subject: SubjectName::Ratelimiter,
        target: TargetName::Local,
        ..DeploySpec::default()
    };
    let deployment = deploy::bring_up(&spec, dir.path(), &|_| {})
        .await
        .expect("the local cluster starts");
    let before = deployment
        .target
        .describe(&NodeId::from(watched))
        .await
        .unwrap();
    let db = dir.path().join("operator.db");
    let engine = Engine::new(
        deployment.subject.clone(),
        deployment.target.clone(),
        brain,
        Store::open(&db).unwrap(),
        Arc::new(operator_tui::clock::SystemClock),
        EngineConfig {
            mode: Some(Mode::Execute),
            ..Default::default()
        },
    );
    let handle = engine.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle
        .send(Command::InjectChaos(ChaosRequest {
            name: chaos.into(),
            params: serde_json::from_value(chaos_params).unwrap(),
        }))
        .await;
    let store = Store::open(&db).unwrap();
    let (action, waited) = support::approving_until(
        &store,
        &handle,
        "the recommended action ends",
        Duration::from_secs(30),
        |s| {
            s.actions(None, 10)
                .unwrap()
                .into_iter()
                .find(|a| a.status.is_final())
        },
    )
    .await;
    // Outside its ticket's evidence, the wrong remedy first waited for a person.
    assert!(
        waited
            .iter()
            .any(|w| w.contains("is not in the evidence of ticket")),
        "{waited:?}"
    );
    let after = deployment
        .target
        .describe(&NodeId::from(watched))
        .await
        .unwrap();
    handle.shutdown().await.unwrap();
    drop(deployment);
    (action, store, before, after)
}

fn assert_handed_to_a_human(store: &Store, action: &Action, premise: &str) {
    assert_eq!(action.status, ActionStatus::PremiseFailed, "{action:?}");
    assert_eq!(action.attempts, 1, "it reached the executor once");
    let error = action.error.clone().unwrap();
    assert!(
        error.starts_with(&format!("its premise failed: {premise} does not hold (")),
        "{error}"
    );
    let events = store.action_events(action.id).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.to == ActionStatus::PremiseFailed && e.detail == error),
        "{events:?}"
    );
    let audit = store.audit_log(action.ticket_id, 100).unwrap();
    assert!(audit.iter().any(|r| r.detail.contains(&error)), "{audit:?}");
    let ticket = store.ticket(action.ticket_id.unwrap()).unwrap().unwrap();
    assert_eq!(ticket.status, TicketStatus::Escalated);
    assert!(
        ticket.reason.as_deref().unwrap().starts_with(&format!(
            "needs a human: action {} {}",
            action.id, action.name
        )),
        "{:?}",
        ticket.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_claude_that_restarts_a_healthy_node_restarts_nothing() {
    let _slot = support::one_cluster_at_a_time();
    let server =
        ReplayServer::start(vec![Reply::sse("anthropic/restart_a_healthy_node.sse")]).await;
    let brain = AnthropicBrain::new(AnthropicConfig::new(
        &server.url,
        "sk-ant-test-0123456789",
        "claude-sonnet-4-5",
    ))
    .unwrap();
    // The counter drifts; the model blames node-3, which serves normally.
    let (action, store, before, after) =
        wrong_remedy(Arc::new(brain), "counter_drift", json!({}), "node-3").await;
    let diagnoses = store.diagnoses(action.ticket_id.unwrap()).unwrap();
    assert_eq!(action.name, "restart_node", "{action:?} {diagnoses:?}");
    // It claimed 95 %; the runbook's checks do not find its cause, so it earned less and
    // waited for a person, whose approval the premise still stops.
    assert!(action.confidence.unwrap() < 0.95, "{action:?}");
    assert!(
        diagnoses[0].reasoning.contains("95 % claimed"),
        "{diagnoses:?}"
    );
    assert_handed_to_a_human(&store, &action, "the node is not serving normally");
    assert_eq!(
        before["pid"], after["pid"],
        "node-3 is the same process: nothing restarted it"
    );
    assert_eq!(after["state"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_openai_model_that_resets_a_counter_without_drift_resets_nothing() {
    let _slot = support::one_cluster_at_a_time();
    let (_server, brain) =
        support::replay::openai_replaying("openai/reset_a_key_without_drift.sse").await;
    // node-2 dies; the model blames a quiet key's counter, which agrees with the nodes.
    let (action, store, _, after) =
        wrong_remedy(Arc::new(brain), "kill_node", json!({}), "node-2").await;
    assert_eq!(action.name, "reset_counter");
    assert_eq!(
        action.destroys.as_deref(),
        Some("the key's count for the current window: its clients get a fresh quota")
    );
    assert_handed_to_a_human(
        &store,
        &action,
        "the key's counter in Redis still disagrees with what the nodes allowed",
    );
    assert_eq!(
        after["state"], "exited",
        "nothing else was done about node-2 either: a human decides"
    );
}
