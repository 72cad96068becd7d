//! A small subject over plain data, so the real engine can run without a cluster: nodes that
//! are up or down, a restart that can be slow or flaky, a log that can carry a prompt
//! injection, and a runbook of two causes. The engine's integration tests, the examples and
//! the overhead benchmark drive it; nothing in operator-tui's own commands uses it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use operator_protocol::*;
use serde_json::json;

#[derive(Debug, Default)]
pub struct FakeState {
    pub healthy: BTreeMap<String, bool>,
    pub restart_delay: Duration,
    pub restart_failures_left: u32,
    pub executed: Vec<ActionRequest>,
    pub observe_error: Option<String>,
    pub log: Vec<String>,
    /// Nodes the observation leaves out (it sees only part of the cluster).
    pub unseen: Vec<String>,
    /// A restart leaves a flag set on its node (recorded in the ledger first), as a drain
    /// leaves a scheduler: residue for the engine to remove.
    pub restart_leaves_a_flag: bool,
    /// The flags set now.
    pub flags: Vec<String>,
}

#[derive(Clone)]
pub struct FakeSubject {
    pub state: Arc<Mutex<FakeState>>,
    ledger: Arc<std::sync::OnceLock<Arc<dyn Ledger>>>,
}

fn flag(node: &str) -> Residue {
    Residue::new(
        "flag",
        &format!("flag-{node}"),
        &format!("{node} is flagged"),
    )
}

impl FakeSubject {
    pub fn new(nodes: &[&str]) -> Self {
        let state = FakeState {
            healthy: nodes.iter().map(|n| (n.to_string(), true)).collect(),
            ..FakeState::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            ledger: Arc::default(),
        }
    }

    pub fn set_healthy(&self, node: &str, healthy: bool) {
        self.state
            .lock()
            .unwrap()
            .healthy
            .insert(node.into(), healthy);
    }

