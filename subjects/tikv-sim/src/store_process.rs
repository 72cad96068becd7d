//! One simulated TiKV store as a process of its own (`operator-tui simulate-store`), for a
//! cluster of containers (compose/tikv-sim.yml): it heartbeats to the simulator's PD (started
//! with `--external-stores`) and serves a status server (`/status`, `/metrics`) on its own
//! address. Killing the process is killing the store: PD stops hearing from it and its status
//! port refuses connections. What it serves comes from the simulator's model, which holds
//! every store's regions and counters.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// How often the process says it runs; the simulator's PD calls it gone after a second.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(200);

#[derive(Clone)]
struct Store {
    pd: String,
    id: u64,
    http: reqwest::Client,
}

async fn metrics(State(store): State<Store>) -> Response {
    let fetched = async {
        let r = store
            .http
            .get(format!("{}/sim-store/{}/metrics", store.pd, store.id))
            .send()
            .await?
            .error_for_status()?;
        r.text().await
    };
    match fetched.await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the simulator's PD does not answer: {e}"),
        )
            .into_response(),
    }
}

/// Serves store `id` until the future is dropped: the status server on `listen`, heartbeats
/// to `pd` advertising `advertise` as the status address.
pub async fn run(pd: &str, id: u64, listen: SocketAddr, advertise: &str) -> std::io::Result<()> {
    let store = Store {
        pd: pd.trim_end_matches('/').to_string(),
        id,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(std::io::Error::other)?,
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let app = Router::new()
        .route("/status", get(|| async { StatusCode::OK }))
        .route("/metrics", get(metrics))
        .with_state(store.clone());
    let started_ms = operator_protocol::unix_now_ms();
    let beat = json!({ "started_ms": started_ms, "status_address": advertise });
    let heartbeats = async {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            every.tick().await;
            // PD may not be up yet, or restarting: keep trying, as TiKV does.
            let _ = store
                .http
                .post(format!("{}/sim-store/{id}/heartbeat", store.pd))
                .json(&beat)
                .send()
                .await;
        }
    };
    tokio::select! {
        served = axum::serve(listener, app).into_future() => served,
        () = heartbeats => Ok(()),
    }
}
