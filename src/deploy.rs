//! Bringing a subject's cluster up (or finding the one `cluster up` left running) and wiring
//! it to its adapter. The one place that maps a subject's name to its crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr, eyre};
use operator_protocol::{DeploymentTarget, Subject};
use operator_protocol::{NodeId, ProcessState};
use operator_ratelimiter::cluster::{self as rl_cluster, LocalOptions};
use operator_ratelimiter::{Endpoints, RateLimiterSubject, workload};
use operator_tikv::pd::{PdClient, StoreInfo};
use operator_tikv::subject::{TikvOptions, TikvSubject};
use operator_tikv_sim::target::SimTarget;
use operator_tikv_sim::{model::SimConfig, server::Simulator};
use serde::{Deserialize, Serialize};

use crate::cli::{SubjectArgs, SubjectName, TargetName};
use crate::targets::docker::DockerTarget;
use crate::targets::local::{AdoptedProcess, LocalTarget, process_state};
use crate::targets::watch_only::WatchOnly;

/// The demo cluster's limits: 1000 checks per 5 s window per key by default.
const DEFAULT_LIMIT: u64 = 1000;
const WINDOW_MS: u64 = 5000;

pub struct Deployment {
    pub subject: Arc<dyn Subject>,
    /// Values that must never be shown or recorded (the admin token).
    secrets: Vec<String>,
    pub target: Arc<dyn DeploymentTarget>,
    /// "ratelimiter · local (started here)" and the like, for the header.
    pub description: String,
    _workload: Option<workload::Workload>,
    /// Logs and Redis's working directory of a cluster we own; removed with us.
    _scratch: Option<tempfile::TempDir>,
    /// The TiKV simulator we serve; it stops with us.
    _simulator: Option<Simulator>,
}

impl Deployment {
    /// Every secret this deployment knows, plus the LLM keys from the environment.
    pub fn secrets(&self) -> Vec<String> {
        let mut all = self.secrets.clone();
        all.extend(
            ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
                .iter()
                .filter_map(|v| std::env::var(v).ok()),
        );
        all
    }
}

/// What `cluster up` leaves for later commands. Holds the admin token: written 0600.
#[derive(Serialize, Deserialize)]
struct ClusterFile {
    endpoints: Endpoints,
    processes: Vec<AdoptedProcess>,
    log_dir: PathBuf,
}

fn cluster_file(state_dir: &Path, subject: SubjectName) -> PathBuf {
    let name = match subject {
        SubjectName::Ratelimiter => "ratelimiter",
        SubjectName::Tikv => "tikv",
    };
    state_dir.join(format!("cluster-{name}.json"))
}

fn read_cluster(state_dir: &Path, subject: SubjectName) -> Result<Option<ClusterFile>> {
    let path = cluster_file(state_dir, subject);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let file: ClusterFile =
        serde_json::from_str(&text).wrap_err_with(|| format!("reading {}", path.display()))?;
    let alive = file
        .processes
        .iter()
        .any(|p| process_state(p.pid) != ProcessState::Exited);
    Ok(alive.then_some(file))
}

fn write_cluster(state_dir: &Path, subject: SubjectName, file: &ClusterFile) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(state_dir)?;
    let path = cluster_file(state_dir, subject);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    out.write_all(serde_json::to_string_pretty(file)?.as_bytes())?;
    Ok(())
}

fn local_options(args: &SubjectArgs, data_dir: &Path) -> Result<LocalOptions> {
    Ok(LocalOptions {
        node_binary: rl_cluster::find_node_binary().map_err(|e| eyre!(e))?,
        external_redis: args.redis_url.clone(),
        data_dir: data_dir.to_path_buf(),
        default_limit: DEFAULT_LIMIT,
        default_window_ms: WINDOW_MS,
    })
}