    pub fn executed(&self) -> Vec<ActionRequest> {
        self.state.lock().unwrap().executed.clone()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

/// A fake's restart: disruptive, loses the node's memory, and presumes the node unhealthy
/// (its `node_detail` says `"healthy": false`).
pub fn restart_node_spec() -> ActionSpec {
    ActionSpec {
        node_param: Some("node".into()),
        destroys: Some("the node's in-memory state".into()),
        // As a real restart: the node stays down until someone acts; its memory refills.
        worth: Some(Worth::new(
            "the node serving again",
            Span::UntilActedOn,
            Span::Moment,
        )),
        premises: vec![Premise {
            description: "the node is not serving".into(),
            any_of: vec![Probe::new(
                "the node is unhealthy",
                "node_detail",
                json!({ "node": "{param.node}" }),
                "/healthy",
                Expectation::Equals {
                    value: json!(false),
                },
            )],
        }],
        ..ActionSpec::new(
            "restart_node",
            "restart a node",
            vec![node_param()],
            Risk::Disruptive,
        )
    }
}

fn node_param() -> ParamSpec {
    ParamSpec::new("node", "the node", ParamKind::Node)
}

impl Subject for FakeSubject {
    fn name(&self) -> &str {
        "fake"
    }

    fn observe(&self) -> BoxFuture<'_, ContractResult<Observation>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            if let Some(error) = &state.observe_error {
                return Err(ContractError::Retryable(error.clone()));
            }
            Ok(Observation {
                at_ms: 0,
                nodes: state
                    .healthy
                    .iter()
                    .filter(|(id, _)| !state.unseen.contains(id))
                    .map(|(id, up)| NodeStatus {
                        id: NodeId(id.clone()),
                        role: "node".into(),
                        health: if *up { Health::Healthy } else { Health::Down },
                        facts: Default::default(),
                    })
                    .collect(),
                workload: Some(WorkloadSample {
                    ops_per_sec: 100.0,
                    ..Default::default()
                }),
                facts: json!({}),
            })
        })
    }

    fn check(&self, observation: &Observation) -> Vec<Violation> {
        observation
            .nodes
            .iter()
            .filter(|n| n.health == Health::Down)
            .map(|n| Violation {
                invariant: "node_down".into(),
                severity: Severity::Critical,
                target: n.id.0.clone(),
                message: format!("{} does not answer", n.id),
                evidence: json!({ "node": n.id.0 }),
            })
            .collect()
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![
            restart_node_spec(),
            ActionSpec::new("flaky_action", "always fails", vec![], Risk::Safe),
        ]
    }

    fn execute<'a>(
        &'a self,
        request: &'a ActionRequest,
        _target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ActionOutcome>> {
        Box::pin(async move {
            let delay = self.state.lock().unwrap().restart_delay;
            tokio::time::sleep(delay).await;
            let mut state = self.state.lock().unwrap();
            state.executed.push(request.clone());
            match request.action.as_str() {
                "restart_node" => {
                    if state.restart_failures_left > 0 {
                        state.restart_failures_left -= 1;
                        return Err(ContractError::Retryable(
                            "restart failed: the node did not come back".into(),
                        ));
                    }
                    let node = request.params["node"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    if state.restart_leaves_a_flag {
                        if let Some(ledger) = self.ledger.get() {
                            ledger.left(&flag(&node))?;
                        }
                        state.flags.push(node.clone());
                    }
                    state.healthy.insert(node.clone(), true);
                    Ok(ActionOutcome {
                        summary: format!("restarted {node}"),
                    })
                }
                _ => Err(ContractError::Retryable("flaky_action always fails".into())),
            }
        })
    }

    fn tools(&self) -> Vec<ToolSpec> {
        vec![
            ToolSpec {
                name: "node_detail".into(),
                description: "a node's state".into(),
                params: vec![node_param()],
            },
            ToolSpec {
                name: "log_tail".into(),
                description: "recent log lines".into(),
                params: vec![node_param()],
            },
        ]
    }

    fn call_tool<'a>(
        &'a self,
        call: &'a ToolCall,
        _target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            let node = call
                .args
                .get("node")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            match call.tool.as_str() {
                "node_detail" => match state.healthy.get(node) {
                    Some(up) => Ok(json!({ "node": node, "healthy": up, "process_running": up })),
                    None => Err(ContractError::NotFound(format!("no node {node}"))),
                },
                "log_tail" => Ok(json!({ "lines": state.log })),
                other => Err(ContractError::NotFound(format!("no tool {other}"))),
            }
        })
    }

    fn attach_ledger(&self, ledger: Arc<dyn Ledger>) {
        let _ = self.ledger.set(ledger);
    }

    fn clean_up<'a>(&'a self, residue: &'a Residue) -> BoxFuture<'a, ContractResult<String>> {
        Box::pin(async move {
            let node = residue.key.trim_start_matches("flag-").to_string();
            self.state.lock().unwrap().flags.retain(|f| *f != node);
            if let Some(ledger) = self.ledger.get() {
                ledger.removed(residue);
            }
            Ok(format!("{node} unflagged"))
        })
    }

    fn chaos(&self) -> Vec<ChaosSpec> {
        vec![ChaosSpec {
            name: "kill_node".into(),
            description: "kill a node".into(),
            root_cause: "process_crash".into(),
            expected_invariant: "node_down".into(),
            params: vec![node_param()],
            needs: vec![operator_protocol::Disturbance::Kill],
        }]
    }

    fn inject<'a>(
        &'a self,
        request: &'a ChaosRequest,
        _target: &'a dyn DeploymentTarget,
    ) -> BoxFuture<'a, ContractResult<ChaosOutcome>> {
        Box::pin(async move {
            let node = request
                .params
                .get("node")
                .and_then(|v| v.as_str())
                .unwrap_or("n1")
                .to_string();
            self.set_healthy(&node, false);
            Ok(ChaosOutcome {
                target: node.clone(),
                summary: format!("killed {node}"),
                effective_ms: None,
            })
        })
    }

    fn runbook(&self) -> Runbook {
        serde_json::from_value(json!({
            "entries": [{
                "symptom": "node_down",
                "description": "A node stopped answering.",
                "hypotheses": [
                    {
                        "root_cause": "network_partition",
                        "description": "the node runs but cannot be reached",
                        "evidence": [{ "description": "the process is running", "tool": "node_detail",
                                       "args": {"node": "{target}"}, "pointer": "/process_running",
                                       "expect": {"op": "equals", "value": true} }],
                        "remedy": [{ "action": "log_message", "params": {"message": "heal the network"}, "rationale": "needs a human" }]
                    },
                    {
                        "root_cause": "process_crash",
                        "description": "the node's process is gone",
                        "evidence": [{ "description": "the process is not running", "tool": "node_detail",
                                       "args": {"node": "{target}"}, "pointer": "/process_running",
                                       "expect": {"op": "equals", "value": false} }],
                        "remedy": [{ "action": "restart_node", "params": {"node": "{target}"}, "rationale": "bring the process back" }]
                    }
                ]
            }]
        }))
        .unwrap()
    }
}

