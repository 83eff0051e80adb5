//! What each question gets: a name resolved to what it holds (or to its absence), then the
//! records of the answer, CNAMEs followed within the zone, and the SOA of negative answers.
//! Plain functions over the view: no sockets, no async, no locks.
//!
//! The rules produce records as descriptions borrowed from the view ([`Owner`], [`Data`]),
//! handed to a [`Sink`] in the order they are answered: the wire writer
//! ([`crate::server::wire`]) spells them straight into a message, and [`answer`] makes them
//! hickory records — for hickory's encoder, the reference the writer's bytes are checked
//! against, and for transfers and explanations. One set of rules, two ways of spelling them.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use crate::dns::journal::WireRecords;
use crate::dns::question::{MAX_LABELS, Question, ReverseZone, SetQuestion, classify, labels_of};
use crate::dns::view::{Endpoint, ImportEndpoint, ImportView, ServiceView, View};
use crate::dns::zone::{
    Apex, CLUSTERSET_SCHEMA_VERSION, PodRecords, SCHEMA_VERSION, Zone, parse_dashed,
};
use crate::records::{Addresses, ImportKind, ServiceKind};

/// A complete answer as hickory records: for hickory's encoder (the reference the wire writer is
/// checked against, and the path of rare messages), transfers and explanations.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The name (lower case) an empty or negative answer is about: the question's, or the
    /// in-zone CNAME target its chain ended at (see [`Outcome::empty_at`]).
    pub empty_at: Option<Name>,
}

/// A name in an answer, as the rules know it; spelled only when it is written out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Owner<'a> {
    /// The question's name, as asked (its case kept).
    Asked,
    /// A name the view holds: an ExternalName's target, followed within the zone.
    Held(&'a Name),
    /// `[<label>.]<service>.<namespace>.svc.<zone>`.
    Service {
        key: ServiceName<'a>,
        label: Option<&'a str>,
    },
    /// `[<label>.<cluster>.]<service>.<namespace>.svc.<clusterset>`: a ServiceImport's name, or
    /// one of its endpoints' (cluster, label).
    Import {
        key: ServiceName<'a>,
        endpoint: Option<(&'a str, &'a str)>,
    },
    /// `ns.dns.<zone>`.
    Nameserver,
    /// A zone's apex.
    Apex(Apex),
}

/// A record's type and data, as the rules know it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Data<'a> {
    /// A or AAAA.
    Address(IpAddr),
    Cname(&'a Name),
    Srv {
        weight: u16,
        port: u16,
        target: Owner<'a>,
    },
    Ptr(Owner<'a>),
    /// A schema version, `dns-version.<zone>`'s TXT (or the clusterset zone's).
    Version(&'static str),
    /// The zone's SOA (serial from the view, timers from the zone).
    Soa,
    /// `ns.dns.<zone>`, the NS of every apex.
    Ns,
}

impl Data<'_> {
    pub(crate) fn record_type(&self) -> RecordType {
        match self {
            Data::Address(IpAddr::V4(_)) => RecordType::A,
            Data::Address(IpAddr::V6(_)) => RecordType::AAAA,
            Data::Cname(_) => RecordType::CNAME,
            Data::Srv { .. } => RecordType::SRV,
            Data::Ptr(_) => RecordType::PTR,
            Data::Version(_) => RecordType::TXT,
            Data::Soa => RecordType::SOA,
            Data::Ns => RecordType::NS,
        }
    }
}

/// The section of the message a record goes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Answer,
    Authority,
    Additional,
}

/// Takes an answer's records as the rules produce them, in answer order. A record borrows
/// from the view and the question; a sink spells or copies what it keeps.
pub(crate) trait Sink {
    fn record(&mut self, section: Section, owner: Owner<'_>, data: Data<'_>);
}

/// The name an empty or negative answer is about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum About<'a> {
    Question,
    /// An in-zone CNAME target a chain ended at.
    Target(&'a Name),
}

/// What a question got besides its records.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome<'a> {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    /// What an empty or negative answer is about; `None` when the answer ends with what was
    /// asked for.
    pub empty_at: Option<About<'a>>,
    /// Records in the answer section.
    pub answers: usize,
    /// The CNAMEs the answer section starts with.
    pub aliases: usize,
    /// Records in the additional section.
    pub additionals: usize,
    /// The apex whose SOA is the authority section (a negative answer's).
    pub soa: Option<Apex>,
}

