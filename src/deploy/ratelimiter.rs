//! The rate limiter's cluster: three nodes and Redis started here as child processes, the
//! detached cluster `cluster up` leaves running, or a Compose project's containers; with the
//! demo's steady workload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr};
use operator_protocol::{DeploymentTarget, ProcessState};
use operator_ratelimiter::cluster::{self as rl_cluster, LocalOptions};
use operator_ratelimiter::drills::RateLimiterDrills;
use operator_ratelimiter::{Endpoints, RateLimiterSubject, workload};
use serde::{Deserialize, Serialize};

use super::{DeploySpec, Deployment, TargetName};
use crate::targets::docker::DockerTarget;
use crate::targets::local::{AdoptedProcess, LocalTarget, process_state};

/// The demo cluster's limits: 1000 checks per 5 s window per key by default.
const DEFAULT_LIMIT: u64 = 1000;
const WINDOW_MS: u64 = 5000;

/// What `cluster up` leaves for later commands. Holds the admin token: written 0600.
#[derive(Serialize, Deserialize)]
struct ClusterFile {
    /// Written by `cluster up`; files from before it had one get one from their Redis.
    #[serde(default)]
    cluster_id: String,
    endpoints: Endpoints,
    processes: Vec<AdoptedProcess>,
    log_dir: PathBuf,
    /// The steady traffic `cluster up` started beside the nodes (`cluster workload`).
    #[serde(default)]
    workload_pid: Option<u32>,
}

impl ClusterFile {
    /// The detached traffic's pid while it runs.
    fn live_workload(&self) -> Option<u32> {
        self.workload_pid
            .filter(|pid| process_state(*pid) != ProcessState::Exited)
    }
}

fn cluster_file(state_dir: &Path) -> PathBuf {
    state_dir.join("cluster-ratelimiter.json")
}

fn read_cluster(state_dir: &Path) -> Result<Option<ClusterFile>> {
    let path = cluster_file(state_dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let mut file: ClusterFile =
        serde_json::from_str(&text).wrap_err_with(|| format!("reading {}", path.display()))?;
    let alive = file
        .processes
        .iter()
        .any(|p| process_state(p.pid) != ProcessState::Exited);
    if file.cluster_id.is_empty() {
        file.cluster_id = format!("ratelimiter-detached-{}", file.endpoints.redis_url);
    }
    Ok(alive.then_some(file))
}

/// Takes over a detached cluster; a process the engine starts again is written to its record.
fn adopt(file: ClusterFile, state_dir: &Path) -> LocalTarget {
    let state_dir = state_dir.to_path_buf();
    let (endpoints, log_dir) = (file.endpoints.clone(), file.log_dir.clone());
    let cluster_id = file.cluster_id.clone();
    LocalTarget::adopt(file.processes, &file.log_dir).on_respawn(move |processes| {
        // The record on disk knows the workload; a respawn changes only the processes.
        let workload_pid = read_cluster(&state_dir)
            .ok()
            .flatten()
            .and_then(|f| f.workload_pid);
        let file = ClusterFile {
            cluster_id: cluster_id.clone(),
            endpoints: endpoints.clone(),
            processes,
            log_dir: log_dir.clone(),
            workload_pid,
        };
        if let Err(e) = write_cluster(&state_dir, &file) {
            tracing::warn!(error = %e, "recording a restarted process of the detached cluster");
        }
    })
}

fn write_cluster(state_dir: &Path, file: &ClusterFile) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(state_dir)?;
    let path = cluster_file(state_dir);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    out.write_all(serde_json::to_string_pretty(file)?.as_bytes())?;
    Ok(())
}

fn local_options(args: &DeploySpec, data_dir: &Path) -> Result<LocalOptions> {
    Ok(LocalOptions {
        node_binary: rl_cluster::find_node_binary().map_err(|e| crate::user_error!("{e}"))?,
        external_redis: args.redis_url.clone(),
        data_dir: data_dir.to_path_buf(),
        default_limit: DEFAULT_LIMIT,
        default_window_ms: WINDOW_MS,
    })
}

