//! One observation of the cluster: every node's /health, /metrics and /v1/windows, and Redis
//! (reachability, latency, the counters the nodes' windows name). Rates and p99 come from
//! metric deltas over a short rolling window kept between observations.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use operator_protocol::prometheus::samples;
use operator_protocol::{Health, NodeId, NodeStatus, Observation, WorkloadSample};
use serde::Deserialize;
use serde_json::json;

use crate::cluster::Endpoints;
use crate::facts::{Facts, KeyFacts, NodeFacts, RedisFacts, RedisInfo};

/// Rates and p99 cover about this much recent history.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);
const HTTP_TIMEOUT: Duration = Duration::from_millis(400);

/// Cumulative counters from one scrape of a node's /metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCounters {
    /// (decision, source) → count.
    pub checks: BTreeMap<(String, String), f64>,
    pub redis_failures: f64,
    /// Cumulative check-latency buckets: (upper bound in seconds, count).
    pub latency_buckets: Vec<(f64, f64)>,
}

impl NodeCounters {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut counters = NodeCounters::default();
        for sample in samples(text, "/metrics", &[])? {
            let label = |name: &str| sample.labels.get(name).cloned().unwrap_or_default();
            match sample.name.as_str() {
                "rl_checks_total" => {
                    counters
                        .checks
                        .insert((label("decision"), label("source")), sample.value);
                }
                "rl_redis_failures_total" => counters.redis_failures += sample.value,
                "rl_check_duration_seconds_bucket" => {
                    let bound = match label("le").as_str() {
                        "+Inf" => f64::INFINITY,
                        le => le.parse().unwrap_or(f64::INFINITY),
                    };
                    counters.latency_buckets.push((bound, sample.value));
                }
                _ => {}
            }
        }
        counters.latency_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(counters)
    }

    fn total(&self) -> f64 {
        self.checks.values().sum()
    }

    fn count(&self, decision: Option<&str>, source: Option<&str>) -> f64 {
        self.checks
            .iter()
            .filter(|((d, s), _)| decision.is_none_or(|x| x == d) && source.is_none_or(|x| x == s))
            .map(|(_, v)| v)
            .sum()
    }

    /// A counter went backwards: the process restarted.
    fn reset_since(&self, older: &NodeCounters) -> bool {
        self.total() < older.total() || self.redis_failures < older.redis_failures
    }
}

/// The q-quantile of the observations between two cumulative histograms, interpolated inside
/// its bucket like Prometheus's histogram_quantile. None when no observation fell in between.
pub fn quantile_between(older: &[(f64, f64)], newer: &[(f64, f64)], q: f64) -> Option<f64> {
    let deltas: Vec<(f64, f64)> = newer
        .iter()
        .map(|(le, n)| {
            let before = older
                .iter()
                .find(|(l, _)| l == le)
                .map(|(_, c)| *c)
                .unwrap_or(0.0);
            (*le, (n - before).max(0.0))
        })
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for (le, cumulative) in &deltas {
        if *cumulative >= rank {
            if le.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = cumulative - lower_count;
            let fraction = if in_bucket > 0.0 {
                (rank - lower_count) / in_bucket
            } else {
                1.0
            };
            return Some(lower_bound + (le - lower_bound) * fraction);
        }
        lower_bound = *le;
        lower_count = *cumulative;
    }
    Some(lower_bound)
}

#[derive(Debug, Deserialize)]
struct HealthBody {
    redis: HealthRedis,
    /// Older nodes do not say; a flag it could not print is left out.
    #[serde(default)]
    flags: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Deserialize)]
