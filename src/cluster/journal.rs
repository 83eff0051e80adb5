//! Working out a publication's record changes for the transfer journal
//! ([`crate::dns::journal`]): the records of the names a change may have touched, made from the
//! previous snapshot and from the new one by the rules that answer queries, compared.
//! Exact: a change that alters no record has no differences, and the serial does not move for
//! it. The writer calls it at publication, with transfers allowed.
//!
//! Only names whose inputs differ are made: a Service's records are a function of its
//! [`ServiceView`] alone, an endpoint's name of its [`Endpoint`] alone, and an address's names of
//! the endpoints and pods that hold it. So a pod that turns Ready costs its Service's own names
//! (addresses, SRV: every weight moves), its endpoint's name and its address's, not the names of
//! the other endpoints, which are the same in both snapshots. The cluster's property tests
//! (`the_journal_is_the_whole_zones_difference`) hold this against the whole zones compared.

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashSet;

use crate::dns::contents;
use crate::dns::journal::{Change, WireRecords};
use crate::dns::view::{Endpoint, ServiceView, View};
use crate::dns::zone::{Apex, Zone};
use crate::records::ServiceKind;

/// The records that differ between `old` and `new` for the Services and ServiceImports a change
/// touched and the addresses its pods did (serials left at 0: the caller numbers it); `None` once more than
/// `limit` records differ, which the journal could not hold: working out the rest of a change
/// that large (a re-list after most of 100,000 pods changed) would hold the publication for
/// seconds.
pub(crate) fn diff<'a>(
    old: &View,
    new: &View,
    zone: &Zone,
    services: impl IntoIterator<Item = (&'a str, &'a str)>,
    imports: impl IntoIterator<Item = (&'a str, &'a str)>,
    addresses: impl IntoIterator<Item = IpAddr>,
    limit: usize,
) -> Option<Change> {
    let mut change = Change::default();
    let mut addresses: HashSet<IpAddr> = addresses.into_iter().collect();
    // Room for the records of a Service of some tens of endpoints without growing.
    let (mut before, mut after) = (
        WireRecords::with_capacity(8192),
        WireRecords::with_capacity(8192),
    );
    // One Service or address at a time: no two of them own the same name, so each one's
    // records can be compared on their own, and the work stops as soon as the limit is passed.
    let compare = |before: &mut WireRecords, after: &mut WireRecords, change: &mut Change| {
        differences(before, after, &mut change.removed, &mut change.added);
        change.records() <= limit
    };
    for (namespace, name) in services {
        let (was, is) = (old.service(namespace, name), new.service(namespace, name));
        if was == is {
            continue;
        }
        addresses.extend(moved_addresses(was, is));
        match (was, is) {
            (Some(was), Some(is)) if was.kind == is.kind && was.ports == is.ports => {
                // The same Service with other endpoints: its own names, and those of the
                // endpoints that differ.
                let changed = changed_endpoints(was, is);
                let key = (namespace, name);
                contents::service_names(old, zone, key, was, changed.iter().copied(), &mut before);
                contents::service_names(new, zone, key, is, changed.iter().copied(), &mut after);
            }
            _ => {
                contents::service_records(old, zone, namespace, name, &mut before);
                contents::service_records(new, zone, namespace, name, &mut after);
            }
        }
        if !compare(&mut before, &mut after, &mut change) {
            return None;
        }
    }
    // An import's names are in the clusterset zone alone (it has no reverse names), and the
    // zone's apex records come and go with its first and last import.
    if old.has_imports() != new.has_imports() {
        contents::apex_records(old, zone, Apex::Clusterset, &mut before);
        contents::apex_records(new, zone, Apex::Clusterset, &mut after);
    }
    for (namespace, name) in imports {
        if old.import(namespace, name) == new.import(namespace, name) {
            continue;
        }
        contents::import_records(old, zone, namespace, name, &mut before);
        contents::import_records(new, zone, namespace, name, &mut after);
        if !compare(&mut before, &mut after, &mut change) {
            return None;
        }
    }
    for ip in addresses {
        contents::address_records(old, zone, ip, &mut before);
        contents::address_records(new, zone, ip, &mut after);
        if !compare(&mut before, &mut after, &mut change) {
            return None;
        }
    }
    Some(change)
}