/// What a name in our zones is, once it is known to exist.
pub(crate) enum Node<'v, 'q> {
    Apex,
    ReverseApex,
    Version(&'static str),
    /// A name whose only records are addresses; none for a name that exists but holds no records
    /// of its own (`svc.<zone>`, `<ns>.svc.<zone>`, ...).
    Addresses(AddressSet<'v>),
    Alias(&'v Name),
    /// SRV records of one port (`_<port>._<proto>.<svc>`), or of every port (the Service's
    /// own name, as CoreDNS answers it).
    Srv {
        key: ServiceName<'q>,
        service: &'v ServiceView,
        port: Option<usize>,
    },
    /// The reverse name of an address some Service or endpoint holds.
    Pointers(IpAddr),
    /// SRV records of a ServiceImport: of one port, or of every port (its own name).
    ImportSrv {
        key: ServiceName<'q>,
        import: &'v ImportView,
        port: Option<usize>,
    },
}

/// The addresses a name answers A and AAAA questions with.
#[derive(Clone, Copy)]
pub(crate) enum AddressSet<'a> {
    List(&'a [IpAddr]),
    One(IpAddr),
    /// One endpoint's addresses.
    Endpoint(&'a Addresses),
    /// A headless Service's name: the addresses of all its endpoints.
    Endpoints(&'a [Endpoint]),
    /// A headless ServiceImport's name: the addresses of the endpoints of every cluster.
    ImportEndpoints(&'a [ImportEndpoint]),
    /// The same, where endpoints share addresses: each listed once, where first held.
    DistinctImportEndpoints(&'a [ImportEndpoint]),
}

impl AddressSet<'_> {
    pub(crate) const NONE: AddressSet<'static> = AddressSet::List(&[]);

    /// Calls `f` with each address of the family `qtype` asks for (`ANY`: both), in answer order.
    pub(crate) fn for_each_of_type(self, qtype: RecordType, f: impl FnMut(IpAddr)) {
        let asked = |ip: &IpAddr| {
            matches!(
                (ip, qtype),
                (IpAddr::V4(_), RecordType::A | RecordType::ANY)
                    | (IpAddr::V6(_), RecordType::AAAA | RecordType::ANY)
            )
        };
        match self {
            AddressSet::List(ips) => ips.iter().copied().filter(asked).for_each(f),
            AddressSet::One(ip) => Some(ip).into_iter().filter(asked).for_each(f),
            AddressSet::Endpoint(ips) => ips.iter().filter(asked).for_each(f),
            AddressSet::Endpoints(endpoints) => endpoints
                .iter()
                .flat_map(|e| e.ips.iter())
                .filter(asked)
                .for_each(f),
            AddressSet::ImportEndpoints(endpoints) => endpoints
                .iter()
                .flat_map(|e| e.ips.iter())
                .filter(asked)
                .for_each(f),
            AddressSet::DistinctImportEndpoints(endpoints) => endpoints
                .iter()
                .enumerate()
                .flat_map(|(i, e)| {
                    let earlier = &endpoints[..i];
                    e.ips
                        .iter()
                        .filter(move |ip| !earlier.iter().any(|o| o.ips.contains(*ip)))
                })
                .filter(asked)
                .for_each(f),
        }
    }
}

/// Where a question leads, before any record is built.
pub(crate) enum Resolution<'v, 'q> {
    /// Not ours to answer: another zone or class, or a zone transfer.
    Refused,
    /// No complete state yet: nothing is known to be absent.
    NotReady,
    /// The name does not exist in the zone `Apex`.
    NoSuchName(Apex),
    /// The name exists in the zone `Apex`.
    Exists(Node<'v, 'q>, Apex),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ServiceName<'a> {
    namespace: &'a str,
    name: &'a str,
}

impl<'a> ServiceName<'a> {
    pub(crate) fn new(namespace: &'a str, name: &'a str) -> Self {
        Self { namespace, name }
    }

    pub(crate) fn namespace(&self) -> &'a str {
        self.namespace
    }

    pub(crate) fn name(&self) -> &'a str {
        self.name
    }
}

/// CNAMEs followed within the zone for one question; a longer chain ends after this many.
pub(crate) const MAX_CNAME_CHAIN: usize = 8;

/// Answers one question with hickory records. `lower` is the question name in lower case (for
/// matching), `asked` as it was asked (answers keep its case). See [`walk`].
pub(crate) fn answer(
    view: &View,
    zone: &Zone,
    lower: &Name,
    asked: &Name,
    qtype: RecordType,
    qclass: DNSClass,
) -> Reply {
    let mut buffer = [&[][..]; MAX_LABELS];
    let labels = labels_of(lower, &mut buffer);
    let mut records = Records {
        zone,
        view,
        asked,
        reply: Reply::default(),
    };
    let outcome = walk(view, zone, labels, qtype, qclass, None, &mut records);
    let mut reply = records.reply;
    reply.rcode = outcome.rcode;
    reply.authoritative = outcome.authoritative;
    reply.empty_at = outcome.empty_at.map(|about| match about {
        About::Question => lower.clone(),
        About::Target(target) => target.to_lowercase(),
    });
    reply
}

/// The records of type `rtype` the rules answer at `name` with, owned by `name` itself: not a
/// CNAME target's, nor the additional section's, which are never made. A zone's contents, name
/// by name (see [`crate::dns::contents`]).
pub(crate) fn owned_records(
    view: &View,
    zone: &Zone,
    name: &Name,
    rtype: RecordType,
    out: &mut Vec<Record>,
) {
    let records = Records {
        zone,
        view,
        asked: name,
        reply: Reply::default(),
    };
    if let Some(mut records) = owned(view, zone, name, rtype, records) {
        out.append(&mut records.reply.answers);
    }
}

/// The records [`owned_records`] makes, uncompressed on the wire: what the transfer journal
/// keeps of a change. `ANY` stands for both address types, A and AAAA, made in one walk: the
/// records of walks for each (the question's type only picks what a Service's name holds
/// between addresses and SRV records).
pub(crate) fn owned_wire(
    view: &View,
    zone: &Zone,
    name: &Name,
    rtype: RecordType,
    out: &mut WireRecords,
) {
    let before = out.len();
    let mut wire = Wire {
        records: Records {
            zone,
            view,
            asked: name,
            reply: Reply::default(),
        },
        out,
        asked: Vec::with_capacity(64),
        suffix: Vec::with_capacity(64),
    };
    // A name hickory holds fits.
    let _ = write_labels(name.iter(), &mut wire.asked);
    if owned(view, zone, name, rtype, wire).is_none() {
        out.truncate(before);
    }
}

/// Walks `name`'s answer for `rtype`, handing `sink` the records `name` owns; the sink back
/// when the answer is NOERROR.
fn owned<S: Sink>(view: &View, zone: &Zone, name: &Name, rtype: RecordType, sink: S) -> Option<S> {
    // The names walked are made from the view's labels, lower case already but for an
    // origin given otherwise: a copy only then.
    let lower;
    let name_lower = if name.iter().flatten().any(u8::is_ascii_uppercase) {
        lower = name.to_lowercase();
        &lower
    } else {
        name
    };
    let mut buffer = [&[][..]; MAX_LABELS];
    let labels = labels_of(name_lower, &mut buffer);
    let mut owned = Owned {
        zone,
        asked: name,
        rtype,
        sink,
    };
    let only = Some(Section::Answer);
    let outcome = walk(view, zone, labels, rtype, DNSClass::IN, only, &mut owned);
    (outcome.rcode == ResponseCode::NoError).then_some(owned.sink)
}

/// Passes on the records of one type owned by the question's name (`ANY`: its addresses).
struct Owned<'z, S> {
    zone: &'z Zone,
    asked: &'z Name,
    rtype: RecordType,
    sink: S,
}

impl<S: Sink> Sink for Owned<'_, S> {
    fn record(&mut self, section: Section, owner: Owner<'_>, data: Data<'_>) {
        let wanted = match self.rtype {
            RecordType::ANY => matches!(data, Data::Address(_)),
            rtype => data.record_type() == rtype,
        };
        if !wanted {
            return;
        }
        let own = match owner {
            Owner::Asked => true,
            // A chain's target: the question's own name only where a chain comes back to it.
            other => spelled(self.zone, other, self.asked) == *self.asked,
        };
        if own {
            self.sink.record(section, owner, data);
        }
    }
}

/// Writes records uncompressed on the wire: the common ones directly, the rest (SOA, NS, TXT)
/// as hickory encodes them.
struct Wire<'z, 'o> {
    records: Records<'z>,
    out: &'o mut WireRecords,
    /// The question's name on the wire: the owner of every record but a chain's.
    asked: Vec<u8>,
    /// `<service>.<namespace>.svc.<zone>` on the wire, of the Service last spelled: the SRV
    /// targets of one answer share it.
    suffix: Vec<u8>,
}

impl Sink for Wire<'_, '_> {
    fn record(&mut self, section: Section, owner: Owner<'_>, data: Data<'_>) {
        let Records { zone, asked, .. } = self.records;
        let suffix = &mut self.suffix;
        let out = self.out.buffer();
        let direct = match data {
            Data::Address(_) | Data::Srv { .. } | Data::Ptr(_) | Data::Cname(_) => {
                match owner {
                    Owner::Asked => out.extend_from_slice(&self.asked),
                    owner => spell_wire(zone, owner, asked, out),
                }
                out.extend_from_slice(&u16::from(data.record_type()).to_be_bytes());
                out.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
                out.extend_from_slice(&zone.ttl.to_be_bytes());
                let length_at = out.len();
                out.extend_from_slice(&[0, 0]);
                match data {
                    Data::Address(IpAddr::V4(v4)) => out.extend_from_slice(&v4.octets()),
                    Data::Address(IpAddr::V6(v6)) => out.extend_from_slice(&v6.octets()),
                    Data::Srv {
                        weight,
                        port,
                        target,
                    } => {
                        out.extend_from_slice(&[0, 0]);
                        out.extend_from_slice(&weight.to_be_bytes());
                        out.extend_from_slice(&port.to_be_bytes());
                        spell_target(zone, target, asked, suffix, out);
                    }
                    Data::Ptr(target) => spell_target(zone, target, asked, suffix, out),
                    Data::Cname(target) => spell_wire(zone, Owner::Held(target), asked, out),
                    _ => {}
                }
                let length = u16::try_from(out.len() - length_at - 2).unwrap_or(0);
                out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
                true
            }
            Data::Version(_) | Data::Soa | Data::Ns => false,
        };
        if !direct {
            self.records.record(section, owner, data);
            let mut encoded = Vec::new();
            if let Some(record) = self.records.reply.answers.pop() {
                let _ = record.emit(&mut BinEncoder::new(&mut encoded));
            }
            out.extend_from_slice(&encoded);
        }
        self.out.end_record();
    }
}

/// [`spell_wire`] for a record's target, with the Service's part of the name kept from one
/// target to the next.
fn spell_target(
    zone: &Zone,
    target: Owner<'_>,
    asked: &Name,
    suffix: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    let Owner::Service {
        key,
        label: Some(label),
    } = target
    else {
        return spell_wire(zone, target, asked, out);
    };
    let (name, namespace) = (key.name.as_bytes(), key.namespace.as_bytes());
    let cached = suffix.len() > 2 + name.len() + namespace.len()
        && usize::from(suffix[0]) == name.len()
        && suffix[1..=name.len()] == *name
        && usize::from(suffix[1 + name.len()]) == namespace.len()
        && suffix[2 + name.len()..2 + name.len() + namespace.len()] == *namespace;
    if !cached {
        suffix.clear();
        let labels = [name, namespace, b"svc"];
        if write_labels(labels.into_iter().chain(zone.origin.iter()), suffix).is_none() {
            suffix.clear();
            return spell_wire(zone, target, asked, out);
        }
    }
    // Within 255 bytes with the label, as `service_fits` holds for every target the rules name.
    if label.is_empty() || label.len() > 63 || suffix.len() + 1 + label.len() > 255 {
        return spell_wire(zone, target, asked, out);
    }
    out.push(label.len() as u8);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(suffix);
}

/// `owner` spelled out on the wire, uncompressed, as [`spelled`] spells it.
fn spell_wire(zone: &Zone, owner: Owner<'_>, asked: &Name, out: &mut Vec<u8>) {
    let name = match owner {
        Owner::Asked => asked,
        Owner::Held(name) => name,
        Owner::Service { key, label } => {
            let start = out.len();
            let labels = label.into_iter().chain([key.name, key.namespace, "svc"]);
            let labels = labels.map(str::as_bytes).chain(zone.origin.iter());
            if write_labels(labels, out).is_some() {
                return;
            }
            out.truncate(start);
            &zone.origin
        }
        Owner::Import { key, endpoint } => {
            let start = out.len();
            let clusterset = zone.apex(Apex::Clusterset);
            let labels = import_labels(key, endpoint).map(str::as_bytes);
            if write_labels(labels.chain(clusterset.iter()), out).is_some() {
                return;
            }
            out.truncate(start);
            clusterset
        }
        Owner::Nameserver => zone.nameserver(),
        Owner::Apex(apex) => zone.apex(apex),
    };
    // A name hickory holds fits.
    let _ = write_labels(name.iter(), out);
}

/// Appends `labels` and the root to `out` as a name on the wire; `None` (and part of it
/// written) for an empty label, one past 63 bytes, or a name past 255.
fn write_labels<'l>(labels: impl IntoIterator<Item = &'l [u8]>, out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    (out.len() - start <= 255).then_some(())
}

/// Makes hickory records of what the rules answer.
struct Records<'z> {
    zone: &'z Zone,
    view: &'z View,
    asked: &'z Name,
    reply: Reply,
}

