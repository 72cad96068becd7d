//! The README is a test. Every command in its `sh` blocks is listed below with how it is
//! checked: run as written in README order in a sandbox (its exit code and what it says), shown
//! on a full screen under tmux and quit with q, run until its output shows its point and then
//! interrupted, or covered by a named test that runs the same command (the demos, Docker). A
//! README line missing here, or a line here the README lost, fails the first test: a README
//! change cannot silently outrun its checks.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use support::tmux::Tmux;

#[derive(Debug, Clone, Copy)]
enum Check {
    /// Runs in README order in one sandbox: its exit code and what its output must say.
    Runs {
        exit: i32,
        says: &'static [&'static str],
    },
    /// The full screen under tmux in a sandbox of its own: it shows this, and q quits with 0.
    Screen { shows: &'static str },
    /// Runs in a sandbox of its own until its output says this, then Ctrl-C: exit 0.
    Interrupt { until: &'static str },
    /// Too long or too heavy to run twice: this test runs the same command.
    CoveredBy(&'static str),
}

use Check::*;

const fn runs(says: &'static [&'static str]) -> Check {
    Runs { exit: 0, says }
}

/// Every README command, as written (without its comment), and how it is checked.
const CHECKS: &[(&str, Check)] = &[
    // Quick start.
    (
        "scripts/demo",
        CoveredBy("the_rate_limiter_demo_as_shipped_plays_to_its_last_chapter"),
    ),
    ("scripts/test", CoveredBy(".ci/run")),
    // The session, in order.
    (
        "operator-tui chaos list",
        runs(&["kill_node", "process_crash"]),
    ),
    (
        "operator-tui cluster up",
        runs(&["node-1", "traffic 200 checks/s"]),
    ),
    (
        "operator-tui check --once",
        runs(&["every invariant holds"]),
    ),
    (
        "operator-tui chaos inject kill_node --param node=node-3",
        runs(&["killed node-3"]),
    ),
    (
        "operator-tui check --once --json",
        Runs {
            exit: 1,
            says: &["\"invariant\": \"node_down\"", "\"target\": \"node-3\""],
        },
    ),
    (
        "operator-tui run --headless --mode approve --duration 10",
        runs(&["ticket #1 diagnosed", "A1 restart_node", "validated"]),
    ),
    (
        "operator-tui actions list",
        runs(&["restart_node", "validated"]),
    ),
    (
        "operator-tui actions approve 1",
        runs(&["action 1 approved"]),
    ),
    (
        "operator-tui run --headless --duration 15",
        runs(&["A1 restart_node", "completed", "ticket #1 resolved"]),
    ),
    (
        "operator-tui tickets list",
        runs(&["node_down", "verified"]),
    ),
    (
        "operator-tui tickets show 1 --timeline",
        runs(&["fault injected", "resolved"]),
    ),
    (
        "operator-tui incidents list",
        runs(&["node_down", "resolved"]),
    ),
    (
        "operator-tui actions show 1",
        runs(&["[completed]", "destroys:", "cannot be undone"]),
    ),
    (
        "operator-tui actions undo 1",
        Runs {
            exit: 1,
            says: &["error: action A1 restart_node cannot be taken back"],
        },
    ),
    (
        "operator-tui audit --ticket 1",
        runs(&["action_approved", "ticket_resolved"]),
    ),
    (
        "operator-tui chaos inject kill_node --param node=node-2",
        runs(&["killed node-2"]),
    ),
    (
        "operator-tui run --headless --mode observe --duration 5",
        runs(&["ticket #2 diagnosed", "A2 restart_node"]),
    ),
    (
        "operator-tui actions propose --ticket 2 restart_node --param node=node-2",
        runs(&["A3 restart_node picked for ticket #2"]),
    ),
    (
        "operator-tui run --headless --mode execute --duration 10",
        runs(&[
            "A3 restart_node {\"node\":\"node-2\"} completed",
            "ticket #2 resolved",
        ]),
    ),
    (
        "operator-tui actions catalog",
        runs(&["restart_node", "disruptive"]),
    ),
    ("operator-tui killswitch on", runs(&["kill switch ON"])),
    ("operator-tui killswitch status", runs(&["kill switch ON"])),
    ("operator-tui killswitch off", runs(&["kill switch off"])),
    ("operator-tui mode approve", runs(&["mode approve"])),
    (
        "operator-tui cluster status",
        runs(&["traffic", "node-3", "running"]),
    ),
    ("operator-tui cluster down", runs(&["cluster stopped"])),
    // The full screen, the demos and the rest.
    (
        "operator-tui --subject ratelimiter",
        Screen {
            shows: "╭ tickets"
        },
    ),
    ("operator-tui --read-only", Screen { shows: "READ-ONLY" }),
    (
        "operator-tui --context prod-eu",
        Screen { shows: " prod-eu " },
    ),
    (
        "operator-tui run --autoplay --record talk.cast",
        CoveredBy("autoplay_in_a_real_terminal_resolves_the_ticket_and_restores_the_terminal"),
    ),
    (
        "operator-tui run --subject tikv --autoplay",
        CoveredBy("the_tikv_demo_chapters_play_through_on_the_simulator"),
    ),
    (
        "operator-tui run --headless --inject node_latency",
        Interrupt {
            until: "high_latency on node-2",
        },
    ),
    (
        "operator-tui run --subject tikv --headless --mode execute --inject kill_store --duration 15 --json",
        runs(&["\"event\":\"run\"", "\"event\":\"ticket_changed\""]),
    ),
    (
        "operator-tui completions bash",
        runs(&["complete -F _operator__tui", "default operator-tui"]),
    ),
    ("operator-tui man", runs(&[".TH operator-tui"])),
    // Docker.
    (
        "compose/build-local-images.sh",
        CoveredBy("faults_in_containers_are_fixed_through_the_docker_api"),
    ),
    (
        "RL_ADMIN_TOKEN=$(head -c16 /dev/urandom | xxd -p) docker-compose -p rl -f compose/ratelimiter.yml up -d",
        CoveredBy("faults_in_containers_are_fixed_through_the_docker_api"),
    ),
    (
        "operator-tui --subject ratelimiter --target docker --compose-project rl",
        CoveredBy("faults_in_containers_are_fixed_through_the_docker_api"),
    ),
    (
        "docker-compose -p rl -f compose/ratelimiter.yml down",
        CoveredBy("faults_in_containers_are_fixed_through_the_docker_api"),
    ),
    // TiKV.
    ("operator-tui --subject tikv", Screen { shows: "SIMULATED" }),
    (
        "operator-tui simulate --listen 127.0.0.1:2379",
        CoveredBy("another_process_runs_the_loop_on_a_simulator_it_did_not_start"),
    ),
    (
        "operator-tui --subject tikv --pd http://127.0.0.1:2379 --target sim",
        CoveredBy("another_process_runs_the_loop_on_a_simulator_it_did_not_start"),
    ),
    (
        "docker-compose -p operator-tikv -f compose/tikv.yml up -d",
        CoveredBy("compose_accepts_the_tikv_compose_file"),
    ),
    (
        "operator-tui --subject tikv --pd http://127.0.0.1:2379 --target docker --prometheus http://127.0.0.1:9090",
        CoveredBy("a_killed_store_container_is_restarted_through_docker_and_verified_through_pd"),
    ),
    (
        "IMAGES=operator-tui compose/build-local-images.sh",
        CoveredBy("a_killed_store_container_is_restarted_through_docker_and_verified_through_pd"),
    ),
    (
        "docker-compose -p operator-tikv -f compose/tikv-sim.yml up -d",
        CoveredBy("a_killed_store_container_is_restarted_through_docker_and_verified_through_pd"),
    ),
    (
        "operator-tui --subject tikv --pd http://127.0.0.1:2379 --target docker",
        CoveredBy("a_killed_store_container_is_restarted_through_docker_and_verified_through_pd"),
    ),
    (
        "operator-tui --subject tikv --pd http://pd.example:2379 --target none",
        CoveredBy("the_none_target_watches_and_refuses_restarts_with_a_reason"),
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The commands of the README's `sh` blocks, in order, each without its comment.
fn readme_commands() -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in readme().lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_sh = !in_sh && fence == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let command = line.split(" # ").next().unwrap_or_default().trim();
        if !command.is_empty() && !command.starts_with('#') {
            commands.push(command.to_string());
        }
    }
    commands
}

fn check_of(command: &str) -> Check {
    CHECKS
        .iter()
        .find(|(c, _)| *c == command)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| {
            panic!("README command {command:?} is not in tests/it/readme.rs: add how it is checked")
        })
}

