//! Faults a node can be told to have, for operator demos and tests. They exist only when the
//! node starts with `--enable-chaos`, and live in memory: a restart clears them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
pub struct ChaosState {
    inner: Mutex<Faults>,
}

#[derive(Debug, Default, Clone)]
struct Faults {
    latency: Duration,
    /// Answer "allowed" without asking Redis until then (None: off).
    ghost_until: Option<Instant>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChaosView {
    pub latency_ms: u64,
    pub ghost_allow: bool,
    pub ghost_remaining_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRequest {
    pub ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhostRequest {
    /// How long to ghost-allow; absent means until cleared.
    pub duration_ms: Option<u64>,
}

/// Keeps an injected delay well inside what a client would wait.
pub const MAX_CHAOS_LATENCY_MS: u64 = 10_000;

impl ChaosState {
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn set_latency(&self, latency: Duration) {
        self.faults().latency = latency;
    }

    pub fn set_ghost(&self, duration: Option<Duration>) {
        // "Until cleared" is a far-future deadline rather than a second flag.
        let until = Instant::now() + duration.unwrap_or(Duration::from_secs(365 * 86_400));
        self.faults().ghost_until = Some(until);
    }

    pub fn clear(&self) {
        *self.faults() = Faults::default();
    }

    pub fn latency(&self) -> Duration {
        self.faults().latency
    }

    pub fn ghosting(&self) -> bool {
        self.faults()
            .ghost_until
            .is_some_and(|until| Instant::now() < until)
    }

    pub fn view(&self) -> ChaosView {
        let faults = self.faults().clone();
        let now = Instant::now();
        let remaining = faults.ghost_until.filter(|u| *u > now).map(|u| u - now);
        ChaosView {
            latency_ms: faults.latency.as_millis() as u64,
            ghost_allow: remaining.is_some(),
            ghost_remaining_ms: remaining
                .filter(|r| *r < Duration::from_secs(86_400))
                .map(|r| r.as_millis() as u64),
        }
    }
}
