//! The TiKV subject through the binary: `run --subject tikv` serves the PD-compatible
//! simulator, and the loop runs on it headless (fault → detection → diagnosis → the agent
//! acts → verified) and ends with every invariant holding; the catalog needs no cluster.

use std::process::Command;

use crate::support;
use support::binary::operator;

#[test]
fn a_killed_store_is_detected_diagnosed_restarted_and_verified_headless() {
    let _slot = support::heavy("tikv_loop");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    // `output()` waits for the exit: --duration bounds the run, and the simulator is served
    // inside the process, so nothing can outlive it.
    let out = operator(
        &db,
        &[
            "run",
            "--headless",
            "--subject",
            "tikv",
            "--mode",
            "execute",
            "--inject",
            "kill_store",
            "--duration",
            "14",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "chaos kill_store on store-2",
        "ticket #1 open: store_down on store-2",
        "✓ the store no longer heartbeats to PD",
        "│ Conclusion: store_crashed",
        "restart_node {\"node\":\"store-2\"} completed",
        "ticket #1 resolved: store_down on store-2",
        "rebalance_leaders",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let last_status = text
        .lines()
        .rev()
        .find(|l| l.contains("cluster: "))
        .unwrap();
    assert!(
        last_status.contains("0 violation(s)"),
        "the cluster did not settle: {last_status}"
    );

    let tickets =
        String::from_utf8_lossy(&operator(&db, &["tickets", "--json", "list"]).stdout).to_string();
    let tickets: Vec<serde_json::Value> = serde_json::from_str(&tickets).unwrap();
    let first = tickets
        .iter()
        .find(|t| t["invariant"] == "store_down")
        .expect("a store_down ticket");
    assert_eq!(first["status"], "resolved");
    assert_eq!(
        first["chaos"]["root_cause"], "store_crashed",
        "linked to the injected fault"
    );
}

#[test]
fn the_tikv_catalog_and_runbook_need_no_cluster() {
    let _slot = support::heavy("tikv_loop");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let out = operator(&db, &["chaos", "list", "--subject", "tikv", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let specs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = specs.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kill_store", "slow_store", "hot_store", "kill_pd"]);
    // Injecting needs the process that serves the simulator; the refusal says where to go.
    let out = operator(&db, &["chaos", "inject", "--subject", "tikv", "kill_store"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run --subject tikv"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn eval_grades_every_tikv_fault_from_ground_truth() {
    let _slot = support::heavy("tikv_loop");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let run = operator(
        &dir.path().join("op.db"),
        &[
            "eval",
            "--subject",
            "tikv",
            "--brain",
            "rules",
            "--scenarios",
            "hot_store,slow_store,kill_pd",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    assert_eq!(report["subject"], "tikv");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        for axis in [
            "detected",
            "root_cause_correct",
            "action_appropriate",
            "mitigated",
        ] {
            assert_eq!(run[axis], true, "{axis}: {run}");
        }
    }
}

#[test]
fn compose_accepts_the_tikv_compose_file() {
    let _slot = support::heavy("tikv_loop");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/compose/tikv.yml");
    let out = Command::new("docker-compose")
        .args(["-f", file, "config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "pingcap/pd:v8.5.4",
        "pingcap/tikv:v8.5.4",
        "--advertise-status-addr=tikv3:20180",
        "service_healthy",
        "1000000",
    ] {
        assert!(config.contains(needle), "missing {needle} in:\n{config}");
    }
}

/// One cause, one incident, on the simulator: in observe mode nothing fixes the dead store,
/// so PD reports its regions short of replicas after max-peer-down-duration. Those tickets
/// join the store's incident and wait for it: no diagnosis of their own while it is open.
#[test]
fn a_dead_stores_consequences_join_its_incident_and_wait_for_it() {
    let _slot = support::heavy("tikv_loop");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let out = operator(
        &db,
        &[
            "run",
            "--headless",
            "--subject",
            "tikv",
            "--mode",
            "observe",
            "--inject",
            "kill_store",
            "--duration",
            "14",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tickets: Vec<serde_json::Value> =
        serde_json::from_slice(&operator(&db, &["tickets", "--json", "list"]).stdout).unwrap();
    let cause = tickets
        .iter()
        .find(|t| t["invariant"] == "store_down")
        .expect("a store_down ticket");
    let symptoms: Vec<&serde_json::Value> = tickets
        .iter()
        .filter(|t| t["invariant"] == "region_under_replicated")
        .collect();
    assert!(!symptoms.is_empty(), "PD reported no down peers:\n{text}");
    for symptom in &symptoms {
        assert_eq!(symptom["incident"], cause["id"], "{symptom:#}");
        assert_eq!(
            symptom["status"], "open",
            "a symptom is not diagnosed while its cause is open: {symptom:#}"
        );
    }
    assert!(
        text.contains(&format!("[a symptom of ticket #{}]", cause["id"])),
        "{text}"
    );
    let shown: serde_json::Value = serde_json::from_slice(
        &operator(
            &db,
            &["incidents", "--json", "show", &cause["id"].to_string()],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(shown["cause"]["invariant"], "store_down");
    assert_eq!(
        shown["symptoms"].as_array().unwrap().len(),
        symptoms.len(),
        "{shown:#}"
    );
    let listed = String::from_utf8_lossy(&operator(&db, &["incidents", "list"]).stdout).to_string();
    assert!(listed.contains("store_down"), "{listed}");
}
