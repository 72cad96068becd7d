//! The node's configuration: every flag has an environment variable, so the same binary runs
//! from a shell, a child-process supervisor or a Compose file.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// What a node answers when Redis cannot be asked within the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Allow the request (availability first); every such decision is counted as `fail_open`.
    Open,
    /// Deny the request (protection first); counted as `fail_closed`.
    Closed,
}

#[derive(Debug, Clone, Args)]
pub struct NodeConfig {
    /// This node's id, reported in every decision, in /health and in /metrics.
    #[arg(long, env = "RL_NODE_ID", default_value = "node-1")]
    pub node_id: String,

    /// Address to listen on.
    #[arg(long, env = "RL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Redis to keep counters and limits in.
    #[arg(long, env = "RL_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Limit for keys without an override: allowed units per window.
    #[arg(long, env = "RL_DEFAULT_LIMIT", default_value_t = 100)]
    pub default_limit: u64,

    /// Window for keys without an override, in milliseconds.
    #[arg(long, env = "RL_DEFAULT_WINDOW_MS", default_value_t = 1000)]
    pub default_window_ms: u64,

    /// Longest wait for Redis on a check before the fail mode decides, in milliseconds.
    #[arg(long, env = "RL_REDIS_TIMEOUT_MS", default_value_t = 25)]
    pub redis_timeout_ms: u64,

    /// What to answer when Redis does not answer in time.
    #[arg(long, env = "RL_FAIL_MODE", value_enum, default_value_t = FailMode::Open)]
    pub fail_mode: FailMode,

    /// Bearer token for /admin and /chaos. Without one those routes refuse every request.
    #[arg(long, env = "RL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Serve the /chaos routes (latency, ghost-allow) used by operator demos and tests.
    #[arg(long, env = "RL_ENABLE_CHAOS")]
    pub enable_chaos: bool,

    /// How many distinct keys get per-key metrics and window accounting; later keys are
    /// counted together, which keeps /metrics cardinality bounded.
    #[arg(long, env = "RL_TRACKED_KEYS", default_value_t = 64)]
    pub tracked_keys: usize,

    /// Prefix of every Redis key this node reads or writes.
    #[arg(long, env = "RL_REDIS_PREFIX", default_value = "rl")]
    pub redis_prefix: String,
}

impl NodeConfig {
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// A configuration for tests and embedding: listen on an ephemeral loopback port.
    pub fn for_test(node_id: &str, redis_url: &str) -> Self {
        Self {
            node_id: node_id.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            redis_url: redis_url.to_string(),
            default_limit: 100,
            default_window_ms: 1000,
            redis_timeout_ms: 25,
            fail_mode: FailMode::Open,
            admin_token: None,
            enable_chaos: false,
            tracked_keys: 64,
            redis_prefix: "rl".to_string(),
        }
    }
}
