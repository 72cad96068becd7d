//! SQLite, the source of truth: tickets, diagnoses, actions and their events, the append-only
//! audit log and settings. Every state change and its audit row are written in one transaction.

mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use operator_protocol::{Millis, Violation};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::model::*;

pub struct Store {
    conn: Connection,
}

/// A new action as the agent or a human proposes it.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub ticket_id: Option<TicketId>,
    pub name: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub rationale: String,
    pub risk: operator_protocol::Risk,
    pub max_attempts: u32,
    pub depends_on: Option<ActionId>,
    pub not_before_ms: Option<Millis>,
}

/// What the monitor did with one violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketChange {
    Opened(TicketId),
    Recurred(TicketId),
}

#[derive(Debug, Clone)]
pub struct ChaosRecord {
    pub at_ms: Millis,
    pub name: String,
    pub target: String,
    pub root_cause: String,
    pub expected_invariant: String,
}

/// `$XDG_STATE_HOME/operator-tui/operator.db`, else `~/.local/state/operator-tui/operator.db`.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("operator-tui").join("operator.db")
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn bad(what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {text:?} in the database").into(),
    )
}

fn parse_json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

fn ticket_from_row(row: &Row) -> rusqlite::Result<Ticket> {
    let severity: String = row.get("severity")?;
    let status: String = row.get("status")?;
    let chaos_name: Option<String> = row.get("chaos_name")?;
    let chaos_root: Option<String> = row.get("chaos_root_cause")?;
    Ok(Ticket {
        id: TicketId(row.get("id")?),
        subject: row.get("subject")?,
        invariant: row.get("invariant")?,
        target: row.get("target")?,
        severity: parse_severity(&severity).ok_or_else(|| bad("severity", &severity))?,
        status: TicketStatus::parse(&status).ok_or_else(|| bad("ticket status", &status))?,
        message: row.get("message")?,
        evidence: parse_json(row.get("evidence")?),
        occurrences: row.get::<_, i64>("occurrences")? as u64,
        clean_checks: row.get::<_, i64>("clean_checks")? as u64,
        reason: row.get("reason")?,
        timeline: Timeline {
            fault_injected_ms: row
                .get::<_, Option<i64>>("fault_injected_ms")?
                .map(|v| v as u64),
            first_seen_ms: row.get::<_, i64>("first_seen_ms")? as u64,
            opened_ms: row.get::<_, i64>("opened_ms")? as u64,
            diagnosed_ms: row.get::<_, Option<i64>>("diagnosed_ms")?.map(|v| v as u64),
            action_started_ms: row
                .get::<_, Option<i64>>("action_started_ms")?
                .map(|v| v as u64),
            action_done_ms: row
                .get::<_, Option<i64>>("action_done_ms")?
                .map(|v| v as u64),
            verifying_since_ms: row
                .get::<_, Option<i64>>("verifying_since_ms")?
                .map(|v| v as u64),
            resolved_ms: row.get::<_, Option<i64>>("resolved_ms")?.map(|v| v as u64),
        },
        chaos: chaos_name
            .zip(chaos_root)
            .map(|(name, root_cause)| ChaosLink { name, root_cause }),
    })
}

