//! `--subject tikv --pd URL --target docker` against the real Docker engine. No PD or TiKV image
//! can be pulled here, so the cluster is compose/tikv-sim.yml: the simulator's PD and three
//! store processes, each in its own container built from this binary, laid out as
//! compose/tikv.yml is (pd1, tikv1..3, status ports published on loopback). Killing tikv2's
//! container is killing the store; the operator detects it through PD, sees the status port
//! refuse, restarts the container through Docker and verifies through PD. Everything created
//! is removed afterwards.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support;
use support::binary::operator_text as operator;
use support::compose::{ComposeProject, build_images, free_port};

fn up() -> (ComposeProject, u16) {
    let id = std::process::id();
    let tag = format!("test-{id}");
    build_images(&[
        ("IMAGES", "operator-tui"),
        ("IMAGE_TAG", &tag),
        ("OPERATOR_TUI_BIN", env!("CARGO_BIN_EXE_operator-tui")),
    ]);
    let image = format!("operator-tui/operator-tui:{tag}");
    let pd_port = free_port();
    let mut env = vec![
        ("OPERATOR_TUI_IMAGE".to_string(), image.clone()),
        ("PD_PORT".to_string(), pd_port.to_string()),
    ];
    for store in 1..=3 {
        env.push((format!("TIKV{store}_STATUS_PORT"), free_port().to_string()));
    }
    let project = ComposeProject::up(&format!("optikv{id}"), "tikv-sim.yml", env, vec![image]);
    (project, pd_port)
}

#[test]
fn a_killed_store_container_is_restarted_through_docker_and_verified_through_pd() {
    let _slot = support::heavy("tikv_docker");
    let (project, pd_port) = up();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("op.db");
    let pd = format!("http://127.0.0.1:{pd_port}");
    let target = [
        "--subject",
        "tikv",
        "--pd",
        pd.as_str(),
        "--target",
        "docker",
        "--compose-project",
        project.name.as_str(),
    ];
    // The stores' containers start, heartbeat and elect leaders: healthy within seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (healthy, text) = operator(&db, &[&["check"], &target[..]].concat());
        if healthy {
            break;
        }
        assert!(Instant::now() < deadline, "never healthy:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }

    let run = [
        &[
            "run",
            "--headless",
            "--mode",
            "execute",
            "--inject",
            "kill_store",
            "--duration",
            "16",
        ],
        &target[..],
    ]
    .concat();
    let (ok, text) = operator(&db, &run);
    assert!(ok, "{text}");
    let header = format!("tikv · docker ({})", project.name);
    for needle in [
        header.as_str(),
        "chaos kill_store on store-2: killed store-2",
        "ticket #1 open: store_down on store-2",
        "✓ its status server refuses connections too",
        "restart_node {\"node\":\"store-2\"} completed — store-2 restarted; verified through PD: store-2 Up",
        "ticket #1 resolved: store_down on store-2",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let last_status = text
        .lines()
        .rev()
        .find(|l| l.contains("cluster: "))
        .unwrap();
    assert!(last_status.contains("0 violation(s)"), "{last_status}");

    // The container Docker restarted is the one running again.
    let state = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.State.Running}} {{.RestartCount}}",
            &format!("{}_tikv2_1", project.name),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&state.stdout).starts_with("true"),
        "{}",
        String::from_utf8_lossy(&state.stderr)
    );
}
