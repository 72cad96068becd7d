//! The node's Prometheus metrics. Hot-path counters are pre-created atomics so a check never
//! takes a lock for them; per-key series exist only for tracked keys (bounded cardinality).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::limiter::{FAILURE_CLASSES, RedisFailure};

/// Where a decision came from: the label `source` on `rl_checks_total` and in every answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    /// Redis ran the script and decided.
    Redis,
    /// Redis could not be asked in time and the node is configured to allow.
    FailOpen,
    /// Redis could not be asked in time and the node is configured to deny.
    FailClosed,
    /// The node answered without asking Redis although Redis was reachable.
    Skipped,
}

impl DecisionSource {
    const ALL: [DecisionSource; 4] = [Self::Redis, Self::FailOpen, Self::FailClosed, Self::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::FailOpen => "fail_open",
            Self::FailClosed => "fail_closed",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    decision: &'static str,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node_id: String,
    version: String,
}

pub struct NodeMetrics {
    registry: Registry,
    /// Indexed by [allowed as usize][source as usize].
    checks: [[Counter; 4]; 2],
    check_duration: Histogram,
    redis_duration: Histogram,
    /// One counter per failure class, in the order of `FAILURE_CLASSES`.
    redis_failures: Vec<Counter>,
    redis_up: Gauge,
    key_allowed_units: Family<KeyLabels, Counter>,
    untracked_allowed_units: Counter,
}

/// Sub-millisecond resolution where checks live, up to the seconds a stuck Redis could cost.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ]
}

impl NodeMetrics {
    pub fn new(node_id: &str) -> Self {
        let mut registry = Registry::default();
        let checks_family = Family::<CheckLabels, Counter>::default();
        let checks = [false, true].map(|allowed| {
            DecisionSource::ALL.map(|source| {
                checks_family.get_or_create_owned(&CheckLabels {
                    decision: if allowed { "allowed" } else { "denied" },
                    source: source.as_str(),
                })
            })
        });
        registry.register(
            "rl_checks",
            "Rate-limit decisions by decision and by where they came from",
            checks_family,
        );
        let check_duration = Histogram::new(latency_buckets());
        registry.register(
            "rl_check_duration_seconds",
            "Time to answer a check, from request parsed to decision",
            check_duration.clone(),
        );
        let redis_duration = Histogram::new(latency_buckets());
        registry.register(
            "rl_redis_call_duration_seconds",
            "Round trip of the check script to Redis, successful calls only",
            redis_duration.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        let redis_failures = FAILURE_CLASSES
            .iter()
            .map(|kind| errors.get_or_create_owned(&ErrorLabels { kind }))
            .collect();
        registry.register(
            "rl_redis_failures",
            "Redis calls that failed, by kind: timeout, connection, or the class of Redis's error reply (oom, readonly, auth, ...); a timed-out call may still have been applied",
            errors,
        );
        let redis_up = Gauge::default();
        registry.register(
            "rl_redis_up",
            "1 when the last Redis health probe succeeded",
            redis_up.clone(),
        );
        let key_allowed_units = Family::<KeyLabels, Counter>::default();
        registry.register(
            "rl_key_allowed_units",
            "Units allowed by Redis decisions, per tracked key",
            key_allowed_units.clone(),
        );
        let untracked_allowed_units = Counter::default();
        registry.register(
            "rl_untracked_allowed_units",
            "Units allowed by Redis decisions for keys beyond the tracked-key limit",
            untracked_allowed_units.clone(),
        );
        registry.register(
            "rl_node",
            "This node's id and build",
            Info::new(NodeLabels {
                node_id: node_id.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            }),
        );
        Self {
            registry,
            checks,
            check_duration,
            redis_duration,
            redis_failures,
            redis_up,
            key_allowed_units,
            untracked_allowed_units,
        }
    }

    pub fn record_decision(&self, allowed: bool, source: DecisionSource, seconds: f64) {
        self.checks[allowed as usize][source as usize].inc();
        self.check_duration.observe(seconds);
    }

    pub fn record_redis_call(&self, seconds: f64) {
        self.redis_duration.observe(seconds);
    }

    pub fn record_redis_failure(&self, failure: &RedisFailure) {
        let class = failure.class();
        if let Some(i) = FAILURE_CLASSES.iter().position(|c| *c == class) {
            self.redis_failures[i].inc();
        }
    }

    pub fn set_redis_up(&self, up: bool) {
        self.redis_up.set(up as i64);
    }

    pub fn record_allowed_units(&self, key: Option<&str>, units: u64) {
        match key {
            Some(key) => {
                self.key_allowed_units
                    .get_or_create(&KeyLabels {
                        key: key.to_string(),
                    })
                    .inc_by(units);
            }
            None => {
                self.untracked_allowed_units.inc_by(units);
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
