//! operator-tui's subject adapter for ratelimiter-svc. It observes the nodes and Redis over
//! HTTP and the Redis protocol, checks six invariants, and offers actions, read-only tools,
//! chaos and a runbook. It knows the service only by its API.

pub mod actions;
mod chaos;
pub mod cluster;
pub mod disturb;
pub mod drills;
pub mod facts;
pub mod invariants;
pub mod observe;
mod runbook;
pub mod simulated;
mod tools;
pub mod workload;

use std::sync::Arc;

use operator_protocol::*;

pub use cluster::Endpoints;
use facts::Facts;
use invariants::Thresholds;
use observe::Observer;
use serde::Deserialize;

pub const NAME: &str = "ratelimiter";

/// How long a count's drift may outlast the Redis trouble that caused it: two of the longest
/// window a deployment here uses (5 s), so a window that began during the trouble has ended.
pub const DRIFT_OUTLASTS_MS: u64 = 10_000;

/// The chaos catalog for a cluster with these nodes; it needs no connection.
pub fn chaos_catalog(nodes: &[String]) -> Vec<ChaosSpec> {
    chaos::specs(nodes)
}

/// The runbook, which needs no connection either.
pub fn runbook() -> Runbook {
    runbook::runbook()
}

pub struct RateLimiterSubject {
    observer: Observer,
    thresholds: Thresholds,
    /// The facts of the latest observation, for tools that describe "now".
    last: Latest<Facts>,
}

impl RateLimiterSubject {
    pub fn new(endpoints: Endpoints) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            observer: Observer::new(endpoints)?,
            thresholds: Thresholds::default(),
            last: Latest::default(),
        }))
    }

    pub fn endpoints(&self) -> &Endpoints {
        self.observer.endpoints()
    }

    fn last_facts(&self) -> Option<Facts> {
        self.last.get()
    }

    /// Sends an admin request to the first node that answers it.
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> ContractResult<serde_json::Value> {
        let endpoints = self.endpoints();
        let mut last_error = String::from("no node configured");
        for (id, url) in &endpoints.nodes {
            let mut request = self
                .observer
                .http()
                .request(method.clone(), format!("{url}{path}"))
                .bearer_auth(&endpoints.admin_token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.map_err(|e| {
                        ContractError::Permanent(format!("{id} answered {path} with bad JSON: {e}"))
                    });
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    // A client error is about the request, not the node: trying others won't help.
                    if status.is_client_error() {
                        return Err(ContractError::from_status(
                            status.as_u16(),
                            format!("{id} refused {path}: {status} {text}"),
                        ));
                    }
                    last_error = format!("{id}: {status} {text}");
                }
                Err(e) => last_error = format!("{id}: {e}"),
            }
        }
        // Every node failed with a server error or no answer: that may pass.
        Err(ContractError::Retryable(format!(
            "no node answered {path}: {last_error}"
        )))
    }

    /// Sends a request to one node's chaos or admin API.
    async fn node_request(
        &self,
        node: &str,
        path: &str,
        body: serde_json::Value,
    ) -> ContractResult<serde_json::Value> {
        let url = self
            .endpoints()
            .node_url(node)
            .ok_or_else(|| ContractError::NotFound(format!("no node {node}")))?;
        let response = self
            .observer
            .http()
            .post(format!("{url}{path}"))
            .bearer_auth(&self.endpoints().admin_token)
            .json(&body)
            .send()
            .await
            .map_err(|e| ContractError::Retryable(format!("{node}: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(ContractError::from_status(
                status.as_u16(),
                format!("{node} refused {path}: {status} {text}"),
            ));
        }
        serde_json::from_str(&text)
            .map_err(|e| ContractError::Permanent(format!("{node}: bad JSON from {path}: {e}")))
    }
}

fn str_param<'a>(
    params: &'a std::collections::BTreeMap<String, serde_json::Value>,
    name: &str,
    default: &'a str,
) -> &'a str {
    params.get(name).and_then(|v| v.as_str()).unwrap_or(default)
}

