//! The simulator's PD HTTP API, in PD v8.5's shapes: indented JSON with a trailing newline for
//! most answers, compact JSON as application/octet-stream for region endpoints, errors as JSON
//! strings. `/sim/...` routes are the simulator's own chaos controls.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::model::{Cluster, PendingOperator, SimConfig, SimRegion};

type Shared = Arc<Mutex<Cluster>>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// PD's `render.IndentJSON`: indented, trailing newline, application/json; charset=UTF-8.
fn indented(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

/// PD's region endpoints: compact JSON as application/octet-stream, no newline.
fn compact(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        value.to_string(),
    )
        .into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    indented(status, &Value::String(text.to_string()))
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Cluster> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn store_json(c: &Cluster, id: u64) -> Value {
    let s = &c.stores[&id];
    let mut store = json!({
        "id": id,
        "address": format!("tikv{id}:20160"),
        "version": "8.5.0",
        "peer_address": format!("tikv{id}:20160"),
        "status_address": format!("tikv{id}:20180"),
        "start_timestamp": s.start_ms / 1000,
        "deploy_path": "/",
        "last_heartbeat": s.last_heartbeat_ms as i64 * 1_000_000,
        "node_state": if s.offline { 2 } else { 1 },
        "state_name": c.state_name(s),
    });
    if s.offline {
        store["state"] = json!(1);
    }
    let leaders = c.reported_leader_count(id);
    let mut status = json!({
        "capacity": "96.73GiB",
        "available": "51.41GiB",
        "leader_count": leaders,
        "leader_weight": 1,
        "leader_score": leaders,
        "region_count": c.region_count(id),
        "region_weight": 1,
        "slow_score": if s.slow { 95 } else { 1 },
        "last_heartbeat_ts": "2026-01-01T00:00:00Z",
    });
    if leaders == 0 {
        // gogoproto omits zero values.
        status.as_object_mut().map(|o| o.remove("leader_count"));
    }
    json!({ "store": store, "status": status })
}

fn peer_json(peer: (u64, u64)) -> Value {
    json!({ "role_name": "Voter", "id": peer.0, "store_id": peer.1 })
}

fn region_json(c: &Cluster, r: &SimRegion) -> Value {
    let mut v = json!({
        "id": r.id,
        "start_key": "",
        "end_key": "",
        "epoch": { "conf_ver": 5, "version": 3 },
        "peers": r.peers.iter().map(|p| peer_json(*p)).collect::<Vec<_>>(),
        "leader": r.leader.map(|i| peer_json(r.peers[i])).unwrap_or_else(|| json!({ "role_name": "" })),
        "cpu_usage": 0, "written_bytes": 0, "read_bytes": 0, "written_keys": 0, "read_keys": 0,
        "approximate_size": 96, "approximate_keys": 851000, "approximate_kv_size": 90,
    });
    let down = c.down_peers(r);
    if !down.is_empty() {
        let seconds =
            |store: u64| c.now_ms.saturating_sub(c.stores[&store].last_heartbeat_ms) / 1000;
        v["down_peers"] = json!(
            down.iter()
                .map(|p| json!({ "peer": peer_json(*p), "down_seconds": seconds(p.1) }))
                .collect::<Vec<_>>()
        );
    }
    v
}

async fn stores(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let all: Vec<Value> = c.stores.keys().map(|id| store_json(&c, *id)).collect();
    indented(
        StatusCode::OK,
        &json!({ "count": all.len(), "stores": all }),
    )
}

async fn store(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return indented(
            StatusCode::BAD_REQUEST,
            &json!({ "code": "input", "msg": format!("invalid store id {id:?}"), "data": {} }),
        );
    };
    let c = lock(&state);
    if !c.stores.contains_key(&id) {
        return message(
            StatusCode::NOT_FOUND,
            &format!("[PD:core:ErrStoreNotFound]store {id} not found"),
        );
    }
    indented(StatusCode::OK, &store_json(&c, id))
}

async fn delete_store(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    let mut c = lock(&state);
    if !c.stores.contains_key(&id) {
        return message(
            StatusCode::NOT_FOUND,
            &format!("[PD:core:ErrStoreNotFound]store {id} not found"),
        );
    }
    let up_after = c
        .stores
        .values()
        .filter(|s| s.id != id && !s.offline && c.state_name(s) == "Up")
        .count() as u64;
    if up_after < c.config.max_replicas {
        let text = format!(
            "[PD:core:ErrStoresNotEnough]can not remove store {id} since the number of up stores would be {up_after} while need {}",
            c.config.max_replicas
        );
        return message(StatusCode::BAD_REQUEST, &text);
    }
    if let Some(s) = c.stores.get_mut(&id) {
        s.offline = true;
    }
    message(StatusCode::OK, "The store is set as Offline.")
}

async fn region(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    let c = lock(&state);
    match c.regions.iter().find(|r| r.id == id) {
        Some(r) => compact(&region_json(&c, r)),
        // v8.5 answers an unknown id with a zero region.
        None => compact(
            &json!({ "id": 0, "start_key": "", "end_key": "", "leader": { "role_name": "" }, "cpu_usage": 0, "approximate_size": 0 }),
        ),
    }
}