/// Attaches to a running Compose project: its containers become the nodes.
async fn docker_deployment(args: &DeploySpec) -> Result<(Endpoints, DockerTarget, String)> {
    use crate::targets::docker::{
        DockerNode, Ready, compose_network, container_name, env_value, published_port,
    };
    let project = &args.compose_project();
    let (docker, services) = DockerTarget::discover(project, "compose/ratelimiter.yml").await?;
    let container = |service: &str| {
        services.get(service).ok_or_else(|| crate::user_error!("Compose project {project:?} has no {service} service (compose/ratelimiter.yml defines it)"))
    };
    let redis = container(rl_cluster::REDIS_NODE)?;
    let redis_port = published_port(redis, 6379).ok_or_else(|| {
        crate::user_error!("the redis service publishes no port 6379 on loopback")
    })?;
    let mut nodes = Vec::new();
    let mut docker_nodes = std::collections::BTreeMap::new();
    docker_nodes.insert(
        operator_protocol::NodeId::from(rl_cluster::REDIS_NODE),
        DockerNode {
            container: container_name(redis),
            network: compose_network(redis, project),
            ready: Ready::Tcp(format!("127.0.0.1:{redis_port}")),
        },
    );
    let mut token = None;
    for i in 1..=rl_cluster::NODE_COUNT {
        let service = format!("node-{i}");
        let inspect = container(&service)?;
        let port = published_port(inspect, 8080)
            .ok_or_else(|| crate::user_error!("{service} publishes no port 8080 on loopback"))?;
        let url = format!("http://127.0.0.1:{port}");
        token = token.or_else(|| env_value(inspect, "RL_ADMIN_TOKEN"));
        docker_nodes.insert(
            operator_protocol::NodeId(service.clone()),
            DockerNode {
                container: container_name(inspect),
                network: compose_network(inspect, project),
                ready: Ready::Http(format!("{url}/health")),
            },
        );
        nodes.push((operator_protocol::NodeId(service), url));
    }
    let admin_token = token.ok_or_else(|| {
        crate::user_error!("the nodes have no RL_ADMIN_TOKEN in their environment")
    })?;
    let endpoints = Endpoints {
        nodes,
        redis_url: format!("redis://127.0.0.1:{redis_port}"),
        redis_prefix: "rl".into(),
        admin_token,
        redis_managed: true,
    };
    // The Redis container holds the counters: a project brought down and up again is a new
    // cluster, one whose containers restart is the same.
    let cluster_id = format!(
        "docker-{project}-{}",
        redis.id.as_deref().unwrap_or_default()
    );
    Ok((
        endpoints,
        DockerTarget::new(docker, project, docker_nodes),
        cluster_id,
    ))
}

async fn with_workload(
    args: &DeploySpec,
    endpoints: &Endpoints,
    progress: &dyn Fn(&str),
) -> Result<Option<Arc<workload::Workload>>> {
    if args.workload_rate <= 0.0 {
        return Ok(None);
    }
    progress(&format!("workload: {} checks/s", args.workload_rate));
    let workload = workload::start(endpoints, args.workload_rate, WINDOW_MS)
        .await
        .map_err(|e| crate::user_error!("{e}"))?;
    for warning in &workload.warnings {
        progress(&format!("warning: {warning}"));
    }
    Ok(Some(Arc::new(workload)))
}

fn warnings_of(workload: &Option<Arc<workload::Workload>>) -> Vec<String> {
    workload
        .as_ref()
        .map(|w| w.warnings.clone())
        .unwrap_or_default()
}