fn action_from_row(row: &Row) -> rusqlite::Result<Action> {
    let status: String = row.get("status")?;
    let risk: String = row.get("risk")?;
    let approval: Option<String> = row.get("approval")?;
    let params = match parse_json(row.get("params")?) {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Ok(Action {
        id: ActionId(row.get("id")?),
        ticket_id: row.get::<_, Option<i64>>("ticket_id")?.map(TicketId),
        name: row.get("name")?,
        params,
        rationale: row.get("rationale")?,
        risk: parse_risk(&risk).ok_or_else(|| bad("risk", &risk))?,
        status: ActionStatus::parse(&status).ok_or_else(|| bad("action status", &status))?,
        approval: match approval {
            None => None,
            Some(a) => Some(Approval::parse(&a).ok_or_else(|| bad("approval", &a))?),
        },
        attempts: row.get::<_, i64>("attempts")? as u32,
        max_attempts: row.get::<_, i64>("max_attempts")? as u32,
        depends_on: row.get::<_, Option<i64>>("depends_on")?.map(ActionId),
        not_before_ms: row
            .get::<_, Option<i64>>("not_before_ms")?
            .map(|v| v as u64),
        error: row.get("error")?,
        outcome: row.get("outcome")?,
        created_ms: row.get::<_, i64>("created_ms")? as u64,
        updated_ms: row.get::<_, i64>("updated_ms")? as u64,
    })
}

fn audit(
    tx: &Transaction,
    at_ms: Millis,
    cause: Cause,
    ticket: Option<TicketId>,
    action: Option<ActionId>,
    event: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at_ms, cause, ticket_id, action_id, event, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at_ms as i64, cause.as_str(), ticket.map(|t| t.0), action.map(|a| a.0), event, detail],
    )?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .wrap_err_with(|| format!("creating the state directory {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .wrap_err_with(|| format!("opening the database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Two processes opening a new database at once (an engine and a CLI) would both try to
        // create the schema; an advisory lock beside the file lets one migrate at a time.
        let _migrating = MigrationLock::take(path)?;
        schema::migrations()
            .to_latest(&mut conn)
            .wrap_err_with(|| format!("migrating the database {}", path.display()))?;
        Ok(Self { conn })
    }

    /// Actions left `executing` by a run that died are failed as interrupted, and their
    /// tickets escalated; nothing else changes.
    pub fn recover_interrupted(&mut self, now: Millis) -> Result<Vec<ActionId>> {
        let tx = self.conn.transaction()?;
        let stuck: Vec<(i64, Option<i64>)> = {
            let mut stmt =
                tx.prepare("SELECT id, ticket_id FROM actions WHERE status = 'executing'")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (id, ticket) in &stuck {
            let detail = "interrupted: the engine stopped while this action was executing";
            tx.execute(
                "UPDATE actions SET status = 'failed', error = ?2, updated_ms = ?3 WHERE id = ?1",
                params![id, detail, now as i64],
            )?;
            tx.execute(
                "INSERT INTO action_events (action_id, at_ms, from_status, to_status, detail) VALUES (?1, ?2, 'executing', 'failed', ?3)",
                params![id, now as i64, detail],
            )?;
            audit(
                &tx,
                now,
                Cause::Engine,
                ticket.map(TicketId),
                Some(ActionId(*id)),
                "action_interrupted",
                detail,
            )?;
            if let Some(ticket) = ticket {
                tx.execute(
                    "UPDATE tickets SET status = 'escalated', reason = ?2, updated_ms = ?3 WHERE id = ?1 AND status != 'resolved'",
                    params![ticket, "an action was interrupted by an engine restart; check it by hand", now as i64],
                )?;
                audit(
                    &tx,
                    now,
                    Cause::Engine,
                    Some(TicketId(*ticket)),
                    None,
                    "ticket_escalated",
                    "action interrupted by an engine restart",
                )?;
            }
        }
        // A diagnosis in flight when the engine died is simply asked for again.
        let requeued = tx.execute(
            "UPDATE tickets SET status = 'open', updated_ms = ?1 WHERE status = 'diagnosing'",
            params![now as i64],
        )?;
        if requeued > 0 {
            audit(
                &tx,
                now,
                Cause::Engine,
                None,
                None,
                "diagnoses_requeued",
                &format!("{requeued} ticket(s) back to open after a restart"),
            )?;
        }
        tx.commit()?;
        Ok(stuck.into_iter().map(|(id, _)| ActionId(id)).collect())
    }

    /// Opens a ticket for a new problem, or counts another occurrence of an active one.
    pub fn record_violation(
        &mut self,
        subject: &str,
        violation: &Violation,
        now: Millis,
        chaos: Option<&ChaosRecord>,
    ) -> Result<TicketChange> {
        let tx = self.conn.transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM tickets WHERE subject = ?1 AND invariant = ?2 AND target = ?3 AND status != 'resolved' ORDER BY id DESC LIMIT 1",
                params![subject, violation.invariant, violation.target],
                |r| r.get(0),
            )
            .optional()?;
        let change = if let Some(id) = existing {
            tx.execute(
                "UPDATE tickets SET occurrences = occurrences + 1, clean_checks = 0, message = ?2, evidence = ?3, updated_ms = ?4 WHERE id = ?1",
                params![id, violation.message, json_text(&violation.evidence), now as i64],
            )?;
            TicketChange::Recurred(TicketId(id))
        } else {
            tx.execute(
                "INSERT INTO tickets (subject, invariant, target, severity, status, message, evidence, chaos_name, chaos_root_cause, fault_injected_ms, first_seen_ms, opened_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?10)",
                params![
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
                ],
            )?;
            let id = TicketId(tx.last_insert_rowid());
            audit(
                &tx,
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
            TicketChange::Opened(id)
        };
        tx.commit()?;
        Ok(change)
    }

    /// Counts one observation in which the ticket's invariant held; returns the new count.
    pub fn record_clean_check(&mut self, id: TicketId, now: Millis) -> Result<u64> {
        self.conn.execute(
            "UPDATE tickets SET clean_checks = clean_checks + 1, updated_ms = ?2 WHERE id = ?1",
            params![id.0, now as i64],
        )?;
        Ok(self.conn.query_row(
            "SELECT clean_checks FROM tickets WHERE id = ?1",
            [id.0],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Moves a ticket to `status`, stamping its timeline and writing the audit row.
    pub fn set_ticket_status(
        &mut self,
        id: TicketId,
        status: TicketStatus,
        cause: Cause,
        reason: Option<&str>,
        now: Millis,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
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
            return Err(eyre!("ticket {id} does not exist"));
        }
        audit(
            &tx,
            now,
            cause,
            Some(id),
            None,
            &format!("ticket_{status}"),
            reason.unwrap_or(""),
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM tickets WHERE id = ?1",
                [id.0],
                ticket_from_row,
            )
            .optional()?)
    }

    pub fn active_tickets(&self) -> Result<Vec<Ticket>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM tickets WHERE status != 'resolved' ORDER BY id")?;
        Ok(stmt
            .query_map([], ticket_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The newest tickets first.
    pub fn tickets(&self, limit: usize) -> Result<Vec<Ticket>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM tickets ORDER BY id DESC LIMIT ?1")?;
        Ok(stmt
            .query_map([limit as i64], ticket_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn insert_diagnosis(
        &mut self,
        ticket: TicketId,
        brain: &str,
        body: &serde_json::Value,
        reasoning: &str,
        refusal: Option<&str>,
        now: Millis,
    ) -> Result<i64> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO diagnoses (ticket_id, brain, body, accepted, refusal, reasoning, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![ticket.0, brain, json_text(body), refusal.is_none(), refusal, reasoning, now as i64],
        )?;
        let id = tx.last_insert_rowid();
        let (event, detail) = match refusal {
            None => ("diagnosis_accepted", format!("from {brain}")),
            Some(why) => ("diagnosis_refused", format!("from {brain}: {why}")),
        };
        audit(&tx, now, Cause::Brain, Some(ticket), None, event, &detail)?;
        tx.commit()?;
        Ok(id)
    }

    pub fn diagnoses(&self, ticket: TicketId) -> Result<Vec<StoredDiagnosis>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM diagnoses WHERE ticket_id = ?1 ORDER BY id")?;
        Ok(stmt
            .query_map([ticket.0], |r| {
                Ok(StoredDiagnosis {
                    id: r.get("id")?,
                    ticket_id: TicketId(r.get("ticket_id")?),
                    brain: r.get("brain")?,
                    body: parse_json(r.get("body")?),
                    accepted: r.get("accepted")?,
                    refusal: r.get("refusal")?,
                    reasoning: r.get("reasoning")?,
                    created_ms: r.get::<_, i64>("created_ms")? as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn insert_action(
        &mut self,
        new: &NewAction,
        cause: Cause,
        now: Millis,
    ) -> Result<ActionId> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO actions (ticket_id, name, params, rationale, risk, status, max_attempts, depends_on, not_before_ms, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'proposed', ?6, ?7, ?8, ?9, ?9)",
            params![
                new.ticket_id.map(|t| t.0),
                new.name,
                json_text(&new.params),
                new.rationale,
                risk_str(new.risk),
                new.max_attempts,
                new.depends_on.map(|a| a.0),
                new.not_before_ms.map(|v| v as i64),
                now as i64,
            ],
        )?;
        let id = ActionId(tx.last_insert_rowid());
        tx.execute(
            "INSERT INTO action_events (action_id, at_ms, from_status, to_status, detail) VALUES (?1, ?2, NULL, 'proposed', ?3)",
            params![id.0, now as i64, new.rationale],
        )?;
        audit(
            &tx,
            now,
            cause,
            new.ticket_id,
            Some(id),
            "action_proposed",
            &format!("{} {}", new.name, json_text(&new.params)),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Moves an action from `from` to `to`; returns false (and changes nothing) when the action
    /// was no longer in `from`, so two writers can never both win a transition.
    #[allow(clippy::too_many_arguments)]
    pub fn transition_action(
        &mut self,
        id: ActionId,
        from: ActionStatus,
        to: ActionStatus,
        cause: Cause,
        detail: &str,
        now: Millis,
        update: ActionUpdate,
    ) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE actions SET status = ?3, updated_ms = ?4,
                attempts = attempts + ?5,
                not_before_ms = CASE WHEN ?6 THEN ?7 ELSE not_before_ms END,
                error = COALESCE(?8, error),
                outcome = COALESCE(?9, outcome)
             WHERE id = ?1 AND status = ?2",
            params![
                id.0,
                from.as_str(),
                to.as_str(),
                now as i64,
                update.count_attempt as i64,
                update.not_before_ms.is_some(),
                update.not_before_ms.flatten().map(|v| v as i64),
                update.error,
                update.outcome,
            ],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        let ticket: Option<i64> =
            tx.query_row("SELECT ticket_id FROM actions WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })?;
        tx.execute(
            "INSERT INTO action_events (action_id, at_ms, from_status, to_status, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.0, now as i64, from.as_str(), to.as_str(), detail],
        )?;
        let event = if from == to {
            "action_retry_scheduled".to_string()
        } else {
            format!("action_{to}")
        };
        audit(
            &tx,
            now,
            cause,
            ticket.map(TicketId),
            Some(id),
            &event,
            detail,
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Records a human's decision on an action awaiting approval.
    pub fn set_approval(
        &mut self,
        id: ActionId,
        approval: Approval,
        cause: Cause,
        now: Millis,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let action = tx
            .query_row(
                "SELECT * FROM actions WHERE id = ?1",
                [id.0],
                action_from_row,
            )
            .optional()?
            .ok_or_else(|| eyre!("there is no action {id}"))?;
        if action.status.is_final() {
            return Err(eyre!(
                "action {id} is already {}; nothing to approve",
                action.status
            ));
        }
        tx.execute(
            "UPDATE actions SET approval = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id.0, approval.as_str(), now as i64],
        )?;
        audit(
            &tx,
            now,
            cause,
            action.ticket_id,
            Some(id),
            &format!("action_{approval}"),
            &action.name,
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn action(&self, id: ActionId) -> Result<Option<Action>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM actions WHERE id = ?1",
                [id.0],
                action_from_row,
            )
            .optional()?)
    }

    /// Actions not yet completed, failed or cancelled, oldest first.
    pub fn live_actions(&self) -> Result<Vec<Action>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM actions WHERE status IN ('proposed', 'validated', 'executing') ORDER BY id",
        )?;
        Ok(stmt
            .query_map([], action_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn actions(&self, ticket: Option<TicketId>, limit: usize) -> Result<Vec<Action>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM actions WHERE (?1 IS NULL OR ticket_id = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        Ok(stmt
            .query_map(params![ticket.map(|t| t.0), limit as i64], action_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn action_events(&self, id: ActionId) -> Result<Vec<ActionEvent>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM action_events WHERE action_id = ?1 ORDER BY id")?;
        Ok(stmt
            .query_map([id.0], |r| {
                let from: Option<String> = r.get("from_status")?;
                let to: String = r.get("to_status")?;
                Ok(ActionEvent {
                    at_ms: r.get::<_, i64>("at_ms")? as u64,
                    from: from.as_deref().and_then(ActionStatus::parse),
                    to: ActionStatus::parse(&to).ok_or_else(|| bad("action status", &to))?,
                    detail: r.get("detail")?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn audit_log(&self, ticket: Option<TicketId>, limit: usize) -> Result<Vec<AuditRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM (SELECT * FROM audit WHERE (?1 IS NULL OR ticket_id = ?1) ORDER BY id DESC LIMIT ?2) ORDER BY id",
        )?;
        Ok(stmt
            .query_map(params![ticket.map(|t| t.0), limit as i64], |r| {
                let cause: String = r.get("cause")?;
                Ok(AuditRow {
                    id: r.get("id")?,
                    at_ms: r.get::<_, i64>("at_ms")? as u64,
                    cause: Cause::parse(&cause).ok_or_else(|| bad("cause", &cause))?,
                    ticket_id: r.get::<_, Option<i64>>("ticket_id")?.map(TicketId),
                    action_id: r.get::<_, Option<i64>>("action_id")?.map(ActionId),
                    event: r.get("event")?,
                    detail: r.get("detail")?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Writes one audit row on its own (for events that change no other table).
    pub fn audit_event(
        &mut self,
        cause: Cause,
        ticket: Option<TicketId>,
        event: &str,
        detail: &str,
        now: Millis,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        audit(&tx, now, cause, ticket, None, event, detail)?;
        tx.commit()?;
        Ok(())
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn set_setting(&mut self, key: &str, value: &str, cause: Cause, now: Millis) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        audit(&tx, now, cause, None, None, &format!("{key}_set"), value)?;
        tx.commit()?;
        Ok(())
    }

    pub fn mode(&self) -> Result<Option<Mode>> {
        Ok(self.setting("mode")?.as_deref().and_then(Mode::parse))
    }

    pub fn set_mode(&mut self, mode: Mode, cause: Cause, now: Millis) -> Result<()> {
        self.set_setting("mode", mode.as_str(), cause, now)
    }

    pub fn kill_switch(&self) -> Result<bool> {
        Ok(self.setting("kill_switch")?.as_deref() == Some("on"))
    }

    pub fn set_kill_switch(&mut self, on: bool, cause: Cause, now: Millis) -> Result<()> {
        self.set_setting("kill_switch", if on { "on" } else { "off" }, cause, now)
    }

    /// Records an injection, and links it to the tickets the monitor opened for it meanwhile
    /// (an injection can take longer than a tick to return).
    pub fn record_chaos(
        &mut self,
        subject: &str,
        record: &ChaosRecord,
        summary: &str,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE tickets SET chaos_name = ?1, chaos_root_cause = ?2, fault_injected_ms = ?3
             WHERE subject = ?4 AND invariant = ?5 AND chaos_name IS NULL AND opened_ms >= ?3",
            params![
                record.name,
                record.root_cause,
                record.at_ms as i64,
                subject,
                record.expected_invariant
            ],
        )?;
        tx.execute(
            "INSERT INTO chaos_injections (at_ms, subject, name, target, root_cause, expected_invariant, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![record.at_ms as i64, subject, record.name, record.target, record.root_cause, record.expected_invariant, summary],
        )?;
        audit(
            &tx,
            record.at_ms,
            Cause::Chaos,
            None,
            None,
            "chaos_injected",
            &format!("{} on {}: {summary}", record.name, record.target),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Injections since `since_ms`, newest first: the monitor links a new ticket to its cause.
    pub fn recent_chaos(&self, subject: &str, since_ms: Millis) -> Result<Vec<ChaosRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT at_ms, name, target, root_cause, expected_invariant FROM chaos_injections WHERE subject = ?1 AND at_ms >= ?2 ORDER BY id DESC",
        )?;
        Ok(stmt
            .query_map(params![subject, since_ms as i64], |r| {
                Ok(ChaosRecord {
                    at_ms: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    target: r.get(2)?,
                    root_cause: r.get(3)?,
                    expected_invariant: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }
}

/// An exclusive flock on `<db>.lock`, released when dropped.
struct MigrationLock {
    _held: std::fs::File,
}

impl MigrationLock {
    fn take(db: &Path) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(name))
            .wrap_err("opening the database's lock file")?;
        // SAFETY: flock on a descriptor we own; it blocks until the other process is done.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .wrap_err("locking the database for migration");
        }
        Ok(Self { _held: file })
    }
}

/// Optional column changes that ride along with an action transition.
#[derive(Debug, Clone, Default)]
pub struct ActionUpdate {
    pub count_attempt: bool,
    /// `Some(None)` clears the schedule; `Some(Some(t))` sets it.
    pub not_before_ms: Option<Option<Millis>>,
    pub error: Option<String>,
    pub outcome: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use operator_protocol::{Risk, Severity};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    fn violation(target: &str) -> Violation {
        Violation {
            invariant: "node_down".into(),
            severity: Severity::Critical,
            target: target.into(),
            message: "down".into(),
            evidence: serde_json::json!({}),
        }
    }

    #[test]
    fn the_same_problem_is_one_ticket_with_counted_occurrences() {
        let (_d, mut s) = store();
        let first = s
            .record_violation("sub", &violation("n1"), 1, None)
            .unwrap();
        let again = s
            .record_violation("sub", &violation("n1"), 2, None)
            .unwrap();
        let other = s
            .record_violation("sub", &violation("n2"), 3, None)
            .unwrap();
        let TicketChange::Opened(id) = first else {
            panic!("{first:?}")
        };
        assert_eq!(again, TicketChange::Recurred(id));
        assert!(matches!(other, TicketChange::Opened(o) if o != id));
        assert_eq!(s.ticket(id).unwrap().unwrap().occurrences, 2);
    }

    #[test]
    fn the_audit_log_refuses_updates_and_deletes() {
        let (_d, mut s) = store();
        s.record_violation("sub", &violation("n1"), 1, None)
            .unwrap();
        assert!(s.conn.execute("UPDATE audit SET detail = 'x'", []).is_err());
        assert!(s.conn.execute("DELETE FROM audit", []).is_err());
        assert_eq!(s.audit_log(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_transition_from_the_wrong_state_changes_nothing() {
        let (_d, mut s) = store();
        let new = NewAction {
            ticket_id: None,
            name: "wait".into(),
            params: Default::default(),
            rationale: "r".into(),
            risk: Risk::Safe,
            max_attempts: 1,
            depends_on: None,
            not_before_ms: None,
        };
        let id = s.insert_action(&new, Cause::Cli, 1).unwrap();
        let moved = s
            .transition_action(
                id,
                ActionStatus::Validated,
                ActionStatus::Executing,
                Cause::Executor,
                "",
                2,
                ActionUpdate::default(),
            )
            .unwrap();
        assert!(!moved);
        assert_eq!(
            s.action(id).unwrap().unwrap().status,
            ActionStatus::Proposed
        );
    }
}
