//! The rate limiter's nine invariants, each a pure function over one observation's facts.

use operator_protocol::{Severity, Violation};
use serde_json::json;

use crate::facts::Facts;

pub const NODE_DOWN: &str = "node_down";
pub const REDIS_DISCONNECTED: &str = "redis_disconnected";
pub const HIGH_LATENCY: &str = "high_latency";
pub const COUNTER_DRIFT: &str = "counter_drift";
pub const GHOST_ALLOWING: &str = "ghost_allowing";
pub const DECISIONS_UNBACKED: &str = "decisions_unbacked";
pub const FLAGS_DIFFER: &str = "flags_differ";
pub const REDIS_MEMORY_FULL: &str = "redis_memory_full";
pub const REDIS_CLIENTS_FULL: &str = "redis_clients_full";

#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// p99 of check latency above this is high.
    pub p99_ms: f64,
    /// A node that takes longer than this, on average, to answer the operator's /health is
    /// slow from the outside even when its own histogram is not.
    pub health_rtt_ms: f64,
    /// Fewer checks than this in the window say nothing about a p99.
    pub min_latency_samples: u64,
    /// Drift beyond the timed-out units is tolerated up to this many units, for checks that
    /// landed in Redis between reading the nodes and reading Redis.
    pub drift_slack: u64,
    /// Redis using this share of its maxmemory is full for practical purposes: the next
    /// windows' counters will not fit.
    pub redis_memory_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            p99_ms: 50.0,
            health_rtt_ms: 80.0,
            min_latency_samples: 20,
            drift_slack: 5,
            // Redis's own exporter alerts at 90 % of maxmemory.
            redis_memory_share: 0.9,
        }
    }
}

pub fn all(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    let mut out = node_down(facts);
    out.extend(redis_disconnected(facts));
    out.extend(high_latency(facts, thresholds));
    out.extend(counter_drift(facts, thresholds));
    out.extend(ghost_allowing(facts));
    out.extend(decisions_unbacked(facts));
    out.extend(flags_differ(facts));
    out.extend(redis_memory_full(facts, thresholds));
    out.extend(redis_clients_full(facts));
    out
}

/// Redis at its memory limit refuses every check's write (`noeviction`) or drops keys to make
/// room, counts with them (any other policy): either way the cluster stops limiting exactly,
/// before any node's health says so.
pub fn redis_memory_full(facts: &Facts, thresholds: &Thresholds) -> Option<Violation> {
    let info = facts.redis.info.as_ref()?;
    let share = info
        .memory_used_share()
        .filter(|s| *s >= thresholds.redis_memory_share)?;
    let consequence = if info.evicts() {
        "it evicts keys to make room, and the counts in them are lost"
    } else {
        "it refuses the checks' writes"
    };
    Some(Violation {
        invariant: REDIS_MEMORY_FULL.into(),
        severity: Severity::Critical,
        target: crate::cluster::REDIS_NODE.into(),
        message: format!(
            "Redis uses {:.0} % of its maxmemory ({} of {} bytes, policy {}): {consequence}",
            share * 100.0,
            info.used_memory,
            info.maxmemory,
            info.maxmemory_policy
        ),
        evidence: json!({
            "used_memory": info.used_memory, "maxmemory": info.maxmemory,
            "maxmemory_policy": info.maxmemory_policy, "evicted_keys": info.evicted_keys,
        }),
    })
}

/// Redis serving as many clients as its maxclients lets in refuses the next connection: a
/// node that restarts, or reconnects after a blip, cannot reach it.
pub fn redis_clients_full(facts: &Facts) -> Option<Violation> {
    let info = facts
        .redis
        .info
        .as_ref()
        .filter(|i| i.maxclients > 0 && i.connected_clients >= i.maxclients)?;
    Some(Violation {
        invariant: REDIS_CLIENTS_FULL.into(),
        severity: Severity::Warning,
        target: crate::cluster::REDIS_NODE.into(),
        message: format!(
            "Redis serves {} clients, its maxclients is {}: it refuses new connections ({} refused so far)",
            info.connected_clients, info.maxclients, info.rejected_connections
        ),
        evidence: json!({
            "connected_clients": info.connected_clients, "maxclients": info.maxclients,
            "rejected_connections": info.rejected_connections,
        }),
    })
}

