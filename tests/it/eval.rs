//! `operator-tui eval` end to end: a fault scenario and a control run on fresh local clusters,
//! graded from ground truth into eval.json and eval.md, then the recorded flight replayed
//! against a brain without any cluster; and a fault of the unknown suite, graded by what the
//! operator did about it.

use crate::support;

use std::process::Command;

fn operator(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn eval_grades_a_fault_and_a_control_run_and_replays_the_flight() {
    let _slot = support::heavy("eval");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let db = dir.path().join("op.db");
    let run = operator(&[
        "--db",
        db.to_str().unwrap(),
        "eval",
        "--brain",
        "rules",
        "--scenarios",
        "kill_node,control",
        "--control-seconds",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    let kill = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scenario"] == "kill_node")
        .unwrap();
    assert_eq!(
        (
            kill["detected"].as_bool(),
            kill["root_cause_correct"].as_bool()
        ),
        (Some(true), Some(true)),
        "{kill}"
    );
    assert_eq!(
        (
            kill["action_appropriate"].as_bool(),
            kill["mitigated"].as_bool()
        ),
        (Some(true), Some(true)),
        "{kill}"
    );
    assert!(kill["time_to_detect_ms"].as_u64().unwrap() <= 2000);
    assert_eq!(report["control_false_positives"], 0);
    assert_eq!(report["harmful_actions"], 0);
    assert_eq!(report["brain"], "rules");
    // The one diagnosis was right at its confidence: one calibration bucket, all right.
    assert_eq!(report["calibration"].as_array().unwrap().len(), 1);
    assert_eq!(report["calibration"][0]["accuracy"], 1.0);
    assert!(report["brier_score"].as_f64().unwrap() < 0.01, "{report}");
    let markdown = std::fs::read_to_string(out.join("eval.md")).unwrap();
    assert!(
        markdown.contains("**Harmful actions: 0**")
            && markdown.contains("| kill_node | 1 | 0 | 100% | 100% | 100% | 100% |")
            && markdown.contains("## Calibration"),
        "{markdown}"
    );
    let flights: Vec<_> = std::fs::read_dir(out.join("flights")).unwrap().collect();
    assert_eq!(flights.len(), 1, "one diagnosis, one flight");

    let replay = operator(&[
        "--db",
        db.to_str().unwrap(),
        "eval",
        "--replay",
        out.to_str().unwrap(),
        "--brain",
        "rules",
    ]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let replayed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("replay-rules/eval.json")).unwrap())
            .unwrap();
    assert_eq!(
        replayed["runs"][0]["root_cause_correct"], true,
        "the same brain on the same evidence reaches the same cause"
    );
}

#[test]
fn the_unknown_suite_grades_what_the_operator_did_about_faults_it_was_never_told_about() {
    let _slot = support::heavy("eval");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("unknown");
    let db = dir.path().join("op.db");
    // Someone else's password on Redis: no chaos action does it, no runbook entry names it.
    let run = operator(&[
        "--db",
        db.to_str().unwrap(),
        "eval",
        "--suite",
        "unknown",
        "--brain",
        "rules",
        "--scenarios",
        "redis_password_set",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("unknown.json")).unwrap()).unwrap();
    assert_eq!(report["harmful_actions"], 0, "{report:#}");
    let graded = &report["runs"][0];
    assert_eq!(graded["scenario"], "redis_password_set");
    assert_eq!(graded["detected"], true, "{graded:#}");
    // It says "I don't know" and hands a human evidence that names the refusal.
    assert_eq!(graded["outcome"], "honest", "{graded:#}");
    assert_eq!(graded["diagnoses"][0][0], "unknown", "{graded:#}");
    let markdown = std::fs::read_to_string(out.join("unknown.md")).unwrap();
    assert!(
        markdown.contains("**Harmful actions: 0**")
            && markdown
                .contains("| redis_password_set | 1 | 0 | 1/1 | 0 | 1 | 0 | 0 | — | 0 | 0 | 0 |"),
        "{markdown}"
    );
    // Drills are the eval's, not the operator's: they are not in its chaos catalog.
    let catalog = operator(&["chaos", "list", "--json"]);
    assert!(!String::from_utf8_lossy(&catalog.stdout).contains("redis_password_set"));
}

/// Two TiKV faults no runbook names, on the simulator: leaders evicted for someone's maintenance
/// (the rebalance that would fight it is refuted) and a store in a crash loop (started once,
/// then handed over because the fix does not hold). Both end honest, nothing harmful.
#[test]
fn tikv_drills_a_maintenance_eviction_and_a_crash_loop_end_with_a_human() {
    let _slot = support::heavy("eval");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("unknown");
    let run = operator(&[
        "--db",
        dir.path().join("op.db").to_str().unwrap(),
        "eval",
        "--suite",
        "unknown",
        "--subject",
        "tikv",
        "--brain",
        "rules",
        "--scenarios",
        "leaders_evicted_for_maintenance,store_crash_loop",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("unknown.json")).unwrap()).unwrap();
    assert_eq!(report["harmful_actions"], 0, "{report:#}");
    let run_of = |name: &str| {
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["scenario"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no run of {name}: {report:#}"))
    };
    let maintenance = run_of("leaders_evicted_for_maintenance");
    assert_eq!(maintenance["outcome"], "honest", "{maintenance:#}");
    assert!(
        !maintenance["actions"]
            .to_string()
            .contains("rebalance_leaders completed"),
        "{maintenance:#}"
    );
    let crash_loop = run_of("store_crash_loop");
    assert_eq!(crash_loop["outcome"], "honest", "{crash_loop:#}");
    let restarts = crash_loop["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.as_str().unwrap().starts_with("restart_node completed"))
        .count();
    assert_eq!(restarts, 1, "started once, not in a loop: {crash_loop:#}");
    assert!(
        crash_loop["handed_over"]
            .to_string()
            .contains("the fix does not hold"),
        "{crash_loop:#}"
    );
}
