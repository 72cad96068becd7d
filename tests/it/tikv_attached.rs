//! TiKV at `--pd URL`: a cluster operator-tui did not start. `operator-tui simulate` serves
//! the PD-compatible simulator in a process of its own, and other processes drive it through
//! PD's API with each target: `sim` (its controls) runs the whole loop, `none` watches and
//! refuses restarts with a reason, `docker` without the Compose project says how to start it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::support;
use support::binary::operator_text as operator;

/// The simulator process, stopped (SIGTERM, then reaped) when the test ends, pass or fail.
struct Simulate {
    child: Child,
    url: String,
    /// Kept open: the simulator prints to it until it stops.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Simulate {
    /// One of the simulator's controls (`POST /sim/store/3/kill`), as a person or a fault
    /// would use it.
    fn control(&self, path: &str) {
        let answer = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(
                reqwest::Client::new()
                    .post(format!("{}/sim/{path}", self.url))
                    .send(),
            )
            .unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
    }

    /// `run --headless --mode execute` against this simulator with `target`, for `seconds`.
    fn run_headless(&self, db: &std::path::Path, target: &str, seconds: &str) -> (bool, String) {
        operator(
            db,
            &[
                "run",
                "--headless",
                "--mode",
                "execute",
                "--duration",
                seconds,
                "--subject",
                "tikv",
                "--pd",
                &self.url,
                "--target",
                target,
            ],
        )
    }
}

