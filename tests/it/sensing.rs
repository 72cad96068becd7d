//! Sensing what matters on a real rate limiter cluster. A healthy cluster under heavy
//! legitimate traffic on one key is not a fault: no ticket (no "counter drift" from reading
//! the nodes and Redis a few milliseconds apart while thousands of checks a second move both).
//! A node whose checks Redis refuses is not limiting, though every /health says 200: a ticket
//! that names the class of Redis's refusal, and nothing disruptive done about it.

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

/// `cluster up` in the test's own state directory, and the cluster's record.
fn cluster_up(db: &Path) -> serde_json::Value {
    let (up, text) = operator_text(db, &["cluster", "up"]);
    assert!(up, "{text}");
    serde_json::from_str(
        &std::fs::read_to_string(db.with_file_name("cluster-ratelimiter.json")).unwrap(),
    )
    .unwrap()
}

fn node_urls(file: &serde_json::Value) -> Vec<String> {
    file["endpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n[1].as_str().unwrap().to_string())
        .collect()
}

/// `run --headless` on the cluster for `seconds`, in `mode`; its output.
async fn watch(db: &Path, mode: &str, seconds: u64) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .arg("--db")
        .arg(db)
        .args(["run", "--headless", "--mode", mode, "--duration"])
        .arg(seconds.to_string())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn tickets(db: &Path) -> Vec<serde_json::Value> {
    serde_json::from_slice(&operator(db, &["tickets", "list", "--json"]).stdout).unwrap()
}

const KEY: &str = "heavy-legit";
const RATE: f64 = 3_000.0;
const SECONDS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_checks_a_second_on_one_key_open_no_ticket() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let _down = ClusterDown(&db);
    let file = cluster_up(&db);
    let nodes = node_urls(&file);
    // A limit far above the traffic: every check is allowed and moves the counter.
    let limit = reqwest::Client::new()
        .put(format!("{}/admin/limits/{KEY}", nodes[0]))
        .bearer_auth(file["endpoints"]["admin_token"].as_str().unwrap())
        .json(&serde_json::json!({ "limit": 1_000_000, "window_ms": 1000 }))
        .send()
        .await
        .unwrap();
    assert!(limit.status().is_success(), "{}", limit.status());

    let watcher = watch(&db, "observe", SECONDS + 2);
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
    let ((watched, output), summary) = tokio::join!(watcher, traffic);
    let summary = summary.unwrap();
    let totals = stats.totals();
    assert!(watched, "{output}");
    let tickets = tickets(&db);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_refuses_the_nodes_writes_is_a_ticket_naming_why_and_nothing_restarts() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let _down = ClusterDown(&db);
    let file = cluster_up(&db);
    let nodes = node_urls(&file);
    let redis_pid = file["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["spec"]["id"] == "redis")
        .map(|p| p["pid"].clone())
        .unwrap();
    let redis = redis::Client::open(file["endpoints"]["redis_url"].as_str().unwrap()).unwrap();
    let mut conn = redis.get_connection().unwrap();
    let stats = Arc::new(LiveStats::default());
    let traffic = load::run(
        LoadConfig {
            targets: nodes.clone(),
            rate: Some(200.0),
            concurrency: 32,
            duration: Some(Duration::from_secs(14)),
            keys: 8,
            key_prefix: "oom-".into(),
            hot_key: None,
            hot_fraction: 0.0,
            cost: 1,
        },
        stats,
        std::future::pending(),
    );
    // Someone else's configuration change, from outside the operator: Redis may use no memory
    // and evict nothing. Reads and probes still work; every check script's write is refused.
    let someone_else = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        for (name, value) in [("maxmemory-policy", "noeviction"), ("maxmemory", "1")] {
            redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .exec(&mut conn)
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let health: serde_json::Value = reqwest::get(format!("{}/health", nodes[0]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg("0")
            .exec(&mut conn)
            .unwrap();
        health
    };
    let ((watched, output), summary, health) =
        tokio::join!(watch(&db, "execute", 14), traffic, someone_else);
    assert!(watched, "{output}");
    summary.unwrap();
    assert_eq!(
        health["healthy"], true,
        "/health alone looks fine: {health}"
    );
    assert_eq!(health["redis"]["last_check_error_class"], "oom", "{health}");

    // The cause, from Redis's own INFO, before or beside what the nodes' refusals show: one
    // ticket on Redis naming its limit and policy, diagnosed as what it is.
    let tickets = tickets(&db);
    let full: Vec<&serde_json::Value> = tickets
        .iter()
        .filter(|t| t["invariant"] == "redis_memory_full")
        .collect();
    assert_eq!(full.len(), 1, "{tickets:#?}\n{output}");
    assert_eq!(full[0]["target"], "redis");
    let message = full[0]["message"].as_str().unwrap();
    assert!(
        message.contains("policy noeviction") && message.contains("refuses the checks' writes"),
        "{message}"
    );
    let shown = operator(
        &db,
        &["tickets", "show", &full[0]["id"].to_string(), "--json"],
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        shown["diagnoses"][0]["body"]["root_cause"]["category"], "redis_out_of_memory",
        "{shown:#}"
    );
    // What the nodes' refused writes show belongs to that incident, not to one of its own.
    for unbacked in tickets
        .iter()
        .filter(|t| t["invariant"] == "decisions_unbacked")
    {
        assert_eq!(unbacked["incident"], full[0]["id"], "{tickets:#?}");
    }
    // Nothing disruptive ran, on any ticket: Redis is the same process, every count kept.
    let actions: Vec<serde_json::Value> =
        serde_json::from_slice(&operator(&db, &["actions", "list", "--json"]).stdout).unwrap();
    assert!(
        actions
            .iter()
            .all(|a| a["risk"] == "safe" || a["status"] != "completed"),
        "{actions:#?}"
    );
    let now: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cluster-ratelimiter.json")).unwrap(),
    )
    .unwrap();
    let redis_now = now["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["spec"]["id"] == "redis")
        .map(|p| p["pid"].clone())
        .unwrap();
    assert_eq!(redis_now, redis_pid);
}
