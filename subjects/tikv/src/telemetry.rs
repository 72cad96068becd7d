//! Where the subject's metrics come from: PD's `/metrics` and each store's status server
//! (`status_address` from PD, `/metrics`), scraped directly; or a Prometheus server that
//! scrapes them, queried instead (TiUP's job names, `pd` and `tikv`, as compose/ the
//! reference use). Either way the result is the same facts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use operator_protocol::{HttpRequest, HttpTransport};
// Tokio's instant: on a simulated clock the rates follow simulated time.
use tokio::time::Instant;

use crate::facts::StoreMetrics;
use crate::metrics::{self, MetricSample, StoreScrape};
use crate::prometheus::PrometheusClient;

/// A store the telemetry should read: its id and the status address PD reports.
pub struct StoreAddress {
    pub id: u64,
    pub status_address: String,
}

#[derive(Default)]
pub struct Readings {
    /// `sum by (type) (pd_cluster_status)`; empty when it could not be read.
    pub cluster_status: BTreeMap<String, f64>,
    /// `sum by (type) (pd_regions_status)`: the region checks' counts; empty when unread.
    pub regions_status: BTreeMap<String, f64>,
    pub stores: BTreeMap<u64, Result<StoreMetrics, String>>,
    /// Storage commands per second across the stores that answered; None until a rate is known.
    pub ops_per_sec: Option<f64>,
    /// What could not be read at all (PD's metrics, Prometheus).
    pub errors: Vec<String>,
}

enum Source {
    Direct {
        pd_metrics_url: String,
        /// Status addresses PD reports that only the cluster's network resolves, mapped to
        /// where this machine reaches them ("tikv1:20180" → "127.0.0.1:20181").
        rewrites: BTreeMap<String, String>,
        transport: Arc<dyn HttpTransport>,
    },
    Prometheus(PrometheusClient),
}

pub struct Telemetry {
    source: Source,
    /// Each store's previous scrape, for rates (direct scrapes only).
    previous: Mutex<BTreeMap<u64, (Instant, StoreScrape)>>,
    /// Everything the last direct scrape read, labelled by instance, for `metric_query`.
    last_samples: Mutex<Vec<MetricSample>>,
}

/// Prometheus's rate window: several scrapes at compose/'s 5 s interval.
const RATE_WINDOW: &str = "30s";

impl Telemetry {
    pub fn direct(
        pd_url: &str,
        rewrites: BTreeMap<String, String>,
        transport: Arc<dyn HttpTransport>,
    ) -> Self {
        Self::new(Source::Direct {
            pd_metrics_url: format!("{}/metrics", pd_url.trim_end_matches('/')),
            rewrites,
            transport,
        })
    }

    pub fn prometheus(url: &str, http: reqwest::Client) -> Self {
        Self::new(Source::Prometheus(PrometheusClient::new(url, http)))
    }

    fn new(source: Source) -> Self {
        Self {
            source,
            previous: Mutex::new(BTreeMap::new()),
            last_samples: Mutex::new(Vec::new()),
        }
    }

