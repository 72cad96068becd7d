//! The command line: every flag also reads an environment variable where that makes sense.

mod args;
mod cluster;
pub mod records;

use std::path::{Path, PathBuf};

use color_eyre::eyre::Result;

use clap::{Parser, Subcommand, ValueEnum};

use crate::deploy::SubjectName;
use crate::run::{self, RunOptions};
use crate::store::Store;
use args::mode_parser;
pub use args::{BrainArgs, ColorChoice, Globals, RunArgs, SubjectArgs};

use crate::model::Mode;

/// operator-tui: an AI operator for distributed systems. It watches a cluster, checks its
/// invariants, opens a ticket when one breaks, has a brain diagnose it with visible reasoning,
/// runs a validated, policy-checked remediation and verifies that the fix held.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// The SQLite database (tickets, actions, audit); one engine runs on it at a time. Default:
    /// $XDG_STATE_HOME/operator-tui/operator.db, or operator-tikv.db for --subject tikv (or
    /// OPERATOR_SUBJECT=tikv for commands without --subject).
    #[arg(long, global = true, env = "OPERATOR_DB")]
    pub db: Option<PathBuf>,

    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(flatten)]
    pub globals: Globals,

    #[command(subcommand)]
    pub command: Option<Commands>,

    /// Without a command: `run` with these flags (`operator-tui --subject ratelimiter`).
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Watch the cluster and run the loop (the default command).
    Run(RunArgs),
    /// One observation; violations as a table or JSON; exit code 1 when any.
    Check {
        #[command(flatten)]
        subject: SubjectArgs,
        /// Observe once and exit (the only mode today; kept for scripts that say so).
        #[arg(long, default_value_t = true)]
        once: bool,
    },
    /// Tickets: the problems found, their timeline and resolution.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Incidents: tickets that share one cause, the cause first.
    Incidents {
        #[command(subcommand)]
        command: IncidentsCommand,
    },
    /// Actions: proposed remediations and their lifecycle.
    Actions {
        #[command(subcommand)]
        command: ActionsCommand,
    },
    /// The kill switch: halts running actions and blocks new ones until turned off.
    Killswitch {
        #[arg(value_enum)]
        state: KillSwitchState,
    },
    /// Set the mode a running (or the next) engine uses.
    Mode {
        #[arg(value_parser = mode_parser())]
        mode: Mode,
    },
    /// The append-only audit log: every state change and who caused it.
    Audit {
        #[arg(long)]
        ticket: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Faults the subject can inject into its own cluster.
    Chaos {
        #[command(subcommand)]
        command: ChaosCommand,
    },
    /// Ask the brain a question about the live cluster; it answers with the read-only tools.
    Ask {
        question: String,
        #[command(flatten)]
        subject: SubjectArgs,
        #[command(flatten)]
        brain: BrainArgs,
    },
    /// Score the operator: every scenario on a fresh cluster, graded from ground truth.
    Eval {
        #[arg(long, env = "OPERATOR_SUBJECT", value_enum, default_value_t = SubjectName::Ratelimiter)]
        subject: SubjectName,
        #[command(flatten)]
        brain: BrainArgs,
        /// Runs of each scenario.
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Only these scenarios (fault names, or control); default all.
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        /// Where eval.json, eval.md and the flights go.
        #[arg(long, default_value = "eval-results")]
        out: PathBuf,
        /// Seconds a no-fault control run watches for false positives.
        #[arg(long, default_value_t = 15)]
        control_seconds: u64,
        /// catalog: the demo chapters' faults, graded against their root cause. unknown: faults
        /// the operator was never told about (not in `chaos list`, not in any runbook), injected
        /// from outside, graded fixed / honest / wrong-harmless / harmful / missed, plus control
        /// runs under heavy legitimate load.
        #[arg(long, value_enum, default_value_t = crate::frontends::eval::Suite::Catalog)]
        suite: crate::frontends::eval::Suite,
        /// Put the flights recorded in DIR to the brain instead of running clusters.
        #[arg(long, value_name = "DIR")]
        replay: Option<PathBuf>,
        /// The generated suite: the first seed; each schedule is drawn from its seed alone, so
        /// `--seed N --count 1` replays schedule N exactly.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The generated suite: how many schedules (seeds SEED, SEED+1, ...).
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// The generated suite: tickets are answered by the fuzzed brain (any cause, any
        /// confidence, any catalog action with any valid parameters), so whatever harm it
        /// proposes is the engine's to stop.
        #[arg(long)]
        fuzz_brain: bool,
        /// The generated suite as a soak: one live cluster and one engine for MINUTES, a new
        /// schedule every 15 to 25 s overlapping the last; reports crashes, tickets left open,
        /// harm, processes left behind, and CPU and memory over time.
        #[arg(long, value_name = "MINUTES")]
        minutes: Option<u64>,
        /// The generated suite against a model of the subject on simulated time (the real
        /// engine, store, brain and oracle; thousands of schedules a minute, each replayable
        /// exactly); both subjects have one.
        #[arg(long)]
        simulated: bool,
        /// The generated suite, each seed played live and on the model, the two set side by
        /// side (verdict and actions): where they differ, the model is what gets fixed.
        #[arg(long, conflicts_with_all = ["simulated", "minutes"])]
        twin: bool,
    },
    /// Print a shell completion script: `operator-tui completions bash > /etc/bash_completion.d/operator-tui`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `operator-tui man > operator-tui.1; man ./operator-tui.1`.
    Man,
    /// Start, stop or inspect the local demo cluster on its own.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Serve the PD-compatible TiKV simulator on its own until Ctrl-C, for
    /// `--subject tikv --pd URL --target sim` from other processes.
    Simulate {
        /// Where PD's API listens; each store's status server gets a port of its own.
        #[arg(long, default_value = "127.0.0.1:2379")]
        listen: std::net::SocketAddr,
        /// TiKV stores (at least 3: each region keeps 3 replicas).
        #[arg(long, default_value_t = 3)]
        stores: u64,
        /// Regions, each with 3 replicas and a leader.
        #[arg(long, default_value_t = 300)]
        regions: u64,
        /// PD members to simulate (a majority must live for PD to have a leader).
        #[arg(long, default_value_t = 3)]
        pd_members: u64,
        /// The stores are processes of their own (`simulate-store`, e.g. one per container in
        /// compose/tikv-sim.yml): alive while they heartbeat.
        #[arg(long)]
        external_stores: bool,
        /// PD's and TiKV's own timings (Disconnected after 20 s, peers down after 10 min, Down
        /// after 30 min) instead of the demo's 3 s / 6 s / 10 s.
        #[arg(long)]
        real_timings: bool,
    },
    /// One simulated TiKV store as a process of its own: heartbeats to `simulate
    /// --external-stores` and serves its status server, like a tikv-server.
    SimulateStore {
        /// The simulator's PD URL.
        #[arg(long)]
        pd: String,
        /// Which store this process is (1, 2, ...).
        #[arg(long)]
        id: u64,
        /// Where the status server (/status, /metrics) listens.
        #[arg(long, default_value = "127.0.0.1:20180")]
        status_addr: std::net::SocketAddr,
        /// The status address PD reports for this store (TiKV's --advertise-status-addr).
        #[arg(long)]
        advertise_status_addr: Option<String>,
    },
    /// Raw puts and gets against a real TiKV cluster through tikv-client, counted every 5 s.
    /// tikv-client reaches stores at the addresses PD advertises: run it where they resolve
    /// (inside compose/tikv.yml's network).
    #[cfg(feature = "tikv-client")]
    TikvWorkload {
        /// PD endpoints as host:port, comma-separated (pd1:2379,pd2:2379,pd3:2379).
        #[arg(long, value_delimiter = ',', required = true)]
        pd: Vec<String>,
        /// Operations per second.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        duration: Option<f64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KillSwitchState {
    On,
    Off,
    Status,
}

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// The most recent tickets, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One ticket: its evidence, diagnosis, actions and timeline.
    Show {
        id: i64,
        /// The ticket's timeline only.
        #[arg(long)]
        timeline: bool,
    },
    /// Mark a ticket resolved by hand.
    Resolve {
        id: i64,
        #[arg(long, default_value = "resolved by hand")]
        reason: String,
    },
    /// Tell the engine to wait: no action runs on a held ticket.
    Hold {
        id: i64,
        #[arg(long, default_value = "held by hand")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// The most recent incidents, newest first: the cause and how many symptoms joined it.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One incident (named by its cause ticket): the cause, then every symptom.
    Show { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    List {
        #[arg(long)]
        ticket: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    Show {
        id: i64,
    },
    Approve {
        id: i64,
    },
    Reject {
        id: i64,
    },
    /// Cancel a waiting action, or stop a running one.
    Cancel {
        id: i64,
    },
    /// Take a completed action back: its inverse (prepared from the state read right before
    /// it ran) is proposed, approved by you, and a running engine runs it through the same
    /// gates as any action (the mode, the kill switch, the blast-radius policy). Irreversible
    /// actions say why they cannot be.
    Undo {
        id: i64,
    },
    /// Pick an action from the catalog for a ticket yourself (what to do after "needs a
    /// human"): checked against the catalog of the engine that last ran on this database,
    /// approved by you, and run by a running engine through the same gates as any action (the
    /// mode, the kill switch, the blast-radius policy, its premises).
    Propose {
        /// The ticket it is for.
        #[arg(long)]
        ticket: i64,
        /// The catalog action (see `actions catalog`).
        action: String,
        /// Parameters as key=value (e.g. --param node=node-2).
        #[arg(long = "param", value_parser = parse_key_value)]
        params: Vec<(String, serde_json::Value)>,
        /// Run it without re-checking its premises: type the name of its target (the node it
        /// disrupts, else the ticket's target) to confirm. Audited as an override.
        #[arg(long, value_name = "TARGET")]
        override_premises: Option<String>,
    },
    /// The actions the engine that last ran on this database can take, with their
    /// parameters, risk and what each destroys.
    Catalog,
}

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// The faults this subject can inject and the root cause each stands for.
    List {
        #[arg(long, env = "OPERATOR_SUBJECT", value_enum, default_value_t = SubjectName::Ratelimiter)]
        subject: SubjectName,
    },
    /// Inject a fault into the running cluster (see `cluster up`).
    Inject {
        name: String,
        /// Parameters as key=value (e.g. node=node-2).
        #[arg(long = "param", value_parser = parse_key_value)]
        params: Vec<(String, serde_json::Value)>,
        #[arg(long, env = "OPERATOR_SUBJECT", value_enum, default_value_t = SubjectName::Ratelimiter)]
        subject: SubjectName,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start the local cluster in the background and leave it running.
    Up {
        #[command(flatten)]
        subject: SubjectArgs,
    },
    /// Stop the cluster that `cluster up` started, its traffic and anything serving its nodes'
    /// ports with its nodes' program.
    Down,
    /// Each process of the detached cluster, its state, and who serves its port.
    Status,
    /// The detached cluster's steady traffic, until stopped (`cluster up` starts it).
    #[command(hide = true)]
    Workload {
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
    },
}

impl Cli {
    /// The subject the command is about: its --subject, else OPERATOR_SUBJECT (for commands
    /// on records, which take none), else the rate limiter. It picks the default database.
    pub fn subject(&self) -> SubjectName {
        let from_env = || {
            std::env::var("OPERATOR_SUBJECT")
                .ok()
                .and_then(|s| SubjectName::from_str(&s, true).ok())
                .unwrap_or(SubjectName::Ratelimiter)
        };
        match &self.command {
            None => self.run.subject.subject,
            Some(Commands::Run(args)) => args.subject.subject,
            Some(Commands::Check { subject, .. } | Commands::Ask { subject, .. }) => {
                subject.subject
            }
            Some(
                Commands::Eval { subject, .. }
                | Commands::Chaos {
                    command: ChaosCommand::List { subject } | ChaosCommand::Inject { subject, .. },
                },
            ) => *subject,
            Some(_) => from_env(),
        }
    }

    /// Whether the command only reads and prints (no engine, no cluster, no sockets): its
    /// output may go to a pipe that closes early.
    pub fn only_prints(&self) -> bool {
        matches!(
            self.command,
            Some(
                Commands::Completions { .. }
                    | Commands::Man
                    | Commands::Tickets { .. }
                    | Commands::Incidents { .. }
                    | Commands::Audit { .. }
                    | Commands::Chaos {
                        command: ChaosCommand::List { .. }
                    }
                    | Commands::Actions {
                        command: ActionsCommand::List { .. }
                            | ActionsCommand::Show { .. }
                            | ActionsCommand::Catalog
                    }
            )
        )
    }
}

impl ActionsCommand {
    /// Whether it makes something run (a read-only operator refuses it).
    fn acts(&self) -> bool {
        matches!(
            self,
            ActionsCommand::Approve { .. }
                | ActionsCommand::Undo { .. }
                | ActionsCommand::Propose { .. }
        )
    }
}

/// Whether a command that acts may go on: not read-only (this command line, or an engine
/// running on the same database), and on a protected context (this command line's, or the
/// one the database belongs to) only once its name is given.
fn may_act(
    store: &Store,
    globals: &Globals,
    file: &crate::config_file::FileConfig,
    what: &str,
) -> Result<()> {
    refuse_when_read_only(store, globals.read_only(file))?;
    let given = globals.context(file).filter(|c| c.protected);
    let stored = store.stored_context()?.filter(|c| c.protected);
    let protected: std::collections::BTreeSet<String> = (given.map(|c| c.name).into_iter())
        .chain(stored.map(|c| c.name))
        .collect();
    protected
        .iter()
        .try_for_each(|name| run::confirm_context(name, what))
}

fn refuse_when_read_only(store: &Store, read_only: bool) -> Result<()> {
    if read_only {
        return Err(crate::user_error!(
            "read-only (--read-only, OPERATOR_READ_ONLY or read_only in the config file): nothing is run and no chaos is injected"
        ));
    }
    if let Some(pid) = store.read_only_engine()? {
        return Err(crate::user_error!(
            "the operator running on this database (pid {pid}) is read-only: nothing is run and no chaos is injected while it runs"
        ));
    }
    Ok(())
}

/// `key=value`, where a value that parses as JSON (a number, true) keeps its type.
fn parse_key_value(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not key=value"))?;
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

/// Runs the command the line asked for.
pub fn execute(cli: Cli, db: &Path, state_dir: &Path) -> Result<()> {
    let json = cli.json;
    let file = crate::config_file::FileConfig::load(cli.globals.config.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Some(Commands::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "operator-tui", &mut std::io::stdout());
            Ok(())
        }
        Some(Commands::Man) => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(())
        }
        Some(Commands::Tickets { command }) => {
            records::tickets(&mut Store::open(db)?, command, json)
        }
        Some(Commands::Incidents { command }) => {
            records::incidents(&Store::open(db)?, command, json)
        }
        Some(Commands::Actions { command }) => {
            let mut store = Store::open(db)?;
            if command.acts() {
                may_act(&store, &cli.globals, &file, "act on it")?;
            }
            records::actions(&mut store, command, json)
        }
        Some(Commands::Killswitch { state }) => {
            records::kill_switch(&mut Store::open(db)?, state, json)
        }
        Some(Commands::Mode { mode }) => records::mode(&mut Store::open(db)?, mode),
        Some(Commands::Audit { ticket, limit }) => {
            records::audit(&Store::open(db)?, ticket, limit, json)
        }
        Some(Commands::Run(args)) => start(
            RunOptions {
                json,
                ..args.options(&file, &cli.globals)?
            },
            db,
            state_dir,
            &runtime,
        ),
        None => start(
            RunOptions {
                json,
                ..cli.run.options(&file, &cli.globals)?
            },
            db,
            state_dir,
            &runtime,
        ),
        Some(Commands::Check { subject, .. }) => {
            let healthy = runtime.block_on(run::check_once(&subject.spec(), state_dir, json))?;
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
        }) => {
            may_act(&Store::open(db)?, &cli.globals, &file, "inject chaos")?;
            runtime.block_on(run::chaos_inject(subject, name, params, db, state_dir))
        }
        Some(Commands::Ask {
            question,
            subject,
            brain,
        }) => runtime.block_on(run::ask(
            question,
            &subject.spec(),
            &brain.choice(&file)?,
            state_dir,
        )),
        Some(Commands::Eval {
            subject,
            brain,
            runs,
            scenarios,
            out,
            control_seconds,
            replay,
            suite,
            seed,
            count,
            fuzz_brain,
            minutes,
            simulated,
            twin,
        }) => {
            let options = crate::frontends::eval::EvalOptions {
                subject,
                brain: brain.choice(&file)?,
                runs: runs.max(1),
                scenarios,
                out,
                control_seconds,
            };
            if minutes.is_some() && suite != crate::frontends::eval::Suite::Generated {
                return Err(crate::user_error!(
                    "--minutes runs the generated suite as a soak: add --suite generated"
                ));
            }
            if (simulated || twin) && suite != crate::frontends::eval::Suite::Generated {
                return Err(crate::user_error!(
                    "--simulated and --twin play the generated suite's schedules on a model: add --suite generated"
                ));
            }
            if simulated && minutes.is_some() {
                return Err(crate::user_error!(
                    "--simulated plays schedules one by one on a model; the soak (--minutes) runs live only"
                ));
            }
            match (replay, suite) {
                (
                    Some(_),
                    crate::frontends::eval::Suite::Unknown
                    | crate::frontends::eval::Suite::Generated,
                ) => Err(crate::user_error!(
                    "--replay puts recorded flights of the catalog suite to a brain; the {} suite needs a cluster (replay a generated schedule with --seed N --count 1)",
                    if suite == crate::frontends::eval::Suite::Unknown {
                        "unknown"
                    } else {
                        "generated"
                    }
                )),
                (Some(dir), _) => runtime.block_on(crate::frontends::eval::replay(&dir, options)),
                (None, crate::frontends::eval::Suite::Catalog) => {
                    runtime.block_on(crate::frontends::eval::run(options))
                }
                (None, crate::frontends::eval::Suite::Unknown) => {
                    runtime.block_on(crate::frontends::eval::unknown::run(options))
                }
                (None, crate::frontends::eval::Suite::Generated) => {
                    let generated = crate::frontends::eval::generated::GeneratedOptions {
                        seed,
                        count: count.max(1),
                        fuzz: fuzz_brain,
                        simulated,
                    };
                    if simulated {
                        return crate::frontends::eval::generated::simulated::run(
                            options, generated,
                        );
                    }
                    runtime.block_on(async {
                        if twin {
                            return crate::frontends::eval::generated::twin::run(
                                options, generated,
                            )
                            .await;
                        }
                        match minutes {
                            Some(minutes) => {
                                crate::frontends::eval::generated::soak::run(
                                    options,
                                    generated,
                                    minutes.max(1),
                                )
                                .await
                            }
                            None => {
                                crate::frontends::eval::generated::run(options, generated).await
                            }
                        }
                    })
                }
            }
        }
        Some(Commands::Cluster { command }) => cluster::cluster(command, state_dir, &runtime),
        Some(command @ (Commands::Simulate { .. } | Commands::SimulateStore { .. })) => {
            runtime.block_on(cluster::simulate(command))
        }
        #[cfg(feature = "tikv-client")]
        Some(Commands::TikvWorkload { pd, rate, duration }) => {
            runtime.block_on(cluster::tikv_workload(pd, rate, duration))
        }
    }
}

fn start(
    args: RunOptions,
    db: &std::path::Path,
    state_dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    if args.autoplay && args.read_only {
        return Err(crate::user_error!(
            "--autoplay injects the chapters' faults, which --read-only forbids: drop one of them"
        ));
    }
    if args.headless {
        if args.autoplay {
            // The chapters are a screen's story; headless, nothing would show them.
            return Err(crate::user_error!(
                "--autoplay plays the demo chapters in the TUI; headless, inject a fault with --inject NAME (see `operator-tui chaos list`), or drop --headless"
            ));
        }
        return runtime.block_on(run::run_headless(args, db, state_dir));
    }
    if args.json {
        return Err(crate::user_error!(
            "--json prints the loop as JSON lines, which needs --headless (the TUI draws a screen)"
        ));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(crate::user_error!(
            "the TUI needs a terminal; use --headless to print the loop instead"
        ));
    }
    runtime.block_on(crate::frontends::tui::run_tui(args, db, state_dir))
}
