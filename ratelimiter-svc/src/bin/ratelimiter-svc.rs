//! The rate limiter node binary.

use clap::Parser;
use ratelimiter_svc::NodeConfig;
use tracing_subscriber::EnvFilter;

/// One node of the distributed rate limiter: POST /v1/check decides with one atomic Lua script
/// in Redis; GET /health, GET /metrics (Prometheus), GET /v1/windows (per-key accounting);
/// /admin/* (bearer token) manages limits and counters; /chaos/* exists with --enable-chaos.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    node: NodeConfig,
}

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RL_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    ratelimiter_svc::serve(cli.node, shutdown_signal()).await
}

/// SIGTERM (supervisors, Docker) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on Unix");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
    }
}
