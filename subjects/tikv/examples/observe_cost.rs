//! What one TiKV observation costs against the simulator on loopback: PD's stores, health,
//! leader, config and three region checks, PD's /metrics and every store's status server.
//! `cargo run --release -p operator-tikv --example observe_cost` prints p50/p90/max over 400
//! observations (the default tick is 250 ms, so this is the share of a tick spent observing).

use std::time::{Duration, Instant};

use operator_protocol::Subject;
use operator_tikv::subject::{TikvOptions, TikvSubject};
use operator_tikv_sim::model::SimConfig;
use operator_tikv_sim::server::Simulator;

#[tokio::main]
async fn main() {
    let sim = Simulator::start(
        SimConfig::demo(),
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let subject = TikvSubject::new(TikvOptions::simulator(&sim.url())).unwrap();
    for _ in 0..20 {
        subject.observe().await.unwrap();
    }
    let mut took: Vec<Duration> = Vec::new();
    for _ in 0..400 {
        let started = Instant::now();
        subject.observe().await.unwrap();
        took.push(started.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
    println!(
        "observe: p50 {:?}  p90 {:?}  max {:?}  ({} observations, 3 stores, 300 regions)",
        at(0.5),
        at(0.9),
        took[took.len() - 1],
        took.len()
    );
}
