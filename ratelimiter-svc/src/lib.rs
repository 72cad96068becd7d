//! ratelimiter-svc: one node of a distributed fixed-window rate limiter. Nodes are stateless;
//! counters and per-key limits live in Redis and every check is one atomic Lua script there.
//! The crate also holds the open-loop load generator (`load`). It knows nothing of operator-tui.

pub mod chaos;
pub mod config;
pub mod health;
pub mod limiter;
pub mod load;
pub mod metrics;
pub mod server;
pub mod windows;

use std::sync::Arc;
use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr, ensure};
use tokio::net::TcpListener;

pub use config::{FailMode, NodeConfig};
pub use server::Decision;

/// Binds, prints the address on stdout (supervisors and tests read it), and serves until
/// `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    ensure!(
        config.default_limit > 0,
        "--default-limit must be at least 1"
    );
    ensure!(
        (1..=limiter::MAX_WINDOW_MS).contains(&config.default_window_ms),
        "--default-window-ms must be between 1 and {}",
        limiter::MAX_WINDOW_MS
    );
    let limiter = Arc::new(
        limiter::Limiter::new(
            &config.redis_url,
            &config.redis_prefix,
            config.redis_timeout(),
            config.default_limit,
            config.default_window_ms,
        )
        .wrap_err_with(|| format!("invalid Redis URL {:?}", config.redis_url))?,
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .wrap_err_with(|| format!("could not listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let metrics = Arc::new(metrics::NodeMetrics::new(&config.node_id));
    let windows = Arc::new(windows::WindowBook::new(config.tracked_keys));
    let health = Arc::new(health::HealthState::default());
    let probe = tokio::spawn(health::probe_forever(
        limiter.clone(),
        health.clone(),
        metrics.clone(),
        windows.clone(),
    ));
    let state = Arc::new(server::AppState {
        config: config.clone(),
        limiter,
        metrics,
        windows,
        health,
        chaos: chaos::ChaosState::default(),
        started: Instant::now(),
    });
    println!(
        "ratelimiter-svc {} listening on http://{address}",
        config.node_id
    );
    tracing::info!(node_id = %config.node_id, %address, chaos = config.enable_chaos, "serving");
    let result = axum::serve(listener, server::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .wrap_err("the HTTP server failed");
    probe.abort();
    tracing::info!("stopped");
    result
}
