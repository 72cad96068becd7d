//! PD's and TiKV's Prometheus metrics (pd-api.md §4), read with the protocol's exposition parser.
//! `pd_cluster_status` changed shape in v8.5.5 (from `{type}` cluster totals to
//! `{type, engine, store}` per store), so it is summed by `type`, which reads the same on both
//! sides of the change.

use std::collections::BTreeMap;

pub use operator_protocol::prometheus::{MetricSample, samples};

fn total(samples: &[MetricSample], name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v)))
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// `sum by (type) (pd_cluster_status)`: store_up_count, store_down_count, region_count, ...
pub fn pd_cluster_status(samples: &[MetricSample]) -> BTreeMap<String, f64> {
    let mut status = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == "pd_cluster_status") {
        let kind = s.labels.get("type").cloned().unwrap_or_default();
        *status.entry(kind).or_default() += s.value;
    }
    status
}

/// `sum by (type) (pd_regions_status)`: how many regions each of PD's region checks holds,
/// by PD's hyphenated type ("miss-peer-region-count", "down-peer-region-count", ...).
pub fn pd_regions_status(samples: &[MetricSample]) -> BTreeMap<String, f64> {
    let mut status = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == "pd_regions_status") {
        let kind = s.labels.get("type").cloned().unwrap_or_default();
        *status.entry(kind).or_default() += s.value;
    }
    status
}

/// What one scrape of a TiKV status server says; counters are totals since the process began.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreScrape {
    pub leaders: Option<f64>,
    pub regions: Option<f64>,
    pub leader_missing: Option<f64>,
    /// `max by (type) (tikv_raftstore_slow_score)`.
    pub slow_score: Option<f64>,
    /// Σ `tikv_storage_command_total` over command types.
    pub commands: Option<f64>,
    pub append_log_seconds_sum: Option<f64>,
    pub append_log_count: Option<f64>,
}

pub fn store_scrape(samples: &[MetricSample]) -> StoreScrape {
    let region_count = "tikv_raftstore_region_count";
    let append = "tikv_raftstore_append_log_duration_seconds";
    StoreScrape {
        leaders: total(samples, region_count, Some(("type", "leader"))),
        regions: total(samples, region_count, Some(("type", "region"))),
        leader_missing: total(samples, "tikv_raftstore_leader_missing", None),
        slow_score: samples
            .iter()
            .filter(|s| s.name == "tikv_raftstore_slow_score")
            .map(|s| s.value)
            .reduce(f64::max),
        commands: total(samples, "tikv_storage_command_total", None),
        append_log_seconds_sum: total(samples, &format!("{append}_sum"), None),
        append_log_count: total(samples, &format!("{append}_count"), None),
    }
}

/// The growth of a counter between two scrapes; a restarted process starts from zero, so a
/// counter that went down grew by its whole new value (as Prometheus's `rate` reads a reset).
pub fn counter_delta(before: f64, after: f64) -> f64 {
    if after >= before {
        after - before
    } else {
        after
    }
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
        let read = |text| pd_cluster_status(&samples(text, "PD", &[]).unwrap());
        assert_eq!(read(old), read(new));
        assert_eq!(read(new)["store_up_count"], 3.0);
    }

    #[test]
    fn a_tikv_status_server_scrape_is_read_with_its_histogram() {
        let text = "# TYPE tikv_raftstore_region_count gauge\n\
            tikv_raftstore_region_count{type=\"region\"} 56\n\
            tikv_raftstore_region_count{type=\"leader\"} 16\n\
            # TYPE tikv_raftstore_slow_score gauge\n\
            tikv_raftstore_slow_score{type=\"disk\"} 1\n\
            tikv_raftstore_slow_score{type=\"network\"} 3\n\
            # TYPE tikv_storage_command_total counter\n\
            tikv_storage_command_total{type=\"raw_get\"} 700\n\
            tikv_storage_command_total{type=\"raw_put\"} 300\n\
            # TYPE tikv_raftstore_append_log_duration_seconds histogram\n\
            tikv_raftstore_append_log_duration_seconds_bucket{le=\"0.005\"} 90\n\
            tikv_raftstore_append_log_duration_seconds_bucket{le=\"+Inf\"} 100\n\
            tikv_raftstore_append_log_duration_seconds_sum 9.2\n\
            tikv_raftstore_append_log_duration_seconds_count 100\n";
        let all = samples(text, "tikv1", &[("instance", "tikv1:20180")]).unwrap();
        let scrape = store_scrape(&all);
        assert_eq!(scrape.leaders, Some(16.0));
        assert_eq!(scrape.regions, Some(56.0));
        assert_eq!(scrape.slow_score, Some(3.0), "the worst of the slow scores");
        assert_eq!(scrape.commands, Some(1000.0));
        assert_eq!(scrape.append_log_seconds_sum, Some(9.2));
        assert_eq!(scrape.append_log_count, Some(100.0));
        assert_eq!(scrape.leader_missing, None, "absent, not zero");
        let inf = all
            .iter()
            .find(|s| s.labels.get("le").map(String::as_str) == Some("+Inf"))
            .unwrap();
        assert_eq!(
            inf.name,
            "tikv_raftstore_append_log_duration_seconds_bucket"
        );
        assert_eq!(inf.labels["instance"], "tikv1:20180");
    }

    #[test]
    fn a_counter_reset_counts_its_new_value() {
        assert_eq!(counter_delta(100.0, 160.0), 60.0);
        assert_eq!(counter_delta(5000.0, 40.0), 40.0);
    }
}
