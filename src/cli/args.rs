//! The flag groups several commands share: which cluster, which brain, how to run. They
//! become plain data (`DeploySpec`, `BrainChoice`, `RunOptions`) before anything below the
//! command line sees them.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use color_eyre::eyre::Result;

use crate::brains::{BrainChoice, BrainName};
use crate::config_file::{FileConfig, GatesConfig};
use crate::deploy::{DeploySpec, SubjectName, TargetName};
use crate::engine::ConfidenceGates;
use crate::model::Mode;
use crate::run::Context;
use crate::run::RunOptions;

/// The subject, target and brain names as clap offers them (the types are plain data below
/// the command line; their help lives here).
macro_rules! value_enum {
    ($name:ty { $($variant:path => $text:literal: $help:literal),+ $(,)? }) => {
        impl ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($variant => PossibleValue::new($text).help($help)),+
                })
            }
        }
    };
}

value_enum!(SubjectName {
    SubjectName::Ratelimiter => "ratelimiter": "Our own distributed rate limiter (ratelimiter-svc, 3 nodes + Redis)",
    SubjectName::Tikv => "tikv": "TiKV through PD's HTTP API; --target local runs a PD-compatible simulator (3 stores, 3 PD members, 300 regions) inside operator-tui",
});

value_enum!(TargetName {
    TargetName::Local => "local": "Child processes that operator-tui starts itself (for TiKV: the in-process simulator)",
    TargetName::Docker => "docker": "The containers of a running Compose project (compose/ratelimiter.yml, compose/tikv.yml)",
    TargetName::Sim => "sim": "TiKV: the controls of the PD-compatible simulator that `operator-tui simulate` serves at --pd",
    TargetName::None => "none": "No control over processes: watch, and act only through the subject's own API (PD's operators and schedulers); restarts are refused",
});

value_enum!(BrainName {
    BrainName::Rules => "rules": "The offline rules brain: a differential diagnosis from the subject's runbook",
    BrainName::Anthropic => "anthropic": "Claude over the Messages API (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL)",
    BrainName::Openai => "openai": "Any OpenAI-compatible server: OpenAI, Ollama, llama.cpp, vLLM (OPENAI_BASE_URL, OPENAI_API_KEY)",
});

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

impl SubjectArgs {
    pub fn spec(&self) -> DeploySpec {
        DeploySpec {
            subject: self.subject,
            target: self.target,
            redis_url: self.redis_url.clone(),
            compose_project: self.compose_project.clone(),
            workload_rate: self.workload_rate,
            pd: self.pd.clone(),
            prometheus: self.prometheus.clone(),
            status_addresses: self.status_addresses.clone(),
        }
    }
}

impl BrainArgs {
    /// The flags (or their environment variables), else the config file.
    pub fn choice(&self, file: &FileConfig) -> Result<BrainChoice> {
        Ok(BrainChoice {
            brain: self.brain.or(file.brain_name()?),
            model: self.model.clone().or_else(|| file.model.clone()),
        })
    }
}

/// The confidence execute mode needs before it acts without a human, by the action's risk.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Execute mode runs a safe action on its own from this confidence (0–1) up [default: 0.5,
    /// or gates.safe in the config file].
    #[arg(long, env = "OPERATOR_MIN_CONFIDENCE_SAFE", value_parser = fraction)]
    pub min_confidence_safe: Option<f64>,

    /// … a disruptive one (a restart, a drain) from this confidence up [default: 0.85, or
    /// gates.disruptive].
    #[arg(long, env = "OPERATOR_MIN_CONFIDENCE_DISRUPTIVE", value_parser = fraction)]
    pub min_confidence_disruptive: Option<f64>,

    /// … a destructive one (one that loses state: a counter reset, a Redis restart) from this
    /// confidence up [default: 0.95, or gates.destructive]. Below its gate an action waits for
    /// a human, as in approve mode.
    #[arg(long, env = "OPERATOR_MIN_CONFIDENCE_DESTRUCTIVE", value_parser = fraction)]
    pub min_confidence_destructive: Option<f64>,
}