impl Drop for Simulate {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn simulate() -> Simulate {
    simulate_with(&[])
}

fn simulate_with(extra: &[&str]) -> Simulate {
    let mut child = Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    Simulate {
        child,
        url,
        _stdout: stdout,
    }
}

#[test]
fn another_process_runs_the_loop_on_a_simulator_it_did_not_start() {
    let _slot = support::heavy("tikv_attached");
    let sim = simulate();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let pd = [
        "--subject",
        "tikv",
        "--pd",
        sim.url.as_str(),
        "--target",
        "sim",
    ];

    let (healthy, text) = operator(&db, &[&["check"], &pd[..]].concat());
    assert!(healthy, "a fresh cluster is healthy:\n{text}");

    let run = [
        &[
            "run",
            "--headless",
            "--mode",
            "execute",
            "--inject",
            "kill_store",
            "--duration",
            "14",
        ],
        &pd[..],
    ]
    .concat();
    let (ok, text) = operator(&db, &run);
    assert!(ok, "{text}");
    let header = format!("tikv · simulator at {}", sim.url);
    for needle in [
        header.as_str(),
        "chaos kill_store on store-2",
        "ticket #1 open: store_down on store-2",
        "✓ its status server refuses connections too",
        "restart_node {\"node\":\"store-2\"} completed",
        "ticket #1 resolved: store_down on store-2",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn the_none_target_watches_and_refuses_restarts_with_a_reason() {
    let _slot = support::heavy("tikv_attached");
    let sim = simulate();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    sim.control("store/3/kill");
    let (ok, text) = sim.run_headless(&db, "none", "8");
    assert!(ok, "{text}");
    assert!(text.contains("tikv · watch only"), "{text}");
    assert!(text.contains("store_down on store-3"), "{text}");
    assert!(
        text.contains("--target none has no control over processes"),
        "the refused restart says why:\n{text}"
    );
}

#[test]
fn docker_without_the_compose_project_says_how_to_start_it() {
    let _slot = support::heavy("tikv_attached");
    let sim = simulate();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let project = format!("operator-tikv-absent-{}", std::process::id());
    let (ok, text) = operator(
        &db,
        &[
            "run",
            "--headless",
            "--duration",
            "2",
            "--subject",
            "tikv",
            "--pd",
            &sim.url,
            "--target",
            "docker",
            "--compose-project",
            &project,
        ],
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("no containers of Compose project \"{project}\""))
            && text.contains("compose/tikv.yml up -d"),
        "{text}"
    );

    let (ok, text) = operator(
        &db,
        &[
            "check",
            "--subject",
            "tikv",
            "--pd",
            "http://127.0.0.1:9",
            "--target",
            "none",
        ],
    );
    assert!(!ok);
    assert!(
        text.contains("PD does not answer") && text.contains("is the cluster up"),
        "{text}"
    );
}

#[test]
fn targets_that_do_not_fit_the_cluster_say_what_to_use() {
    let _slot = support::heavy("tikv_attached");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    for (args, expected) in [
        (&["--target", "sim"][..], "give its --pd URL"),
        (&["--target", "docker"][..], "--pd http://127.0.0.1:2379"),
        (
            &["--pd", "http://127.0.0.1:9", "--target", "local"][..],
            "with --pd choose --target docker (Compose), sim",
        ),
    ] {
        let (ok, text) = operator(&db, &[&["check", "--subject", "tikv"], args].concat());
        assert!(!ok, "{args:?}");
        assert!(text.contains(expected), "{args:?}: {text}");
    }
}

#[test]
fn the_simulator_can_keep_pds_own_timings() {
    let _slot = support::heavy("tikv_attached");
    let sim = simulate_with(&["--real-timings", "--stores", "4"]);
    let get = |path: &str| {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async {
                reqwest::get(format!("{}{path}", sim.url))
                    .await?
                    .text()
                    .await
            })
            .unwrap()
    };
    assert!(get("/pd/api/v1/config/schedule").contains("\"max-store-down-time\": \"30m0s\""));
    assert!(get("/pd/api/v1/stores").contains("\"count\": 4"));
}

/// PD's schedulers, by name, as `GET /pd/api/v1/schedulers` lists them.
fn schedulers(url: &str) -> Vec<String> {
    let url = format!("{url}/pd/api/v1/schedulers");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// Whether PD runs an evict-leader scheduler (operator-tui's drain adds one).
fn evicting(url: &str) -> bool {
    schedulers(url).contains(&"evict-leader-scheduler".to_string())
}

fn wait_until<T>(what: &str, timeout: std::time::Duration, f: impl Fn() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// kill -9 of operator-tui while its drain has PD evicting a store's leaders: the scheduler
/// outlives the process, and the next start finds it through the database, removes it, and
/// says so in the audit log.
#[test]
fn a_scheduler_left_by_a_killed_operator_is_removed_when_it_starts_again() {
    let _slot = support::heavy("tikv_attached");
    let sim = simulate();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let pd = [
        "--subject",
        "tikv",
        "--pd",
        sim.url.as_str(),
        "--target",
        "sim",
    ];
    let mut first = Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .arg("--db")
        .arg(&db)
        .args([
            "run",
            "--headless",
            "--mode",
            "approve",
            "--duration",
            "120",
        ])
        .args(pd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = std::panic::catch_unwind(|| {
        // A person's drain of store-1, approved, for the running engine to pick up.
        wait_until(
            "the engine created its database",
            std::time::Duration::from_secs(20),
            || operator_tui::store::Store::open(&db).ok()?.mode().ok()?,
        );
        let mut store = operator_tui::store::Store::open(&db).unwrap();
        let drain = store
            .insert_action(
                &support::human_action(
                    "drain_store",
                    serde_json::json!({ "store": "store-1" }),
                    operator_protocol::Risk::Disruptive,
                ),
                operator_tui::model::Cause::Cli,
                1,
            )
            .unwrap();
        store
            .set_approval(
                drain,
                operator_tui::model::Approval::Approved,
                operator_tui::model::Cause::Cli,
                1,
            )
            .unwrap();
        wait_until(
            "PD evicts store-1's leaders",
            std::time::Duration::from_secs(20),
            || evicting(&sim.url).then_some(()),
        );
    });
    // SIGKILL: no shutdown, no clean-up.
    unsafe { libc::kill(first.id() as i32, libc::SIGKILL) };
    let _ = first.wait();
    if let Err(panic) = killed {
        std::panic::resume_unwind(panic);
    }
    assert!(evicting(&sim.url), "the kill left it behind");

    let (ok, text) = operator(
        &db,
        &[&["run", "--headless", "--duration", "2"], &pd[..]].concat(),
    );
    assert!(ok, "{text}");
    assert!(!evicting(&sim.url), "the restart removed it");
    let (_, audit) = operator(&db, &["audit", "--json", "--limit", "200"]);
    let rows: serde_json::Value = serde_json::from_str(audit.trim()).unwrap();
    let removed = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == "residue_removed")
        .unwrap_or_else(|| panic!("no residue_removed row: {rows:#}"));
    let detail = removed["detail"].as_str().unwrap();
    assert!(
        detail.contains("evict-leader-scheduler-1")
            && detail.contains("left by an earlier run of operator-tui that did not exit cleanly"),
        "{detail}"
    );
}

/// A store whose disk is slow stays slow across a restart: the operator reads the store's own
/// log blaming its disk, names the disk, and hands it to a person instead of restarting the
/// store (which would cost its leaders and buy nothing).
#[test]
fn a_slow_disk_goes_to_a_person_and_its_store_is_never_restarted() {
    let _slot = support::heavy("tikv_attached");
    let sim = simulate();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    sim.control("store/2/disk-slow");
    let (ok, text) = sim.run_headless(&db, "sim", "14");
    assert!(ok, "{text}");
    for needle in [
        "slow_store on store-2",
        "✓ its log says its disk is slow",
        "│ Conclusion: disk_slow",
        "store-2's disk is slow and a restart would not change that",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("restart_node"), "{text}");
}
