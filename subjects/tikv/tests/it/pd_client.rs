//! The PD client against PD's exact byte shapes (reference pd-api.md), served from loopback:
//! indented JSON with a trailing newline, region endpoints as compact octet-stream, omitted zero
//! fields, u64 ids above 2^63, errors as JSON strings, errcode objects and plain text, and a
//! follower without a leader answering 503.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use operator_tikv::pd::*;

const JSON: &str = "application/json; charset=UTF-8";
const STREAM: &str = "application/octet-stream";

const STORES: &str = r#"{
  "count": 3,
  "stores": [
    {
      "store": {
        "id": 1,
        "address": "tikv1:20160",
        "version": "8.5.0",
        "peer_address": "tikv1:20160",
        "status_address": "tikv1:20180",
        "git_hash": "58d231bccb4fb188bb697905ee4faf086c4ac931",
        "start_timestamp": 1755770000,
        "deploy_path": "/",
        "last_heartbeat": 1755770470896421303,
        "node_state": 1,
        "state_name": "Up"
      },
      "status": {
        "capacity": "96.73GiB",
        "available": "51.41GiB",
        "used_size": "292.5MiB",
        "leader_count": 16,
        "leader_weight": 1,
        "leader_score": 16,
        "leader_size": 16,
        "region_count": 56,
        "region_weight": 1,
        "region_score": 617.7285926370704,
        "region_size": 56,
        "slow_score": 1,
        "start_ts": "2025-08-21T09:53:20Z",
        "last_heartbeat_ts": "2025-08-21T10:01:10.896421303Z",
        "uptime": "7m50.896421303s",
        "pause_leader_transfer_in": true
      }
    },
    {
      "store": {
        "id": 4,
        "address": "tikv2:20160",
        "version": "8.5.0",
        "last_heartbeat": 1755770400000000000,
        "node_state": 1,
        "state_name": "Disconnected"
      },
      "status": {
        "capacity": "0B",
        "available": "0B",
        "last_heartbeat_ts": "1970-01-01T00:00:00Z"
      }
    },
    {
      "store": {
        "id": 5,
        "address": "tikv3:20160",
        "state": 1,
        "node_state": 2,
        "state_name": "Offline",
        "physically_destroyed": true
      },
      "status": {
        "capacity": "96.73GiB",
        "available": "60GiB",
        "region_count": 3,
        "pending_peer_count": 2,
        "last_heartbeat_ts": "2025-08-21T10:01:10Z"
      }
    }
  ]
}
"#;

const REGION: &str = r#"{"id":2,"start_key":"","end_key":"757365727461626C653A75736572383337","epoch":{"conf_ver":5,"version":3},"peers":[{"role_name":"Voter","id":3,"store_id":1},{"role_name":"Voter","id":47,"store_id":4},{"role_name":"Voter","id":52,"store_id":5}],"leader":{"role_name":"Voter","id":3,"store_id":1},"down_peers":[{"peer":{"role_name":"Voter","id":52,"store_id":5},"down_seconds":612}],"pending_peers":[{"role_name":"Voter","id":52,"store_id":5}],"cpu_usage":0,"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":96,"approximate_keys":851000,"approximate_kv_size":90}"#;

const ZERO_REGION: &str = r#"{"id":0,"start_key":"","end_key":"","leader":{"role_name":""},"cpu_usage":0,"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":0,"approximate_keys":0,"approximate_kv_size":0}"#;

