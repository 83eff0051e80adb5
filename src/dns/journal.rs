//! The transfer journal: the records each published change removed and added, between serials,
//! so that an IXFR (RFC 1995) gets the differences since the client's serial rather than the
//! whole zone. Bounded: the oldest changes go once the journal holds [`Journal::MAX_RECORDS`].
//! The writer works each change out ([`crate::cluster::journal`]); the view keeps them.

use std::sync::Arc;

use hickory_proto::rr::Record;

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

    pub fn records(&self) -> usize {
        self.removed.len() + self.added.len()
    }
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