impl Sink for Records<'_> {
    fn record(&mut self, section: Section, owner: Owner<'_>, data: Data<'_>) {
        let zone = self.zone;
        let name = |owner: Owner<'_>| spelled(zone, owner, self.asked);
        let rdata = match data {
            Data::Address(IpAddr::V4(v4)) => RData::A(A(v4)),
            Data::Address(IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
            Data::Cname(target) => RData::CNAME(CNAME(target.clone())),
            Data::Srv {
                weight,
                port,
                target,
            } => RData::SRV(SRV::new(0, weight, port, name(target))),
            Data::Ptr(target) => RData::PTR(PTR(name(target))),
            Data::Version(version) => RData::TXT(TXT::new(vec![version.into()])),
            Data::Soa => soa_data(self.view, zone),
            Data::Ns => RData::NS(NS(zone.nameserver().clone())),
        };
        let record = Record::from_rdata(name(owner), zone.ttl, rdata);
        match section {
            Section::Answer => self.reply.answers.push(record),
            Section::Authority => self.reply.authority.push(record),
            Section::Additional => self.reply.additionals.push(record),
        }
    }
}

/// `owner` spelled out as a name (`asked`: the question's).
pub(crate) fn spelled(zone: &Zone, owner: Owner<'_>, asked: &Name) -> Name {
    match owner {
        Owner::Asked => asked.clone(),
        Owner::Held(name) => name.clone(),
        Owner::Service { key, label } => {
            let labels = label.into_iter().chain([key.name, key.namespace, "svc"]);
            name_below(labels.map(str::as_bytes), &zone.origin)
                // A Service's names fit: its labels are DNS labels, and the view keeps no
                // name that would pass 255 bytes (see `service_fits`).
                .unwrap_or_else(|| zone.origin.clone())
        }
        Owner::Import { key, endpoint } => {
            let clusterset = zone.apex(Apex::Clusterset);
            name_below(import_labels(key, endpoint).map(str::as_bytes), clusterset)
                // As a Service's: the view keeps no import name past 255 bytes.
                .unwrap_or_else(|| clusterset.clone())
        }
        Owner::Nameserver => zone.nameserver().clone(),
        Owner::Apex(apex) => zone.apex(apex).clone(),
    }
}