async fn regions_check(State(state): State<Shared>, Path(kind): Path<String>) -> Response {
    let c = lock(&state);
    let matches = |r: &&SimRegion| match kind.as_str() {
        "down-peer" => !c.down_peers(r).is_empty(),
        "miss-peer" => (r.peers.len() as u64) < c.config.max_replicas,
        "offline-peer" => r.peers.iter().any(|(_, s)| c.stores[s].offline),
        _ => false,
    };
    let regions: Vec<Value> = c
        .regions
        .iter()
        .filter(matches)
        .map(|r| region_json(&c, r))
        .collect();
    compact(&json!({ "count": regions.len(), "regions": regions }))
}

async fn health(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let members: Vec<Value> = c
        .pd
        .iter()
        .map(|p| json!({ "name": p.name, "member_id": p.member_id, "client_urls": [format!("http://{}:2379", p.name)], "health": p.alive }))
        .collect();
    indented(StatusCode::OK, &json!(members))
}

fn member_json(p: &super::model::SimPd) -> Value {
    json!({ "name": p.name, "member_id": p.member_id, "peer_urls": [format!("http://{}:2380", p.name)], "client_urls": [format!("http://{}:2379", p.name)] })
}

async fn members(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let mut body = json!({ "header": { "cluster_id": 7_404_148_478_451_254_763u64 }, "members": c.pd.iter().map(member_json).collect::<Vec<_>>() });
    if let Some(leader) = c.pd_leader() {
        body["leader"] = member_json(leader);
    }
    indented(StatusCode::OK, &body)
}

async fn leader(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    indented(
        StatusCode::OK,
        &c.pd_leader().map(member_json).unwrap_or(Value::Null),
    )
}

async fn replicate(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    indented(
        StatusCode::OK,
        &json!({ "max-replicas": c.config.max_replicas, "location-labels": "", "enable-placement-rules": "true" }),
    )
}

async fn schedule(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let down = Duration::from_millis(c.config.down_after_ms);
    let text = format!("{}m{}s", down.as_secs() / 60, down.as_secs() % 60);
    indented(
        StatusCode::OK,
        &json!({ "max-store-down-time": text, "leader-schedule-limit": 4 }),
    )
}

async fn create_operator(State(state): State<Shared>, body: String) -> Response {
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return indented(
            StatusCode::BAD_REQUEST,
            &json!({ "code": "input", "msg": "invalid JSON", "data": {} }),
        );
    };
    let mut c = lock(&state);
    match v["name"].as_str() {
        Some("transfer-leader") => {
            let (Some(region), Some(to)) = (v["region_id"].as_u64(), v["to_store_id"].as_u64())
            else {
                return message(StatusCode::BAD_REQUEST, "missing region id");
            };
            let Some(r) = c.regions.iter().find(|r| r.id == region) else {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("[PD:region:ErrRegionNotFound]region {region} not found"),
                );
            };
            if !r.peers.iter().any(|(_, s)| *s == to) {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("region has no voter in store {to}"),
                );
            }
            c.operators.push(PendingOperator::TransferLeader {
                region,
                to_store: to,
            });
            message(StatusCode::OK, "The operator is created.")
        }
        Some("transfer-peer") => {
            let (Some(region), Some(from), Some(to)) = (
                v["region_id"].as_u64(),
                v["from_store_id"].as_u64(),
                v["to_store_id"].as_u64(),
            ) else {
                return message(StatusCode::BAD_REQUEST, "missing region id or store ids");
            };
            let Some(r) = c.regions.iter().find(|r| r.id == region) else {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("[PD:region:ErrRegionNotFound]region {region} not found"),
                );
            };
            if !r.peers.iter().any(|(_, s)| *s == from) {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("region has no peer in store {from}"),
                );
            }
            if r.peers.iter().any(|(_, s)| *s == to) {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("region already has peer in store {to}"),
                );
            }
            if c.stores.get(&to).is_none_or(|s| !s.alive || s.offline) {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("store {to} is not up"),
                );
            }
            c.operators.push(PendingOperator::TransferPeer {
                region,
                from_store: from,
                to_store: to,
            });
            message(StatusCode::OK, "The operator is created.")
        }
        Some(_) => message(StatusCode::BAD_REQUEST, "unknown operator"),
        None => message(StatusCode::BAD_REQUEST, "missing operator name"),
    }
}

async fn list_operators(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let ops: Vec<String> = c
        .operators
        .iter()
        .map(|op| match op {
            PendingOperator::TransferLeader { region, to_store } => format!("admin-transfer-leader {{transfer leader: to store {to_store}}} (kind:admin,leader, region:{region})"),
            PendingOperator::TransferPeer { region, from_store, to_store } => {
                format!("admin-move-peer {{mv peer: store [{from_store}] to [{to_store}]}} (kind:admin,region, region:{region})")
            }
        })
        .collect();
    indented(StatusCode::OK, &json!(ops))
}

