//! The pods of one namespace, stored densely and found by name.
//!
//! A map from name to record would hold each record in a hash table slot, and a table is at
//! most 7/8 and often under half full: at 100k pods the empty slots alone cost more than the
//! records. Here the records sit in a vector grown in small steps, and the hash table holds only
//! their 4-byte positions, hashed by the name the record itself carries.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::records::PodRecord;

#[derive(Debug, Default)]
pub(super) struct PodTable {
    records: Vec<PodRecord>,
    /// Positions in `records`, hashed by pod name.
    index: HashTable<u32>,
    hasher: RandomState,
}

impl PodTable {
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(super) fn values(&self) -> std::slice::Iter<'_, PodRecord> {
        self.records.iter()
    }

    /// Where the pod `name` is, given the name's hash.
    fn position(&self, name: &str, hash: u64) -> Option<usize> {
        let records = &self.records;
        self.index
            .find(hash, |&at| &*records[at as usize].name == name)
            .map(|&at| at as usize)
    }

    pub(super) fn get(&self, name: &str) -> Option<&PodRecord> {
        let at = self.position(name, self.hasher.hash_one(name))?;
        Some(&self.records[at])
    }

    /// Adds `pod`, or replaces the pod of the same name and returns it.
    pub(super) fn insert(&mut self, pod: PodRecord) -> Option<PodRecord> {
        let hash = self.hasher.hash_one(&*pod.name);
        if let Some(at) = self.position(&pod.name, hash) {
            return Some(std::mem::replace(&mut self.records[at], pod));
        }
        if self.records.len() == self.records.capacity() {
            // Grow by an eighth rather than double: at most 1/8 of the vector stands empty.
            self.records.reserve_exact(self.records.len() / 8 + 4);
        }
        let at = u32::try_from(self.records.len()).expect("fewer than 2^32 pods");
        self.records.push(pod);
        let (records, hasher) = (&self.records, &self.hasher);
        self.index
            .insert_unique(hash, at, |&at| hasher.hash_one(&*records[at as usize].name));
        None
    }

    pub(super) fn remove(&mut self, name: &str) -> Option<PodRecord> {
        let hash = self.hasher.hash_one(name);
        let at = self.position(name, hash)?;
        if let Ok(entry) = self.index.find_entry(hash, |&i| i as usize == at) {
            entry.remove();
        }
        let removed = self.records.swap_remove(at);
        // The last record moved into the freed position: repoint its index entry.
        if let Some(moved) = self.records.get(at) {
            let last = self.records.len() as u32;
            let hash = self.hasher.hash_one(&*moved.name);
            if let Some(slot) = self.index.find_mut(hash, |&i| i == last) {
                *slot = at as u32;
            }
        }
        Some(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn pod(name: &str, ready: bool) -> PodRecord {
        PodRecord {
            name: name.into(),
            ips: Default::default(),
            template: Arc::default(),
            ready,
            terminating: false,
            finished: false,
        }
    }

    /// Against a plain map, through inserts, replacements and removals in every position.
    #[test]
    fn behaves_like_a_map_from_name_to_pod() {
        let mut table = PodTable::default();
        let mut model = std::collections::BTreeMap::new();
        for round in 0..3u32 {
            for i in 0..200u32 {
                let name = format!("p-{}", (i * 7 + round) % 150);
                let ready = (i + round) % 2 == 0;
                if (i + round) % 5 == 0 {
                    assert_eq!(table.remove(&name), model.remove(&name));
                } else {
                    let new = pod(&name, ready);
                    assert_eq!(table.insert(new.clone()), model.insert(name.clone(), new));
                }
                assert_eq!(table.len(), model.len());
            }
            for (name, expected) in &model {
                assert_eq!(table.get(name), Some(expected));
            }
            assert_eq!(table.get("absent"), None);
            let mut names: Vec<&str> = table.values().map(|p| &*p.name).collect();
            names.sort();
            assert!(names.iter().copied().eq(model.keys().map(String::as_str)));
        }
        let names: Vec<String> = model.keys().cloned().collect();
        for name in names {
            assert!(table.remove(&name).is_some());
        }
        assert!(table.is_empty() && table.index.is_empty());
    }
}
