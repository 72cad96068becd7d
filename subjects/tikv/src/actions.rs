//! TiKV's action catalog, and each request parsed once into what will run. The catalog and
//! the subject's dispatch both match on `ActionName`, so they cannot drift apart.

use operator_protocol::*;
use serde_json::json;

use crate::subject::store_param;

named_enum!(
    ActionName {
        TransferLeader => "transfer_leader",
        TransferPeer => "transfer_peer",
        RebalanceLeaders => "rebalance_leaders",
        DrainStore => "drain_store",
        UndrainStore => "undrain_store",
        RestartNode => "restart_node",
    }
);

/// Stores are PD's numeric ids; nodes are the deployment's names (store-2, pd1).
#[derive(Debug, Clone, PartialEq)]
pub enum TikvAction {
    TransferLeader { region: u64, to: u64 },
    TransferPeer { region: u64, from: u64, to: u64 },
    RebalanceLeaders { store: u64 },
    DrainStore { store: u64 },
    UndrainStore { store: u64 },
    RestartNode { node: NodeId },
}

impl TikvAction {
    pub fn parse(request: &ActionRequest) -> ContractResult<Self> {
        let name = ActionName::parse(&request.action).ok_or_else(|| {
            ContractError::NotFound(format!("TiKV has no action {}", request.action))
        })?;
        let p = &request.params;
        Ok(match name {
            ActionName::TransferLeader => Self::TransferLeader {
                region: int_param(p, "region")?,
                to: int_param(p, "to_store")?,
            },
            ActionName::TransferPeer => Self::TransferPeer {
                region: int_param(p, "region")?,
                from: int_param(p, "from_store")?,
                to: int_param(p, "to_store")?,
            },
            ActionName::RebalanceLeaders => Self::RebalanceLeaders {
                store: store_param(p)?,
            },
            ActionName::DrainStore => Self::DrainStore {
                store: store_param(p)?,
            },
            ActionName::UndrainStore => Self::UndrainStore {
                store: store_param(p)?,
            },
            ActionName::RestartNode => Self::RestartNode {
                node: NodeId::from(text_param(p, "node")?),
            },
        })
    }
}

/// The catalog over the cluster's nodes (stores and PD members).
pub fn specs(nodes: &[String]) -> Vec<ActionSpec> {
    ActionName::ALL
        .iter()
        .map(|name| spec(*name, nodes))
        .collect()
}

