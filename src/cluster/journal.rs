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
//! the other endpoints, which are the same in both snapshots (`the_journal_is_the_whole_zones_
//! difference` in the cluster's property tests holds this against the whole zone compared).

use std::cmp::Ordering;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashSet;
use hickory_proto::rr::rdata::{CNAME, PTR};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::BinEncodable;

use crate::dns::contents;
use crate::dns::journal::Change;
use crate::dns::view::{Endpoint, ServiceView, View};
use crate::dns::zone::Zone;
use crate::records::ServiceKind;

/// The records that differ between `old` and `new` for the Services a change touched and the
/// addresses its pods did (serials left at 0: the caller numbers it); `None` once more than
/// `limit` records differ, which the journal could not hold: working out the rest of a change
/// that large (a re-list after most of 100,000 pods changed) would hold the publication for
/// seconds.
pub(crate) fn diff<'a>(
    old: &View,
    new: &View,
    zone: &Zone,
    services: impl IntoIterator<Item = (&'a str, &'a str)>,
    addresses: impl IntoIterator<Item = IpAddr>,
    limit: usize,
) -> Option<Change> {
    let mut change = Change::default();
    let mut addresses: HashSet<IpAddr> = addresses.into_iter().collect();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    // One Service or address at a time: no two of them own the same name, so each one's
    // records can be compared on their own, and the work stops as soon as the limit is passed.
    let compare = |before: &mut Vec<Record>, after: &mut Vec<Record>, change: &mut Change| {
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
                contents::own_records(old, zone, namespace, name, was, &mut before);
                contents::own_records(new, zone, namespace, name, is, &mut after);
                for label in changed_endpoints(was, is) {
                    contents::endpoint_records(old, zone, namespace, name, label, &mut before);
                    contents::endpoint_records(new, zone, namespace, name, label, &mut after);
                }
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
    for ip in addresses {
        contents::address_records(old, zone, ip, &mut before);
        contents::address_records(new, zone, ip, &mut after);
        if !compare(&mut before, &mut after, &mut change) {
            return None;
        }
    }
    // In the order hickory's `Record` sorts in (RFC 4034's canonical order), whatever order the
    // touched names came in.
    sort(&mut change.removed);
    sort(&mut change.added);
    Some(change)
}

/// The labels of the endpoints that are not the same in both: gone, new, or other addresses.
fn changed_endpoints<'v>(was: &'v ServiceView, is: &'v ServiceView) -> Vec<&'v str> {
    let mut changed = Vec::new();
    let (mut a, mut b) = (was.endpoints.iter().peekable(), is.endpoints.iter().peekable());
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

/// Sorts `records` as `Record`'s own order would (RFC 4034's canonical order: name, type,
/// class, TTL, then the data's encoding).
fn sort(records: &mut [Record]) {
    records.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.record_type().cmp(&b.record_type()))
            .then_with(|| a.dns_class.cmp(&b.dns_class))
            .then_with(|| a.ttl.cmp(&b.ttl))
            .then_with(|| data_cmp(&a.data, &b.data))
    });
}

/// `RData`'s order, the order of the data's encodings, compared without encoding them for the
/// data a zone's changes hold (hickory encodes both for every comparison: most of a sort's
/// time, for SRV records).
fn data_cmp(a: &RData, b: &RData) -> Ordering {
    match (a, b) {
        (RData::A(a), RData::A(b)) => a.octets().cmp(&b.octets()),
        (RData::AAAA(a), RData::AAAA(b)) => a.octets().cmp(&b.octets()),
        (RData::SRV(a), RData::SRV(b)) => (a.priority, a.weight, a.port)
            .cmp(&(b.priority, b.weight, b.port))
            .then_with(|| wire_cmp(&a.target, &b.target)),
        (RData::PTR(PTR(a)), RData::PTR(PTR(b))) | (RData::CNAME(CNAME(a)), RData::CNAME(CNAME(b))) => {
            wire_cmp(a, b)
        }
        (a, b) => a.to_bytes().ok().cmp(&b.to_bytes().ok()),
    }
}

/// The order of two names' encodings: each label's length, then its bytes, then the root (a
/// name not fully qualified is written as one that is).
fn wire_cmp(a: &Name, b: &Name) -> Ordering {
    fn wire(name: &Name) -> impl Iterator<Item = u8> + '_ {
        let labels = name
            .iter()
            .flat_map(|l| std::iter::once(l.len() as u8).chain(l.iter().copied()));
        labels.chain([0])
    }
    wire(a).cmp(wire(b))
}

/// A record's hash, as `Record`'s equality compares it (name, case aside; class; data).
fn hash_of(record: &Record, hasher: &impl BuildHasher) -> u64 {
    let mut state = hasher.build_hasher();
    hash_name(&record.name, &mut state);
    record.dns_class.hash(&mut state);
    match &record.data {
        RData::SRV(srv) => {
            (srv.priority, srv.weight, srv.port).hash(&mut state);
            hash_name(&srv.target, &mut state);
        }
        RData::PTR(PTR(name)) | RData::CNAME(CNAME(name)) => hash_name(name, &mut state),
        data => data.hash(&mut state),
    }
    state.finish()
}

