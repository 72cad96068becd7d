//! The record-keeping commands: tickets, actions, audit, mode and kill switch. They work on
//! the database alone, so they run from any terminal while an engine runs elsewhere.

use color_eyre::eyre::Result;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{ActionsCommand, IncidentsCommand, KillSwitchState, TicketsCommand};
use crate::clock::{Clock, SystemClock};
use crate::model::*;
use crate::store::{ActionUpdate, Store};

fn now() -> u64 {
    SystemClock.now_ms()
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// "12:04:31.250" in UTC; the audit log and timelines read better with times than epochs.
pub fn clock_time(ms: u64) -> String {
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

fn seconds(ms: Option<u64>) -> String {
    ms.map(|v| format!("{:.1}s", v as f64 / 1000.0))
        .unwrap_or_else(|| "—".into())
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn tickets(store: &mut Store, command: TicketsCommand, json: bool) -> Result<()> {
    match command {
        TicketsCommand::List { limit } => {
            let tickets = store.tickets(limit)?;
            if json {
                return print_json(&tickets);
            }
            let mut t = table(&[
                "id",
                "status",
                "invariant",
                "target",
                "seen",
                "detect",
                "diagnose",
                "mitigate",
                "reason",
            ]);
            for k in &tickets {
                t.add_row(vec![
                    k.id.0.to_string(),
                    k.status.to_string(),
                    k.invariant.clone(),
                    k.target.clone(),
                    k.occurrences.to_string(),
                    seconds(k.timeline.time_to_detect_ms()),
                    seconds(k.timeline.time_to_diagnose_ms()),
                    seconds(k.timeline.time_to_mitigate_ms()),
                    k.reason.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
        }
        TicketsCommand::Show { id, timeline } => {
            let ticket = store.ticket(TicketId(id))?.ok_or_else(|| {
                crate::user_error!("there is no ticket {id}; `tickets list` shows them")
            })?;
            if timeline {
                return show_timeline(&ticket, json);
            }
            let diagnoses = store.diagnoses(ticket.id)?;
            let actions = store.actions(Some(ticket.id), 50)?;
            if json {
                return print_json(
                    &serde_json::json!({ "ticket": ticket, "diagnoses": diagnoses, "actions": actions }),
                );
            }
            println!(
                "Ticket {} — {} on {} [{}]",
                ticket.id, ticket.invariant, ticket.target, ticket.status
            );
            println!("{}", ticket.message);
            if let Some(reason) = &ticket.reason {
                println!("reason: {reason}");
            }
            show_timeline(&ticket, false)?;
            for d in diagnoses {
                let verdict = if d.accepted {
                    "accepted".to_string()
                } else {
                    format!("refused: {}", d.refusal.unwrap_or_default())
                };
                println!("\nDiagnosis by {} ({verdict})", d.brain);
                print!("{}", d.reasoning);
            }
            for a in actions.iter().rev() {
                println!();
                print_action(store, a)?;
            }
        }
        TicketsCommand::Resolve { id, reason } => {
            store.set_ticket_status(
                TicketId(id),
                TicketStatus::Resolved,
                Cause::Cli,
                Some(&reason),
                now(),
            )?;
            println!("ticket #{id} resolved");
        }
        TicketsCommand::Hold { id, reason } => {
            store.set_ticket_status(
                TicketId(id),
                TicketStatus::Held,
                Cause::Cli,
                Some(&reason),
                now(),
            )?;
            println!("ticket #{id} held: no action runs on it until it is resolved");
        }
    }
    Ok(())
}

pub fn incidents(store: &Store, command: IncidentsCommand, json: bool) -> Result<()> {
    match command {
        IncidentsCommand::List { limit } => {
            let causes = store.incident_causes(limit)?;
            let mut rows = Vec::new();
            for cause in causes {
                let members = store.incident(cause.id)?;
                rows.push((cause, members.len() - 1));
            }
            if json {
                let list: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(cause, symptoms)| serde_json::json!({ "id": cause.id, "cause": cause, "symptoms": symptoms }))
                    .collect();
                return print_json(&list);
            }
            let mut t = table(&[
                "incident", "cause", "target", "status", "symptoms", "opened",
            ]);
            for (cause, symptoms) in &rows {
                t.add_row(vec![
                    cause.id.0.to_string(),
                    cause.invariant.clone(),
                    cause.target.clone(),
                    cause.status.to_string(),
                    symptoms.to_string(),
                    clock_time(cause.timeline.opened_ms),
                ]);
            }
            println!("{t}");
        }
        IncidentsCommand::Show { id } => {
            let members = store.incident(TicketId(id))?;
            let Some((cause, symptoms)) = members.split_first() else {
                return Err(match store.ticket(TicketId(id))? {
                    Some(t) => crate::user_error!(
                        "ticket {id} is a symptom; its incident is {} (`incidents show {}`)",
                        t.incident,
                        t.incident
                    ),
                    None => crate::user_error!(
                        "there is no incident {id}; `incidents list` shows them (an incident is named by its cause ticket)"
                    ),
                });
            };
            if json {
                return print_json(
                    &serde_json::json!({ "id": id, "cause": cause, "symptoms": symptoms }),
                );
            }
            println!(
                "Incident {id} — cause: ticket {} {} on {} [{}]",
                cause.id, cause.invariant, cause.target, cause.status
            );
            if let Some(reason) = &cause.reason {
                println!("  {reason}");
            }
            for s in symptoms {
                println!(
                    "  └ symptom: ticket {} {} on {} [{}]{}",
                    s.id,
                    s.invariant,
                    s.target,
                    s.status,
                    s.reason
                        .as_deref()
                        .map(|r| format!(" — {r}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn show_timeline(ticket: &Ticket, json: bool) -> Result<()> {
    let t = &ticket.timeline;
    let steps = [
        ("fault injected", t.fault_injected_ms),
        ("first violation seen", Some(t.first_seen_ms)),
        ("ticket opened", Some(t.opened_ms)),
        ("diagnosis done", t.diagnosed_ms),
        ("action started", t.action_started_ms),
        ("action done", t.action_done_ms),
        ("verifying since", t.verifying_since_ms),
        ("resolved", t.resolved_ms),
    ];
    if json {
        let map: serde_json::Map<String, serde_json::Value> = steps
            .iter()
            .map(|(k, v)| (k.replace(' ', "_"), serde_json::json!(v)))
            .collect();
        return print_json(&map);
    }
    let start = t.fault_injected_ms.unwrap_or(t.first_seen_ms);
    for (label, at) in steps {
        if let Some(at) = at {
            println!(
                "  {:<22} {}  (+{:.3} s)",
                label,
                clock_time(at),
                at.saturating_sub(start) as f64 / 1000.0
            );
        }
    }
    Ok(())
}

/// An action as a person reads it: what it is, what it risks and destroys, on what
/// confidence, why it waits, and every step and gate decision it went through.
fn print_action(store: &Store, action: &Action) -> Result<()> {
    println!(
        "Action {} {} {} [{}] ({} risk, attempts {}/{})",
        action.id,
        action.name,
        serde_json::Value::Object(action.params.clone()),
        action.status,
        action.risk.as_str().replace('_', "-"),
        action.attempts,
        action.max_attempts
    );
    println!("rationale: {}", action.rationale);
    if let Some(confidence) = action.confidence {
        println!("diagnosis confidence: {:.0} %", confidence * 100.0);
    }
    if let Some(loss) = &action.destroys {
        println!("destroys: {loss}");
    }
    if let Some(of) = action.undoes {
        println!("takes back: action {of}");
    }
    match (&action.undo, &action.irreversible) {
        (Some(plan), _) => println!(
            "undo: {} {} (operator-tui actions undo {})",
            plan.action,
            serde_json::Value::Object(plan.params.clone()),
            action.id.0
        ),
        (None, Some(why)) => println!("cannot be undone: {why}"),
        (None, None) => {}
    }
    if let Some(reason) = action
        .waiting
        .as_ref()
        .filter(|_| action.status == ActionStatus::Validated && action.approval.is_none())
    {
        println!("{reason}");
    }
    for e in store.action_events(action.id)? {
        println!(
            "  {}  {:>10} → {:<14} {}",
            clock_time(e.at_ms),
            e.from.map(|f| f.to_string()).unwrap_or_default(),
            e.to,
            e.detail
        );
    }
    Ok(())
}

pub fn actions(store: &mut Store, command: ActionsCommand, json: bool) -> Result<()> {
    let now = now();
    match command {
        ActionsCommand::List { ticket, limit } => {
            let actions = store.actions(ticket.map(TicketId), limit)?;
            if json {
                return print_json(&actions);
            }
            let mut t = table(&[
                "id", "ticket", "action", "params", "status", "approval", "attempts", "error",
            ]);
            for a in &actions {
                t.add_row(vec![
                    a.id.0.to_string(),
                    a.ticket_id.map(|t| t.0.to_string()).unwrap_or_default(),
                    a.name.clone(),
                    serde_json::Value::Object(a.params.clone()).to_string(),
                    a.status.to_string(),
                    a.approval.map(|x| x.to_string()).unwrap_or_default(),
                    format!("{}/{}", a.attempts, a.max_attempts),
                    a.error.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
        }
        ActionsCommand::Show { id } => {
            let action = store
                .action(ActionId(id))?
                .ok_or_else(|| crate::user_error!("there is no action {id}"))?;
            let events = store.action_events(action.id)?;
            if json {
                return print_json(&serde_json::json!({ "action": action, "events": events }));
            }
            print_action(store, &action)?;
        }
        ActionsCommand::Approve { id } => {
            store.set_approval(ActionId(id), Approval::Approved, Cause::Cli, now)?;
            println!("action {id} approved; a running engine picks it up on its next tick");
        }
        ActionsCommand::Undo { id } => {
            let undo = store.undo(ActionId(id), Cause::Cli, now)?;
            println!(
                "action {undo} proposed to take back action {id}, approved; a running engine runs it on its next tick (unless the mode is observe or the kill switch is on)"
            );
        }
        ActionsCommand::Propose {
            ticket,
            action,
            params,
            override_premises,
        } => {
            let catalog = stored_catalog(store)?;
            let ticket = store
                .ticket(TicketId(ticket))?
                .ok_or_else(|| crate::user_error!("there is no ticket {ticket}"))?;
            let pick = crate::engine::HumanPick {
                ticket: ticket.id,
                request: operator_protocol::ActionRequest {
                    action,
                    params: params.into_iter().collect(),
                },
                override_for: override_premises,
            };
            let new = crate::engine::pick::picked_action(
                &catalog,
                &ticket,
                &pick,
                None,
                crate::engine::EngineConfig::default().max_attempts,
            )
            .map_err(|e| crate::user_error!("{e}"))?;
            let id = store.pick(new, pick.override_for, Cause::Cli, now)?;
            println!(
                "action {id} {} picked for ticket {}, approved by you; a running engine runs it on its next tick (unless the mode is observe or the kill switch is on)",
                pick.request.action, ticket.id
            );
        }
        ActionsCommand::Catalog => {
            let catalog = stored_catalog(store)?;
            if json {
                return print_json(&catalog);
            }
            let mut t = table(&["action", "risk", "parameters", "destroys", "description"]);
            for spec in &catalog {
                let params: Vec<String> = spec
                    .params
                    .iter()
                    .map(|p| format!("{}: {}", p.name, p.kind))
                    .collect();
                // Loosening a protection is a person's decision whatever the risk: say so here.
                let risk = match &spec.loosens {
                    Some(what) => format!("{}\nloosens: {what}; a person decides", spec.risk),
                    None => spec.risk.to_string(),
                };
                t.add_row(vec![
                    spec.name.clone(),
                    risk,
                    params.join("\n"),
                    spec.destroys.clone().unwrap_or_default(),
                    spec.description.clone(),
                ]);
            }
            println!("{t}");
        }
        ActionsCommand::Reject { id } => {
            store.set_approval(ActionId(id), Approval::Rejected, Cause::Cli, now)?;
            println!("action {id} rejected");
        }
        ActionsCommand::Cancel { id } => {
            let action = store
                .action(ActionId(id))?
                .ok_or_else(|| crate::user_error!("there is no action {id}"))?;
            if action.status == ActionStatus::Executing {
                // The running engine owns the process doing the work; it stops it on its next tick.
                store.set_approval(action.id, Approval::Rejected, Cause::Cli, now)?;
                println!("action {id} is running; the engine will stop it on its next tick");
            } else if action.status.is_final() {
                return Err(crate::user_error!(
                    "action {id} is already {}",
                    action.status
                ));
            } else {
                let update = ActionUpdate {
                    error: Some("cancelled from the command line".into()),
                    ..Default::default()
                };
                store.transition_action(
                    action.id,
                    action.status,
                    ActionStatus::Cancelled,
                    Cause::Cli,
                    "cancelled from the command line",
                    now,
                    update,
                )?;
                println!("action {id} cancelled");
            }
        }
    }
    Ok(())
}

pub fn kill_switch(store: &mut Store, state: KillSwitchState, json: bool) -> Result<()> {
    match state {
        KillSwitchState::On => store.set_kill_switch(true, Cause::Cli, now())?,
        KillSwitchState::Off => store.set_kill_switch(false, Cause::Cli, now())?,
        KillSwitchState::Status => {}
    }
    let on = store.kill_switch()?;
    if json {
        print_json(&serde_json::json!({ "kill_switch": on }))
    } else {
        println!(
            "kill switch {}",
            if on { "ON: no action runs" } else { "off" }
        );
        Ok(())
    }
}

pub fn mode(store: &mut Store, mode: Mode) -> Result<()> {
    store.set_mode(mode, Cause::Cli, now())?;
    println!("mode {mode}");
    Ok(())
}

pub fn audit(store: &Store, ticket: Option<i64>, limit: usize, json: bool) -> Result<()> {
    let rows = store.audit_log(ticket.map(TicketId), limit)?;
    if json {
        return print_json(&rows);
    }
    let mut t = table(&["time", "cause", "ticket", "action", "event", "detail"]);
    for r in &rows {
        t.add_row(vec![
            clock_time(r.at_ms),
            r.cause.to_string(),
            r.ticket_id.map(|x| x.0.to_string()).unwrap_or_default(),
            r.action_id.map(|x| x.0.to_string()).unwrap_or_default(),
            r.event.clone(),
            r.detail.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}

fn stored_catalog(store: &Store) -> Result<Vec<operator_protocol::ActionSpec>> {
    store.catalog()?.ok_or_else(|| {
        crate::user_error!(
            "no engine has run on this database yet, so its action catalog is not known: start `operator-tui run` (with the same --db) first"
        )
    })
}
