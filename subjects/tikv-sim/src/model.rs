//! The simulated cluster's state and how it moves: stores heartbeat while alive, go
//! Disconnected and then Down when silent, regions elect a new leader among live peers after
//! an election timeout, operators and evict-leader scheduling take effect over ticks, and the
//! workload dips while regions have no leader. Pure: time comes in as `now_ms`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub stores: u64,
    pub regions: u64,
    pub pd_members: u64,
    pub max_replicas: u64,
    /// Silent this long → Disconnected (PD: 20 s; shorter for demos).
    pub disconnect_after_ms: u64,
    /// Silent this long → its region leaders report its peers down (TiKV's
    /// max-peer-down-duration, 10 min; shorter for demos).
    pub peer_down_after_ms: u64,
    /// Silent this long → Down (PD's max-store-down-time, 30 min; shorter for demos).
    pub down_after_ms: u64,
    /// A region without a live leader elects one after this long.
    pub election_timeout_ms: u64,
    /// Requests per second the healthy cluster serves.
    pub base_qps: f64,
    /// Stores are processes of their own (`operator-tui simulate-store`, one per container):
    /// a store is alive while its heartbeats arrive, not by the simulator's say-so.
    pub external_stores: bool,
    /// How often PD's balance-leader-scheduler moves a batch of leaders while the counts are
    /// uneven (PD schedules every few seconds and waits for each transfer to be confirmed by
    /// a region heartbeat; rebalancing a restarted store takes minutes).
    pub balance_leader_every_ms: u64,
    /// How long an operator runs, from its creation until the region's heartbeat confirms its
    /// last step: until then PD lists it in flight and refuses another on the region.
    pub operator_ms: u64,
}

/// An external store whose heartbeats stop for this long has stopped running.
pub const EXTERNAL_SILENCE_MS: u64 = 1_000;

/// PD's evict-leader-scheduler default batch: leaders moved per store per scheduling round.
pub const EVICT_LEADER_BATCH: usize = 3;

/// Down peers PD's replica checker replaces a tick (PD's replica-schedule-limit is 64 in
/// flight; the simulator takes a few at a time so that the refill is seen to happen).
const REPLICA_REFILL_BATCH: usize = 8;

/// PD's balance-leader-scheduler default batch: leaders moved per scheduling round.
pub const BALANCE_LEADER_BATCH: usize = 4;

pub const BALANCE_LEADER: &str = "balance-leader-scheduler";
pub const EVICT_SLOW_STORE: &str = "evict-slow-store-scheduler";

/// The schedulers PD v8.5 runs from the start. The simulator models balance-leader and
/// evict-slow-store; the region and hot-region schedulers are listed, as PD lists them, and do
/// nothing here (every store holds every region).
pub const DEFAULT_SCHEDULERS: [&str; 4] = [
    "balance-hot-region-scheduler",
    BALANCE_LEADER,
    "balance-region-scheduler",
    EVICT_SLOW_STORE,
];

impl SimConfig {
    /// PD's timings compressed for a live demo, in the same order: a store is Disconnected
    /// after 3 s, its peers are down after 6 s and it is Down after 10 s (PD and TiKV: 20 s,
    /// 10 min and 30 min), so a chapter takes seconds.
    pub fn demo() -> Self {
        Self {
            disconnect_after_ms: 3_000,
            peer_down_after_ms: 6_000,
            down_after_ms: 10_000,
            election_timeout_ms: 1_000,
            balance_leader_every_ms: 500,
            operator_ms: 200,
            ..Self::default()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            stores: 3,
            regions: 300,
            pd_members: 3,
            max_replicas: 3,
            disconnect_after_ms: 20_000,
            peer_down_after_ms: 10 * 60_000,
            down_after_ms: 30 * 60_000,
            election_timeout_ms: 2_000,
            base_qps: 1200.0,
            external_stores: false,
            balance_leader_every_ms: 5_000,
            operator_ms: 300,
        }
    }
}

/// Each store's leaders and region peers, and how many regions have a leader.
#[derive(Debug, Default)]
pub struct Load {
    /// By store, in the order first met: a cluster has a handful of stores, and a short list
    /// searched in place is faster to count into than a map.
    stores: Vec<StoreLoad>,
    served: usize,
}

#[derive(Debug, Default)]
struct StoreLoad {
    id: u64,
    leaders: u64,
    peers: u64,
}

impl Load {
    fn of(&mut self, store: u64) -> &mut StoreLoad {
        let at = match self.stores.iter().position(|s| s.id == store) {
            Some(at) => at,
            None => {
                self.stores.push(StoreLoad {
                    id: store,
                    ..StoreLoad::default()
                });
                self.stores.len() - 1
            }
        };
        &mut self.stores[at]
    }

    fn get(&self, store: u64) -> Option<&StoreLoad> {
        self.stores.iter().find(|s| s.id == store)
    }

    pub fn leaders_on(&self, store: u64) -> u64 {
        self.get(store).map_or(0, |s| s.leaders)
    }

    pub fn peers_on(&self, store: u64) -> u64 {
        self.get(store).map_or(0, |s| s.peers)
    }
}

/// PD's `state_name` of a store, as the simulator computes it (the names PD serves).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoreState {
    #[default]
    Up,
    Disconnected,
    Down,
    Offline,
}

impl StoreState {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::Up => "Up",
            StoreState::Disconnected => "Disconnected",
            StoreState::Down => "Down",
            StoreState::Offline => "Offline",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimStore {
    pub id: u64,
    pub alive: bool,
    /// Its process stalls (the target's pause): a restart clears it.
    pub slow: bool,
    /// Its disk is slow, a fault of the machine: every process on it stalls, a restarted
    /// one included.
    pub disk_slow: bool,
    /// Since when it is slow: its slow score climbs from then.
    pub slow_since_ms: u64,
    pub offline: bool,
    pub start_ms: u64,
    /// A restarted store catches up on its regions' logs until then, and does not campaign
    /// meanwhile (0: it has run since the cluster began).
    pub catching_up_until_ms: u64,
    pub last_heartbeat_ms: u64,
    /// The leader count the store's last heartbeat carried: what PD reports for it.
    pub reported_leaders: u64,
    /// The process's own counters, as its status server exports them; a restart zeroes them.
    pub counters: StoreCounters,
    /// Where its status server (`/metrics`, `/status`) listens, as PD reports it.
    pub status_address: String,
    /// When an external store process last said it runs (never, until it starts).
    pub last_seen_ms: Option<u64>,
}

/// What makes a store slow.
#[derive(Debug, Clone, Copy)]
enum Stall {
    Process,
    Disk,
}

impl SimStore {
    /// It answers slowly: its process stalls, or its disk does.
    pub fn stalls(&self) -> bool {
        self.slow || self.disk_slow
    }
}

/// What a TiKV process counts from its start (its `/metrics` counters and histograms).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreCounters {
    /// Raw gets and puts served by the regions this store leads.
    pub commands: f64,
    /// Raft log appends that took the usual couple of milliseconds.
    pub fast_appends: f64,
    /// Raft log appends of a slow store, each taking about `SLOW_APPEND_SECONDS`.
    pub slow_appends: f64,
}

