//! The one writer of answers: every answer to a QUERY in our zones, over UDP and over TCP, is
//! written here straight into the output buffer — every record type the rules give (A, AAAA,
//! SRV with its additional addresses, PTR, CNAME chains, TXT, SOA, NS, ANY), NOERROR,
//! NXDOMAIN, NODATA, REFUSED and SERVFAIL, with or without EDNS (the DO bit copied, the
//! reason of a negative answer as an Extended DNS Error), a UDP answer cut to the client's limit
//! with its records rotated — without building records or messages.
//!
//! What it declines goes to hickory's parser and encoder ([`crate::server::handler`]): messages
//! that are not a plain query (responses, other opcodes, several questions or records, a
//! question name with a compression pointer, a class other than IN, EDNS versions above 0) and
//! signed ones (TSIG), which are rare and whose answers must be signed. EDNS options in a query
//! (COOKIE, padding, any other) are ignored, as RFC 6891 §6.1.2 allows; a server that does not
//! implement cookies ignores them (RFC 7873 §5.2), and so does the hickory path. The few options
//! hickory's parser checks (NSID, DAU/DHU/N3U, client subnet), rare in a cluster, take its path,
//! so that a malformed one gets the FORMERR it gives.
//!
//! hickory's encoder is the reference: the bytes must be exactly what it would send for the
//! same records, name compression and where it cuts included. This module's tests compare the
//! two over thousands of messages, as do the property test over random clusters and the fuzz
//! targets.

use std::net::IpAddr;

use hickory_proto::rr::{DNSClass, Name, RecordType};
use tracing::debug;

use crate::dns::answer::{About, Data, Outcome, Owner, Section, Sink, import_labels, walk};
use crate::dns::explain::{self, EDE_OPTION};
use crate::dns::question::MAX_LABELS;
use crate::dns::view::View;
use crate::dns::zone::{Apex, Zone};
use crate::message::{CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD};
use crate::server::truncation::rotation;

const HEADER_LEN: usize = 12;
/// The question always sits right after the header.
const QUESTION_OFFSET: usize = HEADER_LEN;
/// hickory's encoder remembers at most this many name suffixes for compression.
const COMPRESSION_CANDIDATES: usize = 64;
/// hickory's encoder compresses at most this many names in a message; later ones go whole.
const COMPRESSED_NAMES: usize = 120;
/// Past this offset no suffix is remembered: a pointer could not reach it.
const POINTER_REACH: usize = 0x3FFF;

const TYPE_OPT: u16 = 41;
/// The EDNS options hickory's parser reads rather than carries (NSID, DAU, DHU, N3U, client
/// subnet), answering FORMERR when one is malformed: a query with one goes its way.
const CHECKED_OPTIONS: [u16; 5] = [3, 5, 6, 7, 8];
const FLAG_DO: u8 = 0x80;
/// The TC bit, in the third byte of the header.
const FLAG_TC: u8 = 0x02;

/// Which transport an answer goes out on: a UDP answer is cut to the client's limit, a TCP one
/// is whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// A name as it goes on the wire (length-prefixed labels, no root).
#[derive(Debug)]
struct WireName(Box<[u8]>);

impl WireName {
    fn of(name: &Name) -> Self {
        let mut bytes = Vec::new();
        for label in name.iter() {
            // A label has at most 63 bytes.
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label);
        }
        Self(bytes.into())
    }
}

/// The zone's fixed names in wire form, encoded once at startup.
#[derive(Debug)]
pub(crate) struct WireZone {
    origin: WireName,
    in_addr_arpa: WireName,
    ip6_arpa: WireName,
    clusterset: WireName,
    nameserver: WireName,
    hostmaster: WireName,
}

impl WireZone {
    pub(crate) fn new(zone: &Zone) -> Self {
        Self {
            origin: WireName::of(zone.apex(Apex::Zone)),
            in_addr_arpa: WireName::of(zone.apex(Apex::InAddrArpa)),
            ip6_arpa: WireName::of(zone.apex(Apex::Ip6Arpa)),
            clusterset: WireName::of(zone.apex(Apex::Clusterset)),
            nameserver: WireName::of(zone.nameserver()),
            hostmaster: WireName::of(zone.hostmaster()),
        }
    }

    fn apex(&self, apex: Apex) -> &[u8] {
        match apex {
            Apex::Zone => &self.origin.0,
            Apex::InAddrArpa => &self.in_addr_arpa.0,
            Apex::Ip6Arpa => &self.ip6_arpa.0,
            Apex::Clusterset => &self.clusterset.0,
        }
    }
}

/// A query in the shape this module answers: one question with an uncompressed name, class IN,
/// and at most an OPT record (version 0, any options).
struct Query<'q> {
    message: &'q [u8],
    /// Where the question name's root byte is.
    name_end: usize,
    qtype: RecordType,
    /// The client's UDP limit when it sent EDNS.
    edns_limit: Option<u16>,
    /// The query's DO bit, which the response copies.
    dnssec_ok: u8,
}

impl<'q> Query<'q> {
    /// `None` for anything else, including every malformed message; `lower` receives the
    /// question name's labels in lower case, `starts` where each begins.
    fn parse(
        message: &'q [u8],
        lower: &mut [u8; 255],
        starts: &mut [u8; MAX_LABELS],
    ) -> Option<(Self, usize)> {
        let header = message.get(..HEADER_LEN)?;
        // A query (not a response) with opcode QUERY, one question, and at most one more record.
        if header[2] & 0xF8 != 0 || header[4..11] != [0, 1, 0, 0, 0, 0, 0] || header[11] > 1 {
            return None;
        }
        let mut count = 0;
        let mut at = QUESTION_OFFSET;
        loop {
            let len = usize::from(*message.get(at)?);
            if len == 0 {
                break;
            }
            // Compression pointers and extended label types go to hickory.
            if len > 63 || count == MAX_LABELS || at + 1 + len - QUESTION_OFFSET > 254 {
                return None;
            }
            let label = message.get(at + 1..at + 1 + len)?;
            let offset = at - QUESTION_OFFSET;
            lower[offset] = len as u8;
            for (l, b) in lower[offset + 1..offset + 1 + len].iter_mut().zip(label) {
                *l = b.to_ascii_lowercase();
            }
            starts[count] = offset as u8;
            count += 1;
            at += 1 + len;
        }
        let name_end = at;
        let fixed = message.get(name_end + 1..name_end + 5)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        if qclass != u16::from(DNSClass::IN) || count == 0 || qtype == TYPE_OPT {
            return None;
        }
        let rest = &message[name_end + 5..];
        let (edns_limit, dnssec_ok) = match header[11] {
            0 if rest.is_empty() => (None, 0),
            1 => opt(rest)?,
            _ => return None,
        };
        let query = Self {
            message,
            name_end,
            qtype: RecordType::from(qtype),
            edns_limit,
            dnssec_ok,
        };
        Some((query, count))
    }

