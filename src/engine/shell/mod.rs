//! The engine's shell, the only part of the engine that does I/O. One `select!` loop takes
//! inputs (ticks, commands, finished work), asks the decision parts what they mean, and
//! performs the effects: one step's rows in one SQLite transaction on a blocking thread,
//! brains, actions and chaos in tasks whose results come back as inputs. A command such as the
//! kill switch is handled at once, even while a brain is thinking.

mod ledger;
mod premises;
pub mod tools;
mod undo;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use operator_protocol::{
    Brain, DeploymentTarget, DiagnosisContext, Millis, Observation, QuestionContext, Subject,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::EngineConfig;
use super::decide::{advance, decide};
use super::effect::{ActionResult, Effect, Input, PremiseFailure};
use super::monitor::CHAOS_LINK_WINDOW_MS;
use super::state::{EngineState, RunningAction};
use super::worth::Weighing;
use super::{agent, general_actions};
use crate::clock::Clock;
use crate::events::{Command, EngineEvent, ReasoningFor};
use crate::model::*;
use crate::store::{Applied, OpenResidue, Store, Write};
use ledger::{CURRENT_ACTION, StoreLedger};
use tools::{EventSink, SubjectTools};

/// After an input, the idempotent parts look again while they keep changing rows (a proposed
/// action is validated, then launched, then its ticket is acting); bounded so that a write
/// that never takes cannot spin the loop.
const MAX_ROUNDS: usize = 8;

/// Observations whose trouble the no-regression check can look back on.
const TROUBLE_HISTORY: usize = 32;

/// How long shutdown waits for cancelled actions to come back and be recorded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct Engine {
    subject: Arc<dyn Subject>,
    target: Arc<dyn DeploymentTarget>,
    brain: Arc<dyn Brain>,
    store: Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    events: broadcast::Sender<EngineEvent>,
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

    /// Stops the loop (running actions are cancelled and recorded, every task it started has
    /// ended) and waits for it.
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
        Self {
            subject,
            target,
            brain,
            store,
            clock,
            config,
            events,
        }
    }

    /// Subscribe before `start` to see every event from the first tick on.
    pub fn events(&self) -> broadcast::Sender<EngineEvent> {
        self.events.clone()
    }

    pub fn start(self) -> EngineHandle {
        let (commands, commands_rx) = mpsc::channel(256);
        let cancel = CancellationToken::new();
        let events = self.events.clone();
        let (results, results_rx) = mpsc::unbounded_channel();
        let catalog = general_actions::catalog(&*self.subject);
        let mut state = EngineState::new(
            self.config.clone(),
            self.subject.name().to_string(),
            catalog,
            self.subject.chaos(),
        );
        state.runbook = self.subject.runbook();
        state.consequences = self.subject.consequences();
        let mut store = self.store;
        if let Err(e) = store.record_catalog(&state.catalog) {
            tracing::warn!("could not record the action catalog for the command line: {e:#}");
        }
        if self.config.read_only
            && let Err(e) = store.mark_read_only_engine()
        {
            tracing::warn!("could not mark the database as watched read-only: {e:#}");
        }
        let store = Arc::new(Mutex::new(store));
        self.subject.attach_ledger(Arc::new(StoreLedger {
            store: store.clone(),
            subject: self.subject.name().to_string(),
            clock: self.clock.clone(),
        }));
        let shell = Shell {
            subject: self.subject,
            target: self.target,
            brain: self.brain,
            store,
            clock: self.clock,
            state,
            events: self.events,
            results,
            tasks: JoinSet::new(),
            tokens: HashMap::new(),
            observing: false,
            wake_at: None,
            read_version: None,
        };
        let join = tokio::spawn(shell.run(commands_rx, results_rx, cancel.clone()));
        EngineHandle {
            commands,
            events,
            cancel,
            join,
        }
    }
}

