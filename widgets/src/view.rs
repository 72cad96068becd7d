//! The read model the panes render from: everything the screen shows, built only from engine
//! updates, plus the view state (focus, selection, scroll, popups) that belongs to no engine.

use std::collections::{BTreeMap, VecDeque};

use operator_protocol::{
    ActionStatus, Diagnosis, Health, Mode, NodeStatus, Severity, TicketStatus, WorkloadSample,
};
use ratatui_textarea::TextArea;

use crate::chapters::ChapterRun;

/// How many workload samples the sparkline keeps (one per observation).
pub const WORKLOAD_HISTORY: usize = 240;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub subject: String,
    pub target: String,
    pub simulated: bool,
    pub brain: String,
    pub mode: Option<Mode>,
    pub kill_switch: bool,
    /// Wall-clock time as the runtime formatted it ("14:03:22"); render reads no clock.
    pub clock: String,
    /// Nothing can run: no action, no chaos.
    pub read_only: bool,
    pub context: Option<ContextLabel>,
}

/// Which cluster this is, in its colour; a protected one asks for its name before anything
/// disruptive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextLabel {
    pub name: String,
    pub color: Option<String>,
    pub protected: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TicketRow {
    pub id: i64,
    /// The cause ticket of its incident: its own id for a cause.
    pub incident: i64,
    pub status: TicketStatus,
    pub invariant: String,
    pub target: String,
    pub severity: Severity,
    pub occurrences: u64,
    pub message: String,
    pub reason: Option<String>,
    pub opened_ms: u64,
    pub detect_ms: Option<u64>,
    pub diagnose_ms: Option<u64>,
    pub mitigate_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    pub id: i64,
    pub ticket: Option<i64>,
    pub name: String,
    pub params: String,
    pub status: ActionStatus,
    pub approved: bool,
    pub rejected: bool,
    pub attempts: u32,
    pub max_attempts: u32,
    pub error: Option<String>,
    pub outcome: Option<String>,
    /// What running it loses or gives away.
    pub destroys: Option<String>,
    /// Why it waits for a human although the mode would let it run.
    pub waiting: Option<String>,
    /// What takes it back ("update_limit {...}"), once it ran.
    pub undo: Option<String>,
    /// Why it cannot be taken back.
    pub irreversible: Option<String>,
    /// It takes capacity away or loses state (its risk is disruptive or destructive).
    pub disruptive: bool,
}

impl ActionRow {
    /// Validated and unapproved, in approve mode or held by a gate: the engine waits for a
    /// human.
    pub fn awaiting_approval(&self, mode: Option<Mode>) -> bool {
        self.status == ActionStatus::Validated
            && !self.approved
            && !self.rejected
            && (mode == Some(Mode::Approve)
                || (mode == Some(Mode::Execute) && self.waiting.is_some()))
    }
}

impl TicketRow {
    /// Escalated because the operator declined on evidence (no known cause, a failed
    /// premise), not because something broke.
    pub fn needs_a_human(&self) -> bool {
        self.status == TicketStatus::Escalated
            && self
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with(operator_protocol::NEEDS_A_HUMAN))
    }
}

/// One ticket's brain output: streamed lines, then the diagnosis (or why it was refused).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub lines: Vec<String>,
    /// Text after the last newline, still streaming.
    pub partial: String,
    /// Text received but not shown yet: with demo pacing, it is let out a few characters a
    /// tick; the diagnosis shows once it has all been shown.
    pub pending: String,
    pub diagnosis: Option<Diagnosis>,
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChaosEntry {
    pub name: String,
    pub description: String,
    /// The invariant it is expected to break.
    pub breaks: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    Tickets,
    Reasoning,
    Actions,
    /// ↑/↓ scroll the cluster's nodes.
    Cluster,
}

