//! The engine: one task that runs the loop monitor → agent → executor → verification, owns the
//! store, and talks to front ends through events and commands. Slow work (observing, brains,
//! actions, chaos) runs in spawned tasks whose results come back to this loop, so a command
//! such as the kill switch is handled at once even while a brain is thinking.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::Result;
use operator_protocol::{
    ActionOutcome, ActionSpec, Brain, ChaosOutcome, ChaosRequest, DeploymentTarget, Diagnosis,
    Health, NodeId, Observation, Subject,
};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events::{Command, EngineEvent};
use crate::executor::Executor;
use crate::model::*;
use crate::store::Store;
use crate::{agent, general_actions, monitor};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub tick: Duration,
    /// Consecutive clean observations before a ticket counts as resolved.
    pub stability_checks: u64,
    /// How long a fix may take to hold before the ticket is escalated.
    pub verify_timeout: Duration,
    pub brain_timeout: Duration,
    pub max_parallel_diagnoses: usize,
    pub ticket_action_budget: u32,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long a disrupted node counts against the majority rule after its action ended.
    pub disruption_memory: Duration,
    /// Written to the store at start; `None` keeps the stored mode (default approve).
    pub mode: Option<Mode>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(250),
            stability_checks: 3,
            verify_timeout: Duration::from_secs(30),
            brain_timeout: Duration::from_secs(120),
            max_parallel_diagnoses: 2,
            ticket_action_budget: 3,
            max_attempts: 3,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(10),
            disruption_memory: Duration::from_secs(30),
            mode: None,
        }
    }
}

/// Results of spawned work, returned to the loop.
pub(crate) enum Finished {
    Observed(Result<Observation, String>),
    Diagnosed {
        ticket: TicketId,
        brain: String,
        reasoning: String,
        result: Result<Diagnosis, String>,
    },
    Action {
        id: ActionId,
        result: ActionResult,
    },
    Chaos {
        request: ChaosRequest,
        at_ms: u64,
        result: Result<ChaosOutcome, String>,
    },
}

pub(crate) enum ActionResult {
    Done(Result<ActionOutcome, String>),
    Cancelled,
}

/// Everything the loop's parts share.
pub(crate) struct Core {
    pub subject: Arc<dyn Subject>,
    pub target: Arc<dyn DeploymentTarget>,
    pub brain: Arc<dyn Brain>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    pub events: broadcast::Sender<EngineEvent>,
    pub finished: mpsc::UnboundedSender<Finished>,
    pub catalog: Vec<ActionSpec>,
    pub last_observation: Option<Observation>,
    pub mode: Mode,
    pub kill_switch: bool,
    pub diagnosing: HashSet<TicketId>,
    /// Nodes an executing action is disrupting on purpose: what breaks there meanwhile is the
    /// action's doing, not a new problem.
    pub disrupting: std::collections::BTreeSet<NodeId>,
}

impl Core {
    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn emit(&self, event: EngineEvent) {
        // No receiver is fine: headless runs may not listen.
        let _ = self.events.send(event);
    }

