//! The TiKV subject: observes the cluster through PD's HTTP API (stores, members, region
//! checks, config) and the simulator's or PD's metrics, checks the invariants, and acts
//! through PD (operators, evict-leader, store offline) or the deployment target (restarts).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use operator_protocol::*;
use serde::Deserialize;
use serde_json::Value;

use crate::actions;
pub use crate::chaos::chaos_catalog;
use crate::facts::*;
use crate::invariants::{self, Thresholds};
use crate::pd::PdClient;
use crate::remedies::PD_SCHEDULER;
pub use crate::runbook::{consequences, runbook};
use crate::telemetry::Telemetry;

pub const NAME: &str = "tikv";
/// What one `metric_query` answer carries at most, to keep a brain's context small.
pub(crate) const MAX_QUERY_SAMPLES: usize = 60;
pub(crate) const MAX_LOG_LINES: u64 = 200;

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
    /// A simulated cluster answering in-process on its own clock; None: the network and the
    /// system clock.
    pub in_process: Option<InProcess>,
}

/// How a simulation answers PD's and the stores' HTTP requests without a socket, and its time.
#[derive(Clone)]
pub struct InProcess {
    pub transport: Arc<dyn HttpTransport>,
    pub time: TimeSource,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InProcess({:?})", self.time)
    }
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
    pub(crate) pd: PdClient,
    pub(crate) telemetry: Telemetry,
    /// PD's and the stores' HTTP (the hot-store chaos posts to the simulator through it).
    pub(crate) transport: Arc<dyn HttpTransport>,
    pub(crate) time: TimeSource,
    pub(crate) thresholds: Thresholds,
    pub(crate) verify_timeout: std::time::Duration,
    /// Recent ops/s samples; their median is the workload's baseline.
    pub(crate) history: Mutex<VecDeque<f64>>,
    pub(crate) last: Latest<Facts>,
    /// PD's region checks as last listed, and what they were listed under.
    pub(crate) region_lists: Mutex<Option<crate::observe::RegionLists>>,
    pub(crate) simulator: Option<String>,
    /// Stores this process asked PD to evict leaders from (a drain, a rebalance under way):
    /// any other eviction PD runs is someone else's, on purpose.
    pub(crate) own_evictions: Mutex<BTreeSet<u64>>,
    /// Where the schedulers it adds are recorded before they exist (the engine's database).
    pub(crate) ledger: std::sync::OnceLock<std::sync::Arc<dyn Ledger>>,
}

pub(crate) fn store_node(id: u64) -> String {
    format!("store-{id}")
}

pub(crate) fn store_id(node: &str) -> Option<u64> {
    node.strip_prefix("store-")?.parse().ok()
}

impl TikvSubject {
    pub fn new(options: TikvOptions) -> Result<Self, String> {
        let first = options
            .pd_members
            .first()
            .ok_or("name at least one PD member (--pd http://127.0.0.1:2379)")?
            .clone();
        // Metrics scrapes and the simulator's controls give up sooner than PD's API (3 s):
        // a store that takes this long is itself the finding.
        let scrape_timeout = std::time::Duration::from_millis(800);
        let (pd, transport, time): (_, Arc<dyn HttpTransport>, _) = match options.in_process {
            Some(sim) => (
                PdClient::with_transport(options.pd_members, sim.transport.clone())?,
                sim.transport,
                sim.time,
            ),
            None => (
                PdClient::new(options.pd_members)?,
                Arc::new(ReqwestTransport::new(scrape_timeout)?),
                TimeSource::default(),
            ),
        };
        let telemetry = match &options.prometheus {
            Some(url) => {
                let http = reqwest::Client::builder()
                    .timeout(scrape_timeout)
                    .build()
                    .map_err(|e| e.to_string())?;
                Telemetry::prometheus(url, http)
            }
            None => Telemetry::direct(&first, options.status_rewrites.clone(), transport.clone()),
        };
        Ok(Self {
            pd,
            telemetry,
            transport,
            time,
            thresholds: Thresholds::default(),
            verify_timeout: options
                .verify_timeout
                .unwrap_or(std::time::Duration::from_secs(30)),
            history: Mutex::new(VecDeque::new()),
            last: Latest::default(),
            region_lists: Mutex::default(),
            simulator: options.simulator,
            own_evictions: Mutex::new(BTreeSet::new()),
            ledger: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn last_store_facts(&self, id: u64) -> Option<StoreFacts> {
        self.last
            .with(|last| last?.stores.iter().find(|s| s.id == id).cloned())
    }

    /// The operators the latest observation saw PD running on the store.
    pub(crate) fn last_operators_on(&self, id: u64) -> Vec<String> {
        self.last.with(|last| {
            last.map(|f| {
                f.pd.operators_on(id)
                    .into_iter()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        })
    }

    pub(crate) fn node_ids(&self) -> Vec<String> {
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
pub(crate) fn pd_error(e: crate::pd::PdError) -> ContractError {
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
            let observation = Self::observation(self.time.now_ms(), &facts);
            self.last.set(facts);
            Ok(observation)
        })
    }

    fn check(&self, observation: &Observation) -> Vec<Violation> {
        match Facts::deserialize(&observation.facts) {
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
        Box::pin(self.execute_action(request, target))
    }

    fn tools(&self) -> Vec<ToolSpec> {
        crate::tools::specs()
    }

    fn call_tool<'a>(
        &'a self,
        call: &'a ToolCall,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<Value>> {
        Box::pin(self.run_tool(call, target))
    }

    fn chaos(&self) -> Vec<ChaosSpec> {
        crate::chaos::chaos_catalog()
    }

    fn inject<'a>(
        &'a self,
        request: &'a ChaosRequest,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ChaosOutcome>> {
        Box::pin(self.inject_chaos(request, target))
    }

    fn runbook(&self) -> Runbook {
        crate::runbook::runbook()
    }

    fn consequences(&self) -> Vec<Consequence> {
        crate::runbook::consequences()
    }
}
