//! The rate limiter's action catalog and how each runs.

use operator_protocol::*;
use serde_json::json;

use crate::RateLimiterSubject;
use crate::cluster::REDIS_NODE;

named_enum!(
    /// Every action the rate limiter has. The catalog and the dispatch both match on it, so
    /// an action cannot be described without being runnable, or the other way round.
    ActionName {
        RepairCounter => "repair_counter",
        ResetCounter => "reset_counter",
        UpdateLimit => "update_limit",
        RestartNode => "restart_node",
        HealNode => "heal_node",
        RestartRedis => "restart_redis",
    }
);

/// A request parsed once at the subject's boundary into what will run.
#[derive(Debug, Clone, PartialEq)]
pub enum RateLimiterAction {
    RepairCounter {
        key: String,
    },
    ResetCounter {
        key: String,
    },
    UpdateLimit {
        key: String,
        limit: u64,
        window_ms: u64,
    },
    RestartNode {
        node: NodeId,
    },
    HealNode {
        node: NodeId,
    },
    RestartRedis,
}

impl RateLimiterAction {
    pub fn parse(request: &ActionRequest) -> ContractResult<Self> {
        let name = ActionName::parse(&request.action).ok_or_else(|| {
            ContractError::NotFound(format!("the rate limiter has no action {}", request.action))
        })?;
        let p = &request.params;
        let node = || text_param(p, "node").map(NodeId::from);
        Ok(match name {
            ActionName::RepairCounter => Self::RepairCounter {
                key: text_param(p, "key")?.to_string(),
            },
            ActionName::ResetCounter => Self::ResetCounter {
                key: text_param(p, "key")?.to_string(),
            },
            ActionName::UpdateLimit => Self::UpdateLimit {
                key: text_param(p, "key")?.to_string(),
                limit: int_param(p, "limit")?,
                window_ms: int_param(p, "window_ms")?,
            },
            ActionName::RestartNode => Self::RestartNode { node: node()? },
            ActionName::HealNode => Self::HealNode { node: node()? },
            ActionName::RestartRedis => Self::RestartRedis,
        })
    }
}

pub fn specs(nodes: &[String]) -> Vec<ActionSpec> {
    ActionName::ALL
        .iter()
        .map(|name| spec(*name, nodes))
        .collect()
}