    /// The question section as received: name, type and class.
    fn question(&self) -> &'q [u8] {
        &self.message[QUESTION_OFFSET..self.name_end + 5]
    }

    /// The question name as asked (case kept), without the root.
    fn asked_name(&self) -> &'q [u8] {
        &self.message[QUESTION_OFFSET..self.name_end]
    }

    fn id(&self) -> u16 {
        u16::from_be_bytes([self.message[0], self.message[1]])
    }
}

/// The client's UDP limit and DO bit from the OPT record that is the rest of a query (root
/// owner, EDNS version 0, options well formed and ignored); `None` for anything else (a TSIG
/// record, a later EDNS version: hickory answers those).
fn opt(rest: &[u8]) -> Option<(Option<u16>, u8)> {
    let [
        0,
        type_hi,
        type_lo,
        size_hi,
        size_lo,
        _,
        0,
        flags,
        _,
        len_hi,
        len_lo,
        options @ ..,
    ] = rest
    else {
        return None;
    };
    if u16::from_be_bytes([*type_hi, *type_lo]) != TYPE_OPT
        || usize::from(u16::from_be_bytes([*len_hi, *len_lo])) != options.len()
    {
        return None;
    }
    let mut at = 0;
    while at < options.len() {
        let header = options.get(at..at + 4)?;
        if CHECKED_OPTIONS.contains(&u16::from_be_bytes([header[0], header[1]])) {
            return None;
        }
        at += 4 + usize::from(u16::from_be_bytes([header[2], header[3]]));
    }
    if at != options.len() {
        return None;
    }
    let size = u16::from_be_bytes([*size_hi, *size_lo]);
    Some((
        Some(size.clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD)),
        flags & FLAG_DO,
    ))
}

/// Writes the response to `message` into `out` when it is a query this module answers;
/// `false` leaves it to hickory's path (and `out` in an unspecified state).
pub(crate) fn answer(
    view: &View,
    zone: &Zone,
    wire: &WireZone,
    message: &[u8],
    transport: Transport,
    out: &mut Vec<u8>,
) -> bool {
    let mut lower = [0u8; 255];
    let mut starts = [0u8; MAX_LABELS];
    let Some((query, count)) = Query::parse(message, &mut lower, &mut starts) else {
        return false;
    };
    let mut slices = [&[][..]; MAX_LABELS];
    for (slot, &start) in slices[..count].iter_mut().zip(&starts[..count]) {
        let start = usize::from(start);
        let len = usize::from(lower[start]);
        *slot = &lower[start + 1..start + 1 + len];
    }
    let labels = &slices[..count];
    let limit = match (transport, query.edns_limit) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, Some(limit)) => usize::from(limit),
        (Transport::Udp, None) => usize::from(CLASSIC_UDP_PAYLOAD),
    };
    let mut message = Message {
        view,
        zone,
        wire,
        query: &query,
        out,
        limit,
    };
    message.write(labels)
}

/// The labels of `name` in lower case.
fn lowercase<'b>(
    name: &Name,
    lower: &'b mut [u8; 255],
    slices: &'b mut [&'b [u8]; MAX_LABELS],
) -> &'b [&'b [u8]] {
    let mut ends = [0u8; MAX_LABELS];
    let (mut at, mut count) = (0usize, 0);
    for label in name.iter().take(MAX_LABELS) {
        let end = (at + label.len()).min(lower.len());
        for (to, from) in lower[at..end].iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        at = end;
        ends[count] = end as u8;
        count += 1;
    }
    let lower: &'b [u8; 255] = lower;
    let mut start = 0;
    for (slot, &end) in slices.iter_mut().zip(&ends[..count]) {
        *slot = &lower[start..usize::from(end)];
        start = usize::from(end);
    }
    &slices[..count]
}

/// One response being written.
struct Message<'m, 'q> {
    view: &'m View,
    zone: &'m Zone,
    wire: &'m WireZone,
    query: &'m Query<'q>,
    out: &'m mut Vec<u8>,
    /// Where the message must end.
    limit: usize,
}

/// What the records of one attempt at the message came to.
#[derive(Clone, Copy, Default)]
struct Written {
    answers: u16,
    authority: u16,
    additional: u16,
    /// A record did not fit.
    overflow: bool,
}

/// Where the whole attempt's sections ended, when they were written whole: the first two cuts
/// keep such a prefix.
#[derive(Clone, Copy, Default)]
struct Ends {
    answers: Option<End>,
    /// The end of the authority section (the answers' too, when there is none).
    authority: Option<End>,
}

#[derive(Clone, Copy)]
struct End {
    out: usize,
    written: Written,
}