struct Shell {
    subject: Arc<dyn Subject>,
    target: Arc<dyn DeploymentTarget>,
    brain: Arc<dyn Brain>,
    /// Only ever locked on a blocking thread, one step at a time.
    store: Arc<Mutex<Store>>,
    clock: Arc<dyn Clock>,
    state: EngineState,
    events: broadcast::Sender<EngineEvent>,
    results: mpsc::UnboundedSender<Input>,
    /// Every task the engine started; none outlives it.
    tasks: JoinSet<()>,
    tokens: HashMap<ActionId, CancellationToken>,
    observing: bool,
    wake_at: Option<Millis>,
    /// The database's `data_version` when the rows were last read whole: while it stays the
    /// same and the engine writes nothing, nobody else changed them.
    read_version: Option<i64>,
}

/// The rows the decisions read, as one blocking read returns them.
struct Rows {
    tickets: Vec<Ticket>,
    recently_resolved: Vec<Ticket>,
    actions: Vec<Action>,
    mode: Mode,
    kill_switch: bool,
    recent_chaos: Vec<crate::store::ChaosRecord>,
    recent_fixes: Vec<crate::store::RecentFix>,
    recent_clears: Vec<(String, String, Millis)>,
    /// What the step's writes did, and the rows they changed, to send as events.
    applied: Applied,
    changed_tickets: Vec<Ticket>,
    changed_actions: Vec<Action>,
}

/// What one sync reads the rows with: the time windows, and what the state held before (to
/// tell what another writer changed meanwhile).
struct Reading {
    subject: String,
    cluster: String,
    windows: Windows,
    tickets_before: Vec<Ticket>,
    actions_before: Vec<Action>,
}

/// Since when the time-windowed rows count.
#[derive(Clone, Copy)]
struct Windows {
    chaos_since: Millis,
    fixes_since: Millis,
    clears_since: Millis,
    aftermath_since: Millis,
}

impl Windows {
    /// Drops from the rows read earlier what these windows no longer hold: the same rows a
    /// fresh read would return when the database has not changed.
    fn narrow(&self, state: &mut EngineState) {
        state.recently_resolved.retain(|t| {
            t.timeline
                .resolved_ms
                .is_some_and(|ms| ms >= self.aftermath_since)
        });
        state.recent_chaos.retain(|c| c.at_ms >= self.chaos_since);
        state
            .recent_fixes
            .retain(|f| f.resolved_ms >= self.fixes_since);
        state
            .recent_clears
            .retain(|(_, _, ms)| *ms >= self.clears_since);
    }
}

/// What one sync found in the database.
enum Read {
    /// Nothing changed since the last read.
    Nothing,
    /// Only this engine's counts on tickets the state holds changed (another occurrence, a
    /// clean check): those tickets, read again. Every observation of an open ticket writes
    /// one, and reading every row again for it was most of a simulated schedule's store time.
    Counted(Applied, Vec<Ticket>),
    /// Every row the decisions read, and the data version they were read at.
    Rows(Rows, i64),
}

impl Reading {
    /// The tickets `writes` touch when all they do is count on tickets the state holds
    /// (nothing that moves a ticket in or out of the active set, or touches an action).
    fn only_counted(&self, writes: &[Write]) -> Option<BTreeSet<TicketId>> {
        writes
            .iter()
            .map(|w| match w {
                Write::Recur { ticket, .. } | Write::CleanCheck(ticket) => Some(*ticket),
                _ => None,
            })
            .map(|t| t.filter(|t| self.tickets_before.iter().any(|b| b.id == *t)))
            .collect()
    }

    /// The rows the decisions read, and those `applied` or another process changed.
    fn rows(&self, store: &Store, applied: Applied) -> Result<Rows> {
        let mut changed_tickets = Vec::new();
        for id in &applied.tickets {
            changed_tickets.extend(store.ticket(*id)?);
        }
        let mut changed_actions = Vec::new();
        for id in &applied.actions {
            changed_actions.extend(store.action(*id)?);
        }
        let tickets = store.active_tickets()?;
        let actions = store.engine_actions()?;
        // Rows another process changed (the command line in another terminal): a ticket it
        // resolved leaves the active set, so it is read again.
        for before in &self.tickets_before {
            let now_active = tickets.iter().find(|t| t.id == before.id);
            if applied.tickets.contains(&before.id) || now_active == Some(before) {
                continue;
            }
            match now_active {
                Some(ticket) => changed_tickets.push(ticket.clone()),
                None => changed_tickets.extend(store.ticket(before.id)?),
            }
        }
        for action in &actions {
            let known = self.actions_before.iter().find(|a| a.id == action.id);
            if !applied.actions.contains(&action.id) && known.is_some_and(|a| a != action) {
                changed_actions.push(action.clone());
            }
        }
        let (subject, cluster, w) = (&self.subject, &self.cluster, &self.windows);
        Ok(Rows {
            tickets,
            recently_resolved: store.resolved_since(w.aftermath_since)?,
            actions,
            mode: store.mode()?.unwrap_or(Mode::Approve),
            kill_switch: store.kill_switch()?,
            recent_chaos: store.recent_chaos(subject, w.chaos_since)?,
            recent_fixes: store.recent_fixes(subject, cluster, w.fixes_since)?,
            recent_clears: store.recent_clears(subject, cluster, w.clears_since)?,
            applied,
            changed_tickets,
            changed_actions,
        })
    }
}

