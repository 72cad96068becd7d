//! The TiKV subject: observes the cluster through PD's HTTP API (stores, members, region
//! checks, config) and the simulator's or PD's metrics, checks the invariants, and acts
//! through PD (operators, evict-leader, store offline) or the deployment target (restarts).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use operator_protocol::*;
use serde_json::{Value, json};

use crate::actions::{self, TikvAction};
use crate::facts::*;
use crate::invariants::{self, Thresholds};
use crate::pd::{PdClient, RegionCheck, RegionInfo};
use crate::telemetry::{StoreAddress, Telemetry};

pub const NAME: &str = "tikv";
/// What one `metric_query` answer carries at most, to keep a brain's context small.
const MAX_QUERY_SAMPLES: usize = 60;
const MAX_LOG_LINES: u64 = 200;

/// How to reach a TiKV cluster.
#[derive(Debug, Clone, Default)]
pub struct TikvOptions {
    /// PD client URLs; the first is also where PD's /metrics is scraped.
    pub pd_members: Vec<String>,
    /// The simulator's base URL when the cluster is simulated (for the hot-store chaos).
    pub simulator: Option<String>,
    /// Query this Prometheus server instead of scraping PD and the stores directly.
    pub prometheus: Option<String>,
    /// Status addresses PD reports that only the cluster's own network resolves, mapped to
    /// where this machine reaches them ("tikv1:20180" → "127.0.0.1:20181").
    pub status_rewrites: BTreeMap<String, String>,
    /// How long an action waits for PD to show its effect before it counts as failed
    /// (default 30 s: a restarted TiKV heartbeats every 10 s).
    pub verify_timeout: Option<std::time::Duration>,
}

impl TikvOptions {
    /// The simulator at `url`: PD's API, its metrics and its chaos controls in one place.
    pub fn simulator(url: &str) -> Self {
        Self {
            pd_members: vec![url.to_string()],
            simulator: Some(url.to_string()),
            ..Self::default()
        }
    }
}

pub struct TikvSubject {
    pd: PdClient,
    telemetry: Telemetry,
    http: reqwest::Client,
    thresholds: Thresholds,
    verify_timeout: std::time::Duration,
    /// Recent ops/s samples; their median is the workload's baseline.
    history: Mutex<VecDeque<f64>>,
    last: Latest<Facts>,
    simulator: Option<String>,
    /// Stores this process asked PD to evict leaders from (a drain, a rebalance under way):
    /// any other eviction PD runs is someone else's, on purpose.
    own_evictions: Mutex<BTreeSet<u64>>,
    /// Where the schedulers it adds are recorded before they exist (the engine's database).
    ledger: std::sync::OnceLock<std::sync::Arc<dyn Ledger>>,
}

/// How long PD's balance-leader may go without shrinking the spread before a rebalance
/// moves leaders itself, and how long it waits on PD at most.
const PD_STALL: std::time::Duration = std::time::Duration::from_secs(3);
const PD_BALANCE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

enum PdBalance {
    /// PD evened the leaders out; what to say.
    Done(String),
    /// PD stopped making progress; what it did.
    Stalled(String),
}

/// What PD runs while operator-tui evicts a store's leaders, as the ledger names it.
const PD_SCHEDULER: &str = "pd_scheduler";

fn eviction(store: u64) -> Residue {
    Residue::new(
        PD_SCHEDULER,
        &format!("evict-leader-scheduler-{store}"),
        &format!("PD evicts store-{store}'s leaders"),
    )
}

fn store_node(id: u64) -> String {
    format!("store-{id}")
}

fn store_id(node: &str) -> Option<u64> {
    node.strip_prefix("store-")?.parse().ok()
}