impl<'m> Message<'m, '_> {
    /// Writes the message whole if it fits; else as hickory's path cuts it (see
    /// [`crate::server::truncation`]): without the reason, then (TC set) without the additional
    /// section, then without the authority section, then with as many answer records as fit
    /// beside the OPT record, rotated by the query's ID.
    fn write(&mut self, labels: &[&[u8]]) -> bool {
        let Some((outcome, written, ends)) = self.records(labels, None) else {
            return false;
        };
        debug!(
            name = %String::from_utf8_lossy(self.query.asked_name()),
            qtype = %self.query.qtype,
            rcode = %outcome.rcode,
            "query"
        );
        let reason = self.reason(labels, &outcome);
        if !written.overflow {
            let records_end = self.out.len();
            if self.finish(written, reason.as_deref(), false) {
                return true;
            }
            // A reason is worth less than any record: without it, if that fits.
            self.out.truncate(records_end);
            if reason.is_some() && self.finish(written, None, false) {
                return true;
            }
        }
        // The next cuts keep a prefix of the whole attempt: without the additional section,
        // then without the authority section too. Each is that prefix if it was written whole
        // and leaves room for the OPT record.
        let opt = self.query.edns_limit.map_or(0, |_| OPT_LEN);
        for end in [ends.authority, ends.answers].into_iter().flatten() {
            if end.out + opt <= self.limit {
                self.out.truncate(end.out);
                return self.finish(end.written, None, true);
            }
        }
        let rotating = outcome.answers - outcome.aliases;
        let start = rotation(self.query.id(), rotating);
        match self.records(labels, Some((start, &outcome))) {
            Some((_, written, _)) => self.finish(written, None, true),
            None => false,
        }
    }

    /// Why an empty or negative answer is so, for clients that speak EDNS (the EDE's data).
    fn reason(&self, labels: &[&[u8]], outcome: &Outcome<'_>) -> Option<Vec<u8>> {
        let (view, zone) = (self.view, self.zone);
        if self.query.edns_limit.is_none()
            || !zone.explain
            || !explain::tells_why(view, zone, labels, outcome.rcode)
        {
            return None;
        }
        let mut lower = [0u8; 255];
        let mut slices = [&[][..]; MAX_LABELS];
        let about = match outcome.empty_at? {
            About::Question => labels,
            About::Target(target) => lowercase(target, &mut lower, &mut slices),
        };
        Some(explain::explain(view, zone, about, self.query.qtype, false).option_data())
    }

    /// Writes the header, the question and the records: all of them, or (`rotated`: the first
    /// answer record to write, and the outcome of the whole attempt) only the answers, rotated,
    /// as many as fit beside the OPT record; `None` when not even the header, the question and
    /// the OPT record fit.
    fn records(
        &mut self,
        labels: &[&[u8]],
        rotated: Option<(usize, &Outcome<'_>)>,
    ) -> Option<(Outcome<'m>, Written, Ends)> {
        let query = self.query;
        self.out.clear();
        let opt = query.edns_limit.map_or(0, |_| OPT_LEN);
        // The header is filled in once the outcome is known.
        self.out.extend_from_slice(&[0; HEADER_LEN]);
        self.out.extend_from_slice(query.question());
        if self.out.len() + opt > self.limit {
            return None;
        }
        let mut names = Names::new();
        // hickory files the question whole (root, type and class included) as one compression
        // candidate, which no name can match.
        names.store_never_matching();
        let (view, zone, qtype): (&'m View, &'m Zone, RecordType) =
            (self.view, self.zone, query.qtype);
        // Taken from this thread's buffer for the time of the attempt (and given back), so that
        // it lives beside the writer.
        let mut deferred = DEFERRED.with_borrow_mut(std::mem::take);
        deferred.clear();
        let mut writer = RecordWriter {
            out: &mut *self.out,
            names,
            zone,
            view,
            wire: self.wire,
            asked: query.asked_name(),
            limit: self.limit,
            written: Written::default(),
            deferred: None,
            ends: Ends::default(),
            asked_at: None,
        };
        let outcome = match rotated {
            // The whole answer in one walk of the rules: the answers written as they come, the
            // SOA of a negative answer after them, the additional records kept back until then.
            None => {
                writer.deferred = Some(&mut deferred);
                let outcome = walk(view, zone, labels, qtype, DNSClass::IN, None, &mut writer);
                writer.end_sections();
                if let Some(deferred) = writer.deferred.take() {
                    writer.write_deferred(deferred);
                }
                outcome
            }
            Some((start, whole)) => {
                writer.limit -= opt;
                let mut rotated = Rotated {
                    inner: &mut writer,
                    aliases: whole.aliases,
                    start,
                    pass: 0,
                    seen: 0,
                };
                let answers = Some(Section::Answer);
                let pass = |rotated: &mut Rotated<'_, RecordWriter<'_>>| {
                    walk(view, zone, labels, qtype, DNSClass::IN, answers, rotated)
                };
                let outcome = pass(&mut rotated);
                // Nothing more is written once a record did not fit: the answers before
                // `start` are walked for only if those after it left room.
                if rotated.inner.written.overflow {
                    outcome
                } else {
                    rotated.pass = 1;
                    rotated.seen = 0;
                    pass(&mut rotated)
                }
            }
        };
        let (written, ends) = (writer.written, writer.ends);
        DEFERRED.with_borrow_mut(|kept| *kept = deferred);
        self.write_header(&outcome);
        Some((outcome, written, ends))
    }

    /// Ends the message: the OPT record (with the reason, if given) when the query had EDNS,
    /// TC when cut, and the record counts; `false` if the OPT record does not fit.
    fn finish(&mut self, mut written: Written, reason: Option<&[u8]>, cut: bool) -> bool {
        let query = self.query;
        if query.edns_limit.is_some() {
            let data_len = reason.map_or(0, |r| 4 + r.len());
            if self.out.len() + OPT_LEN + data_len > self.limit {
                return false;
            }
            let at = self.out.len();
            self.out.extend_from_slice(&OPT_RECORD);
            self.out[at + OPT_FLAGS] = query.dnssec_ok;
            if let Some(data) = reason {
                let length = (4 + data.len()) as u16;
                self.out[at + OPT_LEN - 2..].copy_from_slice(&length.to_be_bytes());
                self.out.extend_from_slice(&EDE_OPTION.to_be_bytes());
                self.out
                    .extend_from_slice(&(data.len() as u16).to_be_bytes());
                self.out.extend_from_slice(data);
            }
            written.additional += 1;
        }
        if cut {
            self.out[2] |= FLAG_TC;
        }
        self.out[6..8].copy_from_slice(&written.answers.to_be_bytes());
        self.out[8..10].copy_from_slice(&written.authority.to_be_bytes());
        self.out[10..12].copy_from_slice(&written.additional.to_be_bytes());
        true
    }

    /// The response header (its counts filled in at the end).
    fn write_header(&mut self, outcome: &Outcome<'_>) {
        let request = self.query.message;
        // QR, and the request's RD; then its CD, and the response code.
        let mut flags = 0x80 | (request[2] & 0x01);
        if outcome.authoritative {
            flags |= 0x04;
        }
        let rcode = (u16::from(outcome.rcode) & 0x0F) as u8;
        self.out[..4].copy_from_slice(&[
            request[0],
            request[1],
            flags,
            (request[3] & 0x10) | rcode,
        ]);
        self.out[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    }
}

thread_local! {
    /// The additional records kept back while the answers are written (see
    /// [`RecordWriter::deferred`]): one buffer per answering thread, reused.
    static DEFERRED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The OPT record we send: root owner, type 41, our payload size, extended rcode 0, version 0,
/// the flags (DO copied in at [`OPT_FLAGS`]), no options.
#[rustfmt::skip]
const OPT_RECORD: [u8; 11] = [
    0,
    0, 41,
    (MAX_UDP_PAYLOAD >> 8) as u8, MAX_UDP_PAYLOAD as u8,
    0, 0, 0, 0,
    0, 0,
];
const OPT_LEN: usize = OPT_RECORD.len();
/// Where the OPT record's first flags byte is; its top bit is DO (RFC 3225).
const OPT_FLAGS: usize = 7;

/// Passes the answers on rotated: the CNAMEs first, then (pass 0) those from `start` on, then
/// (pass 1) those before it; the rules are walked once per pass.
struct Rotated<'w, W> {
    inner: &'w mut W,
    aliases: usize,
    start: usize,
    pass: u8,
    seen: usize,
}

impl<W: Sink> Sink for Rotated<'_, W> {
    fn record(&mut self, section: Section, owner: Owner<'_>, data: Data<'_>) {
        let index = self.seen;
        self.seen += 1;
        // The CNAMEs and the answers from `start` on in the first pass, the rest in the second.
        let first_pass = index < self.aliases || index - self.aliases >= self.start;
        let take = first_pass == (self.pass == 0);
        if take {
            self.inner.record(section, owner, data);
        }
    }
}

/// Writes records into a message, compressing names as hickory's encoder does.
struct RecordWriter<'w> {
    out: &'w mut Vec<u8>,
    names: Names,
    zone: &'w Zone,
    view: &'w View,
    wire: &'w WireZone,
    /// The question name as asked, in wire form.
    asked: &'w [u8],
    limit: usize,
    /// Once a record does not fit, none is written after it: a whole answer then fails, and
    /// a cut one keeps the answers before it.
    written: Written,
    /// The additional records, as the rules give them interleaved with the answers: kept here
    /// (owner name uncompressed, type, address) until the answers are written, then written
    /// after them, compressed in their place. `None`: written as they come.
    deferred: Option<&'w mut Vec<u8>>,
    ends: Ends,
    /// Where a compressed question name now points, once one was written: the first remembered
    /// suffix that matches a name stays the first, so every later one points there too (a
    /// Service's answers all have the question's name).
    asked_at: Option<u16>,
}

