//! The engine's state as the decision parts see it: an immutable snapshot of the store's live
//! rows (active tickets, their actions, settings, recent chaos) joined with what only the shell
//! knows (the latest observation, diagnoses and actions in flight). The shell rebuilds it after
//! every step; decisions never change it.

use std::collections::{BTreeMap, BTreeSet};

use operator_protocol::{
    ActionSpec, ChaosSpec, Consequence, Health, Millis, NodeId, Observation, Runbook,
    SOMEONE_AT_WORK, Trouble,
};

use super::config::EngineConfig;
use crate::model::*;
use crate::store::{ChaosRecord, RecentFix};

/// An action the shell is running now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningAction {
    /// The node it takes out on purpose, if any.
    pub disrupts: Option<NodeId>,
    pub disruptive: bool,
}

/// What a person was last seen doing to a node, since when without a break, and when last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonAtWork {
    pub since_ms: Millis,
    pub seen_ms: Millis,
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct EngineState {
    pub config: EngineConfig,
    pub subject: String,
    /// The subject's actions and the engine's general ones.
    pub catalog: Vec<ActionSpec>,
    pub chaos_catalog: Vec<ChaosSpec>,
    /// The subject's runbook: which causes may pass by themselves.
    pub runbook: Runbook,
    /// Which broken invariants follow from which (the subject says).
    pub consequences: Vec<Consequence>,
    /// The nodes the deployment target runs (a cluster can be larger than what one
    /// observation sees).
    pub target_nodes: Vec<NodeId>,
    pub last_observation: Option<Observation>,
    pub mode: Mode,
    pub kill_switch: bool,
    /// Every ticket that is not resolved, oldest first.
    pub tickets: Vec<Ticket>,
    /// Tickets resolved within twice the longest aftermath a consequence declares and a
    /// settle, oldest first: causes whose symptoms may still be passing, or have just
    /// outlasted them, or could explain a symptom that opened as they ended.
    pub recently_resolved: Vec<Ticket>,
    /// Every action of those tickets, and every action still live, oldest first.
    pub actions: Vec<Action>,
    /// Injections recent enough to explain a new ticket, newest first.
    pub recent_chaos: Vec<ChaosRecord>,
    /// Remedies verified within the fix-hold window, newest first.
    pub recent_fixes: Vec<RecentFix>,
    /// Problems that cleared by themselves within the intermittent window: (invariant,
    /// target, when), newest first.
    pub recent_clears: Vec<(String, String, Millis)>,
    pub diagnosing: BTreeSet<TicketId>,
    pub running: BTreeMap<ActionId, RunningAction>,
    /// Nodes disrupted by actions that have finished, and when they finished.
    pub finished_disruptions: Vec<(NodeId, Millis)>,
    /// Nodes last seen in someone else's hands (`SOMEONE_AT_WORK`: a clean stop, their
    /// scheduler), when, and what: theirs for the grace period after (see `a_persons_work`).
    pub people_at_work: BTreeMap<NodeId, PersonAtWork>,
    /// Nodes the latest observation showed in someone else's hands: the next look that does
    /// not is that person finishing (starting it again, removing their scheduler).
    pub at_work_now: BTreeSet<NodeId>,
    /// Nodes seen stopped (SIGSTOP), or running without answering, on every observation
    /// since then.
    pub stopped_since: BTreeMap<NodeId, Millis>,
    /// The cluster's trouble on recent observations, oldest first.
    pub trouble: std::collections::VecDeque<(Millis, Trouble)>,
    /// The trouble when each action started.
    pub trouble_before: BTreeMap<ActionId, Trouble>,
}

impl EngineState {
    /// A state before anything was seen or read: approve mode, no tickets.
    pub fn new(
        config: EngineConfig,
        subject: String,
        catalog: Vec<ActionSpec>,
        chaos_catalog: Vec<ChaosSpec>,
    ) -> Self {
        Self {
            config,
            subject,
            catalog,
            chaos_catalog,
            runbook: Runbook::default(),
            consequences: Vec::new(),
            target_nodes: Vec::new(),
            last_observation: None,
            mode: Mode::Approve,
            kill_switch: false,
            tickets: Vec::new(),
            recently_resolved: Vec::new(),
            actions: Vec::new(),
            recent_chaos: Vec::new(),
            recent_fixes: Vec::new(),
            recent_clears: Vec::new(),
            diagnosing: BTreeSet::new(),
            running: BTreeMap::new(),
            finished_disruptions: Vec::new(),
            people_at_work: BTreeMap::new(),
            at_work_now: BTreeSet::new(),
            stopped_since: BTreeMap::new(),
            trouble: Default::default(),
            trouble_before: BTreeMap::new(),
        }
    }

