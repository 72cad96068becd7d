//! Errors a person is meant to read and act on (a refusal, a missing cluster, a bad flag), told
//! apart from internal failures: the first reach the terminal as one plain `error:` line, the
//! second keep their full report (source location, backtrace) for a bug report.

use std::io::{IsTerminal, Write};

use color_eyre::eyre::Report;

/// A refusal or a mistake the message itself explains, with what to do about it.
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// `user_error!("no cluster is running: start one with ...")`: a report that prints plainly.
#[macro_export]
macro_rules! user_error {
    ($($message:tt)*) => {
        color_eyre::eyre::Report::new($crate::user_error::UserError(format!($($message)*)))
    };
}

/// Whether anything in the report's chain is a user error (context may wrap one).
pub fn is_user_error(report: &Report) -> bool {
    report.chain().any(|e| e.is::<UserError>())
}

/// Whether stderr wants colour: a terminal, and NO_COLOR unset (no-color.org).
pub fn stderr_wants_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints a failed command's error: a user error as `error: what: why` on one line, an
/// internal failure as its full report.
pub fn print(report: &Report) {
    let mut err = std::io::stderr().lock();
    if is_user_error(report) {
        let message: Vec<String> = report.chain().map(|e| e.to_string()).collect();
        let label = if stderr_wants_color() {
            "\x1b[1;31merror:\x1b[0m"
        } else {
            "error:"
        };
        let _ = writeln!(err, "{label} {}", message.join(": "));
    } else {
        let _ = writeln!(err, "Error: {report:?}");
    }
}

#[cfg(test)]
mod tests {
    use color_eyre::eyre::{WrapErr, eyre};

    use super::*;

    #[test]
    fn a_user_error_is_told_from_an_internal_failure_even_under_context() {
        let refused: color_eyre::Result<()> = Err(crate::user_error!("no cluster is running"));
        let wrapped = refused.wrap_err("chaos inject").unwrap_err();
        assert!(is_user_error(&wrapped));
        assert!(!is_user_error(&eyre!("the action was not inserted")));
    }
}
