//! The operator-tui binary: parses the command line and hands off to the engine, a front end
//! or a record-keeping command.

use std::path::PathBuf;

use clap::Parser;
use color_eyre::eyre::Result;
use operator_tui::cli::{self, Cli};
use operator_tui::store;

/// Logs go to a rolling file in the state directory; the terminal belongs to the front end.
fn init_logging(
    state_dir: &std::path::Path,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = state_dir.join("logs");
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::daily(dir, "operator-tui.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPERATOR_LOG")
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Some(guard)
}

fn main() -> Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    let db = cli.db.clone().unwrap_or_else(store::default_path);
    let state_dir = db
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let _log_guard = init_logging(&state_dir);
    cli::execute(cli, &db, &state_dir)
}