/// Attaches to a running Compose project: its containers become the nodes.
async fn docker_deployment(args: &SubjectArgs) -> Result<(Endpoints, DockerTarget)> {
    use crate::targets::docker::{
        DockerNode, Ready, compose_network, container_name, env_value, published_port,
    };
    let project = &args.compose_project();
    let (docker, services) = DockerTarget::discover(project, "compose/ratelimiter.yml").await?;
    let container = |service: &str| {
        services.get(service).ok_or_else(|| eyre!("Compose project {project:?} has no {service} service (compose/ratelimiter.yml defines it)"))
    };
    let redis = container(rl_cluster::REDIS_NODE)?;
    let redis_port = published_port(redis, 6379)
        .ok_or_else(|| eyre!("the redis service publishes no port 6379 on loopback"))?;
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
            .ok_or_else(|| eyre!("{service} publishes no port 8080 on loopback"))?;
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
    let admin_token =
        token.ok_or_else(|| eyre!("the nodes have no RL_ADMIN_TOKEN in their environment"))?;
    let endpoints = Endpoints {
        nodes,
        redis_url: format!("redis://127.0.0.1:{redis_port}"),
        redis_prefix: "rl".into(),
        admin_token,
        redis_managed: true,
    };
    Ok((endpoints, DockerTarget::new(docker, project, docker_nodes)))
}

async fn with_workload(
    args: &SubjectArgs,
    endpoints: &Endpoints,
    progress: &dyn Fn(&str),
) -> Result<Option<workload::Workload>> {
    if args.workload_rate <= 0.0 {
        return Ok(None);
    }
    progress(&format!("workload: {} checks/s", args.workload_rate));
    Ok(Some(
        workload::start(endpoints, args.workload_rate, WINDOW_MS)
            .await
            .map_err(|e| eyre!(e))?,
    ))
}

/// TiKV on the local target: a PD-compatible simulator served on a loopback port, with its
/// own workload, driven through PD's HTTP API exactly as a real cluster would be.
async fn tikv_simulated(args: &SubjectArgs, progress: &dyn Fn(&str)) -> Result<Deployment> {
    match args.target {
        TargetName::Local => {}
        TargetName::Docker => {
            return Err(eyre!(
                "--target docker drives a running cluster: start compose/tikv.yml and give its PD, --pd http://127.0.0.1:2379 (without --pd, --target local serves the simulator)"
            ));
        }
        TargetName::Sim => {
            return Err(eyre!(
                "--target sim drives `operator-tui simulate` in another process: give its --pd URL"
            ));
        }
        TargetName::None => {
            return Err(eyre!(
                "--target none watches a cluster you run: give its PD, --pd URL"
            ));
        }
    }
    let config = SimConfig::demo();
    progress(&format!(
        "starting a PD-compatible simulator: {} stores, {} PD members, {} regions",
        config.stores, config.pd_members, config.regions
    ));
    let simulator = Simulator::start(
        config.clone(),
        "127.0.0.1:0".parse()?,
        std::time::Duration::from_millis(100),
    )
    .await
    .wrap_err("starting the TiKV simulator")?;
    let url = simulator.url();
    let subject = TikvSubject::new(TikvOptions {
        prometheus: args.prometheus.clone(),
        ..TikvOptions::simulator(&url)
    })
    .map_err(|e| eyre!(e))?;
    Ok(Deployment {
        subject: Arc::new(subject),
        secrets: Vec::new(),
        target: Arc::new(SimTarget::for_simulator(&url, &config)),
        description: format!("tikv · simulator ({url})"),
        _workload: None,
        _scratch: None,
        _simulator: Some(simulator),
    })
}

/// The stores and PD members a running PD knows, as node ids ("store-1", "pd1").
async fn tikv_nodes(pd: &PdClient) -> Result<Vec<(NodeId, Option<StoreInfo>)>> {
    let unreachable = |e: operator_tikv::pd::PdError| {
        eyre!("PD does not answer ({e}): is the cluster up, and is --pd its client URL?")
    };
    let stores = pd.stores().await.map_err(unreachable)?;
    let members = pd.health().await.map_err(unreachable)?;
    let mut nodes: Vec<(NodeId, Option<StoreInfo>)> = stores
        .stores
        .into_iter()
        .map(|s| (NodeId(format!("store-{}", s.store.id)), Some(s)))
        .collect();
    nodes.extend(members.into_iter().map(|m| (NodeId(m.name), None)));
    Ok(nodes)
}

