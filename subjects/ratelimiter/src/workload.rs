//! Steady background traffic against the cluster, in-process, so there is always something
//! to watch and to disturb: the load generator of ratelimiter-svc (a library call, over HTTP).

use std::sync::Arc;
use std::time::Duration;

use ratelimiter_svc::load::{self, LiveStats, LoadConfig};

use crate::Endpoints;
use crate::chaos::DEFAULT_KEY;

/// The hot key's own limit: it gets 30% of the traffic, so some of it is denied each window.
pub const HOT_KEY_LIMIT: u64 = 200;

pub struct Workload {
    config: LoadConfig,
    /// The traffic while it runs; None while it is quiet.
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub stats: Arc<LiveStats>,
    /// What could not be set up on a sick cluster; the traffic runs anyway.
    pub warnings: Vec<String>,
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.set_quiet(true);
    }
}

impl Workload {
    fn task(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::JoinHandle<()>>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the traffic (the clients went quiet: a night, a deploy elsewhere), or starts
    /// it again at the same rate; either is safe to ask twice.
    pub fn set_quiet(&self, quiet: bool) {
        let mut task = self.task();
        match (quiet, task.is_some()) {
            (true, true) => {
                if let Some(running) = task.take() {
                    running.abort();
                }
            }
            (false, false) => *task = Some(spawn(self.config.clone(), self.stats.clone())),
            _ => {}
        }
    }
}

fn spawn(config: LoadConfig, stats: Arc<LiveStats>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = load::run(config, stats, std::future::pending()).await {
            tracing::error!(error = %e, "the workload stopped");
        }
    })
}

/// Sets the hot key's limit, then runs traffic at `rate` checks/s until dropped. A cluster in a
/// bad state may refuse the limit: that is a warning, not a reason to watch nothing.
pub async fn start(endpoints: &Endpoints, rate: f64, window_ms: u64) -> Result<Workload, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let (_, url) = endpoints.nodes.first().ok_or("the cluster has no nodes")?;
    let answer = http
        .put(format!("{url}/admin/limits/{DEFAULT_KEY}"))
        .bearer_auth(&endpoints.admin_token)
        .json(&serde_json::json!({ "limit": HOT_KEY_LIMIT, "window_ms": window_ms }))
        .send()
        .await;
    let refusal = match answer {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(response.status().to_string()),
        Err(e) => Some(e.to_string()),
    };
    let warnings = refusal
        .map(|why| {
            format!(
                "could not set the hot key's limit ({why}): {DEFAULT_KEY} keeps the default limit; the traffic runs anyway"
            )
        })
        .into_iter()
        .collect();
    let config = LoadConfig {
        targets: endpoints.nodes.iter().map(|(_, u)| u.clone()).collect(),
        rate: Some(rate),
        concurrency: 64,
        duration: None,
        keys: 8,
        key_prefix: "demo-".into(),
        hot_key: Some(DEFAULT_KEY.into()),
        hot_fraction: 0.3,
        cost: 1,
    };
    let stats = Arc::new(LiveStats::default());
    let task = spawn(config.clone(), stats.clone());
    Ok(Workload {
        config,
        task: std::sync::Mutex::new(Some(task)),
        stats,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// A cluster whose every node answers 503 to everything, admin API included.
    async fn sick_cluster() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        (url, server)
    }

    #[tokio::test]
    async fn a_cluster_that_refuses_the_hot_keys_limit_still_gets_traffic_and_a_warning_and_quiets()
    {
        let (url, server) = sick_cluster().await;
        let endpoints = Endpoints {
            nodes: vec![(operator_protocol::NodeId::from("node-1"), url)],
            redis_url: "redis://127.0.0.1:1".into(),
            redis_prefix: "rl".into(),
            admin_token: "t".into(),
            redis_managed: false,
        };
        let workload = start(&endpoints, 50.0, 5000).await.expect("it starts");
        assert_eq!(workload.warnings.len(), 1);
        assert!(
            workload.warnings[0].contains("503"),
            "{:?}",
            workload.warnings
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while workload.stats.sent.load(Ordering::Relaxed) == 0 {
            assert!(std::time::Instant::now() < deadline, "no traffic was sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Quiet: nothing more is sent; then the same traffic again.
        workload.set_quiet(true);
        workload.set_quiet(true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let quiet_at = workload.stats.sent.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(workload.stats.sent.load(Ordering::Relaxed), quiet_at);
        workload.set_quiet(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while workload.stats.sent.load(Ordering::Relaxed) == quiet_at {
            assert!(
                std::time::Instant::now() < deadline,
                "the traffic did not resume"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(workload);
        server.abort();
    }
}