const MEMBERS: &str = r#"{
  "header": {
    "cluster_id": 7404148478451254763
  },
  "members": [
    {
      "name": "pd1",
      "member_id": 13195394291058371180,
      "peer_urls": ["http://pd1:2380"],
      "client_urls": ["http://pd1:2379"],
      "deploy_path": "/",
      "binary_version": "v8.5.0",
      "git_hash": "abc"
    }
  ],
  "leader": {
    "name": "pd1",
    "member_id": 13195394291058371180,
    "peer_urls": ["http://pd1:2380"],
    "client_urls": ["http://pd1:2379"]
  }
}
"#;

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> impl IntoResponse + Clone {
    (status, [(header::CONTENT_TYPE, content_type)], body)
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// A PD leader with the shapes above; it records operator bodies.
async fn leader(bodies: Arc<Mutex<Vec<serde_json::Value>>>) -> String {
    let router = Router::new()
        .route("/pd/api/v1/stores", get(|| async { reply(StatusCode::OK, JSON, STORES) }))
        .route("/pd/api/v1/store/9", get(|| async { reply(StatusCode::NOT_FOUND, JSON, "\"[PD:core:ErrStoreNotFound]store 9 not found\"\n") }))
        .route(
            "/pd/api/v1/store/1",
            delete(|| async {
                reply(StatusCode::BAD_REQUEST, JSON, "\"[PD:core:ErrStoresNotEnough]can not remove store 1 since the number of up stores would be 2 while need 3\"\n")
            }),
        )
        .route("/pd/api/v1/region/id/2", get(|| async { reply(StatusCode::OK, STREAM, REGION) }))
        .route("/pd/api/v1/region/id/999", get(|| async { reply(StatusCode::OK, STREAM, ZERO_REGION) }))
        .route("/pd/api/v1/regions/check/down-peer", get(|| async { reply(StatusCode::OK, STREAM, r#"{"count":1,"regions":["#) }))
        .route("/pd/api/v1/regions/check/miss-peer", get(|| async { reply(StatusCode::OK, STREAM, r#"{"count":0,"regions":[]}"#) }))
        .route("/pd/api/v1/members", get(|| async { reply(StatusCode::OK, JSON, MEMBERS) }))
        .route("/pd/api/v1/leader", get(|| async { reply(StatusCode::OK, JSON, "null\n") }))
        .route("/pd/api/v1/config/replicate", get(|| async { reply(StatusCode::OK, JSON, "{\n  \"max-replicas\": 3,\n  \"location-labels\": \"\",\n  \"enable-placement-rules\": \"true\"\n}\n") }))
        .route("/pd/api/v1/config/schedule", get(|| async { reply(StatusCode::OK, JSON, "{\n  \"max-store-down-time\": \"30m0s\",\n  \"leader-schedule-limit\": 4\n}\n") }))
        .route(
            "/pd/api/v1/operators",
            post(move |body: Bytes| {
                let bodies = bodies.clone();
                async move {
                    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let known = value["region_id"] == 2;
                    bodies.lock().unwrap().push(value);
                    if known {
                        reply(StatusCode::OK, JSON, "\"The operator is created.\"\n")
                    } else {
                        reply(StatusCode::INTERNAL_SERVER_ERROR, JSON, "\"[PD:region:ErrRegionNotFound]region 9 not found\"\n")
                    }
                }
            }),
        )
        .route(
            "/pd/api/v1/store/abc",
            get(|| async {
                reply(StatusCode::BAD_REQUEST, JSON, "{\n  \"code\": \"input\",\n  \"msg\": \"strconv.ParseUint: parsing \\\"abc\\\": invalid syntax\",\n  \"data\": {}\n}\n")
            }),
        );
    serve(router).await
}

/// A follower that knows no leader: every request gets PD's plain-text 503.
async fn lost_follower() -> String {
    let router = Router::new().fallback(|| async {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader\n",
        )
    });
    serve(router).await
}

async fn client() -> (PdClient, Arc<Mutex<Vec<serde_json::Value>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let follower = lost_follower().await;
    let leader = leader(bodies.clone()).await;
    // The follower comes first: the client must move on to a member that can answer.
    (PdClient::new(vec![follower, leader]).unwrap(), bodies)
}

#[tokio::test]
async fn stores_parse_with_omitted_zero_fields_string_sizes_and_newer_fields() {
    let (pd, _) = client().await;
    let stores = pd.stores().await.unwrap();
    assert_eq!(stores.count, 3);
    let up = &stores.stores[0];
    assert_eq!(
        (up.store.id, up.store.state, up.store.state_name.as_str()),
        (1, 0, "Up"),
        "state 0 is omitted"
    );
    assert_eq!(up.store.status_address.as_deref(), Some("tikv1:20180"));
    assert_eq!(up.store.last_heartbeat, 1_755_770_470_896_421_303);
    assert_eq!(
        (
            up.status.leader_count,
            up.status.region_count,
            up.status.slow_score
        ),
        (16, 56, Some(1))
    );
    assert_eq!(parse_byte_size(&up.status.capacity), Some(103_863_046_636));
    let silent = &stores.stores[1];
    assert_eq!(
        (
            silent.store.state_name.as_str(),
            silent.status.leader_count,
            silent.store.status_address.clone()
        ),
        ("Disconnected", 0, None)
    );
    let draining = &stores.stores[2];
    assert_eq!(
        (
            draining.store.state,
            draining.store.node_state,
            draining.store.physically_destroyed
        ),
        (1, 2, true)
    );
    assert_eq!(draining.status.pending_peer_count, 2);
}

#[tokio::test]
async fn errors_are_read_from_json_strings_errcode_objects_and_plain_text() {
    let (pd, _) = client().await;
    let missing = pd.store(9).await.unwrap_err();
    assert_eq!(
        (missing.status, missing.message.as_str()),
        (Some(404), "[PD:core:ErrStoreNotFound]store 9 not found")
    );
    let refused = pd.delete_store(1).await.unwrap_err();
    assert_eq!(refused.status, Some(400));
    assert!(refused.message.contains("ErrStoresNotEnough"), "{refused}");
    assert_eq!(
        error_message("{\n  \"code\": \"input\",\n  \"msg\": \"bad id\",\n  \"data\": {}\n}\n"),
        "input: bad id"
    );
    assert_eq!(error_message("404 page not found\n"), "404 page not found");

    let nobody = PdClient::new(vec![lost_follower().await]).unwrap();
    let error = nobody.stores().await.unwrap_err();
    assert_eq!(error.status, Some(503));
    assert!(error.message.contains("ErrRedirectNoLeader"), "{error}");
}

#[tokio::test]
async fn region_endpoints_answer_octet_stream_and_unknown_regions_are_none() {
    let (pd, _) = client().await;
    let region = pd.region(2).await.unwrap().unwrap();
    assert_eq!(region.peers.len(), 3);
    assert_eq!(region.leader.store_id, 1);
    assert_eq!(
        (
            region.down_peers[0].peer.store_id,
            region.down_peers[0].down_seconds
        ),
        (5, 612)
    );
    assert_eq!(region.pending_peers[0].id, 52);
    assert_eq!(
        pd.region(999).await.unwrap(),
        None,
        "v8.5's zero region means not found"
    );
    assert_eq!(
        pd.regions_check(RegionCheck::MissPeer).await.unwrap(),
        vec![]
    );
    let broken = pd.regions_check(RegionCheck::DownPeer).await.unwrap_err();
    assert!(broken.message.contains("unexpected shape"), "{broken}");
}

#[tokio::test]
async fn members_keep_u64_ids_above_2_63_and_a_missing_leader_is_none() {
    let (pd, _) = client().await;
    let members = pd.members().await.unwrap();
    assert_eq!(members.members[0].member_id, 13_195_394_291_058_371_180);
    assert_eq!(members.leader.unwrap().name, "pd1");
    assert_eq!(pd.leader().await.unwrap(), None);
    assert_eq!(pd.max_replicas().await.unwrap(), 3);
    assert_eq!(
        pd.max_store_down_time().await.unwrap(),
        std::time::Duration::from_secs(1800)
    );
}

#[tokio::test]
async fn operators_are_created_with_numeric_ids_and_failures_say_why() {
    let (pd, bodies) = client().await;
    assert_eq!(
        pd.transfer_leader(2, 4).await.unwrap(),
        "The operator is created."
    );
    let failed = pd.transfer_peer(9, 1, 4).await.unwrap_err();
    assert_eq!(failed.status, Some(500));
    assert!(failed.message.contains("ErrRegionNotFound"));
    let sent = bodies.lock().unwrap().clone();
    assert_eq!(
        sent[0],
        serde_json::json!({ "name": "transfer-leader", "region_id": 2, "to_store_id": 4 })
    );
    assert_eq!(sent[1]["from_store_id"], 1, "numbers stay JSON numbers");
}
