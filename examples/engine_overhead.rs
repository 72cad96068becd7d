//! The engine's own cost per monitor tick, with a subject whose observation costs nothing:
//! CPU time of this process over many ticks, divided by the ticks. Run:
//! `cargo run --release --example engine_overhead`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use operator_protocol::NodeId;
use operator_tui::brains::RulesBrain;
use operator_tui::clock::SystemClock;
use operator_tui::engine::{Engine, EngineConfig};
use operator_tui::events::EngineEvent;
use operator_tui::model::Mode;
use operator_tui::store::Store;
use operator_tui::testing as fake;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> color_eyre::Result<()> {
    let dir = tempfile::tempdir()?;
    let subject = fake::FakeSubject::new(&["n1", "n2", "n3"]);
    let nodes = ["n1", "n2", "n3"].map(NodeId::from).to_vec();
    let config = EngineConfig {
        tick: Duration::from_millis(5),
        mode: Some(Mode::Execute),
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        Arc::new(subject),
        Arc::new(fake::FakeTarget(nodes)),
        Arc::new(RulesBrain),
        Store::open(&dir.path().join("e.db"))?,
        Arc::new(SystemClock),
        config,
    );
    let mut events = engine.events().subscribe();
    let handle = engine.start();
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let mut ticks = 0u64;
    while wall0.elapsed() < Duration::from_secs(10) {
        if let Ok(EngineEvent::Observed { .. }) = events.recv().await {
            ticks += 1;
        }
    }
    let cpu = cpu_seconds() - cpu0;
    handle.shutdown().await?;
    println!(
        "engine overhead: {:.0} µs of CPU per monitor tick ({ticks} ticks in 10 s, healthy 3-node subject, no tickets)",
        cpu * 1e6 / ticks as f64
    );
    Ok(())
}
