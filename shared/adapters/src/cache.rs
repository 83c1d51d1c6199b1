//! The one in-process cache every adapter uses: bounded (quick_cache evicts past its capacity,
//! so no request can grow memory without limit) and with a time to live per entry.

use std::hash::Hash;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    entries: quick_cache::sync::Cache<K, (Instant, V)>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    /// The value if it was stored less than `ttl` ago.
    pub fn get(&self, key: &K, ttl: Duration) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v)
    }

    /// The value and its age, whatever the age.
    pub fn get_with_age(&self, key: &K) -> Option<(Duration, V)> {
        self.entries.get(key).map(|(at, v)| (at.elapsed(), v))
    }

    pub fn insert(&self, key: K, value: V) {
        self.entries.insert(key, (Instant::now(), value));
    }

    pub fn remove(&self, key: &K) {
        self.entries.remove(key);
    }

    pub fn clear(&self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_capacity_and_expires_entries() {
        let cache = TtlCache::new(100);
        for i in 0..10_000 {
            cache.insert(i, i);
        }
        assert!(cache.len() <= 110, "{}", cache.len());
        cache.insert(-1, 7);
        assert_eq!(cache.get(&-1, Duration::from_secs(60)), Some(7));
        assert_eq!(cache.get(&-1, Duration::ZERO), None);
    }
}
