//! TiKV's cluster: the PD-compatible simulator served here, or a running cluster at --pd
//! driven through the simulator's controls, Compose's containers or PD alone; and the
//! `simulate` / `simulate-store` commands that serve the simulator on its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr, eyre};
use operator_protocol::{DeploymentTarget, NodeId, TimeSource};
use operator_tikv::pd::{PdClient, StoreInfo};
use operator_tikv::subject::{InProcess, TikvOptions, TikvSubject};
use operator_tikv_sim::drills::SimDrills;
use operator_tikv_sim::in_process::{InProcessSimulator, PD_URL};
use operator_tikv_sim::target::SimTarget;
use operator_tikv_sim::{model::SimConfig, server::Simulator};

use super::{DeploySpec, Deployment, TargetName};
use crate::targets::docker::DockerTarget;
use crate::targets::watch_only::WatchOnly;

/// TiKV on the local target: a PD-compatible simulator served on a loopback port, with its
/// own workload, driven through PD's HTTP API exactly as a real cluster would be.
async fn tikv_simulated(args: &DeploySpec, progress: &dyn Fn(&str)) -> Result<Deployment> {
    match args.target {
        TargetName::Local => {}
        TargetName::Docker => {
            return Err(crate::user_error!(
                "--target docker drives a running cluster: start compose/tikv.yml and give its PD, --pd http://127.0.0.1:2379 (without --pd, --target local serves the simulator)"
            ));
        }
        TargetName::Sim => {
            return Err(crate::user_error!(
                "--target sim drives `operator-tui simulate` in another process: give its --pd URL"
            ));
        }
        TargetName::None => {
            return Err(crate::user_error!(
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
    .map_err(|e| crate::user_error!("{e}"))?;
    let target: Arc<dyn operator_protocol::DeploymentTarget> =
        Arc::new(SimTarget::for_simulator(&url, &config));
    let drills = SimDrills::new(&url, target.clone());
    Ok(Deployment {
        subject: Arc::new(subject),
        secrets: Vec::new(),
        drills: Some(drills.clone()),
        disturber: Some(drills),
        target,
        description: format!("tikv · simulator ({url})"),
        cluster_id: super::new_cluster_id("tikv-simulator"),
        warnings: Vec::new(),
        _workload: None,
        _scratch: None,
        _simulator: Some(simulator),
    })
}

/// The simulator in-process on tokio's clock from `start_ms` (the generated eval's model): the
/// real TiKV subject, target and drills, with only their HTTP answered without sockets.
pub(super) fn simulated(start_ms: u64) -> Result<super::Simulated> {
    let anchor = tokio::time::Instant::now();
    let time = TimeSource::new(move || start_ms + anchor.elapsed().as_millis() as u64);
    let config = SimConfig::demo();
    let simulator = InProcessSimulator::start(config.clone(), time.clone());
    let subject = TikvSubject::new(TikvOptions {
        in_process: Some(InProcess {
            transport: simulator.clone(),
            time: time.clone(),
        }),
        ..TikvOptions::simulator(PD_URL)
    })
    .map_err(|e| eyre!("the simulated TiKV subject: {e}"))?;
    let target: Arc<dyn DeploymentTarget> = Arc::new(SimTarget::with_transport(
        PD_URL,
        SimTarget::nodes_of(&config),
        simulator.clone(),
    ));
    let drills = SimDrills::with_transport(PD_URL, target.clone(), simulator, time);
    Ok(super::Simulated {
        subject: Arc::new(subject),
        target,
        disturber: drills,
    })
}

/// The stores and PD members a running PD knows, as node ids ("store-1", "pd1").
async fn tikv_nodes(pd: &PdClient) -> Result<Vec<(NodeId, Option<StoreInfo>)>> {
    let unreachable = |e: operator_tikv::pd::PdError| {
        crate::user_error!(
            "PD does not answer ({e}): is the cluster up, and is --pd its client URL?"
        )
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
async fn tikv_attached(args: &DeploySpec, progress: &dyn Fn(&str)) -> Result<Deployment> {
    if args.target == TargetName::Local {
        return Err(crate::user_error!(
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
    let pd = PdClient::new(args.pd.clone()).map_err(|e| crate::user_error!("{e}"))?;
    let nodes = tikv_nodes(&pd).await?;
    // PD's cluster id names the cluster across restarts of its processes; a PD too old to
    // say is known by its address.
    let cluster_id = match pd.members().await.ok().and_then(|m| m.header) {
        Some(header) => format!("pd-{}", header.cluster_id),
        None => format!("pd-{}", args.pd.join(",")),
    };
    let ids: Vec<NodeId> = nodes.iter().map(|(id, _)| id.clone()).collect();
    let (target, how): (Arc<dyn DeploymentTarget>, String) = match args.target {
        TargetName::Sim => {
            let url = args.pd[0].trim_end_matches('/').to_string();
            let target = SimTarget::new(&url, ids);
            // A real PD has no /sim controls: say so now, not at the first restart.
            target
                .tail_logs(&NodeId::from("pd1"), 1)
                .await
                .map_err(|e| crate::user_error!("{url} is not `operator-tui simulate` ({e}); for a real cluster use --target docker or none"))?;
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
    let subject = TikvSubject::new(options).map_err(|e| crate::user_error!("{e}"))?;
    Ok(Deployment {
        subject: Arc::new(subject),
        secrets: Vec::new(),
        target,
        description: format!("tikv · {how}"),
        cluster_id,
        warnings: Vec::new(),
        drills: None,
        disturber: None,
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
            crate::user_error!("Compose project {project:?} has no service {service} for {id} (compose/tikv.yml names them pd1..3, tikv1..3)")
        })?;
        let (port, path) = if store.is_some() {
            (20180, "/status")
        } else {
            (2379, "/pd/api/v1/health")
        };
        let published = published_port(inspect, port)
            .ok_or_else(|| crate::user_error!("{service} publishes no port {port} on loopback"))?;
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
        return Err(crate::user_error!(
            "--stores must be at least 3: every region keeps 3 replicas"
        ));
    }
    if config.pd_members == 0 {
        return Err(crate::user_error!("--pd-members must be at least 1"));
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

/// A simulator served here without --pd, else the cluster at --pd.
pub async fn bring_up(args: &DeploySpec, progress: &dyn Fn(&str)) -> Result<Deployment> {
    if args.pd.is_empty() {
        tikv_simulated(args, progress).await
    } else {
        tikv_attached(args, progress).await
    }
}
