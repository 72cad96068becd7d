//! What one observation of the rate limiter holds, beyond the generic node list: per-node
//! rates and latency from /metrics deltas, Redis as the operator sees it, and per-key window
//! accounting next to Redis's own count. Invariants read only this.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub nodes: BTreeMap<String, NodeFacts>,
    pub redis: RedisFacts,
    pub keys: Vec<KeyFacts>,
    /// The span the per-second rates and the p99 were computed over, in milliseconds.
    pub rate_window_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// The node answered /health at all.
    pub reachable: bool,
    pub error: Option<String>,
    /// /health said 200.
    pub healthy: bool,
    /// What the node's own probe says of Redis.
    pub redis_reachable: Option<bool>,
    /// The node's last check got no decision from Redis (whatever the probe says).
    #[serde(default)]
    pub redis_checks_failing: bool,
    /// The class of the node's last Redis failure on a check: timeout, connection, oom, ...
    #[serde(default)]
    pub redis_error_class: Option<String>,
    pub redis_latency_ms: Option<f64>,
    pub checks_per_sec: f64,
    pub allowed_per_sec: f64,
    pub denied_per_sec: f64,
    pub fail_open_per_sec: f64,
    pub fail_closed_per_sec: f64,
    /// Decisions made without asking Redis although the node could reach it.
    pub skipped_per_sec: f64,
    pub redis_failures_per_sec: f64,
    /// How long the node took to answer the operator's /health, averaged over the last few
    /// observations: what a client waits, including time the node's own histogram cannot see
    /// (a process starved of CPU, stopped between requests).
    #[serde(default)]
    pub health_rtt_ms: Option<f64>,
    /// The flags the node says it was started with, by name ("default-limit": "100"):
    /// empty when it did not answer or does not say.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, String>,
    /// p99 of check latency over the rate window, from histogram deltas.
    pub p99_ms: Option<f64>,
    /// Checks the p99 was computed from.
    pub latency_samples: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisFacts {
    pub reachable: bool,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// The store epoch: it changes when Redis lost its data.
    pub epoch: Option<String>,
}

/// One key's newest window: what the nodes say they had allowed, and what Redis holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFacts {
    pub key: String,
    pub generation: u64,
    pub window_id: u64,
    pub counter_key: String,
    pub limit: u64,
    /// Σ over nodes of units Redis told them it allowed in this window, read before Redis.
    pub nodes_allowed: u64,
    /// The same sum read again after Redis: what Redis holds for a healthy window lies between
    /// the two (within `uncertain`), however fast checks land meanwhile.
    #[serde(default)]
    pub nodes_allowed_after: u64,
    /// Units the nodes had sent to Redis and not yet recorded at the second read: Redis may
    /// hold them already.
    #[serde(default)]
    pub in_flight_after: u64,
    /// What Redis's counter holds for the window.
    pub redis_count: u64,
    /// Units of timed-out calls: Redis may hold them without any node knowing.
    pub uncertain: u64,
    /// False when the comparison cannot be exact (a node unreachable, or not watching the whole
    /// window, or Redis unreadable); `why_not` says which.
    pub comparable: bool,
    pub why_not: Option<String>,
}

impl KeyFacts {
    /// How far Redis's count falls outside what the nodes allowed: positive when Redis holds
    /// more than they could have allowed by the second read (recorded or still in flight),
    /// negative when it holds less than they had allowed by the first, 0 inside the bracket.
    pub fn drift(&self) -> i64 {
        let redis = self.redis_count as i64;
        let before = self.nodes_allowed as i64;
        let after =
            (self.nodes_allowed_after.max(self.nodes_allowed) + self.in_flight_after) as i64;
        if redis > after {
            redis - after
        } else if redis < before {
            redis - before
        } else {
            0
        }
    }
}
