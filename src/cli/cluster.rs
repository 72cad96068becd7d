//! `cluster up|down|status`, `simulate`, `simulate-store` and `tikv-workload`: the commands
//! that run a cluster, or a piece of one, on their own.

use std::path::Path;

use color_eyre::eyre::Result;
use operator_tikv_sim::model::SimConfig;

use super::{ClusterCommand, Commands};
use crate::deploy;

pub fn cluster(
    command: ClusterCommand,
    state_dir: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    match command {
        ClusterCommand::Up { subject } => {
            runtime.block_on(deploy::cluster_up(&subject.spec(), state_dir))
        }
        ClusterCommand::Down => deploy::cluster_down(state_dir),
        ClusterCommand::Status => deploy::cluster_status(state_dir),
        ClusterCommand::Workload { rate } => {
            runtime.block_on(deploy::serve_cluster_workload(state_dir, rate))
        }
    }
}

/// `simulate` and `simulate-store`, until Ctrl-C or SIGTERM.
pub async fn simulate(command: Commands) -> Result<()> {
    match command {
        Commands::Simulate {
            listen,
            stores,
            regions,
            pd_members,
            external_stores,
            real_timings,
        } => {
            let timings = if real_timings {
                SimConfig::default()
            } else {
                SimConfig::demo()
            };
            let config = SimConfig {
                stores,
                regions,
                pd_members,
                external_stores,
                ..timings
            };
            deploy::serve_simulator(listen, config).await
        }
        Commands::SimulateStore {
            pd,
            id,
            status_addr,
            advertise_status_addr,
        } => deploy::serve_simulated_store(&pd, id, status_addr, advertise_status_addr).await,
        _ => unreachable!("only the simulator's commands are passed here"),
    }
}

/// `tikv-workload`: the real-cluster workload until the duration ends or Ctrl-C.
#[cfg(feature = "tikv-client")]
pub async fn tikv_workload(pd: Vec<String>, rate: f64, duration: Option<f64>) -> Result<()> {
    let workload = operator_tikv::workload::RawWorkload::start(pd, rate)
        .await
        .map_err(|e| crate::user_error!("{e}"))?;
    let started = std::time::Instant::now();
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let (ok, failed) = workload.counts();
        println!(
            "{:>6.0}s  ok {ok}  failed {failed}",
            started.elapsed().as_secs_f64()
        );
        if duration.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
            break;
        }
    }
    Ok(())
}
