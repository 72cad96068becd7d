//! TiKV's invariants, each a pure function over one observation's facts: stores disconnected or
//! down, regions under-replicated (and below quorum, its own critical case), leaders out of
//! balance, a slow store, PD without a leader, and the workload dropping.

use operator_protocol::{Severity, Violation};
use serde_json::json;

use crate::facts::{Facts, RegionBrief, StoreState};

pub const STORE_DOWN: &str = "store_down";
pub const REGION_UNDER_REPLICATED: &str = "region_under_replicated";
pub const REGION_BELOW_QUORUM: &str = "region_below_quorum";
pub const LEADER_IMBALANCE: &str = "leader_imbalance";
pub const SLOW_STORE: &str = "slow_store";
pub const PD_NO_LEADER: &str = "pd_no_leader";
pub const PD_MEMBER_DOWN: &str = "pd_member_down";
pub const WORKLOAD_DROP: &str = "workload_drop";
pub const STORE_LOW_SPACE: &str = "store_low_space";

#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// PD counts a store as slow from this slow_score on.
    pub slow_score: u64,
    /// Leader counts may differ by this many, or this share of the mean, whichever is larger.
    pub leader_spread: u64,
    pub leader_spread_ratio: f64,
    /// Below this share of the baseline, the workload has dropped.
    pub workload_floor: f64,
    /// A store using this share of its disk is low on space (PD's low-space-ratio).
    pub low_space_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            slow_score: 80,
            leader_spread: 10,
            leader_spread_ratio: 0.5,
            workload_floor: 0.5,
            low_space_ratio: 0.8,
        }
    }
}

pub fn all(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    if !facts.pd.reachable || facts.pd.leader.is_none() {
        // Without a PD leader nothing else PD says can be trusted: report that alone.
        return pd_no_leader(facts);
    }
    let mut out = store_down(facts);
    out.extend(pd_member_down(facts));
    out.extend(regions(facts));
    out.extend(leader_imbalance(facts, thresholds));
    out.extend(slow_store(facts, thresholds));
    out.extend(store_low_space(facts, thresholds));
    out.extend(workload_drop(facts, thresholds));
    out
}

pub fn pd_no_leader(facts: &Facts) -> Vec<Violation> {
    if facts.pd.reachable && facts.pd.leader.is_some() {
        return vec![];
    }
    let message = match &facts.pd.error {
        Some(e) if !facts.pd.reachable => format!("no PD member answers: {e}"),
        _ => "PD has no leader: no scheduling, no region changes".to_string(),
    };
    vec![Violation {
        invariant: PD_NO_LEADER.into(),
        severity: Severity::Critical,
        target: "pd".into(),
        message,
        evidence: json!({ "members": facts.pd.members, "reachable": facts.pd.reachable }),
    }]
}

/// A PD member that is unhealthy while PD still has a leader: the quorum holds, with less
/// margin (one more loss of three leaves no majority).
pub fn pd_member_down(facts: &Facts) -> Vec<Violation> {
    let total = facts.pd.members.len();
    let healthy = facts.pd.members.iter().filter(|m| m.healthy).count();
    facts
        .pd
        .members
        .iter()
        .filter(|m| !m.healthy)
        .map(|m| {
            let margin = if (healthy - 1) * 2 > total {
                "PD still has a majority to spare"
            } else {
                "one more loss leaves PD without a majority"
            };
            Violation {
                invariant: PD_MEMBER_DOWN.into(),
                severity: Severity::Warning,
                target: m.name.clone(),
                message: format!(
                    "PD member {} is unhealthy: {healthy} of {total} members serve; {margin}",
                    m.name
                ),
                evidence: json!({ "member": m.name, "healthy_members": healthy, "members": total }),
            }
        })
        .collect()
}

pub fn store_down(facts: &Facts) -> Vec<Violation> {
    facts
        .stores
        .iter()
        .filter(|s| s.state_name.is_silent())
        .map(|s| Violation {
            invariant: STORE_DOWN.into(),
            severity: if s.state_name == StoreState::Down {
                Severity::Critical
            } else {
                Severity::Warning
            },
            target: format!("store-{}", s.id),
            message: format!(
                "store {} ({}) is {}: PD gets no heartbeats from it",
                s.id, s.address, s.state_name
            ),
            // Whether its status server answers tells a dead process from a partition.
            evidence: json!({ "store_id": s.id, "state_name": s.state_name, "address": s.address, "status_server": s.metrics_error.as_deref().unwrap_or("answers") }),
        })
        .collect()
}

