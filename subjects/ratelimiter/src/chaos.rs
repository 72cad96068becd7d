//! Faults to inject into the rate limiter cluster, each with the root cause a correct
//! diagnosis names and the invariant it is expected to break.

use operator_protocol::*;
use serde_json::json;

use crate::actions::encode;
use crate::cluster::REDIS_NODE;
use crate::invariants::*;
use crate::{RateLimiterSubject, str_param};

/// The workload's hot key; drift is injected there by default.
pub const DEFAULT_KEY: &str = "demo-hot";
const DEFAULT_NODE: &str = "node-2";

named_enum!(
    /// Every fault in the rate limiter's chaos catalog. The catalog and the dispatch both match
    /// on it, so a fault cannot be listed without being injectable, or the other way round.
    ChaosName {
        KillNode => "kill_node",
        PauseNode => "pause_node",
        KillRedis => "kill_redis",
        NodeLatency => "node_latency",
        CounterDrift => "counter_drift",
        PartitionNode => "partition_node",
        GhostAllow => "ghost_allow",
    }
);

/// A chaos request parsed once, at the subject's boundary, into the fault it injects.
#[derive(Debug, Clone, PartialEq)]
pub enum RateLimiterChaos {
    KillNode { node: NodeId },
    PauseNode { node: NodeId },
    KillRedis,
    NodeLatency { node: NodeId, ms: u64 },
    CounterDrift { key: String, units: u64 },
    PartitionNode { node: NodeId },
    GhostAllow { node: NodeId },
}

impl RateLimiterChaos {
    pub fn parse(request: &ChaosRequest) -> ContractResult<Self> {
        let name = ChaosName::parse(&request.name).ok_or_else(|| {
            ContractError::NotFound(format!(
                "the rate limiter has no chaos {}; see `chaos list`",
                request.name
            ))
        })?;
        let p = &request.params;
        let node = || NodeId::from(str_param(p, "node", DEFAULT_NODE));
        let int =
            |name: &str, default: u64| p.get(name).and_then(|v| v.as_u64()).unwrap_or(default);
        Ok(match name {
            ChaosName::KillNode => Self::KillNode { node: node() },
            ChaosName::PauseNode => Self::PauseNode { node: node() },
            ChaosName::KillRedis => Self::KillRedis,
            ChaosName::NodeLatency => Self::NodeLatency {
                node: node(),
                ms: int("ms", 150),
            },
            ChaosName::CounterDrift => Self::CounterDrift {
                key: str_param(p, "key", DEFAULT_KEY).to_string(),
                units: int("units", 150),
            },
            ChaosName::PartitionNode => Self::PartitionNode { node: node() },
            ChaosName::GhostAllow => Self::GhostAllow { node: node() },
        })
    }

    /// The node it hits, if it hits one of the rate limiter's nodes.
    fn node(&self) -> Option<&NodeId> {
        match self {
            Self::KillNode { node }
            | Self::PauseNode { node }
            | Self::NodeLatency { node, .. }
            | Self::PartitionNode { node }
            | Self::GhostAllow { node } => Some(node),
            Self::KillRedis | Self::CounterDrift { .. } => None,
        }
    }
}

fn spec(
    name: ChaosName,
    description: &str,
    root_cause: &str,
    invariant: &str,
    params: Vec<ParamSpec>,
    needs: &[Disturbance],
) -> ChaosSpec {
    ChaosSpec {
        needs: needs.to_vec(),
        name: name.as_str().into(),
        description: description.into(),
        root_cause: root_cause.into(),
        expected_invariant: invariant.into(),
        params: params
            .into_iter()
            .map(|p| ParamSpec {
                required: false,
                ..p
            })
            .collect(),
    }
}

pub fn specs(nodes: &[String]) -> Vec<ChaosSpec> {
    let node = || {
        ParamSpec::new(
            "node",
            "which node (default node-2)",
            ParamKind::Enum {
                values: nodes.to_vec(),
            },
        )
    };
    vec![
        spec(
            ChaosName::KillNode,
            "SIGKILL a rate limiter node",
            "process_crash",
            NODE_DOWN,
            vec![node()],
            &[Disturbance::Kill],
        ),
        spec(
            ChaosName::PauseNode,
            "SIGSTOP a node: it holds its port but answers nothing",
            "process_stalled",
            NODE_DOWN,
            vec![node()],
            &[Disturbance::Pause],
        ),
        spec(
            ChaosName::KillRedis,
            "SIGKILL the cluster's Redis",
            "redis_down",
            REDIS_DISCONNECTED,
            vec![],
            &[Disturbance::Kill],
        ),
        spec(
            ChaosName::NodeLatency,
            "Make every check on a node wait (default 150 ms)",
            "node_slow",
            HIGH_LATENCY,
            vec![
                node(),
                ParamSpec::new(
                    "ms",
                    "added latency",
                    ParamKind::Integer { min: 1, max: 5000 },
                ),
            ],
            &[],
        ),
        spec(
            ChaosName::CounterDrift,
            "Add units to a key's current counter in Redis behind the nodes' backs (default demo-hot, 150)",
            "counter_corruption",
            COUNTER_DRIFT,
            vec![
                ParamSpec::new("key", "the key", ParamKind::String { max_len: 256 }),
                ParamSpec::new(
                    "units",
                    "units to add",
                    ParamKind::Integer {
                        min: 1,
                        max: 1_000_000,
                    },
                ),
            ],
            &[],
        ),
        spec(
            ChaosName::PartitionNode,
            "Cut a node off the cluster's network (needs a target that can partition: docker)",
            "network_partition",
            NODE_DOWN,
            vec![node()],
            &[Disturbance::Isolate],
        ),
        spec(
            ChaosName::GhostAllow,
            "Make a node answer allowed without asking Redis",
            "node_bypassing_redis",
            GHOST_ALLOWING,
            vec![node()],
            &[],
        ),
    ]
}