/// `labels` (leftmost first) and then `origin`'s as one name, read from its wire form: hickory's
/// `from_labels` and `append_domain` copy the name once per label, most of the time a transfer
/// or the journal spends spelling SRV targets. `None` for an empty label, one past 63 bytes, or a
/// name past 255.
pub(crate) fn name_below<'l>(
    labels: impl IntoIterator<Item = &'l [u8]>,
    origin: &'l Name,
) -> Option<Name> {
    let mut wire = Vec::with_capacity(64);
    write_labels(labels.into_iter().chain(origin.iter()), &mut wire)?;
    Name::read(&mut BinDecoder::new(&wire)).ok()
}

/// The labels of an import's name (or its endpoint's) below the clusterset zone, leftmost first.
pub(crate) fn import_labels<'a>(
    key: ServiceName<'a>,
    endpoint: Option<(&'a str, &'a str)>,
) -> impl Iterator<Item = &'a str> {
    let (cluster, label) = endpoint.unzip();
    label
        .into_iter()
        .chain(cluster)
        .chain([key.name, key.namespace, "svc"])
}

/// Whether `[<label>.]<service>.<namespace>.svc.<zone>` stays within 255 bytes on the wire.
fn service_fits(zone: &Zone, key: ServiceName<'_>, label: Option<&str>) -> bool {
    fits(
        &zone.origin,
        label.into_iter().chain([key.name, key.namespace, "svc"]),
    )
}

/// Whether an import's name (or its endpoint's) stays within 255 bytes on the wire.
fn import_fits(zone: &Zone, key: ServiceName<'_>, endpoint: Option<(&str, &str)>) -> bool {
    fits(zone.apex(Apex::Clusterset), import_labels(key, endpoint))
}

/// Whether `labels` below `origin` make a name of at most 255 bytes on the wire.
fn fits<'l>(origin: &Name, labels: impl Iterator<Item = &'l str>) -> bool {
    let mut length = 1 + origin.len();
    for part in labels {
        length += 1 + part.len();
    }
    length <= 255
}

