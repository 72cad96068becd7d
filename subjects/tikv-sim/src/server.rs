//! The simulator's PD HTTP API, in PD v8.5's shapes: indented JSON with a trailing newline for
//! most answers, compact JSON as application/octet-stream for region endpoints, errors as JSON
//! strings. `/sim/...` routes are the simulator's own chaos controls.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::model::{Cluster, Load, PendingOperator, SimConfig, SimRegion, StoreState};

use operator_protocol::TimeSource;

/// What every handler reads: the model, and the clock its counters are read at.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) cluster: Arc<Mutex<Cluster>>,
    pub(crate) time: TimeSource,
}

/// PD's `render.IndentJSON`: indented, trailing newline, application/json; charset=UTF-8.
fn indented(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    indented(status, &Value::String(text.to_string()))
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Cluster> {
    state.cluster.lock().unwrap_or_else(|p| p.into_inner())
}

fn store_json(c: &Cluster, id: u64, load: &Load) -> Value {
    let s = &c.stores[&id];
    let mut store = json!({
        "id": id,
        "address": format!("tikv{id}:20160"),
        "version": "8.5.0",
        "peer_address": format!("tikv{id}:20160"),
        "status_address": s.status_address,
        "start_timestamp": s.start_ms / 1000,
        "deploy_path": "/",
        "last_heartbeat": s.last_heartbeat_ms as i64 * 1_000_000,
        "node_state": if s.offline { 2 } else { 1 },
        "state_name": c.state_name(s).as_str(),
    });
    if s.offline {
        store["state"] = json!(1);
    }
    let leaders = c.reported_leader_count(id, load);
    let mut status = json!({
        "capacity": "96.73GiB",
        "available": "51.41GiB",
        "leader_count": leaders,
        "leader_weight": 1,
        "leader_score": leaders,
        "region_count": load.peers_on(id),
        "region_weight": 1,
        "slow_score": c.slow_score(s),
        "last_heartbeat_ts": "2026-01-01T00:00:00Z",
    });
    if leaders == 0 {
        // gogoproto omits zero values.
        status.as_object_mut().map(|o| o.remove("leader_count"));
    }
    json!({ "store": store, "status": status })
}

/// A region peer in PD's shape.
#[derive(serde::Serialize)]
struct Peer {
    role_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_id: Option<u64>,
}

impl Peer {
    fn voter((id, store_id): (u64, u64)) -> Self {
        Self {
            role_name: "Voter",
            id: Some(id),
            store_id: Some(store_id),
        }
    }
}

#[derive(serde::Serialize)]
struct DownPeer {
    peer: Peer,
    down_seconds: u64,
}

#[derive(serde::Serialize)]
struct Epoch {
    conf_ver: u64,
    version: u64,
}

/// A region in PD's shape, serialized straight to text: a cluster with a store down answers
/// hundreds of them every tick, and building each as a `Value` first costs more than the rest
/// of the answer.
#[derive(serde::Serialize)]
struct RegionOut {
    id: u64,
    start_key: &'static str,
    end_key: &'static str,
    epoch: Epoch,
    peers: Vec<Peer>,
    leader: Peer,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    down_peers: Vec<DownPeer>,
    cpu_usage: u64,
    written_bytes: u64,
    read_bytes: u64,
    written_keys: u64,
    read_keys: u64,
    approximate_size: u64,
    approximate_keys: u64,
    approximate_kv_size: u64,
}

fn region_out(c: &Cluster, r: &SimRegion) -> RegionOut {
    let seconds = |store: u64| c.now_ms.saturating_sub(c.stores[&store].last_heartbeat_ms) / 1000;
    RegionOut {
        id: r.id,
        start_key: "",
        end_key: "",
        epoch: Epoch {
            conf_ver: 5,
            version: 3,
        },
        peers: r.peers.iter().map(|p| Peer::voter(*p)).collect(),
        leader: r.leader.map(|i| Peer::voter(r.peers[i])).unwrap_or(Peer {
            role_name: "",
            id: None,
            store_id: None,
        }),
        down_peers: c
            .down_peers(r)
            .into_iter()
            .map(|p| DownPeer {
                peer: Peer::voter(p),
                down_seconds: seconds(p.1),
            })
            .collect(),
        cpu_usage: 0,
        written_bytes: 0,
        read_bytes: 0,
        written_keys: 0,
        read_keys: 0,
        approximate_size: 96,
        approximate_keys: 851_000,
        approximate_kv_size: 90,
    }
}

/// PD's region endpoints: compact JSON as application/octet-stream, no newline.
fn compact_text(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        body,
    )
        .into_response()
}

