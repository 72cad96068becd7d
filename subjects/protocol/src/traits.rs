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

/// An error crossing the contract, classed by what the caller can do about it. The message
/// is for a person; the variant is for the executor, which retries only what is retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// Trying again may work: a timeout, a 5xx answer, a connection refused while the
    /// service restarts.
    #[error("{0}")]
    Retryable(String),
    /// Trying again fails the same way: a 4xx refusal, an invalid request, a broken setup.
    #[error("{0}")]
    Permanent(String),
    /// What the request names does not exist (a node, a region, a key, a tool).
    #[error("{0}")]
    NotFound(String),
    /// The subject or target refuses on purpose (its own safety rule, a state that forbids
    /// it, a target that cannot do this).
    #[error("{0}")]
    Refused(String),
}

impl ContractError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ContractError::Retryable(_))
    }

    /// The class of an HTTP answer's status: 5xx and 429 may pass, 404 names nothing, other
    /// 4xx refuse the request.
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        match status {
            429 | 500..=599 => ContractError::Retryable(message),
            404 => ContractError::NotFound(message),
            _ => ContractError::Permanent(message),
        }
    }

    /// The same class with more context in front of the message.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            ContractError::Retryable(m) => ContractError::Retryable(wrap(m)),
            ContractError::Permanent(m) => ContractError::Permanent(wrap(m)),
            ContractError::NotFound(m) => ContractError::NotFound(wrap(m)),
            ContractError::Refused(m) => ContractError::Refused(wrap(m)),
        }
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
    /// Which broken invariants follow from which: a store down leaves regions
    /// under-replicated. Tickets so related join one incident, and a symptom waits for its
    /// cause rather than being remedied on its own.
    fn consequences(&self) -> Vec<Consequence> {
        Vec::new()
    }
    /// How troubled the cluster looks (the no-regression check compares it before and after
    /// an action). By default the violations by severity; a subject may add what its workload
    /// shows.
    fn trouble(&self, _observation: &Observation, violations: &[Violation]) -> crate::Trouble {
        crate::Trouble::of_violations(violations)
    }
    /// Where to record what actions leave in the cluster (see [`Ledger`]); subjects whose
    /// actions leave nothing ignore it.
    fn attach_ledger(&self, _ledger: std::sync::Arc<dyn crate::Ledger>) {}
    /// Removes something an action left (recording it in the ledger as gone); what it says
    /// goes to the audit log.
    fn clean_up<'a>(
        &'a self,
        residue: &'a crate::Residue,
    ) -> BoxFuture<'a, ContractResult<String>> {
        Box::pin(async move {
            Err(ContractError::NotFound(format!(
                "{} leaves no {} to remove",
                self.name(),
                residue.kind
            )))
        })
    }
}

/// `symptom` is what `cause` (both invariant names) brings about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Consequence {
    pub cause: String,
    pub symptom: String,
    /// How long the symptom may outlast its cause by itself, in milliseconds (a count that
    /// drifted while Redis was away heals at its window's end): while it does, it is still the
    /// cause's aftermath, and nothing acts on it. 0: it ends with its cause.
    #[serde(default)]
    pub outlasts_ms: u64,
}

impl Consequence {
    pub fn new(cause: &str, symptom: &str) -> Self {
        Self {
            cause: cause.into(),
            symptom: symptom.into(),
            outlasts_ms: 0,
        }
    }

    /// The symptom may outlast its cause by `ms` by itself.
    pub fn outlasting(self, ms: u64) -> Self {
        Self {
            outlasts_ms: ms,
            ..self
        }
    }
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
    /// Whether it can disturb a node this way at all (the rest refuse with a reason).
    fn can(&self, disturbance: crate::Disturbance) -> bool {
        // Starting with other flags needs a target that implements `start_with`.
        disturbance != crate::Disturbance::Reconfigure
    }
    fn kill<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn stop<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    fn start<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>>;
    /// Starts a stopped node with these flags changed (by name without dashes: `("fail-mode",
    /// "closed")` sets `--fail-mode closed`, added when it had none), as a person restarting it
    /// by hand with other settings would; it keeps them
    /// from then on, whoever starts it next. Only targets that `can(Reconfigure)`.
    fn start_with<'a>(
        &'a self,
        node: &'a NodeId,
        flags: &'a [(String, String)],
    ) -> BoxFuture<'a, ContractResult<()>> {
        let _ = flags;
        Box::pin(async move {
            Err(ContractError::Refused(format!(
                "the {} target cannot start {node} with other flags",
                self.kind()
            )))
        })
    }
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
    /// `describe` for each of `nodes`, in their order: every observation reads them all, and
    /// a target that can answer for all at once (one request, one listing) overrides this.
    fn describe_all<'a>(
        &'a self,
        nodes: &'a [NodeId],
    ) -> BoxFuture<'a, Vec<ContractResult<serde_json::Value>>> {
        Box::pin(async move {
            let mut described = Vec::with_capacity(nodes.len());
            for node in nodes {
                described.push(self.describe(node).await);
            }
            described
        })
    }
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
    /// Whether its confidence is measured from the runbook's checks (the rules brain). Any
    /// other brain's is only claimed: the engine caps it by what the checks find.
    fn measures_its_confidence(&self) -> bool {
        false
    }
    /// The result is untrusted input: the engine validates it before anything runs on it.
    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>>;
    /// Whether `ask` answers free questions (front ends say so before connecting to anything).
    fn answers_questions(&self) -> bool {
        false
    }
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
            Err(ContractError::Refused(format!(
                "the {} brain diagnoses tickets from the runbook and answers no free questions; use --brain anthropic or openai",
                self.name()
            )))
        })
    }
}
