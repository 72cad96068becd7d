//! The model against what the real cluster does under the same disturbance (the figures in
//! the comments come from the live drills): every test runs on a paused clock, so seconds of
//! a cluster's life pass at once.

use std::time::Duration;

use operator_protocol::*;
use serde_json::json;

use super::SimulatedRateLimiter;
use crate::invariants::{COUNTER_DRIFT, NODE_DOWN, REDIS_DISCONNECTED};

const START: u64 = 1_800_000_000_000;

async fn violations(sim: &SimulatedRateLimiter) -> Vec<(String, String)> {
    let observation = sim.observe().await.unwrap();
    sim.check(&observation)
        .into_iter()
        .map(|v| (v.invariant, v.target))
        .collect()
}

fn disturbance(name: &str, params: serde_json::Value) -> DrawnDisturbance {
    DrawnDisturbance {
        name: name.into(),
        target: None,
        params: serde_json::from_value(params).unwrap(),
    }
}

async fn run(request: (&str, serde_json::Value), sim: &SimulatedRateLimiter) -> String {
    let request = ActionRequest {
        action: request.0.into(),
        params: serde_json::from_value(request.1).unwrap(),
    };
    sim.execute(&request, sim).await.unwrap().summary
}

#[tokio::test(start_paused = true)]
async fn a_healthy_cluster_under_the_demo_workload_breaks_nothing_and_keeps_counts() {
    let sim = SimulatedRateLimiter::new(START);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(violations(&sim).await, vec![]);
    let world = sim.world().await;
    assert_eq!(world.serving, 1.0);
    assert!(world.counts.len() >= 9, "{:?}", world.counts.keys());
    // What the nodes were told they allowed is what Redis holds, key by key.
    for count in world.counts.values() {
        assert_eq!(count.backed, Some(count.value), "{world:?}");
    }
    assert_eq!(
        world.protections["limit:demo-hot"].value,
        crate::workload::HOT_KEY_LIMIT as f64
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_pause_disconnects_redis_and_its_queued_writes_land_when_it_ends() {
    let sim = SimulatedRateLimiter::new(START);
    tokio::time::sleep(Duration::from_secs(6)).await;
    sim.apply(&disturbance("redis_client_pause", json!({ "ms": 3000 })))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        violations(&sim)
            .await
            .contains(&(REDIS_DISCONNECTED.into(), "redis".into()))
    );
    let world = sim.world().await;
    assert_eq!(
        world.unreadable,
        vec!["redis".to_string()],
        "a paused Redis reads nothing"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Over: Redis holds the units the nodes sent while it was paused, which none of them was
    // told it allowed (they failed open): uncertain, so within the tolerance.
    let facts = sim.with(|m| m.facts());
    let hot = facts.keys.iter().find(|k| k.key == "demo-hot").unwrap();
    assert!(hot.uncertain > 0, "{hot:?}");
    assert!(
        hot.drift() > 0 && hot.drift() as u64 <= hot.uncertain,
        "{hot:?}"
    );
    assert!(
        !violations(&sim)
            .await
            .iter()
            .any(|(i, _)| i == COUNTER_DRIFT)
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_and_a_persons_stop_are_told_apart_and_a_restart_starts_afresh() {
    let sim = SimulatedRateLimiter::new(START);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (redis, node) = (NodeId::from("redis"), NodeId::from("node-2"));
    sim.kill(&redis).await.unwrap();
    sim.stop(&node).await.unwrap();
    // Told to stop, a node answers nothing while it drains, and still runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.describe(&node).await.unwrap()["state"], "running");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let seen = violations(&sim).await;
    assert!(
        seen.contains(&(REDIS_DISCONNECTED.into(), "redis".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(NODE_DOWN.into(), "node-2".into())),
        "{seen:?}"
    );
    let crashed = sim.describe(&redis).await.unwrap();
    assert_eq!(crashed["state"], "exited");
    assert_eq!(crashed["stopped_deliberately"], serde_json::Value::Null);
    assert_eq!(
        sim.describe(&node).await.unwrap()["stopped_deliberately"],
        true
    );
    // A person's start wins the port; the operator's second start is refused.
    sim.start(&node).await.unwrap();
    assert!(matches!(
        sim.start(&node).await,
        Err(ContractError::Refused(_))
    ));
    assert!(
        run(("restart_redis", json!({})), &sim)
            .await
            .contains("restarted")
    );
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(violations(&sim).await, vec![]);
    // Redis came back empty: the hot key's limit went with the crash.
    assert!(!sim.world().await.protections.contains_key("limit:demo-hot"));
}

#[tokio::test(start_paused = true)]
async fn drift_injected_behind_the_nodes_is_seen_and_repaired_to_what_they_allowed() {
    let sim = SimulatedRateLimiter::new(START);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let request = ChaosRequest {
        name: "counter_drift".into(),
        params: serde_json::from_value(json!({ "units": 150 })).unwrap(),
    };
    sim.inject(&request, &*sim).await.unwrap();
    assert!(
        violations(&sim)
            .await
            .contains(&(COUNTER_DRIFT.into(), "demo-hot".into()))
    );
    let summary = run(("repair_counter", json!({ "key": "demo-hot" })), &sim).await;
    assert!(summary.contains("by -150"), "{summary}");
    assert_eq!(violations(&sim).await, vec![]);
}

#[tokio::test(start_paused = true)]
async fn a_flush_loses_counts_and_limits_and_a_full_redis_refuses_the_nodes_writes() {
    let sim = SimulatedRateLimiter::new(START);
    tokio::time::sleep(Duration::from_secs(6)).await;
    sim.apply(&disturbance("redis_flushall", json!({})))
        .await
        .unwrap();
    let world = sim.world().await;
    assert!(
        world.counts.is_empty() && world.protections.is_empty(),
        "{world:?}"
    );
    sim.apply(&disturbance("redis_maxmemory", json!({ "kb": 600 })))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let facts = sim.with(|m| m.facts());
    assert!(
        facts.redis.reachable,
        "the operator still reads a full Redis"
    );
    assert!(
        facts
            .nodes
            .values()
            .all(|n| n.redis_error_class.as_deref() == Some("oom"))
    );
    assert!(
        violations(&sim)
            .await
            .iter()
            .any(|(i, _)| i == "decisions_unbacked")
    );
}
