//! One token bucket per distinct metadata value, with a bounded count.
//!
//! The map is split into shards, each a `Mutex<HashMap>` held only to find
//! or insert the bucket's `Arc` (no await, no allocation when the key is
//! known); taking the token is the bucket's own lock-free CAS.
//!
//! When a shard is full, buckets that have refilled completely are dropped
//! first: a fresh bucket is identical to a full one, so this loses nothing.
//! If every bucket is still in use, the fullest one (oldest arrival time) is
//! dropped, which at worst hands that one key a fresh burst.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use crate::bucket::Bucket;

const SHARDS: usize = 16;

/// Buckets by key, at most about `max_keys` of them.
#[derive(Debug)]
pub(crate) struct KeyedBuckets {
    shards: Vec<Mutex<HashMap<Box<str>, Arc<Bucket>>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl KeyedBuckets {
    /// A map holding at most `max_keys` buckets (rounded up to a multiple of the shard count).
    pub(crate) fn new(max_keys: usize) -> Self {
        let per_shard = max_keys.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
            hasher: RandomState::new(),
        }
    }

    /// The bucket of `key`, created full when new; `now` decides which buckets are idle.
    pub(crate) fn get(&self, key: &str, now: u64) -> Arc<Bucket> {
        let shard = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A poisoned shard only means another thread panicked mid-insert; the map is still valid.
        let mut map = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(b) = map.get(key) {
            return b.clone();
        }
        if map.len() >= self.per_shard {
            map.retain(|_, b| !b.is_full(now));
            if map.len() >= self.per_shard {
                let fullest = map
                    .iter()
                    .min_by_key(|(_, b)| b.arrival())
                    .map(|(k, _)| k.clone());
                if let Some(k) = fullest {
                    map.remove(&k);
                }
            }
        }
        let b = Arc::new(Bucket::new());
        map.insert(Box::from(key), b.clone());
        b
    }

    /// How many buckets exist now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::Rate;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn one_bucket_per_key_and_bounded() {
        let rate = Rate::new(1.0, 2).unwrap();
        let m = KeyedBuckets::new(32);
        let now = 10 * SEC;
        for key in ["a", "b"] {
            let b = m.get(key, now);
            assert!(b.take(&rate, now).is_ok());
            assert!(b.take(&rate, now).is_ok());
            assert!(b.take(&rate, now).is_err(), "{key}");
        }
        assert!(
            m.get("a", now).take(&rate, now).is_err(),
            "same bucket again"
        );
        for i in 0..1000 {
            let key = format!("user-{i}");
            let _ = m.get(&key, now).take(&rate, now);
        }
        assert!(m.len() <= 32, "{} buckets", m.len());
    }

    #[test]
    fn idle_buckets_are_dropped_before_busy_ones() {
        let rate = Rate::new(1.0, 1).unwrap();
        // One bucket per shard: keys in the same shard compete.
        let m = KeyedBuckets::new(1);
        let now = 10 * SEC;
        let busy = m.get("busy", now);
        assert!(busy.take(&rate, now).is_ok());
        // Much later "busy" has refilled, so a new key may take its place
        // without anyone gaining anything.
        let later = now + 5 * SEC;
        for i in 0..200 {
            let _ = m.get(&format!("k{i}"), later);
        }
        assert!(m.len() <= SHARDS);
    }
}
