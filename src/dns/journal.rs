//! The transfer journal: the records each published change removed and added, between serials,
//! so that an IXFR (RFC 1995) gets the differences since the client's serial rather than the
//! whole zone. Bounded: the oldest changes go once the journal holds [`Journal::MAX_RECORDS`].
//!
//! A change is worked out at publication from the Services and addresses it touched, by making
//! their records from the previous snapshot and from the new one (the rules' own answers, as a
//! transfer makes them), so it is exact: a change that alters no record has no differences, and
//! the serial does not move for it.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Record;

use crate::dns::contents;
use crate::dns::rules::Zone;
use crate::dns::view::View;

/// The records one publication removed and added, from serial `from` to serial `to`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }

    fn records(&self) -> usize {
        self.removed.len() + self.added.len()
    }
}

/// The changes of the last publications, oldest first, each following the one before.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    changes: VecDeque<Arc<Change>>,
    records: usize,
}

impl Journal {
    /// Records kept at most (about 100 bytes each): changes beyond go, oldest first, and a
    /// client further behind gets the whole zone.
    pub const MAX_RECORDS: usize = 200_000;

    /// Appends `change`, which must start at the serial the last one ended with (else the
    /// journal starts over from it).
    pub fn push(&mut self, change: Change) {
        if self
            .changes
            .back()
            .is_some_and(|last| last.to != change.from)
        {
            self.clear();
        }
        self.records += change.records();
        self.changes.push_back(Arc::new(change));
        while self.records > Self::MAX_RECORDS {
            match self.changes.pop_front() {
                Some(oldest) => self.records -= oldest.records(),
                None => break,
            }
        }
    }

    pub fn clear(&mut self) {
        self.changes.clear();
        self.records = 0;
    }

    /// The changes from `serial` to the newest, if the journal reaches back to it.
    pub fn since(&self, serial: u32) -> Option<Vec<Arc<Change>>> {
        let first = self.changes.iter().position(|c| c.from == serial)?;
        Some(self.changes.iter().skip(first).cloned().collect())
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The records that differ between `old` and `new` for the Services and addresses a change
/// touched (serials left at 0: the caller numbers it); `None` once more than `limit` records
/// differ, which the journal could not hold: working out the rest of a change that large (a
/// re-list after most of 100,000 pods changed) would hold the publication for seconds.
pub fn diff<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: u32, to: u32, records: usize) -> Change {
        let record = Record::from_rdata(
            hickory_proto::rr::Name::root(),
            5,
            hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, 1)),
        );
        Change {
            from,
            to,
            removed: Vec::new(),
            added: vec![record; records],
        }
    }

    #[test]
    fn the_journal_chains_serials_and_forgets_the_oldest() {
        let mut journal = Journal::default();
        journal.push(change(1, 2, 10));
        journal.push(change(2, 3, 10));
        assert_eq!(journal.since(1).map(|c| c.len()), Some(2));
        assert_eq!(journal.since(2).map(|c| c.len()), Some(1));
        assert!(journal.since(3).is_none() && journal.since(0).is_none());
        // A gap starts it over.
        journal.push(change(7, 8, 1));
        assert!(journal.since(1).is_none());
        assert_eq!(journal.since(7).map(|c| c.len()), Some(1));
        // Past the bound the oldest go.
        journal.push(change(8, 9, Journal::MAX_RECORDS));
        assert!(journal.since(7).is_none() && journal.since(8).is_some());
        assert_eq!(journal.len(), 1);
    }
}
