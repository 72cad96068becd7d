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
    /// What could not be read on this observation (a region check PD refused, its /metrics),
    /// so that a gap is visible rather than read as "nothing wrong".
    #[serde(default)]
    pub read_errors: Vec<String>,
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
