//! The knowledge-base and text-to-speech caches: in-memory, bounded by
//! entry count, oldest entry evicted first. They stand in for the Redis
//! caches of the production backend; the health endpoint's `redis` check
//! names the backend in use.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// A bounded set of keys: `lookup` says whether a key was there and puts
/// it there.
#[derive(Debug)]
pub struct Cache {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// True on a hit. A miss inserts the key, evicting the oldest when full.
    pub fn lookup(&self, key: &str) -> bool {
        let mut e = self.inner.lock().expect("cache lock");
        if e.keys.contains(key) {
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        if e.order.len() >= self.capacity
            && let Some(old) = e.order.pop_front()
        {
            e.keys.remove(&old);
        }
        e.keys.insert(key.to_owned());
        e.order.push_back(key.to_owned());
        false
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("cache lock").order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        *self.inner.lock().expect("cache lock") = Entries::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_after_miss_and_oldest_evicted() {
        let c = Cache::new(2);
        assert!(!c.lookup("a"));
        assert!(c.lookup("a"));
        assert!(!c.lookup("b"));
        assert!(!c.lookup("c")); // evicts a
        assert!(!c.lookup("a"));
        assert_eq!(c.len(), 2);
        let off = Cache::new(0);
        assert!(!off.lookup("a") && !off.lookup("a"));
    }
}
