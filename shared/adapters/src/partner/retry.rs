//! The partner client's retry policy; the backoff itself is [`crate::backoff`].

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub connect_timeout: Duration,
    /// One attempt, request to last byte.
    pub attempt_timeout: Duration,
    /// All attempts and waits together: below the calling function's own timeout.
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            total_budget: Duration::from_secs(25),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, never shorter than the partner asked for.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        crate::backoff::delay(attempt, self.base_delay, self.max_delay, retry_after)
    }
}

/// `Retry-After` as seconds (`120`) or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        let date = chrono::DateTime::from_timestamp(1_800_000_030, 0)
            .unwrap()
            .to_rfc2822();
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_respects_retry_after() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let d = policy.delay(attempt, None);
            assert!(d <= policy.max_delay);
            assert!(d <= policy.base_delay * (1 << (attempt - 1)));
        }
        assert!(policy.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }
}