    /// "scraped directly" or "Prometheus at URL", for a brain's and a person's benefit.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Direct { .. } => "scraped from PD and each store's status server".into(),
            Source::Prometheus(p) => format!("queried from Prometheus at {}", p.url()),
        }
    }

    pub async fn read(&self, stores: &[StoreAddress]) -> Readings {
        match &self.source {
            Source::Direct {
                pd_metrics_url,
                rewrites,
                transport,
            } => {
                self.read_direct(transport.as_ref(), pd_metrics_url, rewrites, stores)
                    .await
            }
            Source::Prometheus(prometheus) => read_prometheus(prometheus, stores).await,
        }
    }

    async fn read_direct(
        &self,
        transport: &dyn HttpTransport,
        pd_metrics_url: &str,
        rewrites: &BTreeMap<String, String>,
        stores: &[StoreAddress],
    ) -> Readings {
        let mut readings = Readings::default();
        let mut all = Vec::new();
        match scrape(transport, pd_metrics_url, "PD's /metrics", "pd").await {
            Ok(samples) => {
                readings.cluster_status = metrics::pd_cluster_status(&samples);
                readings.regions_status = metrics::pd_regions_status(&samples);
                all.extend(samples);
            }
            Err(e) => readings.errors.push(e),
        }
        let scrapes = futures::future::join_all(stores.iter().map(|store| async move {
            if store.status_address.is_empty() {
                return Err(
                    "PD reports no status address (start TiKV with --advertise-status-addr)"
                        .to_string(),
                );
            }
            let reach = rewrites
                .get(&store.status_address)
                .unwrap_or(&store.status_address);
            let what = format!("store-{}'s status server", store.id);
            scrape(
                transport,
                &format!("http://{reach}/metrics"),
                &what,
                &store.status_address,
            )
            .await
        }))
        .await;
        let now = Instant::now();
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let mut ops: Option<f64> = None;
        for (store, scraped) in stores.iter().zip(scrapes) {
            let reading = scraped.and_then(|samples| {
                let scrape = metrics::store_scrape(&samples);
                if scrape.leaders.is_none() && scrape.regions.is_none() {
                    return Err(format!(
                        "{} answers /metrics without TiKV's metrics: is it a TiKV status address?",
                        store.status_address
                    ));
                }
                all.extend(samples);
                Ok(scrape)
            });
            let scrape = match reading {
                Ok(scrape) => scrape,
                Err(e) => {
                    previous.remove(&store.id);
                    readings.stores.insert(store.id, Err(e));
                    continue;
                }
            };
            let before = previous.insert(store.id, (now, scrape.clone()));
            let rates = before.map(|(at, before)| rates(&before, &scrape, now - at));
            let (commands_per_sec, append_log_ms) = rates.unwrap_or_default();
            if let Some(rate) = commands_per_sec {
                *ops.get_or_insert(0.0) += rate;
            }
            readings.stores.insert(
                store.id,
                Ok(StoreMetrics {
                    leaders: scrape.leaders.map(|v| v as u64),
                    regions: scrape.regions.map(|v| v as u64),
                    leader_missing: scrape.leader_missing.map(|v| v as u64),
                    slow_score: scrape.slow_score,
                    commands_per_sec,
                    append_log_ms,
                }),
            );
        }
        readings.ops_per_sec = ops;
        *self.last_samples.lock().unwrap_or_else(|p| p.into_inner()) = all;
        readings
    }

    /// The `metric_query` tool: PromQL when Prometheus is configured, else a selector
    /// (`name` or `name{label="value",...}`) over the latest direct scrape.
    pub async fn query(&self, query: &str) -> Result<Vec<MetricSample>, String> {
        match &self.source {
            Source::Prometheus(prometheus) => prometheus.query(query).await,
            Source::Direct { .. } => {
                let selector = Selector::parse(query)?;
                let samples = self.last_samples.lock().unwrap_or_else(|p| p.into_inner());
                let found: Vec<MetricSample> = samples
                    .iter()
                    .filter(|s| selector.matches(s))
                    .cloned()
                    .collect();
                if found.is_empty() {
                    // Names sharing the first two words ("tikv_raftstore") help a brain that
                    // guessed a name slightly wrong.
                    let prefix: String = selector.name.split_inclusive('_').take(2).collect();
                    let mut similar: Vec<&str> = samples
                        .iter()
                        .map(|s| s.name.as_str())
                        .filter(|n| n.starts_with(&prefix))
                        .collect();
                    similar.sort_unstable();
                    similar.dedup();
                    similar.truncate(12);
                    return Err(format!(
                        "no samples match {query:?} in the latest scrape; metrics with that prefix: {}",
                        if similar.is_empty() {
                            "none".into()
                        } else {
                            similar.join(", ")
                        }
                    ));
                }
                Ok(found)
            }
        }
    }
}

