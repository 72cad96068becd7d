//! The headless front end: the loop printed as it happens, one line per event, with the time
//! since start. Reasoning streams line by line under its ticket.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use operator_protocol::{Health, ReasoningEvent};
use tokio::sync::broadcast;

use crate::events::{EngineEvent, ReasoningFor};
use crate::model::*;

pub struct Printer {
    started: Instant,
    /// Partial reasoning text per ticket until its line ends.
    pending: HashMap<ReasoningFor, String>,
    last_status: HashMap<TicketId, TicketStatus>,
    /// Each action's status and gate reason as last printed: a line per change of either.
    last_action: HashMap<ActionId, (ActionStatus, Option<String>)>,
    last_summary: Option<Instant>,
    last_health: Vec<(String, Health)>,
    last_violations: usize,
}

impl Default for Printer {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            pending: HashMap::new(),
            last_status: HashMap::new(),
            last_action: HashMap::new(),
            last_summary: None,
            last_health: Vec::new(),
            last_violations: 0,
        }
    }
}

impl Printer {
    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "[{:>7.2}s] {text}",
            self.started.elapsed().as_secs_f64()
        );
    }

    pub fn print(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::Observed {
                observation,
                violations,
            } => {
                let health: Vec<(String, Health)> = observation
                    .nodes
                    .iter()
                    .map(|n| (n.id.0.clone(), n.health))
                    .collect();
                // A line whenever a node's health or the number of violations changes, so
                // the moment the cluster settles is printed, and every 10 s besides.
                let changed =
                    health != self.last_health || violations.len() != self.last_violations;
                let due = self
                    .last_summary
                    .is_none_or(|t| t.elapsed().as_secs() >= 10);
                if changed || due {
                    let nodes = nodes_line(&health);
                    let ops = observation
                        .workload
                        .as_ref()
                        .map(|w| w.ops_per_sec)
                        .unwrap_or(0.0);
                    self.line(&format!(
                        "cluster: {nodes}  ·  {ops:.0} ops/s  ·  {} violation(s)",
                        violations.len()
                    ));
                    self.last_summary = Some(Instant::now());
                    self.last_health = health;
                    self.last_violations = violations.len();
                }
            }
            EngineEvent::ObservationFailed { error } => {
                self.line(&format!("observation failed: {error}"))
            }
            EngineEvent::TicketChanged(t) => {
                if self.last_status.insert(t.id, t.status) != Some(t.status) {
                    let reason = t
                        .reason
                        .as_deref()
                        .map(|r| format!(" — {r}"))
                        .unwrap_or_default();
                    let timing = match t.status {
                        TicketStatus::Open => t.timeline.time_to_detect_ms().map(|ms| {
                            format!(" (detected {:.2} s after the fault)", ms as f64 / 1e3)
                        }),
                        TicketStatus::Resolved => t
                            .timeline
                            .time_to_mitigate_ms()
                            .map(|ms| format!(" (in {:.2} s)", ms as f64 / 1e3)),
                        _ => None,
                    }
                    .unwrap_or_default();
                    let incident = if t.is_symptom() {
                        format!(" [a symptom of ticket {}]", t.incident)
                    } else {
                        String::new()
                    };
                    self.line(&format!(
                        "ticket {} {}: {} on {}{incident}{timing}{reason}",
                        t.id, t.status, t.invariant, t.target
                    ));
                }
            }
            EngineEvent::Reasoning { about, event } => match event {
                ReasoningEvent::Text { text } | ReasoningEvent::Thinking { text } => {
                    let buffer = self.pending.entry(*about).or_default();
                    buffer.push_str(text);
                    let mut lines = Vec::new();
                    while let Some(end) = buffer.find('\n') {
                        lines.push(buffer.drain(..=end).collect::<String>());
                    }
                    for line in lines {
                        self.line(&format!("  {} │ {}", label(about), line.trim_end()));
                    }
                }
                ReasoningEvent::ToolCall { tool, args } => {
                    self.line(&format!("  {} │ → {tool} {args}", label(about)))
                }
                ReasoningEvent::ToolResult { .. } => {}
            },
            EngineEvent::DiagnosisReady { ticket, diagnosis } => self.line(&format!(
                "ticket {ticket} diagnosed: {} ({:.0}% confident)",
                diagnosis.root_cause.category,
                diagnosis.confidence * 100.0
            )),
            EngineEvent::DiagnosisRefused { ticket, reason } => {
                self.line(&format!("ticket {ticket}: diagnosis refused — {reason}"))
            }
            EngineEvent::ActionChanged(a) => {
                let seen = (a.status, a.waiting.clone());
                if self.last_action.insert(a.id, seen.clone()) != Some(seen) {
                    let params = serde_json::Value::Object(a.params.clone());
                    let extra = match a.status {
                        ActionStatus::Proposed => a
                            .destroys
                            .as_deref()
                            .map(|loss| format!(" — destroys {loss}"))
                            .unwrap_or_default(),
                        ActionStatus::Validated if a.approval.is_none() => match &a.waiting {
                            Some(reason) => format!(" — {reason}"),
                            None if a.attempts == 0 => {
                                " (awaiting its gate: mode, approval, policy)".to_string()
                            }
                            None => String::new(),
                        },
                        ActionStatus::Completed => a
                            .outcome
                            .as_deref()
                            .map(|o| format!(" — {o}"))
                            .unwrap_or_default(),
                        ActionStatus::Failed
                        | ActionStatus::Cancelled
                        | ActionStatus::PremiseFailed => a
                            .error
                            .as_deref()
                            .map(|e| format!(" — {e}"))
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    self.line(&format!(
                        "action {} {} {params} {}{extra}",
                        a.id, a.name, a.status
                    ));
                }
            }
            EngineEvent::ChaosInjected {
                name,
                target,
                summary,
            } => self.line(&format!("chaos {name} on {target}: {summary}")),
            EngineEvent::ChaosFailed { name, error } => {
                self.line(&format!("chaos {name} failed: {error}"))
            }
            EngineEvent::Settings { mode, kill_switch } => self.line(&format!(
                "mode {mode}, kill switch {}",
                if *kill_switch { "ON" } else { "off" }
            )),
            EngineEvent::Notice(text) => self.line(text),
            EngineEvent::Answer { question, answer } => match answer {
                Ok(text) => self.line(&format!("answer to {question:?}: {text}")),
                Err(why) => self.line(&format!("no answer to {question:?}: {why}")),
            },
        }
    }
}

