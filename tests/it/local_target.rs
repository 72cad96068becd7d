//! The local target restarting for real: a restart is verified against the new process (the
//! old one gone, the new one answering), and a process the engine restarts in a detached
//! cluster is written to its record, so `cluster down` stops it too.

use std::io::{Read, Write};
use std::time::Duration;

use operator_protocol::{DeploymentTarget, NodeId, ProcessSpec, ReadyProbe};
use operator_tui::deploy::{self, SubjectName};
use operator_tui::targets::local::LocalTarget;

use crate::support;
use crate::support::binary::operator;
use crate::support::compose::free_port;

fn gone(pid: u64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty() || stat.contains(") Z")
}

/// PING over a plain socket, as a client would.
fn pong(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

async fn pid(target: &dyn DeploymentTarget, node: &NodeId) -> Option<u64> {
    target.describe(node).await.unwrap()["pid"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_a_stopped_redis_is_verified_against_the_new_process() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let redis = NodeId::from("redis");
    let spec = ProcessSpec {
        id: redis.clone(),
        program: "redis-server".into(),
        args: [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.path().to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec(),
        env: vec![],
        ready: ReadyProbe::RedisPing {
            address: format!("127.0.0.1:{port}"),
        },
    };
    let target = LocalTarget::launch(vec![spec], &dir.path().join("logs"), false, &|_| {})
        .await
        .expect("redis-server starts (scripts/ensure-deps installs it)");
    let old = pid(&target, &redis).await.unwrap();
    assert!(pong(port));

    // Alive but not answering: the kernel still accepts its port, PING gets nothing.
    target.pause(&redis).await.unwrap();
    assert!(!pong(port), "a stopped Redis does not answer");
    target.kill(&redis).await.unwrap();
    assert!(gone(old), "the old process is gone before anything starts");
    target.start(&redis).await.expect("the new process answers");

    let new = pid(&target, &redis).await.unwrap();
    assert_ne!(new, old);
    assert!(pong(port), "PING answers from the new process");
    drop(target);
    assert!(gone(new), "the target's drop stops what it started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_an_attached_engine_restarts_are_stopped_by_cluster_down() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let _cluster = support::binary::cluster_up(&db);

    let deployment = deploy::attach(SubjectName::Ratelimiter, dir.path()).unwrap();
    let target = deployment.target.clone();
    let mut pids = Vec::new();
    for node in [NodeId::from("node-2"), NodeId::from("redis")] {
        let before = pid(&*target, &node).await.unwrap();
        target.kill(&node).await.unwrap();
        target.start(&node).await.unwrap();
        let after = pid(&*target, &node).await.unwrap();
        assert_ne!(before, after, "{node} runs as a new process");
        pids.push(after);
    }
    drop(target);
    drop(deployment);

    let down = operator(&db, &["cluster", "down"]);
    assert!(String::from_utf8_lossy(&down.stdout).contains("cluster stopped"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|p| gone(*p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "restarted processes outlived `cluster down`: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two engines restarting one node of one cluster (the race `cluster up` and two `run`s once
/// lost): the second finds the port served by the first's process and refuses, instead of
/// starting a copy that dies on a taken port and calling it healthy. A node restarted where
/// the record does not follow is still what `cluster status` shows and `cluster down` stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_someone_else_serves_is_not_started_twice_and_cluster_down_follows_what_serves() {
    let _slot = support::one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let _cluster = support::binary::cluster_up(&db);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cluster-ratelimiter.json")).unwrap(),
    )
    .unwrap();
    let processes: Vec<operator_tui::targets::local::AdoptedProcess> =
        serde_json::from_value(record["processes"].clone()).unwrap();
    let log_dir = std::path::PathBuf::from(record["log_dir"].as_str().unwrap());
    let node = NodeId::from("node-2");

    // Someone restarts node-2 without the record following (another engine, by hand).
    let first = LocalTarget::adopt(processes.clone(), &log_dir);
    first.kill(&node).await.unwrap();
    first.start(&node).await.unwrap();
    let serving = pid(&first, &node).await.unwrap();
    drop(first);

    let second = LocalTarget::adopt(processes, &log_dir);
    let refusal = second.start(&node).await.unwrap_err().to_string();
    assert!(
        refusal.contains(&format!("already served by pid {serving}")),
        "{refusal}"
    );
    assert!(!gone(serving), "the serving node-2 was left alone");

    let status =
        String::from_utf8_lossy(&operator(&db, &["cluster", "status"]).stdout).into_owned();
    assert!(
        status.contains(&format!("its port is served by pid {serving}")),
        "{status}"
    );
    let down = operator(&db, &["cluster", "down"]);
    assert!(String::from_utf8_lossy(&down.stdout).contains("cluster stopped"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gone(serving) {
        assert!(
            std::time::Instant::now() < deadline,
            "the node-2 that served outlived `cluster down`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