fn spec(name: ActionName, nodes: &[String]) -> ActionSpec {
    let key = || {
        ParamSpec::new(
            "key",
            "the rate-limited key",
            ParamKind::String { max_len: 256 },
        )
    };
    let node = |what: &str| {
        ParamSpec::new(
            "node",
            what,
            ParamKind::Enum {
                values: nodes.to_vec(),
            },
        )
    };
    let spec = |description: &str, params: Vec<ParamSpec>, risk: Risk| {
        ActionSpec::new(name.as_str(), description, params, risk)
    };
    let disagrees = || Premise {
        description: "the key's counter in Redis still disagrees with what the nodes allowed"
            .into(),
        any_of: vec![
            key_excess(
                "Redis holds more than the nodes allowed",
                Expectation::Above { value: 0.0 },
            ),
            key_excess(
                "Redis holds less than the nodes allowed",
                Expectation::Below { value: 0.0 },
            ),
        ],
    };
    // A key's count, and any drift in it, lives as long as the key's current window.
    let rest_of_window = || {
        Span::measured(
            "the drift on {param.key} ends with its window",
            "redis_key",
            json!({ "key": "{param.key}" }),
            "/redis/window_ends_in_ms",
        )
    };
    match name {
        // What it buys is exact accounting; what it costs is nothing the nodes allowed: it
        // takes away only units no node allowed, or puts back only units Redis lost.
        ActionName::RepairCounter => ActionSpec {
            acts_on: vec!["key".into()],
            reversal: Reversal::irreversible(
                "the units it removes were never allowed by any node, and the units it puts back were: neither is anyone's to have back",
            ),
            premises: vec![disagrees()],
            worth: Some(Worth::new(
                "the key's counter agreeing with what the nodes allowed, for the rest of its window",
                rest_of_window(),
                Span::Moment,
            )),
            ..spec(
                "Make the key's counter in Redis agree with what the nodes allowed in its window: remove units no node allowed, or put back units Redis lost; the window's count of allowed units stays",
                vec![key()],
                Risk::Safe,
            )
        },
        ActionName::ResetCounter => ActionSpec {
            acts_on: vec!["key".into()],
            reversal: Reversal::irreversible(
                "the dropped count is gone: the clients keep the fresh quota they were given",
            ),
            destroys: Some(
                "the key's count for the current window: its clients get a fresh quota".into(),
            ),
            premises: vec![disagrees()],
            // The dropped count is lost exactly as long as the drift would have lasted: a
            // reset never clearly buys more than waiting for the window does.
            worth: Some(Worth::new(
                "a counter that agrees with the nodes again, for the rest of the window",
                rest_of_window(),
                rest_of_window(),
            )),
            ..spec(
                "Start the key's counter afresh on every node (new generation; the current window's count is dropped)",
                vec![key()],
                Risk::Destructive,
            )
        },
        ActionName::UpdateLimit => ActionSpec {
            acts_on: vec!["key".into()],
            loosens: Some("it can raise a key's limit or shorten its window".into()),
            // The limit and window in force before, read from Redis right before it runs.
            reversal: Reversal::inverse_capturing(
                "update_limit",
                json!({ "key": "{param.key}", "limit": "{before.redis/limit}", "window_ms": "{before.redis/window_ms}" }),
                Some(ToolCall {
                    tool: "redis_key".into(),
                    args: [("key".to_string(), json!("{param.key}"))].into_iter().collect(),
                }),
            ),
            // A limit stays until someone changes it.
            worth: Some(Worth::new(
                "the key's clients held to the limit and window it needs",
                Span::UntilActedOn,
                Span::Moment,
            )),
            ..spec(
            "Set a key's limit and window for every node",
            vec![
                key(),
                ParamSpec::new(
                    "limit",
                    "allowed units per window",
                    ParamKind::Integer {
                        min: 1,
                        max: 1_000_000_000,
                    },
                ),
                ParamSpec::new(
                    "window_ms",
                    "window length in ms",
                    ParamKind::Integer {
                        min: 100,
                        max: 86_400_000,
                    },
                ),
            ],
            Risk::Safe,
        )
        },
        ActionName::RestartNode => ActionSpec {
            reversal: Reversal::irreversible(
                "a restart drops the process's in-memory state; nothing brings it back",
            ),
            node_param: Some("node".into()),
            destroys: Some(
                "the node's in-memory state (its rate samples and script cache); checks in flight on it fail"
                    .into(),
            ),
            premises: vec![Premise {
                description: "the node is not serving normally".into(),
                any_of: vec![
                    process_is("the node's process has exited", "{param.node}", ProcessState::Exited),
                    process_is("the node's process is stopped", "{param.node}", ProcessState::Stopped),
                    node_check("the node does not answer /health", "/health/unreachable", Expectation::Present),
                    node_check("the node's check p99 is over 50 ms", "/rates/p99_ms", Expectation::Above { value: 50.0 }),
                    node_check("the node answers without asking Redis", "/rates/skipped_per_sec", Expectation::Above { value: 0.0 }),
                    node_check("Redis does not decide the node's checks", "/health/redis/checks_failing", Expectation::Equals { value: serde_json::json!(true) }),
                ],
            }, not_stopped_on_purpose("{param.node}")],
            // A dead process stays dead (a stopped or silent one is watched first); its rate
            // samples and script cache refill within a second of serving.
            worth: Some(Worth::new(
                "the node deciding checks again",
                Span::UntilActedOn,
                Span::Moment,
            )),
            ..spec(
                "Kill a rate limiter node's process and start it again (clears in-memory state)",
                vec![node("the node to restart")],
                Risk::Disruptive,
            )
        },
        ActionName::HealNode => ActionSpec {
            acts_on: vec!["node".into()],
            reversal: Reversal::irreversible(
                "cutting a node off again is never a remedy: only a fault does that",
            ),
            worth: Some(Worth::new(
                "the node reaching Redis and its peers again",
                Span::UntilActedOn,
                Span::Moment,
            )),
            ..spec(
                "Reconnect a node cut off from the cluster's network (undo a partition)",
                vec![node("the node to reconnect")],
                Risk::Safe,
            )
        },
        ActionName::RestartRedis => ActionSpec {
            reversal: Reversal::irreversible(
                "the counts Redis held are gone with the process: every client keeps a fresh quota",
            ),
            disrupts_node: Some(REDIS_NODE.into()),
            destroys: Some(
                "every key's count for the current window and every limit set through the admin API, if Redis still held them".into(),
            ),
            // Not merely slow or busy: a restart makes a slow Redis absent, and a busy one
            // loses what it was busy with.
            // Only a Redis that has exited: its counts and limits are gone already, and a
            // restart loses nothing more. A stopped one still holds them all.
            premises: vec![Premise {
                description: "Redis has exited".into(),
                any_of: vec![process_is(
                    "the Redis process has exited",
                    REDIS_NODE,
                    ProcessState::Exited,
                )],
            }, not_stopped_on_purpose(REDIS_NODE)],
            // Its premise admits only a Redis that has exited: the counts it destroys went
            // with the process, and a restart loses nothing more.
            worth: Some(Worth::new(
                "every node's checks decided by Redis again",
                Span::UntilActedOn,
                Span::Moment,
            )),
            ..spec(
                "Restart the cluster's Redis (counters of the current windows are lost)",
                vec![],
                Risk::Destructive,
            )
        },
    }
}

