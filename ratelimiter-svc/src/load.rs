//! The load generator: open-loop traffic at a fixed rate (or a closed loop of N clients) across
//! nodes and keys, bounded in time, loopback only. The open loop never waits for answers: a
//! request due while `concurrency` are in flight is counted as dropped, so a stalled server
//! shows up as drops and errors instead of hiding behind a slowed-down client. Latency runs
//! from the moment a request is handed to the HTTP client (tokio's timer wakes on millisecond
//! ticks, so measuring from the due instant would add up to 1 ms of timer lag to every sample).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, ensure};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Node base URLs, e.g. `http://127.0.0.1:8080`; requests go round-robin.
    pub targets: Vec<String>,
    /// Requests per second across all targets; `None` runs a closed loop of `concurrency` clients.
    pub rate: Option<f64>,
    /// Closed loop: the number of clients. Open loop: the most requests in flight to each
    /// target; a request due while its target has that many is counted as dropped rather than
    /// delayed, so a stalled target costs its own share of the traffic only.
    pub concurrency: usize,
    /// `None` runs until the cancel future resolves.
    pub duration: Option<Duration>,
    /// Keys are `{key_prefix}{0..keys}`.
    pub keys: usize,
    pub key_prefix: String,
    /// A key that receives `hot_fraction` of the traffic.
    pub hot_key: Option<String>,
    pub hot_fraction: f64,
    pub cost: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            targets: vec!["http://127.0.0.1:8080".into()],
            rate: Some(100.0),
            concurrency: 64,
            duration: Some(Duration::from_secs(10)),
            keys: 16,
            key_prefix: "load-".into(),
            hot_key: None,
            hot_fraction: 0.0,
            cost: 1,
        }
    }
}

/// Running totals, shared with whoever shows progress (the CLI line, the operator's workload).
#[derive(Debug, Default)]
pub struct LiveStats {
    pub sent: AtomicU64,
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub sent: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    pub dropped: u64,
}