impl GateArgs {
    /// The flags (or their environment variables), else the config file, else the defaults.
    pub fn gates(&self, file: &GatesConfig) -> ConfidenceGates {
        let default = ConfidenceGates::default();
        ConfidenceGates {
            safe: self
                .min_confidence_safe
                .or(file.safe)
                .unwrap_or(default.safe),
            disruptive: self
                .min_confidence_disruptive
                .or(file.disruptive)
                .unwrap_or(default.disruptive),
            destructive: self
                .min_confidence_destructive
                .or(file.destructive)
                .unwrap_or(default.destructive),
        }
    }
}

fn fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not between 0 and 1 (0.85 means 85 %)"))
    }
}

impl RunArgs {
    pub fn options(&self, file: &FileConfig, globals: &Globals) -> Result<RunOptions> {
        Ok(RunOptions {
            subject: self.subject.spec(),
            headless: self.headless,
            mode: self.mode.or(file.mode()?),
            brain: self.brain.choice(file)?,
            gates: self.gates.gates(&file.gates),
            read_only: globals.read_only(file),
            context: globals.context(file),
            pacing: self.pacing,
            colors: globals.color.colors(),
            tick_ms: self.tick_ms,
            watch: std::time::Duration::from_secs_f64(self.watch_seconds.max(0.0)),
            duration: self.duration,
            inject: self.inject.clone(),
            autoplay: self.autoplay,
            record: self.record.clone(),
            chapters: self.chapters.clone(),
            json: false,
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

    #[command(flatten)]
    pub gates: GateArgs,

    /// Seconds a cause that may pass by itself (a stalled process, a stopped Redis, a slow
    /// store) is watched before anything disruptive runs on it.
    #[arg(
        long,
        env = "OPERATOR_WATCH_SECONDS",
        default_value_t = 5.0,
        value_name = "SECONDS"
    )]
    pub watch_seconds: f64,

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

    /// Stream the brain's reasoning on screen at this many characters a second, for a talk
    /// (display only: the decision and its timings are unchanged). 0 shows it as it comes.
    #[arg(
        long,
        env = "OPERATOR_PACING",
        default_value_t = 0,
        value_name = "CHARS_PER_SEC"
    )]
    pub pacing: u32,
}

/// What every command shares: where its defaults come from, and how careful to be.
#[derive(Debug, Clone, Args)]
pub struct Globals {
    /// The config file [default: $XDG_CONFIG_HOME/operator-tui/config.toml, when it exists].
    #[arg(long, global = true, env = "OPERATOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Never act and never inject chaos, by any path (keys, autoplay, the command line):
    /// diagnosis and `ask` still work. Also read_only = true in the config file. A running
    /// read-only engine makes the command line refuse actions against its database too.
    /// OPERATOR_READ_ONLY takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        global = true,
        env = "OPERATOR_READ_ONLY",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub read_only: bool,

    /// The name of the cluster you are on, shown in the header, the headless output and the
    /// recording; a context marked protected in the config file asks you to type its name
    /// before anything disruptive.
    #[arg(long, global = true, env = "OPERATOR_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// Colour on the screen: auto honours NO_COLOR and a terminal that is not one.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to draw colours: `never`, or `auto` with NO_COLOR set (to anything non-empty,
    /// per no-color.org), means no.
    pub fn colors(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

impl Globals {
    pub fn read_only(&self, file: &FileConfig) -> bool {
        self.read_only || file.read_only
    }

    pub fn context(&self, file: &FileConfig) -> Option<Context> {
        let name = self.context.clone().or_else(|| file.context.clone())?;
        let settings = file.contexts.get(&name).cloned().unwrap_or_default();
        Some(Context {
            name,
            color: settings.color,
            protected: settings.protected,
        })
    }
}

/// Modes parse by their one spelling (`Mode::parse`), listed in --help.
pub(crate) fn mode_parser() -> impl clap::builder::TypedValueParser<Value = Mode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Mode::ALL.iter().map(|m| m.as_str()))
        .map(|text: String| Mode::parse(&text).expect("only listed values get here"))
}