fn spec(name: ActionName, nodes: &[String]) -> ActionSpec {
    let stores: Vec<String> = nodes
        .iter()
        .filter(|n| n.starts_with("store-"))
        .cloned()
        .collect();
    let store = || {
        ParamSpec::new(
            "store",
            "the store, e.g. store-2",
            ParamKind::Enum {
                values: stores.clone(),
            },
        )
    };
    let id = |name: &str, what: &str| {
        ParamSpec::new(
            name,
            what,
            ParamKind::Integer {
                min: 1,
                max: i64::MAX,
            },
        )
    };
    let spec = |description: &str, params: Vec<ParamSpec>, risk: Risk| {
        ActionSpec::new(name.as_str(), description, params, risk)
    };
    match name {
        ActionName::TransferLeader => ActionSpec {
            premises: vec![target_store_up()],
            // Back to the store that led it before the move.
            reversal: Reversal::inverse_capturing(
                "transfer_leader",
                json!({ "region": "{param.region}", "to_store": "{before.leader_store_id}" }),
                Some(ToolCall {
                    tool: "region_detail".into(),
                    args: [("region".to_string(), json!("{param.region}"))]
                        .into_iter()
                        .collect(),
                }),
            ),
            worth: Some(until_acted_on("the region led from a store that can serve it")),
            ..spec(
                "Move a region's leader to another store (a PD operator)",
                vec![id("region", "region id"), id("to_store", "target store id")],
                Risk::Safe,
            )
        },
        ActionName::TransferPeer => ActionSpec {
            premises: vec![
                target_store_up(),
                // Once a store is Down (silent past max-store-down-time), PD's replica checker
                // re-creates its replicas itself; the minutes before that are the operator's.
                Premise {
                    description: "PD is not already re-creating the replica: the store it moves from is not Down".into(),
                    any_of: ["Up", "Disconnected", "Offline"]
                        .into_iter()
                        .map(|state| {
                            store_check(
                                &format!("PD reports the store it moves from {state}"),
                                "store-{param.from_store}",
                                "/state_name",
                                Expectation::Equals { value: json!(state) },
                            )
                        })
                        .collect(),
                },
            ],
            reversal: Reversal::inverse(
                "transfer_peer",
                json!({ "region": "{param.region}", "from_store": "{param.to_store}", "to_store": "{param.from_store}" }),
            ),
            worth: Some(until_acted_on("the region's replicas on stores that serve")),
            ..spec(
                "Move a region's replica from one store to another (a PD operator; data moves)",
                vec![
                    id("region", "region id"),
                    id("from_store", "store id holding the replica"),
                    id("to_store", "store id without one"),
                ],
                Risk::Disruptive,
            )
        },
        ActionName::RebalanceLeaders => ActionSpec {
            acts_on: vec!["store".into()],
            reversal: Reversal::irreversible(
                "leaders move region by region across every store; moving them back would only rebuild the imbalance",
            ),
            // Leaders kept off a store on someone's request are away on purpose.
            premises: vec![Premise {
                description: "nobody else has PD evicting leaders".into(),
                any_of: vec![Probe::new(
                    "PD evicts leaders from no store on someone else's request",
                    "cluster_overview",
                    json!({}),
                    "/pd/leaders_evicted_by_others",
                    Expectation::Equals { value: json!([]) },
                )],
            }],
            worth: Some(until_acted_on("leaders spread so no store carries more than its share")),
            ..spec(
                "Move leaders off the hottest stores (first this one) until every store leads about its share",
                vec![store()],
                Risk::Safe,
            )
        },
        ActionName::DrainStore => ActionSpec {
            node_param: Some("store".into()),
            reversal: Reversal::inverse("undrain_store", json!({ "store": "{param.store}" })),
            // A store that is not Up leads nothing to evict; PD's replica checker owns it.
            premises: vec![
                Premise {
                    description: "the store is Up".into(),
                    any_of: vec![store_check(
                        "PD reports the store Up",
                        "{param.store}",
                        "/state_name",
                        Expectation::Equals { value: json!("Up") },
                    )],
                },
                // PD keeps one evict-leader scheduler per store: adding ours to someone else's
                // and removing it later would end their eviction too.
                Premise {
                    description: "nobody else has PD evicting the store's leaders".into(),
                    any_of: vec![store_check(
                        "the store's leaders are not evicted on someone else's request",
                        "{param.store}",
                        "/leaders_evicted_by_someone_else",
                        Expectation::Equals {
                            value: json!(false),
                        },
                    )],
                },
            ],
            worth: Some(until_acted_on("the cluster's requests kept off a failing store")),
            ..spec(
                "Evict a store's leaders, then take it offline where PD accepts it (never below max-replicas Up stores)",
                vec![store()],
                Risk::Disruptive,
            )
        },
        ActionName::UndrainStore => ActionSpec {
            acts_on: vec!["store".into()],
            // Its own drains are undone as undos; any other drain is someone's to end.
            loosens: Some("it ends a store's drain, which may be someone else's".into()),
            reversal: Reversal::irreversible(
                "PD moves leaders back as it sees fit; draining the store again is a new decision (drain_store)",
            ),
            worth: Some(until_acted_on("the store's share of leaders back")),
            ..spec(
                "Let a drained store lead again (and serve again if it was taken offline)",
                vec![store()],
                Risk::Safe,
            )
        },
        ActionName::RestartNode => ActionSpec {
            node_param: Some("node".into()),
            reversal: Reversal::irreversible(
                "a restart drops the process's in-memory state; nothing brings it back",
            ),
            destroys: Some(
                "the process's in-memory state (caches, requests in flight); data on disk stays"
                    .into(),
            ),
            premises: vec![Premise {
                description: "the node is not serving normally".into(),
                any_of: vec![
                    store_check(
                        "the store no longer heartbeats to PD",
                        "{param.node}",
                        "/heartbeating",
                        Expectation::Equals {
                            value: json!(false),
                        },
                    ),
                    store_check(
                        "the store's status server does not answer",
                        "{param.node}",
                        "/status_server_answers",
                        Expectation::Equals {
                            value: json!(false),
                        },
                    ),
                    store_check(
                        "the store's slow score is high",
                        "{param.node}",
                        "/slow_score",
                        Expectation::Above { value: 79.0 },
                    ),
                    store_check(
                        "the store's Raft log appends take over 100 ms",
                        "{param.node}",
                        "/append_log_ms",
                        Expectation::Above { value: 100.0 },
                    ),
                    Probe::new(
                        "the PD member is unhealthy",
                        "pd_member",
                        json!({ "member": "{param.node}" }),
                        "/healthy",
                        Expectation::Equals {
                            value: json!(false),
                        },
                    ),
                    Probe::new(
                        "PD has no leader",
                        "cluster_overview",
                        json!({}),
                        "/pd/leader",
                        Expectation::Absent,
                    ),
                    Probe::new(
                        "PD does not answer",
                        "cluster_overview",
                        json!({}),
                        "/pd/error",
                        Expectation::Present,
                    ),
                ],
            }],
            worth: Some(until_acted_on("the store or PD member serving again")),
            ..spec(
                "Restart a store or PD member through the deployment target",
                vec![ParamSpec::new(
                    "node",
                    "a store (store-2) or PD member (pd1)",
                    ParamKind::Enum {
                        values: nodes.to_vec(),
                    },
                )],
                Risk::Disruptive,
            )
        },
    }
}

/// What an action buys that PD would not do by itself soon, at the cost of nothing lasting: a
/// leader move or a restart loses only caches and requests in flight, which are retried.
fn until_acted_on(buys: &str) -> Worth {
    Worth::new(buys, Span::UntilActedOn, Span::Moment)
}

/// A leader or replica moves only to a store PD reports Up.
fn target_store_up() -> Premise {
    Premise {
        description: "the store it moves to is Up".into(),
        any_of: vec![store_check(
            "PD reports the target store Up",
            "store-{param.to_store}",
            "/state_name",
            Expectation::Equals { value: json!("Up") },
        )],
    }
}

fn store_check(description: &str, store: &str, pointer: &str, expect: Expectation) -> Probe {
    Probe::new(
        description,
        "store_detail",
        json!({ "store": store }),
        pointer,
        expect,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_action_parses_and_nothing_else_does() {
        let nodes = vec!["store-1".to_string(), "pd1".to_string()];
        for spec in specs(&nodes) {
            let parsed = TikvAction::parse(&spec.example_request());
            assert!(parsed.is_ok(), "{}: {parsed:?}", spec.name);
        }
        let unknown = ActionRequest {
            action: "unsafe_recover".into(),
            params: Default::default(),
        };
        assert!(matches!(
            TikvAction::parse(&unknown),
            Err(ContractError::NotFound(_))
        ));
    }
}