/// Commands per second and the mean append in ms between two scrapes of one store.
fn rates(
    before: &StoreScrape,
    after: &StoreScrape,
    elapsed: std::time::Duration,
) -> (Option<f64>, Option<f64>) {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return (None, None);
    }
    let commands = before
        .commands
        .zip(after.commands)
        .map(|(b, a)| metrics::counter_delta(b, a) / seconds);
    let appended = before
        .append_log_count
        .zip(after.append_log_count)
        .map(|(b, a)| metrics::counter_delta(b, a));
    let spent = before
        .append_log_seconds_sum
        .zip(after.append_log_seconds_sum)
        .map(|(b, a)| metrics::counter_delta(b, a));
    let append_ms = appended
        .zip(spent)
        .filter(|(n, _)| *n > 0.0)
        .map(|(n, s)| s / n * 1000.0);
    (commands, append_ms)
}

async fn scrape(
    transport: &dyn HttpTransport,
    url: &str,
    what: &str,
    instance: &str,
) -> Result<Vec<MetricSample>, String> {
    let answer = transport
        .send(HttpRequest::get(url))
        .await
        .map_err(|e| format!("{what} ({url}): {e}"))?;
    if !answer.is_success() {
        return Err(format!("{what} ({url}) answered HTTP {}", answer.status));
    }
    metrics::samples(&answer.body, what, &[("instance", instance)])
}

async fn read_prometheus(prometheus: &PrometheusClient, stores: &[StoreAddress]) -> Readings {
    let w = RATE_WINDOW;
    let queries = [
        "max by (type) (sum by (instance, type) (pd_cluster_status{job=\"pd\"}))".to_string(),
        "up{job=\"tikv\"}".to_string(),
        "tikv_raftstore_region_count{job=\"tikv\"}".to_string(),
        "tikv_raftstore_leader_missing{job=\"tikv\"}".to_string(),
        "max by (instance) (tikv_raftstore_slow_score{job=\"tikv\"})".to_string(),
        format!("sum by (instance) (rate(tikv_storage_command_total{{job=\"tikv\"}}[{w}]))"),
        format!(
            "sum by (instance) (rate(tikv_raftstore_append_log_duration_seconds_sum{{job=\"tikv\"}}[{w}])) \
             / sum by (instance) (rate(tikv_raftstore_append_log_duration_seconds_count{{job=\"tikv\"}}[{w}]))"
        ),
    ];
    let answers = futures::future::join_all(queries.iter().map(|q| prometheus.query(q))).await;
    let mut readings = Readings::default();
    let mut results = Vec::new();
    for answer in answers {
        match answer {
            Ok(samples) => results.push(samples),
            Err(e) => {
                readings.errors.push(e.clone());
                for store in stores {
                    readings.stores.insert(store.id, Err(e.clone()));
                }
                return readings;
            }
        }
    }
    let [pd, up, regions, missing, slow, commands, append] =
        <[Vec<MetricSample>; 7]>::try_from(results).expect("one answer per query");
    for s in &pd {
        if let Some(kind) = s.labels.get("type") {
            readings.cluster_status.insert(kind.clone(), s.value);
        }
    }
    let of = |samples: &[MetricSample], instance: &str, kind: Option<&str>| {
        samples
            .iter()
            .find(|s| {
                s.labels.get("instance").map(String::as_str) == Some(instance)
                    && kind.is_none_or(|k| s.labels.get("type").map(String::as_str) == Some(k))
            })
            .map(|s| s.value)
            .filter(|v| v.is_finite())
    };
    for store in stores {
        let instance = store.status_address.as_str();
        let reading = match of(&up, instance, None) {
            None => Err(format!(
                "Prometheus scrapes no tikv target {instance:?} (check its scrape config)"
            )),
            Some(v) if v < 1.0 => Err(format!(
                "Prometheus cannot scrape {instance} (up == 0: the process is down or unreachable)"
            )),
            Some(_) => {
                let rate = of(&commands, instance, None);
                if let Some(rate) = rate {
                    *readings.ops_per_sec.get_or_insert(0.0) += rate;
                }
                Ok(StoreMetrics {
                    leaders: of(&regions, instance, Some("leader")).map(|v| v as u64),
                    regions: of(&regions, instance, Some("region")).map(|v| v as u64),
                    leader_missing: of(&missing, instance, None).map(|v| v as u64),
                    slow_score: of(&slow, instance, None),
                    commands_per_sec: rate,
                    append_log_ms: of(&append, instance, None).map(|s| s * 1000.0),
                })
            }
        };
        readings.stores.insert(store.id, reading);
    }
    readings
}

