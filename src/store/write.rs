//! Every change the engine makes to the store, as data ([`Write`]), and [`Store::apply`], which
//! writes one step's changes and their audit rows in one transaction: a step is on disk whole
//! or not at all.

use std::collections::BTreeSet;

use color_eyre::eyre::Result;
use operator_protocol::{Millis, Violation};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{ChaosRecord, NewAction, Store, action_from_row, audit, json_text, ticket_from_row};
use crate::model::*;

/// Which incident a new ticket belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentLink {
    /// It is a cause, and the incidents listed (their symptoms were seen before it) join its
    /// own.
    Cause { adopts: Vec<TicketId> },
    /// A symptom of the incident whose cause is this ticket.
    SymptomOf(TicketId),
    /// A symptom of a cause seen in the same observation, whose ticket this batch opens just
    /// before it (its id is not known until then): the open ticket on that invariant and target.
    SymptomOfOpening { invariant: String, target: String },
}

/// One change to the store, with the audit row it carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    OpenTicket {
        subject: String,
        /// The cluster's incarnation (`EngineConfig::cluster`).
        cluster: String,
        violation: Violation,
        chaos: Option<ChaosRecord>,
        incident: IncidentLink,
    },
    /// Another occurrence of an active ticket's problem; its clean streak starts over.
    Recur {
        ticket: TicketId,
        violation: Violation,
    },
    /// One observation in which the ticket's invariant held.
    CleanCheck(TicketId),
    TicketStatus {
        ticket: TicketId,
        status: TicketStatus,
        cause: Cause,
        reason: Option<String>,
    },
    Diagnosis {
        ticket: TicketId,
        brain: String,
        body: serde_json::Value,
        reasoning: String,
        refusal: Option<String>,
    },
    /// Actions that run one after the other: each step depends on the one before it.
    Workflow {
        steps: Vec<NewAction>,
        cause: Cause,
    },
    /// Moves an action from `from` to `to`; nothing happens when it is no longer in `from`.
    ActionTransition {
        id: ActionId,
        from: ActionStatus,
        to: ActionStatus,
        cause: Cause,
        detail: String,
        update: ActionUpdate,
    },
    /// Why a validated action waits for a human (a gate's decision), or `None` when it no
    /// longer does; written only when the reason changes, each change an action event and an
    /// audit row.
    ActionWaiting {
        id: ActionId,
        reason: Option<String>,
        cause: Cause,
    },
    /// Take a completed action back: its undo is proposed as a new action on the same ticket,
    /// approved by whoever asked, and runs through the same gates as any action (mode, kill
    /// switch, policy). Refused (not an error) when there is nothing to take back.
    Undo {
        of: ActionId,
        cause: Cause,
    },
    /// A human picked this action for its ticket: proposed and approved by them, it starts
    /// the ticket's plan over and runs through the same gates as any action. `override_for`
    /// is the target name the human typed to run it although its premises may not hold.
    /// Refused (not an error) when the ticket cannot take an action now.
    Pick {
        action: NewAction,
        override_for: Option<String>,
        cause: Cause,
    },
    /// A human's decision on an action; refused (not an error) when the action has ended.
    Approval {
        id: ActionId,
        approval: Approval,
        cause: Cause,
    },
    Audit {
        cause: Cause,
        ticket: Option<TicketId>,
        event: String,
        detail: String,
    },
    /// An injection, linked to the tickets the monitor opened for it meanwhile (an injection
    /// can take longer than a tick to return).
    Chaos {
        subject: String,
        record: ChaosRecord,
        summary: String,
    },
    Mode {
        mode: Mode,
        cause: Cause,
    },
    KillSwitch {
        on: bool,
        cause: Cause,
    },
}

/// Optional column changes that ride along with an action transition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionUpdate {
    pub count_attempt: bool,
    /// The attempt counted when it started did not act after all (it waited instead).
    pub give_back_attempt: bool,
    /// `Some(None)` clears the schedule; `Some(Some(t))` sets it.
    pub not_before_ms: Option<Option<Millis>>,
    pub error: Option<String>,
    pub outcome: Option<String>,
    /// How to take it back, prepared when it ran.
    pub undo: Option<UndoPlan>,
    /// Why it cannot be taken back after all (its undo could not be prepared).
    pub irreversible: Option<String>,
}