/// A running TiKV cluster at --pd, with the target that controls its processes.
async fn tikv_attached(args: &SubjectArgs, progress: &dyn Fn(&str)) -> Result<Deployment> {
    if args.target == TargetName::Local {
        return Err(eyre!(
            "--target local serves its own simulator; with --pd choose --target docker (Compose), sim (`operator-tui simulate`) or none (act through PD only)"
        ));
    }
    let mut options = TikvOptions {
        pd_members: args.pd.clone(),
        prometheus: args.prometheus.clone(),
        status_rewrites: args.status_addresses.iter().cloned().collect(),
        ..TikvOptions::default()
    };
    progress(&format!(
        "asking PD at {} for the cluster's members",
        args.pd.join(", ")
    ));
    let pd = PdClient::new(args.pd.clone()).map_err(|e| eyre!(e))?;
    let nodes = tikv_nodes(&pd).await?;
    let ids: Vec<NodeId> = nodes.iter().map(|(id, _)| id.clone()).collect();
    let (target, how): (Arc<dyn DeploymentTarget>, String) = match args.target {
        TargetName::Sim => {
            let url = args.pd[0].trim_end_matches('/').to_string();
            let target = SimTarget::new(&url, ids);
            // A real PD has no /sim controls: say so now, not at the first restart.
            target
                .tail_logs(&NodeId::from("pd1"), 1)
                .await
                .map_err(|e| eyre!("{url} is not `operator-tui simulate` ({e}); for a real cluster use --target docker or none"))?;
            options.simulator = Some(url.clone());
            (Arc::new(target), format!("simulator at {url}"))
        }
        TargetName::Docker => {
            let project = args.compose_project();
            progress(&format!("attaching to Compose project {project}"));
            let (target, rewrites) = tikv_docker(&project, &nodes).await?;
            for (name, reach) in rewrites {
                options.status_rewrites.entry(name).or_insert(reach);
            }
            (Arc::new(target), format!("docker ({project})"))
        }
        TargetName::None => (Arc::new(WatchOnly::new(ids)), "watch only".into()),
        TargetName::Local => unreachable!("refused above"),
    };
    let subject = TikvSubject::new(options).map_err(|e| eyre!(e))?;
    Ok(Deployment {
        subject: Arc::new(subject),
        secrets: Vec::new(),
        target,
        description: format!("tikv · {how}"),
        _workload: None,
        _scratch: None,
        _simulator: None,
    })
}

/// compose/tikv.yml's containers as the cluster's nodes: a store is the service its PD
/// address names ("tikv1:20160" → tikv1), a PD member the service of its name. Status
/// addresses PD reports inside the project's network become the loopback ports published.
async fn tikv_docker(
    project: &str,
    nodes: &[(NodeId, Option<StoreInfo>)],
) -> Result<(DockerTarget, BTreeMap<String, String>)> {
    use crate::targets::docker::{
        DockerNode, Ready, compose_network, container_name, published_port,
    };
    let (docker, services) = DockerTarget::discover(project, "compose/tikv.yml").await?;
    let mut docker_nodes = BTreeMap::new();
    let mut rewrites = BTreeMap::new();
    for (id, store) in nodes {
        let service = match store {
            Some(s) => s
                .store
                .address
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            None => id.0.clone(),
        };
        let inspect = services.get(&service).ok_or_else(|| {
            eyre!("Compose project {project:?} has no service {service} for {id} (compose/tikv.yml names them pd1..3, tikv1..3)")
        })?;
        let (port, path) = if store.is_some() {
            (20180, "/status")
        } else {
            (2379, "/pd/api/v1/health")
        };
        let published = published_port(inspect, port)
            .ok_or_else(|| eyre!("{service} publishes no port {port} on loopback"))?;
        if let Some(status) = store.as_ref().and_then(|s| s.store.status_address.clone()) {
            rewrites.insert(status, format!("127.0.0.1:{published}"));
        }
        docker_nodes.insert(
            id.clone(),
            DockerNode {
                container: container_name(inspect),
                network: compose_network(inspect, project),
                ready: Ready::Http(format!("http://127.0.0.1:{published}{path}")),
            },
        );
    }
    Ok((DockerTarget::new(docker, project, docker_nodes), rewrites))
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM, as `docker stop` sends).
async fn stop_requested() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// `simulate`: the PD-compatible simulator on its own, until Ctrl-C or SIGTERM.
pub async fn serve_simulator(listen: std::net::SocketAddr, config: SimConfig) -> Result<()> {
    if config.stores < 3 {
        return Err(eyre!(
            "--stores must be at least 3: every region keeps 3 replicas"
        ));
    }
    if config.pd_members == 0 {
        return Err(eyre!("--pd-members must be at least 1"));
    }
    let external = config.external_stores;
    let simulator = Simulator::start(config, listen, std::time::Duration::from_millis(100))
        .await
        .wrap_err_with(|| format!("serving the simulator on {listen} (is the port taken? --listen 127.0.0.1:0 picks a free one)"))?;
    // Written without println!: whoever reads our stdout may be gone by the time we stop,
    // and a closed pipe must not crash the simulator.
    use std::io::Write;
    let mut out = std::io::stdout();
    let url = simulator.url();
    let _ = writeln!(out, "PD-compatible simulator (SIMULATED TiKV) at {url}");
    {
        let cluster = simulator.cluster.lock().unwrap_or_else(|p| p.into_inner());
        for store in cluster.stores.values() {
            let _ = if cluster.config.external_stores {
                writeln!(
                    out,
                    "store-{}  waits for `operator-tui simulate-store --pd {url} --id {}`",
                    store.id, store.id
                )
            } else {
                writeln!(
                    out,
                    "store-{}  status server {}",
                    store.id, store.status_address
                )
            };
        }
    }
    // External stores are processes of their own: only their containers' target restarts them.
    let target = if external { "docker" } else { "sim" };
    let _ = writeln!(
        out,
        "drive it with: operator-tui --subject tikv --pd {url} --target {target}"
    );
    let _ = out.flush();
    stop_requested().await?;
    drop(simulator);
    let _ = writeln!(out, "simulator stopped");
    Ok(())
}

