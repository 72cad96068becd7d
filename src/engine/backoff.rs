//! Retry delays: capped exponential backoff with "equal jitter" (half fixed, half random), so
//! retries of many actions do not line up.

use std::time::Duration;

/// The delay before retry number `attempt` (1 for the first retry). `random` is in 0..1.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration, random: f64) -> Duration {
    let exponential = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exponential.min(cap);
    capped.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_until_the_cap_and_jitter_stays_within_half() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_millis(1000);
        assert_eq!(retry_delay(1, base, cap, 1.0), Duration::from_millis(100));
        assert_eq!(retry_delay(2, base, cap, 1.0), Duration::from_millis(200));
        assert_eq!(retry_delay(3, base, cap, 0.0), Duration::from_millis(200));
        assert_eq!(retry_delay(9, base, cap, 1.0), cap);
        assert_eq!(retry_delay(40, base, cap, 0.5), Duration::from_millis(750));
    }
}