    pub fn emit_ticket(&self, id: TicketId) {
        match self.store.ticket(id) {
            Ok(Some(ticket)) => self.emit(EngineEvent::TicketChanged(ticket)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading ticket {id} for an event"),
        }
    }

    pub fn emit_action(&self, id: ActionId) {
        match self.store.action(id) {
            Ok(Some(action)) => self.emit(EngineEvent::ActionChanged(action)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading action {id} for an event"),
        }
    }

    /// The cluster's nodes: the latest observation's, and every node the target runs. An
    /// observation can see less than the cluster (TiKV without a PD leader shows no stores),
    /// and the cluster does not shrink for it: the policy's majority and the nodes an action
    /// may name are the whole cluster's.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self
            .last_observation
            .iter()
            .flat_map(|o| o.nodes.iter().map(|n| n.id.clone()))
            .collect();
        for node in self.target.nodes() {
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
        nodes
    }

    /// Nodes the latest observation saw down. A degraded node still serves (a rate limiter
    /// node without Redis answers from its fail mode), so it does not count as disrupted.
    pub fn down_nodes(&self) -> std::collections::BTreeSet<NodeId> {
        self.last_observation
            .iter()
            .flat_map(|o| o.nodes.iter())
            .filter(|n| n.health == Health::Down)
            .map(|n| n.id.clone())
            .collect()
    }
}

/// What the deployment target knows of each node (process or container state, restarts) joins
/// the node's facts, so the screen shows it next to what the subject observed.
async fn add_target_facts(observation: &mut Observation, target: &dyn DeploymentTarget) {
    for node in &mut observation.nodes {
        let Ok(described) = target.describe(&node.id).await else {
            continue;
        };
        if let Some(state) = described["container_status"]
            .as_str()
            .or(described["state"].as_str())
        {
            node.facts.insert("state".into(), serde_json::json!(state));
        }
        if let Some(restarts) = described["restarts"].as_u64().filter(|r| *r > 0) {
            node.facts
                .insert("restarts".into(), serde_json::json!(restarts));
        }
    }
}

pub struct Engine {
    core: Core,
    executor: Executor,
    finished_rx: mpsc::UnboundedReceiver<Finished>,
}

/// A running engine: send it commands, subscribe to its events, wait for it to stop.
pub struct EngineHandle {
    pub commands: mpsc::Sender<Command>,
    events: broadcast::Sender<EngineEvent>,
    pub cancel: CancellationToken,
    join: tokio::task::JoinHandle<Result<()>>,
}

impl EngineHandle {
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Stops the loop (running actions are cancelled and recorded) and waits for it.
    pub async fn shutdown(self) -> Result<()> {
        self.cancel.cancel();
        self.join.await?
    }

    pub async fn send(&self, command: Command) {
        let _ = self.commands.send(command).await;
    }
}

impl Engine {
    pub fn new(
        subject: Arc<dyn Subject>,
        target: Arc<dyn DeploymentTarget>,
        brain: Arc<dyn Brain>,
        store: Store,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        let (events, _) = broadcast::channel(4096);
        let (finished, finished_rx) = mpsc::unbounded_channel();
        let mut catalog = subject.actions();
        catalog.extend(general_actions::specs());
        Self {
            core: Core {
                subject,
                target,
                brain,
                store,
                clock,
                config,
                events,
                finished,
                catalog,
                last_observation: None,
                mode: Mode::Approve,
                kill_switch: false,
                diagnosing: HashSet::new(),
                disrupting: Default::default(),
            },
            executor: Executor::default(),
            finished_rx,
        }
    }

    /// Subscribe before `start` to see every event from the first tick on.
    pub fn events(&self) -> broadcast::Sender<EngineEvent> {
        self.core.events.clone()
    }

    pub fn start(self) -> EngineHandle {
        let (commands, commands_rx) = mpsc::channel(256);
        let cancel = CancellationToken::new();
        let events = self.core.events.clone();
        let join = tokio::spawn(self.run(commands_rx, cancel.clone()));
        EngineHandle {
            commands,
            events,
            cancel,
            join,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
    ) -> Result<()> {
        let now = self.core.now();
        let interrupted = self.core.store.recover_interrupted(now)?;
        if !interrupted.is_empty() {
            tracing::warn!(
                ?interrupted,
                "actions interrupted by the previous run were marked failed"
            );
        }
        if let Some(mode) = self.core.config.mode {
            self.core.store.set_mode(mode, Cause::Cli, now)?;
        }
        self.core.mode = self.core.store.mode()?.unwrap_or(Mode::Approve);
        self.core.kill_switch = self.core.store.kill_switch()?;
        self.emit_settings();
        let mut ticker = tokio::time::interval(self.core.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut observing = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {
                    self.refresh_settings()?;
                    if !observing {
                        observing = true;
                        let subject = self.core.subject.clone();
                        let target = self.core.target.clone();
                        let finished = self.core.finished.clone();
                        tokio::spawn(async move {
                            let mut result = subject.observe().await.map_err(|e| e.to_string());
                            if let Ok(observation) = &mut result {
                                add_target_facts(observation, &*target).await;
                            }
                            let _ = finished.send(Finished::Observed(result));
                        });
                    }
                    self.step()?;
                }
                Some(command) = commands.recv() => {
                    self.handle_command(command)?;
                    self.step()?;
                }
                Some(done) = self.finished_rx.recv() => {
                    if matches!(done, Finished::Observed(_)) {
                        observing = false;
                    }
                    self.handle_finished(done)?;
                    self.step()?;
                }
            }
        }
        self.executor
            .shutdown(&mut self.core, &mut self.finished_rx)
            .await?;
        Ok(())
    }

    /// Agent and executor advance on every wake-up; both are idempotent.
    fn step(&mut self) -> Result<()> {
        agent::start_diagnoses(&mut self.core)?;
        self.executor.step(&mut self.core)?;
        monitor::check_verification_timeouts(&mut self.core)?;
        Ok(())
    }

    /// Mode and kill switch may be changed by the CLI in another process; the store is the truth.
    fn refresh_settings(&mut self) -> Result<()> {
        let mode = self.core.store.mode()?.unwrap_or(Mode::Approve);
        let kill_switch = self.core.store.kill_switch()?;
        let changed = mode != self.core.mode || kill_switch != self.core.kill_switch;
        let engaged = kill_switch && !self.core.kill_switch;
        self.core.mode = mode;
        self.core.kill_switch = kill_switch;
        if engaged {
            self.executor.engage_kill_switch(&mut self.core)?;
        }
        if changed {
            self.emit_settings();
        }
        Ok(())
    }

    fn emit_settings(&self) {
        self.core.emit(EngineEvent::Settings {
            mode: self.core.mode,
            kill_switch: self.core.kill_switch,
        });
    }

    fn handle_command(&mut self, command: Command) -> Result<()> {
        let now = self.core.now();
        match command {
            Command::InjectChaos(request) => {
                let subject = self.core.subject.clone();
                let target = self.core.target.clone();
                let finished = self.core.finished.clone();
                let clock = self.core.clock.clone();
                tokio::spawn(async move {
                    // The fault begins when the injection starts; the monitor may see it first.
                    let at_ms = clock.now_ms();
                    let result = subject
                        .inject(&request, &*target)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = finished.send(Finished::Chaos {
                        request,
                        at_ms,
                        result,
                    });
                });
            }
            Command::Approve(id) | Command::Reject(id) => {
                let approval = if matches!(command, Command::Approve(_)) {
                    Approval::Approved
                } else {
                    Approval::Rejected
                };
                if let Err(e) = self
                    .core
                    .store
                    .set_approval(id, approval, Cause::Human, now)
                {
                    self.core.emit(EngineEvent::Notice(e.to_string()));
                }
                self.core.emit_action(id);
            }
            Command::Cancel(id) => self.executor.cancel(&mut self.core, id, Cause::Human)?,
            Command::SetMode(mode) => {
                self.core.store.set_mode(mode, Cause::Human, now)?;
                self.refresh_settings()?;
            }
            Command::KillSwitch(on) => {
                self.core.store.set_kill_switch(on, Cause::Human, now)?;
                self.refresh_settings()?;
            }
            Command::Ask(question) => {
                let context = operator_protocol::QuestionContext {
                    subject: self.core.subject.name().to_string(),
                    question: question.clone(),
                    observation: self.core.last_observation.clone(),
                    runbook: self.core.subject.runbook(),
                    actions: self.core.catalog.clone(),
                    tools: self.core.subject.tools(),
                };
                let brain = self.core.brain.clone();
                let tools =
                    crate::agent::SubjectTools(self.core.subject.clone(), self.core.target.clone());
                let events = self.core.events.clone();
                tokio::spawn(async move {
                    // Questions stream like diagnoses, under ticket id 0.
                    let sink = crate::agent::EventSink {
                        ticket: TicketId(0),
                        events: events.clone(),
                        transcript: Default::default(),
                    };
                    let answer = brain
                        .ask(&context, &tools, &sink)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = events.send(EngineEvent::Answer { question, answer });
                });
            }
            Command::Replay => {
                self.emit_settings();
                for ticket in self.core.store.tickets(200)?.into_iter().rev() {
                    self.core.emit(EngineEvent::TicketChanged(ticket));
                }
                for action in self.core.store.actions(None, 200)?.into_iter().rev() {
                    self.core.emit(EngineEvent::ActionChanged(action));
                }
            }
        }
        Ok(())
    }

    fn handle_finished(&mut self, done: Finished) -> Result<()> {
        match done {
            Finished::Observed(result) => monitor::apply_observation(&mut self.core, result),
            Finished::Diagnosed {
                ticket,
                brain,
                reasoning,
                result,
            } => {
                self.core.diagnosing.remove(&ticket);
                agent::accept_diagnosis(&mut self.core, ticket, &brain, &reasoning, result)
            }
            Finished::Action { id, result } => self.executor.finish(&mut self.core, id, result),
            Finished::Chaos {
                request,
                at_ms,
                result,
            } => {
                match result {
                    Ok(outcome) => {
                        let spec = self
                            .core
                            .subject
                            .chaos()
                            .into_iter()
                            .find(|c| c.name == request.name);
                        let record = crate::store::ChaosRecord {
                            at_ms: outcome.effective_ms.unwrap_or(at_ms),
                            name: request.name.clone(),
                            target: outcome.target.clone(),
                            root_cause: spec
                                .as_ref()
                                .map(|s| s.root_cause.clone())
                                .unwrap_or_default(),
                            expected_invariant: spec
                                .map(|s| s.expected_invariant)
                                .unwrap_or_default(),
                        };
                        self.core.store.record_chaos(
                            self.core.subject.name(),
                            &record,
                            &outcome.summary,
                        )?;
                        self.core.emit(EngineEvent::ChaosInjected {
                            name: request.name,
                            target: outcome.target,
                            summary: outcome.summary,
                        });
                    }
                    Err(error) => self.core.emit(EngineEvent::ChaosFailed {
                        name: request.name,
                        error,
                    }),
                }
                Ok(())
            }
        }
    }
}