/// The margin a reasoning line streams under: its ticket, or `?` for a question.
fn label(about: &ReasoningFor) -> String {
    match about {
        ReasoningFor::Ticket(ticket) => ticket.to_string(),
        ReasoningFor::Question => "?".into(),
    }
}

fn symbol(health: Health) -> &'static str {
    match health {
        Health::Healthy => "●",
        Health::Degraded => "◐",
        Health::Down => "✖",
        Health::Unknown => "?",
    }
}

/// Prints events until the channel closes.
/// `--json`: every event as one JSON object a line, for scripts (`jq`), nothing else on stdout.
pub async fn print_events_json(mut events: broadcast::Receiver<EngineEvent>) {
    use std::io::Write;
    loop {
        let line = match events.recv().await {
            Ok(event) => serde_json::to_string(&event),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                serde_json::to_string(&serde_json::json!({ "event": "skipped", "data": n }))
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let mut out = std::io::stdout().lock();
        if let Ok(line) = line {
            let _ = writeln!(out, "{line}");
        }
    }
}

pub async fn print_events(mut events: broadcast::Receiver<EngineEvent>) {
    let mut printer = Printer::default();
    loop {
        match events.recv().await {
            Ok(event) => printer.print(&event),
            Err(broadcast::error::RecvError::Lagged(n)) => printer.line(&format!(
                "({n} events skipped: the terminal is slower than the engine)"
            )),
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Up to this many nodes are listed one by one; a larger cluster is counted, and only its
/// unhealthy nodes are named.
const LISTED_NODES: usize = 8;
/// At most this many unhealthy nodes are named on one line.
const NAMED_UNHEALTHY: usize = 10;

/// "node-1 ●  node-2 ✖  node-3 ●", or for a large cluster "57 up · 1 down · 2 degraded:
/// store-37 ✖  store-12 ◐  store-48 ◐".
fn nodes_line(health: &[(String, Health)]) -> String {
    if health.len() <= LISTED_NODES {
        return health
            .iter()
            .map(|(id, h)| format!("{id} {}", symbol(*h)))
            .collect::<Vec<_>>()
            .join("  ");
    }
    let summary = operator_widgets::view::health_summary(health.iter().map(|(_, h)| h));
    let mut unhealthy: Vec<&(String, Health)> = health
        .iter()
        .filter(|(_, h)| *h != Health::Healthy)
        .collect();
    if unhealthy.is_empty() {
        return summary;
    }
    unhealthy.sort_by_key(|(_, h)| operator_widgets::view::health_rank(*h));
    let mut named: Vec<String> = unhealthy
        .iter()
        .take(NAMED_UNHEALTHY)
        .map(|(id, h)| format!("{id} {}", symbol(*h)))
        .collect();
    if unhealthy.len() > NAMED_UNHEALTHY {
        named.push(format!("and {} more", unhealthy.len() - NAMED_UNHEALTHY));
    }
    format!("{summary}: {}", named.join("  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_cluster_is_counted_and_only_its_unhealthy_nodes_are_named() {
        let mut health: Vec<(String, Health)> = (1..=60)
            .map(|i| (format!("store-{i}"), Health::Healthy))
            .collect();
        health[36].1 = Health::Down;
        health[11].1 = Health::Degraded;
        assert_eq!(
            nodes_line(&health),
            "58 up · 1 down · 1 degraded: store-37 ✖  store-12 ◐"
        );
        let small = &health[..3];
        assert_eq!(nodes_line(small), "store-1 ●  store-2 ●  store-3 ●");
        health.iter_mut().for_each(|h| h.1 = Health::Down);
        let line = nodes_line(&health);
        assert!(
            line.starts_with("60 down: store-1 ✖") && line.ends_with("and 50 more"),
            "{line}"
        );
    }
}
