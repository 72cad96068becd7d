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

fn spec(
    name: &str,
    description: &str,
    root_cause: &str,
    invariant: &str,
    params: Vec<ParamSpec>,
    needs: &[Disturbance],
) -> ChaosSpec {
    ChaosSpec {
        needs: needs.to_vec(),
        name: name.into(),
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
            "kill_node",
            "SIGKILL a rate limiter node",
            "process_crash",
            NODE_DOWN,
            vec![node()],
            &[Disturbance::Kill],
        ),
        spec(
            "pause_node",
            "SIGSTOP a node: it holds its port but answers nothing",
            "process_stalled",
            NODE_DOWN,
            vec![node()],
            &[Disturbance::Pause],
        ),
        spec(
            "kill_redis",
            "SIGKILL the cluster's Redis",
            "redis_down",
            REDIS_DISCONNECTED,
            vec![],
            &[Disturbance::Kill],
        ),
        spec(
            "node_latency",
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
            "counter_drift",
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
            "partition_node",
            "Cut a node off the cluster's network (needs a target that can partition: docker)",
            "network_partition",
            NODE_DOWN,
            vec![node()],
            &[Disturbance::Isolate],
        ),
        spec(
            "ghost_allow",
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
        let p = &request.params;
        let node = str_param(p, "node", DEFAULT_NODE).to_string();
        if self.endpoints().node_url(&node).is_none() {
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
        match request.name.as_str() {
            "kill_node" => {
                target.kill(&NodeId(node.clone())).await?;
                outcome(&node, format!("killed {node} (SIGKILL)"))
            }
            "partition_node" => {
                target.isolate(&NodeId(node.clone())).await?;
                outcome(&node, format!("cut {node} off the network"))
            }
            "pause_node" => {
                target.pause(&NodeId(node.clone())).await?;
                outcome(&node, format!("paused {node} (SIGSTOP)"))
            }
            "kill_redis" => {
                if !self.endpoints().redis_managed {
                    return Err(ContractError::Refused(
                        "Redis is not managed by operator-tui (--redis-url); kill it yourself"
                            .into(),
                    ));
                }
                target.kill(&NodeId::from(REDIS_NODE)).await?;
                outcome(REDIS_NODE, "killed redis (SIGKILL)".into())
            }
            "node_latency" => {
                let ms = p.get("ms").and_then(|v| v.as_u64()).unwrap_or(150);
                self.node_request(&node, "/chaos/latency", json!({ "ms": ms }))
                    .await?;
                outcome(&node, format!("{node} now adds {ms} ms to every check"))
            }
            "ghost_allow" => {
                self.node_request(&node, "/chaos/ghost", json!({})).await?;
                outcome(&node, format!("{node} now allows without asking Redis"))
            }
            "counter_drift" => {
                let key = str_param(p, "key", DEFAULT_KEY).to_string();
                let units = p.get("units").and_then(|v| v.as_u64()).unwrap_or(150);
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
            other => Err(ContractError::NotFound(format!(
                "the rate limiter has no chaos {other}; see `chaos list`"
            ))),
        }
    }
}