/// A node started with other settings than the rest (its limit, window, Redis timeout, fail
/// mode) decides differently for the same key: the cluster no longer limits as one. Only
/// where most of the answering nodes agree on a flag is the odd one out known.
pub fn flags_differ(facts: &Facts) -> Vec<Violation> {
    let answering: Vec<(&String, &crate::facts::NodeFacts)> = facts
        .nodes
        .iter()
        .filter(|(_, n)| n.reachable && !n.flags.is_empty())
        .collect();
    let mut out = Vec::new();
    for (id, node) in &answering {
        let mut differs = serde_json::Map::new();
        for (flag, value) in &node.flags {
            let peers: Vec<&String> = answering
                .iter()
                .filter(|(other, _)| other != id)
                .filter_map(|(_, n)| n.flags.get(flag))
                .collect();
            let agreeing_elsewhere = peers.iter().filter(|v| **v == peers[0]).count();
            // Two peers that agree with each other and not with this node.
            if peers.len() >= 2 && agreeing_elsewhere == peers.len() && peers[0] != value {
                differs.insert(flag.clone(), json!({ "node": value, "peers": peers[0] }));
            }
        }
        if differs.is_empty() {
            continue;
        }
        let summary: Vec<String> = differs
            .iter()
            .map(|(flag, v)| {
                format!(
                    "--{flag} {} (its peers: {})",
                    v["node"].as_str().unwrap_or("?"),
                    v["peers"].as_str().unwrap_or("?")
                )
            })
            .collect();
        out.push(Violation {
            invariant: FLAGS_DIFFER.into(),
            severity: Severity::Warning,
            target: (*id).clone(),
            message: format!("{id} runs with {}", summary.join(", ")),
            evidence: json!({ "node": id, "flags": differs }),
        });
    }
    out
}

/// Fewer fail-mode decisions a second than this are a blip (one timed-out call), not a node
/// that stopped limiting.
const UNBACKED_PER_SEC: f64 = 1.0;

/// A node answering checks Redis did not decide is not limiting, even when its /health looks
/// fine (Redis answers its probe and refuses the script, or times out on it). When Redis is
/// gone for the operator or the node, `redis_disconnected` says so instead.
pub fn decisions_unbacked(facts: &Facts) -> Vec<Violation> {
    if !facts.redis.reachable {
        return vec![];
    }
    facts
        .nodes
        .iter()
        .filter(|(_, n)| n.reachable && n.redis_reachable != Some(false))
        .filter(|(_, n)| {
            n.redis_checks_failing && n.fail_open_per_sec + n.fail_closed_per_sec > UNBACKED_PER_SEC
        })
        .map(|(id, n)| {
            let class = n.redis_error_class.as_deref().unwrap_or("unknown");
            Violation {
                invariant: DECISIONS_UNBACKED.into(),
                severity: Severity::Critical,
                target: id.clone(),
                message: format!(
                    "{id} decides {:.0} checks/s without Redis (its checks fail: {class}) while its health probe passes",
                    n.fail_open_per_sec + n.fail_closed_per_sec
                ),
                evidence: json!({
                    "node": id, "redis_error_class": class,
                    "fail_open_per_sec": n.fail_open_per_sec, "fail_closed_per_sec": n.fail_closed_per_sec,
                }),
            }
        })
        .collect()
}

pub fn node_down(facts: &Facts) -> Vec<Violation> {
    facts
        .nodes
        .iter()
        .filter(|(_, n)| !n.reachable)
        .map(|(id, n)| Violation {
            invariant: NODE_DOWN.into(),
            severity: Severity::Critical,
            target: id.clone(),
            message: format!(
                "{id} does not answer: {}",
                n.error.as_deref().unwrap_or("no answer")
            ),
            evidence: json!({ "node": id, "error": n.error }),
        })
        .collect()
}

/// Redis is unreachable from the operator, or from any node that is itself up.
pub fn redis_disconnected(facts: &Facts) -> Vec<Violation> {
    let cut_off: Vec<&String> = facts
        .nodes
        .iter()
        .filter(|(_, n)| n.reachable && n.redis_reachable == Some(false))
        .map(|(id, _)| id)
        .collect();
    if facts.redis.reachable && cut_off.is_empty() {
        return vec![];
    }
    let message = if facts.redis.reachable {
        format!("Redis answers the operator but not {}", join(&cut_off))
    } else {
        format!(
            "Redis does not answer: {}",
            facts.redis.error.as_deref().unwrap_or("no answer")
        )
    };
    let fail_open: f64 = facts.nodes.values().map(|n| n.fail_open_per_sec).sum();
    vec![Violation {
        invariant: REDIS_DISCONNECTED.into(),
        severity: Severity::Critical,
        target: "redis".into(),
        message,
        evidence: json!({
            "operator_reaches_redis": facts.redis.reachable,
            "nodes_without_redis": cut_off,
            "fail_open_per_sec": fail_open,
        }),
    }]
}