pub struct FakeTarget(pub Vec<NodeId>);

impl DeploymentTarget for FakeTarget {
    fn kind(&self) -> &str {
        "fake"
    }
    fn nodes(&self) -> Vec<NodeId> {
        self.0.clone()
    }
    fn kill<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn stop<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn start<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn pause<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn resume<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn isolate<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn heal<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn tail_logs<'a>(
        &'a self,
        _: &'a NodeId,
        _: usize,
    ) -> BoxFuture<'a, ContractResult<Vec<String>>> {
        Box::pin(async { Ok(vec![]) })
    }
    /// The fake subject keeps its own idea of a node's process (`process_running` in its
    /// tool): the target claims none, so nothing reads a process state it did not mean.
    fn describe<'a>(&'a self, _: &'a NodeId) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(async { Ok(json!({})) })
    }
}

pub type Script = Box<dyn Fn(&DiagnosisContext) -> ContractResult<Diagnosis> + Send + Sync>;

/// A brain that answers whatever the test scripted.
pub struct ScriptedBrain(pub Script);

impl Brain for ScriptedBrain {
    fn name(&self) -> String {
        "scripted".into()
    }
    /// A test states the confidence it means; `RefereedBrain` is the one that is checked.
    fn measures_its_confidence(&self) -> bool {
        true
    }
    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        _tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>> {
        Box::pin(async move {
            sink.emit(ReasoningEvent::Text {
                text: "scripted answer\n".into(),
            });
            (self.0)(context)
        })
    }
}

pub fn diagnosis_with(actions: Vec<RecommendedAction>) -> Diagnosis {
    Diagnosis {
        summary: "scripted".into(),
        root_cause: RootCause {
            category: "process_crash".into(),
            explanation: "scripted".into(),
        },
        evidence: vec![],
        alternatives: vec![],
        recommended_actions: actions,
        confidence: 0.9,
        cost: Cost::default(),
    }
}

pub fn step(action: &str, params: serde_json::Value) -> RecommendedAction {
    RecommendedAction {
        action: action.into(),
        params: serde_json::from_value(params).unwrap(),
        rationale: "scripted".into(),
        after_ms: None,
    }
}

/// A scripted brain that takes its time, so a test can change the ticket meanwhile.
pub struct DelayedBrain(pub Duration, pub ScriptedBrain);

impl Brain for DelayedBrain {
    fn name(&self) -> String {
        "delayed".into()
    }
    fn measures_its_confidence(&self) -> bool {
        self.1.measures_its_confidence()
    }
    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            self.1.diagnose(context, tools, sink).await
        })
    }
}

/// A reasoning sink that keeps everything it is given.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<ReasoningEvent>>);

impl ReasoningSink for Collect {
    fn emit(&self, event: ReasoningEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Collect {
    /// The streamed text, in order.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                ReasoningEvent::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// The context a brain gets for "n2 does not answer" on this subject.
pub fn node_down_context(subject: &FakeSubject) -> DiagnosisContext {
    DiagnosisContext {
        subject: "fake".into(),
        ticket: TicketBrief {
            id: 1,
            invariant: "node_down".into(),
            target: "n2".into(),
            severity: Severity::Critical,
            message: "n2 does not answer".into(),
            evidence: json!({ "node": "n2" }),
            occurrences: 1,
        },
        observation: None,
        runbook: subject.runbook(),
        actions: subject.actions(),
        tools: subject.tools(),
    }
}