/// What `labels` (a question's name in lower case, leftmost first) gets for `qtype`, handed to
/// `sink` record by record; `only`, if given, limits the records to one section.
///
/// An ExternalName Service whose target lies in the zone is followed there, as an authoritative
/// server does (RFC 1034 §4.3.2): the CNAME, then what the target answers, its rcode included
/// (RFC 6604). A chain ends at a name it has already passed, or after [`MAX_CNAME_CHAIN`].
pub(crate) fn walk<'a>(
    view: &'a View,
    zone: &'a Zone,
    labels: &[&[u8]],
    qtype: RecordType,
    qclass: DNSClass,
    only: Option<Section>,
    sink: &mut impl Sink,
) -> Outcome<'a> {
    let mut chain = Chain {
        view,
        zone,
        question: labels,
        qtype,
        qclass,
        passed: [None; MAX_CNAME_CHAIN],
        outcome: Outcome {
            rcode: ResponseCode::NoError,
            authoritative: true,
            empty_at: Some(About::Question),
            answers: 0,
            aliases: 0,
            additionals: 0,
            soa: None,
        },
    };
    let mut filtered = Filtered {
        only,
        sink,
        answers: 0,
        aliases: 0,
        additionals: 0,
    };
    chain.link(0, labels, Owner::Asked, &mut filtered);
    chain.outcome.answers = filtered.answers;
    chain.outcome.aliases = filtered.aliases;
    chain.outcome.additionals = filtered.additionals;
    chain.outcome
}

/// One question's answer, link by link of its CNAME chain.
struct Chain<'a, 'q> {
    view: &'a View,
    zone: &'a Zone,
    question: &'q [&'q [u8]],
    qtype: RecordType,
    qclass: DNSClass,
    /// The targets followed so far.
    passed: [Option<&'a Name>; MAX_CNAME_CHAIN],
    outcome: Outcome<'a>,
}

impl<'a> Chain<'a, '_> {
    /// Answers the name `labels` (owned by `owner`), the `link`th of the chain, and follows an
    /// in-zone alias from there.
    fn link<S: Sink>(
        &mut self,
        link: usize,
        labels: &[&[u8]],
        owner: Owner<'a>,
        sink: &mut Filtered<'_, S>,
    ) {
        let (view, zone, qtype) = (self.view, self.zone, self.qtype);
        let before = sink.answers;
        let (node, apex) = match resolve(view, zone, labels, qtype, self.qclass) {
            Resolution::Refused => {
                self.outcome.rcode = ResponseCode::Refused;
                self.outcome.authoritative = false;
                return;
            }
            Resolution::NotReady => {
                self.outcome.rcode = ResponseCode::ServFail;
                self.outcome.authoritative = false;
                return;
            }
            Resolution::NoSuchName(apex) => (None, apex),
            Resolution::Exists(node, apex) => (Some(node), apex),
        };
        let target = match node {
            Some(Node::Alias(target)) if follows_aliases(qtype) && zone.origin.zone_of(target) => {
                sink.record(Section::Answer, owner, Data::Cname(target));
                target
            }
            Some(node) => {
                records(&node, view, zone, owner, qtype, sink);
                return self.ended(owner, apex, sink.answers > before, sink);
            }
            None => {
                self.outcome.rcode = ResponseCode::NXDomain;
                return self.ended(owner, apex, false, sink);
            }
        };
        // The alias answered; the answer goes on at its target, unless the chain comes back to
        // a name it passed or is long enough. Either way, what is left is about the target.
        self.outcome.empty_at = Some(About::Target(target));
        let mut lower = [0u8; 255];
        let mut buffer = [&[][..]; MAX_LABELS];
        let next = lowercase_labels(target, &mut lower, &mut buffer);
        let back =
            next == self.question || self.passed[..link].iter().flatten().any(|p| *p == target);
        self.passed[link] = Some(target);
        if !back && link + 1 < MAX_CNAME_CHAIN {
            self.link(link + 1, next, Owner::Held(target), sink);
        }
    }

    /// The chain ends at `owner`: with what it holds, or empty (NXDOMAIN, NODATA: the SOA).
    fn ended<S: Sink>(
        &mut self,
        owner: Owner<'a>,
        apex: Apex,
        answered: bool,
        sink: &mut Filtered<'_, S>,
    ) {
        if answered {
            self.outcome.empty_at = None;
            return;
        }
        sink.record(Section::Authority, Owner::Apex(apex), Data::Soa);
        self.outcome.soa = Some(apex);
        self.outcome.empty_at = Some(match owner {
            Owner::Held(target) => About::Target(target),
            _ => About::Question,
        });
    }
}

/// The labels of `name` in lower case, written into `lower`; their slices in `buffer`.
fn lowercase_labels<'b>(
    name: &Name,
    lower: &'b mut [u8; 255],
    buffer: &'b mut [&'b [u8]; MAX_LABELS],
) -> &'b [&'b [u8]] {
    let mut ends = [0usize; MAX_LABELS];
    let (mut at, mut count) = (0, 0);
    for label in name.iter().take(MAX_LABELS) {
        let end = (at + label.len()).min(lower.len());
        for (to, from) in lower[at..end].iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        at = end;
        ends[count] = end;
        count += 1;
    }
    let lower: &'b [u8; 255] = lower;
    let mut start = 0;
    for (slot, &end) in buffer.iter_mut().zip(&ends[..count]) {
        *slot = &lower[start..end];
        start = end;
    }
    &buffer[..count]
}

/// Passes on the records of one section (or all), counting them all.
struct Filtered<'s, S> {
    only: Option<Section>,
    sink: &'s mut S,
    answers: usize,
    aliases: usize,
    additionals: usize,
}

impl<S: Sink> Sink for Filtered<'_, S> {
    fn record(&mut self, section: Section, owner: Owner<'_>, data: Data<'_>) {
        match section {
            Section::Answer => {
                if self.aliases == self.answers && matches!(data, Data::Cname(_)) {
                    self.aliases += 1;
                }
                self.answers += 1;
            }
            Section::Additional => self.additionals += 1,
            Section::Authority => {}
        }
        if self.only.is_none_or(|only| only == section) {
            self.sink.record(section, owner, data);
        }
    }
}

/// Whether a CNAME is followed for `qtype`: not when the CNAME itself is asked for (`CNAME`,
/// or `ANY`, which it matches).
fn follows_aliases(qtype: RecordType) -> bool {
    !matches!(qtype, RecordType::CNAME | RecordType::ANY)
}