/// The labels of the endpoints that are not the same in both: gone, new, or other addresses.
fn changed_endpoints<'v>(was: &'v ServiceView, is: &'v ServiceView) -> Vec<&'v str> {
    let mut changed = Vec::new();
    let (mut a, mut b) = (
        was.endpoints.iter().peekable(),
        is.endpoints.iter().peekable(),
    );
    // Both lists are sorted by label, labels unique.
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.label.cmp(&y.label) {
                Ordering::Equal => {
                    if x != y {
                        changed.push(&*x.label);
                    }
                    a.next();
                    b.next();
                }
                Ordering::Less => changed.extend(a.next().map(|e| &*e.label)),
                Ordering::Greater => changed.extend(b.next().map(|e| &*e.label)),
            },
            (Some(_), None) => changed.extend(a.next().map(|e| &*e.label)),
            (None, Some(_)) => changed.extend(b.next().map(|e| &*e.label)),
            (None, None) => return changed,
        }
    }
}

/// The addresses whose holders in a Service differ between `was` and `is`: those of the
/// endpoints that are not the same in both, and the cluster IPs if they changed. An address
/// held the same way in both keeps its names, as far as this Service goes.
fn moved_addresses(was: Option<&ServiceView>, is: Option<&ServiceView>) -> Vec<IpAddr> {
    fn cluster_ips(service: Option<&ServiceView>) -> &[IpAddr] {
        match service.map(|s| &s.kind) {
            Some(ServiceKind::ClusterIp(ips)) => ips,
            _ => &[],
        }
    }
    fn endpoints(service: Option<&ServiceView>) -> &[Endpoint] {
        service.map_or(&[], |s| &s.endpoints)
    }
    let mut moved = Vec::new();
    if cluster_ips(was) != cluster_ips(is) {
        moved.extend(cluster_ips(was).iter().chain(cluster_ips(is)).copied());
    }
    let (was_endpoints, is_endpoints) = (endpoints(was), endpoints(is));
    let held = |endpoints: &[Endpoint], endpoint: &Endpoint| {
        endpoints
            .binary_search_by(|e| e.label.cmp(&endpoint.label))
            .is_ok_and(|i| endpoints[i] == *endpoint)
    };
    for endpoint in was_endpoints.iter().filter(|e| !held(is_endpoints, e)) {
        moved.extend(endpoint.ips.iter());
    }
    for endpoint in is_endpoints.iter().filter(|e| !held(was_endpoints, e)) {
        moved.extend(endpoint.ips.iter());
    }
    moved
}

/// Moves what is only in `before` to `removed` and what is only in `after` to `added` (each
/// record once), leaving both empty. Records are compared byte for byte: both sides are written
/// by the same rules from the same kind of data. Each record is hashed once and the hashes
/// sorted.
fn differences(
    before: &mut WireRecords,
    after: &mut WireRecords,
    removed: &mut WireRecords,
    added: &mut WireRecords,
) {
    fn hashed<'r>(records: &'r WireRecords, hasher: &DefaultHashBuilder) -> Vec<(u64, &'r [u8])> {
        let mut hashes: Vec<(u64, &[u8])> =
            records.iter().map(|r| (hasher.hash_one(r), r)).collect();
        hashes.sort_unstable();
        hashes
    }
    let hasher = DefaultHashBuilder::default();
    {
        let (b, a) = (hashed(before, &hasher), hashed(after, &hasher));
        let (mut i, mut j) = (0, 0);
        // Through both in (hash, bytes) order: equal records meet.
        loop {
            match (b.get(i), a.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    i = skip_repeats(&b, i);
                    j = skip_repeats(&a, j);
                }
                (Some(x), Some(y)) if x > y => {
                    added.push(y.1);
                    j = skip_repeats(&a, j);
                }
                (Some(x), _) => {
                    removed.push(x.1);
                    i = skip_repeats(&b, i);
                }
                (None, Some(y)) => {
                    added.push(y.1);
                    j = skip_repeats(&a, j);
                }
                (None, None) => break,
            }
        }
    }
    before.clear();
    after.clear();
}

/// The index past `at` and the copies of it that follow.
fn skip_repeats(sorted: &[(u64, &[u8])], at: usize) -> usize {
    at + 1
        + sorted[at + 1..]
            .iter()
            .take_while(|e| **e == sorted[at])
            .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(list: &[&[u8]]) -> WireRecords {
        let mut records = WireRecords::default();
        for record in list {
            records.push(record);
        }
        records
    }

    /// What is only on one side moves, once; what both hold stays.
    #[test]
    fn differences_move_what_one_side_alone_holds() {
        let mut before = records(&[b"a", b"b", b"b", b"d", b"e"]);
        let mut after = records(&[b"a", b"c", b"c", b"e", b"a"]);
        let (mut removed, mut added) = (WireRecords::default(), WireRecords::default());
        differences(&mut before, &mut after, &mut removed, &mut added);
        let mut removed: Vec<&[u8]> = removed.iter().collect();
        removed.sort();
        assert_eq!(removed, [b"b", b"d"]);
        assert_eq!(added.iter().collect::<Vec<_>>(), [b"c"]);
        assert!(before.is_empty() && after.is_empty());
    }
}
