//! An engine process over the in-test subject, for tests that must kill an engine with
//! SIGKILL mid-action: node n2 is down and its restart takes a minute.
//! Usage: fake_engine DB_PATH

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::NodeId;
use operator_tui::brains::RulesBrain;
use operator_tui::clock::SystemClock;
use operator_tui::engine::{Engine, EngineConfig};
use operator_tui::model::Mode;
use operator_tui::store::Store;
use operator_tui::testing as fake;

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    let db = std::env::args().nth(1).expect("usage: fake_engine DB_PATH");
    let subject = fake::FakeSubject::new(&["n1", "n2", "n3"]);
    subject.with(|s| s.restart_delay = Duration::from_secs(60));
    subject.set_healthy("n2", false);
    let nodes = ["n1", "n2", "n3"].map(NodeId::from).to_vec();
    let config = EngineConfig {
        tick: Duration::from_millis(20),
        mode: Some(Mode::Execute),
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        Arc::new(subject),
        Arc::new(fake::FakeTarget(nodes)),
        Arc::new(RulesBrain),
        Store::open(std::path::Path::new(&db))?,
        Arc::new(SystemClock),
        config,
    );
    let handle = engine.start();
    tokio::time::sleep(Duration::from_secs(120)).await;
    handle.shutdown().await
}
