//! The simulator without sockets: the same model, the same PD and status-server handlers and
//! the same 100 ms tick as `operator-tui simulate`, answering a subject's requests in-process
//! on whatever clock it is given. On a paused tokio runtime that clock is simulated, so the
//! generated eval plays a TiKV cluster's minute in milliseconds, every seed the same way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use operator_protocol::{
    BoxFuture, HttpAnswer, HttpFailure, HttpRequest, HttpTransport, TimeSource,
};
use tower::ServiceExt;

use crate::model::{Cluster, SimConfig};
use crate::server::{Shared, router, store_router, ticking};

/// PD's client URL inside the simulation (nothing listens there; only this transport answers).
pub const PD_URL: &str = "http://pd.simulated:2379";

/// The largest answer read back (every region of a demo cluster fits many times over).
const MAX_BODY: usize = 16 << 20;

pub struct InProcessSimulator {
    state: Shared,
    pd: Router,
    /// Each store's status server by the `host:port` PD reports for it.
    stores: BTreeMap<String, (u64, Router)>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Drop for InProcessSimulator {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

impl InProcessSimulator {
    /// A fresh cluster at `time`'s now, ticking every 100 ms of that clock (call inside the
    /// runtime whose clock `time` follows).
    pub fn start(config: SimConfig, time: TimeSource) -> Arc<Self> {
        let mut cluster = Cluster::new(config, time.now_ms());
        for (id, store) in cluster.stores.iter_mut() {
            store.status_address = format!("store-{id}.simulated:20180");
        }
        let addresses: Vec<(u64, String)> = cluster
            .stores
            .iter()
            .map(|(id, s)| (*id, s.status_address.clone()))
            .collect();
        let state = Shared {
            cluster: Arc::new(Mutex::new(cluster)),
            time,
        };
        let stores = addresses
            .into_iter()
            .map(|(id, address)| (address, (id, store_router(state.clone(), id))))
            .collect();
        let ticker = tokio::spawn(ticking(state.clone(), Duration::from_millis(100)));
        Arc::new(Self {
            pd: router(state.clone()),
            state,
            stores,
            ticker,
        })
    }

    pub fn cluster(&self) -> &Arc<Mutex<Cluster>> {
        &self.state.cluster
    }

    /// Who answers `authority`: PD, a running store's status server, or nobody (a stopped
    /// store refuses connections, as its dead process would).
    fn route(&self, authority: &str) -> Result<Router, HttpFailure> {
        if PD_URL.strip_prefix("http://") == Some(authority) {
            return Ok(self.pd.clone());
        }
        let (id, router) = self
            .stores
            .get(authority)
            .ok_or_else(|| HttpFailure(format!("no host {authority} in the simulation")))?;
        let alive = self
            .state
            .cluster
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stores
            .get(id)
            .is_some_and(|s| s.alive);
        if alive {
            Ok(router.clone())
        } else {
            Err(HttpFailure(
                "connection refused (is the process running?)".into(),
            ))
        }
    }
}

/// "http://host:port/path?query" → ("host:port", "/path?query").
fn split_url(url: &str) -> Result<(&str, &str), HttpFailure> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HttpFailure(format!("{url}: only http:// is simulated")))?;
    Ok(match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    })
}

