//! The command line as a user types it: the chaos catalog, a detached cluster driven from other
//! commands (`cluster up`, `chaos inject`, `check --once`, `cluster down`), and the record-keeping
//! commands writing audit rows caused by the CLI.

use std::process::Output;

use crate::support;
use support::binary::operator;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_chaos_catalog_lists_every_fault_with_its_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let out = operator(&db, &["chaos", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let specs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(specs.len(), 7);
    assert!(
        specs
            .iter()
            .all(|s| !s["root_cause"].as_str().unwrap().is_empty())
    );
    assert!(stdout(&operator(&db, &["chaos", "list"])).contains("kill_node"));
}

/// Stops the detached cluster even when an assertion fails.
#[test]
fn a_detached_cluster_is_driven_from_separate_commands_and_stopped() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let cluster = support::binary::cluster_up(&db);
    assert!(stdout(&cluster.up).contains("node-1"));
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cluster-ratelimiter.json")).unwrap(),
    )
    .unwrap();
    let mut pids: Vec<u64> = file["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 4);
    // Its steady traffic runs beside it, and goes with it.
    pids.push(
        file["workload_pid"]
            .as_u64()
            .expect("cluster up starts traffic"),
    );
    assert!(stdout(&operator(&db, &["cluster", "status"])).contains("running"));

    let healthy = operator(&db, &["check", "--once"]);
    assert!(
        healthy.status.success(),
        "a fresh cluster breaks nothing: {}",
        stdout(&healthy)
    );

    // The README's drift, right after `cluster up`: the traffic gives the key its windows.
    let drift = operator(
        &db,
        &[
            "chaos",
            "inject",
            "counter_drift",
            "--param",
            "key=demo-hot",
        ],
    );
    assert!(
        drift.status.success(),
        "{}",
        String::from_utf8_lossy(&drift.stderr)
    );
    let inject = operator(
        &db,
        &["chaos", "inject", "kill_node", "--param", "node=node-3"],
    );
    assert!(
        inject.status.success(),
        "{}",
        String::from_utf8_lossy(&inject.stderr)
    );
    let broken = operator(&db, &["check", "--once", "--json"]);
    assert_eq!(broken.status.code(), Some(1), "a broken invariant exits 1");
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    let violations = report["violations"].as_array().unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v["invariant"] == "node_down" && v["target"] == "node-3"),
        "{violations:?}"
    );
    let audit = stdout(&operator(&db, &["audit", "--json"]));
    assert!(
        audit.contains("chaos_injected"),
        "the injection is on record: {audit}"
    );

    let down = operator(&db, &["cluster", "down"]);
    assert!(stdout(&down).contains("cluster stopped"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "process {pid} outlived `cluster down`"
        );
    }
}

#[test]
fn record_keeping_commands_write_audit_rows_caused_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    assert!(operator(&db, &["killswitch", "on"]).status.success());
    let status: serde_json::Value =
        serde_json::from_slice(&operator(&db, &["--json", "killswitch", "status"]).stdout).unwrap();
    assert_eq!(status["kill_switch"], true);
    assert!(operator(&db, &["mode", "observe"]).status.success());
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&operator(&db, &["--json", "audit"]).stdout).unwrap();
    let events: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["event"].as_str().unwrap(), r["cause"].as_str().unwrap()))
        .collect();
    assert_eq!(events, [("kill_switch_set", "cli"), ("mode_set", "cli")]);
    let missing = operator(&db, &["tickets", "show", "99"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("tickets list"),
        "the error says what to do"
    );
}

