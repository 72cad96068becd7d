//! Drills for the evaluation's unknown-fault suite: what the world does to a rate limiter that
//! no chaos action and no runbook entry describes. Each is done from outside the operator (a
//! Redis command someone types, a process someone signals), with its ground truth. Nothing here
//! is reachable from the subject's catalog, tools or runbook.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use operator_protocol::*;
use ratelimiter_svc::load::{self, LiveStats, LoadConfig};

use crate::cluster::{Endpoints, REDIS_NODE};

const CPU_STARVED_NODE: &str = "node-2";
const HEAVY_KEY: &str = "heavy-legit";

pub struct RateLimiterDrills {
    pub(crate) endpoints: Endpoints,
    pub(crate) target: Arc<dyn DeploymentTarget>,
    /// The password a drill set on Redis, to take it off again.
    pub(crate) password: Mutex<Option<String>>,
    /// Drills that keep acting while they last (a loop of signals, a load).
    running: NamedTasks,
    /// Per node, how many decisions it had made without asking Redis at the world sampler's
    /// last look: a node whose count grew answers, but does not serve what it should.
    pub(crate) bypassed: Mutex<BTreeMap<String, f64>>,
    /// The steady traffic this process runs beside the cluster, to quiet; None without one.
    pub(crate) workload: Option<Arc<crate::workload::Workload>>,
}

pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> ContractError {
    ContractError::Permanent(format!("{what}: {e}"))
}

impl RateLimiterDrills {
    pub fn new(
        endpoints: Endpoints,
        target: Arc<dyn DeploymentTarget>,
        workload: Option<Arc<crate::workload::Workload>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            endpoints,
            target,
            workload,
            password: Mutex::new(None),
            running: NamedTasks::default(),
            bypassed: Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) async fn redis(
        &self,
        password: Option<&str>,
    ) -> ContractResult<redis::aio::MultiplexedConnection> {
        let url = match password {
            Some(p) => self
                .endpoints
                .redis_url
                .replacen("redis://", &format!("redis://:{p}@"), 1),
            None => self.endpoints.redis_url.clone(),
        };
        let client = redis::Client::open(url).map_err(|e| failed("Redis URL", e))?;
        tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| failed("connecting to Redis", "timed out"))?
        .map_err(|e| failed("connecting to Redis", e))
    }

    pub(crate) async fn command(
        &self,
        password: Option<&str>,
        args: &[&str],
    ) -> ContractResult<()> {
        let mut conn = self.redis(password).await?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.exec_async(&mut conn)
            .await
            .map_err(|e| failed(&args.join(" "), e))
    }

    pub(crate) fn keep_running(
        &self,
        name: &str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.running.keep(name, task);
    }

    /// Sets a key's limit per 1-second window, as a person would with the admin API.
    pub(crate) async fn set_limit(&self, key: &str, limit: u64) -> ContractResult<()> {
        let url = self
            .endpoints
            .nodes
            .first()
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        let answer = reqwest::Client::new()
            .put(format!("{url}/admin/limits/{key}"))
            .bearer_auth(&self.endpoints.admin_token)
            .json(&serde_json::json!({ "limit": limit, "window_ms": 1000 }))
            .send()
            .await
            .map_err(|e| failed("setting a limit", e))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(failed("setting a limit", answer.status()))
        }
    }

    /// Keeps traffic running under `name` until it is stopped: `rate` checks a second over
    /// `keys` keys named `prefix`N, all of it on `hot` when given, at most `concurrency` in
    /// flight per node.
    pub(crate) fn traffic(
        &self,
        concurrency: usize,
        name: &str,
        rate: f64,
        keys: usize,
        prefix: &str,
        hot: Option<String>,
    ) {
        let config = LoadConfig {
            targets: self
                .endpoints
                .nodes
                .iter()
                .map(|(_, u)| u.clone())
                .collect(),
            rate: Some(rate),
            concurrency,
            duration: None,
            keys,
            key_prefix: prefix.into(),
            hot_fraction: if hot.is_some() { 1.0 } else { 0.0 },
            hot_key: hot,
            cost: 1,
        };
        self.keep_running(name, async move {
            let _ = load::run(
                config,
                Arc::new(LiveStats::default()),
                std::future::pending(),
            )
            .await;
        });
    }

    pub(crate) fn stop_running(&self, name: &str) {
        self.running.stop(name);
    }
}

fn spec(
    name: &str,
    description: &str,
    root_cause: &str,
    detected_by: &[&str],
    evidence_words: &[&str],
    hold_s: u64,
) -> DrillSpec {
    DrillSpec {
        name: name.into(),
        description: description.into(),
        root_cause: root_cause.into(),
        detected_by: Some(detected_by.iter().map(|s| s.to_string()).collect()),
        acceptable_actions: Vec::new(),
        evidence_words: evidence_words.iter().map(|s| s.to_string()).collect(),
        hold_s,
    }
}

