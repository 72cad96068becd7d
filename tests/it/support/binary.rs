//! The operator-tui binary as the tests run it: against a database of the test's own.

use std::path::Path;
use std::process::{Command, Output};

pub fn operator(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_operator-tui"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

/// Whether it succeeded, and stdout then stderr as one text to search and to show on failure.
pub fn operator_text(db: &Path, args: &[&str]) -> (bool, String) {
    let out = operator(db, args);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A detached cluster (`cluster up`) on the test's database, stopped when dropped, even when
/// an assertion fails first.
pub struct DetachedCluster<'a> {
    db: &'a Path,
    /// What `cluster up` printed.
    pub up: Output,
}

pub fn cluster_up(db: &Path) -> DetachedCluster<'_> {
    let up = operator(db, &["cluster", "up"]);
    let cluster = DetachedCluster { db, up };
    assert!(
        cluster.up.status.success(),
        "{}",
        String::from_utf8_lossy(&cluster.up.stderr)
    );
    cluster
}

impl Drop for DetachedCluster<'_> {
    fn drop(&mut self) {
        let _ = operator(self.db, &["cluster", "down"]);
    }
}