/// `actions undo` as a user types it: a completed action with a prepared undo gets its inverse
/// proposed, approved by the CLI and audited; asking twice, or for an irreversible action, is
/// refused with the reason; `actions show` says how each is taken back.
#[test]
fn actions_undo_proposes_the_prepared_inverse_or_says_why_not() {
    use operator_tui::model::*;
    use operator_tui::store::{ActionUpdate, Store, Write};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let mut store = Store::open(&db).unwrap();
    let mut completed = |name: &str, undo: Option<UndoPlan>, irreversible: Option<&str>| {
        let new = support::human_action(
            name,
            serde_json::json!({ "key": "k", "limit": 5, "window_ms": 1000 }),
            operator_protocol::Risk::Safe,
        );
        let id = store.insert_action(&new, Cause::Cli, 1).unwrap();
        let done = Write::ActionTransition {
            id,
            from: ActionStatus::Proposed,
            to: ActionStatus::Completed,
            cause: Cause::Executor,
            detail: "done".into(),
            update: ActionUpdate {
                undo,
                irreversible: irreversible.map(String::from),
                ..Default::default()
            },
        };
        store.apply(&[done], 2).unwrap();
        id
    };
    let limit = completed(
        "update_limit",
        Some(UndoPlan {
            action: "update_limit".into(),
            params: serde_json::json!({ "key": "k", "limit": 100, "window_ms": 1000 })
                .as_object()
                .cloned()
                .unwrap(),
            risk: operator_protocol::Risk::Safe,
        }),
        None,
    );
    let reset = completed("reset_counter", None, Some("the dropped count is gone"));
    drop(store);

    let shown = stdout(&operator(&db, &["actions", "show", &limit.0.to_string()]));
    assert!(
        shown.contains(r#"undo: update_limit {"key":"k","limit":100,"window_ms":1000}"#),
        "{shown}"
    );
    let undo = operator(&db, &["actions", "undo", &limit.0.to_string()]);
    assert!(
        undo.status.success(),
        "{}",
        String::from_utf8_lossy(&undo.stderr)
    );
    assert!(
        stdout(&undo).contains(&format!("proposed to take back action {}", limit.0)),
        "{}",
        stdout(&undo)
    );
    let again = operator(&db, &["actions", "undo", &limit.0.to_string()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already being taken back"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let refused = operator(&db, &["actions", "undo", &reset.0.to_string()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("reset_counter cannot be taken back: the dropped count is gone"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        stdout(&operator(&db, &["actions", "show", &reset.0.to_string()]))
            .contains("cannot be undone: the dropped count is gone")
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&operator(&db, &["--json", "audit"]).stdout).unwrap();
    assert!(
        rows.iter()
            .any(|r| r["event"] == "undo_requested" && r["cause"] == "cli"),
        "{rows:?}"
    );
}

/// `ask` streams the brain's answer as it comes and prints it once, not again at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_prints_the_streamed_answer_once() {
    let server = support::replay::ReplayServer::start(vec![
        support::replay::Reply::sse("anthropic/ask_1.sse"),
        support::replay::Reply::sse("anthropic/ask_2.sse"),
    ])
    .await;
    // `ask` looks at a cluster that runs; it starts none of its own.
    let config = operator_tikv_sim::model::SimConfig::demo();
    let simulator = operator_tikv_sim::server::Simulator::start(
        config,
        "127.0.0.1:0".parse().unwrap(),
        std::time::Duration::from_millis(100),
    )
    .await
    .unwrap();
    let pd = simulator.url();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
            .arg("--db")
            .arg(&db)
            .args([
                "ask",
                "--subject",
                "tikv",
                "--pd",
                &pd,
                "--target",
                "none",
                "--brain",
                "anthropic",
                "why is n2 down?",
            ])
            .env("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
            .env("ANTHROPIC_BASE_URL", url)
            .env("XDG_STATE_HOME", dir.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.matches("node_detail shows its process is not running.")
            .count(),
        1,
        "{text}"
    );
}

#[test]
fn headless_autoplay_refuses_and_says_what_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let out = operator(
        &dir.path().join("op.db"),
        &["run", "--headless", "--autoplay", "--subject", "tikv"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--autoplay plays the demo chapters in the TUI")
            && err.contains("--inject NAME"),
        "{err}"
    );
}

#[test]
fn completions_for_each_shell_and_a_man_page_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    for (shell, mark) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef operator-tui"),
        ("fish", "complete -c operator-tui"),
    ] {
        let out = operator(&db, &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = stdout(&out);
        assert!(
            text.contains(mark) && text.contains("propose"),
            "{shell}: {}",
            &text[..200.min(text.len())]
        );
    }
    let man = stdout(&operator(&db, &["man"]));
    assert!(
        man.starts_with(".ie") || man.contains(".TH operator-tui"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(
        man.contains("read\\-only"),
        "the man page documents the flags"
    );
}

#[test]
fn the_config_file_sets_defaults_and_a_typo_in_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "read_only = true\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let (ok, text) =
        support::binary::operator_text(&db, &["--config", config_arg, "actions", "approve", "1"]);
    assert!(
        !ok && text.contains("read_only in the config file"),
        "{text}"
    );
    // Found at $XDG_CONFIG_HOME/operator-tui/config.toml without --config.
    let home = dir.path().join("xdg");
    std::fs::create_dir_all(home.join("operator-tui")).unwrap();
    std::fs::write(
        home.join("operator-tui/config.toml"),
        "mdoe = \"execute\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .env("XDG_CONFIG_HOME", &home)
        .args(["--db", db.to_str().unwrap(), "tickets", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("mdoe") && text.contains("config.toml"),
        "{text}"
    );
    let (ok, text) =
        support::binary::operator_text(&db, &["--config", "/nonexistent.toml", "tickets", "list"]);
    assert!(!ok && text.contains("/nonexistent.toml"), "{text}");
}

#[test]
fn a_protected_context_asks_for_its_name_before_the_command_line_acts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "context = \"prod-eu\"\n[contexts.prod-eu]\nprotected = true\n",
    )
    .unwrap();
    let run = |confirm: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"));
        command
            .args([
                "--db",
                db.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ])
            .args(["actions", "approve", "1"])
            .stdin(std::process::Stdio::null());
        if let Some(name) = confirm {
            command.env("OPERATOR_CONFIRM_CONTEXT", name);
        }
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, text) = run(None);
    assert!(
        !ok && text.contains("OPERATOR_CONFIRM_CONTEXT=prod-eu"),
        "{text}"
    );
    let (ok, text) = run(Some("prod"));
    assert!(!ok && text.contains("not done"), "{text}");
    // The right name goes on to the command itself (there is no action 1 here).
    let (_, text) = run(Some("prod-eu"));
    assert!(
        !text.contains("protected") && !text.contains("not done"),
        "{text}"
    );
}

/// A headless read-only run says which context it is on and injects nothing it is asked to.
#[test]
fn a_headless_read_only_run_names_its_context_and_injects_nothing() {
    // A simulator and an engine for 6 s: beside a timed cluster test it would skew its timings.
    let _slot = support::heavy("cli headless run");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let out = operator(
        &db,
        &[
            "--read-only",
            "--context",
            "staging",
            "run",
            "--subject",
            "tikv",
            "--headless",
            "--inject",
            "kill_store",
            "--duration",
            "6",
        ],
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .next()
            .unwrap_or_default()
            .starts_with("context staging · READ-ONLY"),
        "{text}"
    );
    assert!(
        text.contains("read-only: operator-tui was started with --read-only"),
        "{text}"
    );
    assert!(!text.contains("store_down"), "nothing was killed: {text}");
    let audit = stdout(&operator(&db, &["audit", "--json"]));
    assert!(!audit.contains("chaos_injected"), "{audit}");
}
