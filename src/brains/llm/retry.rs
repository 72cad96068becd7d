//! When and how long to retry a Messages API request, as the official SDKs do: 408, 409, 429
//! and 5xx (529 included) and connection errors; `x-should-retry` overrides the status;
//! `retry-after-ms` / `retry-after` are honoured up to 60 s, else capped exponential backoff
//! with jitter (0.5 s doubling to 8 s, minus up to 25 %).

use std::time::Duration;

use reqwest::header::HeaderMap;

pub const MAX_RETRIES: u32 = 2;

pub fn should_retry(status: u16, headers: &HeaderMap) -> bool {
    match headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
        Some("true") => true,
        Some("false") => false,
        _ => matches!(status, 408 | 409 | 429) || status >= 500,
    }
}

/// The server's requested delay, when it gives a usable one.
fn requested_delay(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = text("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|ms| ms / 1000.0)
        .or_else(|| text("retry-after").and_then(|v| v.parse::<f64>().ok()))?;
    (seconds > 0.0 && seconds <= 60.0).then(|| Duration::from_secs_f64(seconds))
}

/// Delay before retry number `retry` (0 for the first); `random` in 0..1.
pub fn retry_delay(retry: u32, headers: &HeaderMap, random: f64) -> Duration {
    requested_delay(headers).unwrap_or_else(|| {
        let base = (0.5 * 2f64.powi(retry.min(10) as i32)).min(8.0);
        Duration::from_secs_f64(base * (1.0 - 0.25 * random.clamp(0.0, 1.0)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn statuses_and_the_override_header_decide_retries() {
        for status in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(should_retry(status, &HeaderMap::new()), "{status}");
        }
        for status in [400, 401, 403, 404, 413, 422] {
            assert!(!should_retry(status, &HeaderMap::new()), "{status}");
        }
        assert!(!should_retry(529, &headers(&[("x-should-retry", "false")])));
        assert!(should_retry(400, &headers(&[("x-should-retry", "true")])));
    }

    #[test]
    fn retry_after_is_honoured_within_60_s_else_backoff() {
        assert_eq!(
            retry_delay(0, &headers(&[("retry-after", "20")]), 0.0),
            Duration::from_secs(20)
        );
        assert_eq!(
            retry_delay(0, &headers(&[("retry-after-ms", "250")]), 0.0),
            Duration::from_millis(250)
        );
        assert_eq!(
            retry_delay(0, &headers(&[("retry-after", "61")]), 0.0),
            Duration::from_millis(500)
        );
        assert_eq!(
            retry_delay(0, &headers(&[("retry-after", "0")]), 0.0),
            Duration::from_millis(500)
        );
        assert_eq!(
            retry_delay(0, &headers(&[("retry-after", "soon")]), 0.0),
            Duration::from_millis(500)
        );
        assert_eq!(
            retry_delay(1, &HeaderMap::new(), 0.0),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_delay(1, &HeaderMap::new(), 1.0),
            Duration::from_millis(750)
        );
        assert_eq!(
            retry_delay(30, &HeaderMap::new(), 0.0),
            Duration::from_secs(8)
        );
    }
}
