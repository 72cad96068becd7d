//! The world as an outside observer samples it, for the generated eval's harm oracle: what a
//! cluster keeps (counts), what protects it (limits, windows, schedulers), which processes run
//! and how much of the service answers. Read directly from the cluster, never through the
//! engine's observation, so the oracle judges what happened, not what the operator believed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Millis;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct World {
    pub at_ms: Millis,
    /// Counts the cluster keeps, by identity (a rate limiter's window counter by its key).
    pub counts: BTreeMap<String, Count>,
    /// Settings that protect something, by name ("limit:abuser-0", "scheduler:evict-leader-1").
    pub protections: BTreeMap<String, Protection>,
    /// Every process of the cluster, by node name.
    pub processes: BTreeMap<String, ProcessSeen>,
    /// How much of the service answers, 0.0 to 1.0.
    pub serving: f64,
    /// Holders whose counts could not be read in this sample (a stopped Redis): their counts
    /// are unknown here, not gone.
    #[serde(default)]
    pub unreadable: Vec<String>,
    /// When each holder's counts were last read in this sample, where that is later than
    /// `at_ms` (a sample probes the nodes first, and a paused one holds it up for seconds): a
    /// count gone by then may simply have ended.
    #[serde(default)]
    pub counts_read_ms: BTreeMap<String, Millis>,
}

impl World {
    /// When `holder`'s counts were read in this sample.
    pub fn counts_read_at(&self, holder: &str) -> Millis {
        self.counts_read_ms
            .get(holder)
            .copied()
            .unwrap_or(self.at_ms)
    }
}

/// One count, and who holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub value: u64,
    /// The process that holds it ("redis"): when that process has exited, its counts are
    /// already lost, whatever happens next.
    pub holder: String,
    /// When the count ends by itself (its window's end); gone after that is not lost.
    pub expires_at_ms: Option<Millis>,
    /// What the count should be by the cluster's own accounting (the units the nodes were
    /// told they allowed), when known: a count above it holds nothing worth keeping.
    pub backed: Option<u64>,
}

impl Count {
    /// Units that would be lost if this count fell to `to`: what it held that was backed.
    pub fn worth(&self) -> u64 {
        self.backed.map_or(self.value, |b| b.min(self.value))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Looser {
    /// A higher value protects less (a limit).
    Higher,
    /// A lower value protects less (a window; a scheduler present as 1, removed as 0).
    Lower,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protection {
    pub value: f64,
    pub looser: Looser,
}

impl Protection {
    /// Whether `after` protects less than `self`; a protection taken away protects nothing.
    pub fn loosened_to(&self, after: Option<&Protection>) -> bool {
        let Some(after) = after else { return true };
        match self.looser {
            Looser::Higher => after.value > self.value,
            Looser::Lower => after.value < self.value,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSeen {
    pub pid: Option<u32>,
    /// "running", "stopped" (SIGSTOP), "exited", "absent".
    pub state: String,
    /// It answers its clients (a node's /health, Redis's PING).
    pub serving: bool,
}

impl ProcessSeen {
    /// Alive, whether serving or stopped: what it holds in memory still exists.
    pub fn alive(&self) -> bool {
        matches!(self.state.as_str(), "running" | "stopped")
    }
}
