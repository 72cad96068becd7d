//! A real cluster's workload through the `tikv-client` crate (built with the `tikv-client`
//! feature): raw puts and gets at a steady rate over a small key space, counted, so the
//! cluster has traffic whose dips and errors the operator can see in TiKV's own metrics
//! (`tikv_storage_command_total`). tikv-client reaches the stores at the addresses PD
//! advertises, so it runs where those resolve: inside compose/tikv.yml's network.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tikv_client::RawClient;

/// Keys the workload writes and reads back, spread over the key space's regions.
const KEYS: u64 = 1000;

#[derive(Default)]
pub struct Counts {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

pub struct RawWorkload {
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawWorkload {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawWorkload {
    /// Connects through PD (`host:port` endpoints, PD's client port) and starts `rate`
    /// operations a second, alternately a put and a get of the same key.
    pub async fn start(pd_endpoints: Vec<String>, rate: f64) -> Result<Self, String> {
        if !rate.is_finite() || rate <= 0.0 {
            return Err("the workload rate must be above zero".into());
        }
        let client = RawClient::new(pd_endpoints.clone()).await.map_err(|e| {
            format!(
                "tikv-client could not reach PD at {}: {e}",
                pd_endpoints.join(",")
            )
        })?;
        let counts = Arc::new(Counts::default());
        let counting = counts.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            for n in 0u64.. {
                tick.tick().await;
                let key = format!("operator-tui/{:04}", n / 2 % KEYS);
                let result = if n % 2 == 0 {
                    client.put(key, n.to_be_bytes().to_vec()).await.map(|_| ())
                } else {
                    client.get(key).await.map(|_| ())
                };
                let counter = if result.is_ok() {
                    &counting.ok
                } else {
                    &counting.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Self { counts, task })
    }

    /// (succeeded, failed) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.ok.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
        )
    }
}
