//! The subject with `prometheus` configured: PD's API from the simulator, metrics from a
//! loopback server speaking Prometheus's query API (`/api/v1/query`) with answers authored
//! here in its wire format. A store whose target is down, and a Prometheus that fails, are
//! recorded as such, never read as healthy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use operator_protocol::{Subject, ToolCall};
use operator_tikv::facts::Facts;
use operator_tikv::subject::{TikvOptions, TikvSubject};
use operator_tikv_sim::model::SimConfig;
use operator_tikv_sim::server::Simulator;
use operator_tikv_sim::target::SimTarget;
use serde_json::{Value, json};

/// What the fake answers: per-instance values, and whether the whole server is failing.
#[derive(Default)]
struct Script {
    instances: Vec<String>,
    /// The instance Prometheus can no longer scrape (`up == 0`, no fresh series).
    down: Option<String>,
    failing: bool,
    queries: Vec<String>,
}

type Shared = Arc<Mutex<Script>>;

fn vector(series: Vec<Value>) -> Value {
    json!({ "status": "success", "data": { "resultType": "vector", "result": series } })
}

fn series(metric: Value, value: &str) -> Value {
    json!({ "metric": metric, "value": [1_764_590_400.123, value] })
}

async fn query(
    State(script): State<Shared>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    let mut s = script.lock().unwrap();
    let q = params.get("query").cloned().unwrap_or_default();
    s.queries.push(q.clone());
    if s.failing {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation" })),
        )
            .into_response();
    }
    let live: Vec<&String> = s
        .instances
        .iter()
        .filter(|i| Some(*i) != s.down.as_ref())
        .collect();
    let per_instance = |name: &str, extra: Value, value: &str| -> Vec<Value> {
        live.iter()
            .map(|i| {
                let mut metric = json!({ "__name__": name, "instance": i, "job": "tikv" });
                for (k, v) in extra.as_object().unwrap() {
                    metric[k] = v.clone();
                }
                series(metric, value)
            })
            .collect()
    };
    let body = if q.starts_with("max by (type)") {
        vector(vec![
            series(json!({ "type": "store_up_count" }), "3"),
            series(json!({ "type": "store_down_count" }), "0"),
        ])
    } else if q.starts_with("up{") {
        vector(
            s.instances
                .iter()
                .map(|i| {
                    let up = if Some(i) == s.down.as_ref() { "0" } else { "1" };
                    series(
                        json!({ "__name__": "up", "instance": i, "job": "tikv" }),
                        up,
                    )
                })
                .collect(),
        )
    } else if q.starts_with("tikv_raftstore_region_count") {
        let mut all = per_instance(
            "tikv_raftstore_region_count",
            json!({ "type": "leader" }),
            "20",
        );
        all.extend(per_instance(
            "tikv_raftstore_region_count",
            json!({ "type": "region" }),
            "60",
        ));
        vector(all)
    } else if q.starts_with("tikv_raftstore_leader_missing") {
        vector(per_instance(
            "tikv_raftstore_leader_missing",
            json!({}),
            "0",
        ))
    } else if q.starts_with("max by (instance) (tikv_raftstore_slow_score") {
        vector(per_instance("", json!({}), "1"))
    } else if q.contains("tikv_storage_command_total") {
        vector(per_instance("", json!({}), "400.5"))
    } else if q.contains("append_log_duration_seconds") {
        // A rate over a window without appends divides zero by zero.
        vector(per_instance("", json!({}), "NaN"))
    } else {
        json!({ "status": "error", "errorType": "bad_data", "error": format!("unexpected query {q}") })
    };
    axum::Json(body).into_response()
}

