//! The one backoff every retry loop here uses (SQS entries, batch writes, transaction conflicts,
//! partner calls): exponential with full jitter, capped, and never shorter than what the other
//! side asked for (`Retry-After`). Full jitter keeps concurrent retries from arriving together.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The wait after failed attempt `attempt` (1 for the first): a random share of
/// `base × 2^(attempt-1)`, at most `cap`, at least `at_least`.
pub fn delay(attempt: u32, base: Duration, cap: Duration, at_least: Option<Duration>) -> Duration {
    let ceiling = base
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    // A fresh RandomState is randomly seeded: enough randomness for jitter without a rand crate.
    let random = RandomState::new().build_hasher().finish();
    let jittered = Duration::from_millis(random % (ceiling.as_millis() as u64 + 1));
    at_least.map_or(jittered, |asked| asked.max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_respects_what_was_asked() {
        let (base, cap) = (Duration::from_millis(200), Duration::from_secs(2));
        for attempt in 1..12 {
            let d = delay(attempt, base, cap, None);
            assert!(
                d <= cap && d <= base * (1 << (attempt - 1).min(16)),
                "{attempt}: {d:?}"
            );
        }
        assert!(delay(1, base, cap, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        let spread: std::collections::HashSet<Duration> =
            (0..50).map(|_| delay(5, base, cap, None)).collect();
        assert!(spread.len() > 1, "jittered");
    }
}
