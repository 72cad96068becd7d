//! The `none` target: no control over the cluster's processes. The operator still watches,
//! and still acts through the subject's own API (PD's operators and schedulers for TiKV);
//! anything that needs a process restarted or disturbed is refused with what to use instead.

use operator_protocol::{BoxFuture, ContractError, ContractResult, DeploymentTarget, NodeId};

pub struct WatchOnly {
    nodes: Vec<NodeId>,
}

impl WatchOnly {
    pub fn new(nodes: Vec<NodeId>) -> Self {
        Self { nodes }
    }

    fn refuse<T: Send + 'static>(
        node: &NodeId,
        what: &str,
    ) -> BoxFuture<'static, ContractResult<T>> {
        let message = format!(
            "cannot {what} {node}: --target none has no control over processes (use --target docker for a Compose cluster)"
        );
        Box::pin(async move { Err(ContractError::Refused(message)) })
    }
}

impl DeploymentTarget for WatchOnly {
    fn kind(&self) -> &str {
        "none"
    }

    fn can(&self, _: operator_protocol::Disturbance) -> bool {
        false
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.nodes.clone()
    }

    fn kill<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Self::refuse(node, "kill")
    }

    fn stop<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Self::refuse(node, "stop")
    }

    fn start<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Self::refuse(node, "start")
    }

    fn pause<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Self::refuse(node, "pause")
    }

    fn resume<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Self::refuse(node, "resume")
    }

    fn isolate<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Self::refuse(node, "isolate")
    }

    fn heal<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Self::refuse(node, "heal")
    }

    fn tail_logs<'a>(
        &'a self,
        node: &'a NodeId,
        _lines: usize,
    ) -> BoxFuture<'a, ContractResult<Vec<String>>> {
        Self::refuse(node, "read the log of")
    }

    fn describe<'a>(
        &'a self,
        node: &'a NodeId,
    ) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        let known = self.nodes.contains(node);
        Box::pin(async move { Ok(serde_json::json!({ "known": known, "controlled": false })) })
    }
}