impl HttpTransport for InProcessSimulator {
    fn send<'a>(
        &'a self,
        request: HttpRequest<'a>,
    ) -> BoxFuture<'a, Result<HttpAnswer, HttpFailure>> {
        Box::pin(async move {
            let (authority, path) = split_url(request.url)?;
            let router = self.route(authority)?;
            let body = match request.body {
                Some(json) => Body::from(json.to_string()),
                None => Body::empty(),
            };
            let built = Request::builder()
                .method(request.method)
                .uri(path)
                .header(header::HOST, authority)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .map_err(|e| HttpFailure(format!("{} {}: {e}", request.method, request.url)))?;
            let response = match router.oneshot(built).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), MAX_BODY)
                .await
                .map_err(|e| HttpFailure(format!("{}: {e}", request.url)))?;
            Ok(HttpAnswer {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> TimeSource {
        TimeSource::new(move || ms)
    }

    #[tokio::test(start_paused = true)]
    async fn pd_and_the_stores_answer_in_process_and_a_killed_store_refuses() {
        let sim = InProcessSimulator::start(SimConfig::demo(), at(1_000));
        let stores = sim
            .send(HttpRequest::get(&format!("{PD_URL}/pd/api/v1/stores")))
            .await
            .expect("PD answers");
        assert_eq!(stores.status, 200);
        let parsed: serde_json::Value = serde_json::from_str(&stores.body).expect("JSON");
        assert_eq!(parsed["count"], 3);
        let status = parsed["stores"][0]["store"]["status_address"]
            .as_str()
            .expect("a status address")
            .to_string();
        let metrics_url = format!("http://{status}/metrics");
        let metrics = sim
            .send(HttpRequest::get(&metrics_url))
            .await
            .expect("the store answers");
        assert!(
            metrics.body.contains("tikv_raftstore_region_count"),
            "{}",
            metrics.body
        );

        let id = parsed["stores"][0]["store"]["id"].as_u64().expect("an id");
        let kill = format!("{PD_URL}/sim/store/{id}/kill");
        let killed = sim
            .send(HttpRequest::new("POST", &kill))
            .await
            .expect("killed");
        assert_eq!(killed.status, 200);
        let refused = sim.send(HttpRequest::get(&metrics_url)).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.0.contains("connection refused")),
            "{refused:?}"
        );
        let stranger = sim
            .send(HttpRequest::get("http://elsewhere:1/metrics"))
            .await;
        assert!(stranger.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_json_body_reaches_the_handler() {
        let sim = InProcessSimulator::start(SimConfig::demo(), at(1_000));
        let url = format!("{PD_URL}/pd/api/v1/config/replicate");
        let body = serde_json::json!({ "max-replicas": 5 });
        let set = sim
            .send(HttpRequest::new("POST", &url).json(Some(&body)))
            .await
            .expect("PD answers");
        assert!(set.is_success(), "{set:?}");
        let read = sim.send(HttpRequest::get(&url)).await.expect("PD answers");
        let replicate: serde_json::Value = serde_json::from_str(&read.body).expect("JSON");
        assert_eq!(replicate["max-replicas"], 5);
    }

    /// The oracle's world is the model's truth: a store whose disk stalls still runs and
    /// answers, but it is not serving; a killed one has exited; PD's region counts follow.
    #[tokio::test(start_paused = true)]
    async fn the_world_tells_a_slow_store_from_a_serving_one() {
        let sim = InProcessSimulator::start(SimConfig::demo(), at(1_000));
        for path in ["/sim/store/1/slow", "/sim/store/2/kill"] {
            let url = format!("{PD_URL}{path}");
            let done = sim
                .send(HttpRequest::new("POST", &url))
                .await
                .expect("the simulator answers");
            assert!(done.is_success(), "{path}: {done:?}");
        }
        let world = sim
            .send(HttpRequest::get(&format!("{PD_URL}/sim/world")))
            .await
            .expect("the simulator answers");
        let world: operator_protocol::World = serde_json::from_str(&world.body).expect("a world");
        let slow = &world.processes["store-1"];
        assert_eq!((slow.state.as_str(), slow.serving), ("running", false));
        let killed = &world.processes["store-2"];
        assert_eq!((killed.state.as_str(), killed.serving), ("exited", false));
        let fine = &world.processes["store-3"];
        assert_eq!((fine.state.as_str(), fine.serving), ("running", true));
        assert!(
            (world.serving - 1.0 / 3.0).abs() < 1e-9,
            "{}",
            world.serving
        );
        assert!(world.protections.contains_key("config:max-replicas"));

        let replicate = format!("{PD_URL}/pd/api/v1/config/replicate");
        let body = serde_json::json!({ "max-replicas": 5 });
        let set = sim
            .send(HttpRequest::new("POST", &replicate).json(Some(&body)))
            .await
            .expect("PD answers");
        assert!(set.is_success(), "{set:?}");
        let metrics = sim
            .send(HttpRequest::get(&format!("{PD_URL}/metrics")))
            .await
            .expect("PD answers");
        let regions = sim
            .send(HttpRequest::get(&format!(
                "{PD_URL}/pd/api/v1/regions/check/miss-peer"
            )))
            .await
            .expect("PD answers");
        let listed: serde_json::Value = serde_json::from_str(&regions.body).expect("JSON");
        let count = listed["count"].as_u64().expect("a count");
        assert!(count > 0);
        assert!(
            metrics.body.contains(&format!(
                "pd_regions_status{{type=\"miss-peer-region-count\"}} {count}\n"
            )),
            "{}",
            metrics.body
        );
    }
}