fn quorum(max_replicas: u64) -> u64 {
    max_replicas / 2 + 1
}

/// Live voters: peers minus the down ones.
fn live(r: &RegionBrief) -> u64 {
    r.peers.saturating_sub(r.down_peers)
}

/// One violation for regions missing replicas, one (critical) for regions that lost quorum; a
/// ticket per region would bury the screen when a store holding hundreds of them dies.
pub fn regions(facts: &Facts) -> Vec<Violation> {
    let needed = quorum(facts.max_replicas.max(1));
    let mut flagged: Vec<&RegionBrief> = facts
        .regions
        .miss_peer
        .iter()
        .chain(&facts.regions.down_peer)
        .collect();
    flagged.sort_by_key(|r| r.id);
    flagged.dedup_by_key(|r| r.id);
    let (lost, degraded): (Vec<&RegionBrief>, Vec<&RegionBrief>) =
        flagged.into_iter().partition(|r| live(r) < needed);
    let ids = |rs: &[&RegionBrief]| rs.iter().take(20).map(|r| r.id).collect::<Vec<_>>();
    // The store most of the flagged regions lost a replica on: the likely cause.
    let culprit = |rs: &[&RegionBrief]| {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for s in rs.iter().flat_map(|r| &r.down_stores) {
            *counts.entry(s.as_str()).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(s, _)| s.to_string())
    };
    let mut out = Vec::new();
    if !lost.is_empty() {
        out.push(Violation {
            invariant: REGION_BELOW_QUORUM.into(),
            severity: Severity::Critical,
            target: "regions".into(),
            message: format!(
                "{} region(s) have fewer than {needed} live replicas: they cannot serve writes",
                lost.len()
            ),
            evidence: json!({ "count": lost.len(), "regions": ids(&lost), "quorum": needed, "store": culprit(&lost) }),
        });
    }
    if !degraded.is_empty() {
        out.push(Violation {
            invariant: REGION_UNDER_REPLICATED.into(),
            severity: Severity::Warning,
            target: "regions".into(),
            message: format!("{} region(s) run with fewer than {} healthy replicas", degraded.len(), facts.max_replicas),
            evidence: json!({ "count": degraded.len(), "regions": ids(&degraded), "max_replicas": facts.max_replicas, "store": culprit(&degraded) }),
        });
    }
    out
}

pub fn leader_imbalance(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    let up: Vec<_> = facts
        .stores
        .iter()
        .filter(|s| s.state_name == StoreState::Up)
        .collect();
    if up.len() < 2 {
        return vec![];
    }
    let (most, least) = match (
        up.iter().max_by_key(|s| s.leader_count),
        up.iter().min_by_key(|s| s.leader_count),
    ) {
        (Some(a), Some(b)) => (a, b),
        _ => return vec![],
    };
    let mean = up.iter().map(|s| s.leader_count).sum::<u64>() as f64 / up.len() as f64;
    let allowed = (thresholds.leader_spread as f64).max(mean * thresholds.leader_spread_ratio);
    let spread = (most.leader_count - least.leader_count) as f64;
    if spread <= allowed {
        return vec![];
    }
    vec![Violation {
        invariant: LEADER_IMBALANCE.into(),
        severity: Severity::Warning,
        // One ticket for the cluster's balance: the hottest store changes as leaders move,
        // and a ticket per hottest store would run rebalances against each other.
        target: "leaders".into(),
        message: format!(
            "store {} leads {} regions, store {} only {} (mean {mean:.0})",
            most.id, most.leader_count, least.id, least.leader_count
        ),
        evidence: json!({ "store": format!("store-{}", most.id), "hot_store": most.id, "leaders": most.leader_count, "coldest_store": least.id, "cold_store": format!("store-{}", least.id), "coldest_leaders": least.leader_count, "mean": mean, "leaders_evicted_by_others": facts.pd.leaders_evicted_by_others, "operators_in_flight": facts.pd.operators_on(most.id).len() }),
    }]
}

