//! The pure half of the TUI: `update(&mut View, Msg) -> Vec<Effect>`. Keys arrive as
//! commands, the engine's news as updates, time as ticks; effects go back to the runtime.

use operator_protocol::{
    Diagnosis, Health, Mode, NodeStatus, ReasoningEvent, TicketStatus, Violation, WorkloadSample,
};

use crate::chapters::{ChapterEvent, Progress};
use crate::picker::{Pick, Picker};
use crate::view::*;

/// What a key asks for; the keymap table maps keys to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    ToggleHelp,
    OpenChaosMenu,
    /// Inject the chaos at this index of the subject's catalog (digit keys, 1-based on screen).
    Inject(usize),
    Approve,
    /// Approve this action, after its confirmation said what it destroys.
    ConfirmApproval(i64),
    Reject,
    /// Take the selected completed action back (asks first).
    Undo,
    ConfirmUndo(i64),
    CycleMode,
    AskKillSwitch,
    ConfirmKillSwitch,
    Dismiss,
    NextChapter,
    PreviousChapter,
    FocusNext,
    SelectUp,
    SelectDown,
    ScrollUp,
    ScrollDown,
    OpenPrompt,
    /// Pick an action from the catalog for the selected ticket.
    OpenPicker,
    /// The protected context's name was typed: run what was held.
    ConfirmContext,
    /// Type a filter for the cluster's nodes.
    OpenFilter,
}

/// News from the engine, already converted to display data by the runtime.
#[derive(Debug, Clone)]
pub enum EngineUpdate {
    Observed {
        nodes: Vec<NodeStatus>,
        workload: Option<WorkloadSample>,
        violations: Vec<Violation>,
    },
    ObservationFailed(String),
    Ticket(TicketRow),
    Reasoning {
        ticket: i64,
        event: ReasoningEvent,
    },
    Diagnosis {
        ticket: i64,
        diagnosis: Box<Diagnosis>,
    },
    DiagnosisRefused {
        ticket: i64,
        reason: String,
    },
    Action(ActionRow),
    Settings {
        mode: Mode,
        kill_switch: bool,
    },
    Notice(String),
    Answer(String),
}

#[derive(Debug, Clone)]
pub enum Msg {
    Command(Command),
    /// The prompt's text, submitted with Enter.
    Ask(String),
    /// The picker's action, confirmed.
    Pick(Pick),
    /// The cluster filter as typed (empty: show every node).
    Filter(String),
    Engine(EngineUpdate),
    Tick {
        now_ms: u64,
        clock: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    InjectChaos(String),
    /// Start or undo a drill: a fault from outside the operator, for a demo chapter.
    StartDrill(String),
    StopDrill(String),
    Approve(i64),
    Reject(i64),
    Undo(i64),
    SetMode(Mode),
    KillSwitch(bool),
    Ask(String),
    Pick(Pick),
}

pub fn update(view: &mut View, msg: Msg) -> Vec<Effect> {
    // What the typed name confirms goes out as it is.
    let confirmed = matches!(msg, Msg::Command(Command::ConfirmContext));
    let effects = unguarded_update(view, msg);
    if confirmed {
        effects
    } else {
        guard(view, effects)
    }
}

/// Whether an effect changes the cluster in a way a protected context asks about first:
/// chaos, drills, and running or undoing anything disruptive.
fn needs_the_context_name(view: &View, effect: &Effect) -> bool {
    let disruptive = |id: &i64| view.actions.iter().any(|a| a.id == *id && a.disruptive);
    match effect {
        Effect::InjectChaos(_) | Effect::StartDrill(_) => true,
        Effect::Approve(id) | Effect::Undo(id) => disruptive(id),
        Effect::Pick(pick) => view
            .catalog
            .iter()
            .any(|s| s.name == pick.action && s.risk.is_disruptive()),
        _ => false,
    }
}

/// On a protected context, holds the first effect that needs the context's name typed (and
/// drops any other such effect meanwhile); the rest go through.
fn guard(view: &mut View, effects: Vec<Effect>) -> Vec<Effect> {
    if !view.header.context.as_ref().is_some_and(|c| c.protected) {
        return effects;
    }
    let mut passed = Vec::new();
    for effect in effects {
        if !needs_the_context_name(view, &effect) {
            passed.push(effect);
        } else if view.guarded.is_none() {
            view.guarded = Some((effect, ratatui_textarea::TextArea::default()));
            view.ui.popups.push(Popup::ConfirmContext);
        }
    }
    passed
}

fn unguarded_update(view: &mut View, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Command(command) => command_update(view, command),
        Msg::Ask(question) => {
            view.ui.popups.retain(|p| *p != Popup::Prompt);
            let question = question.trim().to_string();
            if question.is_empty() {
                vec![]
            } else {
                vec![Effect::Ask(question)]
            }
        }
        Msg::Filter(text) => {
            view.ui.popups.retain(|p| *p != Popup::Filter);
            let text = text.trim().to_string();
            view.ui.filter = (!text.is_empty()).then_some(text);
            view.ui.cluster_scroll = 0;
            vec![]
        }
        Msg::Pick(pick) => {
            close_picker(view);
            vec![Effect::Pick(pick)]
        }
        Msg::Engine(news) => {
            engine_update(view, news);
            vec![]
        }
        Msg::Tick { now_ms, clock } => {
            release_paced(view, now_ms.saturating_sub(view.now_ms));
            view.now_ms = now_ms;
            view.header.clock = clock;
            let progress = progress(view);
            match view.chapters.tick(now_ms, progress) {
                Some(ChapterEvent::Inject(fault)) => vec![Effect::InjectChaos(fault)],
                Some(ChapterEvent::StartDrill(drill)) => vec![Effect::StartDrill(drill)],
                Some(ChapterEvent::StopDrill(drill)) => vec![Effect::StopDrill(drill)],
                Some(ChapterEvent::Finished) => vec![Effect::Quit],
                None => vec![],
            }
        }
    }
}