async fn stores(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let load = c.load();
    let all: Vec<Value> = c
        .stores
        .keys()
        .map(|id| store_json(&c, *id, &load))
        .collect();
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
    indented(StatusCode::OK, &store_json(&c, id, &c.load()))
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
        .filter(|s| s.id != id && !s.offline && c.state_name(s) == StoreState::Up)
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
    c.pd_log(
        "INFO",
        "cluster.go",
        "store has changed to offline",
        &[("store-id", id.to_string())],
    );
    message(StatusCode::OK, "The store is set as Offline.")
}

#[derive(serde::Deserialize)]
struct StateQuery {
    state: String,
}

/// `POST /pd/api/v1/store/{id}/state?state=Up|Offline`: `Up` cancels an offline, `Offline` is
/// a DELETE without force.
async fn set_store_state(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    axum::extract::Query(query): axum::extract::Query<StateQuery>,
) -> Response {
    match query.state.as_str() {
        "Offline" => delete_store(State(state), Path(id)).await,
        "Up" => {
            let mut c = lock(&state);
            let Some(store) = c.stores.get_mut(&id) else {
                return message(
                    StatusCode::NOT_FOUND,
                    &format!("[PD:core:ErrStoreNotFound]store {id} not found"),
                );
            };
            store.offline = false;
            c.pd_log(
                "INFO",
                "cluster.go",
                "store has changed to up",
                &[("store-id", id.to_string())],
            );
            message(StatusCode::OK, "The store's state is updated.")
        }
        other => message(StatusCode::BAD_REQUEST, &format!("invalid state {other}")),
    }
}

async fn region(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    let c = lock(&state);
    match c.regions.iter().find(|r| r.id == id) {
        Some(r) => compact_text(serde_json::to_string(&region_out(&c, r)).unwrap_or_default()),
        // v8.5 answers an unknown id with a zero region.
        None => compact_text(
            json!({ "id": 0, "start_key": "", "end_key": "", "leader": { "role_name": "" }, "cpu_usage": 0, "approximate_size": 0 }).to_string(),
        ),
    }
}

/// Whether `region` is in PD's region check `kind` ("down-peer", ...): the same answer for
/// the check's list and for its count in `pd_regions_status`.
fn in_region_check(c: &Cluster, kind: &str, region: &SimRegion) -> bool {
    match kind {
        "down-peer" => !c.down_peers(region).is_empty(),
        "miss-peer" => (region.peers.len() as u64) < c.config.max_replicas,
        "offline-peer" => region.peers.iter().any(|(_, s)| c.stores[s].offline),
        _ => false,
    }
}

async fn regions_check(State(state): State<Shared>, Path(kind): Path<String>) -> Response {
    let c = lock(&state);
    let regions: Vec<RegionOut> = c
        .regions
        .iter()
        .filter(|r| in_region_check(&c, &kind, r))
        .map(|r| region_out(&c, r))
        .collect();
    #[derive(serde::Serialize)]
    struct Regions {
        count: usize,
        regions: Vec<RegionOut>,
    }
    let answer = Regions {
        count: regions.len(),
        regions,
    };
    compact_text(serde_json::to_string(&answer).unwrap_or_default())
}

async fn health(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let members: Vec<Value> = c
        .pd
        .iter()
        .map(|p| json!({ "name": p.name, "member_id": p.member_id, "client_urls": [format!("http://{}:2379", p.name)], "health": p.serving() }))
        .collect();
    indented(StatusCode::OK, &json!(members))
}