/// A store whose slow score is high, as PD reports it or as the store's own metrics do
/// (whichever is worse); the Raft append latency goes in the evidence when it is known.
pub fn slow_store(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    facts
        .stores
        .iter()
        .filter_map(|s| {
            let own = s.metrics.as_ref().and_then(|m| m.slow_score);
            let pd = s.slow_score.map(|v| v as f64);
            Some((s, pd.into_iter().chain(own).reduce(f64::max)?))
        })
        .filter(|(_, score)| *score >= thresholds.slow_score as f64)
        .map(|(s, score)| {
            let append_ms = s.metrics.as_ref().and_then(|m| m.append_log_ms);
            let latency = append_ms
                .map(|ms| format!(", Raft log appends take {ms:.0} ms"))
                .unwrap_or_default();
            Violation {
                invariant: SLOW_STORE.into(),
                severity: Severity::Warning,
                target: format!("store-{}", s.id),
                message: format!(
                    "store {} reports slow score {score:.0} (slow from {}){latency}",
                    s.id, thresholds.slow_score
                ),
                evidence: json!({ "store_id": s.id, "slow_score": score, "append_log_ms": append_ms }),
            }
        })
        .collect()
}

/// A store whose disk is filling stops taking regions (PD's low-space-ratio) and, full,
/// stops writing: the cluster's room to heal a store's loss shrinks before anything fails.
pub fn store_low_space(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    facts
        .stores
        .iter()
        .filter(|s| !s.state_name.is_silent())
        .filter_map(|s| Some((s, s.disk_used_share()?)))
        .filter(|(_, used)| *used >= thresholds.low_space_ratio)
        .map(|(s, used)| {
            let gib = |bytes: Option<u64>| bytes.unwrap_or(0) as f64 / (1u64 << 30) as f64;
            Violation {
                invariant: STORE_LOW_SPACE.into(),
                severity: Severity::Warning,
                target: format!("store-{}", s.id),
                message: format!(
                    "store {} has used {:.0} % of its disk ({:.1} of {:.1} GiB left): PD moves no more regions onto it",
                    s.id,
                    used * 100.0,
                    gib(s.available_bytes),
                    gib(s.capacity_bytes)
                ),
                evidence: json!({ "store_id": s.id, "capacity_bytes": s.capacity_bytes, "available_bytes": s.available_bytes, "used_share": used }),
            }
        })
        .collect()
}

