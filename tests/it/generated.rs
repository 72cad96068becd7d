//! The generated eval against real clusters: the rate limiter's world sampler reads what an
//! outside observer sees (Redis's counters and limits, the nodes' own accounting, processes)
//! through a real pause; and `eval --suite generated` plays a drawn schedule end to end with
//! the fuzzed brain, judged by the harm oracle, with the command that replays it.

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::{DrawnDisturbance, World};
use operator_tui::deploy::{self, DeploySpec, SubjectName, TargetName};

use crate::support;

async fn local_cluster(dir: &std::path::Path) -> deploy::Deployment {
    let args = DeploySpec {
        subject: SubjectName::Ratelimiter,
        target: TargetName::Local,
        ..DeploySpec::default()
    };
    deploy::bring_up(&args, dir, &|_| {})
        .await
        .expect("the local cluster starts")
}

fn disturbance(name: &str, params: serde_json::Value) -> DrawnDisturbance {
    DrawnDisturbance {
        name: name.into(),
        target: None,
        params: serde_json::from_value(params).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_world_sampler_reads_counts_limits_and_processes_and_a_paused_redis_as_unreadable() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let deployment = local_cluster(dir.path()).await;
    let disturber = deployment
        .disturber
        .clone()
        .expect("a local rate limiter has disturbances");
    let over_limit = disturbance("traffic_over_limit", serde_json::json!({ "rate": 300 }));
    disturber.apply(&over_limit).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let world: World = disturber.world().await;
    assert!(world.unreadable.is_empty(), "{world:?}");
    assert_eq!(world.serving, 1.0);
    for node in ["node-1", "node-2", "node-3", "redis"] {
        let p = &world.processes[node];
        assert!(
            p.state == "running" && p.serving && p.pid.is_some(),
            "{node}: {p:?}"
        );
    }
    assert_eq!(
        world.protections["limit:abuser-generated"].value, 50.0,
        "{:?}",
        world.protections
    );
    assert!(
        !world.counts.is_empty(),
        "the steady traffic keeps counters"
    );
    for (key, count) in &world.counts {
        assert_eq!(count.holder, "redis");
        assert!(
            count.expires_at_ms.is_some_and(|e| e > world.at_ms),
            "{key}"
        );
        // The nodes' accounting brackets Redis's count: read before Redis, it can only trail.
        let backed = count.backed.expect("every node answered");
        assert!(backed <= count.value + 5, "{key}: {count:?}");
    }
    let abuser = world
        .counts
        .iter()
        .find(|(k, _)| k.contains("abuser-generated"))
        .map(|(_, c)| c.value);
    assert!(
        abuser.is_some_and(|v| v <= 50),
        "a limit of 50 holds: {abuser:?}"
    );

    // Paused, Redis's counts are unknown, not gone; unpaused, they are read again.
    let pause = disturbance("redis_client_pause", serde_json::json!({ "ms": 3_000 }));
    disturber.apply(&pause).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused = disturber.world().await;
    assert_eq!(paused.unreadable, vec!["redis".to_string()], "{paused:?}");
    assert!(paused.counts.is_empty());
    disturber.undo(&pause).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    disturber.undo(&over_limit).await.unwrap();
    let after = disturber.world().await;
    assert!(
        after.unreadable.is_empty() && !after.counts.is_empty(),
        "{after:?}"
    );
    drop(deployment);
}

/// Runs `operator-tui eval --suite generated ARGS --out DIR/out` and reads `file` from there.
fn eval_generated(
    dir: &std::path::Path,
    args: &[&str],
    file: &str,
) -> (std::process::Output, serde_json::Value) {
    let out = dir.join("out");
    let db = dir.join("op.db");
    let mut all = vec!["--db", db.to_str().unwrap(), "eval", "--suite", "generated"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .args(&all)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = serde_json::from_str(&std::fs::read_to_string(out.join(file)).unwrap()).unwrap();
    (run, report)
}

#[test]
fn a_generated_schedule_plays_end_to_end_with_the_fuzzed_brain_and_says_how_to_replay_it() {
    let _slot = support::heavy("eval");
    let dir = tempfile::tempdir().unwrap();
    let (run, report) = eval_generated(
        dir.path(),
        &["--seed", "7", "--count", "1", "--fuzz-brain"],
        "generated.json",
    );
    assert_eq!(report["brain"], "fuzzed");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let schedule = &runs[0];
    assert_ne!(schedule["verdict"], "failed", "{schedule}");
    assert!(!schedule["steps"].as_array().unwrap().is_empty());
    assert_eq!(
        schedule["replay"],
        "operator-tui eval --suite generated --subject ratelimiter --seed 7 --count 1 --fuzz-brain"
    );
    let markdown = std::fs::read_to_string(dir.path().join("out/generated.md")).unwrap();
    assert!(markdown.contains("**Harmful schedules:"), "{markdown}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("# Generated suite: ratelimiter with the fuzzed brain"),
        "{stdout}"
    );
}

/// The simulation plays the same schedules through the real engine on a model in simulated
/// time: dozens of schedules in seconds, every one judged, and a seed replays exactly (the
/// whole grade, actions and harms and all, is the same twice).
#[test]
fn simulated_schedules_run_by_the_dozen_and_each_seed_replays_exactly() {
    let _slot = support::heavy("eval");
    let dir = tempfile::tempdir().unwrap();
    let args = ["--simulated", "--seed", "40", "--count", "30"];
    let (_, first) = eval_generated(dir.path(), &args, "generated.json");
    let runs = first["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 30);
    assert!(runs.iter().all(|r| r["verdict"] != "failed"), "{first}");
    let tickets: u64 = runs.iter().map(|r| r["tickets"].as_u64().unwrap()).sum();
    assert!(
        tickets > 30,
        "the schedules disturb the cluster: {tickets} tickets"
    );
    assert!(
        runs.iter()
            .any(|r| !r["actions"].as_array().unwrap().is_empty()),
        "the engine acts on some of them"
    );
    assert_eq!(
        runs[0]["replay"],
        "operator-tui eval --suite generated --subject ratelimiter --seed 40 --count 1 --simulated"
    );
    let again = tempfile::tempdir().unwrap();
    let (_, second) = eval_generated(again.path(), &args, "generated.json");
    assert_eq!(first["runs"], second["runs"]);
    // A model's API cannot answer in simulated time: the simulation says so.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .args([
            "eval",
            "--suite",
            "generated",
            "--simulated",
            "--brain",
            "anthropic",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("rules brain or --fuzz-brain"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn a_one_minute_soak_overlaps_schedules_on_one_cluster_and_leaves_nothing_running() {
    let _slot = support::heavy("eval");
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = eval_generated(
        dir.path(),
        &["--minutes", "1", "--seed", "100"],
        "soak.json",
    );
    assert_eq!(report["engine_survived"], true, "{report}");
    // A new schedule every 15 to 25 s over a minute: three or four of them.
    let schedules = report["schedules"].as_array().unwrap().len();
    assert!((3..=4).contains(&schedules), "{schedules}");
    assert_eq!(report["processes_left"], serde_json::json!([]), "{report}");
    assert!(
        report["resources"].as_array().unwrap().len() >= 4,
        "{report}"
    );
    assert!(report["resources"][0]["rss_mb"].as_f64().unwrap() > 1.0);
    // A fault the local target cannot apply (a partition) is never drawn.
    assert_eq!(
        report["disturbance_errors"],
        serde_json::json!([]),
        "{report}"
    );
}

/// The player applies each family's primitive from outside and logs what a person did and
/// what was disturbed, with targets and what it lost, for the oracle: a person restarting
/// node-3, Redis stopped for a moment, a FLUSHALL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_applies_and_undoes_each_step_and_logs_people_and_disturbances() {
    use operator_protocol::{Family, Loses, NodeId};
    use operator_tui::frontends::eval::generated::player::Player;
    use operator_tui::frontends::eval::schedule::{Schedule, Step};

    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let deployment = local_cluster(dir.path()).await;
    let node3 = NodeId::from("node-3");
    let pid = deployment.target.describe(&node3).await.unwrap()["pid"].clone();
    let step = |at_ms, family, name: &str, target: Option<&str>, hold_ms, deliberate, loses| Step {
        at_ms,
        family,
        disturbance: DrawnDisturbance {
            name: name.into(),
            target: target.map(String::from),
            params: Default::default(),
        },
        hold_ms,
        lasts_ms: 0,
        description: name.into(),
        loses,
        deliberate,
    };
    let schedule = Schedule {
        seed: 1,
        steps: vec![
            step(
                0,
                Family::Person,
                "person_restart",
                Some("node-3"),
                Some(1_500),
                true,
                Loses::Nothing,
            ),
            step(
                200,
                Family::Process,
                "stop_once",
                Some("redis"),
                Some(800),
                false,
                Loses::Nothing,
            ),
            step(
                1_200,
                Family::Dependency,
                "redis_flushall",
                None,
                None,
                false,
                Loses::State,
            ),
        ],
    };
    let player = Player::new(
        deployment.target.clone(),
        deployment.subject.clone(),
        deployment.disturber.clone().unwrap(),
        Arc::new(operator_tui::clock::SystemClock),
    );
    player.play(1, &schedule).await;
    let (history, errors) = player.take_log();
    assert!(errors.is_empty(), "{errors:?}");
    let people: Vec<(&str, &str)> = history
        .people
        .iter()
        .map(|p| (p.object.as_str(), p.what.as_str()))
        .collect();
    assert_eq!(
        people,
        vec![
            ("node-3", "person_restart"),
            ("node-3", "finished by hand: person_restart")
        ]
    );
    let disturbed: Vec<(Option<&str>, bool)> = history
        .disturbed
        .iter()
        .map(|d| (d.target.as_deref(), d.loses_state))
        .collect();
    // Logged as each ends: Redis's stop, the flush, then the person's restart.
    assert_eq!(
        disturbed,
        vec![(Some("redis"), false), (None, true), (Some("node-3"), true)]
    );
    let after = deployment.target.describe(&node3).await.unwrap();
    assert_eq!(after["state"], "running", "{after}");
    assert_ne!(after["pid"], pid, "the person started a new node-3");
    let redis = deployment
        .target
        .describe(&NodeId::from("redis"))
        .await
        .unwrap();
    assert_eq!(redis["state"], "running", "{redis}");
    drop(player);
    drop(deployment);
}
