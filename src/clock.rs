//! The engine's clock. Production uses the system clock; tests drive a manual one so that
//! schedules and retry backoff can be checked without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

use operator_protocol::Millis;

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> Millis;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        operator_protocol::unix_now_ms()
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start_ms: Millis) -> Self {
        Self(AtomicU64::new(start_ms))
    }

    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that follows tokio's: on a paused runtime (the generated eval's simulation) it
/// moves only as simulated time does, so a minute of a cluster's life takes milliseconds.
pub struct TokioClock {
    start_ms: Millis,
    anchor: tokio::time::Instant,
}

impl TokioClock {
    /// Reads `start_ms` now; call inside the runtime whose time it follows.
    pub fn new(start_ms: Millis) -> Self {
        Self {
            start_ms,
            anchor: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> Millis {
        self.start_ms + self.anchor.elapsed().as_millis() as Millis
    }
}
