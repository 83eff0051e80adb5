//! Working out a publication's record changes for the transfer journal
//! ([`crate::dns::journal`]): the records of the Services and addresses a change touched, made
//! from the previous snapshot and from the new one by the rules that answer queries, compared.
//! Exact: a change that alters no record has no differences, and the serial does not move for
//! it. The writer calls it at publication, with transfers allowed.

use std::net::IpAddr;

use hickory_proto::rr::Record;

use crate::dns::contents;
use crate::dns::journal::Change;
use crate::dns::view::View;
use crate::dns::zone::Zone;

/// The records that differ between `old` and `new` for the Services and addresses a change
/// touched (serials left at 0: the caller numbers it); `None` once more than `limit` records
/// differ, which the journal could not hold: working out the rest of a change that large (a
/// re-list after most of 100,000 pods changed) would hold the publication for seconds.
pub(crate) fn diff<'a>(
    old: &View,
    new: &View,
    zone: &Zone,
    services: impl IntoIterator<Item = (&'a str, &'a str)>,
    addresses: impl IntoIterator<Item = IpAddr>,
    limit: usize,
) -> Option<Change> {
    let mut change = Change::default();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    // One Service or address at a time: no two of them own the same name, so each one's
    // records can be compared on their own, and the work stops as soon as the limit is passed.
    let compare = |before: &mut Vec<Record>, after: &mut Vec<Record>, change: &mut Change| {
        differences(before, after, &mut change.removed, &mut change.added);
        change.records() <= limit
    };
    for (namespace, name) in services {
        contents::service_records(old, zone, namespace, name, &mut before);
        contents::service_records(new, zone, namespace, name, &mut after);
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
    // In a stable order, whatever order the touched names came in.
    change.removed.sort();
    change.added.sort();
    Some(change)
}

/// Moves what is only in `before` to `removed` and what is only in `after` to `added`,
/// leaving both empty.
fn differences(
    before: &mut Vec<Record>,
    after: &mut Vec<Record>,
    removed: &mut Vec<Record>,
    added: &mut Vec<Record>,
) {
    before.sort();
    before.dedup();
    after.sort();
    after.dedup();
    let (mut b, mut a) = (before.drain(..).peekable(), after.drain(..).peekable());
    loop {
        match (b.peek(), a.peek()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next();
            }
            (Some(x), Some(y)) if x < y => removed.extend(b.next()),
            (Some(_), Some(_)) => added.extend(a.next()),
            (Some(_), None) => removed.extend(b.next()),
            (None, Some(_)) => added.extend(a.next()),
            (None, None) => break,
        }
    }
}
