//! The command line as a new user meets it, one test for each way it once went wrong: the
//! README's headless example run twice, a second engine on one database, a protected context
//! from another terminal, parameters and environment values taken at their word, errors that
//! read as a person's and not a bug report, pipes that close early.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use support::binary::{operator, operator_text};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_operator-tui"))
}

#[test]
fn operator_read_only_takes_the_usual_spellings_of_yes() {
    let dir = tempfile::tempdir().unwrap();
    for yes in ["1", "true", "yes", "on"] {
        let out = binary()
            .args(["--db", dir.path().join("op.db").to_str().unwrap()])
            .args(["chaos", "inject", "kill_node"])
            .env("OPERATOR_READ_ONLY", yes)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("read-only"),
            "OPERATOR_READ_ONLY={yes}: {err}"
        );
    }
}

#[test]
fn chaos_parameters_are_checked_as_declared_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    for (params, expected) in [
        ("nde=node-3", "unknown parameter \"nde\"; it takes node"),
        ("ms=abc", "parameter \"ms\" \"abc\" is not an integer"),
        ("ms=-5", "parameter \"ms\" -5 is outside"),
        ("node=node-9", "is not one of node-1, node-2, node-3"),
    ] {
        let fault = if params.starts_with("ms") {
            "node_latency"
        } else {
            "kill_node"
        };
        let (ok, text) = operator_text(&db, &["chaos", "inject", fault, "--param", params]);
        assert!(!ok && text.contains(expected), "{params}: {text}");
    }
    let (ok, text) = operator_text(&db, &["chaos", "inject", "kill_nod"]);
    assert!(
        !ok && text.contains("unknown fault \"kill_nod\"; the faults are"),
        "{text}"
    );
}

#[test]
fn a_user_error_is_one_plain_line_without_a_source_location_or_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary()
        .args(["--db", dir.path().join("op.db").to_str().unwrap()])
        .args(["chaos", "inject", "kill_node"])
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: no cluster is running: start one with `operator-tui cluster up`"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for noise in ["Location", "src/", "backtrace", "\u{1b}["] {
        assert!(!err.contains(noise), "{noise:?} in {err}");
    }
}

/// `completions bash | head -1`: the pipe closes after one line, and the command ends quietly.
#[test]
fn a_pipe_closed_early_ends_the_command_quietly() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = binary()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is dropped here: the rest of the output meets a closed pipe.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && err.is_empty(),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn check_and_ask_never_start_a_cluster_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let started = Instant::now();
    let (ok, text) = operator_text(&db, &["check", "--once"]);
    assert!(!ok && text.contains("no cluster is running"), "{text}");
    let (ok, text) = operator_text(&db, &["check", "--once", "--subject", "tikv"]);
    assert!(!ok && text.contains("no TiKV cluster given"), "{text}");
    let (ok, text) = operator_text(&db, &["ask", "--brain", "rules", "why is node-2 slow?"]);
    assert!(!ok && text.contains("answers no free questions"), "{text}");
    assert!(!text.contains("starting"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "nothing was started"
    );
}

/// The README's headless example, run twice on one database: each run starts a cluster of
/// its own, so the second run's crash is a first crash, fixed, not a fix that did not hold.
#[test]
fn the_headless_example_run_twice_fixes_both_crashes() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let example = [
        "run",
        "--headless",
        "--mode",
        "execute",
        "--inject",
        "kill_node",
        "--duration",
        "12",
    ];
    for run in 1..=2 {
        let (ok, text) = operator_text(&db, &example);
        assert!(ok, "run {run}: {text}");
        assert!(
            !text.contains("the fix does not hold"),
            "run {run} took a new cluster's crash for a loop: {text}"
        );
    }
    let tickets =
        String::from_utf8_lossy(&operator(&db, &["tickets", "list", "--json"]).stdout).into_owned();
    let tickets: Vec<serde_json::Value> = serde_json::from_str(&tickets).unwrap();
    let verified = tickets
        .iter()
        .filter(|t| {
            t["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("verified"))
        })
        .count();
    assert_eq!(verified, 2, "{tickets:#?}");
}

/// Waits (bounded) until an engine holds the database.
fn wait_for_engine(db: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !operator_tui::store::engine_running(db).unwrap() {
        assert!(Instant::now() < deadline, "the first engine never started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_engine_per_database_and_a_database_keeps_its_subject_and_protected_context() {
    let _slot = support::heavy("cli headless run");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[contexts.prod]\nprotected = true\n").unwrap();
    let with_config = |args: &[&str]| {
        let mut command = binary();
        command
            .args(["--db", db.to_str().unwrap(), "--config"])
            .arg(&config)
            .args(args)
            .stdin(Stdio::null())
            .env_remove("OPERATOR_CONFIRM_CONTEXT");
        command
    };
    // Unattended chaos on a protected context is refused without its name.
    let out = with_config(&[
        "--context",
        "prod",
        "run",
        "--subject",
        "tikv",
        "--headless",
        "--inject",
        "kill_store",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("OPERATOR_CONFIRM_CONTEXT=prod"),
        "{err}"
    );

    let mut first = with_config(&[
        "--context",
        "prod",
        "run",
        "--subject",
        "tikv",
        "--headless",
        "--duration",
        "20",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for_engine(&db);
    let (ok, text) = operator_text(
        &db,
        &["run", "--subject", "tikv", "--headless", "--duration", "2"],
    );
    assert!(
        !ok && text.contains(&format!("another operator-tui (pid {}", first.id())),
        "{text}"
    );
    // Another terminal that omits --context still meets the protection.
    let (ok, text) = operator_text(&db, &["actions", "approve", "1"]);
    assert!(
        !ok && text.contains("prod is a protected context"),
        "{text}"
    );
    let _ = first.kill();
    let _ = first.wait();

    let (ok, text) = operator_text(&db, &["run", "--headless", "--duration", "2"]);
    assert!(
        !ok && text.contains("holds the tikv operator's tickets"),
        "{text}"
    );
}

#[test]
fn run_headless_json_prints_one_json_event_a_line() {
    let _slot = support::heavy("cli headless run");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let out = operator(
        &db,
        &[
            "--json",
            "run",
            "--subject",
            "tikv",
            "--headless",
            "--duration",
            "3",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(
        events.first().map(|e| e["event"].clone()),
        Some("run".into())
    );
    assert!(events.iter().any(|e| e["event"] == "observed"), "{text}");
}
