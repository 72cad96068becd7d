//! The TiKV subject end to end against the simulator, as the engine drives it: inject a chaos,
//! observe until its invariant breaks, follow the runbook (read-only evidence through the
//! subject's tools, then the remedy through its actions), and observe until the cluster is
//! healthy again. Also: bad action input is refused with a message that names the problem.

use std::time::{Duration, Instant};

use operator_protocol::*;
use operator_tikv::subject::{TikvOptions, TikvSubject};
use operator_tikv_sim::model::SimConfig;
use operator_tikv_sim::server::Simulator;
use operator_tikv_sim::target::SimTarget;
use serde_json::{Value, json};

struct Rig {
    _sim: Simulator,
    subject: TikvSubject,
    target: SimTarget,
}

/// A simulator with PD's timings shortened so that a store is Down within seconds.
async fn rig() -> Rig {
    rig_with(SimConfig {
        regions: 60,
        disconnect_after_ms: 1_000,
        peer_down_after_ms: 2_000,
        down_after_ms: 3_000,
        election_timeout_ms: 300,
        ..SimConfig::default()
    })
    .await
}

async fn rig_with(config: SimConfig) -> Rig {
    let sim = Simulator::start(
        config.clone(),
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let subject = TikvSubject::new(TikvOptions {
        verify_timeout: Some(Duration::from_secs(2)),
        ..TikvOptions::simulator(&sim.url())
    })
    .unwrap();
    let target = SimTarget::for_simulator(&sim.url(), &config);
    Rig {
        _sim: sim,
        subject,
        target,
    }
}

impl Rig {
    async fn violations(&self) -> Vec<Violation> {
        let observation = self.subject.observe().await.unwrap();
        self.subject.check(&observation)
    }

    async fn until_broken(&self, invariant: &str, timeout: Duration) -> Violation {
        self.until_violation(invariant, |_| true, timeout).await
    }

    /// The first violation of `invariant` that `wanted` accepts.
    async fn until_violation(
        &self,
        invariant: &str,
        wanted: impl Fn(&Violation) -> bool,
        timeout: Duration,
    ) -> Violation {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self
                .violations()
                .await
                .into_iter()
                .find(|v| v.invariant == invariant && wanted(v))
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{invariant} never broke as wanted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn until_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let violations = self.violations().await;
            if violations.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "still broken: {violations:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Follows the runbook as the rules brain would: the first hypothesis whose evidence all
    /// holds names the root cause, and its remedy is executed.
    async fn follow_runbook(&self, violation: &Violation) -> String {
        let runbook = self.subject.runbook();
        let entry = runbook
            .entry(&violation.invariant)
            .expect("an entry for every invariant the chaos breaks");
        for hypothesis in &entry.hypotheses {
            let mut holds = true;
            for check in &hypothesis.evidence {
                let call = ToolCall {
                    tool: check.tool.clone(),
                    args: fill(&check.args, violation),
                };
                let answer = self.subject.call_tool(&call, &self.target).await.unwrap();
                holds &= check.expect.holds(answer.pointer(&check.pointer));
            }
            if holds {
                for step in &hypothesis.remedy {
                    let request = ActionRequest {
                        action: step.action.clone(),
                        params: fill(&step.params, violation),
                    };
                    let outcome = self.subject.execute(&request, &self.target).await.unwrap();
                    eprintln!(
                        "{} {:?}: {}",
                        request.action, request.params, outcome.summary
                    );
                }
                return hypothesis.root_cause.clone();
            }
        }
        panic!("no hypothesis for {violation:?} holds");
    }
}

fn fill(
    args: &std::collections::BTreeMap<String, Value>,
    violation: &Violation,
) -> std::collections::BTreeMap<String, Value> {
    args.iter()
        .map(|(k, v)| {
            let v = match v.as_str() {
                Some("{target}") => json!(violation.target),
                Some(s) if s.starts_with("{evidence.") => {
                    violation.evidence[&s[10..s.len() - 1]].clone()
                }
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

async fn chaos(rig: &Rig, name: &str, params: Value) -> ChaosOutcome {
    let params = serde_json::from_value(params).unwrap();
    rig.subject
        .inject(
            &ChaosRequest {
                name: name.into(),
                params,
            },
            &rig.target,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_store_is_diagnosed_as_crashed_restarted_and_the_cluster_heals() {
    let rig = rig().await;
    rig.until_healthy(Duration::from_secs(10)).await;
    let outcome = chaos(&rig, "kill_store", json!({ "store": "store-2" })).await;
    assert_eq!(outcome.target, "store-2");
    let violation = rig
        .until_broken("store_down", Duration::from_secs(15))
        .await;
    assert_eq!(violation.target, "store-2");
    assert_eq!(rig.follow_runbook(&violation).await, "store_crashed");
    // The store comes back leading nothing (the simulator models no balance-leader
    // scheduler), which is the next ticket: leader skew, fixed by rebalancing.
    let skew = rig
        .until_broken("leader_imbalance", Duration::from_secs(20))
        .await;
    assert_eq!(rig.follow_runbook(&skew).await, "leader_skew");
    rig.until_healthy(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_hot_store_is_diagnosed_as_leader_skew_and_rebalanced() {
    let rig = rig().await;
    rig.until_healthy(Duration::from_secs(10)).await;
    chaos(&rig, "hot_store", json!({ "store": "store-3" })).await;
    let violation = rig
        .until_broken("leader_imbalance", Duration::from_secs(15))
        .await;
    assert_eq!(violation.evidence["store"], "store-3");
    assert_eq!(rig.follow_runbook(&violation).await, "leader_skew");
    rig.until_healthy(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_slow_store_is_diagnosed_as_slow_and_restarted() {
    let rig = rig().await;
    rig.until_healthy(Duration::from_secs(10)).await;
    chaos(&rig, "slow_store", json!({ "store": "store-1" })).await;
    // PD's slow score shows it at once; the store's own append latency, a rate between two
    // scrapes of its status server, a tick later.
    let violation = rig
        .until_violation(
            "slow_store",
            |v| {
                v.evidence["append_log_ms"]
                    .as_f64()
                    .is_some_and(|ms| ms > 100.0)
            },
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(violation.target, "store-1");
    assert!(
        violation.message.contains("Raft log appends take"),
        "{}",
        violation.message
    );
    assert_eq!(rig.follow_runbook(&violation).await, "store_slow");
    rig.until_healthy(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn losing_pd_quorum_is_diagnosed_one_member_back_restores_a_leader_then_the_other() {
    let rig = rig().await;
    rig.until_healthy(Duration::from_secs(10)).await;
    chaos(&rig, "kill_pd", json!({})).await;
    let violation = rig
        .until_broken("pd_no_leader", Duration::from_secs(15))
        .await;
    assert_eq!(rig.follow_runbook(&violation).await, "pd_quorum_lost");
    // pd1 back gives PD its leader; pd2 is still down, which is the next ticket.
    let member = rig
        .until_broken("pd_member_down", Duration::from_secs(10))
        .await;
    assert_eq!(member.target, "pd2");
    assert_eq!(rig.follow_runbook(&member).await, "pd_member_crashed");
    rig.until_healthy(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn bad_action_input_is_refused_with_a_reason() {
    let rig = rig().await;
    let bad = |action: &str, params: Value| ActionRequest {
        action: action.into(),
        params: serde_json::from_value(params).unwrap(),
    };
    let err = rig
        .subject
        .execute(
            &bad("rebalance_leaders", json!({ "store": "two" })),
            &rig.target,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("store-2"), "{err}");
    let err = rig
        .subject
        .execute(&bad("transfer_leader", json!({ "region": 1 })), &rig.target)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("to_store"), "{err}");
    let err = rig
        .subject
        .execute(&bad("format_disk", json!({})), &rig.target)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("format_disk"), "{err}");
    let err = rig.target.kill(&NodeId::from("redis")).await.unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
}

#[tokio::test]
async fn a_replica_moves_to_a_fourth_store_and_pd_refuses_a_store_that_has_one() {
    let rig = rig_with(SimConfig {
        stores: 4,
        regions: 8,
        ..SimConfig::default()
    })
    .await;
    let (subject, target) = (&rig.subject, &rig.target);
    let detail = |region: u64| ToolCall {
        tool: "region_detail".into(),
        args: [("region".to_string(), json!(region))].into(),
    };
    let before = subject.call_tool(&detail(2), target).await.unwrap();
    let stores: Vec<String> = serde_json::from_value(before["stores"].clone()).unwrap();
    assert_eq!(stores.len(), 3, "{before}");
    let spare = (1..=4)
        .find(|i| !stores.contains(&format!("store-{i}")))
        .unwrap();
    let from: u64 = stores[0].trim_start_matches("store-").parse().unwrap();
    let move_to = |to: u64| ActionRequest {
        action: "transfer_peer".into(),
        params: [
            ("region".to_string(), json!(2)),
            ("from_store".to_string(), json!(from)),
            ("to_store".to_string(), json!(to)),
        ]
        .into(),
    };
    let refused = subject.execute(&move_to(from), target).await.unwrap_err();
    assert!(
        refused.to_string().contains("already has peer"),
        "{refused}"
    );
    // The action returns once PD shows the move, so one look afterwards must see it.
    let outcome = subject.execute(&move_to(spare), target).await.unwrap();
    assert!(
        outcome.summary.contains("verified through PD"),
        "{}",
        outcome.summary
    );
    let after = subject.call_tool(&detail(2), target).await.unwrap();
    let stores: Vec<String> = serde_json::from_value(after["stores"].clone()).unwrap();
    assert!(stores.contains(&format!("store-{spare}")), "{after}");
    assert!(!stores.contains(&format!("store-{from}")), "{after}");
    assert_eq!(stores.len(), 3);
    let missing = subject.call_tool(&detail(9_999), target).await.unwrap_err();
    assert!(missing.to_string().contains("9999"), "{missing}");
}

#[tokio::test]
async fn metric_query_and_log_tail_read_the_stores_own_metrics_and_logs() {
    let rig = rig().await;
    rig.until_healthy(Duration::from_secs(10)).await;
    let tool = |name: &str, args: Value| ToolCall {
        tool: name.into(),
        args: serde_json::from_value(args).unwrap(),
    };
    let answer = rig
        .subject
        .call_tool(
            &tool(
                "metric_query",
                json!({ "query": "tikv_raftstore_region_count{type=\"leader\"}" }),
            ),
            &rig.target,
        )
        .await
        .unwrap();
    let samples = answer["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3, "one series per store: {answer}");
    let leaders: f64 = samples.iter().map(|s| s["value"].as_f64().unwrap()).sum();
    assert_eq!(leaders, 60.0, "every region has one leader");
    assert!(samples.iter().all(|s| {
        s["labels"]["instance"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    }));

    let wrong = rig
        .subject
        .call_tool(
            &tool("metric_query", json!({ "query": "tikv_raftstore_leaders" })),
            &rig.target,
        )
        .await
        .unwrap_err();
    assert!(
        wrong.to_string().contains("tikv_raftstore_region_count"),
        "names what exists: {wrong}"
    );
    let promql = rig
        .subject
        .call_tool(
            &tool("metric_query", json!({ "query": "rate(x[1m])" })),
            &rig.target,
        )
        .await
        .unwrap_err();
    assert!(
        promql.to_string().contains("without Prometheus"),
        "{promql}"
    );

    let log = rig
        .subject
        .call_tool(
            &tool("log_tail", json!({ "node": "store-2", "lines": 5 })),
            &rig.target,
        )
        .await
        .unwrap();
    assert!(
        log["lines"][0]
            .as_str()
            .unwrap()
            .contains("TiKV is ready to serve"),
        "{log}"
    );
}

#[tokio::test]
async fn status_addresses_only_the_clusters_network_resolves_are_reached_through_rewrites() {
    let sim = Simulator::start(
        SimConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    // As in compose/tikv.yml: PD reports tikvN:20180, which only the project's network
    // resolves, and each status port is published on loopback.
    let mut rewrites = std::collections::BTreeMap::new();
    for store in sim.cluster.lock().unwrap().stores.values_mut() {
        let advertised = format!("tikv{}.invalid:20180", store.id);
        rewrites.insert(advertised.clone(), store.status_address.clone());
        store.status_address = advertised;
    }
    let facts = |subject: TikvSubject| async move {
        let observation = subject.observe().await.unwrap();
        serde_json::from_value::<operator_tikv::facts::Facts>(observation.facts).unwrap()
    };
    let unreachable = facts(TikvSubject::new(TikvOptions::simulator(&sim.url())).unwrap()).await;
    for store in &unreachable.stores {
        let error = store.metrics_error.as_deref().unwrap_or_default();
        assert!(
            error.contains(".invalid:20180"),
            "names the address it tried: {error}"
        );
    }
    let rewritten = facts(
        TikvSubject::new(TikvOptions {
            status_rewrites: rewrites,
            ..TikvOptions::simulator(&sim.url())
        })
        .unwrap(),
    )
    .await;
    for store in &rewritten.stores {
        assert!(store.metrics_error.is_none(), "{store:?}");
        assert_eq!(store.metrics.as_ref().unwrap().regions, Some(300));
    }
}

#[tokio::test]
async fn an_operator_pd_accepts_but_cannot_carry_out_fails_verification() {
    let rig = rig().await;
    rig.until_healthy(Duration::from_secs(10)).await;
    let request = |action: &str, params: Value| ActionRequest {
        action: action.into(),
        params: serde_json::from_value(params).unwrap(),
    };
    let moved = rig
        .subject
        .execute(
            &request("transfer_leader", json!({ "region": 2, "to_store": 3 })),
            &rig.target,
        )
        .await
        .unwrap();
    assert!(
        moved
            .summary
            .contains("verified through PD: region 2 led from store-3"),
        "{}",
        moved.summary
    );
    // PD accepts a transfer to a store holding a voter even when that store is dead; the
    // leader cannot move there, and the action says so instead of claiming success.
    chaos(&rig, "kill_store", json!({ "store": "store-1" })).await;
    let stuck = rig
        .subject
        .execute(
            &request("transfer_leader", json!({ "region": 4, "to_store": 1 })),
            &rig.target,
        )
        .await
        .unwrap_err();
    assert!(
        stuck
            .to_string()
            .contains("PD does not show region 4 led from store-1 after 2 s"),
        "{stuck}"
    );
}

/// Leaders evicted from a store on someone else's request are away on purpose: the runbook's
/// leader-skew cause is refuted and the rebalance's premise fails, while an eviction of
/// operator-tui's own (a drain) is told apart.
#[tokio::test]
async fn someone_elses_leader_eviction_refutes_skew_and_fails_the_rebalance_premise() {
    let rig = rig().await;
    rig.until_healthy(Duration::from_secs(10)).await;
    let pd = operator_tikv::pd::PdClient::new(vec![rig._sim.url()]).unwrap();
    pd.add_evict_leader(1).await.unwrap();
    let violation = rig
        .until_violation(
            "leader_imbalance",
            |v| v.evidence["cold_store"] == "store-1",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(
        violation.evidence["leaders_evicted_by_others"],
        json!(["store-1"])
    );

    let rig = &rig;
    let detail = async |store: &str| {
        let call = ToolCall {
            tool: "store_detail".into(),
            args: [("store".to_string(), json!(store))].into_iter().collect(),
        };
        rig.subject.call_tool(&call, &rig.target).await.unwrap()
    };
    assert_eq!(
        detail("store-1").await["leaders_evicted_by_someone_else"],
        true
    );
    assert_eq!(
        detail("store-1").await["leader_eviction"],
        "by_someone_else"
    );

    let runbook = rig.subject.runbook();
    let skew = runbook
        .entry("leader_imbalance")
        .and_then(|e| e.hypotheses.iter().find(|h| h.root_cause == "leader_skew"))
        .expect("the runbook explains leader skew");
    let mut refuted_by = None;
    for check in skew
        .evidence
        .iter()
        .filter(|c| c.role == EvidenceRole::Required)
    {
        let call = ToolCall {
            tool: check.tool.clone(),
            args: fill(&check.args, &violation),
        };
        let answer = rig.subject.call_tool(&call, &rig.target).await.unwrap();
        if !check.expect.holds(answer.pointer(&check.pointer)) {
            refuted_by = Some(check.description.clone());
        }
    }
    assert_eq!(
        refuted_by.as_deref(),
        Some("nobody else has PD evicting leaders from the coldest store")
    );

    let rebalance = rig
        .subject
        .actions()
        .into_iter()
        .find(|a| a.name == "rebalance_leaders")
        .unwrap();
    let premise_holds = async || {
        let check = &rebalance.premises[0].any_of[0];
        let call = ToolCall {
            tool: check.tool.clone(),
            args: check.args.clone(),
        };
        let answer = rig.subject.call_tool(&call, &rig.target).await.unwrap();
        check.expect.holds(answer.pointer(&check.pointer))
    };
    assert!(
        !premise_holds().await,
        "rebalancing would fight the eviction"
    );

    // Their eviction lifted and ours added: ours is not someone else's.
    pd.remove_evict_leader(1).await.unwrap();
    let drain = ActionRequest {
        action: "drain_store".into(),
        params: [("store".to_string(), json!("store-2"))]
            .into_iter()
            .collect(),
    };
    rig.subject.execute(&drain, &rig.target).await.unwrap();
    rig.violations().await;
    assert_eq!(detail("store-2").await["leader_eviction"], "by_operator");
    assert_eq!(
        detail("store-2").await["leaders_evicted_by_someone_else"],
        false
    );
    assert!(premise_holds().await);
}

/// PD's own schedulers do PD's work: a rebalance waits while balance-leader evens the leaders
/// out and says so, and a slow store whose leaders PD's evict-slow-store moves away is told
/// apart (PD evicts; a drain or a rebalance would duplicate it).
#[tokio::test]
async fn a_rebalance_leaves_the_leaders_to_pd_while_pd_balances_them() {
    let rig = rig_with(SimConfig {
        regions: 60,
        balance_leader_every_ms: 100,
        ..SimConfig::default()
    })
    .await;
    rig.until_healthy(Duration::from_secs(10)).await;
    chaos(&rig, "hot_store", json!({ "store": "store-3" })).await;
    rig.until_broken("leader_imbalance", Duration::from_secs(10))
        .await;
    let request = ActionRequest {
        action: "rebalance_leaders".into(),
        params: [("store".to_string(), json!("store-3"))]
            .into_iter()
            .collect(),
    };
    let outcome = rig.subject.execute(&request, &rig.target).await.unwrap();
    assert!(
        outcome
            .summary
            .starts_with("PD's balance-leader-scheduler evened the leaders out"),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.summary.ends_with("moved nothing"),
        "{}",
        outcome.summary
    );

    rig.until_healthy(Duration::from_secs(10)).await;
    chaos(&rig, "slow_store", json!({ "store": "store-2" })).await;
    rig.until_broken("slow_store", Duration::from_secs(10))
        .await;
    let call = ToolCall {
        tool: "store_detail".into(),
        args: [("store".to_string(), json!("store-2"))]
            .into_iter()
            .collect(),
    };
    let detail = rig.subject.call_tool(&call, &rig.target).await.unwrap();
    assert_eq!(detail["leader_eviction"], "by_pd", "{detail}");
    assert_eq!(detail["leaders_evicted_by_someone_else"], true);
}

/// PD's operators in flight are part of what is seen: the leader imbalance counts those on the
/// hot store, and its store detail lists them in PD's words, so that a move already under way
/// is evidence and not a gap.
#[tokio::test]
async fn the_operators_pd_runs_are_seen_on_the_stores_they_move() {
    let rig = rig_with(SimConfig {
        regions: 60,
        balance_leader_every_ms: 100,
        // Long enough that every look meets a round's operators in flight.
        operator_ms: 5_000,
        ..SimConfig::default()
    })
    .await;
    rig.until_healthy(Duration::from_secs(10)).await;
    chaos(&rig, "hot_store", json!({ "store": "store-3" })).await;
    let imbalance = rig
        .until_violation(
            "leader_imbalance",
            |v| v.evidence["operators_in_flight"].as_u64() > Some(0),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(imbalance.evidence["store"], "store-3", "{imbalance:?}");
    let call = ToolCall {
        tool: "store_detail".into(),
        args: [("store".to_string(), json!("store-3"))]
            .into_iter()
            .collect(),
    };
    let detail = rig.subject.call_tool(&call, &rig.target).await.unwrap();
    let operators = detail["operators_in_flight"].as_array().unwrap();
    assert!(!operators.is_empty(), "{detail}");
    assert!(
        operators.iter().all(|op| op
            .as_str()
            .unwrap()
            .starts_with("balance-leader {transfer leader: store 3 to ")),
        "{operators:?}"
    );
}

/// Whether every premise of `action` holds for `params` on a fresh read, as the engine checks
/// them right before it runs the action.
async fn premises_hold(rig: &Rig, action: &str, params: Value) -> bool {
    rig.subject.observe().await.unwrap();
    let spec = rig
        .subject
        .actions()
        .into_iter()
        .find(|a| a.name == action)
        .unwrap();
    for premise in &spec.premises {
        let mut holds = false;
        for check in &premise.any_of {
            let args = fill_args(&check.args, &|name| {
                name.strip_prefix("param.")
                    .and_then(|p| params.get(p).cloned())
            });
            let call = ToolCall {
                tool: check.tool.clone(),
                args,
            };
            if let Ok(answer) = rig.subject.call_tool(&call, &rig.target).await {
                holds |= check.expect.holds(answer.pointer(&check.pointer));
            }
        }
        if !holds {
            return false;
        }
    }
    true
}

/// PD re-creates a Down store's replicas on a spare store; moving them by hand then would
/// duplicate PD's work, and transfer_peer's premise says so. Before that (Disconnected), the
/// minutes are the operator's.
#[tokio::test]
async fn moving_a_replica_off_a_down_store_is_left_to_pds_replica_checker() {
    let rig = rig_with(SimConfig {
        stores: 4,
        regions: 60,
        disconnect_after_ms: 1_000,
        peer_down_after_ms: 2_000,
        down_after_ms: 4_000,
        election_timeout_ms: 300,
        ..SimConfig::default()
    })
    .await;
    rig.until_healthy(Duration::from_secs(10)).await;
    let region = rig
        .subject
        .call_tool(
            &ToolCall {
                tool: "region_detail".into(),
                args: [("region".to_string(), json!(2))].into_iter().collect(),
            },
            &rig.target,
        )
        .await
        .unwrap();
    let stores: Vec<u64> = region["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap()[6..].parse().unwrap())
        .collect();
    let (from, spare) = (stores[0], (1..=4).find(|s| !stores.contains(s)).unwrap());
    let params = json!({ "region": 2, "from_store": from, "to_store": spare });
    rig.target
        .kill(&NodeId(format!("store-{from}")))
        .await
        .unwrap();
    rig.until_violation(
        "store_down",
        |v| v.target == format!("store-{from}") && v.severity == Severity::Warning,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        premises_hold(&rig, "transfer_peer", params.clone()).await,
        "Disconnected: the move is the operator's to make"
    );
    rig.until_violation(
        "store_down",
        |v| v.target == format!("store-{from}") && v.severity == Severity::Critical,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !premises_hold(&rig, "transfer_peer", params).await,
        "Down: PD's replica checker re-creates it"
    );
}