struct HealthRedis {
    reachable: bool,
    last_latency_ms: Option<f64>,
    #[serde(default)]
    checks_failing: bool,
    #[serde(default)]
    last_check_error_class: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct WindowsBody {
    /// Redis time from which the node saw all its own decisions (None: not yet).
    #[serde(default)]
    watching_since_ms: Option<u64>,
    keys: Vec<KeyWindows>,
}

#[derive(Debug, Clone, Deserialize)]
struct KeyWindows {
    key: String,
    current: WindowSlot,
    previous: Option<WindowSlot>,
    /// Units the node has sent to Redis and not yet recorded.
    #[serde(default)]
    in_flight_units: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct WindowSlot {
    epoch: String,
    generation: u64,
    window_id: u64,
    window_ms: u64,
    counter_key: String,
    allowed_units: u64,
    #[serde(default)]
    limit: u64,
    uncertain_units: u64,
    partial: bool,
}

/// What one node answered this time.
struct NodeScrape {
    /// Round trip of the /health request (the timeout when it got no answer).
    health_rtt: Duration,
    facts_error: Option<String>,
    healthy: bool,
    health: Option<HealthBody>,
    counters: Option<NodeCounters>,
    windows: Option<WindowsBody>,
}

pub struct Observer {
    endpoints: Endpoints,
    http: reqwest::Client,
    redis: redis::aio::ConnectionManager,
    history: Mutex<BTreeMap<String, VecDeque<(Instant, NodeCounters)>>>,
    /// The last few /health round trips per node.
    health_rtts: Mutex<BTreeMap<String, VecDeque<f64>>>,
}

/// How many /health round trips the average covers (2 s at the default tick).
const HEALTH_RTT_SAMPLES: usize = 8;

impl Observer {
    pub fn new(endpoints: Endpoints) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let client = redis::Client::open(endpoints.redis_url.as_str())
            .map_err(|e| format!("bad Redis URL: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(300)))
            .set_connection_timeout(Some(Duration::from_millis(300)))
            .set_number_of_retries(1);
        let redis = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            endpoints,
            http,
            redis,
            history: Mutex::new(BTreeMap::new()),
            health_rtts: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn redis(&self) -> redis::aio::ConnectionManager {
        self.redis.clone()
    }

    async fn scrape(&self, url: &str) -> NodeScrape {
        let started = Instant::now();
        let health = self.http.get(format!("{url}/health")).send().await;
        let health_rtt = started.elapsed();
        let response = match health {
            Ok(r) => r,
            Err(e) => {
                let reason = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "connection refused".to_string()
                } else {
                    e.to_string()
                };
                return NodeScrape {
                    health_rtt,
                    facts_error: Some(reason),
                    healthy: false,
                    health: None,
                    counters: None,
                    windows: None,
                };
            }
        };
        let healthy = response.status() == 200;
        let health = response.json::<HealthBody>().await.ok();
        let (metrics, windows) = tokio::join!(
            self.http.get(format!("{url}/metrics")).send(),
            self.http.get(format!("{url}/v1/windows")).send()
        );
        let counters = match metrics {
            Ok(r) => r
                .text()
                .await
                .ok()
                .and_then(|t| NodeCounters::parse(&t).ok()),
            Err(_) => None,
        };
        let windows = match windows {
            Ok(r) => r.json::<WindowsBody>().await.ok(),
            Err(_) => None,
        };
        NodeScrape {
            health_rtt,
            facts_error: None,
            healthy,
            health,
            counters,
            windows,
        }
    }

    pub async fn observe(&self, at_ms: u64) -> Observation {
        let scrapes =
            futures::future::join_all(self.endpoints.nodes.iter().map(|(_, url)| self.scrape(url)))
                .await;
        let now = Instant::now();
        let mut facts = Facts {
            rate_window_ms: RATE_WINDOW.as_millis() as u64,
            ..Facts::default()
        };
        let mut windows_by_node = Vec::new();
        for ((id, _), scrape) in self.endpoints.nodes.iter().zip(scrapes) {
            let mut node = NodeFacts {
                reachable: scrape.facts_error.is_none(),
                error: scrape.facts_error.clone(),
                healthy: scrape.healthy,
                redis_reachable: scrape.health.as_ref().map(|h| h.redis.reachable),
                redis_latency_ms: scrape.health.as_ref().and_then(|h| h.redis.last_latency_ms),
                redis_checks_failing: scrape
                    .health
                    .as_ref()
                    .is_some_and(|h| h.redis.checks_failing),
                redis_error_class: scrape
                    .health
                    .as_ref()
                    .and_then(|h| h.redis.last_check_error_class.clone()),
                flags: scrape
                    .health
                    .as_ref()
                    .map(|h| {
                        h.flags
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                            .collect()
                    })
                    .unwrap_or_default(),
                ..NodeFacts::default()
            };
            node.health_rtt_ms = self.average_health_rtt(
                &id.0,
                scrape.facts_error.is_none().then_some(scrape.health_rtt),
            );
            if let Some(counters) = scrape.counters {
                self.fill_rates(&id.0, now, counters, &mut node);
            }
            windows_by_node.push(scrape.windows.filter(|_| node.reachable));
            facts.nodes.insert(id.0.clone(), node);
        }
        self.observe_redis(&mut facts, &windows_by_node).await;
        // The nodes' accounting once more, after Redis was read: a count Redis holds is
        // drift only when it falls outside [allowed before the read, allowed after it].
        let nodes = &facts.nodes;
        let windows_after =
            futures::future::join_all(self.endpoints.nodes.iter().map(|(id, url)| async move {
                if !nodes.get(&id.0).is_some_and(|n| n.reachable) {
                    return None;
                }
                let answer = self
                    .http
                    .get(format!("{url}/v1/windows"))
                    .send()
                    .await
                    .ok()?;
                answer.json::<WindowsBody>().await.ok()
            }))
            .await;
        bracket_with_later_reads(&mut facts, &windows_after);
        build_observation(at_ms, facts)
    }

    /// The mean of the node's recent /health round trips, once there are enough to mean
    /// something. A probe with no answer is `node_down`'s business: it starts the count over,
    /// so a node back from an outage is not slow for the timeouts it took while away.
    fn average_health_rtt(&self, node_id: &str, rtt: Option<Duration>) -> Option<f64> {
        let mut all = self.health_rtts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(rtt) = rtt else {
            all.remove(node_id);
            return None;
        };
        let ring = all.entry(node_id.to_string()).or_default();
        ring.push_back(rtt.as_secs_f64() * 1e3);
        while ring.len() > HEALTH_RTT_SAMPLES {
            ring.pop_front();
        }
        (ring.len() >= HEALTH_RTT_SAMPLES / 2).then(|| ring.iter().sum::<f64>() / ring.len() as f64)
    }

    fn fill_rates(
        &self,
        node_id: &str,
        now: Instant,
        counters: NodeCounters,
        node: &mut NodeFacts,
    ) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let ring = history.entry(node_id.to_string()).or_default();
        if ring
            .back()
            .is_some_and(|(_, last)| counters.reset_since(last))
        {
            ring.clear();
        }
        ring.push_back((now, counters));
        // Keep one sample at least RATE_WINDOW old, so the window is always covered.
        while ring.len() > 2 && now.duration_since(ring[1].0) >= RATE_WINDOW {
            ring.pop_front();
        }
        let (Some((t0, old)), Some((_, new))) = (ring.front(), ring.back()) else {
            return;
        };
        let dt = now.duration_since(*t0).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let rate =
            |d: Option<&str>, s: Option<&str>| (new.count(d, s) - old.count(d, s)).max(0.0) / dt;
        node.checks_per_sec = rate(None, None);
        node.allowed_per_sec = rate(Some("allowed"), None);
        node.denied_per_sec = rate(Some("denied"), None);
        node.fail_open_per_sec = rate(None, Some("fail_open"));
        node.fail_closed_per_sec = rate(None, Some("fail_closed"));
        node.skipped_per_sec = rate(None, Some("skipped"));
        node.redis_failures_per_sec = (new.redis_failures - old.redis_failures).max(0.0) / dt;
        node.latency_samples = (new.total() - old.total()).max(0.0) as u64;
        node.p99_ms =
            quantile_between(&old.latency_buckets, &new.latency_buckets, 0.99).map(|s| s * 1000.0);
    }