impl TikvSubject {
    pub fn new(options: TikvOptions) -> Result<Self, String> {
        let first = options
            .pd_members
            .first()
            .ok_or("name at least one PD member (--pd http://127.0.0.1:2379)")?
            .clone();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(800))
            .build()
            .map_err(|e| e.to_string())?;
        let telemetry = match &options.prometheus {
            Some(url) => Telemetry::prometheus(url, http.clone()),
            None => Telemetry::direct(&first, options.status_rewrites.clone(), http.clone()),
        };
        Ok(Self {
            pd: PdClient::new(options.pd_members)?,
            telemetry,
            http,
            thresholds: Thresholds::default(),
            verify_timeout: options
                .verify_timeout
                .unwrap_or(std::time::Duration::from_secs(30)),
            history: Mutex::new(VecDeque::new()),
            last: Latest::default(),
            simulator: options.simulator,
            own_evictions: Mutex::new(BTreeSet::new()),
            ledger: std::sync::OnceLock::new(),
        })
    }

    fn brief(region: &RegionInfo) -> RegionBrief {
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
    async fn region_check(&self, check: RegionCheck, pd: &mut PdFacts) -> Vec<RegionBrief> {
        match self.pd.regions_check(check).await {
            Ok(regions) => regions.iter().map(Self::brief).collect(),
            Err(e) => {
                pd.read_errors.push(format!("region check {check:?}: {e}"));
                Vec::new()
            }
        }
    }

    async fn facts(&self) -> Facts {
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

    fn observation(at_ms: u64, facts: &Facts) -> Observation {
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

    /// Asks PD to evict the store's leaders, recorded first (in the ledger, so that a crash
    /// cannot leave it behind unknown, and here, so that it is not taken for someone else's).
    async fn evict_leaders(&self, store: u64) -> ContractResult<String> {
        if let Some(ledger) = self.ledger.get() {
            ledger.left(&eviction(store))?;
        }
        self.own_evictions_mut().insert(store);
        self.pd.add_evict_leader(store).await.map_err(pd_error)
    }

    /// Lets the store lead again; an eviction already gone counts as removed.
    async fn stop_evicting(&self, store: u64) -> ContractResult<String> {
        let said = match self.pd.remove_evict_leader(store).await {
            Ok(said) => said,
            Err(crate::pd::PdError {
                status: Some(404), ..
            }) => "it was not there (any more)".into(),
            Err(e) => return Err(pd_error(e)),
        };
        self.own_evictions_mut().remove(&store);
        if let Some(ledger) = self.ledger.get() {
            ledger.removed(&eviction(store));
        }
        Ok(said)
    }

    fn own_evictions_mut(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.own_evictions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// PD's schedulers, and whose each store's leader eviction is.
    async fn read_schedulers(&self, facts: &mut Facts) {
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

    /// Up stores' leader counts, from PD.
    async fn up_leader_counts(&self) -> Result<Vec<(u64, u64)>, crate::pd::PdError> {
        let stores = self.pd.stores().await?;
        Ok(stores
            .stores
            .iter()
            .filter(|s| s.store.state_name == StoreState::Up)
            .map(|s| (s.store.id, s.status.leader_count))
            .collect())
    }

    /// Leaves the leaders to PD's balance-leader-scheduler while it makes progress, and
    /// evens them out itself when PD does not run it or stops gaining.
    async fn rebalance_leaders(&self, first: u64) -> ContractResult<String> {
        // PD's balance-leader-scheduler does this work itself: while it makes progress,
        // moving leaders as well would fight it.
        let pd_balances = self
            .pd
            .schedulers()
            .await
            .map_err(pd_error)?
            .iter()
            .any(|n| n == "balance-leader-scheduler");
        let mut said = String::new();
        if pd_balances {
            match self.wait_while_pd_balances().await? {
                PdBalance::Done(done) => return Ok(done),
                PdBalance::Stalled(why) => said = format!("{why}; "),
            }
        }
        self.evict_until_balanced(first)
            .await
            .map(|done| format!("{said}{done}"))
    }

    /// The spread of the Up stores' leader counts, and half what the invariant allows: the
    /// balance a rebalance aims for.
    async fn leader_spread(&self) -> ContractResult<(u64, f64)> {
        let counts = self.up_leader_counts().await.map_err(pd_error)?;
        let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let least = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
        let mean = counts.iter().map(|(_, n)| n).sum::<u64>() as f64 / counts.len().max(1) as f64;
        let target = (self.thresholds.leader_spread as f64)
            .max(mean * self.thresholds.leader_spread_ratio)
            / 2.0;
        Ok((most - least, target))
    }

    /// Watches PD's balance-leader-scheduler even the leaders out: done when the spread is
    /// within the target, stalled when it has not shrunk for `PD_STALL`, and never past
    /// `PD_BALANCE_WAIT`.
    async fn wait_while_pd_balances(&self) -> ContractResult<PdBalance> {
        let started = std::time::Instant::now();
        let (first, target) = self.leader_spread().await?;
        let (mut best, mut improved) = (first, started);
        loop {
            let (spread, _) = self.leader_spread().await?;
            if (spread as f64) <= target {
                return Ok(PdBalance::Done(format!(
                    "PD's balance-leader-scheduler evened the leaders out (spread {first} → {spread} in {:.1} s): moved nothing",
                    started.elapsed().as_secs_f64()
                )));
            }
            if spread < best {
                (best, improved) = (spread, std::time::Instant::now());
            }
            if improved.elapsed() > PD_STALL || started.elapsed() > PD_BALANCE_WAIT {
                return Ok(PdBalance::Stalled(format!(
                    "PD's balance-leader-scheduler brought the spread from {first} to {spread} in {:.1} s and then stopped gaining",
                    started.elapsed().as_secs_f64()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Evicts leaders from the hottest store (first the named one) until it leads no more
    /// than its share, lets it lead again, and repeats with the next hottest until the spread
    /// is within half what the invariant allows. Evicting from one store alone is not enough:
    /// its leaders may land on a store that was already warm.
    async fn evict_until_balanced(&self, first: u64) -> ContractResult<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut hottest = first;
        let mut rounds = 0;
        loop {
            self.evict_leaders(hottest).await?;
            let drained = loop {
                let counts = self.up_leader_counts().await;
                let Ok(counts) = counts else {
                    break counts.map(|_| ());
                };
                let share = counts.iter().map(|(_, n)| n).sum::<u64>() / counts.len().max(1) as u64;
                let mine = counts
                    .iter()
                    .find(|(id, _)| *id == hottest)
                    .map_or(0, |(_, n)| *n);
                if mine <= share || std::time::Instant::now() > deadline {
                    break Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            };
            // Always let the store lead again, even when reading PD failed.
            self.stop_evicting(hottest).await?;
            drained.map_err(pd_error)?;
            rounds += 1;
            let counts = self.up_leader_counts().await.map_err(pd_error)?;
            let (Some(most), Some(least)) = (
                counts.iter().max_by_key(|(_, n)| *n),
                counts.iter().min_by_key(|(_, n)| *n),
            ) else {
                return Ok("no Up stores to balance".into());
            };
            let mean = counts.iter().map(|(_, n)| n).sum::<u64>() as f64 / counts.len() as f64;
            let allowed = (self.thresholds.leader_spread as f64)
                .max(mean * self.thresholds.leader_spread_ratio)
                / 2.0;
            let spread = (most.1 - least.1) as f64;
            if spread <= allowed
                || rounds >= counts.len() * 2
                || std::time::Instant::now() > deadline
            {
                let summary: Vec<String> = counts
                    .iter()
                    .map(|(id, n)| format!("store-{id} {n}"))
                    .collect();
                return Ok(format!(
                    "leaders after {rounds} round(s): {}",
                    summary.join(", ")
                ));
            }
            hottest = most.0;
        }
    }

    /// Waits until PD shows `what` (the check answers true), so that an action's outcome is
    /// what PD reports afterwards, not only that PD accepted the request.
    async fn verify<F, Fut>(&self, what: &str, check: F) -> ContractResult<String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, crate::pd::PdError>>,
    {
        let deadline = std::time::Instant::now() + self.verify_timeout;
        let mut last_error = None;
        loop {
            match check().await {
                Ok(true) => return Ok(format!("verified through PD: {what}")),
                Ok(false) => {}
                Err(e) => last_error = Some(e.to_string()),
            }
            if std::time::Instant::now() > deadline {
                let why = last_error
                    .map(|e| format!(" (last PD error: {e})"))
                    .unwrap_or_default();
                return Err(ContractError::Refused(format!(
                    "PD does not show {what} after {} s{why}",
                    self.verify_timeout.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn last_store_facts(&self, id: u64) -> Option<StoreFacts> {
        self.last
            .with(|last| last?.stores.iter().find(|s| s.id == id).cloned())
    }

    fn node_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.last.with(|last| {
            let stores = last
                .iter()
                .flat_map(|f| f.stores.iter().map(|s| store_node(s.id)));
            let members = last
                .iter()
                .flat_map(|f| f.pd.members.iter().map(|m| m.name.clone()));
            stores.chain(members).collect()
        });
        if ids.is_empty() {
            ids = ["store-1", "store-2", "store-3", "pd1", "pd2", "pd3"]
                .map(String::from)
                .to_vec();
        }
        ids
    }
}

pub(crate) fn store_param(
    params: &std::collections::BTreeMap<String, Value>,
) -> ContractResult<u64> {
    params
        .get("store")
        .and_then(Value::as_str)
        .and_then(store_id)
        .ok_or_else(|| ContractError::Permanent("the store must be named like store-2".into()))
}

/// PD's status says what a retry can do; no member answering at all may pass.
fn pd_error(e: crate::pd::PdError) -> ContractError {
    match e.status {
        Some(status) => ContractError::from_status(status, e.to_string()),
        None => ContractError::Retryable(e.to_string()),
    }
}

impl Subject for TikvSubject {
    fn name(&self) -> &str {
        NAME
    }

    fn attach_ledger(&self, ledger: std::sync::Arc<dyn Ledger>) {
        let _ = self.ledger.set(ledger);
    }

    fn clean_up<'a>(&'a self, residue: &'a Residue) -> BoxFuture<'a, ContractResult<String>> {
        Box::pin(async move {
            let store = (residue.kind == PD_SCHEDULER)
                .then(|| residue.key.strip_prefix("evict-leader-scheduler-"))
                .flatten()
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| {
                    ContractError::NotFound(format!(
                        "TiKV left no {} {}",
                        residue.kind, residue.key
                    ))
                })?;
            let said = self.stop_evicting(store).await?;
            Ok(format!("PD answered: {said}"))
        })
    }

    fn observe(&self) -> BoxFuture<'_, ContractResult<Observation>> {
        Box::pin(async move {
            let facts = self.facts().await;
            let observation = Self::observation(unix_now_ms(), &facts);
            self.last.set(facts);
            Ok(observation)
        })
    }

    fn check(&self, observation: &Observation) -> Vec<Violation> {
        match serde_json::from_value::<Facts>(observation.facts.clone()) {
            Ok(facts) => invariants::all(&facts, &self.thresholds),
            Err(e) => vec![Violation::unreadable_facts(NAME, e)],
        }
    }

    fn actions(&self) -> Vec<ActionSpec> {
        actions::specs(&self.node_ids())
    }

    fn execute<'a>(
        &'a self,
        request: &'a ActionRequest,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ActionOutcome>> {
        Box::pin(async move {
            let summary = match TikvAction::parse(request)? {
                TikvAction::TransferLeader { region, to } => {
                    let accepted = self
                        .pd
                        .transfer_leader(region, to)
                        .await
                        .map_err(pd_error)?;
                    let verified = self
                        .verify(&format!("region {region} led from store-{to}"), || async {
                            let r = self.pd.region(region).await?;
                            Ok(r.is_some_and(|r| r.leader.store_id == to))
                        })
                        .await?;
                    format!("{accepted}; {verified}")
                }
                TikvAction::TransferPeer { region, from, to } => {
                    let accepted = self
                        .pd
                        .transfer_peer(region, from, to)
                        .await
                        .map_err(pd_error)?;
                    let verified = self
                        .verify(
                            &format!(
                                "region {region}'s replica on store-{to}, none on store-{from}"
                            ),
                            || async {
                                let r = self.pd.region(region).await?;
                                Ok(r.is_some_and(|r| {
                                    let on = |store| r.peers.iter().any(|p| p.store_id == store);
                                    on(to) && !on(from)
                                }))
                            },
                        )
                        .await?;
                    format!("{accepted}; {verified}")
                }
                TikvAction::RebalanceLeaders { store } => self.rebalance_leaders(store).await?,
                TikvAction::DrainStore { store } => {
                    self.evict_leaders(store).await?;
                    self.verify(&format!("store-{store} leading no region"), || async {
                        Ok(self.pd.store(store).await?.status.leader_count == 0)
                    })
                    .await?;
                    let max = self.pd.max_replicas().await.map_err(pd_error)?;
                    let up = self
                        .pd
                        .stores()
                        .await
                        .map_err(pd_error)?
                        .stores
                        .iter()
                        .filter(|s| s.store.state_name == StoreState::Up)
                        .count() as u64;
                    if up <= max {
                        format!(
                            "leaders evicted from store-{store}; not taken offline: {} Up stores would remain while max-replicas is {max}",
                            up.saturating_sub(1)
                        )
                    } else {
                        let accepted = self.pd.delete_store(store).await.map_err(pd_error)?;
                        let verified = self
                            .verify(&format!("store-{store} Offline"), || async {
                                Ok(self.pd.store(store).await?.store.state_name
                                    == StoreState::Offline)
                            })
                            .await?;
                        format!("leaders evicted from store-{store}; {accepted}; {verified}")
                    }
                }
                TikvAction::UndrainStore { store } => {
                    // Not evicting already is fine: the store may lead either way.
                    self.stop_evicting(store).await?;
                    let state = self
                        .pd
                        .store(store)
                        .await
                        .map_err(pd_error)?
                        .store
                        .state_name;
                    if state == StoreState::Offline {
                        let accepted = self.pd.set_store_up(store).await.map_err(pd_error)?;
                        let verified = self
                            .verify(&format!("store-{store} Up"), || async {
                                Ok(self.pd.store(store).await?.store.state_name == StoreState::Up)
                            })
                            .await?;
                        format!("leaders may return to store-{store}; {accepted}; {verified}")
                    } else {
                        format!("leaders may return to store-{store}")
                    }
                }
                TikvAction::RestartNode { node } => {
                    target.start(&node).await?;
                    // Back means PD hears from it again: a store heartbeating (Up), a PD
                    // member healthy.
                    let verified = match store_id(&node.0) {
                        Some(id) => {
                            self.verify(&format!("{node} Up, heartbeating"), || async {
                                Ok(self.pd.store(id).await?.store.state_name == StoreState::Up)
                            })
                            .await?
                        }
                        None => {
                            self.verify(&format!("{node} healthy"), || async {
                                let health = self.pd.health().await?;
                                Ok(health.iter().any(|m| m.name == node.0 && m.health))
                            })
                            .await?
                        }
                    };
                    format!("{node} restarted; {verified}")
                }
            };
            Ok(ActionOutcome { summary })
        })
    }

    fn tools(&self) -> Vec<ToolSpec> {
        vec![
            ToolSpec { name: "store_detail".into(), description: "A store as PD reports it: state, whether it heartbeats, leaders, regions, slow score".into(), params: vec![ParamSpec::new("store", "store-N", ParamKind::String { max_len: 32 })] },
            ToolSpec { name: "pd_member".into(), description: "A PD member as PD's health check reports it: healthy, whether it leads, how many members serve".into(), params: vec![ParamSpec::new("member", "the member's name, e.g. pd2", ParamKind::String { max_len: 64 })] },
            ToolSpec { name: "cluster_overview".into(), description: "PD's leader and members, every store, the region checks, the workload".into(), params: vec![] },
            ToolSpec { name: "operators".into(), description: "Operators PD is running".into(), params: vec![] },
            ToolSpec { name: "metric_query".into(), description: "Read metrics: a PromQL instant query when Prometheus is configured, else a selector like tikv_raftstore_region_count{type=\"leader\"} over the latest scrape of PD and every store (labelled by instance)".into(), params: vec![ParamSpec::new("query", "PromQL, or a metric name with label matchers", ParamKind::String { max_len: 400 })] },
            ToolSpec { name: "log_tail".into(), description: "The last lines of a node's log (a store like store-2, or a PD member like pd1)".into(), params: vec![ParamSpec::new("node", "store-N or pdN", ParamKind::String { max_len: 32 }), ParamSpec { required: false, ..ParamSpec::new("lines", "how many lines (default 30)", ParamKind::Integer { min: 1, max: MAX_LOG_LINES as i64 }) }] },
            ToolSpec { name: "region_detail".into(), description: "A region as PD reports it: peers and their stores, leader, down and pending peers".into(), params: vec![ParamSpec::new("region", "region id", ParamKind::Integer { min: 1, max: i64::MAX })] },
        ]
    }

    fn call_tool<'a>(
        &'a self,
        call: &'a ToolCall,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<Value>> {
        Box::pin(async move {
            match call.tool.as_str() {
                "store_detail" => {
                    let store = store_param(&call.args)?;
                    let info = self.pd.store(store).await.map_err(pd_error)?;
                    // `heartbeating` saves a runbook from listing states: PD only calls a store
                    // Disconnected or Down once its heartbeats stop.
                    let heartbeating = !info.store.state_name.is_silent();
                    let mut detail = json!({ "store": store_node(store), "state_name": info.store.state_name, "heartbeating": heartbeating, "leader_count": info.status.leader_count, "region_count": info.status.region_count, "slow_score": info.status.slow_score, "status_address": info.store.status_address });
                    // The store's own metrics come from the latest observation (a tick old
                    // at most): whether its status server answers tells a dead process from
                    // one that only lost PD.
                    if let Some(own) = self.last_store_facts(store) {
                        detail["status_server_answers"] = json!(own.metrics_error.is_none());
                        detail["status_server_error"] = json!(own.metrics_error);
                        detail["append_log_ms"] =
                            json!(own.metrics.as_ref().and_then(|m| m.append_log_ms));
                        detail["own_metrics"] = json!(own.metrics);
                        detail["leader_eviction"] = json!(own.leader_eviction);
                        detail["leaders_evicted_by_someone_else"] = json!(matches!(
                            own.leader_eviction,
                            Some(LeaderEviction::BySomeoneElse | LeaderEviction::ByPd)
                        ));
                    }
                    Ok(detail)
                }
                "metric_query" => {
                    let query = text_param(&call.args, "query")?;
                    let mut samples = self
                        .telemetry
                        .query(query)
                        .await
                        .map_err(ContractError::Permanent)?;
                    let total = samples.len();
                    samples.truncate(MAX_QUERY_SAMPLES);
                    Ok(
                        json!({ "source": self.telemetry.describe(), "samples": samples, "total": total, "truncated": total > MAX_QUERY_SAMPLES }),
                    )
                }
                "log_tail" => {
                    let node = text_param(&call.args, "node")?;
                    let lines = call.args.get("lines").and_then(Value::as_u64).unwrap_or(30);
                    let lines = target
                        .tail_logs(&NodeId::from(node), lines.min(MAX_LOG_LINES) as usize)
                        .await?;
                    Ok(json!({ "node": node, "lines": lines }))
                }
                "pd_member" => {
                    let name = text_param(&call.args, "member")?;
                    let health = self.pd.health().await.map_err(pd_error)?;
                    let member = health.iter().find(|m| m.name == name).ok_or_else(|| {
                        let known: Vec<&str> = health.iter().map(|m| m.name.as_str()).collect();
                        ContractError::Refused(format!(
                            "PD has no member {name}; it has {}",
                            known.join(", ")
                        ))
                    })?;
                    let leader = self.pd.leader().await.ok().flatten().map(|m| m.name);
                    Ok(json!({
                        "member": name,
                        "healthy": member.health,
                        "leads": leader.as_deref() == Some(name),
                        "leader": leader,
                        "healthy_members": health.iter().filter(|m| m.health).count(),
                        "members": health.len(),
                    }))
                }
                "cluster_overview" => {
                    Ok(serde_json::to_value(self.facts().await).unwrap_or_default())
                }
                "operators" => Ok(json!(self.pd.operators().await.map_err(pd_error)?)),
                "region_detail" => {
                    let id = int_param(&call.args, "region")?;
                    let region = self.pd.region(id).await.map_err(pd_error)?.ok_or_else(|| {
                        ContractError::NotFound(format!("PD knows no region {id}"))
                    })?;
                    Ok(json!({
                        "region": region.id,
                        "stores": region.peers.iter().map(|p| store_node(p.store_id)).collect::<Vec<_>>(),
                        "leader": (region.leader.store_id != 0).then(|| store_node(region.leader.store_id)),
                        "leader_store_id": (region.leader.store_id != 0).then_some(region.leader.store_id),
                        "down_stores": Self::brief(&region).down_stores,
                        "pending_peers": region.pending_peers.len(),
                    }))
                }
                other => Err(ContractError::NotFound(format!("TiKV has no tool {other}"))),
            }
        })
    }

    fn chaos(&self) -> Vec<ChaosSpec> {
        chaos_catalog()
    }

    fn inject<'a>(
        &'a self,
        request: &'a ChaosRequest,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ChaosOutcome>> {
        Box::pin(async move {
            let node = request
                .params
                .get("store")
                .and_then(Value::as_str)
                .unwrap_or("store-2")
                .to_string();
            let outcome = |target: &str, summary: String| {
                Ok(ChaosOutcome {
                    target: target.into(),
                    summary,
                    effective_ms: None,
                })
            };
            match request.name.as_str() {
                "kill_store" => {
                    target.kill(&NodeId(node.clone())).await?;
                    outcome(&node, format!("killed {node}"))
                }
                "slow_store" => {
                    target.pause(&NodeId(node.clone())).await?;
                    outcome(&node, format!("{node} is slow"))
                }
                "hot_store" => {
                    let sim = self.simulator.as_ref().ok_or_else(|| {
                        ContractError::Refused(
                            "hot_store needs the simulator (or a skewed workload of your own)"
                                .into(),
                        )
                    })?;
                    let id = store_id(&node).ok_or_else(|| {
                        ContractError::Permanent("name the store like store-2".into())
                    })?;
                    self.http
                        .post(format!("{sim}/sim/store/{id}/hot"))
                        .send()
                        .await
                        .map_err(|e| ContractError::Retryable(e.to_string()))?;
                    outcome(&node, format!("leaders pile onto {node}"))
                }
                "kill_pd" => {
                    for pd in ["pd1", "pd2"] {
                        target.kill(&NodeId::from(pd)).await?;
                    }
                    outcome("pd", "killed pd1 and pd2: one of three members left".into())
                }
                other => Err(ContractError::NotFound(format!(
                    "TiKV has no chaos {other}"
                ))),
            }
        })
    }

    fn runbook(&self) -> Runbook {
        runbook()
    }

    fn consequences(&self) -> Vec<Consequence> {
        consequences()
    }
}

/// What follows from what in a TiKV cluster: a store down leaves its regions short of
/// replicas (or of a quorum), its leaders elsewhere and the workload lower; a slow store sheds
/// leaders; PD without a leader reports its members down.
pub fn consequences() -> Vec<Consequence> {
    use crate::invariants::*;
    [
        (STORE_DOWN, REGION_UNDER_REPLICATED),
        (STORE_DOWN, REGION_BELOW_QUORUM),
        (STORE_DOWN, LEADER_IMBALANCE),
        (STORE_DOWN, WORKLOAD_DROP),
        (SLOW_STORE, LEADER_IMBALANCE),
        (PD_NO_LEADER, PD_MEMBER_DOWN),
        (PD_NO_LEADER, WORKLOAD_DROP),
    ]
    .into_iter()
    .map(|(cause, symptom)| Consequence::new(cause, symptom))
    .collect()
}

/// The faults this subject injects, with the ground truth each stands for; needs no cluster.
pub fn chaos_catalog() -> Vec<ChaosSpec> {
    let store = || ParamSpec {
        required: false,
        ..ParamSpec::new(
            "store",
            "which store (default store-2)",
            ParamKind::String { max_len: 32 },
        )
    };
    vec![
        ChaosSpec {
            name: "kill_store".into(),
            description: "Kill a TiKV store".into(),
            root_cause: "store_crashed".into(),
            expected_invariant: invariants::STORE_DOWN.into(),
            params: vec![store()],
            needs: vec![Disturbance::Kill],
        },
        ChaosSpec {
            name: "slow_store".into(),
            description: "Make a store slow (its slow score rises)".into(),
            root_cause: "store_slow".into(),
            expected_invariant: invariants::SLOW_STORE.into(),
            params: vec![store()],
            needs: vec![Disturbance::Pause],
        },
        ChaosSpec {
            name: "hot_store".into(),
            description: "Skew the workload: leaders pile onto one store (simulator)".into(),
            root_cause: "leader_skew".into(),
            expected_invariant: invariants::LEADER_IMBALANCE.into(),
            params: vec![store()],
            needs: vec![],
        },
        ChaosSpec {
            name: "kill_pd".into(),
            description: "Kill PD members until no majority is left".into(),
            root_cause: "pd_quorum_lost".into(),
            expected_invariant: invariants::PD_NO_LEADER.into(),
            params: vec![],
            needs: vec![Disturbance::Kill],
        },
    ]
}

pub fn runbook() -> Runbook {
    toml::from_str(include_str!("runbook.toml")).expect("runbook.toml is checked by a unit test")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runbook_parses_and_covers_every_chaos() {
        let runbook: operator_protocol::Runbook =
            toml::from_str(include_str!("runbook.toml")).unwrap();
        for (invariant, cause) in [
            ("store_down", "store_crashed"),
            ("slow_store", "store_slow"),
            ("leader_imbalance", "leader_skew"),
            ("pd_no_leader", "pd_quorum_lost"),
            ("pd_member_down", "pd_member_crashed"),
        ] {
            let entry = runbook
                .entry(invariant)
                .unwrap_or_else(|| panic!("no entry for {invariant}"));
            assert!(
                entry.hypotheses.iter().any(|h| h.root_cause == cause),
                "{invariant}: no {cause}"
            );
        }
    }
}
