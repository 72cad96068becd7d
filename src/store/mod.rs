//! SQLite, the source of truth: tickets, diagnoses, actions and their events, the append-only
//! audit log and settings. Every state change and its audit row are written in one transaction.

mod claim;
mod schema;
mod write;

pub use claim::{Claimant, EngineClaim, StoredContext, engine_running};

pub use write::{ActionUpdate, Applied, IncidentLink, Write};

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
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    pub ticket_id: Option<TicketId>,
    pub name: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub rationale: String,
    pub risk: operator_protocol::Risk,
    pub max_attempts: u32,
    pub depends_on: Option<ActionId>,
    pub not_before_ms: Option<Millis>,
    /// The confidence of the diagnosis that recommended it; `None` for a human's action.
    pub confidence: Option<f64>,
    /// What it loses or gives away, from its spec.
    pub destroys: Option<String>,
    /// Why it cannot be taken back, from its spec.
    pub irreversible: Option<String>,
    /// The action it takes back.
    pub undoes: Option<ActionId>,
}

/// What the monitor did with one violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketChange {
    Opened(TicketId),
    Recurred(TicketId),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChaosRecord {
    pub at_ms: Millis,
    pub name: String,
    pub target: String,
    pub root_cause: String,
    pub expected_invariant: String,
}

impl ChaosRecord {
    /// Whether this injection explains a violation: the invariant it is expected to break, on
    /// its own target or on one whose evidence names that target (Redis killed: every node
    /// reports Redis gone). An injection on node-3 explains nothing on node-2.
    pub fn explains(&self, violation: &Violation) -> bool {
        self.expected_invariant == violation.invariant
            && (self.target == violation.target
                || violation
                    .evidence
                    .to_string()
                    .contains(&self.quoted_target()))
    }

    /// The target as it stands in evidence JSON.
    fn quoted_target(&self) -> String {
        serde_json::Value::String(self.target.clone()).to_string()
    }
}

/// A remedy that ran and was verified on a ticket resolved lately: if the same problem comes
/// back, running the same remedy again is a loop, not a fix.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentFix {
    pub ticket: TicketId,
    /// The root cause its accepted diagnosis named.
    pub cause: String,
    pub invariant: String,
    pub target: String,
    pub action: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub resolved_ms: Millis,
}

/// Something an action left in the cluster, still there as far as the database knows.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenResidue {
    pub id: i64,
    pub residue: operator_protocol::Residue,
    pub action: Option<ActionId>,
    pub ticket: Option<TicketId>,
    pub left_ms: Millis,
}