async fn add_scheduler(State(state): State<Shared>, body: String) -> Response {
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    if v["name"] != "evict-leader-scheduler" {
        return message(StatusCode::BAD_REQUEST, "unknown scheduler");
    }
    let Some(store) = v["store_id"].as_u64() else {
        return message(StatusCode::BAD_REQUEST, "missing store id");
    };
    let mut c = lock(&state);
    let first = c.evict_leader.is_empty();
    c.evict_leader.insert(store);
    message(
        StatusCode::OK,
        if first {
            "The scheduler is created."
        } else {
            "The scheduler has been applied to the store."
        },
    )
}

async fn remove_scheduler(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    let mut c = lock(&state);
    match name
        .strip_prefix("evict-leader-scheduler-")
        .and_then(|id| id.parse::<u64>().ok())
    {
        Some(id) if c.evict_leader.remove(&id) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            "null\n",
        )
            .into_response(),
        _ if name == "evict-leader-scheduler" && !c.evict_leader.is_empty() => {
            c.evict_leader.clear();
            message(StatusCode::OK, "The scheduler is removed.")
        }
        _ => message(
            StatusCode::NOT_FOUND,
            "[PD:scheduler:ErrSchedulerNotFound]scheduler not found",
        ),
    }
}

/// `/sim/store/{id}/{kill|restart|slow|fast|hot}` and `/sim/pd/{name}/{kill|restart}`.
async fn control(
    State(state): State<Shared>,
    Path((kind, id, verb)): Path<(String, String, String)>,
) -> Response {
    let mut c = lock(&state);
    let now = c.now_ms;
    match (kind.as_str(), verb.as_str()) {
        ("store", _) => {
            let Some(store) = id.parse::<u64>().ok().and_then(|id| c.stores.get_mut(&id)) else {
                return message(StatusCode::NOT_FOUND, &format!("no store {id}"));
            };
            match verb.as_str() {
                "kill" => store.alive = false,
                "restart" => {
                    // A fresh process: whatever stalled the old one is gone with it.
                    store.alive = true;
                    store.slow = false;
                    store.start_ms = now;
                    store.last_heartbeat_ms = now;
                }
                "slow" => store.slow = true,
                "fast" => store.slow = false,
                "hot" => {
                    let id = store.id;
                    c.hot_store = Some(id);
                }
                "cool" => c.hot_store = None,
                _ => return message(StatusCode::NOT_FOUND, "unknown store control"),
            }
        }
        ("pd", "kill" | "restart") => {
            let Some(pd) = c.pd.iter_mut().find(|p| p.name == id) else {
                return message(StatusCode::NOT_FOUND, &format!("no PD member {id}"));
            };
            pd.alive = verb == "restart";
        }
        _ => return message(StatusCode::NOT_FOUND, "unknown control"),
    }
    message(StatusCode::OK, "done")
}

/// PD's own metrics, with the names the subject reads.
async fn metrics(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let count = |name: &str| {
        c.stores
            .values()
            .filter(|s| c.state_name(s) == name)
            .count()
    };
    let body = format!(
        "# TYPE pd_cluster_status gauge\npd_cluster_status{{type=\"store_up_count\"}} {}\npd_cluster_status{{type=\"store_disconnected_count\"}} {}\npd_cluster_status{{type=\"store_down_count\"}} {}\n# TYPE tikv_simulated_qps gauge\ntikv_simulated_qps {:.1}\n",
        count("Up"),
        count("Disconnected"),
        count("Down"),
        c.qps()
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/pd/api/v1/stores", get(stores))
        .route("/pd/api/v1/store/{id}", get(store).delete(delete_store))
        .route("/pd/api/v1/region/id/{id}", get(region))
        .route("/pd/api/v1/regions/check/{kind}", get(regions_check))
        .route("/pd/api/v1/health", get(health))
        .route("/pd/api/v1/members", get(members))
        .route("/pd/api/v1/leader", get(leader))
        .route("/pd/api/v1/config/replicate", get(replicate))
        .route("/pd/api/v1/config/schedule", get(schedule))
        .route(
            "/pd/api/v1/operators",
            post(create_operator).get(list_operators),
        )
        .route("/pd/api/v1/schedulers", post(add_scheduler))
        .route("/pd/api/v1/schedulers/{name}", delete(remove_scheduler))
        .route("/sim/{kind}/{id}/{verb}", post(control))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// A running simulator: its address, and a task ticking the model.
pub struct Simulator {
    pub address: SocketAddr,
    pub cluster: Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Simulator {
    /// Serves on `listen` (port 0 picks one) and ticks every `tick`.
    pub async fn start(
        config: SimConfig,
        listen: SocketAddr,
        tick: Duration,
    ) -> std::io::Result<Self> {
        let cluster = Arc::new(Mutex::new(Cluster::new(config, now_ms())));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let app = router(cluster.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let ticking = cluster.clone();
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            loop {
                interval.tick().await;
                ticking
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .tick(now_ms());
            }
        });
        Ok(Self {
            address,
            cluster,
            tasks: vec![server, ticker],
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}
