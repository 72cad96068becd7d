//! Observing TiKV: PD's stores, members, region checks and schedulers, and the stores' own
//! metrics, read into the facts the invariants check, and the observation the engine sees.

use operator_protocol::*;
use serde_json::json;

use crate::facts::*;
use crate::pd::{RegionCheck, RegionInfo};
use crate::subject::*;
use crate::telemetry::StoreAddress;

impl TikvSubject {
    pub(crate) fn brief(region: &RegionInfo) -> RegionBrief {
        RegionBrief {
            id: region.id,
            peers: region.peers.len() as u64,
            down_peers: region.down_peers.len() as u64,
            has_leader: region.leader.store_id != 0,
            down_stores: region
                .down_peers
                .iter()
                .map(|d| store_node(d.peer.store_id))
                .collect(),
        }
    }

    /// A region check's regions; a check PD refuses is recorded, not read as "no regions".
    pub(crate) async fn region_check(
        &self,
        check: RegionCheck,
        pd: &mut PdFacts,
    ) -> Vec<RegionBrief> {
        match self.pd.regions_check(check).await {
            Ok(regions) => regions.iter().map(Self::brief).collect(),
            Err(e) => {
                pd.read_errors.push(format!("region check {check:?}: {e}"));
                Vec::new()
            }
        }
    }

    pub(crate) async fn facts(&self) -> Facts {
        let mut facts = Facts::default();
        match self.pd.health().await {
            Ok(health) => {
                facts.pd.reachable = true;
                facts.pd.members = health
                    .iter()
                    .map(|h| PdMember {
                        name: h.name.clone(),
                        healthy: h.health,
                    })
                    .collect();
            }
            Err(e) => {
                facts.pd.error = Some(e.to_string());
                return facts;
            }
        }
        facts.pd.leader = self.pd.leader().await.ok().flatten().map(|m| m.name);
        if facts.pd.leader.is_none() {
            return facts;
        }
        if let Ok(stores) = self.pd.stores().await {
            facts.stores = stores
                .stores
                .iter()
                .map(|s| StoreFacts {
                    id: s.store.id,
                    address: s.store.address.clone(),
                    state_name: s.store.state_name.clone(),
                    leader_count: s.status.leader_count,
                    region_count: s.status.region_count,
                    slow_score: s.status.slow_score,
                    status_address: s.store.status_address.clone().unwrap_or_default(),
                    ..Default::default()
                })
                .collect();
        }
        self.read_schedulers(&mut facts).await;
        facts.max_replicas = self.pd.max_replicas().await.unwrap_or(3);
        facts.regions.miss_peer = self
            .region_check(RegionCheck::MissPeer, &mut facts.pd)
            .await;
        facts.regions.down_peer = self
            .region_check(RegionCheck::DownPeer, &mut facts.pd)
            .await;
        facts.regions.pending_peer = self
            .region_check(RegionCheck::PendingPeer, &mut facts.pd)
            .await;
        let addresses: Vec<StoreAddress> = facts
            .stores
            .iter()
            .map(|s| StoreAddress {
                id: s.id,
                status_address: s.status_address.clone(),
            })
            .collect();
        let mut readings = self.telemetry.read(&addresses).await;
        facts.pd.cluster_status = readings.cluster_status;
        facts.pd.read_errors.append(&mut readings.errors);
        for store in &mut facts.stores {
            match readings.stores.remove(&store.id) {
                Some(Ok(metrics)) => store.metrics = Some(metrics),
                Some(Err(e)) => store.metrics_error = Some(e),
                None => {}
            }
        }
        let ops = readings.ops_per_sec;
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted: Vec<f64> = history.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        facts.workload = WorkloadFacts {
            ops_per_sec: ops,
            baseline_ops_per_sec: (sorted.len() >= 8).then(|| sorted[sorted.len() / 2]),
        };
        history.extend(ops);
        while history.len() > 240 {
            history.pop_front();
        }
        facts
    }