/// Decides what a question (its lower-case labels, leftmost first) leads to.
pub(crate) fn resolve<'v, 'q>(
    view: &'v View,
    zone: &'v Zone,
    labels: &[&'q [u8]],
    qtype: RecordType,
    qclass: DNSClass,
) -> Resolution<'v, 'q> {
    let question = classify(zone, labels);
    if question == Question::OutOfZone || qclass != DNSClass::IN {
        return Resolution::Refused;
    }
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        return Resolution::Refused;
    }
    if !view.synced() {
        return Resolution::NotReady;
    }
    let apex = match &question {
        Question::Reverse(_, rz) | Question::ReverseApex(rz) | Question::ReverseOther(rz) => {
            match rz {
                ReverseZone::V4 => Apex::InAddrArpa,
                ReverseZone::V6 => Apex::Ip6Arpa,
            }
        }
        // The clusterset zone is ours only while some ServiceImport exists.
        Question::Clusterset(_) if !view.has_imports() => return Resolution::Refused,
        Question::Clusterset(_) => Apex::Clusterset,
        _ => Apex::Zone,
    };
    match find(view, zone, question, qtype) {
        Some(node) => Resolution::Exists(node, apex),
        None => Resolution::NoSuchName(apex),
    }
}

/// Resolves a question to the node it names, or `None` when the name does not exist. `qtype`
/// only picks what a Service's own name holds: addresses, or SRV records of all its ports.
fn find<'v, 'q>(
    view: &'v View,
    zone: &'v Zone,
    question: Question<'q>,
    qtype: RecordType,
) -> Option<Node<'v, 'q>> {
    let pods_enabled = zone.pod_records != PodRecords::Disabled;
    let empty = Node::Addresses(AddressSet::NONE);
    Some(match question {
        Question::OutOfZone | Question::NoSuchName => return None,
        Question::Apex => Node::Apex,
        Question::Services | Question::Dns => empty,
        Question::Namespace(ns) => view.namespace_exists(ns).then_some(empty)?,
        Question::Nameserver => Node::Addresses(AddressSet::List(zone.ns_address.as_slice())),
        Question::Version => Node::Version(SCHEMA_VERSION),
        Question::Clusterset(question) => return find_in_clusterset(view, question, qtype),
        Question::Service { namespace, name } => {
            let service = view.service(namespace, name)?;
            if qtype == RecordType::SRV && srv_capable(view, namespace, name).is_some() {
                return Some(Node::Srv {
                    key: ServiceName { namespace, name },
                    service,
                    port: None,
                });
            }
            match &service.kind {
                ServiceKind::ClusterIp(ips) => Node::Addresses(AddressSet::List(ips)),
                ServiceKind::ExternalName(target) => Node::Alias(target),
                ServiceKind::Headless if service.endpoints.is_empty() => return None,
                ServiceKind::Headless => Node::Addresses(AddressSet::Endpoints(&service.endpoints)),
            }
        }
        Question::Endpoint {
            namespace,
            service,
            label,
        } => {
            let service = view.service(namespace, service)?;
            Node::Addresses(AddressSet::Endpoint(&service.endpoint(label)?.ips))
        }
        Question::SrvProtocol {
            namespace,
            service,
            protocol,
        } => {
            let service = srv_capable(view, namespace, service)?;
            let known = service
                .ports
                .iter()
                .any(|p| !p.name.is_empty() && p.protocol.srv_label() == protocol);
            known.then_some(empty)?
        }
        Question::Srv {
            namespace,
            service: name,
            port,
            protocol,
        } => {
            let service = srv_capable(view, namespace, name)?;
            let port = service
                .ports
                .iter()
                .position(|p| &*p.name == port && p.protocol.srv_label() == protocol)?;
            Node::Srv {
                key: ServiceName { namespace, name },
                service,
                port: Some(port),
            }
        }
        Question::Pods if pods_enabled => empty,
        Question::PodNamespace(ns) if pods_enabled => {
            let exists = zone.pod_records == PodRecords::Insecure || view.namespace_exists(ns);
            exists.then_some(empty)?
        }
        Question::PodAddress { namespace, label } if pods_enabled => {
            let ip = parse_dashed(label)?;
            let exists = zone.pod_records == PodRecords::Insecure || view.has_pod_ip(namespace, ip);
            exists.then_some(Node::Addresses(AddressSet::One(ip)))?
        }
        Question::Pods | Question::PodNamespace(_) | Question::PodAddress { .. } => return None,
        Question::ReverseApex(_) => Node::ReverseApex,
        Question::ReverseOther(_) => return None,
        Question::Reverse(ip, _) => {
            let mut any = false;
            pointer_targets(view, zone, ip, |_| any = true);
            any.then_some(Node::Pointers(ip))?
        }
    })
}