/// Read again right before a restart: a stop someone made on purpose (a clean exit, a SIGTERM
/// waiting on a stopped process) that the last observation had not seen yet is theirs.
fn not_stopped_on_purpose(node: &str) -> Premise {
    Premise {
        description: "nobody stopped it on purpose".into(),
        any_of: vec![Probe::new(
            "the process was not stopped deliberately",
            "node_detail",
            json!({ "node": node }),
            "/process/stopped_deliberately",
            Expectation::Absent,
        )],
    }
}

fn process_is(description: &str, node: &str, state: ProcessState) -> Probe {
    Probe::new(
        description,
        "node_detail",
        json!({ "node": node }),
        "/process/state",
        Expectation::Equals {
            value: json!(state),
        },
    )
}

fn node_check(description: &str, pointer: &str, expect: Expectation) -> Probe {
    Probe::new(
        description,
        "node_detail",
        json!({ "node": "{param.node}" }),
        pointer,
        expect,
    )
}

fn key_excess(description: &str, expect: Expectation) -> Probe {
    Probe::new(
        description,
        "redis_key",
        json!({ "key": "{param.key}" }),
        "/excess",
        expect,
    )
}

impl RateLimiterSubject {
    pub(crate) async fn execute_action(
        &self,
        request: &ActionRequest,
        target: &dyn DeploymentTarget,
    ) -> ContractResult<ActionOutcome> {
        let summary = match RateLimiterAction::parse(request)? {
            RateLimiterAction::RepairCounter { key } => self.repair_counter(&key).await?,
            RateLimiterAction::ResetCounter { key } => {
                let path = format!("/admin/keys/{}/reset", encode(&key));
                let answer = self.admin(reqwest::Method::POST, &path, None).await?;
                format!("reset {key}: generation {}", answer["generation"])
            }
            RateLimiterAction::UpdateLimit {
                key,
                limit,
                window_ms,
            } => {
                let body = json!({ "limit": limit, "window_ms": window_ms });
                let path = format!("/admin/limits/{}", encode(&key));
                self.admin(reqwest::Method::PUT, &path, Some(body)).await?;
                format!("{key}: limit {limit} per {window_ms} ms")
            }
            RateLimiterAction::RestartNode { node } => {
                target.kill(&node).await?;
                target.start(&node).await?;
                format!("{node} restarted and healthy")
            }
            RateLimiterAction::HealNode { node } => {
                target.heal(&node).await?;
                format!("{node} reconnected and answering")
            }
            RateLimiterAction::RestartRedis => {
                if !self.endpoints().redis_managed {
                    return Err(ContractError::Refused(
                        "Redis is not managed by operator-tui (--redis-url): restart it where it runs".into(),
                    ));
                }
                let redis = NodeId::from(REDIS_NODE);
                target.kill(&redis).await?;
                target.start(&redis).await?;
                "redis restarted and accepting connections".into()
            }
        };
        Ok(ActionOutcome { summary })
    }
}