/// Hashes `name` as its equality compares it (case aside), a label at a time: `Name`'s own
/// hash feeds the hasher byte by byte.
fn hash_name<H: Hasher>(name: &Name, state: &mut H) {
    let mut lower = [0u8; 63];
    for label in name.iter() {
        let lower = &mut lower[..label.len().min(63)];
        for (to, from) in lower.iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        state.write_u8(lower.len() as u8);
        state.write(lower);
    }
}

/// Moves what is only in `before` to `removed` and what is only in `after` to `added` (each
/// record once), leaving both empty. Each record is hashed once and the hashes sorted: sorting
/// the records themselves cost several times more.
fn differences(
    before: &mut Vec<Record>,
    after: &mut Vec<Record>,
    removed: &mut Vec<Record>,
    added: &mut Vec<Record>,
) {
    let hasher = DefaultHashBuilder::default();
    let hashed = |records: &[Record]| {
        let mut hashes: Vec<(u64, usize)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (hash_of(r, &hasher), i))
            .collect();
        hashes.sort_unstable();
        hashes
    };
    let (b, a) = (hashed(before), hashed(after));
    let (mut only_before, mut only_after) = (vec![false; before.len()], vec![false; after.len()]);
    let (mut i, mut j) = (0, 0);
    while i < b.len() || j < a.len() {
        let hash = match (b.get(i), a.get(j)) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => break,
        };
        let run = |hashes: &[(u64, usize)], from: usize| {
            from + hashes[from..].iter().take_while(|(h, _)| *h == hash).count()
        };
        let (i_end, j_end) = (run(&b, i), run(&a, j));
        // Records of one hash, compared by value: equal hashes of unequal records included.
        mark_unmatched(before, &b[i..i_end], after, &a[j..j_end], &mut only_before);
        mark_unmatched(after, &a[j..j_end], before, &b[i..i_end], &mut only_after);
        (i, j) = (i_end, j_end);
    }
    let keep = |records: &mut Vec<Record>, only: Vec<bool>, to: &mut Vec<Record>| {
        let kept = records.drain(..).zip(only).filter(|(_, only)| *only);
        to.extend(kept.map(|(record, _)| record));
    };
    keep(before, only_before, removed);
    keep(after, only_after, added);
}

/// Marks in `only` the records of `run` (indices into `records`) that no record of `other_run`
/// equals, each value once.
fn mark_unmatched(
    records: &[Record],
    run: &[(u64, usize)],
    other: &[Record],
    other_run: &[(u64, usize)],
    only: &mut [bool],
) {
    for (n, &(_, index)) in run.iter().enumerate() {
        let record = &records[index];
        let repeated = run[..n].iter().any(|&(_, earlier)| records[earlier] == *record);
        let matched = other_run.iter().any(|&(_, k)| other[k] == *record);
        only[index] = !repeated && !matched;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, SRV};

    /// Data compared without encoding it sorts as its encodings do, case and lengths included.
    #[test]
    fn data_sorts_as_its_encoding() {
        let name = |text: &str| Name::from_ascii(text).unwrap();
        let names = [
            "web-0.web.default.svc.cluster.local.",
            "Web-0.web.default.svc.cluster.local.",
            "web-10.web.default.svc.cluster.local.",
            "web.default.svc.cluster.local.",
            "a.b.",
            "ab.",
            "a.b",
            "a-b.c.",
        ];
        let mut data = vec![
            RData::A(A::new(10, 0, 0, 1)),
            RData::A(A::new(10, 0, 0, 12)),
            RData::A(A::new(9, 255, 0, 1)),
            RData::AAAA(AAAA::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            RData::AAAA(AAAA::new(0xfd00, 0, 0, 0, 0, 0, 1, 0)),
        ];
        for target in names {
            data.push(RData::PTR(PTR(name(target))));
            data.push(RData::CNAME(CNAME(name(target))));
            for (weight, port) in [(33, 80), (50, 80), (100, 8080), (33, 443)] {
                data.push(RData::SRV(SRV::new(0, weight, port, name(target))));
            }
        }
        for a in &data {
            for b in &data {
                if a.record_type() == b.record_type() {
                    let encoded = a.to_bytes().unwrap().cmp(&b.to_bytes().unwrap());
                    assert_eq!(data_cmp(a, b), encoded, "{a} against {b}");
                }
            }
        }
    }

    /// What is only on one side moves, once; what both hold stays.
    #[test]
    fn differences_move_what_one_side_alone_holds() {
        let record = |ip: u8, srv_weight: Option<u16>| {
            let owner = Name::from_ascii("web.default.svc.cluster.local.").unwrap();
            let data = match srv_weight {
                None => RData::A(A::new(10, 0, 0, ip)),
                Some(weight) => RData::SRV(SRV::new(
                    0,
                    weight,
                    80,
                    Name::from_ascii(format!("WEB-{ip}.web.default.svc.cluster.local.")).unwrap(),
                )),
            };
            Record::from_rdata(owner, 5, data)
        };
        let mut before = vec![record(1, None), record(2, None), record(2, None), record(1, Some(50))];
        // The same SRV in another case is the same record.
        let mut lower = record(1, Some(50));
        if let RData::SRV(srv) = &mut lower.data {
            srv.target = srv.target.to_lowercase();
        }
        let mut after = vec![record(1, None), lower, record(3, None), record(3, None)];
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        differences(&mut before, &mut after, &mut removed, &mut added);
        assert_eq!(removed, [record(2, None)]);
        assert_eq!(added, [record(3, None)]);
        assert!(before.is_empty() && after.is_empty());
    }
}
