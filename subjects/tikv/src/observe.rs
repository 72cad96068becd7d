//! Observing TiKV: PD's stores, members, region checks and schedulers, and the stores' own
//! metrics, read into the facts the invariants check, and the observation the engine sees.

use std::collections::BTreeMap;
use std::time::Duration;

use operator_protocol::*;
use serde_json::json;
// Tokio's instant: on a simulated clock, freshness follows simulated time.
use tokio::time::Instant;

use crate::facts::*;
use crate::pd::{RegionCheck, RegionInfo, parse_byte_size};
use crate::subject::*;
use crate::telemetry::StoreAddress;

/// How long PD's region check lists are reused while nothing says they changed.
const REGION_LISTS_FRESH: Duration = Duration::from_secs(1);

/// What PD's region checks were last listed under.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RegionListsKey {
    /// `pd_regions_status` by type; empty when PD's metrics were not read (then the lists
    /// are read every time).
    counts: BTreeMap<String, f64>,
    /// Each store's state and whether its status server answered.
    stores: Vec<(u64, StoreState, bool)>,
    max_replicas: u64,
}

impl RegionListsKey {
    fn of(facts: &Facts, counts: BTreeMap<String, f64>) -> Self {
        Self {
            counts,
            stores: facts
                .stores
                .iter()
                .map(|s| (s.id, s.state_name.clone(), s.metrics_error.is_none()))
                .collect(),
            max_replicas: facts.max_replicas,
        }
    }
}

pub(crate) struct RegionLists {
    key: RegionListsKey,
    listed_at: Instant,
    regions: RegionFacts,
}

impl RegionLists {
    fn still_good_for(&self, key: &RegionListsKey) -> bool {
        !key.counts.is_empty() && self.key == *key && self.listed_at.elapsed() < REGION_LISTS_FRESH
    }
}

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

    /// PD's region checks, listed again only when something that moves regions between them
    /// changed (their counts in PD's metrics, a store's state or whether its status server
    /// answers, the replica setting) or the last listing is `REGION_LISTS_FRESH` old. A store
    /// holding 30,000 regions that dies would otherwise have PD list them all four times a
    /// second, and the counts say as soon as the lists would.
    async fn region_lists(&self, key: RegionListsKey, pd: &mut PdFacts) -> RegionFacts {
        {
            let last = self.region_lists.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(last) = last.as_ref().filter(|l| l.still_good_for(&key)) {
                return last.regions.clone();
            }
        }
        let errors_before = pd.read_errors.len();
        let regions = RegionFacts {
            miss_peer: self.region_check(RegionCheck::MissPeer, pd).await,
            down_peer: self.region_check(RegionCheck::DownPeer, pd).await,
            pending_peer: self.region_check(RegionCheck::PendingPeer, pd).await,
        };
        // A listing PD refused is not kept: the next look asks again.
        let complete = pd.read_errors.len() == errors_before;
        *self.region_lists.lock().unwrap_or_else(|p| p.into_inner()) =
            complete.then(|| RegionLists {
                key,
                listed_at: Instant::now(),
                regions: regions.clone(),
            });
        regions
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
                    capacity_bytes: parse_byte_size(&s.status.capacity).filter(|c| *c > 0),
                    available_bytes: parse_byte_size(&s.status.available),
                    ..Default::default()
                })
                .collect();
        }
        self.read_schedulers(&mut facts).await;
        match self.pd.operators().await {
            Ok(operators) => facts.pd.operators = operators,
            Err(e) => facts.pd.read_errors.push(format!("operators: {e}")),
        }
        facts.max_replicas = self.pd.max_replicas().await.unwrap_or(3);
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
        let listed_under = RegionListsKey::of(&facts, readings.regions_status);
        facts.regions = self.region_lists(listed_under, &mut facts.pd).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(miss_peer: f64, store_answers: bool) -> RegionListsKey {
        RegionListsKey {
            counts: [("miss-peer-region-count".to_string(), miss_peer)].into(),
            stores: vec![(1, StoreState::Up, store_answers)],
            max_replicas: 3,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn region_lists_are_kept_only_while_nothing_says_they_changed() {
        let lists = RegionLists {
            key: key(0.0, true),
            listed_at: Instant::now(),
            regions: RegionFacts::default(),
        };
        assert!(lists.still_good_for(&key(0.0, true)));
        assert!(!lists.still_good_for(&key(12.0, true)), "a count changed");
        assert!(
            !lists.still_good_for(&key(0.0, false)),
            "a store stopped answering"
        );
        let unread = RegionListsKey {
            counts: BTreeMap::new(),
            ..key(0.0, true)
        };
        let listed_without_counts = RegionLists {
            key: unread.clone(),
            ..lists
        };
        assert!(
            !listed_without_counts.still_good_for(&unread),
            "without PD's counts the lists are read every time"
        );
        let lists = RegionLists {
            key: key(0.0, true),
            listed_at: Instant::now(),
            regions: RegionFacts::default(),
        };
        tokio::time::advance(REGION_LISTS_FRESH).await;
        assert!(!lists.still_good_for(&key(0.0, true)), "too old");
    }
}