    async fn observe_redis(&self, facts: &mut Facts, windows_by_node: &[Option<WindowsBody>]) {
        // Every key any node tracks, with its newest window, then one pipelined read of Redis.
        let mut keys: BTreeMap<String, Vec<Option<&KeyWindows>>> = BTreeMap::new();
        for (i, windows) in windows_by_node.iter().enumerate() {
            for k in windows.iter().flat_map(|w| &w.keys) {
                keys.entry(k.key.clone())
                    .or_insert_with(|| vec![None; windows_by_node.len()])[i] = Some(k);
            }
        }
        let epoch_key = format!("{}:epoch", self.endpoints.redis_prefix);
        let mut pipe = redis::pipe();
        pipe.get(&epoch_key);
        // Every default section: memory, stats and clients among them.
        pipe.cmd("INFO");
        let newest: Vec<(String, Option<WindowSlot>)> = keys
            .iter()
            .map(|(key, per_node)| {
                let newest = per_node
                    .iter()
                    .flatten()
                    .flat_map(|k| std::iter::once(&k.current).chain(k.previous.as_ref()))
                    .max_by_key(|s| (s.generation, s.window_id))
                    .cloned();
                (key.clone(), newest)
            })
            .collect();
        for (_, slot) in &newest {
            pipe.get(slot.as_ref().map(|s| s.counter_key.as_str()).unwrap_or("-"));
        }
        let started = Instant::now();
        let mut conn = self.redis.clone();
        type Reply = (Option<String>, Option<RedisInfo>, Vec<Option<u64>>);
        let reply: Result<Reply, String> = match tokio::time::timeout(
            Duration::from_millis(500),
            pipe.query_async::<Vec<redis::Value>>(&mut conn),
        )
        .await
        {
            Err(_) => Err("timed out".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(values)) => {
                let mut it = values.into_iter();
                let epoch = it
                    .next()
                    .and_then(|v| redis::from_redis_value::<Option<String>>(v).ok().flatten());
                let info = it
                    .next()
                    .and_then(|v| redis::from_redis_value::<String>(v).ok())
                    .and_then(|text| RedisInfo::parse(&text));
                Ok((
                    epoch,
                    info,
                    it.map(|v| redis::from_redis_value::<Option<u64>>(v).ok().flatten())
                        .collect(),
                ))
            }
        };
        let (epoch, counts) = match reply {
            Ok((epoch, info, counts)) => {
                facts.redis = RedisFacts {
                    reachable: true,
                    latency_ms: Some(started.elapsed().as_secs_f64() * 1e3),
                    error: None,
                    epoch: epoch.clone(),
                    info,
                };
                (epoch, counts)
            }
            Err(e) => {
                facts.redis = RedisFacts {
                    reachable: false,
                    latency_ms: None,
                    error: Some(e),
                    epoch: None,
                    info: None,
                };
                (None, vec![])
            }
        };
        let all_nodes_seen = windows_by_node.iter().all(|w| w.is_some());
        // The latest time any node started watching: windows that began before it may hold
        // units an earlier incarnation of that node allowed and forgot.
        let watching_since = windows_by_node
            .iter()
            .flatten()
            .map(|w| w.watching_since_ms.unwrap_or(u64::MAX))
            .max()
            .unwrap_or(u64::MAX);
        for (i, (key, slot)) in newest.into_iter().enumerate() {
            let Some(slot) = slot else { continue };
            let mut kf = KeyFacts {
                key: key.clone(),
                generation: slot.generation,
                window_id: slot.window_id,
                counter_key: slot.counter_key.clone(),
                limit: slot.limit,
                redis_count: counts.get(i).copied().flatten().unwrap_or(0),
                ..KeyFacts::default()
            };
            let mut partial = false;
            for s in matching_slots(keys[&key].iter().copied(), &slot) {
                kf.nodes_allowed += s.allowed_units;
                kf.uncertain += s.uncertain_units;
                kf.limit = kf.limit.max(s.limit);
                partial |= s.partial;
            }
            kf.nodes_allowed_after = kf.nodes_allowed;
            kf.why_not = if !facts.redis.reachable {
                Some("Redis unreadable".into())
            } else if !all_nodes_seen {
                Some("a node's accounting is missing".into())
            } else if epoch.as_deref() != Some(slot.epoch.as_str()) {
                Some("Redis restarted since this window".into())
            } else if partial || slot.window_id.saturating_mul(slot.window_ms) < watching_since {
                Some("a node was not watching the whole window".into())
            } else {
                None
            };
            kf.comparable = kf.why_not.is_none();
            facts.keys.push(kf);
        }
    }
}

/// Every node's slot for the same window of the same key as `slot` (current or previous: the
/// window may have rolled over between reads).
fn matching_slots<'a>(
    per_node: impl Iterator<Item = Option<&'a KeyWindows>>,
    slot: &'a WindowSlot,
) -> impl Iterator<Item = &'a WindowSlot> {
    per_node.flatten().flat_map(move |k| {
        std::iter::once(&k.current)
            .chain(k.previous.as_ref())
            .filter(move |s| s.counter_key == slot.counter_key && s.epoch == slot.epoch)
    })
}