impl Subject for RateLimiterSubject {
    fn name(&self) -> &str {
        NAME
    }

    fn observe(&self) -> BoxFuture<'_, ContractResult<Observation>> {
        Box::pin(async move {
            let observation = self.observer.observe(unix_now_ms()).await;
            if let Ok(facts) = Facts::deserialize(&observation.facts) {
                self.last.set(facts);
            }
            Ok(observation)
        })
    }

    fn check(&self, observation: &Observation) -> Vec<Violation> {
        check_with(observation, &self.thresholds)
    }

    fn actions(&self) -> Vec<ActionSpec> {
        actions::specs(&self.endpoints().node_ids())
    }

    fn execute<'a>(
        &'a self,
        request: &'a ActionRequest,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ActionOutcome>> {
        Box::pin(self.execute_action(request, target))
    }

    fn tools(&self) -> Vec<ToolSpec> {
        tools::specs(&self.endpoints().node_ids())
    }

    fn call_tool<'a>(
        &'a self,
        call: &'a ToolCall,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(self.run_tool(call, target))
    }

    fn chaos(&self) -> Vec<ChaosSpec> {
        chaos::specs(&self.endpoints().node_ids())
    }

    fn inject<'a>(
        &'a self,
        request: &'a ChaosRequest,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ChaosOutcome>> {
        Box::pin(self.inject_chaos(request, target))
    }

    fn runbook(&self) -> Runbook {
        runbook::runbook()
    }

    fn trouble(&self, observation: &Observation, violations: &[Violation]) -> Trouble {
        trouble(observation, violations)
    }

    fn consequences(&self) -> Vec<Consequence> {
        consequences()
    }
}

/// Every invariant over one observation's facts, with the default thresholds.
pub fn check(observation: &Observation) -> Vec<Violation> {
    check_with(observation, &Thresholds::default())
}

fn check_with(observation: &Observation, thresholds: &Thresholds) -> Vec<Violation> {
    match Facts::deserialize(&observation.facts) {
        Ok(facts) => invariants::all(&facts, thresholds),
        Err(e) => vec![Violation::unreadable_facts(NAME, e)],
    }
}

/// The violations, plus the share of checks denied: a limit set too low shows there
/// before any invariant breaks (a tenth of the checks denied weighs one point).
pub fn trouble(observation: &Observation, violations: &[Violation]) -> Trouble {
    let mut trouble = Trouble::of_violations(violations);
    if let Some(workload) = observation
        .workload
        .as_ref()
        .filter(|w| w.ops_per_sec > 0.0)
    {
        let denied = workload.split.get("denied").copied().unwrap_or(0.0) / workload.ops_per_sec;
        trouble.score += denied * 10.0;
        trouble.summary = format!(
            "{}, {:.0} % of checks denied",
            trouble.summary,
            denied * 100.0
        );
    }
    trouble
}

/// Which broken invariants follow from which (see `Subject::consequences`).
pub fn consequences() -> Vec<Consequence> {
    use invariants::*;
    // Trouble between the nodes and Redis shows on every key and every node (slow checks,
    // checks decided by the fail mode, nodes allowing without Redis). A count that
    // drifted meanwhile (writes that landed after a pause, writes Redis refused) heals at
    // its window's end: it is the trouble's aftermath for as long as the longest window.
    // A Redis that is full (memory, clients) is the same trouble seen earlier, from Redis's
    // side: what its refusals do to the nodes and the counts is its aftermath.
    [REDIS_DISCONNECTED, REDIS_MEMORY_FULL, REDIS_CLIENTS_FULL]
        .into_iter()
        .flat_map(|cause| {
            [DECISIONS_UNBACKED, HIGH_LATENCY, GHOST_ALLOWING]
                .into_iter()
                .map(move |symptom| Consequence::new(cause, symptom))
                .chain(std::iter::once(
                    Consequence::new(cause, COUNTER_DRIFT).outlasting(DRIFT_OUTLASTS_MS),
                ))
        })
        .collect()
}