fn progress(view: &View) -> Progress {
    Progress {
        all_healthy: !view.nodes.is_empty()
            && view.nodes.iter().all(|n| n.health == Health::Healthy),
        active_tickets: view.tickets.iter().filter(|t| t.status.is_active()).count(),
        opened_since: view.tickets.iter().map(|t| t.opened_ms).max(),
        resolved_since: view
            .tickets
            .iter()
            .filter(|t| t.status == TicketStatus::Resolved)
            .map(|t| t.opened_ms)
            .max(),
        needs_a_human_since: view
            .tickets
            .iter()
            .filter(|t| t.needs_a_human())
            .map(|t| t.opened_ms)
            .max(),
    }
}

/// What a read-only operator says instead of opening a dialog whose answer is always no.
pub const READ_ONLY_REFUSAL: &str =
    "read-only: this operator never acts and injects no chaos (started with --read-only)";

impl Command {
    /// Whether the command leads to something running in the cluster (an action or chaos).
    fn acts(self) -> bool {
        matches!(
            self,
            Command::OpenChaosMenu
                | Command::Inject(_)
                | Command::Approve
                | Command::ConfirmApproval(_)
                | Command::Undo
                | Command::ConfirmUndo(_)
                | Command::OpenPicker
        )
    }
}

fn command_update(view: &mut View, command: Command) -> Vec<Effect> {
    let now = view.now_ms;
    if view.header.read_only && command.acts() {
        view.push_notice(READ_ONLY_REFUSAL.into());
        return vec![];
    }
    match command {
        Command::Quit => return vec![Effect::Quit],
        Command::ToggleHelp => toggle(view, Popup::Help),
        Command::OpenChaosMenu => toggle(view, Popup::Chaos),
        Command::Inject(index) => {
            view.ui.popups.retain(|p| *p != Popup::Chaos);
            if let Some(entry) = view.chaos.get(index) {
                return vec![Effect::InjectChaos(entry.name.clone())];
            }
        }
        Command::Approve | Command::Reject => {
            let Some(action) = view.selected_action() else {
                view.push_notice("no action selected".into());
                return vec![];
            };
            if action.status.is_final() {
                let text = format!("A{} is already {}", action.id, action.status);
                view.push_notice(text);
                return vec![];
            }
            let id = action.id;
            if command == Command::Reject {
                return vec![Effect::Reject(id)];
            }
            // An approval that gives something away, or that cannot be taken back, is
            // confirmed after saying what.
            if action.destroys.is_some() || action.irreversible.is_some() {
                view.ui.popups.push(Popup::ConfirmApproval(id));
                return vec![];
            }
            return vec![Effect::Approve(id)];
        }
        Command::ConfirmApproval(id) => {
            view.ui.popups.retain(|p| *p != Popup::ConfirmApproval(id));
            return vec![Effect::Approve(id)];
        }
        Command::Undo => {
            let Some(action) = view.selected_action() else {
                view.push_notice("no action selected".into());
                return vec![];
            };
            let refusal = if action.status != operator_protocol::ActionStatus::Completed {
                Some(format!(
                    "A{} is {}: only a completed action can be taken back",
                    action.id, action.status
                ))
            } else if action.undo.is_none() {
                Some(format!(
                    "A{} {} cannot be taken back: {}",
                    action.id,
                    action.name,
                    action.irreversible.as_deref().unwrap_or("nothing to undo")
                ))
            } else {
                None
            };
            match refusal {
                Some(text) => view.push_notice(text),
                None => {
                    let id = action.id;
                    view.ui.popups.push(Popup::ConfirmUndo(id));
                }
            }
        }
        Command::ConfirmUndo(id) => {
            view.ui.popups.retain(|p| *p != Popup::ConfirmUndo(id));
            return vec![Effect::Undo(id)];
        }
        Command::CycleMode => {
            let next = view.header.mode.unwrap_or(Mode::Approve).next();
            return vec![Effect::SetMode(next)];
        }
        Command::AskKillSwitch => {
            if view.header.kill_switch {
                // Turning it off needs no confirmation; turning it on does.
                return vec![Effect::KillSwitch(false)];
            }
            view.ui.popups.push(Popup::ConfirmKillSwitch);
        }
        Command::ConfirmKillSwitch => {
            view.ui.popups.retain(|p| *p != Popup::ConfirmKillSwitch);
            return vec![Effect::KillSwitch(true)];
        }
        Command::Dismiss => match view.ui.popups.pop() {
            Some(Popup::Picker) => view.picker = None,
            Some(Popup::ConfirmContext) => {
                if let Some((effect, _)) = view.guarded.take() {
                    view.push_notice(format!("not done: {}", describe(&effect)));
                }
            }
            _ => {}
        },
        Command::ConfirmContext => {
            view.ui.popups.retain(|p| *p != Popup::ConfirmContext);
            return view.guarded.take().map(|(e, _)| e).into_iter().collect();
        }
        Command::NextChapter => view.chapters.next(now),
        Command::PreviousChapter => view.chapters.previous(now),
        Command::FocusNext => view.ui.focus = view.ui.focus.next(),
        Command::SelectUp | Command::SelectDown => select(view, command == Command::SelectDown),
        Command::ScrollUp => view.ui.reasoning_scroll = view.ui.reasoning_scroll.saturating_add(3),
        Command::ScrollDown => {
            view.ui.reasoning_scroll = view.ui.reasoning_scroll.saturating_sub(3)
        }
        Command::OpenFilter => {
            let current = view.ui.filter.clone().unwrap_or_default();
            view.filter_input = ratatui_textarea::TextArea::new(vec![current]);
            view.filter_input
                .move_cursor(ratatui_textarea::CursorMove::End);
            view.ui.popups.push(Popup::Filter);
        }
        Command::OpenPicker => {
            let Some(ticket) = view.selected_ticket() else {
                view.push_notice("no ticket selected: a picked action is for a ticket".into());
                return vec![];
            };
            if ticket.status == TicketStatus::Resolved {
                let text = format!("#{} is resolved: nothing left to fix", ticket.id);
                view.push_notice(text);
                return vec![];
            }
            let nodes = view.nodes.iter().map(|n| n.id.clone()).collect();
            view.picker = Some(Picker::new(
                ticket.id,
                ticket.target.clone(),
                view.catalog.clone(),
                nodes,
            ));
            view.ui.popups.push(Popup::Picker);
        }
        Command::OpenPrompt => {
            view.prompt = ratatui_textarea::TextArea::default();
            view.ui.popups.push(Popup::Prompt);
        }
    }
    vec![]
}