/// A node is slow when its own checks are (p99 from its histogram), or when it is slow to
/// answer at all (its /health round trip, as a client sees it).
pub fn high_latency(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    facts
        .nodes
        .iter()
        .filter(|(_, n)| n.reachable)
        .filter_map(|(id, n)| {
            let p99 = n
                .p99_ms
                .filter(|p99| n.latency_samples >= thresholds.min_latency_samples && *p99 > thresholds.p99_ms);
            let rtt = n.health_rtt_ms.filter(|rtt| *rtt > thresholds.health_rtt_ms);
            let message = match (p99, rtt) {
                (Some(p99), _) => format!("{id} check p99 {p99:.1} ms over {:.0} ms", thresholds.p99_ms),
                (None, Some(rtt)) => format!(
                    "{id} takes {rtt:.0} ms on average to answer /health (over {:.0} ms), though its own check p99 is {}",
                    thresholds.health_rtt_ms,
                    n.p99_ms.map_or("unknown".to_string(), |p| format!("{p:.1} ms"))
                ),
                (None, None) => return None,
            };
            Some(Violation {
                invariant: HIGH_LATENCY.into(),
                severity: Severity::Warning,
                target: id.clone(),
                message,
                evidence: json!({
                    "node": id, "p99_ms": n.p99_ms, "threshold_ms": thresholds.p99_ms, "samples": n.latency_samples,
                    "health_rtt_ms": n.health_rtt_ms, "health_rtt_threshold_ms": thresholds.health_rtt_ms,
                }),
            })
        })
        .collect()
}

pub fn counter_drift(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    facts
        .keys
        .iter()
        .filter(|k| k.comparable)
        .filter_map(|k| {
            let tolerance = k.uncertain + thresholds.drift_slack;
            let drift = k.drift();
            (drift.unsigned_abs() > tolerance).then(|| Violation {
                invariant: COUNTER_DRIFT.into(),
                severity: Severity::Warning,
                target: k.key.clone(),
                message: format!(
                    "key {}: Redis holds {} but the nodes allowed {} in window {} ({:+})",
                    k.key, k.redis_count, k.nodes_allowed, k.window_id, drift
                ),
                evidence: json!({
                    "key": k.key, "redis_count": k.redis_count, "nodes_allowed": k.nodes_allowed,
                    "nodes_allowed_after": k.nodes_allowed_after, "in_flight_after": k.in_flight_after,
                    "drift": drift, "tolerance": tolerance, "window_id": k.window_id, "limit": k.limit,
                }),
            })
        })
        .collect()
}

