//! The rate limiter's action catalog and how each runs.

use operator_protocol::*;
use serde_json::json;

use crate::cluster::REDIS_NODE;
use crate::{RateLimiterSubject, str_param};

pub fn specs(nodes: &[String]) -> Vec<ActionSpec> {
    let key = || {
        ParamSpec::new(
            "key",
            "the rate-limited key",
            ParamKind::String { max_len: 256 },
        )
    };
    vec![
        ActionSpec {
            name: "reset_counter".into(),
            description: "Start the key's counter afresh on every node (new generation; the current window's count is dropped)".into(),
            params: vec![key()],
            risk: Risk::Safe,
            node_param: None,
            disrupts_node: None,
        },
        ActionSpec {
            name: "update_limit".into(),
            description: "Set a key's limit and window for every node".into(),
            params: vec![
                key(),
                ParamSpec::new("limit", "allowed units per window", ParamKind::Integer { min: 1, max: 1_000_000_000 }),
                ParamSpec::new("window_ms", "window length in ms", ParamKind::Integer { min: 100, max: 86_400_000 }),
            ],
            risk: Risk::Safe,
            node_param: None,
            disrupts_node: None,
        },
        ActionSpec {
            name: "restart_node".into(),
            description: "Kill a rate limiter node's process and start it again (clears in-memory state)".into(),
            params: vec![ParamSpec::new("node", "the node to restart", ParamKind::Enum { values: nodes.to_vec() })],
            risk: Risk::Disruptive,
            node_param: Some("node".into()),
            disrupts_node: None,
        },
        ActionSpec {
            name: "heal_node".into(),
            description: "Reconnect a node cut off from the cluster's network (undo a partition)".into(),
            params: vec![ParamSpec::new("node", "the node to reconnect", ParamKind::Enum { values: nodes.to_vec() })],
            risk: Risk::Safe,
            node_param: None,
            disrupts_node: None,
        },
        ActionSpec {
            name: "restart_redis".into(),
            description: "Restart the cluster's Redis (counters of the current windows are lost)".into(),
            params: vec![],
            risk: Risk::Disruptive,
            node_param: None,
            disrupts_node: Some(REDIS_NODE.into()),
        },
    ]
}

impl RateLimiterSubject {
    pub(crate) async fn execute_action(
        &self,
        request: &ActionRequest,
        target: &dyn DeploymentTarget,
    ) -> ContractResult<ActionOutcome> {
        let p = &request.params;
        match request.action.as_str() {
            "reset_counter" => {
                let key = str_param(p, "key", "");
                let path = format!("/admin/keys/{}/reset", encode(key));
                let answer = self.admin(reqwest::Method::POST, &path, None).await?;
                Ok(ActionOutcome {
                    summary: format!("reset {key}: generation {}", answer["generation"]),
                })
            }
            "update_limit" => {
                let key = str_param(p, "key", "");
                let body = json!({ "limit": p.get("limit"), "window_ms": p.get("window_ms") });
                self.admin(
                    reqwest::Method::PUT,
                    &format!("/admin/limits/{}", encode(key)),
                    Some(body),
                )
                .await?;
                Ok(ActionOutcome {
                    summary: format!("{key}: limit {} per {} ms", p["limit"], p["window_ms"]),
                })
            }
            "restart_node" => {
                let node = NodeId::from(str_param(p, "node", ""));
                target.kill(&node).await?;
                target.start(&node).await?;
                Ok(ActionOutcome {
                    summary: format!("{node} restarted and healthy"),
                })
            }
            "heal_node" => {
                let node = NodeId::from(str_param(p, "node", ""));
                target.heal(&node).await?;
                Ok(ActionOutcome {
                    summary: format!("{node} reconnected and answering"),
                })
            }
            "restart_redis" => {
                if !self.endpoints().redis_managed {
                    return Err(ContractError::Refused(
                        "Redis is not managed by operator-tui (--redis-url): restart it where it runs".into()
                    ));
                }
                let redis = NodeId::from(REDIS_NODE);
                target.kill(&redis).await?;
                target.start(&redis).await?;
                Ok(ActionOutcome {
                    summary: "redis restarted and accepting connections".into(),
                })
            }
            other => Err(ContractError::NotFound(format!(
                "the rate limiter has no action {other}"
            ))),
        }
    }
}

/// Keys go into URL paths; percent-encode everything but unreserved characters.
pub(crate) fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
