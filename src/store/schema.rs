//! The database schema as versioned migrations (SQLite `user_version`). Append new steps;
//! never edit a released one.

use rusqlite_migration::{M, Migrations};

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            invariant TEXT NOT NULL,
            target TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL,
            evidence TEXT NOT NULL,
            occurrences INTEGER NOT NULL DEFAULT 1,
            clean_checks INTEGER NOT NULL DEFAULT 0,
            reason TEXT,
            chaos_name TEXT,
            chaos_root_cause TEXT,
            fault_injected_ms INTEGER,
            first_seen_ms INTEGER NOT NULL,
            opened_ms INTEGER NOT NULL,
            diagnosed_ms INTEGER,
            action_started_ms INTEGER,
            action_done_ms INTEGER,
            verifying_since_ms INTEGER,
            resolved_ms INTEGER,
            updated_ms INTEGER NOT NULL
        );
        CREATE INDEX tickets_by_status ON tickets(status);
        CREATE INDEX tickets_by_problem ON tickets(subject, invariant, target);

        CREATE TABLE diagnoses (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id),
            brain TEXT NOT NULL,
            body TEXT NOT NULL,
            accepted INTEGER NOT NULL,
            refusal TEXT,
            reasoning TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL
        );

        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER REFERENCES tickets(id),
            name TEXT NOT NULL,
            params TEXT NOT NULL,
            rationale TEXT NOT NULL,
            risk TEXT NOT NULL,
            status TEXT NOT NULL,
            approval TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            depends_on INTEGER REFERENCES actions(id),
            not_before_ms INTEGER,
            error TEXT,
            outcome TEXT,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE INDEX actions_by_status ON actions(status);

        CREATE TABLE action_events (
            id INTEGER PRIMARY KEY,
            action_id INTEGER NOT NULL REFERENCES actions(id),
            at_ms INTEGER NOT NULL,
            from_status TEXT,
            to_status TEXT NOT NULL,
            detail TEXT NOT NULL
        );

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            cause TEXT NOT NULL,
            ticket_id INTEGER,
            action_id INTEGER,
            event TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        CREATE TABLE chaos_injections (
            id INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            subject TEXT NOT NULL,
            name TEXT NOT NULL,
            target TEXT NOT NULL,
            root_cause TEXT NOT NULL,
            expected_invariant TEXT NOT NULL,
            summary TEXT NOT NULL
        );
        "#,
        ),
        // Honest under the unknown: what an action destroys, the confidence it was
        // recommended with, and why a gate holds it for a human. Actions may now also end
        // `premise_failed` (status is free text, so that needs no change here).
        M::up(
            r#"
        ALTER TABLE actions ADD COLUMN confidence REAL;
        ALTER TABLE actions ADD COLUMN destroys TEXT;
        ALTER TABLE actions ADD COLUMN waiting TEXT;
        "#,
        ),
        // Incidents: one cause, one incident. An incident is named by its cause ticket; every
        // ticket points at the cause of the incident it belongs to (itself, for a cause).
        M::up(
            r#"
        ALTER TABLE tickets ADD COLUMN incident_id INTEGER REFERENCES tickets(id);
        UPDATE tickets SET incident_id = id;
        CREATE INDEX tickets_by_incident ON tickets(incident_id);
        "#,
        ),
        // Undo: how a completed action is taken back (the inverse request, filled from the
        // state read before it ran), or why it cannot be; and which action an undo undoes.
        M::up(
            r#"
        ALTER TABLE actions ADD COLUMN undo TEXT;
        ALTER TABLE actions ADD COLUMN irreversible TEXT;
        ALTER TABLE actions ADD COLUMN undoes INTEGER REFERENCES actions(id);
        "#,
        ),
        // Residue: what actions left in the cluster (a PD scheduler), recorded before it is
        // created; open while `removed_ms` is NULL.
        M::up(
            r#"
        CREATE TABLE residue (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            description TEXT NOT NULL,
            action_id INTEGER REFERENCES actions(id),
            left_ms INTEGER NOT NULL,
            removed_ms INTEGER
        );
        CREATE INDEX residue_open ON residue(subject) WHERE removed_ms IS NULL;
        "#,
        ),
        // A human picks the action: the pick starts the ticket's plan over, and may override
        // the action's premises (the human typed the target's name).
        M::up(
            r#"
        ALTER TABLE tickets ADD COLUMN plan_start INTEGER REFERENCES actions(id);
        ALTER TABLE actions ADD COLUMN premises_overridden INTEGER NOT NULL DEFAULT 0;
        "#,
        ),
        // Which incarnation of the cluster a ticket was seen on: a fix made on a cluster that
        // is gone is not the history of the one running now.
        M::up(
            r#"
        ALTER TABLE tickets ADD COLUMN cluster TEXT NOT NULL DEFAULT '';
        "#,
        ),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