/// Every drill, with its ground truth.
pub fn specs() -> Vec<DrillSpec> {
    vec![
        spec(
            "redis_clients_paused",
            "Someone ran CLIENT PAUSE 8000 ALL on Redis (as failover tooling does): the process runs, and answers nobody for 8 s",
            "redis_clients_paused",
            &["redis_disconnected"],
            &["timed out", "timeout"],
            8,
        ),
        spec(
            "redis_password_set",
            "Someone set a password on Redis (CONFIG SET requirepass) and dropped every connection: Redis runs and refuses every client",
            "redis_requires_auth",
            &["redis_disconnected"],
            &["auth"],
            10,
        ),
        spec(
            "redis_connections_dropped",
            "A script kills every client connection on Redis every 50 ms (CLIENT KILL TYPE normal): the nodes reconnect and lose calls in between",
            "redis_connections_killed",
            &["redis_disconnected", "decisions_unbacked", "high_latency"],
            &["connection", "closed", "reset", "broken pipe"],
            10,
        ),
        spec(
            "redis_restarted_by_someone_else",
            "Someone restarted Redis by hand (kill, then start): a second of outage, and every count of the current window gone",
            "redis_restarted_externally",
            &["redis_disconnected"],
            &["refused", "exited", "restart"],
            5,
        ),
        spec(
            "node_cpu_starved",
            "A noisy neighbour starves node-2 of CPU: it runs 100 ms in every 400 (SIGSTOP/SIGCONT on whatever process is node-2)",
            "node_cpu_starved",
            &["high_latency", "node_down"],
            &["node-2"],
            12,
        ),
        DrillSpec {
            name: "heavy_load_control".into(),
            description: format!(
                "No fault: 3,000 legitimate checks a second on one key ({HEAVY_KEY}), all within its limit"
            ),
            root_cause: "none".into(),
            detected_by: None,
            acceptable_actions: Vec::new(),
            evidence_words: Vec::new(),
            hold_s: 20,
        },
    ]
}

impl Drills for RateLimiterDrills {
    fn specs(&self) -> Vec<DrillSpec> {
        specs()
    }

    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            match name {
                "redis_clients_paused" => {
                    self.command(None, &["CLIENT", "PAUSE", "8000", "ALL"])
                        .await
                }
                "redis_password_set" => {
                    let password = format!("drill-{}", std::process::id());
                    self.command(None, &["CONFIG", "SET", "requirepass", &password])
                        .await?;
                    *self.password.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(password.clone());
                    self.command(Some(&password), &["CLIENT", "KILL", "TYPE", "normal"])
                        .await
                }
                "redis_connections_dropped" => {
                    let mut conn = self.redis(None).await?;
                    self.keep_running(name, async move {
                        loop {
                            let _ = redis::cmd("CLIENT")
                                .arg("KILL")
                                .arg("TYPE")
                                .arg("normal")
                                .exec_async(&mut conn)
                                .await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    });
                    Ok(())
                }
                "redis_restarted_by_someone_else" => {
                    let redis = NodeId::from(REDIS_NODE);
                    self.target.kill(&redis).await?;
                    self.target.start(&redis).await
                }
                "node_cpu_starved" => {
                    let target = self.target.clone();
                    self.keep_running(name, async move {
                        let node = NodeId::from(CPU_STARVED_NODE);
                        loop {
                            let _ = target.pause(&node).await;
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            let _ = target.resume(&node).await;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    });
                    Ok(())
                }
                "heavy_load_control" => {
                    self.set_limit(HEAVY_KEY, 1_000_000).await?;
                    self.traffic(512, name, 3_000.0, 1, "unused-", Some(HEAVY_KEY.into()));
                    Ok(())
                }
                other => Err(ContractError::NotFound(format!("no drill {other}"))),
            }
        })
    }

    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            self.stop_running(name);
            match name {
                // It ends by itself; unpausing early is only a courtesy.
                "redis_clients_paused" => {
                    let _ = self.command(None, &["CLIENT", "UNPAUSE"]).await;
                    Ok(())
                }
                "redis_password_set" => {
                    let password = self
                        .password
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                    match password {
                        Some(p) => {
                            self.command(Some(&p), &["CONFIG", "SET", "requirepass", ""])
                                .await
                        }
                        None => Ok(()),
                    }
                }
                "node_cpu_starved" => self.target.resume(&NodeId::from(CPU_STARVED_NODE)).await,
                _ => Ok(()),
            }
        })
    }
}