    pub(crate) fn observation(at_ms: u64, facts: &Facts) -> Observation {
        let mut nodes: Vec<NodeStatus> = facts
            .stores
            .iter()
            .map(|s| NodeStatus {
                id: NodeId(store_node(s.id)),
                role: "store".into(),
                health: match s.state_name {
                    StoreState::Up if s.slow_score.unwrap_or(1) >= 80 => Health::Degraded,
                    StoreState::Up => Health::Healthy,
                    StoreState::Disconnected | StoreState::Offline => Health::Degraded,
                    _ => Health::Down,
                },
                // PD's counts, and from the store's own metrics how long its Raft log
                // appends take (what a slow store shows first).
                facts: [
                    ("leaders".to_string(), json!(s.leader_count)),
                    ("regions".to_string(), json!(s.region_count)),
                    (
                        "append_ms".to_string(),
                        json!(
                            s.metrics
                                .as_ref()
                                .and_then(|m| m.append_log_ms)
                                .map(f64::round)
                        ),
                    ),
                ]
                .into_iter()
                // A scheduler someone else added is their maintenance: the store is theirs.
                .chain(
                    (s.leader_eviction == Some(LeaderEviction::BySomeoneElse)).then(|| {
                        (
                            SOMEONE_AT_WORK.to_string(),
                            json!("leaders evicted by a scheduler someone else added"),
                        )
                    }),
                )
                .collect(),
            })
            .collect();
        nodes.extend(facts.pd.members.iter().map(|m| {
            NodeStatus {
                id: NodeId(m.name.clone()),
                role: "pd".into(),
                health: if m.healthy {
                    Health::Healthy
                } else {
                    Health::Down
                },
                facts: [(
                    "leader".to_string(),
                    json!(facts.pd.leader.as_deref() == Some(m.name.as_str())),
                )]
                .into_iter()
                .collect(),
            }
        }));
        Observation {
            at_ms,
            nodes,
            workload: facts
                .workload
                .ops_per_sec
                .map(|ops_per_sec| WorkloadSample {
                    ops_per_sec,
                    ..Default::default()
                }),
            facts: serde_json::to_value(facts).unwrap_or_default(),
        }
    }

    /// PD's schedulers, and whose each store's leader eviction is.
    pub(crate) async fn read_schedulers(&self, facts: &mut Facts) {
        match self.pd.schedulers().await {
            Ok(names) => facts.pd.schedulers = names,
            Err(e) => {
                facts.pd.read_errors.push(format!("schedulers: {e}"));
                return;
            }
        }
        let runs = |name: &str| facts.pd.schedulers.iter().any(|n| n == name);
        let slow_evicted = if runs("evict-slow-store-scheduler") {
            self.pd.evict_slow_stores().await
        } else {
            Ok(Vec::new())
        };
        let evicted = if runs("evict-leader-scheduler") {
            self.pd.evict_leader_stores().await
        } else {
            Ok(Vec::new())
        };
        let mut unread = |name: &str, result: Result<Vec<u64>, crate::pd::PdError>| {
            result.unwrap_or_else(|e| {
                facts.pd.read_errors.push(format!("{name}: {e}"));
                Vec::new()
            })
        };
        let slow_evicted = unread("evict-slow-store-scheduler", slow_evicted);
        let evicted = unread("evict-leader-scheduler", evicted);
        let ours = self.own_evictions_mut().clone();
        for store in &mut facts.stores {
            store.leader_eviction = if evicted.contains(&store.id) {
                Some(if ours.contains(&store.id) {
                    LeaderEviction::ByOperator
                } else {
                    LeaderEviction::BySomeoneElse
                })
            } else if slow_evicted.contains(&store.id) {
                Some(LeaderEviction::ByPd)
            } else {
                None
            };
        }
        facts.pd.leaders_evicted_by_others = facts
            .stores
            .iter()
            .filter(|s| {
                matches!(
                    s.leader_eviction,
                    Some(LeaderEviction::BySomeoneElse | LeaderEviction::ByPd)
                )
            })
            .map(|s| store_node(s.id))
            .collect();
    }
}