impl Focus {
    pub fn next(self) -> Self {
        match self {
            Focus::Tickets => Focus::Reasoning,
            Focus::Reasoning => Focus::Actions,
            Focus::Actions => Focus::Cluster,
            Focus::Cluster => Focus::Tickets,
        }
    }
}

/// "57 up · 1 down · 2 degraded": how many nodes are in each health, the healthy first as
/// the headline, then what is wrong, worst first; healths nobody is in are left out.
pub fn health_summary<'a>(healths: impl IntoIterator<Item = &'a Health>) -> String {
    let mut counts = [0usize; 4];
    for h in healths {
        counts[health_rank(*h)] += 1;
    }
    [
        Health::Healthy,
        Health::Down,
        Health::Unknown,
        Health::Degraded,
    ]
    .into_iter()
    .filter(|h| counts[health_rank(*h)] > 0)
    .map(|h| format!("{} {}", counts[health_rank(h)], health_word(h)))
    .collect::<Vec<_>>()
    .join(" · ")
}

/// How a health is written in the summary (and matched by the filter).
pub fn health_word(h: Health) -> &'static str {
    match h {
        Health::Down => "down",
        Health::Unknown => "unknown",
        Health::Degraded => "degraded",
        Health::Healthy => "up",
    }
}

/// Worst first: down, unknown, degraded, healthy.
pub fn health_rank(h: Health) -> usize {
    match h {
        Health::Down => 0,
        Health::Unknown => 1,
        Health::Degraded => 2,
        Health::Healthy => 3,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popup {
    Help,
    Chaos,
    ConfirmKillSwitch,
    /// Approving this action loses something (its `destroys`) or cannot be taken back: say
    /// what, and ask.
    ConfirmApproval(i64),
    /// Taking this completed action back: say what runs, and ask.
    ConfirmUndo(i64),
    Prompt,
    /// A human picks an action for the selected ticket (`View::picker` holds its state).
    Picker,
    /// A protected context: type its name before `View::guarded` runs.
    ConfirmContext,
    /// Typing the cluster pane's filter (`View::filter_input`).
    Filter,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UiState {
    pub focus: Focus,
    pub selected_ticket: Option<i64>,
    pub selected_action: Option<i64>,
    /// Lines scrolled up from the bottom of the reasoning; 0 follows the stream.
    pub reasoning_scroll: u16,
    /// Nodes scrolled past at the top of the cluster pane.
    pub cluster_scroll: usize,
    /// Only the nodes whose name, role or health, and the tickets whose invariant, target or
    /// status, contain this (set with f).
    pub filter: Option<String>,
    pub popups: Vec<Popup>,
}

impl UiState {
    pub fn top_popup(&self) -> Option<Popup> {
        self.popups.last().copied()
    }
}

#[derive(Debug, Default)]
pub struct View {
    pub header: Header,
    pub nodes: Vec<NodeStatus>,
    pub workload: Option<WorkloadSample>,
    pub ops_history: VecDeque<u64>,
    /// The workload's split (allowed, denied, …) per sample, beside `ops_history`.
    pub split_history: VecDeque<BTreeMap<String, u64>>,
    pub observation_error: Option<String>,
    /// Newest incident first, each incident's cause before its symptoms.
    pub tickets: Vec<TicketRow>,
    pub transcripts: BTreeMap<i64, Transcript>,
    /// Newest first.
    pub actions: Vec<ActionRow>,
    pub chaos: Vec<ChaosEntry>,
    /// The actions the subject can take, for a human to pick from.
    pub catalog: Vec<operator_protocol::ActionSpec>,
    pub picker: Option<crate::picker::Picker>,
    pub chapters: ChapterRun,
    pub notices: VecDeque<String>,
    /// When the newest notice came (`now_ms` then): a refusal is shown where it is read first
    /// for a while, then steps aside for the story.
    pub notice_at_ms: u64,
    /// The last answer to a question asked with `/`.
    pub answer: Option<String>,
    pub now_ms: u64,
    pub ui: UiState,
    pub prompt: TextArea<'static>,
    /// Characters a second the reasoning streams at on screen (0: as it arrives). Display
    /// only: the engine's decisions and timings never wait for it.
    pub pacing: u32,
    pub filter_input: TextArea<'static>,
    /// An effect held until the protected context's name is typed, and what was typed.
    pub guarded: Option<(crate::update::Effect, TextArea<'static>)>,
}

impl View {
    /// Tickets a human has to act on: escalated ones, and those with an action waiting for
    /// an approval.
    pub fn waiting_for_a_human(&self) -> usize {
        let mode = self.header.mode;
        // One pass over each list: thousands of tickets and actions are drawn every frame.
        let awaiting: std::collections::BTreeSet<i64> = self
            .actions
            .iter()
            .filter(|a| a.awaiting_approval(mode))
            .filter_map(|a| a.ticket)
            .collect();
        self.tickets
            .iter()
            .filter(|t| t.status == TicketStatus::Escalated || awaiting.contains(&t.id))
            .count()
    }

    pub fn selected_ticket(&self) -> Option<&TicketRow> {
        // Asked several times a frame: without a filter, no list is built.
        if self.ui.filter.is_none() {
            let id = self
                .ui
                .selected_ticket
                .or_else(|| self.tickets.first().map(|t| t.id))?;
            return self.tickets.iter().find(|t| t.id == id);
        }
        let listed = self.listed_tickets();
        match self.ui.selected_ticket {
            Some(id) => listed.into_iter().find(|t| t.id == id),
            None => listed.first().copied(),
        }
    }

    /// The tickets the pane lists: those the filter keeps, in the pane's order.
    pub fn listed_tickets(&self) -> Vec<&TicketRow> {
        let filter = self.ui.filter.as_deref().map(str::to_lowercase);
        self.tickets
            .iter()
            .filter(|t| {
                filter.as_deref().is_none_or(|f| {
                    t.invariant.to_lowercase().contains(f)
                        || t.target.to_lowercase().contains(f)
                        || t.status.as_str().contains(f)
                })
            })
            .collect()
    }

    /// The actions to show: the selected ticket's, else all.
    pub fn visible_actions(&self) -> Vec<&ActionRow> {
        match self.selected_ticket() {
            Some(t) => self
                .actions
                .iter()
                .filter(|a| a.ticket == Some(t.id))
                .collect(),
            None => self.actions.iter().collect(),
        }
    }

    pub fn selected_action(&self) -> Option<&ActionRow> {
        let visible = self.visible_actions();
        match self.ui.selected_action {
            Some(id) => visible.into_iter().find(|a| a.id == id),
            // Default to what most needs a human: the oldest action awaiting approval.
            None => {
                let mode = self.header.mode;
                visible
                    .iter()
                    .rev()
                    .find(|a| a.awaiting_approval(mode))
                    .copied()
                    .or_else(|| visible.first().copied())
            }
        }
    }

    /// The nodes the cluster pane lists: those the filter keeps, the unhealthy first (in
    /// their observed order within each health).
    pub fn listed_nodes(&self) -> Vec<&NodeStatus> {
        let filter = self.ui.filter.as_deref().map(str::to_lowercase);
        let mut nodes: Vec<&NodeStatus> = self
            .nodes
            .iter()
            .filter(|n| {
                filter.as_deref().is_none_or(|f| {
                    n.id.0.to_lowercase().contains(f)
                        || n.role.to_lowercase().contains(f)
                        || health_word(n.health).contains(f)
                })
            })
            .collect();
        nodes.sort_by_key(|n| health_rank(n.health));
        nodes
    }

    pub fn push_notice(&mut self, text: String) {
        self.notices.push_back(text);
        self.notice_at_ms = self.now_ms;
        while self.notices.len() > 20 {
            self.notices.pop_front();
        }
    }
}
