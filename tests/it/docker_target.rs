//! The Docker target against the real Docker engine: images built from local binaries (no
//! registry), the rate limiter cluster up as a Compose project, then for a node kill, a node
//! pause, a Redis kill and a network partition: detect → diagnose (rules) → act through Docker →
//! verified, in execute mode. Everything created is removed afterwards.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use operator_protocol::{ChaosRequest, Health, NodeId};
use operator_tui::brains::RulesBrain;
use operator_tui::clock::SystemClock;
use operator_tui::deploy;
use operator_tui::deploy::{DeploySpec, SubjectName, TargetName};
use operator_tui::engine::{Engine, EngineConfig};
use operator_tui::events::Command as EngineCommand;
use operator_tui::model::*;
use operator_tui::store::Store;

use crate::support;
use support::compose::{ComposeProject, build_images, free_port, root};

fn up() -> ComposeProject {
    let id = std::process::id();
    let tag = format!("test-{id}");
    let node_binary =
        Path::new(env!("CARGO_BIN_EXE_operator-tui")).with_file_name("ratelimiter-svc");
    assert!(
        node_binary.is_file(),
        "cargo test --workspace builds {}",
        node_binary.display()
    );
    build_images(&[
        ("IMAGE_TAG", &tag),
        ("RATELIMITER_SVC_BIN", node_binary.to_str().unwrap()),
    ]);
    let (node_image, redis_image) = (
        format!("operator-tui/ratelimiter-svc:{tag}"),
        format!("operator-tui/redis:{tag}"),
    );
    let env = vec![
        (
            "RL_ADMIN_TOKEN".to_string(),
            format!("docker-test-token-{id}"),
        ),
        ("RATELIMITER_IMAGE".to_string(), node_image.clone()),
        ("REDIS_IMAGE".to_string(), redis_image.clone()),
        ("NODE1_PORT".to_string(), free_port().to_string()),
        ("NODE2_PORT".to_string(), free_port().to_string()),
        ("NODE3_PORT".to_string(), free_port().to_string()),
        ("REDIS_PORT".to_string(), free_port().to_string()),
    ];
    ComposeProject::up(
        &format!("optest{id}"),
        "ratelimiter.yml",
        env,
        vec![node_image, redis_image],
    )
}

async fn wait_healthy(deployment: &deploy::Deployment) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let observation = deployment.subject.observe().await.unwrap();
        if deployment.subject.check(&observation).is_empty()
            && observation
                .nodes
                .iter()
                .all(|n| n.health == Health::Healthy)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the containers never became healthy: {:?}",
            deployment.subject.check(&observation)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn compose_accepts_the_compose_file() {
    let _slot = support::heavy("docker_target");
    let out = Command::new("docker-compose")
        .args([
            "-f",
            root().join("compose/ratelimiter.yml").to_str().unwrap(),
            "config",
            "--quiet",
        ])
        .env("RL_ADMIN_TOKEN", "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_containers_are_fixed_through_the_docker_api() {
    let _slot = support::heavy("docker_target");
    let project = up();
    let args = DeploySpec {
        subject: SubjectName::Ratelimiter,
        target: TargetName::Docker,
        compose_project: Some(project.name.clone()),
        ..DeploySpec::default()
    };
    for (chaos, invariant, cause) in [
        ("kill_node", "node_down", "process_crash"),
        ("pause_node", "node_down", "process_stalled"),
        ("kill_redis", "redis_disconnected", "redis_down"),
        ("partition_node", "node_down", "network_partition"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let deployment = deploy::bring_up(&args, dir.path(), &|_| {})
            .await
            .expect("the Compose project is found");
        assert_eq!(deployment.target.kind(), "docker");
        wait_healthy(&deployment).await;
        let db = dir.path().join("operator.db");
        let engine = Engine::new(
            deployment.subject.clone(),
            deployment.target.clone(),
            Arc::new(RulesBrain),
            Store::open(&db).unwrap(),
            Arc::new(SystemClock),
            EngineConfig {
                mode: Some(Mode::Execute),
                ..EngineConfig::default()
            },
        );
        let handle = engine.start();
        handle
            .send(EngineCommand::InjectChaos(ChaosRequest {
                name: chaos.into(),
                params: Default::default(),
            }))
            .await;
        let store = Store::open(&db).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let ticket = loop {
            let found = store.tickets(10).unwrap().into_iter().find(|t| {
                t.invariant == invariant
                    && matches!(t.status, TicketStatus::Resolved | TicketStatus::Escalated)
            });
            if let Some(t) = found {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "{chaos}: no outcome in 30 s: {:?}",
                store.tickets(10).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // The injection call may return after the fix (a network disconnect can be slow); its
        // record links the ticket to the fault when it lands.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ticket = store.ticket(ticket.id).unwrap().unwrap();
        assert!(
            ticket
                .timeline
                .time_to_detect_ms()
                .is_some_and(|ms| ms <= 2000),
            "{chaos}: not linked to its fault, or detected late: {:?} {:?}",
            ticket.timeline,
            store.recent_chaos("ratelimiter", 0).unwrap()
        );
        assert_eq!(
            ticket.status,
            TicketStatus::Resolved,
            "{chaos}: {:?}",
            ticket.reason
        );
        assert!(
            ticket.reason.as_deref().unwrap().starts_with("verified"),
            "{chaos}: {:?}",
            ticket.reason
        );
        let diagnosis = store
            .diagnoses(ticket.id)
            .unwrap()
            .into_iter()
            .find(|d| d.accepted)
            .unwrap();
        assert_eq!(diagnosis.body["root_cause"]["category"], cause, "{chaos}");
        eprintln!(
            "{chaos}: detected in {:?} ms, resolved in {:?} ms",
            ticket.timeline.time_to_detect_ms(),
            ticket.timeline.time_to_mitigate_ms()
        );
        handle.shutdown().await.unwrap();
        drop(deployment);
    }
    // How a container ended tells a person's `docker stop` (SIGTERM, a clean exit) from a crash.
    let dir = tempfile::tempdir().unwrap();
    let deployment = deploy::bring_up(&args, dir.path(), &|_| {})
        .await
        .expect("the Compose project is found");
    let (stopped, killed) = (NodeId::from("node-1"), NodeId::from("node-2"));
    deployment.target.stop(&stopped).await.unwrap();
    deployment.target.kill(&killed).await.unwrap();
    let stopped = deployment.target.describe(&stopped).await.unwrap();
    assert_eq!(stopped["exit_status"], "exit code 0", "{stopped}");
    assert_eq!(stopped["stopped_deliberately"], true, "{stopped}");
    let killed = deployment.target.describe(&killed).await.unwrap();
    assert_eq!(
        killed["exit_status"], "exit code 137 (killed by signal 9)",
        "{killed}"
    );
    assert!(killed["stopped_deliberately"].is_null(), "{killed}");
    drop(deployment);
    drop(project);
    let left = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!(
                "label=com.docker.compose.project=optest{}",
                std::process::id()
            ),
        ])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "containers left behind");
}
