//! A copy-on-write hash map in shards, for the view's large indices.
//!
//! Cloning it is O(1); a write copies the outer shard table once per snapshot and the one shard
//! it touches, so a reader's snapshot stays intact while the writer changes a few keys. Unlike a
//! HAMT, whose nodes are fixed-size arrays, each shard is a plain dense hash table: at 100k keys
//! this holds the same entries in a fraction of the memory. A key is hashed once: some of the
//! hash's bits pick the shard, and the shard's table uses the rest.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::{Equivalent, HashTable};

/// With 256 shards a write at 100k keys copies about 400 entries.
pub(crate) const SHARDS: usize = 256;

/// One shard, shared by snapshots until a write copies it.
type Shard<K, V> = Arc<HashTable<(K, V)>>;

#[derive(Debug)]
pub(crate) struct ShardedMap<K, V> {
    shards: Arc<Vec<Shard<K, V>>>,
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
        Self {
            // Every shard starts as the same empty table; the first write to one copies it.
            shards: Arc::new(std::iter::repeat_n(Arc::new(HashTable::new()), SHARDS).collect()),
            hasher: RandomState::new(),
        }
    }
}

/// The shard of a key with hash `hash`. The table inside uses the hash's low bits for the bucket
/// and its top seven as a tag: the shard is taken from bits in between, so that neither repeats
/// within a shard.
fn shard_of(hash: u64) -> usize {
    (hash >> 40) as usize % SHARDS
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    /// The value at `key`: anything that hashes as the key does and can be compared with it.
    pub(crate) fn get<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<&V> {
        self.get_key_value(key).map(|(_, value)| value)
    }

    pub(crate) fn get_key_value<Q: Hash + Equivalent<K> + ?Sized>(
        &self,
        key: &Q,
    ) -> Option<(&K, &V)> {
        let hash = self.hasher.hash_one(key);
        self.shards[shard_of(hash)]
            .find(hash, |(k, _)| key.equivalent(k))
            .map(|(k, v)| (k, v))
    }

    pub(crate) fn contains_key<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> bool {
        self.get(key).is_some()
    }

    /// The entry of `key` (hashed `hash`) in its shard, the shard copied first if a snapshot
    /// still shares it.
    fn entry(&mut self, hash: u64, key: &K) -> Entry<'_, (K, V)> {
        let hasher = &self.hasher;
        let shard = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[shard_of(hash)]);
        shard.entry(hash, |(k, _)| k == key, |(k, _)| hasher.hash_one(k))
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        match self.entry(hash, &key) {
            Entry::Occupied(mut entry) => Some(std::mem::replace(&mut entry.get_mut().1, value)),
            Entry::Vacant(entry) => {
                entry.insert((key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        if !self.contains_key(key) {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        match self.entry(hash, key) {
            Entry::Occupied(entry) => Some(entry.remove().0.1),
            Entry::Vacant(_) => None,
        }
    }

    /// Replaces the value at `key` with what `change` makes of it (`None`: absent).
    pub(crate) fn update(&mut self, key: K, change: impl FnOnce(Option<V>) -> Option<V>) {
        let hash = self.hasher.hash_one(&key);
        match self.entry(hash, &key) {
            Entry::Occupied(entry) => {
                let ((key, old), vacant) = entry.remove();
                if let Some(new) = change(Some(old)) {
                    vacant.insert((key, new));
                }
            }
            Entry::Vacant(vacant) => {
                if let Some(new) = change(None) {
                    vacant.insert((key, new));
                }
            }
        }
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter().map(|(k, v)| (k, v)))
    }

    /// The entries of shard `index` (of [`SHARDS`]), in no particular order: a walk in steps.
    pub(crate) fn shard(&self, index: usize) -> impl Iterator<Item = (&K, &V)> {
        self.shards
            .get(index)
            .into_iter()
            .flat_map(|shard| shard.iter().map(|(k, v)| (k, v)))
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
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
