//! Per-key window accounting: what this node had Redis allow, per counter, for the current and
//! the previous window of each tracked key. Summed over nodes it must equal what Redis holds;
//! that comparison is how an observer detects counter drift.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::limiter::WindowRef;

#[derive(Debug, Clone, Serialize)]
pub struct WindowCount {
    #[serde(flatten)]
    pub window: WindowRef,
    /// Units this node was told were allowed (and so added to the counter).
    pub allowed_units: u64,
    /// The key's limit as Redis last reported it in this window.
    pub limit: u64,
    /// Units of calls that timed out while this window was current: Redis may have applied
    /// them without this node knowing, so they bound the legitimate drift.
    pub uncertain_units: u64,
    /// True when this node was not watching Redis for the whole window (it started, or first
    /// reached Redis, after the window began), so its count may be short.
    pub partial: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyWindows {
    pub key: String,
    pub current: WindowCount,
    pub previous: Option<WindowCount>,
    /// Units of checks sent to Redis and not yet recorded here: Redis may already hold them.
    /// An observer reading this node after Redis must allow for them.
    pub in_flight_units: u64,
}

#[derive(Default)]
struct Slots {
    current: Option<WindowCount>,
    previous: Option<WindowCount>,
    in_flight_units: u64,
}

pub struct WindowBook {
    max_keys: usize,
    keys: Mutex<HashMap<String, Slots>>,
    /// Redis time (ms) of this process's first successful probe; 0 until then.
    first_seen_redis_ms: AtomicU64,
}

impl WindowBook {
    pub fn new(max_keys: usize) -> Self {
        Self {
            max_keys,
            keys: Mutex::new(HashMap::new()),
            first_seen_redis_ms: AtomicU64::new(0),
        }
    }

    /// Called with Redis's clock on every successful probe; only the first one sticks.
    pub fn saw_redis_at(&self, redis_ms: u64) {
        let _ = self.first_seen_redis_ms.compare_exchange(
            0,
            redis_ms,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// A check of `units` on `key` is about to be sent to Redis.
    pub fn begin(&self, key: &str, units: u64) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if !keys.contains_key(key) && keys.len() < self.max_keys {
            keys.insert(key.to_string(), Slots::default());
        }
        if let Some(slots) = keys.get_mut(key) {
            slots.in_flight_units += units;
        }
    }

    /// That check is over, decided (and recorded first) or not.
    pub fn end(&self, key: &str, units: u64) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(slots) = keys.get_mut(key) {
            slots.in_flight_units = slots.in_flight_units.saturating_sub(units);
        }
    }

    /// Records a Redis decision; returns false when the key is not tracked.
    pub fn record(&self, key: &str, window: &WindowRef, allowed_units: u64, limit: u64) -> bool {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if !keys.contains_key(key) {
            if keys.len() >= self.max_keys {
                return false;
            }
            keys.insert(key.to_string(), Slots::default());
        }
        let slots = keys.get_mut(key).expect("inserted above");
        if let Some(count) = slot_for(slots, window) {
            count.allowed_units += allowed_units;
            count.limit = limit;
        }
        true
    }

    /// Records units whose fate in Redis is unknown (the call timed out).
    pub fn record_uncertain(&self, key: &str, units: u64) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(current) = keys.get_mut(key).and_then(|s| s.current.as_mut()) {
            current.uncertain_units += units;
        }
    }

    /// Redis time (ms) from which this process has seen every one of its own decisions; a
    /// window that began earlier may hold units a previous incarnation allowed.
    pub fn watching_since_ms(&self) -> Option<u64> {
        Some(self.first_seen_redis_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    pub fn snapshot(&self) -> Vec<KeyWindows> {
        let first_seen = self.first_seen_redis_ms.load(Ordering::Relaxed);
        let mark = |mut count: WindowCount| {
            let start = count
                .window
                .window_id
                .saturating_mul(count.window.window_ms);
            count.partial = first_seen == 0 || start < first_seen;
            count
        };
        let keys = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut out: Vec<KeyWindows> = keys
            .iter()
            .filter_map(|(key, slots)| {
                Some(KeyWindows {
                    key: key.clone(),
                    current: mark(slots.current.clone()?),
                    previous: slots.previous.clone().map(mark),
                    in_flight_units: slots.in_flight_units,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// Finds the slot a decision belongs to, rolling the window forward when it is newer.
/// Answers can arrive out of order across concurrent requests, hence the previous slot.
fn slot_for<'a>(slots: &'a mut Slots, window: &WindowRef) -> Option<&'a mut WindowCount> {
    let fresh = || WindowCount {
        window: window.clone(),
        allowed_units: 0,
        limit: 0,
        uncertain_units: 0,
        partial: false,
    };
    let same = |c: &Option<WindowCount>| c.as_ref().is_some_and(|c| c.window == *window);
    if same(&slots.current) {
        return slots.current.as_mut();
    }
    if same(&slots.previous) {
        return slots.previous.as_mut();
    }
    let is_newer = match &slots.current {
        None => true,
        Some(c) => {
            c.window.epoch != window.epoch
                || c.window.generation != window.generation
                || c.window.window_id < window.window_id
        }
    };
    if is_newer {
        slots.previous = slots.current.take();
        slots.current = Some(fresh());
        slots.current.as_mut()
    } else {
        // Older than both slots: too late to matter for either comparison.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(id: u64) -> WindowRef {
        WindowRef {
            epoch: "e1".into(),
            generation: 0,
            window_id: id,
            window_ms: 1000,
            counter_key: format!("rl:cnt:k:0:{id}"),
        }
    }

    #[test]
    fn late_answers_land_in_the_previous_window() {
        let book = WindowBook::new(8);
        book.saw_redis_at(1);
        book.record("k", &window(5), 2, 10);
        book.record("k", &window(6), 1, 10);
        book.record("k", &window(5), 3, 10);
        let snap = book.snapshot();
        assert_eq!(snap[0].current.allowed_units, 1);
        assert_eq!(snap[0].previous.as_ref().unwrap().allowed_units, 5);
    }

    #[test]
    fn windows_before_the_first_probe_are_partial() {
        let book = WindowBook::new(8);
        book.saw_redis_at(5500);
        book.record("k", &window(5), 1, 10);
        book.record("k", &window(6), 1, 10);
        let snap = book.snapshot();
        assert!(snap[0].previous.as_ref().unwrap().partial);
        assert!(!snap[0].current.partial);
    }

    #[test]
    fn units_sent_to_redis_are_in_flight_until_the_check_is_over() {
        let book = WindowBook::new(4);
        book.begin("k", 3);
        book.record("k", &window(5), 3, 10);
        assert_eq!(
            book.snapshot()[0].in_flight_units,
            3,
            "recorded, not yet over"
        );
        book.end("k", 3);
        assert_eq!(book.snapshot()[0].in_flight_units, 0);
    }

    #[test]
    fn keys_beyond_the_limit_are_not_tracked() {
        let book = WindowBook::new(1);
        assert!(book.record("a", &window(1), 1, 10));
        assert!(!book.record("b", &window(1), 1, 10));
        assert_eq!(book.snapshot().len(), 1);
    }
}