/// An effect in words, for the confirmation and its cancellation.
pub fn describe(effect: &Effect) -> String {
    match effect {
        Effect::InjectChaos(name) => format!("inject {name}"),
        Effect::StartDrill(name) => format!("start drill {name}"),
        Effect::Approve(id) => format!("run A{id}"),
        Effect::Undo(id) => format!("undo A{id}"),
        Effect::Pick(pick) => format!(
            "run {} {}",
            pick.action,
            serde_json::Value::Object(pick.params.clone().into_iter().collect())
        ),
        other => format!("{other:?}"),
    }
}

fn close_picker(view: &mut View) {
    view.ui.popups.retain(|p| *p != Popup::Picker);
    view.picker = None;
}

fn toggle(view: &mut View, popup: Popup) {
    if view.ui.top_popup() == Some(popup) {
        view.ui.popups.pop();
    } else {
        view.ui.popups.push(popup);
    }
}

/// Moves the selection in the focused list (tickets, or the selected ticket's actions).
fn select(view: &mut View, down: bool) {
    let step = |ids: Vec<i64>, current: Option<i64>| -> Option<i64> {
        let at = current
            .and_then(|c| ids.iter().position(|i| *i == c))
            .unwrap_or(0);
        let next = if down {
            (at + 1).min(ids.len().saturating_sub(1))
        } else {
            at.saturating_sub(1)
        };
        ids.get(next).copied()
    };
    match view.ui.focus {
        Focus::Cluster => {
            let last = view.listed_nodes().len().saturating_sub(1);
            view.ui.cluster_scroll = if down {
                (view.ui.cluster_scroll + 1).min(last)
            } else {
                view.ui.cluster_scroll.saturating_sub(1)
            };
        }
        Focus::Actions => {
            let ids = view.visible_actions().iter().map(|a| a.id).collect();
            let current = view.selected_action().map(|a| a.id);
            view.ui.selected_action = step(ids, current);
        }
        _ => {
            let ids = view.listed_tickets().iter().map(|t| t.id).collect();
            let current = view.selected_ticket().map(|t| t.id);
            view.ui.selected_ticket = step(ids, current);
            view.ui.selected_action = None;
            view.ui.reasoning_scroll = 0;
        }
    }
}