impl Sink for RecordWriter<'_> {
    fn record(&mut self, section: Section, owner: Owner<'_>, data: Data<'_>) {
        if self.written.overflow {
            return;
        }
        if let (Section::Additional, Some(deferred), Data::Address(ip)) =
            (section, self.deferred.as_deref_mut(), data)
        {
            let at = deferred.len();
            deferred.push(0);
            spell(deferred, owner, self.asked, self.wire);
            deferred[at] = (deferred.len() - at - 1) as u8;
            match ip {
                IpAddr::V4(v4) => {
                    deferred.push(4);
                    deferred.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    deferred.push(16);
                    deferred.extend_from_slice(&v6.octets());
                }
            }
            return;
        }
        if section == Section::Authority && self.ends.answers.is_none() {
            self.ends.answers = Some(self.end());
        }
        let mark = (self.out.len(), self.names.len(), self.names.compressed);
        if self.write_record(owner, data).is_none() || self.out.len() > self.limit {
            self.take_back(mark);
            return;
        }
        let count = match section {
            Section::Answer => &mut self.written.answers,
            Section::Authority => &mut self.written.authority,
            Section::Additional => &mut self.written.additional,
        };
        *count += 1;
    }
}

impl RecordWriter<'_> {
    /// Takes back the record begun at `mark` (output length, names remembered, names
    /// compressed), which did not fit: nothing is written after it.
    fn take_back(&mut self, (out, names, compressed): (usize, usize, usize)) {
        self.out.truncate(out);
        self.names.truncate(names, compressed);
        if self.asked_at.is_some_and(|at| usize::from(at) >= out) {
            self.asked_at = None;
        }
        self.written.overflow = true;
    }

    fn end(&self) -> End {
        End {
            out: self.out.len(),
            written: self.written,
        }
    }

    /// Notes where the answer and authority sections ended, if they were written whole.
    fn end_sections(&mut self) {
        if !self.written.overflow {
            let end = self.end();
            self.ends.answers.get_or_insert(end);
            self.ends.authority = Some(end);
        }
    }

    /// One record; `None` if it does not fit (as hickory decides it: a name's labels are
    /// written whole before they are compressed).
    fn write_record(&mut self, owner: Owner<'_>, data: Data<'_>) -> Option<()> {
        self.name(owner, true)?;
        let (rtype, ttl) = (data.record_type(), self.zone.ttl);
        self.out.extend_from_slice(&u16::from(rtype).to_be_bytes());
        self.out
            .extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        let length_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        match data {
            Data::Address(IpAddr::V4(v4)) => self.out.extend_from_slice(&v4.octets()),
            Data::Address(IpAddr::V6(v6)) => self.out.extend_from_slice(&v6.octets()),
            Data::Cname(target) => self.name(Owner::Held(target), true)?,
            Data::Srv {
                weight,
                port,
                target,
            } => {
                self.out.extend_from_slice(&[0, 0]);
                self.out.extend_from_slice(&weight.to_be_bytes());
                self.out.extend_from_slice(&port.to_be_bytes());
                // RFC 2782: the target is not compressed (hickory writes it whole, and
                // remembers its suffixes all the same).
                self.name(target, false)?;
            }
            Data::Ptr(target) => self.name(target, true)?,
            Data::Version(version) => {
                self.out.push(version.len() as u8);
                self.out.extend_from_slice(version.as_bytes());
            }
            Data::Soa => {
                self.name(Owner::Nameserver, true)?;
                let wire = self.wire;
                self.name_bytes(&wire.hostmaster.0, true)?;
                self.out
                    .extend_from_slice(&self.view.serial().to_be_bytes());
                for timer in self.zone.soa_timers() {
                    self.out.extend_from_slice(&timer.to_be_bytes());
                }
            }
            Data::Ns => self.name(Owner::Nameserver, true)?,
        }
        let length = (self.out.len() - length_at - 2) as u16;
        self.out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        (self.out.len() <= self.limit).then_some(())
    }

    /// Writes `owner`'s name: its labels whole, then (with `compress`) a pointer in place of the
    /// longest suffix already written; `None` if the labels, whole, pass the limit.
    fn name(&mut self, owner: Owner<'_>, compress: bool) -> Option<()> {
        let start = self.out.len();
        // Only while names are compressed: a name written whole is not looked up.
        let asked =
            compress && matches!(owner, Owner::Asked) && self.names.compressed < COMPRESSED_NAMES;
        if asked && let Some(at) = self.asked_at {
            // What the scan would find again; the labels, whole, must still fit (hickory
            // writes them before it compresses).
            if start + self.asked.len() > self.limit {
                return None;
            }
            self.names.compressed += 1;
            self.out.extend_from_slice(&(0xC000 | at).to_be_bytes());
            return (self.out.len() <= self.limit).then_some(());
        }
        let remembered = self.names.len();
        spell(self.out, owner, self.asked, self.wire);
        self.finish_name(start, compress)?;
        if asked {
            self.asked_at = if self.out[start] & 0xC0 == 0xC0 {
                Some(u16::from_be_bytes([self.out[start], self.out[start + 1]]) & 0x3FFF)
            } else {
                self.names.starts_at(remembered, start)
            };
        }
        Some(())
    }

    /// Writes the additional records kept back while the answers were written (see
    /// [`RecordWriter::deferred`]), each owner compressed where it now stands.
    fn write_deferred(&mut self, deferred: &[u8]) {
        let mut at = 0;
        // Each entry: the name's length, the name, the address's length (4 or 16), the address.
        while at < deferred.len() && !self.written.overflow {
            let name_len = usize::from(deferred[at]);
            let name = &deferred[at + 1..at + 1 + name_len];
            let address_len = usize::from(deferred[at + 1 + name_len]);
            let address_at = at + 2 + name_len;
            let address = &deferred[address_at..address_at + address_len];
            at = address_at + address_len;
            let mark = (self.out.len(), self.names.len(), self.names.compressed);
            if self.deferred_record(name, address).is_none() || self.out.len() > self.limit {
                self.take_back(mark);
                return;
            }
            self.written.additional += 1;
        }
    }

    fn deferred_record(&mut self, name: &[u8], address: &[u8]) -> Option<()> {
        self.name_bytes(name, true)?;
        let rtype = if address.len() == 4 {
            RecordType::A
        } else {
            RecordType::AAAA
        };
        self.out.extend_from_slice(&u16::from(rtype).to_be_bytes());
        self.out
            .extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        self.out.extend_from_slice(&self.zone.ttl.to_be_bytes());
        self.out
            .extend_from_slice(&(address.len() as u16).to_be_bytes());
        self.out.extend_from_slice(address);
        (self.out.len() <= self.limit).then_some(())
    }

    /// Writes a name given in wire form.
    fn name_bytes(&mut self, bytes: &[u8], compress: bool) -> Option<()> {
        let start = self.out.len();
        self.out.extend_from_slice(bytes);
        self.finish_name(start, compress)
    }

    /// The labels from `start` to the end of `out` are a name just written whole: compress it
    /// as hickory does, and end it.
    fn finish_name(&mut self, start: usize, compress: bool) -> Option<()> {
        if self.out.len() > self.limit {
            return None;
        }
        let end = self.out.len();
        let compress = compress && self.names.compressed < COMPRESSED_NAMES;
        let mut at = start;
        if compress {
            self.names.compressed += 1;
        }
        while at < end {
            if compress && let Some(pointer) = self.names.find(self.out, at, end) {
                self.out.truncate(at);
                self.out
                    .extend_from_slice(&(0xC000 | pointer).to_be_bytes());
                return Some(());
            }
            self.names.store(at, end);
            at += 1 + usize::from(self.out[at]);
        }
        self.out.push(0);
        (self.out.len() <= self.limit).then_some(())
    }
}

