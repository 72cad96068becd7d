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
