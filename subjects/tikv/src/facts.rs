//! What one observation of a TiKV cluster holds for its invariants: PD's members and leader,
//! every store as PD reports it and as its own metrics report it, the regions PD's checks
//! flag, and the workload.

use serde::{Deserialize, Serialize};

pub use crate::pd::StoreState;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub pd: PdFacts,
    pub stores: Vec<StoreFacts>,
    /// PD's max-replicas: the replicas every region should have.
    pub max_replicas: u64,
    pub regions: RegionFacts,
    pub workload: WorkloadFacts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PdFacts {
    pub reachable: bool,
    pub leader: Option<String>,
    pub members: Vec<PdMember>,
    pub error: Option<String>,
    /// `pd_cluster_status` summed by type, from PD's /metrics (empty when it cannot be read).
    #[serde(default)]
    pub cluster_status: std::collections::BTreeMap<String, f64>,
    /// The schedulers PD runs, by name.
    #[serde(default)]
    pub schedulers: Vec<String>,
    /// Stores whose leaders PD moves away on someone else's behalf: an evict-leader-scheduler
    /// someone other than operator-tui asked for (maintenance, an upgrade script), or PD's own
    /// evict-slow-store-scheduler. Not a problem to undo, nor work to duplicate.
    #[serde(default)]
    pub leaders_evicted_by_others: Vec<String>,
    /// The operators PD has in flight, in its own words ("balance-leader {transfer leader:
    /// store 1 to 2} (kind:leader, region:2(3, 5), ...)"): moves under way, its schedulers'
    /// or someone's, that an action on the same stores would race.
    #[serde(default)]
    pub operators: Vec<String>,
    /// What could not be read on this observation (a region check PD refused, its /metrics),
    /// so that a gap is visible rather than read as "nothing wrong".
    #[serde(default)]
    pub read_errors: Vec<String>,
}

impl PdFacts {
    /// The operators in flight that move something on `store`.
    pub fn operators_on(&self, store: u64) -> Vec<&str> {
        self.operators
            .iter()
            .filter(|op| operator_stores(op).contains(&store))
            .map(String::as_str)
            .collect()
    }
}

/// The stores an operator's text names: "store 1" and "store [3]" in its brief and its steps
/// ("transfer leader from store 1 to store 2"). PD prints operators with Go's `String()`, a
/// format of its own that no parser crate knows; the store ids are all that is read from it.
pub fn operator_stores(operator: &str) -> std::collections::BTreeSet<u64> {
    operator
        .match_indices("store ")
        .filter_map(|(at, word)| {
            let rest = operator[at + word.len()..].trim_start_matches('[');
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..digits].parse().ok()
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PdMember {
    pub name: String,
    pub healthy: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreFacts {
    pub id: u64,
    pub address: String,
    /// PD's state_name: Up, Disconnected, Down, Offline, Tombstone.
    pub state_name: StoreState,
    pub leader_count: u64,
    pub region_count: u64,
    pub slow_score: Option<u64>,
    /// Its status server, as PD reports it (absent when TiKV advertises none).
    #[serde(default)]
    pub status_address: String,
    /// PD's evict-leader-scheduler moves this store's leaders away, and who asked for it.
    #[serde(default)]
    pub leader_eviction: Option<LeaderEviction>,
    /// What the store's own metrics say, when they could be read.
    #[serde(default)]
    pub metrics: Option<StoreMetrics>,
    /// Why they could not: the status server refused, or Prometheus has no series for it.
    #[serde(default)]
    pub metrics_error: Option<String>,
    /// Its disk as PD reports it, in bytes; `None` before its first heartbeat ("0B").
    #[serde(default)]
    pub capacity_bytes: Option<u64>,
    #[serde(default)]
    pub available_bytes: Option<u64>,
}

impl StoreFacts {
    /// The share of its disk in use, when PD knows its size.
    pub fn disk_used_share(&self) -> Option<f64> {
        let capacity = self.capacity_bytes.filter(|c| *c > 0)? as f64;
        Some(1.0 - self.available_bytes? as f64 / capacity)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderEviction {
    /// operator-tui added it (a drain, or a rebalance under way).
    ByOperator,
    /// Someone else did: PD runs it on purpose.
    BySomeoneElse,
    /// PD's own evict-slow-store-scheduler: the store is slow, and PD is already moving its
    /// leaders away.
    ByPd,
}

/// A store's own view, from its status server's `/metrics` (or Prometheus's copy of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreMetrics {
    pub leaders: Option<u64>,
    pub regions: Option<u64>,
    /// Regions on this store whose leader has been missing.
    pub leader_missing: Option<u64>,
    pub slow_score: Option<f64>,
    /// Storage commands (raw get/put, ...) served per second, since the previous reading.
    pub commands_per_sec: Option<f64>,
    /// The mean Raft log append, in milliseconds, since the previous reading.
    pub append_log_ms: Option<f64>,
}

/// A region PD flags, with what matters for quorum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionBrief {
    pub id: u64,
    /// Stores holding the down peers ("store-1").
    #[serde(default)]
    pub down_stores: Vec<String>,
    pub peers: u64,
    /// Peers on stores that are down, or reported down by the leader.
    pub down_peers: u64,
    pub has_leader: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionFacts {
    pub miss_peer: Vec<RegionBrief>,
    pub down_peer: Vec<RegionBrief>,
    pub pending_peer: Vec<RegionBrief>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadFacts {
    /// Storage commands served per second; None when no rate could be read (the first
    /// reading, or metrics that failed), which is not the same as zero.
    pub ops_per_sec: Option<f64>,
    /// The recent normal rate (a median over the last minute), once known.
    pub baseline_ops_per_sec: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_stores_are_read_from_its_brief_and_steps() {
        let balance = "balance-leader {transfer leader: store 1 to 2} (kind:leader, region:2(3, 5), createAt:2026-08-21 10:00:00.1 +0000 UTC m=+100.5, startAt:2026-08-21 10:00:00.1 +0000 UTC m=+100.5, currentStep:0, size:1, steps:[0:{transfer leader from store 1 to store 2}], timeout:[1m0s])";
        assert_eq!(operator_stores(balance), [1, 2].into());
        let add = "admin-add-peer {add peer: store [3]} (kind:admin,region, region:7(1, 1), steps:[0:{add learner peer 40 on store 3}, 1:{promote learner peer 40 on store 3 to voter}])";
        assert_eq!(operator_stores(add), [3].into());
        assert!(operator_stores("no stores here").is_empty());
        let pd = PdFacts {
            operators: vec![balance.into(), add.into()],
            ..Default::default()
        };
        assert_eq!(pd.operators_on(2), vec![balance]);
        assert_eq!(pd.operators_on(3), vec![add]);
        assert!(pd.operators_on(4).is_empty());
    }
}