/// Appends the labels of `owner`'s name (no root) to `out`; `asked`: the question's name.
fn spell(out: &mut Vec<u8>, owner: Owner<'_>, asked: &[u8], wire: &WireZone) {
    match owner {
        Owner::Asked => out.extend_from_slice(asked),
        Owner::Held(name) => {
            for label in name.iter() {
                out.push(label.len() as u8);
                out.extend_from_slice(label);
            }
        }
        Owner::Service { key, label } => {
            for part in label
                .into_iter()
                .chain([key.name(), key.namespace(), "svc"])
            {
                out.push(part.len() as u8);
                out.extend_from_slice(part.as_bytes());
            }
            out.extend_from_slice(&wire.origin.0);
        }
        Owner::Import { key, endpoint } => {
            for part in import_labels(key, endpoint) {
                out.push(part.len() as u8);
                out.extend_from_slice(part.as_bytes());
            }
            out.extend_from_slice(&wire.clusterset.0);
        }
        Owner::Nameserver => out.extend_from_slice(&wire.nameserver.0),
        Owner::Apex(apex) => out.extend_from_slice(wire.apex(apex)),
    }
}

/// The name suffixes written so far, as hickory's encoder keeps them: where each starts in the
/// message and how long its labels are, uncompressed. A later name whose suffix has the same
/// labels, byte for byte (case included), points there.
struct Names {
    entries: [(u16, u16); COMPRESSION_CANDIDATES],
    len: usize,
    /// Names written with compression so far (hickory compresses at most 120).
    compressed: usize,
}