/// What one `apply` changed: the rows to send as events, and what did not take.
#[derive(Debug, Default)]
pub struct Applied {
    pub tickets: BTreeSet<TicketId>,
    pub actions: BTreeSet<ActionId>,
    pub opened: Vec<TicketId>,
    /// Actions inserted by workflows, in order.
    pub inserted: Vec<ActionId>,
    /// Transitions that found their action no longer in `from`: another writer won.
    pub stale: BTreeSet<ActionId>,
    /// Writes refused for a reason a person should read (approving an ended action).
    pub refused: Vec<String>,
}

impl Store {
    /// Writes every change in one transaction.
    pub fn apply(&mut self, writes: &[Write], now: Millis) -> Result<Applied> {
        let tx = self.conn.transaction()?;
        let mut applied = Applied::default();
        for write in writes {
            apply_one(&tx, write, now, &mut applied)?;
        }
        tx.commit()?;
        Ok(applied)
    }
}

fn apply_one(tx: &Transaction, write: &Write, now: Millis, applied: &mut Applied) -> Result<()> {
    match write {
        Write::OpenTicket {
            subject,
            cluster,
            violation,
            chaos,
            incident,
        } => {
            let id = open_ticket(tx, subject, cluster, violation, chaos.as_ref(), now)?;
            for joined in link_incident(tx, id, incident, now)? {
                applied.tickets.insert(joined);
            }
            applied.opened.push(id);
            applied.tickets.insert(id);
        }
        Write::Recur { ticket, violation } => {
            tx.prepare_cached("UPDATE tickets SET occurrences = occurrences + 1, clean_checks = 0, message = ?2, evidence = ?3, updated_ms = ?4 WHERE id = ?1")?
                .execute(params![ticket.0, violation.message, json_text(&violation.evidence), now as i64],
            )?;
            applied.tickets.insert(*ticket);
        }
        Write::CleanCheck(ticket) => {
            tx.prepare_cached(
                "UPDATE tickets SET clean_checks = clean_checks + 1, updated_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![ticket.0, now as i64])?;
        }
        Write::TicketStatus {
            ticket,
            status,
            cause,
            reason,
        } => {
            ticket_status(tx, *ticket, *status, *cause, reason.as_deref(), now)?;
            applied.tickets.insert(*ticket);
        }
        Write::Diagnosis {
            ticket,
            brain,
            body,
            reasoning,
            refusal,
        } => {
            tx.prepare_cached("INSERT INTO diagnoses (ticket_id, brain, body, accepted, refusal, reasoning, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                .execute(params![ticket.0, brain, json_text(body), refusal.is_none(), refusal, reasoning, now as i64],
            )?;
            let (event, detail) = match refusal {
                None => ("diagnosis_accepted", format!("from {brain}")),
                Some(why) => ("diagnosis_refused", format!("from {brain}: {why}")),
            };
            audit(tx, now, Cause::Brain, Some(*ticket), None, event, &detail)?;
        }
        Write::Workflow { steps, cause } => {
            let mut previous = None;
            for step in steps {
                let step = NewAction {
                    depends_on: step.depends_on.or(previous),
                    ..step.clone()
                };
                let id = insert_action(tx, &step, *cause, now)?;
                applied.inserted.push(id);
                applied.actions.insert(id);
                applied.tickets.extend(step.ticket_id);
                previous = Some(id);
            }
        }
        Write::ActionTransition {
            id,
            from,
            to,
            cause,
            detail,
            update,
        } => {
            if transition_action(tx, *id, *from, *to, *cause, detail, now, update)? {
                applied.actions.insert(*id);
            } else {
                applied.stale.insert(*id);
            }
        }
        Write::ActionWaiting { id, reason, cause } => {
            if action_waiting(tx, *id, reason.as_deref(), *cause, now)? {
                applied.actions.insert(*id);
            }
        }
        Write::Undo { of, cause } => match propose_undo(tx, *of, *cause, now)? {
            Ok(id) => {
                applied.inserted.push(id);
                applied.actions.extend([id, *of]);
            }
            Err(refusal) => applied.refused.push(refusal),
        },
        Write::Pick {
            action,
            override_for,
            cause,
        } => match pick(tx, action, override_for.as_deref(), *cause, now)? {
            Ok(id) => {
                applied.inserted.push(id);
                applied.actions.insert(id);
                applied.tickets.extend(action.ticket_id);
            }
            Err(refusal) => applied.refused.push(refusal),
        },
        Write::Approval {
            id,
            approval,
            cause,
        } => match set_approval(tx, *id, *approval, *cause, now)? {
            Ok(()) => {
                applied.actions.insert(*id);
            }
            Err(refusal) => applied.refused.push(refusal),
        },
        Write::Audit {
            cause,
            ticket,
            event,
            detail,
        } => audit(tx, now, *cause, *ticket, None, event, detail)?,
        Write::Chaos {
            subject,
            record,
            summary,
        } => record_chaos(tx, subject, record, summary)?,
        Write::Mode { mode, cause } => set_setting(tx, "mode", mode.as_str(), *cause, now)?,
        Write::KillSwitch { on, cause } => set_setting(
            tx,
            "kill_switch",
            if *on { "on" } else { "off" },
            *cause,
            now,
        )?,
    }
    Ok(())
}

fn open_ticket(
    tx: &Transaction,
    subject: &str,
    cluster: &str,
    violation: &Violation,
    chaos: Option<&ChaosRecord>,
    now: Millis,
) -> Result<TicketId> {
    tx.prepare_cached("INSERT INTO tickets (subject, invariant, target, severity, status, message, evidence, chaos_name, chaos_root_cause, fault_injected_ms, first_seen_ms, opened_ms, updated_ms, cluster)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?10, ?11)")?
                .execute(params![
            subject,
            violation.invariant,
            violation.target,
            severity_str(violation.severity),
            violation.message,
            json_text(&violation.evidence),
            chaos.map(|c| c.name.clone()),
            chaos.map(|c| c.root_cause.clone()),
            chaos.map(|c| c.at_ms as i64),
            now as i64,
            cluster,
        ],
    )?;
    let id = TicketId(tx.last_insert_rowid());
    audit(
        tx,
        now,
        Cause::Monitor,
        Some(id),
        None,
        "ticket_opened",
        &format!(
            "{} on {}: {}",
            violation.invariant, violation.target, violation.message
        ),
    )?;
    Ok(id)
}

/// Puts a new ticket in its incident; returns every other ticket whose incident changed.
fn link_incident(
    tx: &Transaction,
    id: TicketId,
    link: &IncidentLink,
    now: Millis,
) -> Result<Vec<TicketId>> {
    let cause = match link {
        IncidentLink::SymptomOf(cause) => *cause,
        IncidentLink::SymptomOfOpening { invariant, target } => tx
            .prepare_cached(
                "SELECT incident_id FROM tickets WHERE invariant = ?1 AND target = ?2 AND status != 'resolved' ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![invariant, target], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .map_or(id, TicketId),
        IncidentLink::Cause { .. } => id,
    };
    tx.prepare_cached("UPDATE tickets SET incident_id = ?2 WHERE id = ?1")?
        .execute(params![id.0, cause.0])?;
    if cause != id {
        audit(
            tx,
            now,
            Cause::Monitor,
            Some(id),
            None,
            "incident_joined",
            &format!("a symptom of ticket {cause}'s incident"),
        )?;
        return Ok(Vec::new());
    }
    let IncidentLink::Cause { adopts } = link else {
        return Ok(Vec::new());
    };
    let mut moved = Vec::new();
    for incident in adopts {
        let mut stmt = tx.prepare_cached("SELECT id FROM tickets WHERE incident_id = ?1")?;
        let members: Vec<i64> = stmt
            .query_map([incident.0], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for member in members {
            tx.prepare_cached("UPDATE tickets SET incident_id = ?2 WHERE id = ?1")?
                .execute(params![member, id.0])?;
            audit(
                tx,
                now,
                Cause::Monitor,
                Some(TicketId(member)),
                None,
                "incident_joined",
                &format!("a symptom of ticket {id}, its cause, seen after it"),
            )?;
            moved.push(TicketId(member));
        }
    }
    Ok(moved)
}

/// Moves a ticket to `status`, stamping its timeline and writing the audit row.
fn ticket_status(
    tx: &Transaction,
    id: TicketId,
    status: TicketStatus,
    cause: Cause,
    reason: Option<&str>,
    now: Millis,
) -> Result<()> {
    let stamp = match status {
        TicketStatus::Diagnosed => Some("diagnosed_ms"),
        TicketStatus::Acting => Some("action_started_ms"),
        TicketStatus::Verifying => Some("verifying_since_ms"),
        TicketStatus::Resolved => Some("resolved_ms"),
        _ => None,
    };
    let mut sql = String::from(
        "UPDATE tickets SET status = ?2, reason = COALESCE(?3, reason), updated_ms = ?4",
    );
    if let Some(column) = stamp {
        sql.push_str(&format!(", {column} = COALESCE({column}, ?4)"));
    }
    if status == TicketStatus::Verifying {
        sql.push_str(", action_done_ms = COALESCE(action_done_ms, ?4), clean_checks = 0");
    }
    sql.push_str(" WHERE id = ?1");
    let changed = tx.execute(&sql, params![id.0, status.as_str(), reason, now as i64])?;
    if changed == 0 {
        return Err(crate::user_error!("ticket {id} does not exist"));
    }
    audit(
        tx,
        now,
        cause,
        Some(id),
        None,
        &format!("ticket_{status}"),
        reason.unwrap_or(""),
    )?;
    Ok(())
}

fn insert_action(tx: &Transaction, new: &NewAction, cause: Cause, now: Millis) -> Result<ActionId> {
    tx.prepare_cached("INSERT INTO actions (ticket_id, name, params, rationale, risk, status, max_attempts, depends_on, not_before_ms, created_ms, updated_ms, confidence, destroys, irreversible, undoes)
         VALUES (?1, ?2, ?3, ?4, ?5, 'proposed', ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13)")?
                .execute(params![
            new.ticket_id.map(|t| t.0),
            new.name,
            json_text(&new.params),
            new.rationale,
            new.risk.as_str(),
            new.max_attempts,
            new.depends_on.map(|a| a.0),
            new.not_before_ms.map(|v| v as i64),
            now as i64,
            new.confidence,
            new.destroys,
            new.irreversible,
            new.undoes.map(|a| a.0),
        ],
    )?;
    let id = ActionId(tx.last_insert_rowid());
    tx.prepare_cached("INSERT INTO action_events (action_id, at_ms, from_status, to_status, detail) VALUES (?1, ?2, NULL, 'proposed', ?3)")?
                .execute(params![id.0, now as i64, new.rationale],
    )?;
    audit(
        tx,
        now,
        cause,
        new.ticket_id,
        Some(id),
        "action_proposed",
        &match &new.destroys {
            Some(loss) => format!("{} {} (destroys {loss})", new.name, json_text(&new.params)),
            None => format!("{} {}", new.name, json_text(&new.params)),
        },
    )?;
    Ok(id)
}

/// Returns false (and changes nothing) when the action was no longer in `from`, so two
/// writers can never both win a transition.
#[allow(clippy::too_many_arguments)]
fn transition_action(
    tx: &Transaction,
    id: ActionId,
    from: ActionStatus,
    to: ActionStatus,
    cause: Cause,
    detail: &str,
    now: Millis,
    update: &ActionUpdate,
) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE actions SET status = ?3, updated_ms = ?4,
            attempts = attempts + ?5 - ?12,
            not_before_ms = CASE WHEN ?6 THEN ?7 ELSE not_before_ms END,
            error = COALESCE(?8, error),
            outcome = COALESCE(?9, outcome),
            undo = COALESCE(?10, undo),
            irreversible = COALESCE(?11, irreversible)
         WHERE id = ?1 AND status = ?2",
        )?
        .execute(params![
            id.0,
            from.as_str(),
            to.as_str(),
            now as i64,
            update.count_attempt as i64,
            update.not_before_ms.is_some(),
            update.not_before_ms.flatten().map(|v| v as i64),
            update.error,
            update.outcome,
            update.undo.as_ref().map(json_text),
            update.irreversible,
            update.give_back_attempt as i64,
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    let ticket: Option<i64> = tx
        .prepare_cached("SELECT ticket_id FROM actions WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))?;
    tx.prepare_cached("INSERT INTO action_events (action_id, at_ms, from_status, to_status, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![id.0, now as i64, from.as_str(), to.as_str(), detail],
    )?;
    let event = if from == to {
        "action_retry_scheduled".to_string()
    } else {
        format!("action_{to}")
    };
    audit(
        tx,
        now,
        cause,
        ticket.map(TicketId),
        Some(id),
        &event,
        detail,
    )?;
    Ok(true)
}

/// Records a gate's reason on a validated action; false when the action has moved on.
fn action_waiting(
    tx: &Transaction,
    id: ActionId,
    reason: Option<&str>,
    cause: Cause,
    now: Millis,
) -> Result<bool> {
    let changed = tx.prepare_cached("UPDATE actions SET waiting = ?2, updated_ms = ?3 WHERE id = ?1 AND status = 'validated' AND waiting IS NOT ?2")?
                .execute(params![id.0, reason, now as i64],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    let ticket: Option<i64> = tx
        .prepare_cached("SELECT ticket_id FROM actions WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))?;
    let detail = reason.unwrap_or("no longer waiting for a human");
    tx.prepare_cached("INSERT INTO action_events (action_id, at_ms, from_status, to_status, detail) VALUES (?1, ?2, 'validated', 'validated', ?3)")?
                .execute(params![id.0, now as i64, detail],
    )?;
    audit(
        tx,
        now,
        cause,
        ticket.map(TicketId),
        Some(id),
        "action_gate",
        detail,
    )?;
    Ok(true)
}

/// The inner `Err` is a refusal a person can read: no such action, or it has already ended.
fn action_row(tx: &Transaction, id: ActionId) -> Result<Option<Action>> {
    Ok(tx
        .prepare_cached("SELECT * FROM actions WHERE id = ?1")?
        .query_row([id.0], action_from_row)
        .optional()?)
}

/// Proposes the undo of a completed action, approved by `cause`; the refusal says why not.
fn propose_undo(
    tx: &Transaction,
    of: ActionId,
    cause: Cause,
    now: Millis,
) -> Result<std::result::Result<ActionId, String>> {
    let Some(action) = action_row(tx, of)? else {
        return Ok(Err(format!("there is no action {of}")));
    };
    if action.status != ActionStatus::Completed {
        return Ok(Err(format!(
            "action {of} is {}: only a completed action can be taken back",
            action.status
        )));
    }
    let Some(plan) = action.undo.clone() else {
        return Ok(Err(format!(
            "action {of} {} cannot be taken back: {}",
            action.name,
            action.irreversible.as_deref().unwrap_or("nothing to undo")
        )));
    };
    let earlier: Option<(i64, String)> = tx
        .prepare_cached("SELECT id, status FROM actions WHERE undoes = ?1 AND status NOT IN ('failed', 'cancelled', 'premise_failed') ORDER BY id DESC LIMIT 1")?
.query_row([of.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((undo, status)) = earlier {
        return Ok(Err(format!(
            "action {of} is already being taken back by action {undo} ({status})"
        )));
    }
    let new = NewAction {
        ticket_id: action.ticket_id,
        name: plan.action.clone(),
        params: plan.params.clone(),
        rationale: format!("undo of action {of} {} (asked by {cause})", action.name),
        risk: plan.risk,
        max_attempts: action.max_attempts,
        depends_on: None,
        not_before_ms: None,
        confidence: None,
        destroys: None,
        irreversible: None,
        undoes: Some(of),
    };
    let id = insert_action(tx, &new, cause, now)?;
    tx.prepare_cached("UPDATE actions SET approval = 'approved' WHERE id = ?1")?
        .execute([id.0])?;
    audit(
        tx,
        now,
        cause,
        action.ticket_id,
        Some(id),
        "undo_requested",
        &format!(
            "{cause} takes back action {of} {} with {} {}",
            action.name,
            plan.action,
            json_text(&plan.params)
        ),
    )?;
    Ok(Ok(id))
}

/// A human's pick: the action, approved by them, becomes the ticket's plan; an escalated (or
/// not yet diagnosed) ticket goes back to diagnosed so that the executor follows it.
fn pick(
    tx: &Transaction,
    action: &NewAction,
    override_for: Option<&str>,
    cause: Cause,
    now: Millis,
) -> Result<std::result::Result<ActionId, String>> {
    let Some(ticket_id) = action.ticket_id else {
        return Ok(Err("a picked action belongs to a ticket".into()));
    };
    let Some(ticket) = tx
        .prepare_cached("SELECT * FROM tickets WHERE id = ?1")?
        .query_row([ticket_id.0], ticket_from_row)
        .optional()?
    else {
        return Ok(Err(format!("there is no ticket {ticket_id}")));
    };
    match ticket.status {
        TicketStatus::Resolved => {
            return Ok(Err(format!(
                "ticket {ticket_id} is resolved: there is nothing left to fix"
            )));
        }
        TicketStatus::Diagnosing => {
            return Ok(Err(format!(
                "the brain is still diagnosing ticket {ticket_id}: pick once its diagnosis lands"
            )));
        }
        TicketStatus::Held => {
            return Ok(Err(format!(
                "ticket {ticket_id} is held: nothing runs on a held ticket"
            )));
        }
        _ => {}
    }
    // The pick replaces whatever still waits on the ticket: the brain's proposal must not run
    // beside (or before) what the person chose.
    let superseded = format!("superseded: {cause} picked {} instead", action.name);
    for from in [ActionStatus::Proposed, ActionStatus::Validated] {
        let waiting: Vec<i64> = tx
            .prepare_cached("SELECT id FROM actions WHERE ticket_id = ?1 AND status = ?2")?
            .query_map(params![ticket_id.0, from.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in waiting {
            let update = ActionUpdate {
                error: Some(superseded.clone()),
                ..ActionUpdate::default()
            };
            transition_action(
                tx,
                ActionId(id),
                from,
                ActionStatus::Cancelled,
                cause,
                &superseded,
                now,
                &update,
            )?;
        }
    }
    let id = insert_action(tx, action, cause, now)?;
    tx.prepare_cached(
        "UPDATE actions SET approval = 'approved', premises_overridden = ?2 WHERE id = ?1",
    )?
    .execute(params![id.0, override_for.is_some()])?;
    tx.execute(
        // A new plan is verified on its own clock.
        "UPDATE tickets SET plan_start = ?2, verifying_since_ms = NULL, action_done_ms = NULL WHERE id = ?1",
        params![ticket_id.0, id.0],
    )?;
    let picked = format!(
        "{cause} picked {} {}",
        action.name,
        json_text(&action.params)
    );
    audit(
        tx,
        now,
        cause,
        Some(ticket_id),
        Some(id),
        "action_picked",
        &picked,
    )?;
    if let Some(target) = override_for {
        audit(
            tx,
            now,
            cause,
            Some(ticket_id),
            Some(id),
            "premise_override",
            &format!(
                "{cause} typed {target:?} to run {} without re-checking its premises",
                action.name
            ),
        )?;
    }
    if !matches!(
        ticket.status,
        TicketStatus::Diagnosed | TicketStatus::Acting
    ) {
        ticket_status(
            tx,
            ticket_id,
            TicketStatus::Diagnosed,
            cause,
            Some(&format!("{picked}; the ticket follows that plan now")),
            now,
        )?;
    }
    Ok(Ok(id))
}

fn set_approval(
    tx: &Transaction,
    id: ActionId,
    approval: Approval,
    cause: Cause,
    now: Millis,
) -> Result<std::result::Result<(), String>> {
    let Some(action) = action_row(tx, id)? else {
        return Ok(Err(format!("there is no action {id}")));
    };
    if action.status.is_final() {
        return Ok(Err(format!(
            "action {id} is already {}; nothing to approve",
            action.status
        )));
    }
    tx.prepare_cached("UPDATE actions SET approval = ?2, updated_ms = ?3 WHERE id = ?1")?
        .execute(params![id.0, approval.as_str(), now as i64])?;
    audit(
        tx,
        now,
        cause,
        action.ticket_id,
        Some(id),
        &format!("action_{approval}"),
        &action.name,
    )?;
    Ok(Ok(()))
}

fn record_chaos(
    tx: &Transaction,
    subject: &str,
    record: &ChaosRecord,
    summary: &str,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tickets SET chaos_name = ?1, chaos_root_cause = ?2, fault_injected_ms = ?3
         WHERE subject = ?4 AND invariant = ?5 AND chaos_name IS NULL AND opened_ms >= ?3
           AND (target = ?6 OR instr(evidence, ?7) > 0)",
    )?
    .execute(params![
        record.name,
        record.root_cause,
        record.at_ms as i64,
        subject,
        record.expected_invariant,
        record.target,
        serde_json::Value::String(record.target.clone()).to_string(),
    ])?;
    tx.prepare_cached("INSERT INTO chaos_injections (at_ms, subject, name, target, root_cause, expected_invariant, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                .execute(params![record.at_ms as i64, subject, record.name, record.target, record.root_cause, record.expected_invariant, summary],
    )?;
    audit(
        tx,
        record.at_ms,
        Cause::Chaos,
        None,
        None,
        "chaos_injected",
        &format!("{} on {}: {summary}", record.name, record.target),
    )?;
    Ok(())
}

fn set_setting(tx: &Transaction, key: &str, value: &str, cause: Cause, now: Millis) -> Result<()> {
    tx.prepare_cached("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
                .execute(params![key, value],
    )?;
    audit(tx, now, cause, None, None, &format!("{key}_set"), value)?;
    Ok(())
}