/// `$XDG_STATE_HOME/operator-tui/operator.db`, else `~/.local/state/operator-tui/operator.db`.
/// The default database of a subject's operator: each subject keeps its own (a database refuses
/// another subject's engine), the rate limiter's under the historical name.
pub fn default_path(subject: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    let file = match subject {
        "ratelimiter" => "operator.db".to_string(),
        other => format!("operator-{other}.db"),
    };
    base.join("operator-tui").join(file)
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
    let id = TicketId(row.get("id")?);
    Ok(Ticket {
        id,
        incident: row
            .get::<_, Option<i64>>("incident_id")?
            .map_or(id, TicketId),
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
        plan_start: row.get::<_, Option<i64>>("plan_start")?.map(ActionId),
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
        risk: operator_protocol::Risk::parse(&risk).ok_or_else(|| bad("risk", &risk))?,
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
        confidence: row.get("confidence")?,
        destroys: row.get("destroys")?,
        waiting: row.get("waiting")?,
        undo: row
            .get::<_, Option<String>>("undo")?
            .and_then(|text| serde_json::from_str(&text).ok()),
        irreversible: row.get("irreversible")?,
        undoes: row.get::<_, Option<i64>>("undoes")?.map(ActionId),
        premises_overridden: row.get("premises_overridden")?,
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
    tx.prepare_cached("INSERT INTO audit (at_ms, cause, ticket_id, action_id, event, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![at_ms as i64, cause.as_str(), ticket.map(|t| t.0), action.map(|a| a.0), event, detail],
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
        // The engine runs the same few dozen statements every tick: parse each once.
        conn.set_prepared_statement_cache_capacity(128);
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
                tx.prepare_cached("SELECT id, ticket_id FROM actions WHERE status = 'executing'")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (id, ticket) in &stuck {
            let detail = "interrupted: the engine stopped while this action was executing";
            tx.prepare_cached(
                "UPDATE actions SET status = 'failed', error = ?2, updated_ms = ?3 WHERE id = ?1",
            )?
            .execute(params![id, detail, now as i64])?;
            tx.prepare_cached("INSERT INTO action_events (action_id, at_ms, from_status, to_status, detail) VALUES (?1, ?2, 'executing', 'failed', ?3)")?
                .execute(params![id, now as i64, detail],
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
                tx.prepare_cached("UPDATE tickets SET status = 'escalated', reason = ?2, updated_ms = ?3 WHERE id = ?1 AND status != 'resolved'")?
                .execute(params![ticket, "an action was interrupted by an engine restart; check it by hand", now as i64],
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
        let requeued = tx
            .prepare_cached(
                "UPDATE tickets SET status = 'open', updated_ms = ?1 WHERE status = 'diagnosing'",
            )?
            .execute(params![now as i64])?;
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
        let existing: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM tickets WHERE subject = ?1 AND invariant = ?2 AND target = ?3 AND status != 'resolved' ORDER BY id DESC LIMIT 1")?
.query_row(params![subject, violation.invariant, violation.target],
                |r| r.get(0),
            )
            .optional()?;
        let write = match existing {
            Some(id) => Write::Recur {
                ticket: TicketId(id),
                violation: violation.clone(),
            },
            // Outside the engine (a one-off `check`) there is no incident to join.
            None => Write::OpenTicket {
                subject: subject.to_string(),
                cluster: String::new(),
                violation: violation.clone(),
                chaos: chaos.cloned(),
                incident: IncidentLink::Cause { adopts: Vec::new() },
            },
        };
        let applied = self.apply(&[write], now)?;
        Ok(match (existing, applied.opened.first()) {
            (Some(id), _) => TicketChange::Recurred(TicketId(id)),
            (None, Some(id)) => TicketChange::Opened(*id),
            (None, None) => return Err(eyre!("the ticket was not opened")),
        })
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
        let write = Write::TicketStatus {
            ticket: id,
            status,
            cause,
            reason: reason.map(str::to_string),
        };
        self.apply(&[write], now).map(drop)
    }

    pub fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(self
            .conn
            .prepare_cached("SELECT * FROM tickets WHERE id = ?1")?
            .query_row([id.0], ticket_from_row)
            .optional()?)
    }

    /// A number that changes whenever another connection (another process: the command line,
    /// a second engine) commits to the database, and only then: while it stays the same, what
    /// this connection read is still what the database holds, but for its own writes.
    pub fn data_version(&self) -> Result<i64> {
        // Prepared afresh each time, unlike every other statement here: a cached `PRAGMA
        // data_version` was seen to keep answering an old value, so the engine never noticed
        // a person's approval from the CLI (tests/it/undo.rs, about one run in six).
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    /// Runs `reads` in one read transaction: every query sees the same moment of the
    /// database (another process's write lands before or after all of them), and the file is
    /// locked once rather than per query.
    pub fn snapshot<T>(&mut self, reads: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        let result = reads(self);
        // A read transaction has nothing to keep: ending it either way only releases the lock.
        let ended = self
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        let value = result?;
        ended?;
        Ok(value)
    }

    pub fn active_tickets(&self) -> Result<Vec<Ticket>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM tickets WHERE status != 'resolved' ORDER BY id")?;
        Ok(stmt
            .query_map([], ticket_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Tickets resolved at or after `since_ms`, oldest first: causes whose aftermath may last.
    pub fn resolved_since(&self, since_ms: Millis) -> Result<Vec<Ticket>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM tickets WHERE status = 'resolved' AND resolved_ms >= ?1 ORDER BY id",
        )?;
        Ok(stmt
            .query_map([since_ms as i64], ticket_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Every action of an active ticket, and every live action, oldest first: what the
    /// engine decides over.
    pub fn engine_actions(&self) -> Result<Vec<Action>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM actions WHERE status IN ('proposed', 'validated', 'executing')
                OR ticket_id IN (SELECT id FROM tickets WHERE status != 'resolved')
             ORDER BY id",
        )?;
        Ok(stmt
            .query_map([], action_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The newest tickets first.
    pub fn tickets(&self, limit: usize) -> Result<Vec<Ticket>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM tickets ORDER BY id DESC LIMIT ?1")?;
        Ok(stmt
            .query_map([limit as i64], ticket_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The tickets of one incident, its cause first, then its symptoms by id.
    pub fn incident(&self, cause: TicketId) -> Result<Vec<Ticket>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM tickets WHERE incident_id = ?1 ORDER BY (id != ?1), id",
        )?;
        Ok(stmt
            .query_map([cause.0], ticket_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The most recent incidents' causes, newest first.
    pub fn incident_causes(&self, limit: usize) -> Result<Vec<Ticket>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM tickets WHERE incident_id = id ORDER BY id DESC LIMIT ?1",
        )?;
        Ok(stmt
            .query_map([limit as i64], ticket_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn diagnoses(&self, ticket: TicketId) -> Result<Vec<StoredDiagnosis>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM diagnoses WHERE ticket_id = ?1 ORDER BY id")?;
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
        let write = Write::Workflow {
            steps: vec![new.clone()],
            cause,
        };
        let applied = self.apply(&[write], now)?;
        applied
            .inserted
            .first()
            .copied()
            .ok_or_else(|| eyre!("the action was not inserted"))
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
        let write = Write::ActionTransition {
            id,
            from,
            to,
            cause,
            detail: detail.to_string(),
            update,
        };
        Ok(self.apply(&[write], now)?.stale.is_empty())
    }

    /// Records a human's decision on an action awaiting approval.
    /// Proposes the undo of a completed action, approved by `cause`; an error says why there
    /// is nothing to take back.
    pub fn undo(&mut self, of: ActionId, cause: Cause, now: Millis) -> Result<ActionId> {
        self.insert_one(Write::Undo { of, cause }, now)
    }

    pub fn set_approval(
        &mut self,
        id: ActionId,
        approval: Approval,
        cause: Cause,
        now: Millis,
    ) -> Result<()> {
        let write = Write::Approval {
            id,
            approval,
            cause,
        };
        match self.apply(&[write], now)?.refused.pop() {
            Some(refusal) => Err(crate::user_error!("{refusal}")),
            None => Ok(()),
        }
    }

    pub fn action(&self, id: ActionId) -> Result<Option<Action>> {
        Ok(self
            .conn
            .prepare_cached("SELECT * FROM actions WHERE id = ?1")?
            .query_row([id.0], action_from_row)
            .optional()?)
    }

    /// Actions not yet completed, failed or cancelled, oldest first.
    pub fn live_actions(&self) -> Result<Vec<Action>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM actions WHERE status IN ('proposed', 'validated', 'executing') ORDER BY id",
        )?;
        Ok(stmt
            .query_map([], action_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn actions(&self, ticket: Option<TicketId>, limit: usize) -> Result<Vec<Action>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM actions WHERE (?1 IS NULL OR ticket_id = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        Ok(stmt
            .query_map(params![ticket.map(|t| t.0), limit as i64], action_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub fn action_events(&self, id: ActionId) -> Result<Vec<ActionEvent>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM action_events WHERE action_id = ?1 ORDER BY id")?;
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
        let mut stmt = self.conn.prepare_cached(
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
        let write = Write::Audit {
            cause,
            ticket,
            event: event.to_string(),
            detail: detail.to_string(),
        };
        self.apply(&[write], now).map(drop)
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// The action catalog of the engine that last ran on this database, for the command
    /// line's `actions propose` (which has no subject of its own to ask).
    pub fn record_catalog(&mut self, catalog: &[operator_protocol::ActionSpec]) -> Result<()> {
        self.conn.prepare_cached("INSERT INTO settings (key, value) VALUES ('catalog', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
                .execute([serde_json::to_string(catalog)?],
        )?;
        Ok(())
    }

    pub fn catalog(&self) -> Result<Option<Vec<operator_protocol::ActionSpec>>> {
        self.setting("catalog")?
            .map(|text| {
                serde_json::from_str(&text).wrap_err("the stored action catalog is not valid JSON")
            })
            .transpose()
    }

    /// Applies a write that inserts one action, or is refused; the error is the refusal.
    fn insert_one(&mut self, write: Write, now: Millis) -> Result<ActionId> {
        let applied = self.apply(&[write], now)?;
        match (applied.refused.into_iter().next(), applied.inserted.first()) {
            (Some(refusal), _) => Err(crate::user_error!("{refusal}")),
            (None, Some(id)) => Ok(*id),
            (None, None) => Err(eyre!("no action was recorded")),
        }
    }

    /// Records a human's pick; an error says why the ticket cannot take it now.
    pub fn pick(
        &mut self,
        action: NewAction,
        override_for: Option<String>,
        cause: Cause,
        now: Millis,
    ) -> Result<ActionId> {
        let write = Write::Pick {
            action,
            override_for,
            cause,
        };
        self.insert_one(write, now)
    }

    /// Marks this database as watched by a read-only engine (this process) until
    /// `clear_read_only_engine`; the command line refuses to act against it meanwhile.
    pub fn mark_read_only_engine(&mut self) -> Result<()> {
        self.conn.prepare_cached("INSERT INTO settings (key, value) VALUES ('read_only_pid', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
                .execute([std::process::id().to_string()],
        )?;
        Ok(())
    }

    pub fn clear_read_only_engine(&mut self) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM settings WHERE key = 'read_only_pid'")?
            .execute([])?;
        Ok(())
    }

    /// The pid of a read-only engine running on this database; one that died without
    /// clearing its mark (kill -9) does not count.
    pub fn read_only_engine(&self) -> Result<Option<u32>> {
        let pid = self
            .setting("read_only_pid")?
            .and_then(|p| p.parse::<u32>().ok());
        Ok(pid.filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists()))
    }

    pub fn mode(&self) -> Result<Option<Mode>> {
        Ok(self.setting("mode")?.as_deref().and_then(Mode::parse))
    }

    pub fn set_mode(&mut self, mode: Mode, cause: Cause, now: Millis) -> Result<()> {
        self.apply(&[Write::Mode { mode, cause }], now).map(drop)
    }

    pub fn kill_switch(&self) -> Result<bool> {
        Ok(self.setting("kill_switch")?.as_deref() == Some("on"))
    }

    pub fn set_kill_switch(&mut self, on: bool, cause: Cause, now: Millis) -> Result<()> {
        self.apply(&[Write::KillSwitch { on, cause }], now)
            .map(drop)
    }

    /// Records an injection, and links it to the tickets the monitor opened for it meanwhile
    /// (an injection can take longer than a tick to return).
    pub fn record_chaos(
        &mut self,
        subject: &str,
        record: &ChaosRecord,
        summary: &str,
    ) -> Result<()> {
        let write = Write::Chaos {
            subject: subject.to_string(),
            record: record.clone(),
            summary: summary.to_string(),
        };
        self.apply(&[write], record.at_ms).map(drop)
    }

    /// Injections since `since_ms`, newest first: the monitor links a new ticket to its cause.
    pub fn recent_chaos(&self, subject: &str, since_ms: Millis) -> Result<Vec<ChaosRecord>> {
        let mut stmt = self.conn.prepare_cached(
            // Once a ticket it explained has resolved, an injection explains nothing more: the
            // same trouble later is a new problem, not the old fault seen late.
            "SELECT at_ms, name, target, root_cause, expected_invariant FROM chaos_injections c
              WHERE subject = ?1 AND at_ms >= ?2
                AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.subject = c.subject
                    AND t.chaos_name = c.name AND t.fault_injected_ms = c.at_ms
                    AND t.status = 'resolved')
              ORDER BY id DESC",
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

    /// Records what an action is about to leave in the cluster, before it is created.
    pub fn record_residue(
        &mut self,
        subject: &str,
        residue: &operator_protocol::Residue,
        action: Option<ActionId>,
        now: Millis,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("INSERT INTO residue (subject, kind, key, description, action_id, left_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![subject, residue.kind, residue.key, residue.description, action.map(|a| a.0), now as i64],
        )?;
        let ticket: Option<i64> = match action {
            Some(a) => tx
                .prepare_cached("SELECT ticket_id FROM actions WHERE id = ?1")?
                .query_row([a.0], |r| r.get(0))
                .optional()?
                .flatten(),
            None => None,
        };
        audit(
            &tx,
            now,
            Cause::Executor,
            ticket.map(TicketId),
            action,
            "residue_left",
            &format!("{} ({})", residue.key, residue.description),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Marks what the subject removed as gone (every open record of it).
    pub fn residue_removed(
        &mut self,
        subject: &str,
        residue: &operator_protocol::Residue,
        now: Millis,
    ) -> Result<()> {
        self.conn.prepare_cached("UPDATE residue SET removed_ms = ?4 WHERE subject = ?1 AND kind = ?2 AND key = ?3 AND removed_ms IS NULL")?
                .execute(params![subject, residue.kind, residue.key, now as i64],
        )?;
        Ok(())
    }

    /// The key of everything this subject's actions ever left in the cluster, removed since
    /// or not.
    pub fn residue_keys(&self, subject: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT key FROM residue WHERE subject = ?1 ORDER BY key")?;
        Ok(stmt
            .query_map([subject], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// What this subject's actions left and nobody removed yet, oldest first.
    pub fn open_residue(&self, subject: &str) -> Result<Vec<OpenResidue>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.kind, r.key, r.description, r.action_id, a.ticket_id, r.left_ms
               FROM residue r LEFT JOIN actions a ON a.id = r.action_id
              WHERE r.subject = ?1 AND r.removed_ms IS NULL ORDER BY r.id",
        )?;
        Ok(stmt
            .query_map([subject], |r| {
                Ok(OpenResidue {
                    id: r.get(0)?,
                    residue: operator_protocol::Residue {
                        kind: r.get(1)?,
                        key: r.get(2)?,
                        description: r.get(3)?,
                    },
                    action: r.get::<_, Option<i64>>(4)?.map(ActionId),
                    ticket: r.get::<_, Option<i64>>(5)?.map(TicketId),
                    left_ms: r.get::<_, i64>(6)? as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// When problems of this subject and cluster incarnation cleared without an action since
    /// `since_ms`: (invariant, target, resolved_ms), newest first.
    pub fn recent_clears(
        &self,
        subject: &str,
        cluster: &str,
        since_ms: Millis,
    ) -> Result<Vec<(String, String, Millis)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT invariant, target, resolved_ms FROM tickets
              WHERE subject = ?1 AND cluster = ?2 AND status = 'resolved' AND resolved_ms >= ?3
                AND reason LIKE 'cleared without an action%'
              ORDER BY resolved_ms DESC",
        )?;
        Ok(stmt
            .query_map(params![subject, cluster, since_ms as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Remedies completed on tickets of this subject and cluster incarnation resolved as
    /// verified since `since_ms`, newest first, with the cause their diagnosis named.
    pub fn recent_fixes(
        &self,
        subject: &str,
        cluster: &str,
        since_ms: Millis,
    ) -> Result<Vec<RecentFix>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, t.invariant, t.target, a.name, a.params, t.resolved_ms,
                    (SELECT json_extract(d.body, '$.root_cause.category') FROM diagnoses d
                      WHERE d.ticket_id = t.id AND d.accepted = 1 ORDER BY d.id DESC LIMIT 1)
               FROM tickets t JOIN actions a ON a.ticket_id = t.id
              WHERE t.subject = ?1 AND t.cluster = ?2 AND t.status = 'resolved'
                AND t.resolved_ms >= ?3 AND t.reason LIKE 'verified%' AND a.status = 'completed'
              ORDER BY t.resolved_ms DESC",
        )?;
        Ok(stmt
            .query_map(params![subject, cluster, since_ms as i64], |r| {
                let params = match parse_json(r.get(4)?) {
                    serde_json::Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                Ok(RecentFix {
                    ticket: TicketId(r.get(0)?),
                    cause: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    invariant: r.get(1)?,
                    target: r.get(2)?,
                    action: r.get(3)?,
                    params,
                    resolved_ms: r.get::<_, i64>(5)? as u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use operator_protocol::{Risk, Severity};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    fn new_action(ticket_id: Option<TicketId>, name: &str) -> NewAction {
        NewAction {
            ticket_id,
            name: name.into(),
            params: Default::default(),
            rationale: "r".into(),
            risk: Risk::Disruptive,
            max_attempts: 1,
            depends_on: None,
            not_before_ms: None,
            confidence: None,
            destroys: None,
            irreversible: None,
            undoes: None,
        }
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
    fn a_fix_counts_as_history_only_on_the_cluster_it_was_made_on() {
        let (_d, mut s) = store();
        let open = Write::OpenTicket {
            subject: "sub".into(),
            cluster: "cluster-a".into(),
            violation: violation("n1"),
            chaos: None,
            incident: IncidentLink::Cause { adopts: Vec::new() },
        };
        let id = s.apply(&[open], 1).unwrap().opened[0];
        let diagnosis = Write::Diagnosis {
            ticket: id,
            brain: "rules".into(),
            body: serde_json::json!({ "root_cause": { "category": "process_crash" } }),
            reasoning: String::new(),
            refusal: None,
        };
        s.apply(&[diagnosis], 2).unwrap();
        s.insert_action(&new_action(Some(id), "restart_node"), Cause::Brain, 3)
            .unwrap();
        s.conn
            .execute("UPDATE actions SET status = 'completed'", [])
            .unwrap();
        s.conn
            .execute(
                "UPDATE tickets SET status = 'resolved', reason = 'verified', resolved_ms = 4",
                [],
            )
            .unwrap();
        let fixes = s.recent_fixes("sub", "cluster-a", 0).unwrap();
        assert_eq!(fixes.len(), 1);
        assert_eq!(fixes[0].cause, "process_crash");
        assert!(s.recent_fixes("sub", "cluster-b", 0).unwrap().is_empty());
        // A problem that cleared by itself is history of the same kind.
        assert!(s.recent_clears("sub", "cluster-a", 0).unwrap().is_empty());
        s.conn
            .execute(
                "UPDATE tickets SET reason = 'cleared without an action: node_down held'",
                [],
            )
            .unwrap();
        assert_eq!(
            s.recent_clears("sub", "cluster-a", 0).unwrap(),
            vec![("node_down".to_string(), "n1".to_string(), 4)]
        );
        assert!(s.recent_clears("sub", "cluster-b", 0).unwrap().is_empty());
    }

    #[test]
    fn an_injection_explains_nothing_more_once_its_ticket_resolved() {
        let (_d, mut s) = store();
        let chaos = ChaosRecord {
            at_ms: 10,
            name: "kill_redis".into(),
            target: "redis".into(),
            root_cause: "redis_crash".into(),
            expected_invariant: "node_down".into(),
        };
        s.record_chaos("sub", &chaos, "killed").unwrap();
        assert_eq!(s.recent_chaos("sub", 0).unwrap(), vec![chaos.clone()]);
        let TicketChange::Opened(id) = s
            .record_violation("sub", &violation("redis"), 11, Some(&chaos))
            .unwrap()
        else {
            panic!("a new ticket")
        };
        assert_eq!(s.recent_chaos("sub", 0).unwrap().len(), 1);
        s.conn
            .execute(
                "UPDATE tickets SET status = 'resolved' WHERE id = ?1",
                [id.0],
            )
            .unwrap();
        assert!(s.recent_chaos("sub", 0).unwrap().is_empty());
    }

    #[test]
    fn a_human_pick_cancels_what_still_waited_on_the_ticket() {
        let (_d, mut s) = store();
        let TicketChange::Opened(ticket) = s
            .record_violation("sub", &violation("n1"), 1, None)
            .unwrap()
        else {
            panic!("a new ticket")
        };
        let step = |name: &str| new_action(Some(ticket), name);
        let proposed = s
            .insert_action(&step("restart_node"), Cause::Brain, 2)
            .unwrap();
        let pick = Write::Pick {
            action: step("restart_redis"),
            override_for: None,
            cause: Cause::Human,
        };
        let picked = s.apply(&[pick], 3).unwrap().inserted[0];
        let brains = s.action(proposed).unwrap().unwrap();
        assert_eq!(brains.status, ActionStatus::Cancelled);
        assert!(
            brains
                .error
                .as_deref()
                .is_some_and(|e| e.contains("superseded")),
            "{:?}",
            brains.error
        );
        assert_eq!(
            s.action(picked).unwrap().unwrap().status,
            ActionStatus::Proposed
        );
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
            risk: Risk::Safe,
            ..new_action(None, "wait")
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