/// Decisions that skipped Redis while it was reachable, or a window allowed past its limit.
pub fn ghost_allowing(facts: &Facts) -> Vec<Violation> {
    let mut out: Vec<Violation> = facts
        .nodes
        .iter()
        .filter(|(_, n)| n.reachable && n.skipped_per_sec > 0.0)
        .map(|(id, n)| Violation {
            invariant: GHOST_ALLOWING.into(),
            severity: Severity::Critical,
            target: id.clone(),
            message: format!("{id} allows {:.0} checks/s without asking Redis", n.skipped_per_sec),
            evidence: json!({ "node": id, "skipped_per_sec": n.skipped_per_sec, "redis_reachable": n.redis_reachable }),
        })
        .collect();
    out.extend(facts.keys.iter().filter(|k| k.comparable && k.limit > 0 && k.nodes_allowed > k.limit).map(|k| {
        Violation {
            invariant: GHOST_ALLOWING.into(),
            severity: Severity::Critical,
            target: k.key.clone(),
            message: format!("key {}: {} allowed in one window, over its limit of {}", k.key, k.nodes_allowed, k.limit),
            evidence: json!({ "key": k.key, "nodes_allowed": k.nodes_allowed, "limit": k.limit, "window_id": k.window_id }),
        }
    }));
    out
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from a healthy local cluster under the default workload.
    fn healthy() -> Facts {
        serde_json::from_str(include_str!("../fixtures/healthy_facts.json")).unwrap()
    }

    fn invariants(facts: &Facts) -> Vec<(String, String)> {
        all(facts, &Thresholds::default())
            .into_iter()
            .map(|v| (v.invariant, v.target))
            .collect()
    }

    #[test]
    fn a_healthy_cluster_breaks_no_invariant() {
        assert!(invariants(&healthy()).is_empty());
    }

    #[test]
    fn redis_at_its_memory_limit_is_full_and_says_what_its_policy_does() {
        let mut f = healthy();
        let info = crate::facts::RedisInfo {
            used_memory: 950,
            maxmemory: 1000,
            maxmemory_policy: "noeviction".into(),
            connected_clients: 4,
            maxclients: 10_000,
            ..Default::default()
        };
        f.redis.info = Some(info.clone());
        let found = all(&f, &Thresholds::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].invariant, REDIS_MEMORY_FULL);
        assert_eq!(found[0].target, "redis");
        assert!(found[0].message.contains("95 %"), "{}", found[0].message);
        assert!(found[0].message.contains("refuses the checks' writes"));
        f.redis.info = Some(crate::facts::RedisInfo {
            maxmemory_policy: "allkeys-lru".into(),
            ..info.clone()
        });
        let evicting = redis_memory_full(&f, &Thresholds::default()).unwrap();
        assert!(evicting.message.contains("counts in them are lost"));
        for roomy in [
            crate::facts::RedisInfo {
                used_memory: 899,
                ..info.clone()
            },
            crate::facts::RedisInfo {
                maxmemory: 0,
                ..info.clone()
            },
        ] {
            f.redis.info = Some(roomy);
            assert!(invariants(&f).is_empty());
        }
    }

    #[test]
    fn redis_at_its_maxclients_refuses_the_next_connection() {
        let mut f = healthy();
        let info = crate::facts::RedisInfo {
            connected_clients: 4,
            maxclients: 4,
            rejected_connections: 2,
            ..Default::default()
        };
        f.redis.info = Some(info.clone());
        assert_eq!(
            invariants(&f),
            [(REDIS_CLIENTS_FULL.into(), "redis".into())]
        );
        f.redis.info = Some(crate::facts::RedisInfo {
            maxclients: 0,
            ..info
        });
        assert!(invariants(&f).is_empty(), "a Redis that does not say");
    }

    #[test]
    fn an_unreachable_node_is_down() {
        let mut f = healthy();
        let n = f.nodes.get_mut("node-2").unwrap();
        n.reachable = false;
        n.error = Some("connection refused".into());
        assert_eq!(invariants(&f), [(NODE_DOWN.into(), "node-2".into())]);
    }

    #[test]
    fn redis_gone_or_cut_off_from_a_node_is_disconnected() {
        let mut f = healthy();
        f.redis.reachable = false;
        assert_eq!(
            invariants(&f),
            [(REDIS_DISCONNECTED.into(), "redis".into())]
        );
        let mut f = healthy();
        f.nodes.get_mut("node-3").unwrap().redis_reachable = Some(false);
        let v = redis_disconnected(&f);
        assert!(v[0].message.contains("node-3"));
    }

    #[test]
    fn a_slow_p99_is_high_latency_only_with_enough_samples() {
        let mut f = healthy();
        let n = f.nodes.get_mut("node-1").unwrap();
        n.p99_ms = Some(150.0);
        assert_eq!(invariants(&f), [(HIGH_LATENCY.into(), "node-1".into())]);
        f.nodes.get_mut("node-1").unwrap().latency_samples = 3;
        assert!(
            invariants(&f).is_empty(),
            "three checks say nothing about a p99"
        );
    }

    #[test]
    fn a_node_slow_to_answer_from_outside_is_high_latency_though_its_histogram_is_fast() {
        let mut f = healthy();
        f.nodes.get_mut("node-2").unwrap().health_rtt_ms = Some(140.0);
        assert_eq!(invariants(&f), [(HIGH_LATENCY.into(), "node-2".into())]);
        assert!(
            high_latency(&f, &Thresholds::default())[0]
                .message
                .contains("140 ms")
        );
        f.nodes.get_mut("node-2").unwrap().health_rtt_ms = Some(12.0);
        assert!(invariants(&f).is_empty());
    }

    #[test]
    fn drift_beyond_the_timeouts_and_slack_is_counter_drift() {
        let mut f = healthy();
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        k.redis_count = k.nodes_allowed + 200;
        assert_eq!(invariants(&f), [(COUNTER_DRIFT.into(), "demo-hot".into())]);
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        k.uncertain = 200;
        assert!(invariants(&f).is_empty(), "timed-out calls may have landed");
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        k.uncertain = 0;
        k.comparable = false;
        assert!(
            invariants(&f).is_empty(),
            "an incomplete window is not compared"
        );
    }

    #[test]
    fn a_count_between_the_two_reads_of_the_nodes_is_traffic_not_drift() {
        let mut f = healthy();
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        // 60 checks landed while the operator read: the first read saw 1500, the second 1560.
        k.limit = 5000;
        k.nodes_allowed = 1500;
        k.nodes_allowed_after = 1560;
        k.redis_count = 1538;
        assert_eq!(k.drift(), 0);
        k.redis_count = 1570;
        k.in_flight_after = 12;
        assert_eq!(
            k.drift(),
            0,
            "units in flight at the second read may be in Redis already"
        );
        assert!(invariants(&f).is_empty(), "{f:?}");
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        k.in_flight_after = 0;
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        k.redis_count = 1560 + 150;
        assert_eq!(
            k.drift(),
            150,
            "more than the nodes allowed even by the second read"
        );
        assert_eq!(invariants(&f), [(COUNTER_DRIFT.into(), "demo-hot".into())]);
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        k.redis_count = 1400;
        assert_eq!(
            k.drift(),
            -100,
            "less than they had allowed by the first read"
        );
    }

    #[test]
    fn checks_redis_does_not_decide_are_unbacked_even_when_the_probe_passes() {
        let mut f = healthy();
        let n = f.nodes.get_mut("node-1").unwrap();
        n.redis_checks_failing = true;
        n.redis_error_class = Some("oom".into());
        n.fail_open_per_sec = 40.0;
        assert_eq!(
            invariants(&f),
            [(DECISIONS_UNBACKED.into(), "node-1".into())]
        );
        assert_eq!(
            decisions_unbacked(&f)[0].evidence["redis_error_class"],
            "oom"
        );
        f.nodes.get_mut("node-1").unwrap().fail_open_per_sec = 0.5;
        assert!(invariants(&f).is_empty(), "one timed-out call is a blip");
        let n = f.nodes.get_mut("node-1").unwrap();
        n.fail_open_per_sec = 40.0;
        n.redis_checks_failing = false;
        assert!(invariants(&f).is_empty(), "Redis decides its checks again");
        f.nodes.get_mut("node-1").unwrap().redis_checks_failing = true;
        f.redis.reachable = false;
        assert_eq!(
            invariants(&f),
            [(REDIS_DISCONNECTED.into(), "redis".into())],
            "Redis gone is one problem, said once"
        );
    }

    #[test]
    fn skipped_decisions_or_an_overfull_window_are_ghost_allowing() {
        let mut f = healthy();
        f.nodes.get_mut("node-2").unwrap().skipped_per_sec = 40.0;
        assert_eq!(invariants(&f), [(GHOST_ALLOWING.into(), "node-2".into())]);
        let mut f = healthy();
        let k = f.keys.iter_mut().find(|k| k.key == "demo-hot").unwrap();
        k.nodes_allowed = k.limit + 10;
        k.redis_count = k.nodes_allowed;
        assert_eq!(invariants(&f), [(GHOST_ALLOWING.into(), "demo-hot".into())]);
    }

    fn flagged(f: &mut Facts, node: &str, flag: &str, value: &str) {
        f.nodes
            .get_mut(node)
            .unwrap()
            .flags
            .insert(flag.into(), value.into());
    }

    #[test]
    fn a_node_started_with_other_flags_than_its_agreeing_peers_differs() {
        let mut f = healthy();
        for node in ["node-1", "node-2", "node-3"] {
            flagged(&mut f, node, "default-limit", "100");
            flagged(&mut f, node, "fail-mode", "open");
        }
        assert!(flags_differ(&f).is_empty(), "all alike");
        flagged(&mut f, "node-3", "default-limit", "200");
        let v = flags_differ(&f);
        assert_eq!(invariants(&f), [(FLAGS_DIFFER.into(), "node-3".into())]);
        assert!(
            v[0].message
                .contains("--default-limit 200 (its peers: 100)"),
            "{}",
            v[0].message
        );
        // Three different values: nobody is the odd one out.
        flagged(&mut f, "node-2", "default-limit", "300");
        assert!(flags_differ(&f).is_empty());
        // A node that does not answer is compared with nobody, and nobody with it.
        flagged(&mut f, "node-2", "default-limit", "100");
        f.nodes.get_mut("node-1").unwrap().reachable = false;
        assert!(flags_differ(&f).is_empty(), "one peer is not a majority");
    }
}