/// How long a stalled store's slow score takes to climb from 1 to 95.
const SLOW_SCORE_CLIMB_MS: u64 = 1_500;

/// How long a healthy store's Raft log append takes, and a slow store's.
pub const FAST_APPEND_SECONDS: f64 = 0.002;
pub const SLOW_APPEND_SECONDS: f64 = 0.9;
/// The share of requests that write, and so append to the Raft log of every replica.
const WRITE_SHARE: f64 = 0.3;
/// Lines each node's log keeps.
const LOG_LINES: usize = 200;

/// "store-2" → 2.
fn store_of(node: &str) -> Option<u64> {
    node.strip_prefix("store-")?.parse().ok()
}

/// How a process ended: what its exit status tells whoever looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGKILL, a crash: 137.
    Killed,
    /// SIGTERM, shut down cleanly: 0, someone's deliberate stop.
    Clean,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Killed => 137,
            Exit::Clean => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimRegion {
    pub id: u64,
    /// (peer id, store id).
    pub peers: Vec<(u64, u64)>,
    /// Index into `peers`.
    pub leader: Option<usize>,
    /// When the current leader's store stopped answering.
    pub leader_lost_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct SimPd {
    pub name: String,
    pub member_id: u64,
    pub alive: bool,
    /// Stopped (SIGSTOP): the process is there but answers nobody, its peers included.
    pub paused: bool,
}

impl SimPd {
    /// It runs and answers: it counts for the quorum and may lead.
    pub fn serving(&self) -> bool {
        self.alive && !self.paused
    }
}

/// An operator PD runs until `done_ms`, as PD lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub op: PendingOperator,
    /// PD's text for it (`GET /operators`).
    pub text: String,
    pub done_ms: u64,
}

/// Why PD refuses an operator on a region that already has one.
pub const ERR_ADD_OPERATOR: &str =
    "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one";

#[derive(Debug, Clone, PartialEq)]
pub enum PendingOperator {
    TransferLeader {
        region: u64,
        to_store: u64,
    },
    /// Adds a peer on `to_store`, then removes the one on `from_store` (leadership moves
    /// off it first).
    TransferPeer {
        region: u64,
        from_store: u64,
        to_store: u64,
    },
}