/// Shows streamed text: whole lines join the transcript, the rest waits for its newline.
fn show(transcript: &mut Transcript, text: &str) {
    transcript.partial.push_str(text);
    while let Some(end) = transcript.partial.find('\n') {
        let line: String = transcript.partial.drain(..=end).collect();
        transcript
            .lines
            .push(line.trim_end_matches('\n').to_string());
    }
}

/// Demo pacing: lets out what `elapsed_ms` at `view.pacing` characters a second allows.
fn release_paced(view: &mut View, elapsed_ms: u64) {
    if view.pacing == 0 {
        return;
    }
    let budget = (u64::from(view.pacing) * elapsed_ms / 1000).max(1) as usize;
    for transcript in view.transcripts.values_mut() {
        if transcript.pending.is_empty() {
            continue;
        }
        let cut = transcript
            .pending
            .char_indices()
            .nth(budget)
            .map_or(transcript.pending.len(), |(i, _)| i);
        let text: String = transcript.pending.drain(..cut).collect();
        show(transcript, &text);
    }
}

fn engine_update(view: &mut View, news: EngineUpdate) {
    match news {
        EngineUpdate::Observed {
            nodes,
            workload,
            violations: _,
        } => {
            view.nodes = nodes;
            if let Some(w) = &workload {
                view.ops_history.push_back(w.ops_per_sec.round() as u64);
                view.split_history.push_back(
                    w.split
                        .iter()
                        .map(|(name, rate)| (name.clone(), rate.round() as u64))
                        .collect(),
                );
                while view.ops_history.len() > WORKLOAD_HISTORY {
                    view.ops_history.pop_front();
                }
                while view.split_history.len() > WORKLOAD_HISTORY {
                    view.split_history.pop_front();
                }
            }
            view.workload = workload;
            view.observation_error = None;
        }
        EngineUpdate::ObservationFailed(error) => view.observation_error = Some(error),
        EngineUpdate::Ticket(row) => {
            match view.tickets.iter_mut().find(|t| t.id == row.id) {
                Some(existing) => *existing = row,
                None => view.tickets.push(row),
            }
            // A ticket may join another incident (its cause showed up later): order again,
            // incidents still open first, newest first, each cause before its symptoms.
            let open: std::collections::BTreeSet<i64> = view
                .tickets
                .iter()
                .filter(|t| t.status.is_active())
                .map(|t| t.incident)
                .collect();
            view.tickets.sort_by_key(|t| {
                (
                    !open.contains(&t.incident),
                    std::cmp::Reverse(t.incident),
                    t.id != t.incident,
                    t.id,
                )
            });
        }
        EngineUpdate::Reasoning { ticket, event } => {
            let transcript = view.transcripts.entry(ticket).or_default();
            match event {
                ReasoningEvent::Text { text } | ReasoningEvent::Thinking { text } => {
                    if view.pacing > 0 {
                        transcript.pending.push_str(&text);
                    } else {
                        show(transcript, &text);
                    }
                }
                ReasoningEvent::ToolCall { .. } | ReasoningEvent::ToolResult { .. } => {}
            }
        }
        EngineUpdate::Diagnosis { ticket, diagnosis } => {
            view.transcripts.entry(ticket).or_default().diagnosis = Some(*diagnosis);
        }
        EngineUpdate::DiagnosisRefused { ticket, reason } => {
            view.transcripts.entry(ticket).or_default().refused = Some(reason);
        }
        EngineUpdate::Action(row) => match view.actions.iter_mut().find(|a| a.id == row.id) {
            Some(existing) => *existing = row,
            None => {
                view.actions.insert(0, row);
                view.actions.sort_by_key(|a| std::cmp::Reverse(a.id));
            }
        },
        EngineUpdate::Settings { mode, kill_switch } => {
            view.header.mode = Some(mode);
            view.header.kill_switch = kill_switch;
        }
        EngineUpdate::Notice(text) => view.push_notice(text),
        EngineUpdate::Answer(text) => view.answer = Some(text),
    }
}
