//! The PD-compatible simulator, seen only through the PD client over HTTP, as the subject will:
//! a healthy cluster, a killed store going Disconnected then Down while its leaders move, PD's
//! refusal to take a store out when too few would remain, operators and evict-leader taking
//! effect, PD losing its leader when a majority of members is gone, and max-replicas set past
//! the store count.

use std::time::{Duration, Instant};

use operator_tikv::pd::*;
use operator_tikv_sim::model::SimConfig;
use operator_tikv_sim::server::Simulator;

fn fast() -> SimConfig {
    SimConfig {
        regions: 60,
        disconnect_after_ms: 1_000,
        peer_down_after_ms: 2_000,
        down_after_ms: 3_000,
        election_timeout_ms: 300,
        ..SimConfig::default()
    }
}

async fn start() -> (Simulator, PdClient) {
    let sim = Simulator::start(
        fast(),
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let pd = PdClient::new(vec![sim.url()]).unwrap();
    (sim, pd)
}

async fn control(sim: &Simulator, path: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/sim/{path}", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

async fn eventually<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_healthy_simulated_cluster_reads_like_pd() {
    let (_sim, pd) = start().await;
    let stores = pd.stores().await.unwrap();
    assert_eq!(stores.count, 3);
    assert!(
        stores
            .stores
            .iter()
            .all(|s| s.store.state_name == StoreState::Up && s.store.node_state == 1)
    );
    assert_eq!(
        stores
            .stores
            .iter()
            .map(|s| s.status.leader_count)
            .sum::<u64>(),
        60
    );
    assert!(
        stores.stores.iter().all(|s| s.status.region_count == 60),
        "3 replicas over 3 stores"
    );
    assert_eq!(pd.max_replicas().await.unwrap(), 3);
    assert_eq!(pd.leader().await.unwrap().unwrap().name, "pd1");
    assert!(
        pd.members()
            .await
            .unwrap()
            .members
            .iter()
            .all(|m| m.member_id > i64::MAX as u64)
    );
    assert_eq!(pd.store(9).await.unwrap_err().status, Some(404));
    assert_eq!(pd.region(2).await.unwrap().unwrap().peers.len(), 3);
    assert_eq!(pd.region(999_999).await.unwrap(), None);
}

#[tokio::test]
async fn a_killed_store_goes_disconnected_then_down_while_others_take_its_leaders() {
    let (sim, pd) = start().await;
    control(&sim, "store/1/kill").await;
    eventually(
        "the other stores to lead every region",
        Duration::from_secs(3),
        async || {
            let others = pd.store(2).await.unwrap().status.leader_count
                + pd.store(3).await.unwrap().status.leader_count;
            (others == 60).then_some(())
        },
    )
    .await;
    // As in PD, a silent store's stats are those of its last heartbeat.
    assert!(pd.store(1).await.unwrap().status.leader_count > 0);
    eventually("Disconnected", Duration::from_secs(3), async || {
        (pd.store(1).await.unwrap().store.state_name == StoreState::Disconnected).then_some(())
    })
    .await;
    // Region leaders report a peer down only after max-peer-down-duration, later than PD
    // calls its store Disconnected.
    let early = pd.regions_check(RegionCheck::DownPeer).await.unwrap();
    assert!(early.len() < 60, "down peers already at Disconnected");
    let down = eventually("down peers", Duration::from_secs(3), async || {
        let down = pd.regions_check(RegionCheck::DownPeer).await.unwrap();
        (!down.is_empty()).then_some(down)
    })
    .await;
    assert_eq!(down.len(), 60, "every region has a replica on store 1");
    assert_eq!(down[0].down_peers[0].peer.store_id, 1);
    eventually("Down", Duration::from_secs(5), async || {
        (pd.store(1).await.unwrap().store.state_name == StoreState::Down).then_some(())
    })
    .await;
    let refused = pd.delete_store(2).await.unwrap_err();
    assert_eq!(refused.status, Some(400));
    assert!(refused.message.contains("ErrStoresNotEnough"), "{refused}");
    control(&sim, "store/1/restart").await;
    eventually("Up again", Duration::from_secs(3), async || {
        (pd.store(1).await.unwrap().store.state_name == StoreState::Up).then_some(())
    })
    .await;
}

#[tokio::test]
async fn operators_and_evict_leader_take_effect_over_ticks() {
    let (_sim, pd) = start().await;
    let defaults = [
        "balance-hot-region-scheduler",
        "balance-leader-scheduler",
        "balance-region-scheduler",
        "evict-slow-store-scheduler",
    ];
    assert_eq!(
        pd.schedulers().await.unwrap(),
        defaults,
        "PD v8.5's defaults"
    );
    assert!(
        pd.evict_leader_stores().await.unwrap().is_empty(),
        "404 is none"
    );
    assert_eq!(
        pd.add_evict_leader(2).await.unwrap(),
        "The scheduler is created."
    );
    assert!(
        pd.schedulers()
            .await
            .unwrap()
            .contains(&"evict-leader-scheduler".to_string())
    );
    assert_eq!(pd.evict_leader_stores().await.unwrap(), [2]);
    eventually(
        "store 2 drained of leaders",
        Duration::from_secs(3),
        async || (pd.store(2).await.unwrap().status.leader_count == 0).then_some(()),
    )
    .await;
    pd.remove_evict_leader(2).await.unwrap();
    assert_eq!(
        pd.schedulers().await.unwrap(),
        defaults,
        "the last store removes it"
    );
    let region = pd.region(2).await.unwrap().unwrap();
    assert_eq!(
        pd.transfer_leader(region.id, 2).await.unwrap(),
        "The operator is created."
    );
    eventually(
        "the leader on store 2",
        Duration::from_secs(3),
        async || (pd.region(2).await.unwrap().unwrap().leader.store_id == 2).then_some(()),
    )
    .await;
    let bad = pd.transfer_leader(999_999, 2).await.unwrap_err();
    assert!(bad.message.contains("ErrRegionNotFound"));
}

#[tokio::test]
async fn pd_without_a_majority_has_no_leader() {
    let (sim, pd) = start().await;
    control(&sim, "pd/pd1/kill").await;
    assert_eq!(
        pd.leader().await.unwrap().unwrap().name,
        "pd2",
        "a majority remains: pd2 leads"
    );
    control(&sim, "pd/pd2/kill").await;
    assert_eq!(pd.leader().await.unwrap(), None);
    assert!(
        pd.health()
            .await
            .unwrap()
            .iter()
            .filter(|h| h.health)
            .count()
            == 1
    );
}

async fn get(url: &str) -> Result<String, reqwest::Error> {
    reqwest::Client::new().get(url).send().await?.text().await
}

#[tokio::test]
async fn each_store_serves_tikv_metrics_at_its_status_address_only_while_alive() {
    let (sim, pd) = start().await;
    let store = pd.store(2).await.unwrap();
    let status = store
        .store
        .status_address
        .expect("PD reports the status address");
    let url = format!("http://{status}/metrics");
    let text = get(&url).await.unwrap();
    let scrape = operator_tikv::metrics::store_scrape(
        &operator_tikv::metrics::samples(&text, "store-2", &[]).unwrap(),
    );
    assert_eq!(
        scrape.regions,
        Some(60.0),
        "every store holds a replica of each region"
    );
    assert_eq!(
        scrape.leaders,
        Some(pd.store(2).await.unwrap().status.leader_count as f64)
    );
    assert!(text.contains("tikv_raftstore_append_log_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(get(&format!("http://{status}/status")).await.is_ok());

    control(&sim, "store/2/kill").await;
    eventually(
        "the dead store's status port to refuse connections",
        Duration::from_secs(5),
        async || get(&url).await.err().filter(|e| e.is_connect()),
    )
    .await;
    control(&sim, "store/2/restart").await;
    let again = eventually(
        "the restarted store to listen again",
        Duration::from_secs(5),
        async || get(&url).await.ok(),
    )
    .await;
    let restarted = operator_tikv::metrics::store_scrape(
        &operator_tikv::metrics::samples(&again, "store-2", &[]).unwrap(),
    );
    assert!(
        restarted.commands.unwrap_or(0.0) < scrape.commands.unwrap_or(0.0) + 1.0,
        "a new process counts from zero"
    );
}

#[tokio::test]
async fn nodes_keep_logs_in_tikvs_format_that_the_sim_target_tails() {
    use operator_protocol::{DeploymentTarget, NodeId};
    let (sim, _pd) = start().await;
    let target = operator_tikv_sim::target::SimTarget::for_simulator(&sim.url(), &fast());
    control(&sim, "store/3/kill").await;
    let pd_log = eventually(
        "PD to log the silent store",
        Duration::from_secs(5),
        async || {
            let lines = target.tail_logs(&NodeId::from("pd1"), 20).await.unwrap();
            lines
                .iter()
                .any(|l| l.contains("store disconnected"))
                .then_some(lines)
        },
    )
    .await;
    let line = pd_log
        .iter()
        .find(|l| l.contains("store disconnected"))
        .unwrap();
    assert!(
        line.starts_with('[') && line.contains("] [WARN] ") && line.contains("[store-id=3]"),
        "{line}"
    );
    let store_log = target.tail_logs(&NodeId::from("store-1"), 1).await.unwrap();
    assert_eq!(store_log.len(), 1, "{store_log:?}");
    let unknown = target
        .tail_logs(&NodeId::from("store-9"), 5)
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no node store-9"), "{unknown}");
}

/// `pd-ctl config set max-replicas 5` on three stores: PD takes it, and every region now
/// misses peers it cannot place (the unknown-fault suite's configuration mistake).
#[tokio::test]
async fn max_replicas_set_past_the_store_count_leaves_every_region_short() {
    let (sim, pd) = start().await;
    assert!(
        pd.regions_check(RegionCheck::MissPeer)
            .await
            .unwrap()
            .is_empty()
    );
    let set = |replicas: u64| {
        reqwest::Client::new()
            .post(format!("{}/pd/api/v1/config/replicate", sim.url()))
            .json(&serde_json::json!({ "max-replicas": replicas }))
            .send()
    };
    assert!(set(5).await.unwrap().status().is_success());
    assert_eq!(pd.max_replicas().await.unwrap(), 5);
    assert_eq!(
        pd.regions_check(RegionCheck::MissPeer).await.unwrap().len(),
        60
    );
    assert!(set(3).await.unwrap().status().is_success());
    assert!(
        pd.regions_check(RegionCheck::MissPeer)
            .await
            .unwrap()
            .is_empty()
    );
    let refused = reqwest::Client::new()
        .post(format!("{}/pd/api/v1/config/replicate", sim.url()))
        .body("{\"max-replicas\": 0}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}
