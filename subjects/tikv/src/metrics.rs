//! PD's Prometheus metrics, parsed with `prometheus-parse`. `pd_cluster_status` changed shape
//! in v8.5.5 (from `{type}` cluster totals to `{type, engine, store}` per store), so it is
//! summed by `type`, which reads the same on both sides of the change.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PdMetrics {
    /// `sum by (type) (pd_cluster_status)`: store_up_count, store_down_count, leader_count, ...
    pub cluster_status: BTreeMap<String, f64>,
    /// The simulator's own workload gauge; absent on a real PD.
    pub simulated_qps: Option<f64>,
}

fn value(v: &prometheus_parse::Value) -> Option<f64> {
    match v {
        prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Untyped(v) => Some(*v),
        _ => None,
    }
}

pub fn parse(text: &str) -> Result<PdMetrics, String> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| format!("PD's /metrics does not parse: {e}"))?;
    let mut metrics = PdMetrics::default();
    for sample in &scrape.samples {
        let Some(v) = value(&sample.value) else {
            continue;
        };
        match sample.metric.as_str() {
            "pd_cluster_status" => {
                let kind = sample.labels.get("type").unwrap_or("unknown").to_string();
                *metrics.cluster_status.entry(kind).or_default() += v;
            }
            "tikv_simulated_qps" => metrics.simulated_qps = Some(v),
            _ => {}
        }
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_status_sums_by_type_before_and_after_v8_5_5() {
        let old = "# TYPE pd_cluster_status gauge\npd_cluster_status{type=\"store_up_count\"} 3\npd_cluster_status{type=\"store_down_count\"} 0\n";
        let new = "# TYPE pd_cluster_status gauge\n\
            pd_cluster_status{engine=\"tikv\",store=\"1\",type=\"store_up_count\"} 1\n\
            pd_cluster_status{engine=\"tikv\",store=\"2\",type=\"store_up_count\"} 1\n\
            pd_cluster_status{engine=\"tikv\",store=\"3\",type=\"store_up_count\"} 1\n\
            pd_cluster_status{engine=\"tikv\",store=\"3\",type=\"store_down_count\"} 0\n";
        let (old, new) = (parse(old).unwrap(), parse(new).unwrap());
        assert_eq!(old.cluster_status, new.cluster_status);
        assert_eq!(new.cluster_status["store_up_count"], 3.0);
        assert_eq!(new.simulated_qps, None);
    }

    #[test]
    fn the_simulators_workload_gauge_is_read() {
        let m = parse("# TYPE tikv_simulated_qps gauge\ntikv_simulated_qps 1200.0\n").unwrap();
        assert_eq!(m.simulated_qps, Some(1200.0));
    }
}