    /// A symptom whose incident's cause is still open (the cause's remedy comes first), or
    /// whose cause has ended and whose aftermath is still passing (it may heal by itself).
    pub fn waits_for_its_cause(&self, ticket: &Ticket, now: Millis) -> bool {
        ticket.is_symptom()
            && (self.ticket(ticket.incident).is_some()
                || self.aftermath_ends(ticket).is_some_and(|end| now < end))
    }

    /// Whether the subject declares that `cause` brings `symptom` about.
    pub fn brings_about(&self, cause: &str, symptom: &str) -> bool {
        self.consequences
            .iter()
            .any(|c| c.cause == cause && c.symptom == symptom)
    }

    /// How long `symptom` may outlast `cause` by itself (0: it ends with it).
    pub fn outlasts_ms(&self, cause: &str, symptom: &str) -> Millis {
        self.consequences
            .iter()
            .filter(|c| c.cause == cause && c.symptom == symptom)
            .map(|c| c.outlasts_ms)
            .max()
            .unwrap_or(0)
    }

    /// For a symptom whose cause has been resolved and which may outlast it: when that
    /// aftermath ends.
    pub fn aftermath_ends(&self, symptom: &Ticket) -> Option<Millis> {
        let cause = self
            .recently_resolved
            .iter()
            .find(|t| t.id == symptom.incident)?;
        let outlasts = self.outlasts_ms(&cause.invariant, &symptom.invariant);
        (outlasts > 0).then(|| cause.timeline.resolved_ms.unwrap_or(0) + outlasts)
    }

    /// A symptom still there after its cause's aftermath has ended: for a person.
    pub fn outlasted_aftermath(&self, symptom: &Ticket, now: Millis) -> bool {
        self.aftermath_ends(symptom).is_some_and(|end| now >= end)
    }

    /// The longest aftermath any consequence declares: how far back resolved tickets matter.
    pub fn longest_aftermath_ms(&self) -> Millis {
        self.consequences
            .iter()
            .map(|c| c.outlasts_ms)
            .max()
            .unwrap_or(0)
    }

    /// Whether `name` (a node, a key, a store) is what `ticket` or a ticket of its incident is
    /// about, or is named in their evidence.
    pub fn incident_names(&self, ticket: &Ticket, name: &str) -> bool {
        let quoted = serde_json::Value::from(name).to_string();
        self.tickets
            .iter()
            .filter(|t| t.id == ticket.id || t.incident == ticket.incident)
            .chain(std::iter::once(ticket))
            .any(|t| t.target == name || t.evidence.to_string().contains(&quoted))
    }

    /// Other trouble that could explain what `ticket` shows, as "#3 redis_disconnected on
    /// node-1": tickets of other incidents still open, and any ticket, open or recently
    /// resolved, whose invariant the subject declares a cause of this one and that was still
    /// there (or its aftermath passing) when this one opened. With any of it, what the checks
    /// find for `ticket` may be that trouble's doing, so no cause is sure.
    pub fn could_explain(&self, ticket: &Ticket) -> Vec<String> {
        let elsewhere = self
            .tickets
            .iter()
            .filter(|o| o.incident != ticket.incident && o.status.is_active());
        let causes = self
            .tickets
            .iter()
            .chain(&self.recently_resolved)
            .filter(|o| o.id != ticket.id && self.brings_about(&o.invariant, &ticket.invariant))
            .filter(|o| {
                o.timeline.resolved_ms.is_none_or(|resolved| {
                    resolved + self.outlasts_ms(&o.invariant, &ticket.invariant) + self.settle_ms()
                        >= ticket.timeline.opened_ms
                })
            });
        let mut seen = BTreeSet::new();
        elsewhere
            .chain(causes)
            .filter(|o| seen.insert(o.id))
            .map(|o| format!("#{} {} on {}", o.id.0, o.invariant, o.target))
            .collect()
    }

    /// The subject declares this invariant a consequence of another.
    pub fn may_be_a_symptom(&self, invariant: &str) -> bool {
        self.consequences.iter().any(|c| c.symptom == invariant)
    }

    /// How long a ticket that may be a symptom waits for its cause before anything acts.
    pub fn settle_ms(&self) -> Millis {
        self.config.tick.as_millis() as Millis * u64::from(self.config.settle_ticks)
    }