/// Fills `nodes_allowed_after` and `in_flight_after` from the nodes' second read. Checks keep
/// landing while the operator reads (thousands a second on one key): Redis, read between the
/// two, may hold units the first read had not seen yet, never units the second has neither
/// recorded nor counted in flight. Without a second read from every node the window is not
/// comparable.
fn bracket_with_later_reads(facts: &mut Facts, windows_after: &[Option<WindowsBody>]) {
    let all_read_again = windows_after.iter().all(|w| w.is_some());
    for kf in facts.keys.iter_mut().filter(|k| k.comparable) {
        if !all_read_again {
            kf.comparable = false;
            kf.why_not = Some("a node's second accounting read failed".into());
            continue;
        }
        let read_again: Vec<&KeyWindows> = windows_after
            .iter()
            .flatten()
            .flat_map(|w| w.keys.iter().filter(|k| k.key == kf.key))
            .collect();
        let later = read_again
            .iter()
            .flat_map(|k| std::iter::once(&k.current).chain(k.previous.as_ref()))
            .filter(|s| s.counter_key == kf.counter_key);
        kf.nodes_allowed_after = later
            .map(|s| s.allowed_units)
            .sum::<u64>()
            .max(kf.nodes_allowed);
        kf.in_flight_after = read_again.iter().map(|k| k.in_flight_units).sum();
    }
}