impl PendingOperator {
    /// The region it works on.
    pub fn region(&self) -> u64 {
        match *self {
            PendingOperator::TransferLeader { region, .. }
            | PendingOperator::TransferPeer { region, .. } => region,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub config: SimConfig,
    /// PD's cluster id: random for each simulated cluster, as PD draws one at bootstrap.
    pub cluster_id: u64,
    pub now_ms: u64,
    pub stores: BTreeMap<u64, SimStore>,
    pub regions: Vec<SimRegion>,
    pub pd: Vec<SimPd>,
    /// Operators in flight, oldest first: they take effect when done.
    pub operators: Vec<InFlight>,
    pub evict_leader: BTreeSet<u64>,
    /// PD's own schedulers that run (`pd-ctl scheduler remove` takes one out).
    pub schedulers: BTreeSet<String>,
    /// When balance-leader last moved leaders.
    last_balance_ms: u64,
    /// Hot store: leaders pile onto it (the skewed-workload chaos).
    pub hot_store: Option<u64>,
    /// Each node's recent log lines ("store-2", "pd1"), oldest first.
    pub logs: BTreeMap<String, VecDeque<String>>,
    /// Stores PD has already logged as Disconnected or Down, so each change is logged once.
    logged_states: BTreeMap<u64, StoreState>,
    /// How each stopped store or PD member ("store-2", "pd1") ended, until it starts again.
    pub exits: BTreeMap<String, Exit>,
}

impl Cluster {
    pub fn new(config: SimConfig, now_ms: u64) -> Self {
        let stores: BTreeMap<u64, SimStore> = (1..=config.stores)
            .map(|id| {
                (
                    id,
                    SimStore {
                        id,
                        // An external store is alive once its process says so.
                        alive: !config.external_stores,
                        slow: false,
                        disk_slow: false,
                        slow_since_ms: 0,
                        offline: false,
                        start_ms: now_ms,
                        catching_up_until_ms: 0,
                        last_heartbeat_ms: now_ms,
                        reported_leaders: 0,
                        counters: StoreCounters::default(),
                        status_address: format!("tikv{id}:20180"),
                        last_seen_ms: None,
                    },
                )
            })
            .collect();
        let ids: Vec<u64> = stores.keys().copied().collect();
        let replicas = config.max_replicas.min(ids.len() as u64) as usize;
        let mut next_peer = 1000;
        let regions = (0..config.regions)
            .map(|i| {
                let peers = (0..replicas)
                    .map(|k| {
                        next_peer += 1;
                        (next_peer, ids[(i as usize + k) % ids.len()])
                    })
                    .collect();
                SimRegion {
                    id: 2 + i * 2,
                    peers,
                    leader: Some(0),
                    leader_lost_ms: None,
                }
            })
            .collect();
        // Member ids are random u64s in PD, often above 2^63.
        let pd = (1..=config.pd_members)
            .map(|i| SimPd {
                name: format!("pd{i}"),
                member_id: 13_195_394_291_058_371_180u64.wrapping_add(i * 7_919),
                alive: true,
                paused: false,
            })
            .collect();
        let mut cluster = Self {
            config,
            cluster_id: fastrand::u64(1..),
            now_ms,
            stores,
            regions,
            pd,
            operators: Vec::new(),
            evict_leader: BTreeSet::new(),
            schedulers: DEFAULT_SCHEDULERS.iter().map(|s| s.to_string()).collect(),
            last_balance_ms: now_ms,
            hot_store: None,
            logs: BTreeMap::new(),
            logged_states: BTreeMap::new(),
            exits: BTreeMap::new(),
        };
        let own_stores = if cluster.config.external_stores {
            0
        } else {
            cluster.config.stores
        };
        for id in 1..=own_stores {
            cluster.log(
                &format!("store-{id}"),
                "INFO",
                "server.rs:1",
                "TiKV is ready to serve",
                &[],
            );
        }
        if let Some(leader) = cluster.pd_leader().map(|p| p.name.clone()) {
            cluster.log(
                &leader,
                "INFO",
                "member.go:1",
                "PD leader is ready to serve",
                &[("leader-name", leader.clone())],
            );
        }
        // The first heartbeats, so that PD knows every store's counts from the start.
        cluster.tick(now_ms);
        cluster
    }

    /// Appends a line in TiKV's and PD's unified log format to `node`'s log.
    pub fn log(
        &mut self,
        node: &str,
        level: &str,
        source: &str,
        message: &str,
        fields: &[(&str, String)],
    ) {
        let at = chrono::DateTime::from_timestamp_millis(self.now_ms as i64).unwrap_or_default();
        let mut line = format!(
            "[{}] [{level}] [{source}] [{message:?}]",
            at.format("%Y/%m/%d %H:%M:%S%.3f +00:00")
        );
        for (key, value) in fields {
            line.push_str(&format!(" [{key}={value}]"));
        }
        let lines = self.logs.entry(node.to_string()).or_default();
        lines.push_back(line);
        while lines.len() > LOG_LINES {
            lines.pop_front();
        }
    }

    /// Logs on the PD leader, where PD's scheduling and store checks run.
    pub fn pd_log(&mut self, level: &str, source: &str, message: &str, fields: &[(&str, String)]) {
        if let Some(leader) = self.pd_leader().map(|p| p.name.clone()) {
            self.log(&leader, level, source, message, fields);
        }
    }

    /// SIGKILL: the process stops at once and logs nothing.
    pub fn kill_store(&mut self, id: u64) {
        if let Some(store) = self.stores.get_mut(&id) {
            if store.alive {
                self.exits.insert(format!("store-{id}"), Exit::Killed);
            }
            store.alive = false;
        }
    }

    /// SIGTERM to a store or PD member ("store-2", "pd1"): it says so in its log and exits
    /// cleanly, as TiKV and PD do. False for a node the cluster does not have.
    pub fn terminate(&mut self, node: &str) -> bool {
        let Some(running) = self.is_running(node) else {
            return false;
        };
        if running {
            self.log(
                node,
                "INFO",
                "signal_handler.rs",
                "receive signal: SIGTERM, exiting",
                &[],
            );
            match store_of(node) {
                Some(id) => self.kill_store(id),
                None => {
                    self.set_pd_alive(node, false);
                }
            }
            self.exits.insert(node.to_string(), Exit::Clean);
        }
        true
    }

    /// SIGSTOP / SIGCONT to a PD member: stopped, it answers nobody until continued. False
    /// for a member the cluster does not have.
    pub fn set_pd_paused(&mut self, name: &str, paused: bool) -> bool {
        let Some(pd) = self.pd.iter_mut().find(|p| p.name == name) else {
            return false;
        };
        pd.paused = paused;
        true
    }

    /// Whether a PD member is stopped (SIGSTOP); stores slow down instead of stopping.
    pub fn is_paused(&self, node: &str) -> bool {
        self.pd
            .iter()
            .any(|p| p.name == node && p.alive && p.paused)
    }

    /// Whether a store or PD member ("store-2", "pd1") runs; None for one the cluster lacks.
    pub fn is_running(&self, node: &str) -> Option<bool> {
        match store_of(node) {
            Some(id) => self.stores.get(&id).map(|s| s.alive),
            None => self.pd.iter().find(|p| p.name == node).map(|p| p.alive),
        }
    }

    /// A fresh process: whatever stalled the old one is gone with it (a slow disk is not),
    /// and its counters start from zero. Restarting a process that was running costs its
    /// leaders: its regions elect leaders among the other peers, and it campaigns again only
    /// once it has caught up (`caught_up`).
    pub fn restart_store(&mut self, id: u64) {
        let now = self.now_ms;
        if self.stores.get(&id).is_some_and(|s| s.alive) {
            for region in &mut self.regions {
                if region.leader.is_some_and(|p| region.peers[p].1 == id) {
                    region.leader = None;
                    region.leader_lost_ms = Some(now);
                }
            }
        }
        if let Some(store) = self.stores.get_mut(&id) {
            self.exits.remove(&format!("store-{id}"));
            store.alive = true;
            store.slow = false;
            if store.disk_slow {
                store.slow_since_ms = now;
            }
            store.start_ms = now;
            store.catching_up_until_ms = now + 2 * self.config.election_timeout_ms;
            store.last_heartbeat_ms = now;
            store.counters = StoreCounters::default();
            self.log(
                &format!("store-{id}"),
                "INFO",
                "server.rs",
                "TiKV is ready to serve",
                &[],
            );
        }
    }

    /// An external store process's heartbeat: it runs, started at `started_ms`, and serves its
    /// status at `status_address`. A new start time is a new process.
    pub fn external_heartbeat(&mut self, id: u64, started_ms: u64, status_address: &str) -> bool {
        let now = self.now_ms;
        let Some(store) = self.stores.get_mut(&id) else {
            return false;
        };
        let new_process = !store.alive || store.start_ms != started_ms;
        store.last_seen_ms = Some(now);
        store.status_address = status_address.to_string();
        if new_process {
            self.restart_store(id);
            if let Some(store) = self.stores.get_mut(&id) {
                store.start_ms = started_ms;
            }
        }
        true
    }

    /// A store restarted less than two election timeouts ago is still catching up on its
    /// regions' logs: it does not campaign yet, so the elections its restart caused go to
    /// the other peers.
    fn caught_up(&self, store: u64) -> bool {
        self.stores
            .get(&store)
            .is_some_and(|s| self.now_ms >= s.catching_up_until_ms)
    }

    /// The store's process stalls (or recovers): a restart clears it.
    pub fn set_slow(&mut self, id: u64, slow: bool) {
        self.set_stall(id, slow, Stall::Process);
    }

    /// The store's disk slows (or recovers): it stalls whatever process runs on it.
    pub fn set_disk_slow(&mut self, id: u64, slow: bool) {
        self.set_stall(id, slow, Stall::Disk);
    }

    /// A stall begins or ends; the slow score climbs from when the store first stalled, and
    /// the store's log says what stalls it as TiKV would.
    fn set_stall(&mut self, id: u64, on: bool, what: Stall) {
        let now = self.now_ms;
        let Some(store) = self.stores.get_mut(&id) else {
            return;
        };
        if on && !store.stalls() {
            store.slow_since_ms = now;
        }
        let (flag, source, message) = match what {
            Stall::Process => (
                &mut store.slow,
                "raftstore.rs",
                "raftstore is busy: a tick took 900ms",
            ),
            Stall::Disk => (
                &mut store.disk_slow,
                "raft_log_engine.rs",
                "disk I/O is slow: raft log append took 900ms",
            ),
        };
        *flag = on;
        if on {
            self.log(&format!("store-{id}"), "WARN", source, message, &[]);
        }
    }

    pub fn set_pd_alive(&mut self, name: &str, alive: bool) -> bool {
        let Some(pd) = self.pd.iter_mut().find(|p| p.name == name) else {
            return false;
        };
        if alive {
            self.exits.remove(name);
        } else if pd.alive {
            self.exits.insert(name.to_string(), Exit::Killed);
        }
        // A process started again, or killed, is no longer the one that was stopped.
        if alive != pd.alive {
            pd.paused = false;
        }
        pd.alive = alive;
        if alive {
            self.log(name, "INFO", "server.go", "PD is ready to serve", &[]);
        }
        match self.pd_leader().map(|p| p.name.clone()) {
            Some(leader) => self.log(
                &leader,
                "INFO",
                "member.go",
                "PD leader is ready to serve",
                &[("leader-name", leader.clone())],
            ),
            None => {
                for alive in self
                    .pd
                    .iter()
                    .filter(|p| p.serving())
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                {
                    self.log(
                        &alive,
                        "WARN",
                        "member.go",
                        "no PD leader: lost the quorum of the etcd cluster",
                        &[],
                    );
                }
            }
        }
        true
    }

    pub fn pd_leader(&self) -> Option<&SimPd> {
        // The lowest-named live member leads, once a majority of members is alive.
        let alive = self.pd.iter().filter(|p| p.serving()).count();
        (alive * 2 > self.pd.len())
            .then(|| self.pd.iter().find(|p| p.serving()))
            .flatten()
    }

    /// PD's `state_name` for a store, as PD computes it from heartbeats.
    pub fn state_name(&self, store: &SimStore) -> StoreState {
        if store.offline {
            return StoreState::Offline;
        }
        let silent = self.now_ms.saturating_sub(store.last_heartbeat_ms);
        if silent >= self.config.down_after_ms {
            StoreState::Down
        } else if silent >= self.config.disconnect_after_ms {
            StoreState::Disconnected
        } else {
            StoreState::Up
        }
    }

    fn store_alive(&self, id: u64) -> bool {
        self.stores.get(&id).is_some_and(|s| s.alive)
    }

    /// Peers whose store has not answered for max-peer-down-duration: the region leader
    /// reports them as down peers. This comes after PD calls the store Disconnected.
    pub fn down_peers(&self, region: &SimRegion) -> Vec<(u64, u64)> {
        region
            .peers
            .iter()
            .copied()
            .filter(|(_, store)| {
                self.stores.get(store).is_some_and(|s| {
                    !s.offline
                        && self.now_ms.saturating_sub(s.last_heartbeat_ms)
                            >= self.config.peer_down_after_ms
                })
            })
            .collect()
    }

    pub fn leader_store(&self, region: &SimRegion) -> Option<u64> {
        region.leader.map(|i| region.peers[i].1)
    }

    /// What PD says a store leads: the live count for a heartbeating store, and the count of
    /// its last heartbeat for a silent one (PD keeps a dead store's stats until it is Down).
    pub fn reported_leader_count(&self, store: u64, load: &Load) -> u64 {
        match self.stores.get(&store) {
            Some(s) if !s.alive => s.reported_leaders,
            _ => load.leaders_on(store),
        }
    }

    pub fn leader_count(&self, store: u64) -> u64 {
        self.regions
            .iter()
            .filter(|r| self.leader_store(r) == Some(store))
            .count() as u64
    }

    /// A store's slow score as TiKV reports it (1 to 100): 1 while healthy; once its disk
    /// stalls, it climbs as TiKV's inspections time out, past 80 (slow, to PD) after about
    /// 1.3 s and to 95 (compressed: TiKV's inspections take some seconds).
    pub fn slow_score(&self, store: &SimStore) -> u64 {
        if !store.stalls() {
            return 1;
        }
        let climbed = self.now_ms.saturating_sub(store.slow_since_ms) * 94 / SLOW_SCORE_CLIMB_MS;
        (1 + climbed).min(95)
    }

    /// The one store PD's evict-slow-store-scheduler evicts leaders from: it runs, and exactly
    /// one live store is slow, at a slow score of 80 or more (PD does not evict when several
    /// are, lest it evict them all).
    pub fn slow_evicted(&self) -> Option<u64> {
        if !self.schedulers.contains(EVICT_SLOW_STORE) {
            return None;
        }
        let slow: Vec<u64> = self
            .stores
            .values()
            .filter(|s| s.alive && self.slow_score(s) >= 80)
            .map(|s| s.id)
            .collect();
        (slow.len() == 1).then(|| slow[0])
    }

    /// Stores no leader may move to, and whose leaders move away: evict-leader's and
    /// evict-slow-store's.
    pub fn evicted_stores(&self) -> BTreeSet<u64> {
        let mut stores = self.evict_leader.clone();
        stores.extend(self.slow_evicted());
        stores
    }

    /// PD's balance-leader-scheduler: every `balance_leader_every_ms`, while the Up stores'
    /// leader counts differ by more than its tolerance, moves a batch of leaders from the store
    /// leading most to the one leading least.
    fn balance_leaders(&mut self, now_ms: u64) {
        if !self.schedulers.contains(BALANCE_LEADER)
            || now_ms.saturating_sub(self.last_balance_ms) < self.config.balance_leader_every_ms
        {
            return;
        }
        self.last_balance_ms = now_ms;
        let evicted = self.evicted_stores();
        // As PD weighs its operators' influence: the counts as if the transfers in flight
        // were done, so that a round does not move again what the last one is moving.
        let mut influence: BTreeMap<u64, i64> = BTreeMap::new();
        for f in &self.operators {
            if let PendingOperator::TransferLeader { region, to_store } = f.op
                && let Some(from) = self
                    .regions
                    .iter()
                    .find(|r| r.id == region)
                    .and_then(|r| self.leader_store(r))
            {
                *influence.entry(from).or_default() -= 1;
                *influence.entry(to_store).or_default() += 1;
            }
        }
        let counts: Vec<(u64, u64)> = self
            .stores
            .values()
            .filter(|s| s.alive && !s.offline && !evicted.contains(&s.id))
            .filter(|s| self.state_name(s) == StoreState::Up)
            .map(|s| {
                let moving = influence.get(&s.id).copied().unwrap_or(0);
                (s.id, self.leader_count(s.id).saturating_add_signed(moving))
            })
            .collect();
        let (Some(most), Some(least)) = (
            counts.iter().max_by_key(|(_, n)| *n).copied(),
            counts.iter().min_by_key(|(_, n)| *n).copied(),
        ) else {
            return;
        };
        let mean = counts.iter().map(|(_, n)| n).sum::<u64>() / counts.len() as u64;
        if most.1 - least.1 <= (mean / 20).max(4) {
            return;
        }
        let mut moved = 0;
        for i in 0..self.regions.len() {
            if moved >= BALANCE_LEADER_BATCH {
                break;
            }
            let op = PendingOperator::TransferLeader {
                region: self.regions[i].id,
                to_store: least.0,
            };
            if self.leader_store(&self.regions[i]) == Some(most.0)
                && self.regions[i].peers.iter().any(|(_, s)| *s == least.0)
                && self.add_operator(op, "balance-leader").is_ok()
            {
                moved += 1;
            }
        }
        if moved > 0 {
            self.pd_log(
                "INFO",
                "operator_controller.go",
                "add operator",
                &[
                    ("scheduler", BALANCE_LEADER.into()),
                    ("from-store", most.0.to_string()),
                    ("to-store", least.0.to_string()),
                    ("leaders", moved.to_string()),
                ],
            );
        }
    }

    /// PD's replica checker: a region with a replica on a store Down (silent past
    /// max-store-down-time) gets a new replica on an Up store that holds none of it, a batch a
    /// tick; with as many stores as replicas there is nowhere to put one.
    fn refill_replicas(&mut self) {
        let down: BTreeSet<u64> = self
            .stores
            .values()
            .filter(|s| self.state_name(s) == StoreState::Down)
            .map(|s| s.id)
            .collect();
        if down.is_empty() {
            return;
        }
        let up: Vec<u64> = self
            .stores
            .values()
            .filter(|s| s.alive && self.state_name(s) == StoreState::Up)
            .map(|s| s.id)
            .collect();
        let mut moves = Vec::new();
        for region in &self.regions {
            if moves.len() >= REPLICA_REFILL_BATCH {
                break;
            }
            let Some(from) = region
                .peers
                .iter()
                .map(|(_, s)| *s)
                .find(|s| down.contains(s))
            else {
                continue;
            };
            let to = up
                .iter()
                .copied()
                .filter(|s| !region.peers.iter().any(|(_, p)| p == s))
                .min_by_key(|s| self.region_count(*s));
            if let Some(to) = to {
                moves.push((region.id, from, to));
            }
        }
        for (region, from, to) in moves {
            self.transfer_peer(region, from, to);
            self.pd_log(
                "INFO",
                "replica_checker.go",
                "replace down peer",
                &[
                    ("region-id", region.to_string()),
                    ("from-store", from.to_string()),
                    ("to-store", to.to_string()),
                ],
            );
        }
    }

    pub fn region_count(&self, store: u64) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.peers.iter().any(|(_, s)| *s == store))
            .count() as u64
    }

