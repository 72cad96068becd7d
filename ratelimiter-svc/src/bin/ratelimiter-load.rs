//! The load generator binary: bounded, loopback-only traffic against rate limiter nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ratelimiter_svc::load::{self, LiveStats, LoadConfig};

/// Open-loop load at a fixed rate (or, without --rate, a closed loop of --concurrency clients)
/// across rate limiter nodes on this machine. Prints one live progress line, then a summary.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Node base URL; repeat or comma-separate for several nodes (loopback only).
    #[arg(
        long = "target",
        env = "RL_LOAD_TARGETS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    targets: Vec<String>,
    /// Requests per second across all targets. Without it: closed loop, as fast as it goes.
    #[arg(long, env = "RL_LOAD_RATE")]
    rate: Option<f64>,
    /// Closed loop: the number of clients. Open loop: the most requests in flight.
    #[arg(long, env = "RL_LOAD_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// How long to run, in seconds (at most an hour).
    #[arg(long, env = "RL_LOAD_DURATION", default_value_t = 10.0)]
    duration: f64,
    /// Number of distinct keys.
    #[arg(long, env = "RL_LOAD_KEYS", default_value_t = 1000)]
    keys: usize,
    /// Prefix of the generated key names.
    #[arg(long, default_value = "load-")]
    key_prefix: String,
    /// A key that gets --hot-fraction of the traffic.
    #[arg(long)]
    hot_key: Option<String>,
    /// Share of the traffic that goes to --hot-key (0..1).
    #[arg(long, default_value_t = 0.5)]
    hot_fraction: f64,
    /// Units each check asks for.
    #[arg(long, default_value_t = 1)]
    cost: u64,
    /// Print the summary as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    color_eyre::eyre::ensure!(
        cli.duration > 0.0 && cli.duration <= 3600.0,
        "--duration must be between 0 and 3600 seconds"
    );
    let config = LoadConfig {
        targets: cli.targets,
        rate: cli.rate,
        concurrency: cli.concurrency,
        duration: Some(Duration::from_secs_f64(cli.duration)),
        keys: cli.keys,
        key_prefix: cli.key_prefix,
        hot_fraction: if cli.hot_key.is_some() {
            cli.hot_fraction
        } else {
            0.0
        },
        hot_key: cli.hot_key,
        cost: cli.cost,
    };
    let stats = Arc::new(LiveStats::default());
    let progress = tokio::spawn(show_progress(stats.clone()));
    let summary = load::run(config, stats, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    progress.abort();
    eprintln!();
    if cli.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}

/// One line, rewritten each second.
async fn show_progress(stats: Arc<LiveStats>) {
    let started = Instant::now();
    let mut last = stats.totals();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = stats.totals();
        let done = |t: &load::Totals| t.allowed + t.denied + t.errors;
        eprint!(
            "\r{:>6.1}s  {:>7}/s  allowed {}  denied {}  errors {}  dropped {}   ",
            started.elapsed().as_secs_f64(),
            done(&now) - done(&last),
            now.allowed,
            now.denied,
            now.errors,
            now.dropped
        );
        last = now;
    }
}