/// The generic view of the facts: a node list and the workload, plus the facts themselves.
pub fn build_observation(at_ms: u64, facts: Facts) -> Observation {
    let mut nodes: Vec<NodeStatus> = facts
        .nodes
        .iter()
        .map(|(id, n)| NodeStatus {
            id: NodeId(id.clone()),
            role: "node".into(),
            health: match (n.reachable, n.healthy) {
                (false, _) => Health::Down,
                (true, true) => Health::Healthy,
                (true, false) => Health::Degraded,
            },
            facts: [
                (
                    "p99_ms".to_string(),
                    json!(n.p99_ms.map(|v| (v * 100.0).round() / 100.0)),
                ),
                (
                    "checks_per_sec".to_string(),
                    json!(n.checks_per_sec.round()),
                ),
            ]
            .into_iter()
            .collect(),
        })
        .collect();
    nodes.push(NodeStatus {
        id: NodeId::from("redis"),
        role: "redis".into(),
        health: if facts.redis.reachable {
            Health::Healthy
        } else {
            Health::Down
        },
        facts: [(
            "latency_ms".to_string(),
            json!(facts.redis.latency_ms.map(|v| (v * 100.0).round() / 100.0)),
        )]
        .into_iter()
        .collect(),
    });
    let sum = |f: fn(&NodeFacts) -> f64| facts.nodes.values().map(f).sum::<f64>();
    let workload = WorkloadSample {
        ops_per_sec: sum(|n| n.checks_per_sec),
        split: [
            ("allowed".to_string(), sum(|n| n.allowed_per_sec)),
            ("denied".to_string(), sum(|n| n.denied_per_sec)),
        ]
        .into_iter()
        .collect(),
        errors_per_sec: sum(|n| n.redis_failures_per_sec),
    };
    Observation {
        at_ms,
        nodes,
        workload: Some(workload),
        facts: serde_json::to_value(&facts).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantile_interpolates_inside_the_bucket_of_the_deltas() {
        let older = [
            (0.001, 10.0),
            (0.01, 10.0),
            (0.1, 10.0),
            (f64::INFINITY, 10.0),
        ];
        // 100 new checks: 90 under 1 ms, 10 between 10 and 100 ms.
        let newer = [
            (0.001, 100.0),
            (0.01, 100.0),
            (0.1, 110.0),
            (f64::INFINITY, 110.0),
        ];
        let p50 = quantile_between(&older, &newer, 0.5).unwrap();
        assert!(p50 <= 0.001);
        let p99 = quantile_between(&older, &newer, 0.99).unwrap();
        assert!((0.08..=0.1).contains(&p99), "{p99}");
        assert_eq!(
            quantile_between(&newer, &newer, 0.99),
            None,
            "no new checks, no p99"
        );
    }

    #[test]
    fn node_metrics_parse_from_the_service_text() {
        let text = include_str!("../fixtures/node_metrics.txt");
        let c = NodeCounters::parse(text).unwrap();
        assert_eq!(c.count(Some("allowed"), Some("redis")), 1312.0);
        assert_eq!(c.count(None, Some("fail_open")), 7.0);
        assert_eq!(c.redis_failures, 9.0);
        assert_eq!(c.latency_buckets.len(), 14);
        assert!(c.latency_buckets.last().unwrap().0.is_infinite());
    }
}
