//! One engine per database. The engine that runs holds an exclusive lock beside the database
//! for as long as it runs (the kernel drops it when the process dies, kill -9 included), and
//! records in the database which subject it watches and the context it runs under, so a second
//! engine refuses with who holds it and every terminal on the database obeys the same context.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};

use super::Store;
use crate::user_error;

/// Held while an engine runs on a database; dropping it lets the next one start.
#[derive(Debug)]
pub struct EngineClaim {
    _lock: std::fs::File,
}

/// Who wants to run on a database.
#[derive(Debug, Clone)]
pub struct Claimant {
    /// The subject's name ("ratelimiter", "tikv").
    pub subject: String,
    /// What the engine runs on, for whoever is refused ("ratelimiter · local").
    pub description: String,
    /// The context it was started under, if any, and whether that one is protected.
    pub context: Option<(String, bool)>,
}

/// The context a database belongs to, as its first engine recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContext {
    pub name: String,
    pub protected: bool,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".engine");
    PathBuf::from(name)
}

fn open_lock(db: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(db))
        .wrap_err("opening the database's engine lock")
}

/// Whether an engine holds the database now.
pub fn engine_running(db: &Path) -> Result<bool> {
    let file = open_lock(db)?;
    // SAFETY: flock on a descriptor we own; a shared try-lock is released when `file` drops.
    Ok(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } != 0)
}

impl EngineClaim {
    /// Takes the database for one engine, or says who holds it. Refuses a database another
    /// subject's engine recorded, and a context other than the protected one it belongs to;
    /// returns the context the engine runs under (the database's, when none was given).
    pub fn take(
        db: &Path,
        store: &mut Store,
        claimant: &Claimant,
    ) -> Result<(Self, Option<StoredContext>)> {
        let file = open_lock(db)?;
        // SAFETY: flock on a descriptor we own; held until `file` is dropped.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let pid = store.setting("engine_pid")?.unwrap_or_else(|| "?".into());
            let what = store.setting("engine_description")?.unwrap_or_default();
            return Err(user_error!(
                "another operator-tui (pid {pid}, {what}) is running on {}: one engine acts per database. Watch it from here with `operator-tui tickets list` or `actions list`, or give this one a database of its own with --db",
                db.display()
            ));
        }
        if let Some(owner) = store.setting("subject")?
            && owner != claimant.subject
        {
            return Err(user_error!(
                "{} holds the {owner} operator's tickets; the {} operator keeps its own: run it with --db PATH (its default is {})",
                db.display(),
                claimant.subject,
                super::default_path(&claimant.subject).display()
            ));
        }
        let stored = store.stored_context()?;
        let context = match (&claimant.context, stored) {
            (None, stored) => stored,
            (Some((name, _)), Some(stored)) if stored.protected && *name != stored.name => {
                return Err(user_error!(
                    "{} belongs to the protected context {}; {name} needs a database of its own (--db PATH)",
                    db.display(),
                    stored.name
                ));
            }
            (Some((name, protected)), _) => Some(StoredContext {
                name: name.clone(),
                protected: *protected,
            }),
        };
        let mut settings = vec![
            ("subject", claimant.subject.clone()),
            ("engine_pid", std::process::id().to_string()),
            ("engine_description", claimant.description.clone()),
        ];
        if let Some(context) = &context {
            settings.push(("context", context.name.clone()));
            settings.push(("context_protected", context.protected.to_string()));
        }
        store.put_settings(&settings)?;
        Ok((Self { _lock: file }, context))
    }
}

impl Store {
    /// The context this database belongs to, as an engine recorded it.
    pub fn stored_context(&self) -> Result<Option<StoredContext>> {
        Ok(self.setting("context")?.map(|name| StoredContext {
            name,
            protected: self.setting("context_protected").ok().flatten().as_deref() == Some("true"),
        }))
    }

    fn put_settings(&mut self, settings: &[(&str, String)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (key, value) in settings {
            tx.prepare_cached("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
                .execute(rusqlite::params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimant(subject: &str, context: Option<(&str, bool)>) -> Claimant {
        Claimant {
            subject: subject.into(),
            description: format!("{subject} · local"),
            context: context.map(|(n, p)| (n.to_string(), p)),
        }
    }

    #[test]
    fn a_second_engine_on_a_database_is_refused_with_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o.db");
        let mut store = Store::open(&db).unwrap();
        assert!(!engine_running(&db).unwrap());
        let (held, _) = EngineClaim::take(&db, &mut store, &claimant("rl", None)).unwrap();
        assert!(engine_running(&db).unwrap());
        let second = EngineClaim::take(&db, &mut Store::open(&db).unwrap(), &claimant("rl", None));
        let refusal = second.unwrap_err().to_string();
        assert!(
            refusal.contains(&format!("pid {}", std::process::id())),
            "{refusal}"
        );
        assert!(refusal.contains("rl · local"), "{refusal}");
        drop(held);
        assert!(!engine_running(&db).unwrap());
        EngineClaim::take(&db, &mut store, &claimant("rl", None)).unwrap();
    }

    #[test]
    fn a_database_refuses_another_subject_and_keeps_its_protected_context() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o.db");
        let mut store = Store::open(&db).unwrap();
        drop(EngineClaim::take(&db, &mut store, &claimant("rl", Some(("prod", true)))).unwrap());
        let other = EngineClaim::take(&db, &mut store, &claimant("tikv", None)).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("holds the rl operator's tickets"),
            "{other}"
        );
        // A terminal that omits --context still runs under the database's protected one.
        let (_claim, context) = EngineClaim::take(&db, &mut store, &claimant("rl", None)).unwrap();
        assert_eq!(
            context,
            Some(StoredContext {
                name: "prod".into(),
                protected: true
            })
        );
    }
}