impl Shell {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut results: mpsc::UnboundedReceiver<Input>,
        cancel: CancellationToken,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let mode = self.state.config.mode;
        let interrupted = self
            .blocking(move |store| {
                let interrupted = store.recover_interrupted(now)?;
                if let Some(mode) = mode {
                    store.set_mode(mode, Cause::Cli, now)?;
                }
                Ok(interrupted)
            })
            .await?;
        if !interrupted.is_empty() {
            tracing::warn!(
                ?interrupted,
                "actions interrupted by the previous run were marked failed"
            );
        }
        // What an earlier run left in the cluster and never removed (it was killed, or lost
        // power) goes first.
        let leftovers = self.open_residue(|_| true).await?;
        let cleaned = clean_up(
            self.subject.clone(),
            leftovers,
            "left by an earlier run of operator-tui that did not exit cleanly".into(),
        )
        .await;
        self.sync(cleaned, now).await?;
        self.sync(Vec::new(), now).await?;
        self.emit_settings();
        let mut ticker = tokio::time::interval(self.state.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.wake_delay();
            // In a fixed order, not tokio's random one: a person's command first, then what
            // finished, then time; and a simulated run replays its seed step for step.
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(command) = commands.recv() => self.step(Input::Command(command)).await?,
                Some(input) = results.recv() => self.step(input).await?,
                _ = tokio::time::sleep(wake.unwrap_or_default()), if wake.is_some() => {
                    self.step(Input::Tick).await?;
                }
                _ = ticker.tick() => {
                    self.observe();
                    self.step(Input::Tick).await?;
                }
            }
        }
        self.shutdown(&mut results).await
    }

    fn wake_delay(&self) -> Option<Duration> {
        let at = self.wake_at?;
        Some(Duration::from_millis(
            at.saturating_sub(self.clock.now_ms()),
        ))
    }

    /// One input: what it means, then the idempotent parts until they settle.
    async fn step(&mut self, mut input: Input) -> Result<()> {
        let now = self.clock.now_ms();
        self.wake_at = None;
        self.note_result(&mut input, now);
        if matches!(input, Input::Tick) {
            // Another process (the CLI) may have changed settings, approved an action or
            // resolved a ticket: the front ends hear of it within this tick.
            let (_, actions, tickets) = self.sync(Vec::new(), now).await?;
            self.announce(actions, tickets);
        }
        let effects = decide(&self.state, input, now, fastrand::f64());
        self.perform(effects, now).await?;
        for _ in 0..MAX_ROUNDS {
            let effects = advance(&self.state, now);
            if !self.perform(effects, now).await? {
                break;
            }
        }
        Ok(())
    }

    /// The shell's own bookkeeping of work that came back, before anything is decided on it.
    /// An observation moves into the state (the decisions read its violations only).
    fn note_result(&mut self, input: &mut Input, now: Millis) {
        match input {
            Input::Observed(result) => {
                self.observing = false;
                self.state.target_nodes = self.target.nodes();
                if let Ok((observation, violations)) = result {
                    let observation = std::mem::replace(observation, Observation::empty());
                    self.state.saw_processes(&observation, now);
                    let trouble = self.subject.trouble(&observation, violations);
                    self.state.last_observation = Some(observation);
                    self.state.trouble.push_back((now, trouble));
                    while self.state.trouble.len() > TROUBLE_HISTORY {
                        self.state.trouble.pop_front();
                    }
                }
            }
            Input::Diagnosed { ticket, .. } => {
                self.state.diagnosing.remove(ticket);
            }
            Input::ActionFinished { id, .. } => {
                self.tokens.remove(id);
                if let Some(running) = self.state.running.remove(id)
                    && let Some(node) = running.disrupts
                {
                    self.state.finished_disruptions.push((node, now));
                }
                let memory = self.state.config.disruption_memory.as_millis() as u64;
                self.state
                    .finished_disruptions
                    .retain(|(_, at)| now.saturating_sub(*at) <= memory);
            }
            _ => {}
        }
    }

    /// Performs effects in order; the writes first, all in one transaction. Returns whether
    /// any row changed.
    async fn perform(&mut self, effects: Vec<Effect>, now: Millis) -> Result<bool> {
        let writes: Vec<Write> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Write(w) => Some(w.clone()),
                _ => None,
            })
            .collect();
        let (applied, changed_actions, changed_tickets) = if writes.is_empty() {
            Default::default()
        } else {
            self.sync(writes, now).await?
        };
        for id in &applied.opened {
            tracing::info!(ticket = id.0, "ticket opened");
        }
        for effect in effects {
            match effect {
                Effect::Write(_) => {}
                Effect::StartDiagnosis(ticket) => self.start_diagnosis(ticket),
                Effect::RunAction {
                    id,
                    request,
                    disrupts,
                    disruptive,
                    premises,
                    reversal,
                    on_its_own,
                } => {
                    // Another writer moved the action first: it is not ours to run.
                    if !applied.stale.contains(&id) {
                        if let Some((_, trouble)) = self.state.trouble.back() {
                            self.state.trouble_before.insert(id, trouble.clone());
                        }
                        let weighed = on_its_own
                            .then(|| self.state.spec(&request.action).cloned())
                            .flatten();
                        self.run_action(
                            id,
                            request,
                            premises,
                            weighed,
                            reversal,
                            RunningAction {
                                disrupts,
                                disruptive,
                            },
                        );
                    }
                }
                Effect::CancelRunning(id) => {
                    if let Some(token) = self.tokens.get(&id) {
                        token.cancel();
                    }
                }
                Effect::InjectChaos(request) => self.inject(request),
                Effect::Ask(question) => self.ask(question),
                Effect::Replay => self.replay().await?,
                Effect::Emit(event) => self.emit(event),
                Effect::WakeAt(at) => {
                    self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
                }
            }
        }
        for refusal in &applied.refused {
            self.emit(EngineEvent::Notice(refusal.clone()));
        }
        self.announce(changed_actions, changed_tickets);
        Ok(!applied.tickets.is_empty() || !applied.actions.is_empty())
    }

    /// Tells the front ends of rows that changed, and cleans up after resolved tickets.
    fn announce(&mut self, actions: Vec<Action>, tickets: Vec<Ticket>) {
        for action in actions {
            self.emit(EngineEvent::ActionChanged(action));
        }
        let resolved: Vec<TicketId> = tickets
            .iter()
            .filter(|t| t.status == TicketStatus::Resolved)
            .map(|t| t.id)
            .collect();
        self.clean_up_after(resolved);
        for ticket in tickets {
            self.emit(EngineEvent::TicketChanged(ticket));
        }
    }

    /// One trip to the blocking thread: writes the batch in one transaction (none on a tick),
    /// then reads the rows the decisions need into the state. Returns what the batch did and
    /// the rows it changed, for events.
    async fn sync(
        &mut self,
        writes: Vec<Write>,
        now: Millis,
    ) -> Result<(Applied, Vec<Action>, Vec<Ticket>)> {
        // Resolved causes whose symptoms may still be their aftermath or opened as they
        // ended, twice as far back so a symptom that outlasted it is still seen to have, and
        // handed over, however late a step comes.
        let aftermath_since =
            now.saturating_sub(2 * (self.state.longest_aftermath_ms() + self.state.settle_ms()));
        let windows = Windows {
            chaos_since: now.saturating_sub(CHAOS_LINK_WINDOW_MS),
            fixes_since: now
                .saturating_sub(self.state.config.fix_hold_window.as_millis() as Millis),
            clears_since: now
                .saturating_sub(self.state.config.intermittent_window.as_millis() as Millis),
            aftermath_since,
        };
        let reading = Reading {
            subject: self.state.subject.clone(),
            cluster: self.state.config.cluster.clone(),
            windows,
            tickets_before: self.state.tickets.clone(),
            actions_before: self.state.actions.clone(),
        };
        let read_version = self.read_version;
        let read = self
            .blocking(move |store| {
                // SQLite's data version moves only for other connections' commits.
                let others_wrote = Some(store.data_version()?) != read_version;
                if writes.is_empty() && !others_wrote {
                    return Ok(Read::Nothing);
                }
                let applied = if writes.is_empty() {
                    Applied::default()
                } else {
                    store.apply(&writes, now)?
                };
                if !others_wrote && let Some(counted) = reading.only_counted(&writes) {
                    let tickets = counted
                        .into_iter()
                        .map(|id| store.ticket(id))
                        .collect::<Result<Vec<_>>>()?;
                    return Ok(Read::Counted(
                        applied,
                        tickets.into_iter().flatten().collect(),
                    ));
                }
                let version = store.data_version()?;
                let rows = store.snapshot(|store| reading.rows(store, applied))?;
                Ok(Read::Rows(rows, version))
            })
            .await?;
        let (rows, version) = match read {
            Read::Rows(rows, version) => (rows, version),
            Read::Nothing => {
                // Nothing changed in the database: only time moved, and the windows with it.
                windows.narrow(&mut self.state);
                return Ok((Applied::default(), Vec::new(), Vec::new()));
            }
            Read::Counted(applied, tickets) => {
                windows.narrow(&mut self.state);
                for ticket in &tickets {
                    if let Some(held) = self.state.tickets.iter_mut().find(|t| t.id == ticket.id) {
                        *held = ticket.clone();
                    }
                }
                return Ok((applied, Vec::new(), tickets));
            }
        };
        self.read_version = Some(version);
        let settings_before = (self.state.mode, self.state.kill_switch);
        self.state.tickets = rows.tickets;
        self.state.recently_resolved = rows.recently_resolved;
        self.state.actions = rows.actions;
        self.state.mode = rows.mode;
        self.state.kill_switch = rows.kill_switch;
        self.state.recent_chaos = rows.recent_chaos;
        self.state.recent_fixes = rows.recent_fixes;
        self.state.recent_clears = rows.recent_clears;
        let known: BTreeSet<ActionId> = self.state.actions.iter().map(|a| a.id).collect();
        self.state.trouble_before.retain(|id, _| known.contains(id));
        // The mode or the kill switch may have changed here, by a command or by the CLI in
        // another process: the front ends hear of it either way.
        if settings_before != (self.state.mode, self.state.kill_switch) {
            self.emit_settings();
        }
        Ok((rows.applied, rows.changed_actions, rows.changed_tickets))
    }

    /// Runs store work on a blocking thread, so SQLite never stalls the async workers (or
    /// inline, for a simulation: see `EngineConfig::store_inline`).
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        let run = move || {
            let mut store = store
                .lock()
                .map_err(|_| eyre!("the store lock is poisoned"))?;
            work(&mut store)
        };
        if self.state.config.store_inline {
            return run();
        }
        tokio::task::spawn_blocking(run)
            .await
            .wrap_err("the store thread panicked")?
    }

    fn emit(&self, event: EngineEvent) {
        // No receiver is fine: headless runs may not listen.
        let _ = self.events.send(event);
    }

    fn emit_settings(&self) {
        self.emit(EngineEvent::Settings {
            mode: self.state.mode,
            kill_switch: self.state.kill_switch,
        });
    }

    /// One poll of the cluster at a time; the subject's verdict is taken in the same task.
    fn observe(&mut self) {
        if self.observing {
            return;
        }
        self.observing = true;
        let subject = self.subject.clone();
        let target = self.target.clone();
        let results = self.results.clone();
        self.tasks.spawn(async move {
            let result = match subject.observe().await {
                Ok(mut observation) => {
                    add_target_facts(&mut observation, &*target).await;
                    let violations = subject.check(&observation);
                    Ok((observation, violations))
                }
                Err(e) => Err(e.to_string()),
            };
            let _ = results.send(Input::Observed(result));
        });
    }

    fn start_diagnosis(&mut self, id: TicketId) {
        let Some(ticket) = self.state.ticket(id).map(agent::brief) else {
            return;
        };
        self.state.diagnosing.insert(id);
        let context = DiagnosisContext {
            subject: self.state.subject.clone(),
            ticket,
            observation: self.state.last_observation.clone(),
            runbook: self.subject.runbook(),
            actions: self.state.catalog.clone(),
            tools: self.subject.tools(),
        };
        let brain = self.brain.clone();
        let tools = SubjectTools(self.subject.clone(), self.target.clone());
        let sink = EventSink::new(ReasoningFor::Ticket(id), self.events.clone());
        let results = self.results.clone();
        let timeout = self.state.config.brain_timeout;
        self.tasks.spawn(async move {
            let refereed = async {
                let mut diagnosis = brain.diagnose(&context, &tools, &sink).await?;
                if !brain.measures_its_confidence() {
                    referee(&mut diagnosis, &context, &tools, &sink).await;
                }
                Ok::<_, operator_protocol::ContractError>(diagnosis)
            };
            let result = match tokio::time::timeout(timeout, refereed).await {
                Ok(Ok(diagnosis)) => Ok(diagnosis),
                Ok(Err(error)) => Err(format!("the brain failed: {error}")),
                Err(_) => Err(format!(
                    "the brain did not answer within {} s",
                    timeout.as_secs()
                )),
            };
            let _ = results.send(Input::Diagnosed {
                ticket: id,
                brain: brain.name(),
                reasoning: sink.into_transcript(),
                result,
            });
        });
    }

    fn run_action(
        &mut self,
        id: ActionId,
        request: operator_protocol::ActionRequest,
        premises: Vec<operator_protocol::Premise>,
        weighed: Option<operator_protocol::ActionSpec>,
        reversal: operator_protocol::Reversal,
        running: RunningAction,
    ) {
        let factor = self.state.config.worth_factor;
        // Only what nobody approved is weighed, and a person's stop re-read for.
        let on_its_own = weighed.is_some();
        let disrupts = running.disrupts.clone();
        let token = CancellationToken::new();
        self.tokens.insert(id, token.clone());
        self.state.running.insert(id, running);
        let subject = self.subject.clone();
        let target = self.target.clone();
        let results = self.results.clone();
        self.tasks.spawn(async move {
            let work = async {
                let tools = SubjectTools(subject.clone(), target.clone());
                // The premises and the weighing read the cluster once between them.
                let reads = crate::brains::NarratedTools::new(&tools, None);
                if !premises.is_empty() {
                    // A fresh observation first, so tools that describe "now" do; if it
                    // fails the checks read what they can, and an unreadable one fails.
                    let _ = subject.observe().await;
                    if let Err(failure) = premises::check(&premises, &request.params, &reads).await
                    {
                        return (ActionResult::PremiseFailed(failure), Ok(None));
                    }
                }
                if let Some(spec) = &weighed {
                    match premises::weigh_worth(spec, &request.params, &reads, factor).await {
                        Weighing::Worth => {}
                        Weighing::Wait { for_ms, reason } => {
                            return (ActionResult::Waits { for_ms, reason }, Ok(None));
                        }
                        Weighing::ForAPerson(reason) => {
                            let failure = PremiseFailure {
                                premise: "what it buys outweighs what it destroys".into(),
                                found: vec![reason],
                            };
                            return (ActionResult::PremiseFailed(failure), Ok(None));
                        }
                    }
                }
                // The last read before the action acts: a node someone stopped on purpose
                // since the premises were read (a SIGTERM a moment ago) is theirs.
                if let Some(node) = disrupts.as_ref().filter(|_| on_its_own)
                    && let Some(failure) = stopped_on_purpose(&*target, node).await
                {
                    return (ActionResult::PremiseFailed(failure), Ok(None));
                }
                let undo = undo::prepare(&reversal, &request, &tools).await;
                let result = ActionResult::Done(if general_actions::is_general(&request.action) {
                    general_actions::run(&request).await
                } else {
                    // What the subject leaves in the cluster meanwhile is recorded as this
                    // action's.
                    CURRENT_ACTION
                        .scope(id, subject.execute(&request, &*target))
                        .await
                });
                (result, undo)
            };
            let (result, undo) = tokio::select! {
                r = work => r,
                _ = token.cancelled() => (ActionResult::Cancelled, Ok(None)),
            };
            let _ = results.send(Input::ActionFinished { id, result, undo });
        });
    }

    fn inject(&mut self, request: operator_protocol::ChaosRequest) {
        let subject = self.subject.clone();
        let target = self.target.clone();
        let results = self.results.clone();
        let clock = self.clock.clone();
        self.tasks.spawn(async move {
            // The fault begins when the injection starts; the monitor may see it first.
            let at_ms = clock.now_ms();
            let result = subject
                .inject(&request, &*target)
                .await
                .map_err(|e| e.to_string());
            let _ = results.send(Input::ChaosFinished {
                request,
                at_ms,
                result,
            });
        });
    }

    fn ask(&mut self, question: String) {
        let context = QuestionContext {
            subject: self.state.subject.clone(),
            question: question.clone(),
            observation: self.state.last_observation.clone(),
            runbook: self.subject.runbook(),
            actions: self.state.catalog.clone(),
            tools: self.subject.tools(),
        };
        let brain = self.brain.clone();
        let tools = SubjectTools(self.subject.clone(), self.target.clone());
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let sink = EventSink::new(ReasoningFor::Question, events.clone());
            let answer = brain
                .ask(&context, &tools, &sink)
                .await
                .map_err(|e| e.to_string());
            let _ = events.send(EngineEvent::Answer { question, answer });
        });
    }

    /// A front end that just attached gets the settings and the latest rows.
    async fn replay(&mut self) -> Result<()> {
        let (tickets, actions) = self
            .blocking(|store| Ok((store.tickets(200)?, store.actions(None, 200)?)))
            .await?;
        self.emit_settings();
        for ticket in tickets.into_iter().rev() {
            self.emit(EngineEvent::TicketChanged(ticket));
        }
        for action in actions.into_iter().rev() {
            self.emit(EngineEvent::ActionChanged(action));
        }
        Ok(())
    }

    /// Running actions are cancelled and recorded as such; then every task the engine
    /// started is stopped and waited for, so nothing holds the subject or target after this.
    async fn shutdown(mut self, results: &mut mpsc::UnboundedReceiver<Input>) -> Result<()> {
        for token in self.tokens.values() {
            token.cancel();
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !self.state.running.is_empty() {
            match tokio::time::timeout_at(deadline, results.recv()).await {
                Ok(Some(mut input @ Input::ActionFinished { .. })) => {
                    let now = self.clock.now_ms();
                    self.note_result(&mut input, now);
                    let effects = decide(&self.state, input, now, 0.0);
                    self.perform(effects, now).await?;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.tasks.shutdown().await;
        // Nothing an action added stays behind once operator-tui is gone.
        let open = self.open_residue(|_| true).await?;
        let cleaned = clean_up(self.subject.clone(), open, "operator-tui is exiting".into()).await;
        let now = self.clock.now_ms();
        self.sync(cleaned, now).await?;
        if self.state.config.read_only {
            self.blocking(|store| store.clear_read_only_engine())
                .await?;
        }
        Ok(())
    }

    /// What this subject's actions left and nobody removed yet, of those `wanted` picks.
    async fn open_residue(
        &self,
        wanted: impl Fn(&OpenResidue) -> bool + Send + 'static,
    ) -> Result<Vec<OpenResidue>> {
        let subject = self.state.subject.clone();
        self.blocking(move |store| {
            Ok(store
                .open_residue(&subject)?
                .into_iter()
                .filter(|r| wanted(r))
                .collect())
        })
        .await
    }

    /// Removes, in the background, what the actions of tickets that just resolved left.
    fn clean_up_after(&mut self, resolved: Vec<TicketId>) {
        if resolved.is_empty() {
            return;
        }
        let subject = self.subject.clone();
        let store = self.store.clone();
        let results = self.results.clone();
        let name = self.state.subject.clone();
        self.tasks.spawn(async move {
            let rows = {
                let store = store.lock().unwrap_or_else(|p| p.into_inner());
                store.open_residue(&name).unwrap_or_default()
            };
            for ticket in resolved {
                let mine: Vec<OpenResidue> = rows
                    .iter()
                    .filter(|r| r.ticket == Some(ticket))
                    .cloned()
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let writes = clean_up(
                    subject.clone(),
                    mine,
                    format!("its ticket #{} resolved", ticket.0),
                )
                .await;
                let _ = results.send(Input::CleanedUp(writes));
            }
        });
    }
}

/// Asks the subject to remove each thing, and says in the audit log what became of it.
async fn clean_up(subject: Arc<dyn Subject>, rows: Vec<OpenResidue>, why: String) -> Vec<Write> {
    let mut writes = Vec::new();
    for row in rows {
        let (event, detail) = match subject.clean_up(&row.residue).await {
            Ok(said) => (
                "residue_removed",
                format!(
                    "{} ({}): {why}; {said}",
                    row.residue.key, row.residue.description
                ),
            ),
            Err(e) => (
                "residue_not_removed",
                format!(
                    "{} ({}): {why}, but removing it failed: {e}; it is tried again at exit and start-up",
                    row.residue.key, row.residue.description
                ),
            ),
        };
        writes.push(Write::Audit {
            cause: Cause::Executor,
            ticket: row.ticket,
            event: event.into(),
            detail,
        });
    }
    writes
}

/// Caps a brain's claimed confidence by what the rules brain's reading of the same ticket
/// finds for the cause it named (`earned`), and says so in the ticket's reasoning.
async fn referee(
    diagnosis: &mut operator_protocol::Diagnosis,
    context: &operator_protocol::DiagnosisContext,
    tools: &SubjectTools,
    sink: &EventSink,
) {
    // The referee's own reasoning is not the ticket's: only its verdict is shown.
    struct Unheard;
    impl operator_protocol::ReasoningSink for Unheard {
        fn emit(&self, _: operator_protocol::ReasoningEvent) {}
    }
    let reading = crate::brains::rules::RulesBrain
        .diagnose(context, tools, &Unheard)
        .await
        .map_err(|e| e.to_string());
    let (confidence, why) =
        super::earned::earned(diagnosis, reading.as_ref().map_err(String::as_str));
    if let Some(why) = why {
        operator_protocol::ReasoningSink::emit(
            sink,
            operator_protocol::ReasoningEvent::Text {
                text: format!("\n{why}\n"),
            },
        );
        diagnosis.confidence = confidence;
    }
}

/// Whether the target says `node` was stopped on purpose (a clean exit, a SIGTERM pending or
/// being handled), as a failed premise; a target that cannot say leaves it to the premises.
async fn stopped_on_purpose(
    target: &dyn DeploymentTarget,
    node: &operator_protocol::NodeId,
) -> Option<PremiseFailure> {
    let described = target.describe(node).await.ok()?;
    (described["stopped_deliberately"] == serde_json::json!(true)).then(|| PremiseFailure {
        premise: format!("nobody stopped {node} on purpose"),
        found: vec![format!(
            "the target reports {node} stopped deliberately a moment before the action ({})",
            described["exit_status"]
                .as_str()
                .unwrap_or("a SIGTERM being handled")
        )],
    })
}

/// What the deployment target knows of each node (process or container state, restarts) joins
/// the node's facts, so the screen shows it next to what the subject observed.
async fn add_target_facts(observation: &mut Observation, target: &dyn DeploymentTarget) {
    let ids: Vec<operator_protocol::NodeId> =
        observation.nodes.iter().map(|n| n.id.clone()).collect();
    let described = target.describe_all(&ids).await;
    for (node, described) in observation.nodes.iter_mut().zip(described) {
        let Ok(described) = described else {
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
        if described["stopped_deliberately"] == serde_json::json!(true) {
            node.facts.insert(
                operator_protocol::SOMEONE_AT_WORK.into(),
                serde_json::json!("stopped deliberately (a clean exit)"),
            );
        }
    }
}
