//! The closed loop against a real local rate limiter cluster (Redis + 3 nodes as child
//! processes, real traffic): every fault detected, diagnosed, fixed and verified; the modes;
//! a quiet run; and no process left behind however operator-tui ends. One cluster at a time:
//! the machine has two cores and timing is part of what is tested.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use operator_protocol::ChaosRequest;
use operator_tui::brains::RulesBrain;
use operator_tui::clock::SystemClock;
use operator_tui::deploy::{self, Deployment};
use operator_tui::deploy::{DeploySpec, SubjectName, TargetName};
use operator_tui::engine::{Engine, EngineConfig, EngineHandle};
use operator_tui::events::Command;
use operator_tui::model::*;
use operator_tui::store::Store;

use crate::support;

struct Loop {
    dir: tempfile::TempDir,
    handle: Option<EngineHandle>,
    deployment: Option<Deployment>,
}

impl Loop {
    async fn start(mode: Mode) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let args = DeploySpec {
            subject: SubjectName::Ratelimiter,
            target: TargetName::Local,
            ..DeploySpec::default()
        };
        let deployment = deploy::bring_up(&args, dir.path(), &|_| {})
            .await
            .expect("the local cluster starts");
        let store = Store::open(&dir.path().join("operator.db")).unwrap();
        let config = EngineConfig {
            mode: Some(mode),
            ..EngineConfig::default()
        };
        let engine = Engine::new(
            deployment.subject.clone(),
            deployment.target.clone(),
            Arc::new(RulesBrain),
            store,
            Arc::new(SystemClock),
            config,
        );
        let handle = engine.start();
        Self {
            dir,
            handle: Some(handle),
            deployment: Some(deployment),
        }
    }

    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("operator.db")
    }

    fn store(&self) -> Store {
        Store::open(&self.db()).unwrap()
    }

    /// Waits until the cluster is seen whole (every node healthy, no violation).
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let observation = self
                .deployment
                .as_ref()
                .unwrap()
                .subject
                .observe()
                .await
                .unwrap();
            let violations = self
                .deployment
                .as_ref()
                .unwrap()
                .subject
                .check(&observation);
            if violations.is_empty()
                && observation
                    .nodes
                    .iter()
                    .all(|n| n.health == operator_protocol::Health::Healthy)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster never became healthy: {violations:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn inject(&self, name: &str) {
        let request = ChaosRequest {
            name: name.into(),
            params: Default::default(),
        };
        self.handle
            .as_ref()
            .unwrap()
            .send(Command::InjectChaos(request))
            .await;
    }

    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&Store) -> Option<T>,
    ) -> T {
        support::wait_for_store(&self.store(), what, timeout, f).await
    }

    /// Waits (bounded) for the ticket to resolve, and checks it cleared by itself.
    async fn cleared_without_an_action(&self, ticket: TicketId, timeout: Duration) {
        let resolved = self
            .wait_for("its resolution", timeout, |s| {
                s.ticket(ticket)
                    .unwrap()
                    .filter(|t| t.status == TicketStatus::Resolved)
            })
            .await;
        assert!(
            resolved
                .reason
                .as_deref()
                .unwrap()
                .starts_with("cleared without an action"),
            "{:?}",
            resolved.reason
        );
    }

    /// Stops the engine and the cluster, and checks every process it ran is gone.
    async fn finish(mut self) {
        self.handle.take().unwrap().shutdown().await.unwrap();
        let deployment = self.deployment.take().unwrap();
        let nodes = deployment.target.nodes();
        let mut pids = Vec::new();
        for node in &nodes {
            let described = deployment.target.describe(node).await.unwrap();
            pids.extend(described["pid"].as_u64());
        }
        drop(deployment);
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}/cmdline")).exists() || is_zombie(pid),
                "process {pid} outlived its cluster"
            );
        }
    }
}

fn is_zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z"))
        .unwrap_or(true)
}