    /// The shell's note of what an observation shows of the processes: which were in someone
    /// else's hands or just left them (kept for the grace period), and since when each is
    /// stopped (SIGSTOP), forgotten the moment it is seen otherwise.
    pub fn saw_processes(&mut self, observation: &Observation, now: Millis) {
        for node in &observation.nodes {
            let fact = |name: &str| node.facts.get(name).cloned().unwrap_or_default();
            // A person's work is what they do and its end (a stop and the start again, a
            // scheduler added and removed): the grace runs from the last look that showed
            // either.
            if let Some(what) = fact(SOMEONE_AT_WORK).as_str() {
                let since_ms = match self.people_at_work.get(&node.id) {
                    Some(work) if self.at_work_now.contains(&node.id) => work.since_ms,
                    _ => now,
                };
                self.people_at_work.insert(
                    node.id.clone(),
                    PersonAtWork {
                        since_ms,
                        seen_ms: now,
                        what: what.to_string(),
                    },
                );
                self.at_work_now.insert(node.id.clone());
            } else if self.at_work_now.remove(&node.id)
                && let Some(work) = self.people_at_work.get_mut(&node.id)
            {
                (work.since_ms, work.seen_ms) = (now, now);
                work.what = format!("finished: {}", work.what);
            }
            // Stopped, or running without answering (shutting down, or cut off): either may
            // pass by itself. Seen otherwise once, and the clock starts over.
            let state = fact("state");
            let may_pass = state == serde_json::json!("stopped")
                || (state == serde_json::json!("running") && node.health == Health::Down);
            if may_pass {
                self.stopped_since.entry(node.id.clone()).or_insert(now);
            } else {
                self.stopped_since.remove(&node.id);
            }
        }
        let grace = self.config.person_grace.as_millis() as Millis;
        self.people_at_work
            .retain(|_, work| now.saturating_sub(work.seen_ms) <= grace);
    }

    /// When a stop of `node` (stopped, or running without answering) that has lasted less
    /// than the watch period will have lasted it: a stopped process may resume by itself, one
    /// told to stop is draining before it exits, and one stopped and resumed by turns never
    /// stays stopped that long.
    pub fn stop_may_pass(&self, node: &NodeId, now: Millis) -> Option<Millis> {
        let since = self.stopped_since.get(node)?;
        let until = since + self.config.watch_period.as_millis() as Millis;
        (now < until).then_some(until)
    }

    /// Someone else's work on `node` last seen within the grace period, and how long ago: a
    /// person's stop is theirs to finish (start it again, with other flags), their scheduler
    /// theirs to remove, not ours to race or revert.
    pub fn a_persons_work(&self, node: &str, now: Millis) -> Option<(&PersonAtWork, Millis)> {
        let grace = self.config.person_grace.as_millis() as Millis;
        self.people_at_work
            .get(&NodeId::from(node))
            .map(|work| (work, now.saturating_sub(work.seen_ms)))
            .filter(|(_, ago)| *ago <= grace)
    }

    /// Someone else's work on `node` that is still under way after the whole grace period
    /// (a node stopped deliberately that nobody started again): no longer a moment to wait
    /// out, but a person's to decide.
    pub fn a_persons_work_outlasting_grace(
        &self,
        node: &str,
        now: Millis,
    ) -> Option<&PersonAtWork> {
        let grace = self.config.person_grace.as_millis() as Millis;
        let node = NodeId::from(node);
        self.people_at_work.get(&node).filter(|work| {
            self.at_work_now.contains(&node)
                && now.saturating_sub(work.seen_ms) <= grace
                && now.saturating_sub(work.since_ms) > grace
        })
    }

    pub fn ticket(&self, id: TicketId) -> Option<&Ticket> {
        self.tickets.iter().find(|t| t.id == id)
    }

    pub fn action(&self, id: ActionId) -> Option<&Action> {
        self.actions.iter().find(|a| a.id == id)
    }

    pub fn ticket_actions(&self, id: TicketId) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(move |a| a.ticket_id == Some(id))
    }

    /// Actions not yet completed, failed or cancelled, oldest first.
    pub fn live_actions(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| !a.status.is_final())
    }

    pub fn spec(&self, name: &str) -> Option<&ActionSpec> {
        self.catalog.iter().find(|s| s.name == name)
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
        for node in &self.target_nodes {
            if !nodes.contains(node) {
                nodes.push(node.clone());
            }
        }
        nodes
    }

    /// Nodes the latest observation saw down. A degraded node still serves (a rate limiter
    /// node without Redis answers from its fail mode), so it does not count as disrupted.
    pub fn down_nodes(&self) -> BTreeSet<NodeId> {
        self.last_observation
            .iter()
            .flat_map(|o| o.nodes.iter())
            .filter(|n| n.health == Health::Down)
            .map(|n| n.id.clone())
            .collect()
    }

    /// Nodes a running action is taking out on purpose.
    pub fn disrupting(&self) -> BTreeSet<NodeId> {
        self.running
            .values()
            .filter_map(|r| r.disrupts.clone())
            .collect()
    }

    /// Nodes disrupted now or within the disruption memory: they count against the majority.
    pub fn recently_disrupted(&self, now: Millis) -> BTreeSet<NodeId> {
        let memory = self.config.disruption_memory.as_millis() as u64;
        self.finished_disruptions
            .iter()
            .filter(|(_, at)| now.saturating_sub(*at) <= memory)
            .map(|(node, _)| node.clone())
            .chain(self.disrupting())
            .collect()
    }
}