/// [`find`] for a name in the clusterset zone (the MCS DNS specification's names).
fn find_in_clusterset<'v, 'q>(
    view: &'v View,
    question: SetQuestion<'q>,
    qtype: RecordType,
) -> Option<Node<'v, 'q>> {
    let empty = Node::Addresses(AddressSet::NONE);
    Some(match question {
        SetQuestion::NoSuchName => return None,
        SetQuestion::Apex => Node::Apex,
        SetQuestion::Services => empty,
        SetQuestion::Version => Node::Version(CLUSTERSET_SCHEMA_VERSION),
        // Namespace sameness: a namespace is the same in every cluster of the set, so it exists
        // here as it exists in the cluster's own zone (as CoreDNS answers it).
        SetQuestion::Namespace(ns) => view.namespace_exists(ns).then_some(empty)?,
        SetQuestion::Import { namespace, name } => {
            let import = view.import(namespace, name)?;
            if qtype == RecordType::SRV && import_srv_capable(import) {
                return Some(Node::ImportSrv {
                    key: ServiceName { namespace, name },
                    import,
                    port: None,
                });
            }
            match &import.kind {
                ImportKind::ClusterSetIp(ips) => Node::Addresses(AddressSet::List(ips)),
                ImportKind::Headless if import.endpoints.is_empty() => return None,
                ImportKind::Headless => Node::Addresses(if import.shared_addresses {
                    AddressSet::DistinctImportEndpoints(&import.endpoints)
                } else {
                    AddressSet::ImportEndpoints(&import.endpoints)
                }),
            }
        }
        SetQuestion::Cluster {
            namespace,
            service,
            cluster,
        } => {
            let import = view.import(namespace, service)?;
            import.has_cluster(cluster).then_some(empty)?
        }
        SetQuestion::Endpoint {
            namespace,
            service,
            cluster,
            label,
        } => {
            let import = view.import(namespace, service)?;
            Node::Addresses(AddressSet::Endpoint(&import.endpoint(cluster, label)?.ips))
        }
        SetQuestion::SrvProtocol {
            namespace,
            service,
            protocol,
        } => {
            let import = view
                .import(namespace, service)
                .filter(|i| import_srv_capable(i))?;
            let known = import
                .ports
                .iter()
                .any(|p| !p.name.is_empty() && p.protocol.srv_label() == protocol);
            known.then_some(empty)?
        }
        SetQuestion::Srv {
            namespace,
            service: name,
            port,
            protocol,
        } => {
            let import = view
                .import(namespace, name)
                .filter(|i| import_srv_capable(i))?;
            let port = import
                .ports
                .iter()
                .position(|p| &*p.name == port && p.protocol.srv_label() == protocol)?;
            Node::ImportSrv {
                key: ServiceName { namespace, name },
                import,
                port: Some(port),
            }
        }
    })
}

/// An import whose names can carry SRV records: ClusterSetIP, or headless with endpoints.
fn import_srv_capable(import: &ImportView) -> bool {
    match import.kind {
        ImportKind::ClusterSetIp(_) => true,
        ImportKind::Headless => !import.endpoints.is_empty(),
    }
}

/// The types of the records a name (lower-case labels) holds, for explanations.
pub(crate) fn record_types(view: &View, zone: &Zone, labels: &[&[u8]]) -> Vec<RecordType> {
    let mut types = Vec::new();
    if let Resolution::Exists(node, _) = resolve(view, zone, labels, RecordType::A, DNSClass::IN) {
        match node {
            Node::Apex | Node::ReverseApex => types.extend([RecordType::SOA, RecordType::NS]),
            Node::Version(_) => types.push(RecordType::TXT),
            Node::Addresses(set) => {
                for rtype in [RecordType::A, RecordType::AAAA] {
                    let mut any = false;
                    set.for_each_of_type(rtype, |_| any = true);
                    if any {
                        types.push(rtype);
                    }
                }
            }
            Node::Alias(_) => types.push(RecordType::CNAME),
            Node::Srv { .. } | Node::ImportSrv { .. } => types.push(RecordType::SRV),
            Node::Pointers(_) => types.push(RecordType::PTR),
        }
    }
    if !types.contains(&RecordType::SRV)
        && let Resolution::Exists(Node::Srv { .. } | Node::ImportSrv { .. }, _) =
            resolve(view, zone, labels, RecordType::SRV, DNSClass::IN)
    {
        types.push(RecordType::SRV);
    }
    types
}

/// A Service whose names can carry SRV records: ClusterIP, or headless with endpoints.
fn srv_capable<'v>(view: &'v View, namespace: &str, name: &str) -> Option<&'v ServiceView> {
    let service = view.service(namespace, name)?;
    match service.kind {
        ServiceKind::ClusterIp(_) => Some(service),
        ServiceKind::Headless if !service.endpoints.is_empty() => Some(service),
        _ => None,
    }
}

