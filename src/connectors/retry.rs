//! What the HTTP connectors share about retrying: how long to back off before the next attempt,
//! and the wait a server asks for in `Retry-After`.

use std::time::Duration;

/// 250 ms, doubling per attempt up to 8 s, plus up to 100 ms of jitter so parallel calls spread.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(250 * 2u64.pow(attempt.saturating_sub(1).min(5))).min(Duration::from_secs(8));
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 100);
    base + Duration::from_millis(jitter as u64)
}

/// The wait a `Retry-After: SECONDS` header asks for, at most a minute.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        // `NaN` and infinities parse too; a wait must be a number.
        .filter(|s| s.is_finite())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backoff doubles from 250 ms and stops growing at 8 s.
    #[test]
    fn backoff_doubles_then_levels() {
        let ms = |a| backoff(a).as_millis() as u64;
        assert!((250..350).contains(&ms(1)));
        assert!((500..600).contains(&ms(2)));
        assert!((8000..8100).contains(&ms(7)));
        assert!((8000..8100).contains(&ms(8)));
    }

    /// `Retry-After` in seconds is honoured up to a minute; a wait that is no number is ignored.
    #[test]
    fn retry_after_is_bounded() {
        let with = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("retry-after", v.parse().unwrap());
            retry_after(&h)
        };
        assert_eq!(with("2"), Some(Duration::from_secs(2)));
        assert_eq!(with("3600"), Some(Duration::from_secs(60)));
        assert_eq!(with("NaN"), None);
        assert_eq!(with("Wed, 21 Oct 2026 07:28:00 GMT"), None);
    }
}
