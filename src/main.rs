//! The operator-tui binary: parses the command line and hands off to the engine, a front end
//! or a record-keeping command.

use std::path::PathBuf;

use clap::Parser;
use color_eyre::eyre::{Result, eyre};
use operator_tui::cli::{ChaosCommand, Cli, ClusterCommand, Commands, RunArgs, records};
use operator_tui::store::{self, Store};
use operator_tui::{deploy, run};

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
    let json = cli.json;
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Some(Commands::Tickets { command }) => {
            records::tickets(&mut Store::open(&db)?, command, json)
        }
        Some(Commands::Actions { command }) => {
            records::actions(&mut Store::open(&db)?, command, json)
        }
        Some(Commands::Killswitch { state }) => {
            records::kill_switch(&mut Store::open(&db)?, state, json)
        }
        Some(Commands::Mode { mode }) => records::mode(&mut Store::open(&db)?, mode),
        Some(Commands::Audit { ticket, limit }) => {
            records::audit(&Store::open(&db)?, ticket, limit, json)
        }
        Some(Commands::Run(args)) => start(args, &db, &state_dir, &runtime),
        None => start(cli.run, &db, &state_dir, &runtime),
        Some(Commands::Check { subject, .. }) => {
            let healthy = runtime.block_on(run::check_once(&subject, &state_dir, json))?;
            drop(runtime);
            if !healthy {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Commands::Chaos {
            command: ChaosCommand::List { subject },
        }) => run::chaos_list(subject, json),
        Some(Commands::Chaos {
            command:
                ChaosCommand::Inject {
                    name,
                    params,
                    subject,
                },
        }) => runtime.block_on(run::chaos_inject(subject, name, params, &db, &state_dir)),
        Some(Commands::Ask {
            question,
            subject,
            brain,
        }) => runtime.block_on(run::ask(question, &subject, &brain, &state_dir)),
        Some(Commands::Eval {
            subject,
            brain,
            runs,
            scenarios,
            out,
            control_seconds,
            replay,
        }) => {
            let options = operator_tui::eval::EvalOptions {
                subject,
                brain,
                runs: runs.max(1),
                scenarios,
                out,
                control_seconds,
            };
            match replay {
                Some(dir) => runtime.block_on(operator_tui::eval::replay(&dir, options)),
                None => runtime.block_on(operator_tui::eval::run(options)),
            }
        }
        Some(Commands::Cluster { command }) => match command {
            ClusterCommand::Up { subject } => {
                runtime.block_on(deploy::cluster_up(&subject, &state_dir))
            }
            ClusterCommand::Down => {
                deploy::cluster_down(operator_tui::cli::SubjectName::Ratelimiter, &state_dir)
            }
            ClusterCommand::Status => {
                deploy::cluster_status(operator_tui::cli::SubjectName::Ratelimiter, &state_dir)
            }
        },
        Some(Commands::Simulate {
            listen,
            stores,
            regions,
            pd_members,
            external_stores,
            real_timings,
        }) => {
            use operator_tikv_sim::model::SimConfig;
            let timings = if real_timings {
                SimConfig::default()
            } else {
                SimConfig::demo()
            };
            runtime.block_on(deploy::serve_simulator(
                listen,
                SimConfig {
                    stores,
                    regions,
                    pd_members,
                    external_stores,
                    ..timings
                },
            ))
        }
        Some(Commands::SimulateStore {
            pd,
            id,
            status_addr,
            advertise_status_addr,
        }) => runtime.block_on(deploy::serve_simulated_store(
            &pd,
            id,
            status_addr,
            advertise_status_addr,
        )),
        #[cfg(feature = "tikv-client")]
        Some(Commands::TikvWorkload { pd, rate, duration }) => {
            runtime.block_on(tikv_workload(pd, rate, duration))
        }
    }
}

/// `tikv-workload`: the real-cluster workload until the duration ends or Ctrl-C.
#[cfg(feature = "tikv-client")]
async fn tikv_workload(pd: Vec<String>, rate: f64, duration: Option<f64>) -> Result<()> {
    let workload = operator_tikv::workload::RawWorkload::start(pd, rate)
        .await
        .map_err(|e| eyre!(e))?;
    let started = std::time::Instant::now();
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let (ok, failed) = workload.counts();
        println!(
            "{:>6.0}s  ok {ok}  failed {failed}",
            started.elapsed().as_secs_f64()
        );
        if duration.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
            break;
        }
    }
    Ok(())
}

fn start(
    args: RunArgs,
    db: &std::path::Path,
    state_dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    if args.headless {
        return runtime.block_on(run::run_headless(args, db, state_dir));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(eyre!(
            "the TUI needs a terminal; use --headless to print the loop instead"
        ));
    }
    runtime.block_on(operator_tui::tui::run_tui(args, db, state_dir))
}
