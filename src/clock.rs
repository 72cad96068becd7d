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