/// Starts the cluster (or adopts the running one) and the workload.
pub async fn bring_up(
    args: &DeploySpec,
    state_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Deployment> {
    if matches!(args.target, TargetName::Sim | TargetName::None) {
        return Err(crate::user_error!(
            "--target sim and none are for TiKV; the rate limiter runs with --target local or docker"
        ));
    }
    if args.target == TargetName::Docker {
        progress(&format!(
            "attaching to Compose project {}",
            args.compose_project()
        ));
        let (endpoints, target, cluster_id) = docker_deployment(args).await?;
        let subject =
            RateLimiterSubject::new(endpoints.clone()).map_err(|e| crate::user_error!("{e}"))?;
        let workload = with_workload(args, &endpoints, progress).await?;
        return Ok(Deployment {
            secrets: vec![endpoints.admin_token.clone()],
            subject,
            target: Arc::new(target),
            description: format!("ratelimiter · docker ({})", args.compose_project()),
            cluster_id,
            warnings: warnings_of(&workload),
            drills: None,
            disturber: None,
            _workload: workload,
            _scratch: None,
            _simulator: None,
        });
    }
    let mut workload_rate = args.workload_rate;
    let (endpoints, target, scratch, how, cluster_id) = match read_cluster(state_dir)? {
        Some(file) => {
            progress("attaching to the cluster `cluster up` started");
            if file.live_workload().is_some() {
                // Its own traffic runs already; a second stream would double it.
                progress("its steady traffic runs already (`cluster up` started it)");
                workload_rate = 0.0;
            }
            let endpoints = file.endpoints.clone();
            let cluster_id = file.cluster_id.clone();
            (
                endpoints,
                adopt(file, state_dir),
                None,
                "attached",
                cluster_id,
            )
        }
        None => {
            let scratch = tempfile::Builder::new().prefix("operator-tui-").tempdir()?;
            let plan = rl_cluster::plan_local(&local_options(args, scratch.path())?)
                .map_err(|e| crate::user_error!("{e}"))?;
            progress(&format!("starting {} processes", plan.specs.len()));
            let target =
                LocalTarget::launch(plan.specs, &scratch.path().join("logs"), false, progress)
                    .await?;
            let cluster_id = super::new_cluster_id("ratelimiter-local");
            (
                plan.endpoints,
                target,
                Some(scratch),
                "started here",
                cluster_id,
            )
        }
    };
    let subject =
        RateLimiterSubject::new(endpoints.clone()).map_err(|e| crate::user_error!("{e}"))?;
    let traffic = DeploySpec {
        workload_rate,
        ..args.clone()
    };
    let workload = with_workload(&traffic, &endpoints, progress).await?;
    let target: Arc<dyn DeploymentTarget> = Arc::new(target);
    let drills = RateLimiterDrills::new(endpoints.clone(), target.clone(), workload.clone());
    Ok(Deployment {
        secrets: vec![endpoints.admin_token.clone()],
        subject,
        drills: Some(drills.clone()),
        disturber: Some(drills),
        target,
        description: format!("ratelimiter · local ({how})"),
        cluster_id,
        warnings: warnings_of(&workload),
        _workload: workload,
        _scratch: scratch,
        _simulator: None,
    })
}

/// Connects to the cluster `cluster up` left running, without a workload (for `chaos`, `check`).
pub fn attach(state_dir: &Path) -> Result<Deployment> {
    let file = read_cluster(state_dir)?.ok_or_else(|| {
        crate::user_error!("no cluster is running: start one with `operator-tui cluster up` (or use `run --inject NAME`)")
    })?;
    let secrets = vec![file.endpoints.admin_token.clone()];
    let cluster_id = file.cluster_id.clone();
    let adapter =
        RateLimiterSubject::new(file.endpoints.clone()).map_err(|e| crate::user_error!("{e}"))?;
    Ok(Deployment {
        secrets,
        subject: adapter,
        target: Arc::new(adopt(file, state_dir)),
        description: "ratelimiter · local (attached)".into(),
        cluster_id,
        warnings: Vec::new(),
        drills: None,
        disturber: None,
        _workload: None,
        _scratch: None,
        _simulator: None,
    })
}

/// `cluster up`: a detached cluster that outlives this process.
pub async fn cluster_up(args: &DeploySpec, state_dir: &Path) -> Result<()> {
    if read_cluster(state_dir)?.is_some() {
        return Err(crate::user_error!(
            "a cluster is already running; `operator-tui cluster down` stops it"
        ));
    }
    let base = state_dir.join("cluster");
    let plan = rl_cluster::plan_local(&local_options(args, &base)?)
        .map_err(|e| crate::user_error!("{e}"))?;
    let target = LocalTarget::launch(plan.specs, &base.join("logs"), true, &|line| {
        eprintln!("  {line}")
    })
    .await?;
    let mut file = ClusterFile {
        cluster_id: super::new_cluster_id("ratelimiter-detached"),
        endpoints: plan.endpoints,
        processes: target.processes(),
        log_dir: target.log_dir().to_path_buf(),
        workload_pid: None,
    };
    write_cluster(state_dir, &file)?;
    if args.workload_rate > 0.0 {
        file.workload_pid = Some(spawn_cluster_workload(
            state_dir,
            &file.log_dir,
            args.workload_rate,
        )?);
        write_cluster(state_dir, &file)?;
        println!(
            "traffic {} checks/s (pid {})",
            args.workload_rate,
            file.workload_pid.unwrap_or_default()
        );
    }
    for (id, url) in &file.endpoints.nodes {
        println!("{id}  {url}");
    }
    println!("redis   {}", file.endpoints.redis_url);
    println!("logs    {}", file.log_dir.display());
    Ok(())
}

/// Starts `operator-tui cluster workload` in a session of its own, logging beside the nodes:
/// the detached cluster's steady traffic, as `run` gives the cluster it starts.
fn spawn_cluster_workload(state_dir: &Path, log_dir: &Path, rate: f64) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(log_dir.join("workload.log"))?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("--db")
        .arg(state_dir.join("operator.db"))
        .args(["cluster", "workload", "--rate", &rate.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the traffic from this terminal.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    Ok(command
        .spawn()
        .wrap_err("starting the cluster's traffic")?
        .id())
}

/// `cluster workload`: steady traffic against the detached cluster until SIGTERM (`cluster
/// down`), or until the cluster's record is gone.
pub async fn serve_cluster_workload(state_dir: &Path, rate: f64) -> Result<()> {
    let file = read_cluster(state_dir)?
        .ok_or_else(|| crate::user_error!("no cluster is running: `operator-tui cluster up`"))?;
    let workload = workload::start(&file.endpoints, rate, WINDOW_MS)
        .await
        .map_err(|e| crate::user_error!("{e}"))?;
    for warning in &workload.warnings {
        eprintln!("warning: {warning}");
    }
    let gone = async {
        while cluster_file(state_dir).exists() {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    };
    tokio::select! {
        _ = crate::run::interrupted() => {}
        _ = gone => {}
    }
    Ok(())
}

pub fn cluster_down(state_dir: &Path) -> Result<()> {
    let path = cluster_file(state_dir);
    match read_cluster(state_dir)? {
        Some(file) => {
            if let Some(pid) = file.live_workload() {
                // SAFETY: kill(2) on the traffic's pid, which the record names.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            LocalTarget::adopt(file.processes, &file.log_dir).stop_all();
            println!("cluster stopped");
        }
        None => println!("no cluster was running"),
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

pub fn cluster_status(state_dir: &Path) -> Result<()> {
    match read_cluster(state_dir)? {
        None => println!("no cluster is running (`operator-tui cluster up` starts one)"),
        Some(file) => {
            if let Some(pid) = file.workload_pid {
                let state = process_state(pid);
                println!("{:<8} pid {pid:<8} {state}", "traffic");
            }
            let target = LocalTarget::adopt(file.processes, &file.log_dir);
            for (id, pid, state, other) in target.serving() {
                let pid = pid.map_or("-".to_string(), |p| p.to_string());
                let state = state.to_string();
                match other {
                    Some(other) => println!(
                        "{:<8} pid {pid:<8} {state:<8} its port is served by pid {other}",
                        id.0
                    ),
                    None => println!("{:<8} pid {pid:<8} {state}", id.0),
                }
            }
        }
    }
    Ok(())
}
