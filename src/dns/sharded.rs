//! A copy-on-write hash map in shards, for the view's large per-address indices.
//!
//! Cloning it is O(1); a write copies the outer shard table once per snapshot and the one shard
//! it touches, so a reader's snapshot stays intact while the writer changes a few keys. Unlike a
//! HAMT, whose nodes are fixed-size arrays, each shard is a plain dense `HashMap`: at 100k keys
//! this holds the same entries in a fraction of the memory.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap};

/// With 256 shards a write at 100k keys copies about 400 entries.
const SHARDS: usize = 256;

#[derive(Debug)]
pub struct ShardedMap<K, V> {
    shards: Arc<Vec<Arc<HashMap<K, V, RandomState>>>>,
    hasher: RandomState,
}

impl<K, V> Clone for ShardedMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            shards: self.shards.clone(),
            hasher: self.hasher.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for ShardedMap<K, V> {
    fn default() -> Self {
        let hasher = RandomState::new();
        let shard = Arc::new(HashMap::with_hasher(hasher.clone()));
        Self {
            shards: Arc::new(vec![shard; SHARDS]),
            hasher,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    /// The value at `key`: anything that hashes as the key does and can be compared with it.
    pub fn get<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<&V> {
        self.shards[self.shard_of(key)].get(key)
    }

    pub fn get_key_value<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<(&K, &V)> {
        self.shards[self.shard_of(key)].get_key_value(key)
    }

    pub fn contains_key<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> bool {
        self.get(key).is_some()
    }

    /// The shard holding `key`, copied first if a snapshot still shares it.
    fn shard_mut(&mut self, key: &K) -> &mut HashMap<K, V, RandomState> {
        let index = self.shard_of(key);
        Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[index])
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.shard_mut(&key).insert(key, value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        if !self.contains_key(key) {
            return None;
        }
        self.shard_mut(key).remove(key)
    }

    /// Replaces the value at `key` with what `change` makes of it (`None`: absent).
    pub fn update(&mut self, key: K, change: impl FnOnce(Option<V>) -> Option<V>) {
        let shard = self.shard_mut(&key);
        let old = shard.remove(&key);
        if let Some(new) = change(old) {
            shard.insert(key, new);
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_unaffected_by_later_writes() {
        let mut map: ShardedMap<u32, u32> = ShardedMap::default();
        for i in 0..1000 {
            map.insert(i, i);
        }
        let snapshot = map.clone();
        map.insert(7, 70);
        map.remove(&8);
        map.update(9, |v| v.map(|v| v + 1));
        map.update(10, |_| None);
        map.update(5000, |v| Some(v.unwrap_or(0) + 1));
        assert_eq!(
            (snapshot.get(&7), snapshot.get(&8), snapshot.get(&9)),
            (Some(&7), Some(&8), Some(&9))
        );
        assert_eq!(
            (map.get(&7), map.get(&8), map.get(&9)),
            (Some(&70), None, Some(&10))
        );
        assert_eq!((snapshot.len(), map.len()), (1000, 999));
        // Untouched shards are shared, not copied.
        let shared = map
            .shards
            .iter()
            .zip(snapshot.shards.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert!(shared >= SHARDS - 5, "{shared} shards shared");
    }
}