    /// Each store's leaders and peers and the regions served, in one pass over the regions:
    /// what a tick or a scrape reads of every store (counted store by store, it was most of
    /// the simulation's own time).
    pub fn load(&self) -> Load {
        let mut load = Load::default();
        for region in &self.regions {
            for (_, store) in &region.peers {
                load.of(*store).peers += 1;
            }
            if let Some(leader) = self.leader_store(region) {
                load.of(leader).leaders += 1;
                load.served += 1;
            }
        }
        load
    }

    /// Requests per second served: regions without a leader serve nothing.
    pub fn qps(&self) -> f64 {
        self.qps_under(&self.load())
    }

    fn qps_under(&self, load: &Load) -> f64 {
        let slow_penalty = if self.stores.values().any(|s| s.stalls() && s.alive) {
            0.8
        } else {
            1.0
        };
        self.config.base_qps * load.served as f64 / self.regions.len().max(1) as f64 * slow_penalty
    }

    /// Starts `op`, made by `desc` ("admin" for one asked for over the API, else the
    /// scheduler's name for its operators, like "balance-leader"), as PD lists it; refused
    /// while the region has one in flight, as PD refuses it.
    pub fn add_operator(&mut self, op: PendingOperator, desc: &str) -> Result<(), &'static str> {
        let region = op.region();
        if self.operators.iter().any(|f| f.op.region() == region) {
            return Err(ERR_ADD_OPERATOR);
        }
        let leader = self
            .regions
            .iter()
            .find(|r| r.id == region)
            .and_then(|r| self.leader_store(r))
            .unwrap_or(0);
        let kind = if desc == "admin" { "admin," } else { "" };
        let (name, moves, brief, steps) = match op {
            PendingOperator::TransferLeader { to_store, .. } => (
                "transfer-leader",
                "leader",
                format!("transfer leader: store {leader} to {to_store}"),
                format!("0:{{transfer leader from store {leader} to store {to_store}}}"),
            ),
            PendingOperator::TransferPeer {
                from_store,
                to_store,
                ..
            } => (
                "move-peer",
                "region",
                format!("mv peer: store [{from_store}] to [{to_store}]"),
                format!(
                    "0:{{add learner peer on store {to_store}}}, 1:{{promote learner peer on store {to_store} to voter}}, 2:{{remove peer on store {from_store}}}"
                ),
            ),
        };
        // PD names an admin operator after its kind, a scheduler's after the scheduler.
        let desc = match desc {
            "admin" => format!("admin-{name}"),
            scheduler => scheduler.to_string(),
        };
        self.operators.push(InFlight {
            op,
            text: format!(
                "{desc} {{{brief}}} (kind:{kind}{moves}, region:{region}(1, 1), currentStep:0, size:1, steps:[{steps}], timeout:[1m0s])"
            ),
            done_ms: self.now_ms + self.config.operator_ms,
        });
        Ok(())
    }

    /// Moves `region`'s leader to a live peer on `to_store`; false when it cannot.
    fn move_leader(&mut self, index: usize, to_store: u64) -> bool {
        if !self.store_alive(to_store) || self.evicted_stores().contains(&to_store) {
            return false;
        }
        let region = &mut self.regions[index];
        match region.peers.iter().position(|(_, s)| *s == to_store) {
            Some(p) => {
                region.leader = Some(p);
                region.leader_lost_ms = None;
                true
            }
            None => false,
        }
    }

    fn transfer_peer(&mut self, region: u64, from_store: u64, to_store: u64) {
        let Some(index) = self.regions.iter().position(|r| r.id == region) else {
            return;
        };
        let Some(slot) = self.regions[index]
            .peers
            .iter()
            .position(|(_, s)| *s == from_store)
        else {
            return;
        };
        if self.leader_store(&self.regions[index]) == Some(from_store) {
            let other = self.regions[index]
                .peers
                .iter()
                .map(|(_, s)| *s)
                .find(|s| *s != from_store && self.store_alive(*s));
            if let Some(other) = other {
                self.move_leader(index, other);
            }
        }
        let next_peer = self
            .regions
            .iter()
            .flat_map(|r| r.peers.iter().map(|(p, _)| *p))
            .max()
            .unwrap_or(1000)
            + 1;
        self.regions[index].peers[slot] = (next_peer, to_store);
    }

    /// Store `id`'s counters `elapsed_s` after `from`, at the cluster's current rates: it
    /// serves the regions it leads and appends for every replica it holds.
    fn advanced(
        &self,
        id: u64,
        from: &StoreCounters,
        elapsed_s: f64,
        load: &Load,
    ) -> StoreCounters {
        let mut counters = from.clone();
        let Some(store) = self.stores.get(&id).filter(|s| s.alive) else {
            return counters;
        };
        // Each region takes an equal share of the cluster's requests, served by its leader;
        // a region without a leader serves nothing (so the stores' sum is `qps()`).
        let per_region = self.qps_under(load) / load.served.max(1) as f64;
        counters.commands += per_region * load.leaders_on(id) as f64 * elapsed_s;
        let appends = per_region * WRITE_SHARE * load.peers_on(id) as f64 * elapsed_s;
        if store.stalls() {
            counters.slow_appends += appends;
        } else {
            counters.fast_appends += appends;
        }
        counters
    }

    /// What store `id`'s counters read at `now_ms`, between ticks: a real process counts
    /// continuously, and a scrape must not see the 100 ms steps of the simulation (rates
    /// between two scrapes 250 ms apart would swing by a fifth).
    pub fn counters_at(&self, id: u64, now_ms: u64, load: &Load) -> StoreCounters {
        let since_tick = now_ms.saturating_sub(self.now_ms) as f64 / 1000.0;
        match self.stores.get(&id) {
            Some(store) => self.advanced(id, &store.counters, since_tick, load),
            None => StoreCounters::default(),
        }
    }

    /// What each live store served and appended since the last tick.
    fn count(&mut self, elapsed_s: f64, load: &Load) {
        let ids: Vec<u64> = self.stores.keys().copied().collect();
        for id in ids {
            let counters = self.advanced(id, &self.stores[&id].counters, elapsed_s, load);
            if let Some(store) = self.stores.get_mut(&id) {
                store.counters = counters;
            }
        }
    }

    /// PD logs a store once when it goes Disconnected, Down, or comes back Up.
    fn log_store_states(&mut self) {
        let states: Vec<(u64, StoreState)> = self
            .stores
            .values()
            .map(|s| (s.id, self.state_name(s)))
            .collect();
        for (id, state) in states {
            let before = self.logged_states.insert(id, state).unwrap_or_default();
            if before == state {
                continue;
            }
            let (level, message) = match state {
                StoreState::Disconnected => ("WARN", "store disconnected: no heartbeat"),
                StoreState::Down => ("WARN", "store down: no heartbeat for max-store-down-time"),
                StoreState::Up => ("INFO", "store is up again: heartbeats resumed"),
                _ => continue,
            };
            self.pd_log(
                level,
                "cluster.go",
                message,
                &[("store-id", id.to_string())],
            );
        }
    }

    pub fn tick(&mut self, now_ms: u64) {
        // Nothing below moves a leader before the heartbeats read them.
        let load = self.load();
        self.count(now_ms.saturating_sub(self.now_ms) as f64 / 1000.0, &load);
        self.now_ms = now_ms;
        if self.config.external_stores {
            for store in self.stores.values_mut() {
                store.alive = store
                    .last_seen_ms
                    .is_some_and(|seen| now_ms.saturating_sub(seen) < EXTERNAL_SILENCE_MS);
            }
        }
        for store in self.stores.values_mut() {
            if store.alive {
                store.last_heartbeat_ms = now_ms;
                store.reported_leaders = load.leaders_on(store.id);
            }
        }
        // Raft: a region whose leader's store died elects a live peer after the timeout.
        let mut elected: BTreeMap<u64, u64> = BTreeMap::new();
        for i in 0..self.regions.len() {
            let live_peers = self.regions[i]
                .peers
                .iter()
                .filter(|(_, s)| self.store_alive(*s))
                .count();
            let has_quorum = live_peers * 2 > self.regions[i].peers.len();
            // A leader that cannot reach a majority steps down (Raft's check-quorum).
            let leader_alive = has_quorum
                && self
                    .leader_store(&self.regions[i])
                    .is_some_and(|s| self.store_alive(s));
            if leader_alive {
                self.regions[i].leader_lost_ms = None;
                continue;
            }
            let lost = *self.regions[i].leader_lost_ms.get_or_insert(now_ms);
            if self.regions[i].leader.is_some() {
                self.regions[i].leader = None;
            }
            let live: Vec<usize> = (0..self.regions[i].peers.len())
                .filter(|p| self.store_alive(self.regions[i].peers[*p].1))
                .collect();
            // A majority of replicas must be alive to elect.
            if now_ms.saturating_sub(lost) >= self.config.election_timeout_ms
                && live.len() * 2 > self.regions[i].peers.len()
            {
                // Raft's randomized election timeouts spread new leaders evenly on average;
                // the peer on the store leading least stands in for that.
                let region = &self.regions[i];
                let evicted = self.evicted_stores();
                let least_leading = |eligible: &dyn Fn(u64) -> bool| {
                    live.iter()
                        .copied()
                        .filter(|p| eligible(region.peers[*p].1))
                        .min_by_key(|p| self.leader_count(region.peers[*p].1))
                };
                // Only when no caught-up peer may lead does one still catching up.
                let choice = least_leading(&|s| !evicted.contains(&s) && self.caught_up(s))
                    .or_else(|| least_leading(&|s| !evicted.contains(&s)))
                    .unwrap_or(live[0]);
                self.regions[i].leader = Some(choice);
                self.regions[i].leader_lost_ms = None;
                *elected.entry(self.regions[i].peers[choice].1).or_default() += 1;
            }
        }
        for (store, regions) in elected {
            self.log(
                &format!("store-{store}"),
                "INFO",
                "raft.rs",
                "became leader after an election",
                &[("regions", regions.to_string())],
            );
        }
        self.log_store_states();
        // Operators take effect once done; the rest stay in flight.
        let (done, running) = std::mem::take(&mut self.operators)
            .into_iter()
            .partition::<Vec<_>, _>(|f| f.done_ms <= now_ms);
        self.operators = running;
        for InFlight { op, .. } in done {
            match op {
                PendingOperator::TransferLeader { region, to_store } => {
                    if let Some(index) = self.regions.iter().position(|r| r.id == region) {
                        self.move_leader(index, to_store);
                    }
                }
                PendingOperator::TransferPeer {
                    region,
                    from_store,
                    to_store,
                } => {
                    self.transfer_peer(region, from_store, to_store);
                }
            }
        }
        // evict-leader moves `batch` leaders a tick off each evicted store (PD's default
        // batch is 3), each to the eligible peer leading least, as PD's scheduler scores them.
        let evicted = self.evicted_stores();
        for store in evicted.iter().copied() {
            let mut moved = 0;
            for i in 0..self.regions.len() {
                if moved >= EVICT_LEADER_BATCH {
                    break;
                }
                if self.leader_store(&self.regions[i]) != Some(store) {
                    continue;
                }
                let target = self.regions[i]
                    .peers
                    .iter()
                    .map(|(_, s)| *s)
                    .filter(|s| *s != store && self.store_alive(*s) && !evicted.contains(s))
                    .min_by_key(|s| self.leader_count(*s));
                if let Some(target) = target
                    && self.move_leader(i, target)
                {
                    moved += 1;
                }
            }
        }
        self.balance_leaders(now_ms);
        self.refill_replicas();
        // A hot store pulls leaders onto itself in one tick until it leads 60 % of regions,
        // a one-off skew: afterwards the leaders stay where they are until something moves them.
        if let Some(hot) = self.hot_store.take() {
            for i in 0..self.regions.len() {
                if self.leader_count(hot) * 10 >= self.regions.len() as u64 * 6 {
                    break;
                }
                if self.leader_store(&self.regions[i]) != Some(hot) {
                    self.move_leader(i, hot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> SimConfig {
        SimConfig {
            regions: 30,
            disconnect_after_ms: 1_000,
            peer_down_after_ms: 2_000,
            down_after_ms: 3_000,
            election_timeout_ms: 500,
            ..SimConfig::default()
        }
    }

    #[test]
    fn a_dead_store_goes_disconnected_then_down_and_its_leaders_move_away() {
        let mut c = Cluster::new(fast(), 0);
        assert_eq!(
            c.leader_count(1) + c.leader_count(2) + c.leader_count(3),
            30
        );
        c.stores.get_mut(&1).unwrap().alive = false;
        c.tick(100);
        assert!(
            c.qps() < c.config.base_qps,
            "leaderless regions serve nothing"
        );
        c.tick(700);
        assert_eq!(c.leader_count(1), 0, "re-elected after the timeout");
        c.tick(1_200);
        assert_eq!(c.state_name(&c.stores[&1]), StoreState::Disconnected);
        c.tick(3_200);
        assert_eq!(c.state_name(&c.stores[&1]), StoreState::Down);
        assert_eq!(c.down_peers(&c.regions[0]).len(), 1);
        assert!(
            (c.qps() - c.config.base_qps).abs() < 1e-9,
            "every region has a leader again"
        );
    }

    #[test]
    fn counters_grow_continuously_at_the_served_rate_and_stop_with_the_process() {
        let mut c = Cluster::new(fast(), 0);
        c.tick(1_000);
        let served = |c: &Cluster, at| -> f64 {
            c.stores
                .keys()
                .map(|id| c.counters_at(*id, at, &c.load()).commands)
                .sum()
        };
        // Between ticks the counters are where a continuous count would be.
        let (at_tick, between) = (served(&c, 1_000), served(&c, 1_050));
        assert!((at_tick - c.config.base_qps).abs() < 1e-6, "{at_tick}");
        assert!(
            (between - at_tick - c.config.base_qps * 0.05).abs() < 1e-6,
            "{between}"
        );
        c.kill_store(1);
        c.tick(1_100);
        let (before, after) = (served(&c, 1_100), served(&c, 2_100));
        assert!(
            (after - before - c.qps()).abs() < 1e-6,
            "the live stores together serve what the cluster serves: {} vs {}",
            after - before,
            c.qps()
        );
        let dead = c.counters_at(1, 1_050, &c.load());
        assert_eq!(
            dead,
            c.counters_at(1, 2_000, &c.load()),
            "a dead process counts nothing"
        );
        c.restart_store(1);
        assert_eq!(
            c.stores[&1].counters,
            StoreCounters::default(),
            "a new process starts at zero"
        );
    }

    #[test]
    fn an_external_store_lives_by_its_heartbeats_and_a_new_start_time_is_a_new_process() {
        let mut c = Cluster::new(
            SimConfig {
                external_stores: true,
                ..fast()
            },
            0,
        );
        assert!(
            c.stores.values().all(|s| !s.alive),
            "alive once its process says so"
        );
        for id in 1..=3 {
            assert!(c.external_heartbeat(id, 7, &format!("tikv{id}:20180")));
        }
        c.tick(100);
        assert!(c.stores[&2].alive);
        assert_eq!(c.stores[&2].status_address, "tikv2:20180");
        // Leaders were lost while no process ran; they are elected after the timeout, and
        // then the stores serve.
        c.tick(700);
        for id in 1..=3 {
            c.external_heartbeat(id, 7, &format!("tikv{id}:20180"));
        }
        c.tick(1_200);
        let counted = c.stores[&2].counters.commands;
        assert!(counted > 0.0, "{counted}");
        c.tick(700 + EXTERNAL_SILENCE_MS);
        assert!(
            !c.stores[&2].alive,
            "silent for a second: the process is gone"
        );
        c.external_heartbeat(2, 8, "tikv2:20180");
        assert_eq!(
            c.stores[&2].counters,
            StoreCounters::default(),
            "started again: a new process"
        );
        assert_eq!(c.stores[&2].start_ms, 8);
        assert!(!c.external_heartbeat(9, 1, "tikv9:20180"), "no such store");
    }

    #[test]
    fn two_dead_stores_of_three_leave_regions_without_quorum() {
        let mut c = Cluster::new(fast(), 0);
        c.stores.get_mut(&1).unwrap().alive = false;
        c.stores.get_mut(&2).unwrap().alive = false;
        c.tick(100);
        c.tick(2_000);
        assert!(
            c.regions.iter().all(|r| r.leader.is_none()),
            "one live replica of three cannot elect"
        );
    }

    #[test]
    fn pd_balances_leaders_onto_a_cold_store_a_batch_a_round_until_within_tolerance() {
        let config = SimConfig {
            balance_leader_every_ms: 1_000,
            ..fast()
        };
        let mut c = Cluster::new(config, 0);
        // store-2 leads nothing, as a store that just came back.
        c.evict_leader.insert(2);
        for t in 1..=9 {
            c.tick(t * 100);
        }
        assert_eq!(c.leader_count(2), 0);
        c.evict_leader.clear();
        c.tick(1_000);
        assert_eq!(c.leader_count(2), 0, "the round's operators are in flight");
        assert_eq!(c.operators.len(), BALANCE_LEADER_BATCH);
        assert!(
            c.operators[0]
                .text
                .starts_with("balance-leader {transfer leader: store "),
            "{}",
            c.operators[0].text
        );
        c.tick(1_000 + c.config.operator_ms);
        assert_eq!(
            c.leader_count(2),
            BALANCE_LEADER_BATCH as u64,
            "one batch a round"
        );
        c.tick(1_500);
        assert_eq!(
            c.leader_count(2),
            BALANCE_LEADER_BATCH as u64,
            "not before the next round"
        );
        for t in 2..=10 {
            c.tick(t * 1_000);
        }
        let counts: Vec<u64> = (1..=3).map(|s| c.leader_count(s)).collect();
        let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
        assert!(spread <= 4, "within the tolerance: {counts:?}");

        // `pd-ctl scheduler remove balance-leader-scheduler`: a cold store stays cold.
        c.schedulers.remove(BALANCE_LEADER);
        c.evict_leader.insert(2);
        for t in 11..=15 {
            c.tick(t * 1_000);
        }
        c.evict_leader.clear();
        for t in 16..=25 {
            c.tick(t * 1_000);
        }
        assert_eq!(c.leader_count(2), 0);
    }

    #[test]
    fn pd_re_creates_a_down_stores_replicas_on_a_spare_store_after_max_store_down_time() {
        let mut c = Cluster::new(
            SimConfig {
                stores: 4,
                ..fast()
            },
            0,
        );
        let on = |c: &Cluster, store| c.region_count(store);
        let before = on(&c, 1);
        assert!(before > 0);
        c.stores.get_mut(&1).unwrap().alive = false;
        c.tick(2_900);
        assert_eq!(on(&c, 1), before, "not before max-store-down-time");
        for t in 30..=60 {
            c.tick(t * 100);
        }
        assert_eq!(on(&c, 1), 0, "every replica re-created elsewhere");
        assert!(c.regions.iter().all(|r| r.peers.len() == 3));

        // Three stores, three replicas: nowhere to put one.
        let mut c = Cluster::new(fast(), 0);
        c.stores.get_mut(&1).unwrap().alive = false;
        for t in 1..=60 {
            c.tick(t * 100);
        }
        assert_eq!(on(&c, 1), c.regions.len() as u64);
    }

    #[test]
    fn evict_slow_store_moves_a_lone_slow_stores_leaders_away_and_stops_when_it_recovers() {
        let mut c = Cluster::new(fast(), 0);
        c.set_slow(3, true);
        assert_eq!(c.slow_score(&c.stores[&3]), 1, "the score climbs from 1");
        assert_eq!(c.slow_evicted(), None, "not slow to PD yet");
        c.tick(1_500);
        assert_eq!(c.slow_score(&c.stores[&3]), 95);
        assert_eq!(c.slow_evicted(), Some(3));
        for t in 16..=30 {
            c.tick(t * 100);
        }
        assert_eq!(
            c.leader_count(3),
            0,
            "PD moved every leader off the slow store"
        );
        c.set_slow(1, true);
        c.tick(4_500);
        assert_eq!(c.slow_evicted(), None, "two slow stores: PD evicts neither");
        c.set_slow(1, false);
        c.set_slow(3, false);
        assert_eq!(c.slow_evicted(), None);
        assert!(c.evicted_stores().is_empty());
    }

    #[test]
    fn evict_leader_drains_a_store_over_ticks_and_operators_apply_when_done() {
        let mut c = Cluster::new(fast(), 0);
        let before = c.leader_count(2);
        c.evict_leader.insert(2);
        c.tick(100);
        assert_eq!(
            c.leader_count(2),
            before - EVICT_LEADER_BATCH as u64,
            "one batch a tick"
        );
        for t in 2..=before {
            c.tick(t * 100);
        }
        assert_eq!(c.leader_count(2), 0);
        c.evict_leader.clear();
        let region = c.regions[0].id;
        let transfer = PendingOperator::TransferLeader {
            region,
            to_store: 2,
        };
        c.now_ms = 200;
        c.add_operator(transfer.clone(), "admin").unwrap();
        assert_eq!(c.add_operator(transfer, "admin"), Err(ERR_ADD_OPERATOR));
        assert!(
            c.operators[0].text.starts_with(
                "admin-transfer-leader {transfer leader: store 1 to 2} (kind:admin,leader, region:"
            ),
            "{}",
            c.operators[0].text
        );
        c.tick(200 + c.config.operator_ms - 1);
        assert_ne!(c.leader_store(&c.regions[0]), Some(2), "in flight");
        c.tick(200 + c.config.operator_ms);
        assert_eq!(c.leader_store(&c.regions[0]), Some(2));
        assert!(c.operators.is_empty());
    }

    #[test]
    fn a_slow_disk_outlives_a_restart_and_a_stalled_process_does_not() {
        let mut c = Cluster::new(fast(), 0);
        c.set_slow(1, true);
        c.set_disk_slow(2, true);
        c.tick(SLOW_SCORE_CLIMB_MS);
        let score = |c: &Cluster, id| c.slow_score(&c.stores[&id]);
        assert!(score(&c, 1) >= 80 && score(&c, 2) >= 80);
        c.restart_store(1);
        c.restart_store(2);
        assert_eq!(score(&c, 1), 1, "the stall went with the process");
        assert_eq!(score(&c, 2), 1, "a new process's score starts low...");
        c.tick(2 * SLOW_SCORE_CLIMB_MS);
        assert_eq!(score(&c, 1), 1);
        assert!(score(&c, 2) >= 80, "...and climbs again on the same disk");
        c.set_disk_slow(2, false);
        assert_eq!(score(&c, 2), 1);
    }

    #[test]
    fn restarting_a_serving_store_costs_its_leaders_until_pd_moves_them_back() {
        let config = SimConfig {
            balance_leader_every_ms: 1_000,
            ..fast()
        };
        let mut c = Cluster::new(config, 0);
        c.tick(5_000);
        let led = c.leader_count(2);
        assert!(led > 0);
        c.restart_store(2);
        assert_eq!(c.leader_count(2), 0, "its regions lost their leader");
        c.tick(5_000 + c.config.election_timeout_ms);
        assert_eq!(
            c.leader_count(2),
            0,
            "the others elected leaders; it was still catching up"
        );
        assert!(c.regions.iter().all(|r| r.leader.is_some()));
        for t in 1..=20 {
            c.tick(5_000 + c.config.election_timeout_ms + t * 1_000);
        }
        assert!(
            c.leader_count(2) + 4 >= led.min(c.regions.len() as u64 / 3),
            "balance-leader brought them back: {} of {led}",
            c.leader_count(2)
        );
        // Stores that have run since the cluster began campaign at once: a store killed right
        // after the start leaves its leaders to both others, evenly.
        let mut fresh = Cluster::new(fast(), 0);
        let before = [1, 3].map(|s| fresh.leader_count(s));
        let orphaned = fresh.leader_count(2);
        fresh.kill_store(2);
        fresh.tick(100);
        fresh.tick(100 + fresh.config.election_timeout_ms);
        let after = [1, 3].map(|s| fresh.leader_count(s));
        assert_eq!(after[0] + after[1], before[0] + before[1] + orphaned);
        assert!(after[0].abs_diff(after[1]) <= 1, "{after:?}");
        // A store that was not running loses nothing by starting.
        c.kill_store(3);
        c.restart_store(3);
        assert!(c.regions.iter().all(|r| r.leader.is_some()));
    }

    #[test]
    fn sigterm_is_a_clean_exit_that_says_so_and_sigkill_a_crash() {
        let mut c = Cluster::new(SimConfig::demo(), 1_000);
        assert!(c.terminate("store-2"));
        assert_eq!(c.is_running("store-2"), Some(false));
        assert_eq!(c.exits.get("store-2"), Some(&Exit::Clean));
        assert!(
            c.logs["store-2"]
                .back()
                .is_some_and(|l| l.contains("SIGTERM")),
            "{:?}",
            c.logs["store-2"]
        );
        c.restart_store(2);
        assert_eq!(c.exits.get("store-2"), None);
        c.kill_store(2);
        assert_eq!(c.exits.get("store-2").map(|e| e.code()), Some(137));
        assert!(c.terminate("pd1"));
        assert_eq!(c.exits.get("pd1"), Some(&Exit::Clean));
        assert!(!c.terminate("store-9"));
        assert_eq!(c.is_running("pd9"), None);
    }

    #[test]
    fn a_paused_pd_member_runs_but_neither_votes_nor_leads() {
        let mut c = Cluster::new(SimConfig::demo(), 1_000);
        let leader = c.pd_leader().map(|p| p.name.clone()).expect("a leader");
        assert!(c.set_pd_paused(&leader, true));
        assert!(c.is_paused(&leader));
        assert_eq!(c.is_running(&leader), Some(true));
        assert_ne!(c.pd_leader().map(|p| p.name.clone()), Some(leader.clone()));
        let other =
            c.pd.iter()
                .find(|p| p.name != leader)
                .map(|p| p.name.clone())
                .expect("a peer");
        assert!(c.set_pd_paused(&other, true));
        assert!(
            c.pd_leader().is_none(),
            "one of three answering is no majority"
        );
        assert!(c.set_pd_paused(&leader, false));
        assert!(c.pd_leader().is_some());
        // Killed while stopped and started again: a fresh process, not a stopped one.
        assert!(c.set_pd_alive(&other, false));
        assert!(c.set_pd_alive(&other, true));
        assert!(!c.is_paused(&other));
        assert!(!c.set_pd_paused("pd9", true));
    }
}