impl RateLimiterSubject {
    /// Moves the key's counter by exactly its drift, as the latest observation measured it
    /// (checks landing meanwhile move Redis and the nodes alike, so the drift stands), and
    /// only if the counter is still the one measured: a window that ended took the drift with
    /// it.
    async fn repair_counter(&self, key: &str) -> ContractResult<String> {
        let accounting = self
            .last_facts()
            .and_then(|f| f.keys.into_iter().find(|k| k.key == key))
            .ok_or_else(|| ContractError::Retryable(format!("{key} has not been observed yet")))?;
        if !accounting.comparable {
            return Err(ContractError::Retryable(format!(
                "{key}'s accounting is not exact right now ({}): nothing to repair against",
                accounting
                    .why_not
                    .as_deref()
                    .unwrap_or("a node is not watching its window")
            )));
        }
        // Units of calls that timed out may be in Redis without any node knowing: they are
        // left alone, so a repair never takes away a unit that may have been allowed.
        let beyond = accounting
            .drift()
            .unsigned_abs()
            .saturating_sub(accounting.uncertain);
        let drift = accounting.drift().signum() * beyond as i64;
        if drift == 0 {
            return Ok(format!(
                "{key} agrees with the nodes within {} uncertain units: nothing to repair",
                accounting.uncertain
            ));
        }
        // Only a counter that still exists is moved: one whose window ended took its drift.
        const MOVE_IF_PRESENT: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) else return false end";
        let mut conn = self.observer.redis();
        let moved: Option<i64> = redis::cmd("EVAL")
            .arg(MOVE_IF_PRESENT)
            .arg(1)
            .arg(&accounting.counter_key)
            .arg(-drift)
            .query_async(&mut conn)
            .await
            .map_err(|e| ContractError::Retryable(format!("repairing {key}: {e}")))?;
        Ok(match moved {
            Some(now) if drift > 0 => {
                format!("removed {drift} units no node allowed from {key}'s counter (now {now})")
            }
            Some(now) => format!(
                "put back {} units Redis had lost on {key}'s counter (now {now})",
                -drift
            ),
            None => format!("{key}'s window ended before the repair: its drift went with it"),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_action_parses_and_nothing_else_does() {
        let nodes = vec!["node-1".to_string()];
        for spec in specs(&nodes) {
            let parsed = RateLimiterAction::parse(&spec.example_request());
            assert!(parsed.is_ok(), "{}: {parsed:?}", spec.name);
        }
        let unknown = ActionRequest {
            action: "flush_all".into(),
            params: Default::default(),
        };
        assert!(matches!(
            RateLimiterAction::parse(&unknown),
            Err(ContractError::NotFound(_))
        ));
        let missing = ActionRequest {
            action: "update_limit".into(),
            params: [("key".to_string(), json!("k"))].into_iter().collect(),
        };
        assert!(matches!(
            RateLimiterAction::parse(&missing),
            Err(ContractError::Permanent(m)) if m.contains("limit")
        ));
    }
}
