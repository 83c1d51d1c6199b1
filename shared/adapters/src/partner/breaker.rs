//! A circuit breaker per tenant and partner: after a run of failures, calls fail fast for a
//! while instead of piling onto a partner that is down (and onto the queue's retries).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use onecrm_domain::log::Integration;
use onecrm_domain::tenant::TenantId;

use crate::cache::TtlCache;

#[derive(Debug, Clone)]
pub struct BreakerSettings {
    /// Consecutive retryable failures that open the circuit.
    pub failures_to_open: u32,
    /// How long it stays open before one trial call is let through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures_to_open: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

type Key = (TenantId, Integration);

pub struct CircuitBreakers {
    settings: BreakerSettings,
    states: TtlCache<Key, State>,
    /// Serialises read-modify-write of one state (calls per instance are few).
    guard: Mutex<()>,
}

/// States are forgotten after a quiet hour; the cache is bounded like every other.
const STATE_TTL: Duration = Duration::from_secs(3600);

impl CircuitBreakers {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            states: TtlCache::new(10_000),
            guard: Mutex::new(()),
        }
    }

    fn state(&self, key: &Key) -> State {
        self.states.get(key, STATE_TTL).unwrap_or_default()
    }

    /// `Err(remaining)` while the circuit is open.
    pub fn admit(&self, key: &Key) -> Result<(), Duration> {
        let _g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        let state = self.state(key);
        match state.open_until {
            Some(until) if Instant::now() < until => Err(until - Instant::now()),
            // Half-open: this call is the trial; a failure re-opens at once.
            Some(_) => {
                self.states.insert(
                    key.clone(),
                    State {
                        failures: self.settings.failures_to_open.saturating_sub(1),
                        open_until: None,
                    },
                );
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn success(&self, key: &Key) {
        let _g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        self.states.remove(key);
    }

    pub fn failure(&self, key: &Key) {
        let _g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state(key);
        state.failures += 1;
        if state.failures >= self.settings.failures_to_open {
            state.open_until = Some(Instant::now() + self.settings.open_for);
        }
        self.states.insert(key.clone(), state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_a_run_of_failures_and_half_opens_after_the_pause() {
        let breakers = CircuitBreakers::new(BreakerSettings {
            failures_to_open: 2,
            open_for: Duration::from_millis(30),
        });
        let key = (TenantId::parse("demo").unwrap(), Integration::InsurUp);
        let other = (TenantId::parse("other").unwrap(), Integration::InsurUp);
        breakers.failure(&key);
        assert!(breakers.admit(&key).is_ok());
        breakers.failure(&key);
        assert!(breakers.admit(&key).is_err());
        assert!(breakers.admit(&other).is_ok(), "per tenant");
        std::thread::sleep(Duration::from_millis(40));
        assert!(breakers.admit(&key).is_ok(), "one trial after the pause");
        breakers.failure(&key);
        assert!(
            breakers.admit(&key).is_err(),
            "a failed trial re-opens at once"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(breakers.admit(&key).is_ok());
        breakers.success(&key);
        breakers.failure(&key);
        assert!(breakers.admit(&key).is_ok(), "a success resets the count");
    }
}