/// `simulate-store`: one store of `simulate --external-stores`, until Ctrl-C or SIGTERM.
pub async fn serve_simulated_store(
    pd: &str,
    id: u64,
    status_addr: std::net::SocketAddr,
    advertise: Option<String>,
) -> Result<()> {
    let advertise = advertise.unwrap_or_else(|| status_addr.to_string());
    eprintln!(
        "simulated store-{id}: status server on {status_addr} (advertised {advertise}), heartbeating to {pd}"
    );
    tokio::select! {
        served = operator_tikv_sim::store_process::run(pd, id, status_addr, &advertise) => {
            served.wrap_err_with(|| format!("serving store-{id}'s status server on {status_addr}"))
        }
        stop = stop_requested() => stop,
    }
}

async fn tikv(args: &SubjectArgs, progress: &dyn Fn(&str)) -> Result<Deployment> {
    if args.pd.is_empty() {
        tikv_simulated(args, progress).await
    } else {
        tikv_attached(args, progress).await
    }
}

/// Starts the cluster (or adopts the running one) and the workload.
pub async fn bring_up(
    args: &SubjectArgs,
    state_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Deployment> {
    if args.subject == SubjectName::Tikv {
        return tikv(args, progress).await;
    }
    if matches!(args.target, TargetName::Sim | TargetName::None) {
        return Err(eyre!(
            "--target sim and none are for TiKV; the rate limiter runs with --target local or docker"
        ));
    }
    if args.target == TargetName::Docker {
        progress(&format!(
            "attaching to Compose project {}",
            args.compose_project()
        ));
        let (endpoints, target) = docker_deployment(args).await?;
        let subject = RateLimiterSubject::new(endpoints.clone()).map_err(|e| eyre!(e))?;
        return Ok(Deployment {
            secrets: vec![endpoints.admin_token.clone()],
            subject,
            target: Arc::new(target),
            description: format!("ratelimiter · docker ({})", args.compose_project()),
            _workload: with_workload(args, &endpoints, progress).await?,
            _scratch: None,
            _simulator: None,
        });
    }
    let (endpoints, target, scratch, how) = match read_cluster(state_dir, args.subject)? {
        Some(file) => {
            progress("attaching to the cluster `cluster up` started");
            let target = LocalTarget::adopt(file.processes, &file.log_dir);
            (file.endpoints, target, None, "attached")
        }
        None => {
            let scratch = tempfile::Builder::new().prefix("operator-tui-").tempdir()?;
            let plan = rl_cluster::plan_local(&local_options(args, scratch.path())?)
                .map_err(|e| eyre!(e))?;
            progress(&format!("starting {} processes", plan.specs.len()));
            let target =
                LocalTarget::launch(plan.specs, &scratch.path().join("logs"), false, progress)
                    .await?;
            (plan.endpoints, target, Some(scratch), "started here")
        }
    };
    let subject = RateLimiterSubject::new(endpoints.clone()).map_err(|e| eyre!(e))?;
    let workload = with_workload(args, &endpoints, progress).await?;
    Ok(Deployment {
        secrets: vec![endpoints.admin_token.clone()],
        subject,
        target: Arc::new(target),
        description: format!("ratelimiter · local ({how})"),
        _workload: workload,
        _scratch: scratch,
        _simulator: None,
    })
}

/// Connects to the cluster `cluster up` left running, without a workload (for `chaos`, `check`).
pub fn attach(subject: SubjectName, state_dir: &Path) -> Result<Deployment> {
    if subject == SubjectName::Tikv {
        return Err(eyre!(
            "the TiKV simulator lives inside one operator-tui process: use `run --subject tikv` \
             (with --inject NAME to inject a fault there)"
        ));
    }
    let file = read_cluster(state_dir, subject)?.ok_or_else(|| {
        eyre!("no cluster is running: start one with `operator-tui cluster up` (or use `run --inject NAME`)")
    })?;
    let secrets = vec![file.endpoints.admin_token.clone()];
    let adapter = RateLimiterSubject::new(file.endpoints).map_err(|e| eyre!(e))?;
    Ok(Deployment {
        secrets,
        subject: adapter,
        target: Arc::new(LocalTarget::adopt(file.processes, &file.log_dir)),
        description: "ratelimiter · local (attached)".into(),
        _workload: None,
        _scratch: None,
        _simulator: None,
    })
}

/// `cluster up`: a detached cluster that outlives this process.
pub async fn cluster_up(args: &SubjectArgs, state_dir: &Path) -> Result<()> {
    if args.subject == SubjectName::Tikv {
        return Err(eyre!(
            "a detached cluster exists for the rate limiter only; `run --subject tikv` serves the TiKV simulator"
        ));
    }
    if read_cluster(state_dir, args.subject)?.is_some() {
        return Err(eyre!(
            "a cluster is already running; `operator-tui cluster down` stops it"
        ));
    }
    let base = state_dir.join("cluster");
    let plan = rl_cluster::plan_local(&local_options(args, &base)?).map_err(|e| eyre!(e))?;
    let target = LocalTarget::launch(plan.specs, &base.join("logs"), true, &|line| {
        eprintln!("  {line}")
    })
    .await?;
    let file = ClusterFile {
        endpoints: plan.endpoints,
        processes: target.processes(),
        log_dir: target.log_dir().to_path_buf(),
    };
    write_cluster(state_dir, args.subject, &file)?;
    for (id, url) in &file.endpoints.nodes {
        println!("{id}  {url}");
    }
    println!("redis   {}", file.endpoints.redis_url);
    println!("logs    {}", file.log_dir.display());
    Ok(())
}

pub fn cluster_down(subject: SubjectName, state_dir: &Path) -> Result<()> {
    let path = cluster_file(state_dir, subject);
    match read_cluster(state_dir, subject)? {
        Some(file) => {
            LocalTarget::adopt(file.processes, &file.log_dir).stop_all();
            println!("cluster stopped");
        }
        None => println!("no cluster was running"),
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

pub fn cluster_status(subject: SubjectName, state_dir: &Path) -> Result<()> {
    match read_cluster(state_dir, subject)? {
        None => println!("no cluster is running (`operator-tui cluster up` starts one)"),
        Some(file) => {
            for p in &file.processes {
                println!("{:<8} pid {:<8} {}", p.spec.id, p.pid, process_state(p.pid));
            }
        }
    }
    Ok(())
}

/// A subject's chaos catalog and runbook: neither needs a live cluster.
pub fn chaos_catalog(subject: SubjectName) -> Result<Vec<operator_protocol::ChaosSpec>> {
    Ok(match subject {
        SubjectName::Ratelimiter => {
            let nodes: Vec<String> = (1..=rl_cluster::NODE_COUNT)
                .map(|i| format!("node-{i}"))
                .collect();
            operator_ratelimiter::chaos_catalog(&nodes)
        }
        SubjectName::Tikv => operator_tikv::subject::chaos_catalog(),
    })
}

pub fn runbook(subject: SubjectName) -> Result<operator_protocol::Runbook> {
    Ok(match subject {
        SubjectName::Ratelimiter => operator_ratelimiter::runbook(),
        SubjectName::Tikv => operator_tikv::subject::runbook(),
    })
}

/// The demo chapters shipped for a subject (see demo-chapters/).
pub fn demo_chapters(subject: SubjectName) -> &'static str {
    match subject {
        SubjectName::Ratelimiter => include_str!("../demo-chapters/ratelimiter.toml"),
        SubjectName::Tikv => include_str!("../demo-chapters/tikv.toml"),
    }
}
