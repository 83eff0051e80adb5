//! The transfer journal: the records each published change removed and added, between serials,
//! so that an IXFR (RFC 1995) gets the differences since the client's serial rather than the
//! whole zone. Bounded: the oldest changes go once the journal holds [`Journal::MAX_RECORDS`].
//! The writer works each change out ([`crate::cluster::journal`]); the view keeps them.

use std::cmp::Ordering;
use std::sync::Arc;

use hickory_proto::rr::rdata::{CNAME, PTR};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};

/// The records one publication removed and added, from serial `from` to serial `to`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    pub removed: WireRecords,
    pub added: WireRecords,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }

    pub fn records(&self) -> usize {
        self.removed.len() + self.added.len()
    }
}

/// Records as they go on the wire, uncompressed, one after the other: what a change holds until
/// an IXFR asks for it. A change of a Service of ten pods holds some forty records; as hickory
/// records (two names each) they cost the writer more to make than the change itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireRecords {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<u32>,
}

impl WireRecords {
    /// Empty, with room for `bytes` bytes of records.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(bytes / 64),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Each record's bytes.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start as usize..end as usize])
    }

    /// Appends one record's bytes.
    pub fn push(&mut self, record: &[u8]) {
        self.bytes.extend_from_slice(record);
        self.end_record();
    }

    /// The buffer the next record is written to the end of; [`WireRecords::end_record`] when it
    /// is complete.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    pub fn end_record(&mut self) {
        // The journal holds at most `Journal::MAX_RECORDS` records of at most a few hundred
        // bytes each: far below 4 GB.
        self.ends
            .push(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX));
    }

    /// The records as hickory's, in `Record`'s order (RFC 4034's canonical order), as an IXFR
    /// sends them.
    pub fn records(&self) -> Vec<Record> {
        let mut records: Vec<Record> = self
            .iter()
            .filter_map(|bytes| Record::read(&mut BinDecoder::new(bytes)).ok())
            .collect();
        sort(&mut records);
        records
    }

    /// Drops the records after the first `len`.
    pub fn truncate(&mut self, len: usize) {
        if len < self.ends.len() {
            self.ends.truncate(len);
            let end = self.ends.last().map_or(0, |&end| end as usize);
            self.bytes.truncate(end);
        }
    }
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
        (RData::PTR(PTR(a)), RData::PTR(PTR(b)))
        | (RData::CNAME(CNAME(a)), RData::CNAME(CNAME(b))) => wire_cmp(a, b),
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

/// The changes of the last publications, oldest first, each following the one before. In a
/// persistent vector: each publication's view holds the journal as it was, and appending to a
/// copy shares all but a few nodes of it (a copy of a list of 10,000 changes per pod change
/// took more of the writer's time than working the change out).
#[derive(Clone, Debug, Default)]
pub struct Journal {
    changes: imbl::Vector<Arc<Change>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, SRV};

    fn change(from: u32, to: u32, records: usize) -> Change {
        let mut added = WireRecords::default();
        for _ in 0..records {
            added.push(&[0, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]);
        }
        Change {
            from,
            to,
            removed: WireRecords::default(),
            added,
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

    /// Records kept on the wire come back as hickory's, sorted.
    #[test]
    fn wire_records_decode_in_records_order() {
        let record = |ip: u8| {
            let owner = Name::from_ascii("web.default.svc.cluster.local.").unwrap();
            Record::from_rdata(owner, 5, RData::A(A::new(10, 0, 0, ip)))
        };
        let mut records = WireRecords::default();
        for ip in [3, 1, 2] {
            records.push(&record(ip).to_bytes().unwrap());
        }
        assert_eq!(records.records(), [record(1), record(2), record(3)]);
        records.truncate(1);
        assert_eq!(records.records(), [record(3)]);
        assert_eq!(change(1, 2, 1).added.records().len(), 1);
    }
}