fn member_json(p: &crate::model::SimPd) -> Value {
    json!({ "name": p.name, "member_id": p.member_id, "peer_urls": [format!("http://{}:2380", p.name)], "client_urls": [format!("http://{}:2379", p.name)] })
}

async fn members(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let mut body = json!({ "header": { "cluster_id": c.cluster_id }, "members": c.pd.iter().map(member_json).collect::<Vec<_>>() });
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

/// `POST /pd/api/v1/config/replicate {"max-replicas": N}`, as pd-ctl's `config set
/// max-replicas N` sends it. PD does not check N against the store count: a cluster asked for
/// more replicas than it has stores runs every region short, as here.
async fn set_replicate(State(state): State<Shared>, body: String) -> Response {
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let Some(replicas) = v["max-replicas"].as_u64().filter(|n| *n > 0) else {
        return message(
            StatusCode::BAD_REQUEST,
            "max-replicas must be a positive number",
        );
    };
    let mut c = lock(&state);
    c.config.max_replicas = replicas;
    c.pd_log(
        "INFO",
        "config.go",
        "replication config is updated",
        &[("max-replicas", replicas.to_string())],
    );
    message(StatusCode::OK, "The config is updated.")
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

/// PD's answer for an operator on a region it does not know.
fn region_not_found(region: u64) -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("[PD:region:ErrRegionNotFound]region {region} not found"),
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
                return region_not_found(region);
            };
            if !r.peers.iter().any(|(_, s)| *s == to) {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("region has no voter in store {to}"),
                );
            }
            let op = PendingOperator::TransferLeader {
                region,
                to_store: to,
            };
            if let Err(refused) = c.add_operator(op, "admin") {
                return message(StatusCode::INTERNAL_SERVER_ERROR, refused);
            }
            c.pd_log(
                "INFO",
                "operator_controller.go",
                "add operator",
                &[
                    ("region-id", region.to_string()),
                    ("operator", format!("admin-transfer-leader to store {to}")),
                ],
            );
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
                return region_not_found(region);
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
            let op = PendingOperator::TransferPeer {
                region,
                from_store: from,
                to_store: to,
            };
            if let Err(refused) = c.add_operator(op, "admin") {
                return message(StatusCode::INTERNAL_SERVER_ERROR, refused);
            }
            c.pd_log(
                "INFO",
                "operator_controller.go",
                "add operator",
                &[
                    ("region-id", region.to_string()),
                    (
                        "operator",
                        format!("admin-move-peer from store {from} to store {to}"),
                    ),
                ],
            );
            message(StatusCode::OK, "The operator is created.")
        }
        Some(_) => message(StatusCode::BAD_REQUEST, "unknown operator"),
        None => message(StatusCode::BAD_REQUEST, "missing operator name"),
    }
}

async fn list_operators(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let ops: Vec<&str> = c.operators.iter().map(|f| f.text.as_str()).collect();
    indented(StatusCode::OK, &json!(ops))
}

/// `GET /pd/api/v1/schedulers`: the names of the schedulers that run: PD's own (the v8.5
/// defaults unless removed), and evict-leader-scheduler while it evicts from some store.
async fn list_schedulers(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let mut names: Vec<&str> = c.schedulers.iter().map(String::as_str).collect();
    if !c.evict_leader.is_empty() {
        names.push("evict-leader-scheduler");
    }
    indented(StatusCode::OK, &json!(names))
}