/// Injects a fault in execute mode and follows it to a verified resolution.
/// Returns the actions that fixed it, for what a test checks beyond the loop.
async fn closed_loop(chaos: &str, invariant: &str, action: &str) -> Vec<Action> {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Execute).await;
    cluster.wait_healthy().await;
    let injected = Instant::now();
    cluster.inject(chaos).await;
    let opened = cluster
        .wait_for(
            &format!("a {invariant} ticket"),
            Duration::from_secs(20),
            |s| {
                s.tickets(20)
                    .unwrap()
                    .into_iter()
                    .find(|t| t.invariant == invariant)
            },
        )
        .await;
    let ttd = opened
        .timeline
        .time_to_detect_ms()
        .expect("the ticket is linked to the injected fault");
    let resolved = cluster
        .wait_for("its resolution", Duration::from_secs(15), |s| {
            s.ticket(opened.id).unwrap().filter(|t| {
                t.status == TicketStatus::Resolved || t.status == TicketStatus::Escalated
            })
        })
        .await;
    let end_to_end = injected.elapsed();
    assert_eq!(
        resolved.status,
        TicketStatus::Resolved,
        "{chaos}: {:?}",
        resolved.reason
    );
    assert!(
        resolved.reason.as_deref().unwrap().starts_with("verified"),
        "{chaos}: {:?}",
        resolved.reason
    );
    assert!(ttd <= 2000, "{chaos}: detected after {ttd} ms");
    assert!(
        end_to_end <= Duration::from_secs(15),
        "{chaos}: {end_to_end:?} end to end"
    );
    let store = cluster.store();
    let diagnosis = store
        .diagnoses(opened.id)
        .unwrap()
        .into_iter()
        .find(|d| d.accepted)
        .expect("an accepted diagnosis");
    let truth = resolved.chaos.as_ref().unwrap().root_cause.clone();
    assert_eq!(
        diagnosis.body["root_cause"]["category"], truth,
        "{chaos}: wrong root cause"
    );
    let actions = store.actions(Some(opened.id), 10).unwrap();
    assert!(!actions.is_empty() && actions.iter().all(|a| a.status == ActionStatus::Completed));
    assert!(
        actions.iter().all(|a| a.name == action),
        "{chaos}: {actions:?}"
    );
    eprintln!(
        "{chaos}: detected in {ttd} ms, resolved {:.2} s after injection",
        end_to_end.as_secs_f64()
    );
    cluster.finish().await;
    actions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_restarted_and_verified() {
    closed_loop("kill_node", "node_down", "restart_node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_is_restarted_and_verified() {
    closed_loop("pause_node", "node_down", "restart_node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_is_restarted_and_verified() {
    closed_loop("kill_redis", "redis_disconnected", "restart_redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_is_found_by_its_p99_and_restarted() {
    closed_loop("node_latency", "high_latency", "restart_node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_counter_is_found_and_repaired_keeping_every_allowed_unit() {
    let actions = closed_loop("counter_drift", "counter_drift", "repair_counter").await;
    // Only the 150 units written behind the nodes' backs go: what they allowed stays.
    let outcome = actions[0].outcome.clone().unwrap_or_default();
    let removed: u64 = outcome
        .strip_prefix("removed ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{outcome}"));
    let left: u64 = outcome
        .rsplit_once("(now ")
        .and_then(|(_, n)| n.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("{outcome}"));
    assert!((1..=150).contains(&removed) && left > 0, "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_allowing_without_redis_is_found_and_restarted() {
    closed_loop("ghost_allow", "ghost_allowing", "restart_node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_that_passes_by_itself_is_watched_and_nothing_restarts() {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Execute).await;
    cluster.wait_healthy().await;
    // Someone else's SIGSTOP, undone a moment later (a long GC pause, a debugger detached):
    // the stall is diagnosed, and the restart waits out the watch period meanwhile.
    cluster.inject("pause_node").await;
    let opened = cluster
        .wait_for("a node_down ticket", Duration::from_secs(20), |s| {
            s.tickets(20)
                .unwrap()
                .into_iter()
                .find(|t| t.invariant == "node_down")
        })
        .await;
    cluster
        .wait_for("the watch", Duration::from_secs(10), |s| {
            s.audit_log(Some(opened.id), 50)
                .unwrap()
                .into_iter()
                .find(|r| r.event == "watch")
        })
        .await;
    let deployment = cluster.deployment.as_ref().unwrap();
    let node = operator_protocol::NodeId::from(opened.target.as_str());
    let pid = deployment.target.describe(&node).await.unwrap()["pid"].clone();
    deployment.target.resume(&node).await.unwrap();
    cluster
        .cleared_without_an_action(opened.id, Duration::from_secs(15))
        .await;
    let actions = cluster.store().actions(Some(opened.id), 10).unwrap();
    assert!(
        actions
            .iter()
            .all(|a| a.status == ActionStatus::Cancelled && a.attempts == 0),
        "{actions:?}"
    );
    assert_eq!(
        deployment.target.describe(&node).await.unwrap()["pid"],
        pid,
        "the same process serves again"
    );
    cluster.finish().await;
}

/// Redis stopped for two seconds by someone else (failover tooling, a debugger) and resumed:
/// the stall is watched, and nothing restarts Redis, whose restart would wipe every count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_for_two_seconds_resumes_by_itself_and_nothing_restarts_it() {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Execute).await;
    cluster.wait_healthy().await;
    let deployment = cluster.deployment.as_ref().unwrap();
    let redis = operator_protocol::NodeId::from("redis");
    let pid = deployment.target.describe(&redis).await.unwrap()["pid"].clone();
    deployment.target.pause(&redis).await.unwrap();
    let stopped = std::time::Instant::now();
    let opened = cluster
        .wait_for(
            "a redis_disconnected ticket",
            Duration::from_secs(10),
            |s| {
                s.tickets(20)
                    .unwrap()
                    .into_iter()
                    .find(|t| t.invariant == "redis_disconnected")
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(stopped.elapsed())).await;
    deployment.target.resume(&redis).await.unwrap();
    cluster
        .cleared_without_an_action(opened.id, Duration::from_secs(20))
        .await;
    let restarts: Vec<_> = cluster
        .store()
        .actions(None, 50)
        .unwrap()
        .into_iter()
        .filter(|a| a.name == "restart_redis" && a.attempts > 0)
        .collect();
    assert!(restarts.is_empty(), "{restarts:?}");
    assert_eq!(
        deployment.target.describe(&redis).await.unwrap()["pid"],
        pid,
        "the same Redis serves again, with every count"
    );
    cluster.finish().await;
}

/// Redis stopped and started in quick cycles for 6 s (a stalled host, a debugger): the
/// writes queued meanwhile land late, and counts drift from what the nodes allowed. That drift
/// is the stall's aftermath and heals with its window: no count is reset, and every ticket ends
/// resolved by itself or with a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_after_redis_stalls_is_the_stalls_aftermath_and_no_count_is_reset() {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Execute).await;
    cluster.wait_healthy().await;
    let deployment = cluster.deployment.as_ref().unwrap();
    let redis = operator_protocol::NodeId::from("redis");
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        deployment.target.pause(&redis).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        deployment.target.resume(&redis).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The stall's tickets end, then its aftermath (two 5-second windows) passes.
    cluster
        .wait_for("every ticket ended", Duration::from_secs(60), |s| {
            let tickets = s.tickets(200).unwrap();
            (!tickets.is_empty()
                && tickets
                    .iter()
                    .all(|t| matches!(t.status, TicketStatus::Resolved | TicketStatus::Escalated)))
            .then_some(())
        })
        .await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let store = cluster.store();
    let resets: Vec<_> = store
        .actions(None, 200)
        .unwrap()
        .into_iter()
        .filter(|a| a.name.ends_with("_counter") && a.attempts > 0)
        .collect();
    assert!(resets.is_empty(), "{resets:?}");
    let open: Vec<_> = store
        .tickets(200)
        .unwrap()
        .into_iter()
        .filter(|t| !matches!(t.status, TicketStatus::Resolved | TicketStatus::Escalated))
        .collect();
    assert!(open.is_empty(), "{open:?}");
    cluster.finish().await;
}

/// `process` stopped with SIGTERM by someone about to start it again (other flags, a new
/// build, an upgrade): a clean exit is theirs. The operator diagnoses `cause`, runs no
/// `restart` (it would race them for the port), and the `invariant` ticket resolves once they
/// have started it.
async fn stopped_on_purpose_is_left_to_whoever_stopped_it(
    process: &str,
    invariant: &str,
    cause: &str,
    restart: &str,
) {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Execute).await;
    cluster.wait_healthy().await;
    let deployment = cluster.deployment.as_ref().unwrap();
    let node = operator_protocol::NodeId::from(process);
    let pid = deployment.target.describe(&node).await.unwrap()["pid"]
        .as_u64()
        .unwrap();
    // SAFETY: SIGTERM to the process, as a person's `kill` would send it.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let opened = cluster
        .wait_for(
            &format!("a diagnosed {invariant} ticket"),
            Duration::from_secs(20),
            |s| {
                s.tickets(50)
                    .unwrap()
                    .into_iter()
                    .find(|t| t.invariant == invariant && t.timeline.diagnosed_ms.is_some())
            },
        )
        .await;
    let diagnosis = cluster.store().diagnoses(opened.id).unwrap().remove(0);
    assert_eq!(
        diagnosis.body["root_cause"]["category"], cause,
        "{}",
        diagnosis.body
    );
    // Its person takes a moment; nothing restarts the process meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let described = deployment.target.describe(&node).await.unwrap();
    assert_eq!(described["state"], "exited", "{described}");
    assert_eq!(described["exit_status"], "exit code 0", "{described}");
    deployment.target.start(&node).await.unwrap();
    let resolved = cluster
        .wait_for("its resolution", Duration::from_secs(45), |s| {
            s.ticket(opened.id)
                .unwrap()
                .filter(|t| t.status == TicketStatus::Resolved)
        })
        .await;
    let restarts: Vec<_> = cluster
        .store()
        .actions(None, 50)
        .unwrap()
        .into_iter()
        .filter(|a| a.name == restart && a.attempts > 0)
        .collect();
    assert!(restarts.is_empty(), "{restarts:?} {:?}", resolved.reason);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_on_purpose_is_left_to_whoever_stopped_it() {
    stopped_on_purpose_is_left_to_whoever_stopped_it(
        "node-3",
        "node_down",
        "deliberate_stop",
        "restart_node",
    )
    .await;
}

/// As for a node: a Redis someone shut down (`redis-cli shutdown`, an upgrade) is theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_on_purpose_is_left_to_whoever_stopped_it() {
    stopped_on_purpose_is_left_to_whoever_stopped_it(
        "redis",
        "redis_disconnected",
        "redis_stopped_deliberately",
        "restart_redis",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_mode_waits_for_an_approval_from_another_process() {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Approve).await;
    cluster.wait_healthy().await;
    cluster.inject("kill_node").await;
    let action = cluster
        .wait_for("a validated action", Duration::from_secs(10), |s| {
            s.actions(None, 10)
                .unwrap()
                .into_iter()
                .find(|a| a.status == ActionStatus::Validated)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cluster.store().action(action.id).unwrap().unwrap().status,
        ActionStatus::Validated,
        "nothing runs unapproved"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .args([
            "--db",
            cluster.db().to_str().unwrap(),
            "actions",
            "approve",
            &action.id.0.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ticket = cluster
        .wait_for("the resolution", Duration::from_secs(15), |s| {
            s.ticket(action.ticket_id.unwrap())
                .unwrap()
                .filter(|t| t.status == TicketStatus::Resolved)
        })
        .await;
    assert!(ticket.reason.unwrap().starts_with("verified"));
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_mode_diagnoses_but_executes_nothing() {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Observe).await;
    cluster.wait_healthy().await;
    cluster.inject("kill_node").await;
    let ticket = cluster
        .wait_for("a diagnosed ticket", Duration::from_secs(10), |s| {
            s.tickets(10)
                .unwrap()
                .into_iter()
                .find(|t| t.status == TicketStatus::Diagnosed)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = cluster.store();
    let actions = store.actions(Some(ticket.id), 10).unwrap();
    assert!(
        actions
            .iter()
            .all(|a| a.status == ActionStatus::Validated && a.attempts == 0),
        "{actions:?}"
    );
    let still = store.ticket(ticket.id).unwrap().unwrap();
    assert_eq!(still.status, TicketStatus::Diagnosed);
    let node = operator_protocol::NodeId(ticket.target.clone());
    let described = cluster
        .deployment
        .as_ref()
        .unwrap()
        .target
        .describe(&node)
        .await
        .unwrap();
    assert_eq!(
        described["state"], "exited",
        "the node stays down: nobody restarted it"
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_seconds_of_traffic_without_a_fault_open_no_ticket() {
    let _slot = support::one_cluster_at_a_time();
    let cluster = Loop::start(Mode::Execute).await;
    cluster.wait_healthy().await;
    let mut events = cluster.handle.as_ref().unwrap().subscribe();
    let started = Instant::now();
    let mut busiest = 0.0f64;
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Ok(operator_tui::events::EngineEvent::Observed { observation, .. })) =
            tokio::time::timeout(Duration::from_secs(1), events.recv()).await
        {
            busiest = busiest.max(observation.workload.map(|w| w.ops_per_sec).unwrap_or(0.0));
        }
    }
    let tickets = cluster.store().tickets(10).unwrap();
    assert!(
        tickets.is_empty(),
        "false positives: {:?}",
        tickets
            .iter()
            .map(|t| (&t.invariant, &t.target, &t.message))
            .collect::<Vec<_>>()
    );
    assert!(
        busiest > 150.0,
        "the workload ran: {busiest:.0} ops/s at most"
    );
    cluster.finish().await;
}

/// Processes (ours and our children's) that carry this marker in their environment.
fn marked(marker: &str) -> Vec<u32> {
    let needle = format!("OPERATOR_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines().any(|l| {
                    l.strip_prefix("PPid:")
                        .is_some_and(|p| p.trim() == parent.to_string())
                })
            })
        })
        .collect()
}

/// A child process killed on drop, so a failing assertion cannot leak a running operator.
struct Guarded(std::process::Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_headless(dir: &Path, marker: &str, extra: &[&str]) -> Guarded {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .args([
            "--db",
            dir.join("operator.db").to_str().unwrap(),
            "run",
            "--headless",
            "--subject",
            "ratelimiter",
            "--mode",
            "execute",
        ])
        .args(extra)
        .env("OPERATOR_TEST_MARKER", marker)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Guarded(child)
}

fn wait_gone(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !marked(marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes left behind: {:?}",
            marked(marker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_run_prints_the_loop_and_leaves_nothing_behind() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("headless-{}", std::process::id());
    let mut child = spawn_headless(
        dir.path(),
        &marker,
        &["--inject", "kill_node", "--duration", "8"],
    );
    let stdout = child.0.stdout.take().unwrap();
    let text = tokio::task::spawn_blocking(move || std::io::read_to_string(stdout).unwrap())
        .await
        .unwrap();
    assert!(child.0.wait().unwrap().success());
    for needle in [
        "chaos kill_node on node-2",
        "ticket #1 open: node_down on node-2",
        "│ Conclusion: process_crash",
        "restart_node {\"node\":\"node-2\"} completed",
        "ticket #1 resolved",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    wait_gone(&marker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_or_sigkill_of_operator_tui_leaves_no_process_behind() {
    let _slot = support::one_cluster_at_a_time();
    for signal in ["-TERM", "-KILL"] {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("signal{signal}-{}", std::process::id());
        let mut guard = spawn_headless(dir.path(), &marker, &[]);
        let child = &mut guard.0;
        let stdout = child.stdout.take().unwrap();
        let seen = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.contains("cluster:"))
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(20), seen)
                .await
                .unwrap()
                .unwrap(),
            "the run never observed its cluster"
        );
        // Redis rewrites its own environment (setproctitle), so children are found by parent.
        let children = children_of(child.id());
        assert_eq!(
            children.len(),
            4,
            "Redis and 3 nodes run as children: {children:?}"
        );
        std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        wait_gone(&marker);
        let deadline = Instant::now() + Duration::from_secs(5);
        while children
            .iter()
            .any(|pid| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid as u64))
        {
            assert!(
                Instant::now() < deadline,
                "after {signal}, children outlived operator-tui: {children:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_missing_redis_server_is_named_with_the_package_and_the_alternative() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .args([
            "--db",
            dir.path().join("operator.db").to_str().unwrap(),
            "run",
            "--headless",
        ])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("apt-get install -y redis-server") && text.contains("--redis-url"),
        "{text}"
    );
}
