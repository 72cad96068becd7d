//! A healthy cluster under heavy legitimate traffic on one key is not a fault: operator-tui
//! watching it opens no ticket (no "counter drift" from reading the nodes and Redis a few
//! milliseconds apart while thousands of checks a second move both).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ratelimiter_svc::load::{self, LiveStats, LoadConfig};

use crate::support;
use support::binary::{operator, operator_text};

/// Stops the detached cluster even when an assertion fails.
struct ClusterDown<'a>(&'a Path);

impl Drop for ClusterDown<'_> {
    fn drop(&mut self) {
        let _ = operator(self.0, &["cluster", "down"]);
    }
}

const KEY: &str = "heavy-legit";
const RATE: f64 = 3_000.0;
const SECONDS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_checks_a_second_on_one_key_open_no_ticket() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let (up, text) = operator_text(&db, &["cluster", "up"]);
    let _down = ClusterDown(&db);
    assert!(up, "{text}");
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cluster-ratelimiter.json")).unwrap(),
    )
    .unwrap();
    let nodes: Vec<String> = file["endpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n[1].as_str().unwrap().to_string())
        .collect();
    // A limit far above the traffic: every check is allowed and moves the counter.
    let limit = reqwest::Client::new()
        .put(format!("{}/admin/limits/{KEY}", nodes[0]))
        .bearer_auth(file["endpoints"]["admin_token"].as_str().unwrap())
        .json(&serde_json::json!({ "limit": 1_000_000, "window_ms": 1000 }))
        .send()
        .await
        .unwrap();
    assert!(limit.status().is_success(), "{}", limit.status());

    let watcher = tokio::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .arg("--db")
        .arg(&db)
        .args(["run", "--headless", "--mode", "observe", "--duration"])
        .arg((SECONDS + 2).to_string())
        .kill_on_drop(true)
        .output();
    let stats = Arc::new(LiveStats::default());
    let traffic = load::run(
        LoadConfig {
            targets: nodes,
            rate: Some(RATE),
            concurrency: 512,
            duration: Some(Duration::from_secs(SECONDS)),
            keys: 1,
            key_prefix: "unused-".into(),
            hot_key: Some(KEY.into()),
            hot_fraction: 1.0,
            cost: 1,
        },
        stats.clone(),
        std::future::pending(),
    );
    let (watched, summary) = tokio::join!(watcher, traffic);
    let watched = watched.unwrap();
    let summary = summary.unwrap();
    let totals = stats.totals();
    let output = String::from_utf8_lossy(&watched.stdout).into_owned()
        + &String::from_utf8_lossy(&watched.stderr);
    assert!(watched.status.success(), "{output}");
    let tickets = operator(&db, &["tickets", "list", "--json"]);
    let tickets: Vec<serde_json::Value> = serde_json::from_slice(&tickets.stdout).unwrap();
    assert!(
        tickets.is_empty(),
        "heavy legitimate traffic is not a fault: {tickets:#?}\n{output}\n{summary:?}"
    );
    // And the traffic was what the test claims: ≥ 90 % of 3,000/s for 20 s, all allowed.
    assert!(
        totals.allowed as f64 >= 0.9 * RATE * SECONDS as f64,
        "{summary:?}"
    );
    assert_eq!(totals.denied, 0, "{summary:?}");
    eprintln!(
        "{:.0} checks/s on {KEY} for {SECONDS} s, p99 {:.1} ms: no ticket",
        summary.achieved_rate, summary.p99_ms
    );
}
