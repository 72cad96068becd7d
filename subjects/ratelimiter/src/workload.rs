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
    task: tokio::task::JoinHandle<()>,
    pub stats: Arc<LiveStats>,
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sets the hot key's limit, then runs traffic at `rate` checks/s until dropped.
pub async fn start(endpoints: &Endpoints, rate: f64, window_ms: u64) -> Result<Workload, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let (_, url) = endpoints.nodes.first().ok_or("the cluster has no nodes")?;
    let response = http
        .put(format!("{url}/admin/limits/{DEFAULT_KEY}"))
        .bearer_auth(&endpoints.admin_token)
        .json(&serde_json::json!({ "limit": HOT_KEY_LIMIT, "window_ms": window_ms }))
        .send()
        .await
        .map_err(|e| format!("setting the hot key's limit: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "setting the hot key's limit: {}",
            response.status()
        ));
    }
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
    let task_stats = stats.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = load::run(config, task_stats, std::future::pending()).await {
            tracing::error!(error = %e, "the workload stopped");
        }
    });
    Ok(Workload { task, stats })
}