impl RateLimiterSubject {
    /// Drift is only visible in a window every node watched from its start (after a cluster
    /// starts, or a node restarts, the current window is partial); corrupting any other window
    /// would test nothing, so wait for one.
    async fn wait_until_comparable(&self, key: &str) -> ContractResult<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let observation = self
                .observer
                .observe(operator_protocol::unix_now_ms())
                .await;
            let facts: crate::facts::Facts =
                serde_json::from_value(observation.facts).unwrap_or_default();
            if facts.keys.iter().any(|k| k.key == key && k.comparable) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(ContractError::Refused(format!(
                    "{key} never had a window every node watched whole; is traffic reaching it?"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn inject_chaos(
        &self,
        request: &ChaosRequest,
        target: &dyn DeploymentTarget,
    ) -> ContractResult<ChaosOutcome> {
        let chaos = RateLimiterChaos::parse(request)?;
        if let Some(node) = chaos.node()
            && self.endpoints().node_url(&node.0).is_none()
        {
            return Err(ContractError::Refused(format!(
                "no node {node}; the nodes are {}",
                self.endpoints().node_ids().join(", ")
            )));
        }
        let outcome = |target: &str, summary: String| {
            Ok(ChaosOutcome {
                target: target.into(),
                summary,
                effective_ms: None,
            })
        };
        match chaos {
            RateLimiterChaos::KillNode { node } => {
                target.kill(&node).await?;
                outcome(&node.0, format!("killed {node} (SIGKILL)"))
            }
            RateLimiterChaos::PartitionNode { node } => {
                target.isolate(&node).await?;
                outcome(&node.0, format!("cut {node} off the network"))
            }
            RateLimiterChaos::PauseNode { node } => {
                target.pause(&node).await?;
                outcome(&node.0, format!("paused {node} (SIGSTOP)"))
            }
            RateLimiterChaos::KillRedis => {
                if !self.endpoints().redis_managed {
                    return Err(ContractError::Refused(
                        "Redis is not managed by operator-tui (--redis-url); kill it yourself"
                            .into(),
                    ));
                }
                target.kill(&NodeId::from(REDIS_NODE)).await?;
                outcome(REDIS_NODE, "killed redis (SIGKILL)".into())
            }
            RateLimiterChaos::NodeLatency { node, ms } => {
                self.node_request(&node.0, "/chaos/latency", json!({ "ms": ms }))
                    .await?;
                outcome(&node.0, format!("{node} now adds {ms} ms to every check"))
            }
            RateLimiterChaos::GhostAllow { node } => {
                self.node_request(&node.0, "/chaos/ghost", json!({}))
                    .await?;
                outcome(&node.0, format!("{node} now allows without asking Redis"))
            }
            RateLimiterChaos::CounterDrift { key, units } => {
                self.wait_until_comparable(&key).await?;
                let state = self
                    .admin(
                        reqwest::Method::GET,
                        &format!("/admin/keys/{}", encode(&key)),
                        None,
                    )
                    .await?;
                let counter = state["counter_key"]
                    .as_str()
                    .ok_or_else(|| {
                        ContractError::Permanent("the node did not name the counter".into())
                    })?
                    .to_string();
                let mut conn = self.observer.redis();
                let effective_ms = operator_protocol::unix_now_ms();
                let held: u64 = redis::cmd("INCRBY")
                    .arg(&counter)
                    .arg(units)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| ContractError::Retryable(format!("INCRBY {counter}: {e}")))?;
                Ok(ChaosOutcome {
                    target: key.clone(),
                    summary: format!(
                        "added {units} units to {key}'s counter behind the nodes' backs (now {held})"
                    ),
                    effective_ms: Some(effective_ms),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, params: serde_json::Value) -> ChaosRequest {
        ChaosRequest {
            name: name.into(),
            params: serde_json::from_value(params).unwrap(),
        }
    }

    #[test]
    fn every_listed_fault_parses_and_nothing_unlisted_does() {
        let nodes = vec!["node-1".to_string(), "node-2".to_string()];
        let listed = specs(&nodes);
        assert_eq!(listed.len(), ChaosName::ALL.len());
        for spec in &listed {
            RateLimiterChaos::parse(&request(&spec.name, serde_json::json!({}))).unwrap();
        }
        let unknown = RateLimiterChaos::parse(&request("melt_node", serde_json::json!({})));
        assert!(matches!(unknown, Err(ContractError::NotFound(m)) if m.contains("chaos list")));
    }

    #[test]
    fn parameters_are_read_once_with_their_defaults() {
        assert_eq!(
            RateLimiterChaos::parse(&request(
                "node_latency",
                serde_json::json!({ "node": "node-1" })
            )),
            Ok(RateLimiterChaos::NodeLatency {
                node: NodeId::from("node-1"),
                ms: 150
            })
        );
        assert_eq!(
            RateLimiterChaos::parse(&request("counter_drift", serde_json::json!({ "units": 7 }))),
            Ok(RateLimiterChaos::CounterDrift {
                key: DEFAULT_KEY.into(),
                units: 7
            })
        );
    }
}
