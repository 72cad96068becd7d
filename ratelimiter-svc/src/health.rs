//! Redis health as this node sees it, kept fresh by a background probe. The node is healthy
//! only after its first good probe, and stays up (unhealthy) while Redis is away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::limiter::{Limiter, RedisFailure};
use crate::metrics::NodeMetrics;
use crate::windows::WindowBook;

pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Default, Serialize)]
pub struct RedisHealth {
    pub reachable: bool,
    /// Round trip of the last successful probe, in milliseconds.
    pub last_latency_ms: Option<f64>,
    pub last_error: Option<String>,
    /// The class of the probe's last failure (`RedisFailure::class`).
    pub last_error_class: Option<&'static str>,
    pub consecutive_failures: u64,
    pub ever_reachable: bool,
    /// The node's last check got no decision from Redis: its answers are not backed by Redis
    /// now, whatever the probe says (Redis may answer the probe and refuse the script).
    pub checks_failing: bool,
    /// The class and text of the last check Redis did not decide.
    pub last_check_error_class: Option<&'static str>,
    pub last_check_error: Option<String>,
}

#[derive(Default)]
pub struct HealthState {
    redis: Mutex<RedisHealth>,
    /// Set by a check Redis did not decide, cleared by one it did: an atomic, so the hot path
    /// of a healthy node takes no lock.
    checks_failing: AtomicBool,
}

impl HealthState {
    pub fn redis(&self) -> RedisHealth {
        let mut redis = self.redis.lock().unwrap_or_else(|p| p.into_inner()).clone();
        redis.checks_failing = self.checks_failing.load(Ordering::Relaxed);
        redis
    }

    pub fn check_decided(&self) {
        self.checks_failing.store(false, Ordering::Relaxed);
    }

    pub fn check_failed(&self, failure: &RedisFailure) {
        self.checks_failing.store(true, Ordering::Relaxed);
        self.update(|h| {
            h.last_check_error_class = Some(failure.class());
            h.last_check_error = Some(failure.to_string());
        });
    }

    fn update(&self, f: impl FnOnce(&mut RedisHealth)) {
        f(&mut self.redis.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Probes Redis until the task is dropped.
pub async fn probe_forever(
    limiter: Arc<Limiter>,
    health: Arc<HealthState>,
    metrics: Arc<NodeMetrics>,
    windows: Arc<WindowBook>,
) {
    let mut ticker = tokio::time::interval(PROBE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match limiter.probe().await {
            Ok((rtt, redis_ms)) => {
                windows.saw_redis_at(redis_ms);
                metrics.set_redis_up(true);
                health.update(|h| {
                    if !h.reachable {
                        tracing::info!(rtt_ms = rtt.as_secs_f64() * 1e3, "redis reachable");
                    }
                    h.reachable = true;
                    h.ever_reachable = true;
                    h.last_latency_ms = Some(rtt.as_secs_f64() * 1e3);
                    h.last_error = None;
                    h.last_error_class = None;
                    h.consecutive_failures = 0;
                });
            }
            Err(failure) => {
                metrics.set_redis_up(false);
                health.update(|h| {
                    if h.reachable || h.consecutive_failures == 0 {
                        tracing::warn!(%failure, "redis unreachable");
                    }
                    h.reachable = false;
                    h.last_error = Some(failure.to_string());
                    h.last_error_class = Some(failure.class());
                    h.consecutive_failures += 1;
                });
            }
        }
    }
}