pub fn workload_drop(facts: &Facts, thresholds: &Thresholds) -> Vec<Violation> {
    let Some(baseline) = facts.workload.baseline_ops_per_sec.filter(|b| *b > 0.0) else {
        return vec![];
    };
    let Some(now) = facts.workload.ops_per_sec else {
        return vec![];
    };
    if now >= baseline * thresholds.workload_floor {
        return vec![];
    }
    vec![Violation {
        invariant: WORKLOAD_DROP.into(),
        severity: Severity::Warning,
        target: "workload".into(),
        message: format!("{now:.0} ops/s against a baseline of {baseline:.0}"),
        evidence: json!({ "ops_per_sec": now, "baseline_ops_per_sec": baseline }),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::*;

    /// A healthy 3-store cluster with 300 regions, as a PD v8.5 would report it.
    fn healthy() -> Facts {
        serde_json::from_str(include_str!("../fixtures/healthy_facts.json")).unwrap()
    }

    fn names(facts: &Facts) -> Vec<(String, String)> {
        all(facts, &Thresholds::default())
            .into_iter()
            .map(|v| (v.invariant, v.target))
            .collect()
    }

    #[test]
    fn a_store_that_used_most_of_its_disk_is_low_on_space_until_pd_knows_its_size() {
        let mut f = healthy();
        let store = &mut f.stores[1];
        store.capacity_bytes = Some(100 << 30);
        store.available_bytes = Some(15 << 30);
        let found = store_low_space(&f, &Thresholds::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].target, format!("store-{}", f.stores[1].id));
        assert!(found[0].message.contains("85 %"), "{}", found[0].message);
        assert!(found[0].message.contains("15.0 of 100.0 GiB left"));
        f.stores[1].available_bytes = Some(25 << 30);
        assert!(store_low_space(&f, &Thresholds::default()).is_empty());
        f.stores[1].capacity_bytes = None;
        f.stores[1].available_bytes = Some(0);
        assert!(
            store_low_space(&f, &Thresholds::default()).is_empty(),
            "before its first heartbeat PD knows no size"
        );
    }

    #[test]
    fn a_healthy_cluster_breaks_nothing() {
        assert!(names(&healthy()).is_empty());
    }

    #[test]
    fn a_silent_store_is_disconnected_then_down() {
        let mut f = healthy();
        f.stores[1].state_name = StoreState::Disconnected;
        let v = store_down(&f);
        assert_eq!(
            (v[0].target.as_str(), v[0].severity),
            ("store-4", Severity::Warning)
        );
        f.stores[1].state_name = StoreState::Down;
        assert_eq!(store_down(&f)[0].severity, Severity::Critical);
    }

    #[test]
    fn regions_missing_a_replica_are_under_replicated_and_losing_two_of_three_is_below_quorum() {
        let mut f = healthy();
        f.regions.down_peer = (1..=90)
            .map(|id| RegionBrief {
                id,
                peers: 3,
                down_peers: 1,
                has_leader: true,
                down_stores: vec!["store-5".into()],
            })
            .collect();
        f.regions.miss_peer = vec![RegionBrief {
            id: 500,
            peers: 3,
            down_peers: 2,
            has_leader: false,
            down_stores: vec![],
        }];
        let v = regions(&f);
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].invariant.as_str(), v[0].evidence["count"].as_u64()),
            (REGION_BELOW_QUORUM, Some(1))
        );
        assert_eq!(
            (v[1].invariant.as_str(), v[1].evidence["count"].as_u64()),
            (REGION_UNDER_REPLICATED, Some(90))
        );
        assert_eq!(
            v[1].evidence["regions"].as_array().unwrap().len(),
            20,
            "evidence stays bounded"
        );
    }

    #[test]
    fn leaders_piled_on_one_store_are_an_imbalance() {
        let mut f = healthy();
        f.stores[0].leader_count = 250;
        f.stores[1].leader_count = 30;
        f.stores[2].leader_count = 20;
        assert_eq!(names(&f), [(LEADER_IMBALANCE.into(), "leaders".into())]);
        assert_eq!(
            leader_imbalance(&f, &Thresholds::default())[0].evidence["store"],
            "store-1"
        );
    }

    #[test]
    fn a_slow_score_of_80_is_a_slow_store() {
        let mut f = healthy();
        f.stores[2].slow_score = Some(95);
        assert_eq!(names(&f), [(SLOW_STORE.into(), "store-5".into())]);
    }

    #[test]
    fn a_pd_member_down_under_a_leader_is_a_warning_with_the_margin_left() {
        let mut f = healthy();
        f.pd.members[1].healthy = false;
        let violations = all(&f, &Thresholds::default());
        assert_eq!(violations.len(), 1, "{violations:?}");
        let v = &violations[0];
        assert_eq!(
            (v.invariant.as_str(), v.target.as_str()),
            (PD_MEMBER_DOWN, f.pd.members[1].name.as_str())
        );
        assert_eq!(v.severity, Severity::Warning);
        assert!(
            v.message.contains("2 of 3 members serve; one more loss"),
            "{}",
            v.message
        );
    }

    #[test]
    fn pd_without_a_leader_is_reported_alone() {
        let mut f = healthy();
        f.pd.leader = None;
        f.stores[1].state_name = StoreState::Down;
        assert_eq!(names(&f), [(PD_NO_LEADER.into(), "pd".into())]);
    }

    #[test]
    fn half_the_usual_traffic_is_a_workload_drop() {
        let mut f = healthy();
        f.workload.ops_per_sec = Some(400.0);
        assert_eq!(names(&f), [(WORKLOAD_DROP.into(), "workload".into())]);
        f.workload.baseline_ops_per_sec = None;
        assert!(names(&f).is_empty(), "no baseline yet, no judgement");
    }
}
