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
    /// What Redis's own exporter alerts on, from `INFO`: `None` when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<RedisInfo>,
}

/// The fields of Redis's `INFO` that its operators watch: memory against maxmemory (a full
/// Redis refuses writes or evicts counts, by its policy), evicted and expired keys, clients
/// against maxclients (a full one refuses a restarted node), blocked clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisInfo {
    pub used_memory: u64,
    /// 0 when unlimited.
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    /// Since Redis started.
    pub evicted_keys: u64,
    pub expired_keys: u64,
    pub rejected_connections: u64,
    pub connected_clients: u64,
    pub blocked_clients: u64,
    /// 0 when Redis does not say (before 7.0).
    pub maxclients: u64,
}

impl RedisInfo {
    /// Reads `INFO`'s `field:value` lines; a field Redis does not report stays at its default.
    /// `None` for text that holds none of the fields (not an `INFO` answer).
    pub fn parse(text: &str) -> Option<Self> {
        let mut info = Self::default();
        let mut seen = false;
        for line in text.lines() {
            let Some((field, value)) = line.trim_end().split_once(':') else {
                continue;
            };
            let number = || value.parse::<u64>().ok();
            let slot = match field {
                "used_memory" => &mut info.used_memory,
                "maxmemory" => &mut info.maxmemory,
                "evicted_keys" => &mut info.evicted_keys,
                "expired_keys" => &mut info.expired_keys,
                "rejected_connections" => &mut info.rejected_connections,
                "connected_clients" => &mut info.connected_clients,
                "blocked_clients" => &mut info.blocked_clients,
                "maxclients" => &mut info.maxclients,
                "maxmemory_policy" => {
                    info.maxmemory_policy = value.to_string();
                    seen = true;
                    continue;
                }
                _ => continue,
            };
            if let Some(n) = number() {
                *slot = n;
                seen = true;
            }
        }
        seen.then_some(info)
    }

    /// Used memory as a share of maxmemory; `None` when Redis has no limit.
    pub fn memory_used_share(&self) -> Option<f64> {
        (self.maxmemory > 0).then(|| self.used_memory as f64 / self.maxmemory as f64)
    }

    /// Whether a full Redis drops keys (and their counts) rather than refusing writes.
    pub fn evicts(&self) -> bool {
        !self.maxmemory_policy.is_empty() && self.maxmemory_policy != "noeviction"
    }
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

#[cfg(test)]
mod tests {
    use super::RedisInfo;

    #[test]
    fn info_is_read_field_by_field_and_anything_else_is_not_info() {
        let text = "# Memory\r\nused_memory:2048000\r\nused_memory_human:1.95M\r\nmaxmemory:4096000\r\nmaxmemory_policy:allkeys-lru\r\n# Stats\r\nevicted_keys:12\r\nexpired_keys:340\r\nrejected_connections:3\r\n# Clients\r\nconnected_clients:5\r\nblocked_clients:1\r\nmaxclients:10000\r\n";
        let info = RedisInfo::parse(text).unwrap();
        assert_eq!(info.used_memory, 2_048_000);
        assert_eq!(info.maxmemory, 4_096_000);
        assert_eq!(info.maxmemory_policy, "allkeys-lru");
        assert_eq!(
            (
                info.evicted_keys,
                info.expired_keys,
                info.rejected_connections
            ),
            (12, 340, 3)
        );
        assert_eq!(
            (
                info.connected_clients,
                info.blocked_clients,
                info.maxclients
            ),
            (5, 1, 10_000)
        );
        assert_eq!(info.memory_used_share(), Some(0.5));
        assert!(info.evicts());
        let unlimited =
            RedisInfo::parse("used_memory:10\nmaxmemory:0\nmaxmemory_policy:noeviction\n").unwrap();
        assert_eq!(unlimited.memory_used_share(), None);
        assert!(!unlimited.evicts());
        assert_eq!(RedisInfo::parse("OK"), None);
        assert_eq!(RedisInfo::parse("used_memory:lots"), None);
    }
}