/// `GET /pd/api/v1/scheduler-config/evict-slow-store-scheduler/list`: the store it evicts
/// leaders from, if any; 404 when the scheduler was removed.
async fn evict_slow_store_config(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    if !c.schedulers.contains(crate::model::EVICT_SLOW_STORE) {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    let stores: Vec<u64> = c.slow_evicted().into_iter().collect();
    indented(
        StatusCode::OK,
        &json!({ "evict-stores": stores, "recovery-duration": 1800, "batch": 3 }),
    )
}

/// `GET /pd/api/v1/scheduler-config/evict-leader-scheduler/list`: the stores it evicts from,
/// each with the whole key range (empty keys), and the batch; 404 without the scheduler.
async fn evict_leader_config(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    if c.evict_leader.is_empty() {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    let ranges: serde_json::Map<String, Value> = c
        .evict_leader
        .iter()
        .map(|id| (id.to_string(), json!([{ "start-key": "", "end-key": "" }])))
        .collect();
    indented(
        StatusCode::OK,
        &json!({ "store-id-ranges": ranges, "batch": crate::model::EVICT_LEADER_BATCH }),
    )
}

async fn add_scheduler(State(state): State<Shared>, body: String) -> Response {
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let name = v["name"].as_str().unwrap_or_default();
    if crate::model::DEFAULT_SCHEDULERS.contains(&name) {
        let mut c = lock(&state);
        if !c.schedulers.insert(name.to_string()) {
            return message(
                StatusCode::BAD_REQUEST,
                "[PD:scheduler:ErrSchedulerExisted]scheduler existed",
            );
        }
        c.pd_log(
            "INFO",
            "scheduler_controller.go",
            "add scheduler",
            &[("name", name.into())],
        );
        return message(StatusCode::OK, "The scheduler is created.");
    }
    if name != "evict-leader-scheduler" {
        return message(StatusCode::BAD_REQUEST, "unknown scheduler");
    }
    let Some(store) = v["store_id"].as_u64() else {
        return message(StatusCode::BAD_REQUEST, "missing store id");
    };
    let mut c = lock(&state);
    let first = c.evict_leader.is_empty();
    c.evict_leader.insert(store);
    c.pd_log(
        "INFO",
        "scheduler_controller.go",
        "add scheduler",
        &[
            ("name", "evict-leader-scheduler".into()),
            ("store-id", store.to_string()),
        ],
    );
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
    if c.schedulers.remove(&name) {
        c.pd_log(
            "INFO",
            "scheduler_controller.go",
            "remove scheduler",
            &[("name", name.clone())],
        );
        return message(StatusCode::OK, "The scheduler is removed.");
    }
    match name
        .strip_prefix("evict-leader-scheduler-")
        .and_then(|id| id.parse::<u64>().ok())
    {
        Some(id) if c.evict_leader.remove(&id) => {
            c.pd_log(
                "INFO",
                "scheduler_controller.go",
                "remove store from scheduler",
                &[
                    ("name", "evict-leader-scheduler".into()),
                    ("store-id", id.to_string()),
                ],
            );
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                "null\n",
            )
                .into_response()
        }
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

/// `/sim/store/{id}/{kill|stop|restart|slow|fast|hot|cool}` and
/// `/sim/pd/{name}/{kill|stop|restart|pause|resume}` (kill is SIGKILL, stop SIGTERM, pause
/// SIGSTOP).
async fn control(
    State(state): State<Shared>,
    Path((kind, id, verb)): Path<(String, String, String)>,
) -> Response {
    let mut c = lock(&state);
    match kind.as_str() {
        "store" => {
            let Some(id) = id
                .parse::<u64>()
                .ok()
                .filter(|id| c.stores.contains_key(id))
            else {
                return message(StatusCode::NOT_FOUND, &format!("no store {id}"));
            };
            match verb.as_str() {
                "kill" => c.kill_store(id),
                "stop" => {
                    c.terminate(&format!("store-{id}"));
                }
                "restart" => c.restart_store(id),
                "slow" => c.set_slow(id, true),
                "fast" => c.set_slow(id, false),
                "disk-slow" => c.set_disk_slow(id, true),
                "disk-fast" => c.set_disk_slow(id, false),
                "hot" => c.hot_store = Some(id),
                "cool" => c.hot_store = None,
                _ => return message(StatusCode::NOT_FOUND, "unknown store control"),
            }
        }
        "pd" if verb == "pause" || verb == "resume" => {
            if !c.set_pd_paused(&id, verb == "pause") {
                return message(StatusCode::NOT_FOUND, &format!("no PD member {id}"));
            }
        }
        "pd" if verb == "stop" => {
            if !c.terminate(&id) {
                return message(StatusCode::NOT_FOUND, &format!("no PD member {id}"));
            }
        }
        "pd" if verb == "kill" || verb == "restart" => {
            if !c.set_pd_alive(&id, verb == "restart") {
                return message(StatusCode::NOT_FOUND, &format!("no PD member {id}"));
            }
        }
        _ => return message(StatusCode::NOT_FOUND, "unknown control"),
    }
    message(StatusCode::OK, "done")
}

/// `/sim/process/{node}`: what a process supervisor would say of a store or PD member: running,
/// or exited with its status (0 after SIGTERM: stopped deliberately).
async fn process_state(State(state): State<Shared>, Path(node): Path<String>) -> Response {
    let c = lock(&state);
    match process_json(&c, &node) {
        Some(described) => indented(StatusCode::OK, &described),
        None => message(StatusCode::NOT_FOUND, &format!("no node {node}")),
    }
}

/// `/sim/processes`: every store and PD member by name, as `/sim/process/{node}` says each.
async fn processes(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let names =
        c.pd.iter()
            .map(|p| p.name.clone())
            .chain(c.stores.keys().map(|id| format!("store-{id}")));
    let all: serde_json::Map<String, Value> = names
        .filter_map(|name| Some((name.clone(), process_json(&c, &name)?)))
        .collect();
    indented(StatusCode::OK, &all)
}

fn process_json(c: &Cluster, node: &str) -> Option<Value> {
    let running = c.is_running(node)?;
    let exit = c.exits.get(node).filter(|_| !running);
    Some(json!({
        "state": match (running, c.is_paused(node)) {
            (true, true) => "stopped",
            (true, false) => "running",
            (false, _) => "exited",
        },
        "exit_code": exit.map(|e| e.code()),
        "stopped_deliberately": (exit == Some(&crate::model::Exit::Clean)).then_some(true),
    }))
}

/// `/sim/world`: the whole cluster as the model holds it, for the generated eval's harm
/// oracle (never for the operator: PD's and the stores' own APIs are what it reads).
async fn world(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    indented(StatusCode::OK, &crate::disturb::world_of(&c))
}

#[derive(serde::Deserialize)]
struct LogQuery {
    lines: Option<usize>,
}

/// `/sim/log/{node}?lines=N`: the node's last log lines, one per line (what `docker logs
/// --tail N` would print).
async fn node_log(
    State(state): State<Shared>,
    Path(node): Path<String>,
    axum::extract::Query(query): axum::extract::Query<LogQuery>,
) -> Response {
    let c = lock(&state);
    let known = c.pd.iter().any(|p| p.name == node)
        || node
            .strip_prefix("store-")
            .and_then(|id| id.parse::<u64>().ok())
            .is_some_and(|id| c.stores.contains_key(&id));
    if !known {
        return message(StatusCode::NOT_FOUND, &format!("no node {node}"));
    }
    let lines = c
        .logs
        .get(&node)
        .map(|l| l.iter().collect::<Vec<_>>())
        .unwrap_or_default();
    let skip = lines.len().saturating_sub(query.lines.unwrap_or(50));
    let body: String = lines[skip..].iter().map(|l| format!("{l}\n")).collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn text_metrics(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

/// PD's own metrics, with the names the subject reads (pd-api.md §4.2, v8.5.4's labels).
async fn metrics(State(state): State<Shared>) -> Response {
    let c = lock(&state);
    let count = |name: StoreState| {
        c.stores
            .values()
            .filter(|s| c.state_name(s) == name)
            .count()
    };
    let mut body = String::from("# TYPE pd_cluster_status gauge\n");
    for (kind, n) in [
        ("store_up_count", count(StoreState::Up)),
        ("store_disconnected_count", count(StoreState::Disconnected)),
        ("store_down_count", count(StoreState::Down)),
        ("store_offline_count", count(StoreState::Offline)),
    ] {
        body.push_str(&format!("pd_cluster_status{{type=\"{kind}\"}} {n}\n"));
    }
    body.push_str(&format!(
        "pd_cluster_status{{type=\"region_count\"}} {}\n",
        c.regions.len()
    ));
    body.push_str("# TYPE pd_regions_status gauge\n");
    for kind in ["miss-peer", "down-peer", "pending-peer", "offline-peer"] {
        let n = c
            .regions
            .iter()
            .filter(|r| in_region_check(&c, kind, r))
            .count();
        body.push_str(&format!(
            "pd_regions_status{{type=\"{kind}-region-count\"}} {n}\n"
        ));
    }
    text_metrics(body)
}

/// One store's status server: the TiKV metrics of pd-api.md §4.3 from its own counters.
async fn store_metrics(State((state, id)): State<(Shared, u64)>) -> Response {
    store_metrics_text(&state, id)
}

/// `/sim-store/{id}/metrics`: what an external store process serves as its own `/metrics`.
async fn external_store_metrics(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    store_metrics_text(&state, id)
}

#[derive(serde::Deserialize)]
pub struct ExternalHeartbeat {
    pub started_ms: u64,
    pub status_address: String,
}

/// `/sim-store/{id}/heartbeat`: an external store process says it runs.
async fn external_heartbeat(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    axum::Json(beat): axum::Json<ExternalHeartbeat>,
) -> Response {
    let mut c = lock(&state);
    if !c.config.external_stores {
        return message(
            StatusCode::CONFLICT,
            "this simulator runs its stores itself (start it with --external-stores)",
        );
    }
    if c.external_heartbeat(id, beat.started_ms, &beat.status_address) {
        message(StatusCode::OK, "ok")
    } else {
        message(StatusCode::NOT_FOUND, &format!("no store {id}"))
    }
}

fn store_metrics_text(state: &Shared, id: u64) -> Response {
    let c = lock(state);
    let Some(s) = c.stores.get(&id) else {
        return message(StatusCode::NOT_FOUND, "no such store");
    };
    let load = c.load();
    let counters = &c.counters_at(id, state.time.now_ms(), &load);
    let leader_missing = c
        .regions
        .iter()
        .filter(|r| r.leader.is_none() && r.peers.iter().any(|(_, store)| *store == id))
        .count();
    let mut body = format!(
        "# TYPE tikv_raftstore_region_count gauge\n\
         tikv_raftstore_region_count{{type=\"region\"}} {}\n\
         tikv_raftstore_region_count{{type=\"leader\"}} {}\n\
         # TYPE tikv_raftstore_leader_missing gauge\n\
         tikv_raftstore_leader_missing {leader_missing}\n\
         # TYPE tikv_raftstore_slow_score gauge\n\
         tikv_raftstore_slow_score{{type=\"disk\"}} {}\n\
         # TYPE tikv_storage_command_total counter\n\
         tikv_storage_command_total{{type=\"raw_get\"}} {:.0}\n\
         tikv_storage_command_total{{type=\"raw_put\"}} {:.0}\n\
         # TYPE tikv_store_size_bytes gauge\n\
         tikv_store_size_bytes{{type=\"capacity\"}} 103865303040\n\
         tikv_store_size_bytes{{type=\"available\"}} 55201177600\n\
         # TYPE tikv_raftstore_append_log_duration_seconds histogram\n",
        load.peers_on(id),
        load.leaders_on(id),
        c.slow_score(s),
        counters.commands * 0.7,
        counters.commands * 0.3,
    );
    let (fast, slow) = (counters.fast_appends.round(), counters.slow_appends.round());
    for (le, count) in [
        ("0.005", fast),
        ("0.05", fast),
        ("0.5", fast),
        ("1", fast + slow),
        ("+Inf", fast + slow),
    ] {
        body.push_str(&format!(
            "tikv_raftstore_append_log_duration_seconds_bucket{{le=\"{le}\"}} {count}\n"
        ));
    }
    body.push_str(&format!(
        "tikv_raftstore_append_log_duration_seconds_sum {}\n\
         tikv_raftstore_append_log_duration_seconds_count {}\n",
        fast * crate::model::FAST_APPEND_SECONDS + slow * crate::model::SLOW_APPEND_SECONDS,
        fast + slow
    ));
    text_metrics(body)
}

pub(crate) fn store_router(state: Shared, id: u64) -> Router {
    Router::new()
        .route("/metrics", get(store_metrics))
        .route("/status", get(|| async { StatusCode::OK }))
        .with_state((state, id))
}

/// Serves store `id`'s status server on `address` while the store is alive: a killed store
/// refuses connections, as a dead process does, and a restarted one listens again.
async fn serve_store_status(
    state: Shared,
    id: u64,
    address: SocketAddr,
    first: tokio::net::TcpListener,
) {
    let alive = |state: &Shared| lock(state).stores.get(&id).is_some_and(|s| s.alive);
    let mut listener = Some(first);
    loop {
        while !alive(&state) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let bound = match listener.take() {
            Some(l) => l,
            None => match tokio::net::TcpListener::bind(address).await {
                Ok(l) => l,
                Err(_) => {
                    // The port is briefly taken; the store stays unreachable until it is free.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let server =
            tokio::spawn(axum::serve(bound, store_router(state.clone(), id)).into_future());
        while alive(&state) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.abort();
        let _ = server.await;
    }
}

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/pd/api/v1/stores", get(stores))
        .route("/pd/api/v1/store/{id}", get(store).delete(delete_store))
        .route("/pd/api/v1/store/{id}/state", post(set_store_state))
        .route("/pd/api/v1/region/id/{id}", get(region))
        .route("/pd/api/v1/regions/check/{kind}", get(regions_check))
        .route("/pd/api/v1/health", get(health))
        .route("/pd/api/v1/members", get(members))
        .route("/pd/api/v1/leader", get(leader))
        .route(
            "/pd/api/v1/config/replicate",
            get(replicate).post(set_replicate),
        )
        .route("/pd/api/v1/config/schedule", get(schedule))
        .route(
            "/pd/api/v1/operators",
            post(create_operator).get(list_operators),
        )
        .route(
            "/pd/api/v1/schedulers",
            post(add_scheduler).get(list_schedulers),
        )
        .route(
            "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
            get(evict_leader_config),
        )
        .route(
            "/pd/api/v1/scheduler-config/evict-slow-store-scheduler/list",
            get(evict_slow_store_config),
        )
        .route("/pd/api/v1/schedulers/{name}", delete(remove_scheduler))
        .route("/sim/{kind}/{id}/{verb}", post(control))
        .route("/sim/log/{node}", get(node_log))
        .route("/sim/process/{node}", get(process_state))
        .route("/sim/processes", get(processes))
        .route("/sim/world", get(world))
        .route("/sim-store/{id}/heartbeat", post(external_heartbeat))
        .route("/sim-store/{id}/metrics", get(external_store_metrics))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Moves the model to the clock's now every `tick`, for as long as the task runs.
pub(crate) async fn ticking(state: Shared, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    loop {
        interval.tick().await;
        let now = state.time.now_ms();
        lock(&state).tick(now);
    }
}

/// A running simulator: its address, and a task ticking the model.
pub struct Simulator {
    pub address: SocketAddr,
    pub cluster: Arc<Mutex<Cluster>>,
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
        let time = TimeSource::default();
        let cluster = Arc::new(Mutex::new(Cluster::new(config, time.now_ms())));
        let state = Shared {
            cluster: cluster.clone(),
            time: time.clone(),
        };
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let app = router(state.clone());
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })];
        // External stores are processes of their own, each with its status server.
        let ids: Vec<u64> = {
            let c = lock(&state);
            let own = !c.config.external_stores;
            c.stores.keys().copied().filter(|_| own).collect()
        };
        for id in ids {
            let status = tokio::net::TcpListener::bind((listen.ip(), 0)).await?;
            let status_address = status.local_addr()?;
            if let Some(store) = lock(&state).stores.get_mut(&id) {
                store.status_address = status_address.to_string();
            }
            tasks.push(tokio::spawn(serve_store_status(
                state.clone(),
                id,
                status_address,
                status,
            )));
        }
        tasks.push(tokio::spawn(ticking(state, tick)));
        Ok(Self {
            address,
            cluster,
            tasks,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}
