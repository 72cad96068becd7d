//! The `sim` deployment target: the simulator's nodes (stores and PD members) and its chaos
//! controls, over HTTP. A killed store or PD member stops answering, a stopped one (SIGTERM)
//! exits cleanly and says so; pause makes a store slow.

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::{
    BoxFuture, ContractError, ContractResult, DeploymentTarget, HttpRequest, HttpTransport, NodeId,
    ReqwestTransport,
};
use serde_json::json;

pub struct SimTarget {
    url: String,
    nodes: Vec<NodeId>,
    transport: Arc<dyn HttpTransport>,
}

/// "store-2" → ("store", "2"); "pd1" → ("pd", "pd1").
fn address(node: &NodeId) -> ContractResult<(&'static str, String)> {
    if let Some(id) = node.0.strip_prefix("store-") {
        Ok(("store", id.to_string()))
    } else if node.0.starts_with("pd") {
        Ok(("pd", node.0.clone()))
    } else {
        Err(ContractError::Refused(format!(
            "the simulator has no node {node}"
        )))
    }
}

impl SimTarget {
    /// The target over a simulator started with `config`: its stores, then its PD members.
    pub fn for_simulator(url: &str, config: &crate::model::SimConfig) -> Self {
        Self::new(url, Self::nodes_of(config))
    }

    /// Every store, then every PD member, of a simulator started with `config`.
    pub fn nodes_of(config: &crate::model::SimConfig) -> Vec<NodeId> {
        let stores = (1..=config.stores).map(|i| NodeId(format!("store-{i}")));
        let pd = (1..=config.pd_members).map(|i| NodeId(format!("pd{i}")));
        stores.chain(pd).collect()
    }

    pub fn new(url: &str, nodes: Vec<NodeId>) -> Self {
        let transport =
            ReqwestTransport::new(Duration::from_secs(3)).expect("an HTTP client with a timeout");
        Self::with_transport(url, nodes, Arc::new(transport))
    }

    /// Through `transport` (in-process for a simulation).
    pub fn with_transport(
        url: &str,
        nodes: Vec<NodeId>,
        transport: Arc<dyn HttpTransport>,
    ) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            nodes,
            transport,
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> ContractResult<T> {
        let answer = self
            .transport
            .send(HttpRequest::get(url))
            .await
            .map_err(|e| ContractError::Retryable(format!("the simulator: {e}")))?;
        if !answer.is_success() {
            return Err(ContractError::from_status(answer.status, answer.body));
        }
        serde_json::from_str(&answer.body)
            .map_err(|e| ContractError::Permanent(format!("the simulator's {url}: {e}")))
    }

    async fn control(&self, node: &NodeId, verb: &str) -> ContractResult<()> {
        let (kind, id) = address(node)?;
        let url = format!("{}/sim/{kind}/{id}/{verb}", self.url);
        let answer = self
            .transport
            .send(HttpRequest::new("POST", &url))
            .await
            .map_err(|e| ContractError::Retryable(format!("the simulator: {e}")))?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(ContractError::Permanent(format!(
                "the simulator refused {verb} {node}: {}",
                answer.body
            )))
        }
    }
}

impl DeploymentTarget for SimTarget {
    fn kind(&self) -> &str {
        "sim"
    }

    fn simulated(&self) -> bool {
        true
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.nodes.clone()
    }

    fn kill<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.control(node, "kill"))
    }

    fn stop<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.control(node, "stop"))
    }

    fn start<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.control(node, "restart"))
    }

    /// A store's pause is a slow disk (the simulator's own); a PD member's is SIGSTOP.
    fn pause<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        let verb = if node.0.starts_with("pd") {
            "pause"
        } else {
            "slow"
        };
        Box::pin(self.control(node, verb))
    }

    fn resume<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        let verb = if node.0.starts_with("pd") {
            "resume"
        } else {
            "fast"
        };
        Box::pin(self.control(node, verb))
    }

    fn isolate<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.control(node, "kill"))
    }

    fn heal<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.control(node, "restart"))
    }

    fn tail_logs<'a>(
        &'a self,
        node: &'a NodeId,
        lines: usize,
    ) -> BoxFuture<'a, ContractResult<Vec<String>>> {
        Box::pin(async move {
            let failed =
                |e: &dyn std::fmt::Display| ContractError::Retryable(format!("{node}'s log: {e}"));
            let url = format!("{}/sim/log/{node}?lines={lines}", self.url);
            let answer = self
                .transport
                .send(HttpRequest::get(&url))
                .await
                .map_err(|e| failed(&e))?;
            if !answer.is_success() {
                return Err(failed(&answer.body.trim()));
            }
            Ok(answer.body.lines().map(String::from).collect())
        })
    }

    fn describe<'a>(
        &'a self,
        node: &'a NodeId,
    ) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(async move {
            let url = format!("{}/sim/process/{node}", self.url);
            marked(node, self.get_json(&url).await?)
        })
    }

    /// Every process in one request (`/sim/processes`), as a supervisor's listing answers.
    fn describe_all<'a>(
        &'a self,
        nodes: &'a [NodeId],
    ) -> BoxFuture<'a, Vec<ContractResult<serde_json::Value>>> {
        Box::pin(async move {
            let url = format!("{}/sim/processes", self.url);
            let listed: ContractResult<serde_json::Map<String, serde_json::Value>> =
                self.get_json(&url).await;
            nodes
                .iter()
                .map(|node| {
                    let listed = listed.as_ref().map_err(Clone::clone)?;
                    let described = listed.get(&node.0).cloned().ok_or_else(|| {
                        ContractError::Permanent(format!("the simulator lists no {node}"))
                    })?;
                    marked(node, described)
                })
                .collect()
        })
    }
}

/// What the simulator says of a node's process, marked as simulated and with the node's kind.
fn marked(node: &NodeId, mut described: serde_json::Value) -> ContractResult<serde_json::Value> {
    let (kind, _) = address(node)?;
    described["simulated"] = json!(true);
    described["kind"] = json!(kind);
    Ok(described)
}