impl Names {
    fn new() -> Self {
        Self {
            entries: [(0, 0); COMPRESSION_CANDIDATES],
            len: 0,
            compressed: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// `at`, if the suffix stored at index `index` starts there.
    fn starts_at(&self, index: usize, at: usize) -> Option<u16> {
        (index < self.len && usize::from(self.entries[index].0) == at).then_some(at as u16)
    }

    /// Forgets what was stored after the first `len` (by records taken back).
    fn truncate(&mut self, len: usize, compressed: usize) {
        self.len = self.len.min(len);
        self.compressed = compressed;
    }

    /// The question, filed as hickory files it: a candidate no name matches.
    fn store_never_matching(&mut self) {
        self.entries[0] = (QUESTION_OFFSET as u16, u16::MAX);
        self.len = 1;
    }

    /// Remembers the suffix of the name written at `out[at..end]`.
    fn store(&mut self, at: usize, end: usize) {
        if end < POINTER_REACH && self.len < COMPRESSION_CANDIDATES {
            self.entries[self.len] = (at as u16, (end - at) as u16);
            self.len += 1;
        }
    }

    /// Where a suffix with the labels of `out[at..end]` was written before.
    fn find(&self, out: &[u8], at: usize, end: usize) -> Option<u16> {
        let suffix = &out[at..end];
        self.entries[..self.len]
            .iter()
            .find(|&&(offset, len)| {
                usize::from(len) == suffix.len() && same_labels(out, usize::from(offset), suffix)
            })
            .map(|&(offset, _)| offset)
    }
}

/// Whether the name in `out` at `offset` (compressed or not) has exactly the labels `suffix`.
fn same_labels(out: &[u8], mut offset: usize, suffix: &[u8]) -> bool {
    let mut at = 0;
    loop {
        let Some(&len) = out.get(offset) else {
            return false;
        };
        if len & 0xC0 == 0xC0 {
            let Some(&low) = out.get(offset + 1) else {
                return false;
            };
            offset = usize::from(len & 0x3F) << 8 | usize::from(low);
            continue;
        }
        if len == 0 {
            return at == suffix.len();
        }
        let label = 1 + usize::from(len);
        if out.get(offset..offset + label) != suffix.get(at..at + label) {
            return false;
        }
        at += label;
        offset += label;
    }
}
#[cfg(test)]
mod tests {
    use std::fmt::Write;
    use std::sync::Arc;

    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};

    use super::*;
    use crate::cluster::{ClusterEvent, ClusterState};
    use crate::dns::view::SharedView;
    use crate::dns::zone::PodRecords;
    use crate::server::handler::Handler;
    use crate::source::manifests;
    use hickory_server::net::xfer::Protocol;

    fn pod(name: &str, app: &str, ips: &[&str], hostname: Option<(&str, &str)>) -> String {
        let mut text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}\nspec:\n"
        );
        if let Some((hostname, subdomain)) = hostname {
            writeln!(text, "  hostname: {hostname}\n  subdomain: {subdomain}").unwrap();
        }
        let listed: Vec<String> = ips.iter().map(|ip| format!("{{ip: \"{ip}\"}}")).collect();
        write!(
            text,
            "  containers: [{{name: app, image: app}}]\nstatus:\n  phase: Running\n  podIP: \"{}\"\n  \
             podIPs: [{}]\n  conditions: [{{type: Ready, status: \"True\"}}]\n",
            ips[0],
            listed.join(", ")
        )
        .unwrap();
        text
    }

    fn external(name: &str, target: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
             spec: {{type: ExternalName, externalName: {target}}}\n"
        )
    }

    fn headless(name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
             spec: {{clusterIP: None, selector: {{app: {name}}}, ports: [{{name: web, port: 80}}]}}\n"
        )
    }

    /// A handler over a cluster with answers of every size: one address, dual stack, a ClusterIP,
    /// and Services whose answers fit only with EDNS (40 pods) or never in UDP (80 pods).
    fn handler() -> Handler {
        handler_with(true)
    }

    /// `synced`: whether the source has delivered a complete state yet.
    fn handler_with(synced: bool) -> Handler {
        let zone = Zone::new("cluster.local.", 30, PodRecords::Verified, None).unwrap();
        Handler::new(cluster_view(synced), Arc::new(zone))
    }

    /// The cluster of [`handler`].
    fn cluster_view(synced: bool) -> SharedView {
        let mut parts = vec![
            headless("web"),
            pod("web-0", "web", &["10.0.0.1", "fd00::1"], Some(("web-0", "web"))),
            pod("web-1", "web", &["10.0.0.2"], Some(("web-1", "web"))),
            "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: default}\n\
             spec: {clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20, \"fd00::20\"], selector: {app: api}, \
             ports: [{name: http, port: 8080}, {name: dns, port: 53, protocol: UDP}]}\n"
                .to_string(),
            headless("mid"),
            headless("big"),
            headless("pair"),
            headless("huge"),
            // CNAMEs: to a name in the zone, along a chain, round a loop, and out of the zone.
            external("alias", "web.default.svc.cluster.local"),
            external("chain-1", "chain-2.default.svc.cluster.local"),
            external("chain-2", "ALIAS.default.svc.cluster.local"),
            external("loop-1", "loop-2.default.svc.cluster.local"),
            external("loop-2", "loop-1.default.svc.cluster.local"),
            external("missing", "nothing.default.svc.cluster.local"),
            external("db", "db.example.com"),
        ];
        for i in 0..150 {
            let ip = format!("10.4.{}.{}", i / 200, i % 200);
            parts.push(pod(&format!("huge-{i}"), "huge", &[&ip], None));
        }
        for (service, count, network) in [("mid", 40, "10.2.0"), ("big", 80, "10.1.0")] {
            for i in 0..count {
                let ip = format!("{network}.{i}");
                parts.push(pod(&format!("{service}-{i}"), service, &[&ip], None));
            }
        }
        // Dual-stack pods whose ANY answers (an A and an AAAA each) are cut without EDNS.
        for i in 0..30 {
            let (v4, v6) = (format!("10.3.0.{i}"), format!("fd00:3::{i:x}"));
            parts.push(pod(&format!("pair-{i}"), "pair", &[&v4, &v6], None));
        }
        parts.extend(clusterset_manifests());
        let objects = manifests::parse(&parts.join("---\n")).unwrap();
        let mut state = ClusterState::new(1234);
        state.apply(manifests::resync(objects));
        if synced {
            state.apply(ClusterEvent::Synced);
        }
        SharedView::new(state.publish().unwrap())
    }

    /// ServiceImports and the EndpointSlices of their clusters: a ClusterSetIP import, and a
    /// headless one whose 60 endpoints in `east` fit only with EDNS.
    fn clusterset_manifests() -> Vec<String> {
        let slice = |name: &str, cluster: &str, family: &str, endpoints: &[String]| {
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, \
                 namespace: default, labels: {{multicluster.kubernetes.io/service-name: cache, \
                 multicluster.kubernetes.io/source-cluster: {cluster}}}}}\naddressType: {family}\n\
                 ports: [{{name: redis, port: 6379, protocol: TCP}}]\nendpoints: [{}]\n",
                endpoints.join(", ")
            )
        };
        let mut east = vec!["{addresses: [10.5.0.200], hostname: cache-0}".to_string()];
        east.extend((0..60).map(|i| format!("{{addresses: [10.5.0.{i}]}}")));
        vec![
            "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\n\
             metadata: {name: db, namespace: default}\nspec: {type: ClusterSetIP, \
             ips: [10.100.0.1, \"fd00:100::1\"], ports: [{name: pg, port: 5432, protocol: TCP}]}\n"
                .to_string(),
            "apiVersion: multicluster.x-k8s.io/v1beta1\nkind: ServiceImport\n\
             metadata: {name: cache, namespace: default}\nspec: {type: Headless, \
             ports: [{name: redis, port: 6379, protocol: TCP}]}\n"
                .to_string(),
            slice("cache-east", "east", "IPv4", &east),
            slice(
                "cache-west",
                "west",
                "IPv6",
                &[
                    "{addresses: [\"fd00:5::1\"], hostname: cache-0, conditions: {ready: true}}"
                        .into(),
                    "{addresses: [\"fd00:5::2\"], conditions: {ready: false}}".into(),
                ],
            ),
        ]
    }

    fn query(name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Message {
        let mut message = Message::new(4242, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((size, dnssec_ok)) = edns {
            let mut opt = Edns::new();
            opt.set_max_payload(size).set_dnssec_ok(dnssec_ok);
            message.set_edns(opt);
        }
        message
    }

    /// Every datagram goes both ways; those the direct writer takes must come out identical.
    /// Returns the datagrams it took.
    fn compare(handler: &Handler, datagrams: &[Vec<u8>]) -> Vec<Vec<u8>> {
        compare_over(handler, datagrams, Protocol::Udp)
    }

    /// As [`compare`], the messages received over `protocol`.
    fn compare_over(handler: &Handler, messages: &[Vec<u8>], protocol: Protocol) -> Vec<Vec<u8>> {
        let src = "127.0.0.1:5300".parse().unwrap();
        let mut taken = Vec::new();
        for message in messages {
            let mut direct = Vec::new();
            if handler.answer_directly(message, protocol, &mut direct) {
                let mut general = Vec::new();
                assert!(handler.respond(message, src, protocol, &mut general));
                assert_eq!(direct, general, "reply over {protocol:?} to {message:?}");
                taken.push(message.clone());
            }
        }
        taken
    }

    #[test]
    fn direct_answers_are_byte_for_byte_hickorys() {
        let handler = handler();
        let names = [
            "web.default.svc.cluster.local.",
            "WEB.Default.svc.CLUSTER.local.",
            "web-0.web.default.svc.cluster.local.",
            "web-9.web.default.svc.cluster.local.",
            "api.default.svc.cluster.local.",
            "mid.default.svc.cluster.local.",
            "big.default.svc.cluster.local.",
            "nothing.default.svc.cluster.local.",
            "NOTHING.default.svc.Cluster.Local.",
            "default.svc.cluster.local.",
            "svc.cluster.local.",
            "a.b.c.d.e.f.g.cluster.local.",
            "10-0-0-2.default.pod.cluster.local.",
            "10-0-0-99.default.pod.cluster.local.",
            "ns.dns.cluster.local.",
            "cluster.local.",
            "9.9.9.9.in-addr.arpa.",
            "x.IN-ADDR.arpa.",
            "example.com.",
            "_web._tcp.web.default.svc.cluster.local.",
            "_http._tcp.API.default.svc.cluster.local.",
            "_dns._udp.api.default.svc.cluster.local.",
            "_tcp.api.default.svc.cluster.local.",
            "1.0.0.10.in-addr.arpa.",
            "20.0.96.10.IN-ADDR.ARPA.",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
            "in-addr.arpa.",
            "dns-version.cluster.local.",
            "alias.default.svc.cluster.local.",
            "chain-1.default.svc.cluster.local.",
            "loop-1.default.svc.cluster.local.",
            "missing.default.svc.cluster.local.",
            "db.default.svc.cluster.local.",
            "huge.default.svc.cluster.local.",
            "clusterset.local.",
            "dns-version.clusterset.local.",
            "svc.clusterset.local.",
            "default.svc.clusterset.local.",
            "db.default.svc.clusterset.local.",
            "_pg._tcp.DB.default.svc.clusterset.local.",
            "cache.default.svc.clusterset.local.",
            "_redis._tcp.cache.default.svc.clusterset.local.",
            "_tcp.cache.default.svc.clusterset.local.",
            "east.cache.default.svc.clusterset.local.",
            "cache-0.west.cache.default.svc.clusterset.local.",
            "Cache-0.East.cache.default.svc.clusterset.local.",
            "10-5-0-7.east.cache.default.svc.clusterset.local.",
            "nothing.default.svc.clusterset.local.",
            "a.b.c.d.e.f.clusterset.local.",
        ];
        let qtypes = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::ANY,
            RecordType::MX,
            RecordType::SRV,
            RecordType::PTR,
            RecordType::SOA,
            RecordType::NS,
            RecordType::TXT,
            RecordType::CNAME,
        ];
        let mut datagrams = Vec::new();
        for name in names {
            for qtype in qtypes {
                for edns in [
                    None,
                    Some((0, false)),
                    Some((1232, false)),
                    Some((4096, true)),
                ] {
                    let mut message = query(name, qtype, edns);
                    datagrams.push(message.to_vec().unwrap());
                    // Flags a response copies (RD, CD) or ignores (AD, AA, TC).
                    message.metadata.recursion_desired = true;
                    message.metadata.checking_disabled = true;
                    message.metadata.authentic_data = true;
                    datagrams.push(message.to_vec().unwrap());
                }
            }
        }
        // EDNS options a forwarding resolver sends (a client cookie, padding) and ones nobody
        // knows, alone and together: ignored, whatever the answer.
        for name in [
            "web.default.svc.cluster.local.",
            "nothing.default.svc.cluster.local.",
            "_web._tcp.web.default.svc.cluster.local.",
            "example.com.",
        ] {
            for options in [
                &[(10u16, &[1u8, 2, 3, 4, 5, 6, 7, 8][..])][..],
                &[(12, &[0; 37][..])],
                &[(65001, &[][..]), (10, &[9; 24][..]), (12, &[0; 3][..])],
            ] {
                for dnssec_ok in [false, true] {
                    let mut message = query(name, RecordType::SRV, Some((1232, dnssec_ok)));
                    let edns = message.edns.as_mut().unwrap();
                    for (code, data) in options {
                        edns.options_mut().insert(
                            hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                                *code,
                                data.to_vec(),
                            ),
                        );
                    }
                    datagrams.push(message.to_vec().unwrap());
                }
            }
        }
        // Cut answers start at a record picked by the query's ID: many IDs, both ways.
        for id in 0..200u16 {
            for (name, qtype) in [
                ("big.default.svc.cluster.local.", RecordType::A),
                ("pair.default.svc.cluster.local.", RecordType::ANY),
                ("cache.default.svc.clusterset.local.", RecordType::A),
            ] {
                for edns in [None, Some((600, false))] {
                    let mut message = query(name, qtype, edns);
                    message.metadata.id = id.wrapping_mul(331);
                    datagrams.push(message.to_vec().unwrap());
                }
            }
        }
        let taken = compare(&handler, &datagrams);
        // Over TCP the same, whole: the largest answers name more than the 120 names hickory's
        // encoder compresses.
        assert_eq!(
            compare_over(&handler, &datagrams, Protocol::Tcp).len(),
            datagrams.len()
        );
        let responses: Vec<Message> = taken
            .iter()
            .map(|d| {
                let mut out = Vec::new();
                handler.answer_directly(d, Protocol::Udp, &mut out);
                Message::from_vec(&out).unwrap()
            })
            .collect();
        // The writer answers every one of them: answers of every type, NXDOMAIN, NODATA, cut
        // answers, refusals.
        assert_eq!(taken.len(), datagrams.len());
        let count = |f: &dyn Fn(&Message) -> bool| responses.iter().filter(|m| f(m)).count();
        for rtype in [
            RecordType::SRV,
            RecordType::SOA,
            RecordType::NS,
            RecordType::A,
            RecordType::AAAA,
        ] {
            assert!(
                count(&|m| m.answers.iter().any(|r| r.record_type() == rtype)) > 0,
                "{rtype} answers"
            );
        }
        assert!(
            count(&|m| !m.additionals.is_empty()) > 0,
            "SRV answers' addresses"
        );
        assert!(count(&|m| m.answers.len() == 80) == 0);
        assert!(count(&|m| m.answers.len() == 3) > 0, "dual-stack ANY");
        assert!(
            count(&|m| m.answers.len() == 40) > 0,
            "40 answers with EDNS"
        );
        assert!(
            count(&|m| m.metadata.truncation && m.answers.len() > 20) > 0,
            "cut answers carry what fits"
        );
        let cut_types = |m: &Message| {
            let types: std::collections::BTreeSet<_> =
                m.answers.iter().map(|r| r.record_type()).collect();
            m.metadata.truncation && types.len() == 2
        };
        assert!(count(&cut_types) > 0, "cut dual-stack answers");
        // Across IDs, cut answers of `big` start at every one of its 80 addresses.
        let firsts: std::collections::BTreeSet<String> = responses
            .iter()
            .filter(|m| {
                m.metadata.truncation
                    && m.queries[0].name().to_string().starts_with("big.")
                    && m.queries[0].query_type() == RecordType::A
            })
            .map(|m| m.answers[0].data.to_string())
            .collect();
        assert_eq!(firsts.len(), 80);
        assert!(count(&|m| m.metadata.response_code == ResponseCode::NXDomain) > 0);
        assert!(count(&|m| m.metadata.response_code == ResponseCode::Refused) > 0);
        assert!(count(&|m| m.answers.is_empty() && m.authorities.len() == 1) > 0);
    }

    /// Around the sizes where an answer stops fitting whole (the OPT record's room counts only
    /// once the answer is cut), the direct writer and hickory agree on every byte.
    #[test]
    fn answers_at_the_edge_of_fitting_are_identical() {
        for count in [24usize, 25, 26, 27, 28, 70, 71, 72, 73, 74] {
            let mut parts = vec![headless("edge")];
            for i in 0..count {
                let ip = format!("10.5.0.{}", i + 1);
                parts.push(pod(&format!("edge-{i}"), "edge", &[&ip], None));
            }
            let objects = manifests::parse(&parts.join("---\n")).unwrap();
            let mut state = ClusterState::new(1);
            state.apply(manifests::resync(objects));
            state.apply(ClusterEvent::Synced);
            let view = SharedView::new(state.publish().unwrap());
            let zone = Zone::new("cluster.local.", 30, PodRecords::Verified, None).unwrap();
            let handler = Handler::new(view, Arc::new(zone));
            let mut datagrams = Vec::new();
            for edns in [
                None,
                Some((512, false)),
                Some((1232, true)),
                Some((1200, false)),
            ] {
                for id in [0u16, 1, 7, 1000] {
                    let mut message = query("edge.default.svc.cluster.local.", RecordType::A, edns);
                    message.metadata.id = id;
                    datagrams.push(message.to_vec().unwrap());
                }
            }
            let taken = compare(&handler, &datagrams);
            assert_eq!(taken.len(), datagrams.len(), "{count} pods");
        }
    }

    #[test]
    fn unusual_datagrams_are_declined_or_answered_identically() {
        let handler = handler();
        let plain = query("web.default.svc.cluster.local.", RecordType::A, None)
            .to_vec()
            .unwrap();
        let mut datagrams: Vec<Vec<u8>> = (0..=plain.len()).map(|n| plain[..n].to_vec()).collect();
        // A trailing byte, a compressed question, a second question, a response, NOTIFY.
        datagrams.push([&plain[..], &[0]].concat());
        let mut pointer = plain[..12].to_vec();
        pointer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        datagrams.push(pointer);
        // ... and the Z bit, which a response does not copy.
        for (at, value) in [(5, 2), (2, 0x80), (2, 0x20), (7, 1), (3, 0x40)] {
            let mut changed = plain.clone();
            changed[at] = value;
            datagrams.push(changed);
        }
        // Question types a client may send but rarely does: meta types, zero, the largest.
        for qtype in [0u16, 41, 249, 250, 251, 252, 253, 254, 255, 256, 65535] {
            let mut changed = plain.clone();
            let at = changed.len() - 4;
            changed[at..at + 2].copy_from_slice(&qtype.to_be_bytes());
            datagrams.push(changed);
        }
        // EDNS with an option (a cookie), and EDNS version 1.
        let mut with_option = plain.clone();
        with_option[11] = 1;
        with_option.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8]);
        with_option.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        datagrams.push(with_option);
        let mut future = plain.clone();
        future[11] = 1;
        future.extend_from_slice(&[0, 0, 41, 4, 208, 0, 1, 0, 0, 0, 0]);
        datagrams.push(future);
        // Labels with bytes a name rarely holds: upper case, a dot, a NUL.
        let mut odd = plain[..12].to_vec();
        odd.extend_from_slice(
            b"\x03A.\x00\x03web\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01",
        );
        datagrams.push(odd);
        let taken = compare(&handler, &datagrams);
        assert!(taken.contains(&plain), "the plain query itself");
        // Before the first complete state: SERVFAIL in the zone, REFUSED outside, as hickory's.
        let unsynced = handler_with(false);
        let outside = query("example.com.", RecordType::A, Some((1232, false)));
        let early = [plain.clone(), outside.to_vec().unwrap()];
        assert_eq!(compare(&unsynced, &early).len(), 2);
        assert!(
            !taken.iter().any(|d| d.len() < plain.len()),
            "a cut datagram was taken"
        );
    }

    /// The reason of an Extended DNS Error in `reply`, if it has one.
    fn reason_in(reply: &[u8]) -> Option<String> {
        use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
        let message = Message::from_vec(reply).unwrap();
        let edns = message.edns.as_ref()?;
        match edns.options().get(EdnsCode::from(EDE_OPTION))? {
            EdnsOption::Unknown(_, data) => Some(String::from_utf8_lossy(&data[2..]).into_owned()),
            other => panic!("EDE read as {other:?}"),
        }
    }

    /// Empty and negative answers to EDNS queries carry their reason on the direct path too,
    /// byte for byte as hickory's path writes it; it is left out where it would not fit, and
    /// everywhere with `--explain off`.
    #[test]
    fn negative_answers_carry_their_reason_directly() {
        let handler = handler();
        let mut direct = Vec::new();
        for (name, qtype, says) in [
            (
                "web-9.web.default.svc.cluster.local.",
                RecordType::A,
                Some("has no endpoint web-9"),
            ),
            (
                "web-1.web.default.svc.cluster.local.",
                RecordType::AAAA,
                Some("no AAAA records (it has A)"),
            ),
            (
                "10-0-0-99.default.pod.cluster.local.",
                RecordType::A,
                Some("no pod in namespace default"),
            ),
            ("web.default.svc.cluster.local.", RecordType::A, None),
            (
                "example.com.",
                RecordType::A,
                Some("not in cluster.local nor a reverse zone"),
            ),
            (
                "web.",
                RecordType::A,
                Some("did you mean web.default.svc.cluster.local?"),
            ),
            // A zone transfer over UDP is refused, but not for being outside the zone.
            ("cluster.local.", RecordType::AXFR, None),
        ] {
            let datagram = query(name, qtype, Some((1232, false))).to_vec().unwrap();
            assert_eq!(
                compare(&handler, std::slice::from_ref(&datagram)).len(),
                1,
                "{name}"
            );
            handler.answer_directly(&datagram, Protocol::Udp, &mut direct);
            let reason = reason_in(&direct);
            match says {
                Some(says) => assert!(
                    reason.as_deref().is_some_and(|r| r.contains(says)),
                    "{name}: {reason:?}"
                ),
                None => assert_eq!(reason, None, "{name}"),
            }
            // Without EDNS there is nowhere to put it.
            let plain = query(name, qtype, None).to_vec().unwrap();
            handler.answer_directly(&plain, Protocol::Udp, &mut direct);
            assert!(Message::from_vec(&direct).unwrap().edns.is_none());
        }
        let unsynced = handler_with(false);
        let early = query(
            "web.default.svc.cluster.local.",
            RecordType::A,
            Some((512, false)),
        );
        let early = early.to_vec().unwrap();
        assert_eq!(compare(&unsynced, std::slice::from_ref(&early)).len(), 1);
        unsynced.answer_directly(&early, Protocol::Udp, &mut direct);
        assert!(reason_in(&direct).unwrap().starts_with("not yet synced"));

        // A long zone makes a long reason: beside a long question it fits 1232 bytes, not 512.
        let zone = "a-rather-long-cluster-domain-for-this-test.example.internal.";
        let view = SharedView::new({
            let mut state = ClusterState::new(1);
            state.apply(ClusterEvent::Synced);
            state.publish().unwrap()
        });
        let long = Handler::new(
            view.clone(),
            Arc::new(Zone::new(zone, 30, PodRecords::Verified, None).unwrap()),
        );
        let label = "x".repeat(60);
        let name = format!("{label}.{label}.{label}.{zone}");
        let mut sizes = Vec::new();
        for size in [512, 1232] {
            let datagram = query(&name, RecordType::A, Some((size, false)))
                .to_vec()
                .unwrap();
            assert_eq!(compare(&long, std::slice::from_ref(&datagram)).len(), 1);
            long.answer_directly(&datagram, Protocol::Udp, &mut direct);
            let reply = Message::from_vec(&direct).unwrap();
            assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
            assert!(!reply.metadata.truncation && reply.authorities.len() == 1);
            sizes.push((size, direct.len(), reason_in(&direct).is_some()));
        }
        assert!(
            matches!(sizes[..], [(512, _, false), (1232, n, true)] if n > 512),
            "{sizes:?}"
        );

        let quiet = Zone::new("cluster.local.", 30, PodRecords::Verified, None).unwrap();
        let quiet = Handler::new(cluster_view(true), Arc::new(quiet.with_explanations(false)));
        let datagram = query(
            "web-9.web.default.svc.cluster.local.",
            RecordType::A,
            Some((1232, false)),
        );
        let datagram = datagram.to_vec().unwrap();
        assert_eq!(compare(&quiet, std::slice::from_ref(&datagram)).len(), 1);
        quiet.answer_directly(&datagram, Protocol::Udp, &mut direct);
        assert_eq!(reason_in(&direct), None);
    }
}