/// A test by that name exists in this crate's tests (or, for `.ci/run`, CI runs the command).
fn covered(name: &str) -> bool {
    if name == ".ci/run" {
        let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
        return ci.lines().any(|l| l.trim() == "exec scripts/test");
    }
    let needle = format!("fn {name}(");
    std::fs::read_dir(root().join("tests/it"))
        .unwrap()
        .flatten()
        .any(|f| std::fs::read_to_string(f.path()).is_ok_and(|text| text.contains(&needle)))
}

#[test]
fn every_readme_command_is_checked_and_every_check_is_in_the_readme() {
    let commands = readme_commands();
    for command in &commands {
        if let CoveredBy(test) = check_of(command) {
            assert!(
                covered(test),
                "{command:?} is covered by {test}, which does not exist"
            );
        }
    }
    for (command, _) in CHECKS {
        assert!(
            commands.iter().any(|c| c == command),
            "{command:?} is checked here but the README no longer has it"
        );
    }
    // The demo test plays the shipped chapters with the arguments scripts/demo passes.
    let demo = std::fs::read_to_string(root().join("scripts/demo")).unwrap();
    assert!(
        demo.contains("set -- run --subject ratelimiter --mode execute --autoplay"),
        "scripts/demo no longer runs what its test covers"
    );
    // Without a terminal it ends by itself: a script or a pipe is never left waiting.
    assert!(
        demo.contains("--inject kill_node --duration "),
        "scripts/demo's headless run has no end"
    );
}

