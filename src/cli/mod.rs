//! The command line: every flag also reads an environment variable where that makes sense.

pub mod records;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::Mode;

/// operator-tui: an AI operator for distributed systems. It watches a cluster, checks its
/// invariants, opens a ticket when one breaks, has a brain diagnose it with visible reasoning,
/// runs a validated, policy-checked remediation and verifies that the fix held.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// The SQLite database (tickets, actions, audit). Default: $XDG_STATE_HOME/operator-tui/operator.db.
    #[arg(long, global = true, env = "OPERATOR_DB")]
    pub db: Option<PathBuf>,

    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Option<Commands>,

    /// Without a command: `run` with these flags (`operator-tui --subject ratelimiter`).
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SubjectName {
    /// Our own distributed rate limiter (ratelimiter-svc, 3 nodes + Redis).
    Ratelimiter,
    /// TiKV through PD's HTTP API; --target local runs a PD-compatible simulator
    /// (3 stores, 3 PD members, 300 regions) inside operator-tui.
    Tikv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetName {
    /// Child processes that operator-tui starts itself (for TiKV: the in-process simulator).
    Local,
    /// The containers of a running Compose project (compose/ratelimiter.yml, compose/tikv.yml).
    Docker,
    /// TiKV: the controls of the PD-compatible simulator that `operator-tui simulate` serves
    /// at --pd.
    Sim,
    /// No control over processes: watch, and act only through the subject's own API (PD's
    /// operators and schedulers); restarts are refused.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrainName {
    /// The offline rules brain: a differential diagnosis from the subject's runbook.
    Rules,
    /// Claude over the Messages API (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL).
    Anthropic,
    /// Any OpenAI-compatible server: OpenAI, Ollama, llama.cpp, vLLM (OPENAI_BASE_URL, OPENAI_API_KEY).
    Openai,
}

/// Which brain diagnoses tickets.
#[derive(Debug, Clone, Args)]
pub struct BrainArgs {
    /// Default: anthropic when ANTHROPIC_API_KEY is set, else rules. The choice is always shown.
    #[arg(long, env = "OPERATOR_BRAIN", value_enum)]
    pub brain: Option<BrainName>,

    /// The model for an LLM brain (default claude-sonnet-4-5, or gpt-4o-mini for openai).
    #[arg(long, env = "OPERATOR_MODEL")]
    pub model: Option<String>,
}

/// Which cluster to work on.
#[derive(Debug, Clone, Args)]
pub struct SubjectArgs {
    #[arg(long, env = "OPERATOR_SUBJECT", value_enum, default_value_t = SubjectName::Ratelimiter)]
    pub subject: SubjectName,

    #[arg(long, env = "OPERATOR_TARGET", value_enum, default_value_t = TargetName::Local)]
    pub target: TargetName,

    /// Use this Redis instead of starting one (local target), e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "OPERATOR_REDIS_URL")]
    pub redis_url: Option<String>,

    /// The Compose project to drive with --target docker (default operator-ratelimiter or
    /// operator-tikv).
    #[arg(long, env = "OPERATOR_COMPOSE_PROJECT")]
    pub compose_project: Option<String>,

    /// Steady background traffic across the cluster, in checks per second (0: none).
    #[arg(long, env = "OPERATOR_WORKLOAD_RATE", default_value_t = 200.0)]
    pub workload_rate: f64,

    /// TiKV: PD client URLs of a running cluster, comma-separated (compose/tikv.yml publishes
    /// http://127.0.0.1:2379). Without it a PD-compatible simulator is served in-process.
    #[arg(long, env = "OPERATOR_PD", value_delimiter = ',')]
    pub pd: Vec<String>,

    /// TiKV: read store metrics from this Prometheus (http://127.0.0.1:9090) instead of
    /// scraping each store's status address.
    #[arg(long, env = "OPERATOR_PROMETHEUS")]
    pub prometheus: Option<String>,

    /// TiKV: reach a status address PD reports somewhere else, as NAME=HOST:PORT (repeatable),
    /// e.g. tikv1:20180=127.0.0.1:20181. --target docker fills these from published ports.
    #[arg(long = "status-address", value_name = "NAME=HOST:PORT", value_parser = parse_rewrite)]
    pub status_addresses: Vec<(String, String)>,
}

impl Default for SubjectArgs {
    fn default() -> Self {
        Self {
            subject: SubjectName::Ratelimiter,
            target: TargetName::Local,
            redis_url: None,
            compose_project: None,
            workload_rate: 200.0,
            pd: Vec::new(),
            prometheus: None,
            status_addresses: Vec::new(),
        }
    }
}

impl SubjectArgs {
    /// The Compose project --target docker drives: the flag, or the subject's own
    /// (`docker-compose -p operator-tikv -f compose/tikv.yml up -d`).
    pub fn compose_project(&self) -> String {
        self.compose_project.clone().unwrap_or_else(|| {
            match self.subject {
                SubjectName::Ratelimiter => "operator-ratelimiter",
                SubjectName::Tikv => "operator-tikv",
            }
            .to_string()
        })
    }
}

fn parse_rewrite(text: &str) -> Result<(String, String), String> {
    let (name, reach) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=HOST:PORT"))?;
    if !reach.contains(':') {
        return Err(format!("{reach:?} needs a port (HOST:PORT)"));
    }
    Ok((name.to_string(), reach.to_string()))
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub subject: SubjectArgs,

    /// Print the loop as it happens instead of drawing the full-screen TUI.
    #[arg(long)]
    pub headless: bool,

    /// observe: never act; approve: act after a human approves; execute: act on its own.
    #[arg(long, env = "OPERATOR_MODE", value_parser = mode_parser())]
    pub mode: Option<Mode>,

    #[command(flatten)]
    pub brain: BrainArgs,

    /// Milliseconds between observations.
    #[arg(long, env = "OPERATOR_TICK_MS", default_value_t = 250)]
    pub tick_ms: u64,

    /// Stop after this many seconds (headless runs in scripts and tests).
    #[arg(long)]
    pub duration: Option<f64>,

    /// Inject this chaos (by name, see `chaos list`) once the cluster is healthy (headless).
    #[arg(long)]
    pub inject: Option<String>,

    /// Run the demo chapters unattended and quit after the last one (recordings, CI).
    #[arg(long)]
    pub autoplay: bool,

    /// Record the session as an asciicast v2 file (asciinema play FILE).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Demo chapters to use instead of the subject's own (TOML, see demo-chapters/).
    #[arg(long, value_name = "FILE")]
    pub chapters: Option<PathBuf>,
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
        /// Put the flights recorded in DIR to the brain instead of running clusters.
        #[arg(long, value_name = "DIR")]
        replay: Option<PathBuf>,
    },
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
    /// Stop the cluster that `cluster up` started.
    Down,
    Status,
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

/// Modes parse by their one spelling (`Mode::parse`), listed in --help.
fn mode_parser() -> impl clap::builder::TypedValueParser<Value = Mode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Mode::ALL.iter().map(|m| m.as_str()))
        .map(|text: String| Mode::parse(&text).expect("only listed values get here"))
}
