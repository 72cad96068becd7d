//! Prometheus text exposition read once, the same way for every subject: every sample flat,
//! histograms as their `_bucket` series with an `le` label, as PromQL would show them. Parsed
//! with `prometheus-parse`. Behind the `prometheus` feature, so the contract itself stays
//! serde-only for a subject that exposes no metrics.

use std::collections::BTreeMap;

use serde::Serialize;

/// One sample as a brain sees it: histograms flattened into their `_bucket` series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn scrape(text: &str, what: &str) -> Result<prometheus_parse::Scrape, String> {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| format!("{what} does not parse: {e}"))
}

/// Every sample of an exposition, with `extra` labels (the instance it came from) added.
pub fn samples(
    text: &str,
    what: &str,
    extra: &[(&str, &str)],
) -> Result<Vec<MetricSample>, String> {
    let mut out = Vec::new();
    for sample in scrape(text, what)?.samples {
        let mut labels: BTreeMap<String, String> = sample
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in extra {
            labels.insert(k.to_string(), v.to_string());
        }
        match &sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => out.push(MetricSample {
                name: sample.metric.clone(),
                labels,
                value: *v,
            }),
            prometheus_parse::Value::Histogram(buckets) => {
                for bucket in buckets {
                    let mut labels = labels.clone();
                    let le = if bucket.less_than.is_infinite() {
                        "+Inf".to_string()
                    } else {
                        bucket.less_than.to_string()
                    };
                    labels.insert("le".into(), le);
                    out.push(MetricSample {
                        name: format!("{}_bucket", sample.metric),
                        labels,
                        value: bucket.count,
                    });
                }
            }
            prometheus_parse::Value::Summary(_) => {}
        }
    }
    Ok(out)
}
