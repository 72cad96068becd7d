//! The three contracts. Futures are boxed so the engine can hold any subject, target or brain
//! behind `dyn` and choose them at run time.

use std::future::Future;
use std::pin::Pin;

use crate::{
    ActionOutcome, ActionRequest, ActionSpec, ChaosOutcome, ChaosRequest, ChaosSpec, Diagnosis,
    DiagnosisContext, NodeId, Observation, QuestionContext, ReasoningEvent, Runbook, ToolCall,
    ToolSpec, Violation,
};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An error crossing the contract: a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractError(pub String);

impl std::fmt::Display for ContractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ContractError {}

impl ContractError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

pub type ContractResult<T> = Result<T, ContractError>;

/// A system the operator watches.
pub trait Subject: Send + Sync {
    fn name(&self) -> &str;
    /// One poll of the cluster. An error means nothing could be seen, not "all healthy".
    fn observe(&self) -> BoxFuture<'_, ContractResult<Observation>>;
    /// Every invariant over one observation; pure.
    fn check(&self, observation: &Observation) -> Vec<Violation>;
    fn actions(&self) -> Vec<ActionSpec>;
    fn execute<'a>(
        &'a self,
        request: &'a ActionRequest,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ActionOutcome>>;
    fn tools(&self) -> Vec<ToolSpec>;
    /// Read-only: tools may ask the target (process state, logs) but never change anything.
    fn call_tool<'a>(
        &'a self,
        call: &'a ToolCall,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<serde_json::Value>>;
    fn chaos(&self) -> Vec<ChaosSpec>;
    fn inject<'a>(
        &'a self,
        request: &'a ChaosRequest,
        target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ChaosOutcome>>;
    fn runbook(&self) -> Runbook;
}

/// Where a subject's processes run, and the means to disturb them.
pub trait DeploymentTarget: Send + Sync {
    /// "local", "docker", "sim".
    fn kind(&self) -> &str;
    /// True when the cluster is simulated; the screen says so.
    fn simulated(&self) -> bool {
        false
    }
    fn nodes(&self) -> Vec<NodeId>;
    fn kill<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn stop<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn start<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn pause<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn resume<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    /// Cut a node off from its peers (a partition); `heal` undoes it.
    fn isolate<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn heal<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn tail_logs<'a>(
        &'a self,
        node: &'a NodeId,
        lines: usize,
    ) -> BoxFuture<'a, ContractResult<Vec<String>>>;
    /// What the target knows of a node's process or container: state ("running", "stopped",
    /// "exited"), pid, restarts. Evidence for brains, like `docker ps`.
    fn describe<'a>(&'a self, node: &'a NodeId)
    -> BoxFuture<'a, ContractResult<serde_json::Value>>;
}

/// The read-only tools a brain may call while diagnosing.
pub trait ToolBox: Send + Sync {
    fn specs(&self) -> Vec<ToolSpec>;
    fn call<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, ContractResult<serde_json::Value>>;
}

/// Where a brain's reasoning goes as it is produced.
pub trait ReasoningSink: Send + Sync {
    fn emit(&self, event: ReasoningEvent);
}

pub trait Brain: Send + Sync {
    /// Shown on screen: "rules", "anthropic claude-sonnet-4-5" ...
    fn name(&self) -> String;
    /// The result is untrusted input: the engine validates it before anything runs on it.
    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>>;
    /// Answers a question about the live cluster with the read-only tools. Brains that only
    /// diagnose tickets say so.
    fn ask<'a>(
        &'a self,
        context: &'a QuestionContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<String>> {
        let _ = (context, tools, sink);
        Box::pin(async move {
            Err(ContractError::new(format!(
                "the {} brain diagnoses tickets from the runbook and answers no free questions; use --brain anthropic or openai",
                self.name()
            )))
        })
    }
}