struct Rig {
    _sim: Simulator,
    subject: TikvSubject,
    target: SimTarget,
    script: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn rig() -> Rig {
    let config = SimConfig {
        regions: 60,
        ..SimConfig::default()
    };
    let sim = Simulator::start(
        config.clone(),
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let instances = {
        let c = sim.cluster.lock().unwrap();
        c.stores
            .values()
            .map(|s| s.status_address.clone())
            .collect()
    };
    let script: Shared = Arc::new(Mutex::new(Script {
        instances,
        ..Script::default()
    }));
    let app = axum::Router::new()
        .route("/api/v1/query", axum::routing::get(query))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let subject = TikvSubject::new(TikvOptions {
        prometheus: Some(url),
        ..TikvOptions::simulator(&sim.url())
    })
    .unwrap();
    let target = SimTarget::for_simulator(&sim.url(), &config);
    Rig {
        _sim: sim,
        subject,
        target,
        script,
        server,
    }
}

async fn facts(rig: &Rig) -> Facts {
    let observation = rig.subject.observe().await.unwrap();
    serde_json::from_value(observation.facts).unwrap()
}

#[tokio::test]
async fn store_metrics_and_the_workload_come_from_prometheus() {
    let rig = rig().await;
    let f = facts(&rig).await;
    assert_eq!(f.pd.cluster_status["store_up_count"], 3.0);
    assert!(f.pd.read_errors.is_empty(), "{:?}", f.pd.read_errors);
    for store in &f.stores {
        let m = store
            .metrics
            .as_ref()
            .unwrap_or_else(|| panic!("{store:?}"));
        assert_eq!((m.leaders, m.regions), (Some(20), Some(60)));
        assert_eq!(m.commands_per_sec, Some(400.5));
        assert_eq!(m.append_log_ms, None, "NaN is no reading, not a number");
    }
    assert_eq!(f.workload.ops_per_sec, Some(1201.5));
    let queries = rig.script.lock().unwrap().queries.clone();
    assert!(
        queries
            .iter()
            .any(|q| q.contains("rate(tikv_storage_command_total{job=\"tikv\"}[30s])")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn a_target_prometheus_cannot_scrape_is_a_store_without_metrics() {
    let rig = rig().await;
    let down = rig.script.lock().unwrap().instances[1].clone();
    rig.script.lock().unwrap().down = Some(down.clone());
    let f = facts(&rig).await;
    let store = f.stores.iter().find(|s| s.status_address == down).unwrap();
    assert!(store.metrics.is_none());
    let error = store.metrics_error.as_deref().unwrap();
    assert!(error.contains("up == 0"), "{error}");
    assert_eq!(f.workload.ops_per_sec, Some(801.0), "two stores serve");
}

#[tokio::test]
async fn a_failing_prometheus_is_a_read_error_and_metric_query_says_why() {
    let rig = rig().await;
    rig.script.lock().unwrap().failing = true;
    let f = facts(&rig).await;
    assert_eq!(f.workload.ops_per_sec, None, "unknown, not zero");
    let error = f.pd.read_errors.join("; ");
    assert!(
        error.contains("query timed out") && error.contains("timeout"),
        "{error}"
    );
    assert!(f.stores.iter().all(|s| s.metrics_error.is_some()));
    let call = ToolCall {
        tool: "metric_query".into(),
        args: serde_json::from_value(json!({ "query": "up" })).unwrap(),
    };
    let err = rig.subject.call_tool(&call, &rig.target).await.unwrap_err();
    assert!(
        err.to_string().contains("Prometheus at http://127.0.0.1:"),
        "{err}"
    );
    assert!(
        rig.subject
            .check(&rig.subject.observe().await.unwrap())
            .iter()
            .all(|v| v.invariant != "workload_drop"),
        "an unreadable workload is not a dropped one"
    );
}

#[tokio::test]
async fn metric_query_passes_promql_through() {
    let rig = rig().await;
    let call = ToolCall {
        tool: "metric_query".into(),
        args: serde_json::from_value(
            json!({ "query": "tikv_raftstore_region_count{job=\"tikv\"}" }),
        )
        .unwrap(),
    };
    let answer = rig.subject.call_tool(&call, &rig.target).await.unwrap();
    assert_eq!(answer["total"], 6, "{answer}");
    assert!(
        answer["source"]
            .as_str()
            .unwrap()
            .starts_with("queried from Prometheus")
    );
    assert_eq!(answer["samples"][0]["name"], "tikv_raftstore_region_count");
}
