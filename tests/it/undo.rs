//! Undo against real components: an action that ran is taken back by `actions undo` (the same
//! write the CLI makes), through the running engine's gates, restoring what was read right
//! before it ran: a key's limit on a real rate limiter cluster, a region's leader on the TiKV
//! simulator. Irreversible actions refuse with their reason, and each catalog declares how
//! every action is taken back.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::*;
use operator_tui::deploy::{Deployment, SubjectName};
use operator_tui::engine::general_actions;
use operator_tui::model::{ActionId, ActionStatus, Approval, Cause, Mode};
use operator_tui::store::Store;
use serde_json::{Value, json};

/// Every action says how it is taken back; an inverse names an action of the same catalog,
/// only parameters that action has, and a capture tool the subject has.
fn assert_every_action_declares_its_reversal(deployment: &Deployment) {
    let subject = &deployment.subject;
    let mut catalog = subject.actions();
    catalog.extend(general_actions::specs());
    let tools: Vec<String> = subject.tools().into_iter().map(|t| t.name).collect();
    for spec in &catalog {
        match &spec.reversal {
            Reversal::Undeclared => panic!("{} declares no reversal", spec.name),
            Reversal::Irreversible { why } => assert!(!why.is_empty(), "{}", spec.name),
            Reversal::NothingToUndo => {}
            Reversal::Inverse {
                action,
                params,
                capture,
            } => {
                let inverse = catalog
                    .iter()
                    .find(|s| &s.name == action)
                    .unwrap_or_else(|| {
                        panic!("{}'s inverse {action} is not in the catalog", spec.name)
                    });
                for name in params.keys() {
                    assert!(
                        inverse.params.iter().any(|p| &p.name == name),
                        "{}'s inverse gives {action} a parameter {name} it does not take",
                        spec.name
                    );
                }
                if let Some(call) = capture {
                    assert!(
                        tools.contains(&call.tool),
                        "{}: no tool {}",
                        spec.name,
                        call.tool
                    );
                }
            }
        }
    }
}

/// A human's action, approved, for the running engine to pick up as the CLI's would be.
fn run_approved(store: &mut Store, name: &str, params: Value, risk: Risk) -> ActionId {
    let new = support::human_action(name, params, risk);
    let id = store.insert_action(&new, Cause::Cli, now()).unwrap();
    store
        .set_approval(id, Approval::Approved, Cause::Cli, now())
        .unwrap();
    id
}

fn now() -> u64 {
    operator_tui::clock::Clock::now_ms(&operator_tui::clock::SystemClock)
}

async fn completed(store: &Store, id: ActionId) -> operator_tui::model::Action {
    support::wait_for_store(
        store,
        "the action completes",
        Duration::from_secs(30),
        |s| {
            let action = s.action(id).unwrap()?;
            assert!(
                !action.status.is_final() || action.status == ActionStatus::Completed,
                "{action:?}"
            );
            (action.status == ActionStatus::Completed).then_some(action)
        },
    )
    .await
}

#[tokio::test]
async fn a_limit_change_is_undone_to_the_limit_read_before_it_and_a_restart_says_it_cannot_be() {
    let _slot = support::heavy("undo");
    let dir = tempfile::tempdir().unwrap();
    let (deployment, handle, db) = support::local_engine(
        SubjectName::Ratelimiter,
        dir.path(),
        Arc::new(operator_tui::brains::RulesBrain),
        Mode::Approve,
    )
    .await;
    assert_every_action_declares_its_reversal(&deployment);
    let key = json!({ "key": "undo:key" });
    let before =
        support::tool(&deployment, "redis_key", key.clone()).await["redis"]["limit"].clone();
    assert!(before.as_u64().is_some(), "{before}");

    let mut store = Store::open(&db).unwrap();
    let change = run_approved(
        &mut store,
        "update_limit",
        json!({ "key": "undo:key", "limit": 7, "window_ms": 1000 }),
        Risk::Safe,
    );
    let done = completed(&store, change).await;
    let plan = done.undo.expect("an undo prepared before it ran");
    assert_eq!(plan.action, "update_limit");
    assert_eq!(plan.params["limit"], before, "{plan:?}");
    assert_eq!(
        support::tool(&deployment, "redis_key", key.clone()).await["redis"]["limit"],
        7
    );

    let undo = store.undo(change, Cause::Cli, now()).unwrap();
    let again = store.undo(change, Cause::Cli, now()).unwrap_err();
    assert!(
        again.to_string().contains("already being taken back"),
        "{again}"
    );
    let undone = completed(&store, undo).await;
    assert_eq!(undone.undoes, Some(change));
    assert_eq!(
        support::tool(&deployment, "redis_key", key).await["redis"]["limit"],
        before,
        "the limit in force before is back"
    );
    let audit = store.audit_log(None, 200).unwrap();
    assert!(
        audit.iter().any(|row| row.event == "undo_requested"
            && row.cause == Cause::Cli
            && row
                .detail
                .contains(&format!("takes back action {change} update_limit"))),
        "{audit:?}"
    );

    // A restart (of a node that is down, as its premise asks) cannot be taken back, and says
    // why.
    deployment
        .target
        .kill(&NodeId::from("node-3"))
        .await
        .unwrap();
    let restart = run_approved(
        &mut store,
        "restart_node",
        json!({ "node": "node-3" }),
        Risk::Disruptive,
    );
    let restarted = completed(&store, restart).await;
    assert!(restarted.undo.is_none());
    let refused = store
        .undo(restart, Cause::Cli, now())
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("cannot be taken back") && refused.contains("in-memory state"),
        "{refused}"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_leader_move_on_the_simulator_is_undone_back_to_the_store_that_led() {
    let dir = tempfile::tempdir().unwrap();
    let (deployment, handle, db) = support::local_engine(
        SubjectName::Tikv,
        dir.path(),
        Arc::new(operator_tui::brains::RulesBrain),
        Mode::Approve,
    )
    .await;
    assert_every_action_declares_its_reversal(&deployment);
    let region = json!({ "region": 2 });
    let led_by =
        support::tool(&deployment, "region_detail", region.clone()).await["leader_store_id"]
            .as_u64()
            .expect("region 2 has a leader");
    let other = if led_by == 1 { 2 } else { 1 };

    let mut store = Store::open(&db).unwrap();
    let moved = run_approved(
        &mut store,
        "transfer_leader",
        json!({ "region": 2, "to_store": other }),
        Risk::Safe,
    );
    let done = completed(&store, moved).await;
    assert_eq!(
        done.undo.as_ref().unwrap().params["to_store"],
        led_by,
        "{done:?}"
    );
    assert_eq!(
        support::tool(&deployment, "region_detail", region.clone()).await["leader_store_id"],
        other
    );

    let undo = store.undo(moved, Cause::Cli, now()).unwrap();
    completed(&store, undo).await;
    assert_eq!(
        support::tool(&deployment, "region_detail", region).await["leader_store_id"],
        led_by,
        "the leader is back where it was"
    );
    handle.shutdown().await.unwrap();
}
