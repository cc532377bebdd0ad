//! The one in-memory cache with a time to live, used by every per-process cache (verified
//! tokens, resolved authorisations, compiled mapping rules, loaded SSO configurations).
//!
//! Entries are answered only while younger than the TTL; the cache holds at most `capacity`
//! entries and, when full, forgets everything (the caches are hot-path shortcuts over the
//! database, so dropping them costs a few lookups, never correctness).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    map: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> TtlCache<K, V> {
        TtlCache { ttl, capacity: capacity.max(1), map: RwLock::new(HashMap::new()) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The value, while it is fresh.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.read().ok()?;
        let (v, at) = map.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// The value whatever its age, with how old it is (for caches that revalidate a stale
    /// entry cheaply instead of reloading it).
    pub fn get_with_age<Q>(&self, key: &Q) -> Option<(V, Duration)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.read().ok()?;
        let (v, at) = map.get(key)?;
        Some((v.clone(), at.elapsed()))
    }

    pub fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(key, (value, Instant::now()));
        }
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Ok(mut map) = self.map.write() {
            map.remove(key);
        }
    }

    /// Keeps only the entries for which `keep` holds.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|k, (v, _)| keep(k, v));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let c: TtlCache<String, u32> = TtlCache::new(Duration::from_millis(30), 2);
        c.put("a".into(), 1);
        assert_eq!(c.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("a"), None);
        assert!(c.get_with_age("a").is_some_and(|(v, age)| v == 1 && age >= Duration::from_millis(30)));
        c.put("b".into(), 2);
        c.put("c".into(), 3);
        assert_eq!(c.len(), 1, "full: forgot everything, then took the new entry");
        c.retain(|_, v| *v != 3);
        assert!(c.is_empty());
    }
}