#[test]
fn the_readme_config_file_example_is_accepted() {
    let text = readme();
    let start = text
        .find("```toml\n")
        .expect("the README shows a config file")
        + 8;
    let example = &text[start..start + text[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, example).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .arg("--config")
        .arg(&config)
        .args(["chaos", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A user's machine in a folder: its own state and config directories, operator-tui on PATH.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        Self { dir }
    }

    fn shell(&self, command: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_operator-tui"))
            .parent()
            .unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut shell = Command::new("sh");
        shell
            .args(["-c", command])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("NO_COLOR", "1")
            .env_remove("OPERATOR_SUBJECT")
            .env_remove("OPERATOR_DB")
            .stdin(Stdio::null());
        shell
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Whatever a failed step left: the detached cluster and its traffic.
        let _ = self.shell("operator-tui cluster down").output();
    }
}

#[test]
fn the_readme_commands_run_as_written_in_order() {
    let _slot = support::one_cluster_at_a_time();
    let sandbox = Sandbox::new();
    for command in readme_commands() {
        let Runs { exit, says } = check_of(&command) else {
            continue;
        };
        let started = Instant::now();
        let out = sandbox.shell(&command).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The end of a long output is where a failure shows.
        let tail = &text[text.floor_char_boundary(text.len().saturating_sub(4000))..];
        assert_eq!(out.status.code(), Some(exit), "{command}\n{tail}");
        for claim in says {
            if !text.contains(claim) {
                // Which tickets there are says why a number moved (an extra ticket earlier).
                let tickets = sandbox.shell("operator-tui tickets list").output().unwrap();
                panic!(
                    "{command}: no {claim:?} in\n{tail}\ntickets now:\n{}",
                    String::from_utf8_lossy(&tickets.stdout)
                );
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{command} took {:?}",
            started.elapsed()
        );
    }
}

/// Waits (bounded) until `done` holds, or panics with `what`.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_readme_screens_and_long_runs_work_as_written() {
    let _slot = support::heavy("tui_terminal");
    for command in readme_commands() {
        match check_of(&command) {
            Screen { shows } => {
                let sandbox = Sandbox::new();
                let tmux = Tmux::new("readme");
                let shell = sandbox.shell(&command);
                let envs: Vec<String> = shell
                    .get_envs()
                    .filter_map(|(k, v)| Some(format!("{}='{}'", k.to_str()?, v?.to_str()?)))
                    .collect();
                tmux.start(&format!(
                    "cd {} && env {} {command}; echo README-EXITED $?; sleep 30",
                    sandbox.dir.path().display(),
                    envs.join(" ")
                ));
                wait_until(
                    &format!("{command} never showed {shows:?}:\n{}", tmux.screen()),
                    Duration::from_secs(30),
                    || tmux.screen().contains(shows),
                );
                tmux.run(&["send-keys", "-t", "t", "q"]);
                wait_until(
                    &format!("{command} did not quit on q:\n{}", tmux.screen()),
                    Duration::from_secs(15),
                    || tmux.screen().contains("README-EXITED"),
                );
                assert!(
                    tmux.screen().contains("README-EXITED 0"),
                    "{command}:\n{}",
                    tmux.screen()
                );
            }
            Interrupt { until } => {
                let sandbox = Sandbox::new();
                let mut child = sandbox
                    .shell(&format!("exec {command}"))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut stdout = child.stdout.take().unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let mut seen = String::new();
                    let mut buffer = [0u8; 4096];
                    while let Ok(n) = stdout.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
                        let _ = tx.send(seen.clone());
                    }
                });
                let mut seen = String::new();
                wait_until(
                    &format!("{command} never said {until:?}"),
                    Duration::from_secs(45),
                    || {
                        while let Ok(text) = rx.try_recv() {
                            seen = text;
                        }
                        seen.contains(until)
                    },
                );
                // SAFETY: SIGINT to the child we spawned, as Ctrl-C sends it.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
                let status = child.wait().unwrap();
                assert!(status.success(), "{command} ended {status:?} on Ctrl-C");
            }
            _ => {}
        }
    }
}
