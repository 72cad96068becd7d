//! The operator-tui binary: parses the command line and hands off to the engine, a front end
//! or a record-keeping command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use operator_tui::cli::{self, Cli};
use operator_tui::{store, user_error};

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

/// Internal failures keep color-eyre's report (location, backtrace); its colours follow
/// NO_COLOR and whether stderr is a terminal, like everything else printed.
fn install_error_report() {
    let theme = if user_error::stderr_wants_color() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let _ = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .install();
}

// The engine builds and drops many small maps and strings per observation (JSON facts,
// SQLite rows); mimalloc took a fifth off the simulated eval's time (BENCHMARKS.md) and
// serves the live engine the same way.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    install_error_report();
    let cli = Cli::parse();
    if cli.only_prints() {
        // A command whose output is piped into `head` ends quietly when the pipe closes,
        // as Unix tools do, instead of panicking in println!. Commands that hold sockets or
        // children keep Rust's default (SIGPIPE ignored, EPIPE returned).
        // SAFETY: setting a signal's disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let db = cli
        .db
        .clone()
        .unwrap_or_else(|| store::default_path(cli.subject().as_str()));
    let state_dir = db
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let _log_guard = init_logging(&state_dir);
    match cli::execute(cli, &db, &state_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            tracing::error!(error = ?report, "the command failed");
            user_error::print(&report);
            ExitCode::FAILURE
        }
    }
}