/// A metric selector, `name` or `name{label="value",...}`: enough PromQL for a brain to pick
/// series out of a scrape. Written here because a full PromQL parser (promql-parser) brings
/// a parser generator for a few lines of matching.
struct Selector {
    name: String,
    labels: Vec<(String, String)>,
}

impl Selector {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let valid_name = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        if !valid_name(name) {
            return Err(format!(
                "{text:?} is not a metric selector: without Prometheus, metric_query takes a name, optionally with label=\"value\" matchers, e.g. tikv_raftstore_region_count{{type=\"leader\"}}"
            ));
        }
        let mut labels = Vec::new();
        if let Some(rest) = rest {
            let inner = rest
                .strip_suffix('}')
                .ok_or_else(|| format!("{text:?}: the matchers need a closing }}"))?;
            for matcher in inner.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                let (key, value) = matcher
                    .split_once('=')
                    .ok_or_else(|| format!("{matcher:?} is not label=\"value\""))?;
                let value = value
                    .trim()
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .ok_or_else(|| format!("{matcher:?}: quote the value"))?;
                labels.push((key.trim().to_string(), value.to_string()));
            }
        }
        Ok(Self {
            name: name.to_string(),
            labels,
        })
    }

    fn matches(&self, sample: &MetricSample) -> bool {
        sample.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| sample.labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)]) -> MetricSample {
        MetricSample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: 1.0,
        }
    }

    #[test]
    fn a_selector_matches_by_name_and_labels() {
        let s = Selector::parse("tikv_raftstore_region_count{type=\"leader\", instance=\"a:1\"}")
            .unwrap();
        assert!(s.matches(&sample(
            "tikv_raftstore_region_count",
            &[("type", "leader"), ("instance", "a:1")]
        )));
        assert!(!s.matches(&sample(
            "tikv_raftstore_region_count",
            &[("type", "region"), ("instance", "a:1")]
        )));
        assert!(Selector::parse("up").unwrap().matches(&sample("up", &[])));
        for bad in ["rate(x[1m])", "x{type=leader}", "x{type=\"a\"", ""] {
            assert!(Selector::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn rates_between_scrapes_survive_a_restart() {
        let before = StoreScrape {
            commands: Some(10_000.0),
            append_log_count: Some(100.0),
            append_log_seconds_sum: Some(0.2),
            ..Default::default()
        };
        let after = StoreScrape {
            commands: Some(10_500.0),
            append_log_count: Some(110.0),
            append_log_seconds_sum: Some(9.2),
            ..Default::default()
        };
        let (commands, append) = rates(&before, &after, std::time::Duration::from_millis(500));
        assert_eq!(commands, Some(1000.0));
        assert!((append.unwrap() - 900.0).abs() < 1e-6, "{append:?}");
        let restarted = StoreScrape {
            commands: Some(250.0),
            ..Default::default()
        };
        let (commands, append) = rates(&after, &restarted, std::time::Duration::from_secs(1));
        assert_eq!(commands, Some(250.0));
        assert_eq!(append, None);
    }
}