/// Every name that holds `ip`: cluster IPs name their Service, pod IPs each of their names
/// (those that fit in a name).
fn pointer_targets(view: &View, zone: &Zone, ip: IpAddr, mut found: impl FnMut(Owner<'_>)) {
    for (namespace, name) in view.services_at(ip) {
        let Some(service) = view.service(namespace, name) else {
            continue;
        };
        let key = ServiceName { namespace, name };
        if let ServiceKind::ClusterIp(ips) = &service.kind
            && ips.contains(&ip)
            && service_fits(zone, key, None)
        {
            found(Owner::Service { key, label: None });
        }
        for endpoint in service.endpoints.iter().filter(|e| e.ips.contains(ip)) {
            let label = Some(&*endpoint.label);
            if service_fits(zone, key, label) {
                found(Owner::Service { key, label });
            }
        }
    }
}

/// Hands `sink` the records of `node` (owned by `owner`) for `qtype`; none: NODATA.
fn records(
    node: &Node<'_, '_>,
    view: &View,
    zone: &Zone,
    owner: Owner<'_>,
    qtype: RecordType,
    sink: &mut impl Sink,
) {
    let any = qtype == RecordType::ANY;
    match *node {
        Node::Apex | Node::ReverseApex => {
            if any || qtype == RecordType::SOA {
                sink.record(Section::Answer, owner, Data::Soa);
            }
            if any || qtype == RecordType::NS {
                sink.record(Section::Answer, owner, Data::Ns);
                if let Some(ip) = zone.ns_address {
                    push_addresses(
                        sink,
                        Section::Additional,
                        Owner::Nameserver,
                        AddressSet::One(ip),
                        RecordType::ANY,
                    );
                }
            }
        }
        Node::Version(version) => {
            if any || qtype == RecordType::TXT {
                sink.record(Section::Answer, owner, Data::Version(version));
            }
        }
        Node::Addresses(set) => push_addresses(sink, Section::Answer, owner, set, qtype),
        Node::Alias(target) => sink.record(Section::Answer, owner, Data::Cname(target)),
        Node::Srv { key, service, port } => {
            if any || qtype == RecordType::SRV {
                srv_records(zone, key, service, port, owner, sink);
            }
        }
        Node::ImportSrv { key, import, port } => {
            if any || qtype == RecordType::SRV {
                import_srv_records(zone, key, import, port, owner, sink);
            }
        }
        Node::Pointers(ip) => {
            if any || qtype == RecordType::PTR {
                pointer_targets(view, zone, ip, |target| {
                    sink.record(Section::Answer, owner, Data::Ptr(target));
                });
            }
        }
    }
}

/// One SRV per target and port: the Service name for a ClusterIP Service, each endpoint for a
/// headless one; of the port `port`, or of every port. The targets' addresses go in the
/// additional section, once per target. Weights split 100 evenly among the records sent.
fn srv_records<'a>(
    zone: &Zone,
    key: ServiceName<'a>,
    service: &'a ServiceView,
    port: Option<usize>,
    owner: Owner<'_>,
    sink: &mut impl Sink,
) {
    let ports = match port {
        Some(index) => index..index + 1,
        None => 0..service.ports.len(),
    };
    // Each target with its port, and whether it is the target's first record (its addresses go
    // with that one).
    let each = |found: &mut dyn FnMut(Owner<'a>, u16, AddressSet<'a>, bool)| {
        for port_index in ports.clone() {
            match &service.kind {
                ServiceKind::ClusterIp(ips) => {
                    if service_fits(zone, key, None) {
                        let target = Owner::Service { key, label: None };
                        let first = port_index == ports.start;
                        found(
                            target,
                            service.ports[port_index].port,
                            AddressSet::List(ips),
                            first,
                        );
                    }
                }
                _ => {
                    for (position, endpoint) in service.endpoints.iter().enumerate() {
                        let Some(number) = service.endpoint_port(port_index, position) else {
                            continue;
                        };
                        let label = Some(&*endpoint.label);
                        if !service_fits(zone, key, label) {
                            continue;
                        }
                        let first = (ports.start..port_index)
                            .all(|earlier| service.endpoint_port(earlier, position).is_none());
                        let target = Owner::Service { key, label };
                        found(target, number, AddressSet::Endpoint(&endpoint.ips), first);
                    }
                }
            }
        }
    };
    write_srv(each, owner, sink);
}

/// The SRV records of a ServiceImport, as [`srv_records`] makes a Service's: to the import's
/// name for a ClusterSetIP import, to each endpoint's name for a headless one.
fn import_srv_records<'a>(
    zone: &Zone,
    key: ServiceName<'a>,
    import: &'a ImportView,
    port: Option<usize>,
    owner: Owner<'_>,
    sink: &mut impl Sink,
) {
    let ports = match port {
        Some(index) => index..index + 1,
        None => 0..import.ports.len(),
    };
    let each = |found: &mut dyn FnMut(Owner<'a>, u16, AddressSet<'a>, bool)| {
        for port_index in ports.clone() {
            match &import.kind {
                ImportKind::ClusterSetIp(ips) => {
                    if import_fits(zone, key, None) {
                        let target = Owner::Import {
                            key,
                            endpoint: None,
                        };
                        let first = port_index == ports.start;
                        let number = import.ports[port_index].port;
                        found(target, number, AddressSet::List(ips), first);
                    }
                }
                ImportKind::Headless => {
                    for (position, endpoint) in import.endpoints.iter().enumerate() {
                        let Some(number) = import.endpoint_port(port_index, position) else {
                            continue;
                        };
                        let named = Some((&*endpoint.cluster, &*endpoint.label));
                        if !import_fits(zone, key, named) {
                            continue;
                        }
                        let first = (ports.start..port_index)
                            .all(|earlier| import.endpoint_port(earlier, position).is_none());
                        let target = Owner::Import {
                            key,
                            endpoint: named,
                        };
                        found(target, number, AddressSet::Endpoint(&endpoint.ips), first);
                    }
                }
            }
        }
    };
    write_srv(each, owner, sink);
}

/// Hands `sink` one SRV record per target `each` finds, with the target's addresses in the
/// additional section once (with its first record). Weights split 100 evenly among the records.
fn write_srv<'a>(
    each: impl Fn(&mut dyn FnMut(Owner<'a>, u16, AddressSet<'a>, bool)),
    owner: Owner<'_>,
    sink: &mut impl Sink,
) {
    let mut count = 0usize;
    each(&mut |_, _, _, _| count += 1);
    let weight = u16::try_from(100 / count.max(1)).unwrap_or(1).max(1);
    each(&mut |target, port, ips, first| {
        if first {
            push_addresses(sink, Section::Additional, target, ips, RecordType::ANY);
        }
        sink.record(
            Section::Answer,
            owner,
            Data::Srv {
                weight,
                port,
                target,
            },
        );
    });
}

/// A and/or AAAA records for the addresses of the asked family (`ANY`: both).
fn push_addresses(
    sink: &mut impl Sink,
    section: Section,
    owner: Owner<'_>,
    set: AddressSet<'_>,
    qtype: RecordType,
) {
    set.for_each_of_type(qtype, |ip| sink.record(section, owner, Data::Address(ip)));
}

/// The zone's SOA record data: serial from the view, timers from the zone.
fn soa_data(view: &View, zone: &Zone) -> RData {
    let [refresh, retry, expire, minimum] = zone.soa_timers();
    let seconds = |s: u32| i32::try_from(s).unwrap_or(i32::MAX);
    RData::SOA(SOA::new(
        zone.nameserver().clone(),
        zone.hostmaster().clone(),
        view.serial(),
        seconds(refresh),
        seconds(retry),
        seconds(expire),
        minimum,
    ))
}