impl LiveStats {
    pub fn totals(&self) -> Totals {
        Totals {
            sent: self.sent.load(Ordering::Relaxed),
            allowed: self.allowed.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub elapsed_s: f64,
    #[serde(flatten)]
    pub totals: Totals,
    /// Completed requests per second.
    pub achieved_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.totals;
        writeln!(
            f,
            "{:.1} s, {:.0} checks/s completed",
            self.elapsed_s, self.achieved_rate
        )?;
        writeln!(
            f,
            "sent {}  allowed {}  denied {}  errors {}  dropped {}",
            t.sent, t.allowed, t.denied, t.errors, t.dropped
        )?;
        write!(
            f,
            "latency p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

/// Refuses anything but loopback targets: load never leaves the machine.
pub fn ensure_loopback(target: &str) -> Result<()> {
    let url = reqwest::Url::parse(target).wrap_err_with(|| format!("{target:?} is not a URL"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("{target}: the load generator only targets loopback addresses (127.0.0.0/8, ::1)");
    }
    Ok(())
}

struct Shared {
    client: reqwest::Client,
    urls: Vec<String>,
    keys: Vec<String>,
    hot_key: Option<String>,
    hot_fraction: f64,
    cost: u64,
    stats: Arc<LiveStats>,
    latency_us: Mutex<Histogram<u64>>,
}

impl Shared {
    /// A cheap deterministic spread of requests over keys and targets.
    fn request_for(&self, n: u64) -> (String, &str) {
        let mixed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let url = &self.urls[(n % self.urls.len() as u64) as usize];
        let unit = (mixed >> 11) as f64 / (1u64 << 53) as f64;
        let key = match &self.hot_key {
            Some(hot) if unit < self.hot_fraction => hot.as_str(),
            _ => &self.keys[((mixed >> 32) % self.keys.len() as u64) as usize],
        };
        let body = format!(
            r#"{{"key":{},"cost":{}}}"#,
            serde_json::Value::from(key),
            self.cost
        );
        (body, url)
    }

    async fn send(&self, n: u64) {
        let (body, url) = self.request_for(n);
        let started = Instant::now();
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        let result = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let outcome = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                // Reading the body lets the connection go back to the pool.
                let body_ok = response.bytes().await.is_ok();
                match (status, body_ok) {
                    (200, true) => &self.stats.allowed,
                    (429, true) => &self.stats.denied,
                    _ => &self.stats.errors,
                }
            }
            Err(_) => &self.stats.errors,
        };
        outcome.fetch_add(1, Ordering::Relaxed);
        let micros = started.elapsed().as_micros().max(1) as u64;
        let mut histogram = self.latency_us.lock().unwrap_or_else(|p| p.into_inner());
        histogram.saturating_record(micros);
    }
}

/// Runs the load until its duration ends or `cancel` resolves, whichever is first.
pub async fn run(
    config: LoadConfig,
    stats: Arc<LiveStats>,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<Summary> {
    ensure!(!config.targets.is_empty(), "at least one target is needed");
    ensure!(config.keys > 0, "at least one key is needed");
    ensure!(config.concurrency > 0, "concurrency must be at least 1");
    ensure!(
        (0.0..=1.0).contains(&config.hot_fraction),
        "hot fraction must be within 0..=1"
    );
    if let Some(rate) = config.rate {
        ensure!(
            rate > 0.0 && rate.is_finite(),
            "rate must be a positive number"
        );
    }
    for target in &config.targets {
        ensure_loopback(target)?;
    }
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(config.concurrency)
        .timeout(Duration::from_secs(5))
        .build()
        .wrap_err("building the HTTP client")?;
    let shared = Arc::new(Shared {
        client,
        urls: config
            .targets
            .iter()
            .map(|t| format!("{}/v1/check", t.trim_end_matches('/')))
            .collect(),
        keys: (0..config.keys)
            .map(|i| format!("{}{i}", config.key_prefix))
            .collect(),
        hot_key: config.hot_key.clone(),
        hot_fraction: config.hot_fraction,
        cost: config.cost,
        stats: stats.clone(),
        latency_us: Mutex::new(
            Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds"),
        ),
    });
    let before = stats.totals();
    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let traffic = async {
        match config.rate {
            Some(rate) => open_loop(&shared, rate, config.concurrency, deadline).await,
            None => closed_loop(&shared, config.concurrency, deadline).await,
        }
    };
    tokio::select! {
        _ = traffic => {}
        _ = cancel => {}
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = stats.totals();
    let totals = Totals {
        sent: after.sent - before.sent,
        allowed: after.allowed - before.allowed,
        denied: after.denied - before.denied,
        errors: after.errors - before.errors,
        dropped: after.dropped - before.dropped,
    };
    let histogram = shared
        .latency_us
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Ok(Summary {
        elapsed_s: elapsed,
        totals,
        achieved_rate: (totals.allowed + totals.denied + totals.errors) as f64 / elapsed.max(1e-9),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: histogram.max() as f64 / 1000.0,
    })
}

async fn open_loop(
    shared: &Arc<Shared>,
    rate: f64,
    max_in_flight: usize,
    deadline: Option<Instant>,
) {
    // One budget per target, as request n goes to target n % targets: a target that stops
    // answering fills its own budget, never the healthy targets'.
    let permits: Vec<Arc<Semaphore>> = shared
        .urls
        .iter()
        .map(|_| Arc::new(Semaphore::new(max_in_flight)))
        .collect();
    let started = tokio::time::Instant::now();
    for n in 0u64.. {
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        if deadline.is_some_and(|d| due.into_std() >= d) {
            break;
        }
        tokio::time::sleep_until(due).await;
        let target = &permits[(n % permits.len() as u64) as usize];
        match target.clone().try_acquire_owned() {
            Ok(permit) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    shared.send(n).await;
                    drop(permit);
                });
            }
            Err(_) => {
                shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Let the requests already sent finish, so the summary counts them.
    for target in permits {
        let _ = target.acquire_many(max_in_flight as u32).await;
    }
}

async fn closed_loop(shared: &Arc<Shared>, clients: usize, deadline: Option<Instant>) {
    let workers: Vec<_> = (0..clients as u64)
        .map(|client| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut n = client;
                while deadline.is_none_or(|d| Instant::now() < d) {
                    shared.send(n).await;
                    n += clients as u64;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers every request 200 and closes, or (stalled) accepts and never
    /// answers, like a paused process whose socket the kernel still accepts on.
    async fn server(stalled: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                if stalled {
                    held.push(socket);
                    continue;
                }
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                        )
                        .await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_stalled_target_costs_its_own_share_of_an_open_loop_only() {
        let config = LoadConfig {
            targets: vec![server(true).await, server(false).await],
            rate: Some(200.0),
            concurrency: 4,
            duration: Some(Duration::from_secs(2)),
            ..LoadConfig::default()
        };
        let stats = Arc::new(LiveStats::default());
        let _ = tokio::time::timeout(
            Duration::from_secs(4),
            run(config, stats.clone(), std::future::pending()),
        )
        .await;
        // Half of 400 requests went to the healthy target; with one budget for both, the
        // stalled one filled it in 40 ms and the healthy one saw a handful.
        let allowed = stats.allowed.load(Ordering::Relaxed);
        assert!(allowed >= 150, "the healthy target answered only {allowed}");
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(ensure_loopback("http://127.0.0.1:8080").is_ok());
        assert!(ensure_loopback("http://127.3.0.9:1").is_ok());
        assert!(ensure_loopback("http://localhost:8080").is_ok());
        assert!(ensure_loopback("http://[::1]:8080").is_ok());
        assert!(ensure_loopback("http://10.0.0.1:8080").is_err());
        assert!(ensure_loopback("http://example.com").is_err());
        assert!(ensure_loopback("not a url").is_err());
    }
}
