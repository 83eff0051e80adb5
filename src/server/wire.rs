//! Answers to the questions that make up a cluster's steady traffic — addresses, NXDOMAIN,
//! NODATA — written straight into wire format, without building records or messages.
//!
//! Everything else (other record types, EDNS options, unusual headers) is declined, and the UDP
//! path hands it to hickory's parser and encoder. The bytes must be exactly what that path would
//! send, name compression included: this module's tests compare the two in process over about a
//! thousand datagrams, and `tests/udp_fast_path.rs` compares whole servers over sockets.

use std::net::IpAddr;

use hickory_proto::rr::{DNSClass, Name, RecordType};
use tracing::debug;

use crate::dns::answer::{AddressSet, Node, Resolution, resolve};
use crate::dns::explain::{EDE_OPTION, explain};
use crate::dns::question::{MAX_LABELS, Question, classify};
use crate::dns::view::View;
use crate::dns::zone::{Apex, Zone};
use crate::message::{CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD};
use crate::server::truncation::rotation;

const HEADER_LEN: usize = 12;
/// The question always sits right after the header: compression pointers to it are this offset.
const QUESTION_OFFSET: usize = HEADER_LEN;
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
/// Where the OPT record's first flags byte is; its top bit is DO (RFC 3225).
const OPT_FLAGS: usize = 7;
const FLAG_DO: u8 = 0x80;
/// hickory's encoder remembers at most this many name suffixes for compression; we must match it.
const COMPRESSION_CANDIDATES: usize = 64;

/// The TC bit, in the third byte of the header.
const FLAG_TC: u8 = 0x02;

const RCODE_NOERROR: u8 = 0;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_REFUSED: u8 = 5;

/// A name as it goes on the wire (length-prefixed labels, no root), with where each label starts.
#[derive(Debug)]
struct WireName {
    bytes: Box<[u8]>,
    starts: Box<[u8]>,
}

impl WireName {
    fn of(name: &Name) -> Self {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for label in name.iter() {
            // A name has at most 255 bytes, so every offset fits.
            starts.push(bytes.len() as u8);
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label);
        }
        Self {
            bytes: bytes.into(),
            starts: starts.into(),
        }
    }

    fn as_ref(&self) -> NameRef<'_> {
        NameRef {
            bytes: &self.bytes,
            starts: &self.starts,
        }
    }
}

/// A wire-format name borrowed from a [`WireName`] or from the query.
#[derive(Clone, Copy)]
struct NameRef<'a> {
    bytes: &'a [u8],
    starts: &'a [u8],
}

/// The zone's fixed names in wire form, encoded once at startup.
#[derive(Debug)]
pub(crate) struct WireZone {
    origin: WireName,
    in_addr_arpa: WireName,
    ip6_arpa: WireName,
    nameserver: WireName,
    hostmaster: WireName,
}

impl WireZone {
    pub(crate) fn new(zone: &Zone) -> Self {
        Self {
            origin: WireName::of(zone.apex(Apex::Zone)),
            in_addr_arpa: WireName::of(zone.apex(Apex::InAddrArpa)),
            ip6_arpa: WireName::of(zone.apex(Apex::Ip6Arpa)),
            nameserver: WireName::of(zone.nameserver()),
            hostmaster: WireName::of(zone.hostmaster()),
        }
    }

    fn apex(&self, apex: Apex) -> NameRef<'_> {
        match apex {
            Apex::Zone => self.origin.as_ref(),
            Apex::InAddrArpa => self.in_addr_arpa.as_ref(),
            Apex::Ip6Arpa => self.ip6_arpa.as_ref(),
        }
    }
}

/// A query in the plain shape this module answers: one question with an uncompressed name,
/// nothing else but an optional bare OPT record.
struct PlainQuery<'q> {
    datagram: &'q [u8],
    /// End of the question name's labels (where its root byte is).
    name_end: usize,
    /// Where each label of the question name starts.
    starts: [u8; MAX_LABELS],
    label_count: usize,
    qtype: RecordType,
    /// The client's UDP limit when it sent EDNS.
    edns_limit: Option<u16>,
    /// The query's DO bit, which the response copies.
    dnssec_ok: u8,
}

impl<'q> PlainQuery<'q> {
    /// `None` for anything else, including every malformed datagram.
    fn parse(datagram: &'q [u8], lower: &mut [u8; 255]) -> Option<Self> {
        let header = datagram.get(..HEADER_LEN)?;
        let [
            _,
            _,
            flags,
            _,
            qd_hi,
            qd_lo,
            an_hi,
            an_lo,
            ns_hi,
            ns_lo,
            ar_hi,
            ar_lo,
        ] = *header
        else {
            return None;
        };
        // A query (not a response) with opcode QUERY, one question, and at most an OPT record.
        if flags & 0xF8 != 0
            || [qd_hi, qd_lo, an_hi, an_lo, ns_hi, ns_lo, ar_hi] != [0, 1, 0, 0, 0, 0, 0]
        {
            return None;
        }
        let mut starts = [0u8; MAX_LABELS];
        let mut label_count = 0;
        let mut at = QUESTION_OFFSET;
        loop {
            let len = usize::from(*datagram.get(at)?);
            if len == 0 {
                break;
            }
            // Compression pointers and extended label types go to hickory.
            if len > 63 || label_count == MAX_LABELS || at + 1 + len - QUESTION_OFFSET > 254 {
                return None;
            }
            let label = datagram.get(at..at + 1 + len)?;
            let offset = at - QUESTION_OFFSET;
            lower[offset] = label[0];
            for (l, b) in lower[offset + 1..offset + 1 + len]
                .iter_mut()
                .zip(&label[1..])
            {
                *l = b.to_ascii_lowercase();
            }
            starts[label_count] = offset as u8;
            label_count += 1;
            at += 1 + len;
        }
        let name_end = at;
        let fixed = datagram.get(name_end + 1..name_end + 5)?;
        let qtype = RecordType::from(u16::from_be_bytes([fixed[0], fixed[1]]));
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        if qclass != u16::from(DNSClass::IN) || label_count == 0 {
            return None;
        }
        let rest = &datagram[name_end + 5..];
        let (edns_limit, dnssec_ok) = match (ar_lo, rest) {
            (0, []) => (None, 0),
            // Root owner, type OPT, payload size, extended rcode, version 0, flags, no options.
            (1, [0, 0, 41, size_hi, size_lo, _, 0, flags, _, 0, 0]) => (
                Some(
                    u16::from_be_bytes([*size_hi, *size_lo])
                        .clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
                ),
                flags & FLAG_DO,
            ),
            _ => return None,
        };
        Some(Self {
            datagram,
            name_end,
            starts,
            label_count,
            qtype,
            edns_limit,
            dnssec_ok,
        })
    }

    /// The question section as received: name, type and class.
    fn question(&self) -> &'q [u8] {
        &self.datagram[QUESTION_OFFSET..self.name_end + 5]
    }

    /// The question name as asked (case kept), without the root.
    fn asked_name(&self) -> NameRef<'_> {
        NameRef {
            bytes: &self.datagram[QUESTION_OFFSET..self.name_end],
            starts: &self.starts[..self.label_count],
        }
    }
}

/// The name suffixes already written and where, as hickory's encoder keeps them: a later name
/// that ends in one of them (byte for byte, case included) points there instead.
struct Suffixes<'a> {
    entries: [(u16, &'a [u8]); COMPRESSION_CANDIDATES],
    len: usize,
}

impl<'a> Suffixes<'a> {
    fn new() -> Self {
        Self {
            entries: [(0, &[][..]); COMPRESSION_CANDIDATES],
            len: 0,
        }
    }

    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.entries[..self.len]
            .iter()
            .find(|(_, s)| *s == suffix)
            .map(|(offset, _)| *offset)
    }

    /// Forgets the suffixes stored after the first `len` (written by records taken back).
    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    fn store(&mut self, offset: usize, suffix: &'a [u8]) {
        if offset < 0x3FFF && self.len < COMPRESSION_CANDIDATES {
            self.entries[self.len] = (offset as u16, suffix);
            self.len += 1;
        }
    }

    /// Writes `name`, pointing at the longest suffix already written.
    fn write_name(&mut self, out: &mut Vec<u8>, name: NameRef<'a>) {
        for (i, &start) in name.starts.iter().enumerate() {
            let start = usize::from(start);
            let suffix = &name.bytes[start..];
            if let Some(offset) = self.find(suffix) {
                out.extend_from_slice(&(0xC000 | offset).to_be_bytes());
                return;
            }
            self.store(out.len(), suffix);
            let end = name
                .starts
                .get(i + 1)
                .map_or(name.bytes.len(), |&next| usize::from(next));
            out.extend_from_slice(&name.bytes[start..end]);
        }
        out.push(0);
    }
}

/// Writes the response to `datagram` into `out` when it is one this module answers; `false`
/// leaves the datagram to the general path (and `out` in an unspecified state).
pub(crate) fn answer(
    view: &View,
    zone: &Zone,
    wire: &WireZone,
    datagram: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let mut lower = [0u8; 255];
    let Some(query) = PlainQuery::parse(datagram, &mut lower) else {
        return false;
    };
    let mut labels = [&[][..]; MAX_LABELS];
    for (i, slot) in labels[..query.label_count].iter_mut().enumerate() {
        let start = usize::from(query.starts[i]);
        let len = usize::from(lower[start]);
        *slot = &lower[start + 1..start + 1 + len];
    }
    let labels = &labels[..query.label_count];
    let (rcode, authoritative, addresses, apex) =
        match resolve(view, zone, labels, query.qtype, DNSClass::IN) {
            Resolution::Refused => (RCODE_REFUSED, false, AddressSet::NONE, None),
            Resolution::NotReady => (RCODE_SERVFAIL, false, AddressSet::NONE, None),
            Resolution::NoSuchName(apex) => (RCODE_NXDOMAIN, true, AddressSet::NONE, Some(apex)),
            Resolution::Exists(Node::Addresses(set), apex) => {
                (RCODE_NOERROR, true, set, Some(apex))
            }
            Resolution::Exists(..) => return false,
        };
    debug!(
        name = %String::from_utf8_lossy(&query.question()[..query.name_end - QUESTION_OFFSET]),
        qtype = %query.qtype,
        rcode,
        "query"
    );

    out.clear();
    write_header(out, &query, rcode, authoritative);
    out.extend_from_slice(query.question());
    // hickory copies the question as received and files it whole (root, type and class
    // included) as one compression candidate, which no name can match; names start afresh after it.
    let mut suffixes = Suffixes::new();
    suffixes.store(QUESTION_OFFSET, query.question());
    let limit = usize::from(query.edns_limit.unwrap_or(CLASSIC_UDP_PAYLOAD));
    let opt = query.edns_limit.map_or(0, |_| OPT_RECORD.len());
    let whole = Records {
        owner: query.asked_name(),
        ttl: zone.ttl,
        limit,
    };
    let body = (out.len(), suffixes.len);
    // Every address in order, if they and the OPT record after them fit; else as many as fit
    // beside the OPT record from the one this query's ID picks (see `truncation`), exactly as
    // hickory's encoder takes them in the general path's two passes.
    let (mut answers, mut truncated) =
        whole.write_addresses(out, &mut suffixes, addresses, query.qtype, 0);
    truncated |= out.len() + opt > limit;
    if truncated {
        out.truncate(body.0);
        suffixes.truncate(body.1);
        let mut count = 0;
        addresses.for_each_of_type(query.qtype, |_| count += 1);
        let id = u16::from_be_bytes([datagram[0], datagram[1]]);
        let cut = Records {
            limit: limit - opt,
            ..whole
        };
        (answers, _) = cut.write_addresses(
            out,
            &mut suffixes,
            addresses,
            query.qtype,
            rotation(id, count),
        );
    }
    // A negative answer carries the SOA. One whose SOA does not fit (a long question beside a
    // long zone name, without EDNS) is left to the general path.
    let mut authority = 0u16;
    if answers == 0
        && !truncated
        && let Some(apex) = apex
    {
        write_soa(out, &mut suffixes, view, zone, wire, apex);
        if out.len() + opt > limit {
            return false;
        }
        authority = 1;
    }
    let additional = u16::from(query.edns_limit.is_some());
    if query.edns_limit.is_some() {
        // An empty or negative answer says why, as the general path does, when the reason fits.
        let explained = rcode != RCODE_REFUSED || classify(zone, labels) == Question::OutOfZone;
        let why = (zone.explain && answers == 0 && !truncated && explained)
            .then(|| explain(view, zone, labels, query.qtype, false).option_data())
            .filter(|data| out.len() + opt + 4 + data.len() <= limit);
        let at = out.len();
        out.extend_from_slice(&OPT_RECORD);
        out[at + OPT_FLAGS] = query.dnssec_ok;
        if let Some(data) = why {
            let length = 4 + data.len() as u16;
            out[at + OPT_RECORD.len() - 2..].copy_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&EDE_OPTION.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data);
        }
    }
    if truncated {
        out[2] |= FLAG_TC;
    }
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    out[8..10].copy_from_slice(&authority.to_be_bytes());
    out[10..12].copy_from_slice(&additional.to_be_bytes());
    true
}

/// How address records are written for one answer.
struct Records<'q> {
    /// The question name as asked, owner of every record.
    owner: NameRef<'q>,
    ttl: u32,
    /// Where the records must end.
    limit: usize,
}

impl<'q> Records<'q> {
    /// Writes the addresses of `set` for `qtype`, the `start`th first and round from there,
    /// until one does not fit; returns how many it wrote, and whether any was left out.
    fn write_addresses(
        &self,
        out: &mut Vec<u8>,
        suffixes: &mut Suffixes<'q>,
        set: AddressSet<'_>,
        qtype: RecordType,
        start: usize,
    ) -> (u16, bool) {
        let (mut written, mut full) = (0u16, false);
        let mut write = |ip: IpAddr| {
            if full {
                return;
            }
            let mark = (out.len(), suffixes.len);
            // hickory's encoder writes the owner's labels whole before it compresses them, and
            // refuses the record when they cross the limit: so must we, to cut where it cuts.
            if mark.0 + self.owner.bytes.len() > self.limit {
                full = true;
                return;
            }
            suffixes.write_name(out, self.owner);
            let (rtype, rdata) = match ip {
                IpAddr::V4(v4) => (RecordType::A, &v4.octets()[..]),
                IpAddr::V6(v6) => (RecordType::AAAA, &v6.octets()[..]),
            };
            write_record_head(out, rtype, self.ttl);
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(rdata);
            if out.len() > self.limit {
                out.truncate(mark.0);
                suffixes.truncate(mark.1);
                full = true;
            } else {
                written += 1;
            }
        };
        let mut index = 0;
        set.for_each_of_type(qtype, |ip| {
            if index >= start {
                write(ip);
            }
            index += 1;
        });
        let mut index = 0;
        set.for_each_of_type(qtype, |ip| {
            if index < start {
                write(ip);
            }
            index += 1;
        });
        (written, full)
    }
}

/// The zone's SOA record, as a negative answer's authority.
fn write_soa<'a>(
    out: &mut Vec<u8>,
    suffixes: &mut Suffixes<'a>,
    view: &View,
    zone: &Zone,
    wire: &'a WireZone,
    apex: Apex,
) {
    suffixes.write_name(out, wire.apex(apex));
    write_record_head(out, RecordType::SOA, zone.ttl);
    let length_at = out.len();
    out.extend_from_slice(&[0, 0]);
    suffixes.write_name(out, wire.nameserver.as_ref());
    suffixes.write_name(out, wire.hostmaster.as_ref());
    out.extend_from_slice(&view.serial().to_be_bytes());
    for timer in zone.soa_timers() {
        out.extend_from_slice(&timer.to_be_bytes());
    }
    let length = (out.len() - length_at - 2) as u16;
    out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
}

/// The response header; TC and the record counts are filled in once known.
fn write_header(out: &mut Vec<u8>, query: &PlainQuery<'_>, rcode: u8, authoritative: bool) {
    let request = query.datagram;
    // QR, and the request's RD; then its CD, and the response code.
    let mut flags = 0x80 | (request[2] & 0x01);
    if authoritative {
        flags |= 0x04;
    }
    out.extend_from_slice(&[request[0], request[1], flags, (request[3] & 0x10) | rcode]);
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
}

/// Type, class IN and TTL; the record data length and data follow.
fn write_record_head(out: &mut Vec<u8>, rtype: RecordType, ttl: u32) {
    out.extend_from_slice(&u16::from(rtype).to_be_bytes());
    out.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
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
             spec: {clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20, \"fd00::20\"], selector: {app: api}}\n"
                .to_string(),
            headless("mid"),
            headless("big"),
            headless("pair"),
        ];
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
        let objects = manifests::parse(&parts.join("---\n")).unwrap();
        let mut state = ClusterState::new(1234);
        state.apply(manifests::resync(objects));
        if synced {
            state.apply(ClusterEvent::Synced);
        }
        SharedView::new(state.publish().unwrap())
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
        let src = "127.0.0.1:5300".parse().unwrap();
        let mut taken = Vec::new();
        for datagram in datagrams {
            let mut direct = Vec::new();
            if handler.answer_directly(datagram, &mut direct) {
                let mut general = Vec::new();
                assert!(handler.respond(datagram, src, Protocol::Udp, &mut general));
                assert_eq!(direct, general, "reply to {datagram:?}");
                taken.push(datagram.clone());
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
        ];
        let qtypes = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::ANY,
            RecordType::MX,
            RecordType::SRV,
            RecordType::PTR,
            RecordType::SOA,
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
        // Cut answers start at a record picked by the query's ID: many IDs, both ways.
        for id in 0..200u16 {
            for (name, qtype) in [
                ("big.default.svc.cluster.local.", RecordType::A),
                ("pair.default.svc.cluster.local.", RecordType::ANY),
            ] {
                for edns in [None, Some((600, false))] {
                    let mut message = query(name, qtype, edns);
                    message.metadata.id = id.wrapping_mul(331);
                    datagrams.push(message.to_vec().unwrap());
                }
            }
        }
        let taken = compare(&handler, &datagrams);
        let responses: Vec<Message> = taken
            .iter()
            .map(|d| {
                let mut out = Vec::new();
                handler.answer_directly(d, &mut out);
                Message::from_vec(&out).unwrap()
            })
            .collect();
        // The direct writer covers what it exists for: answers, NXDOMAIN, NODATA, cut answers,
        // refusals; it leaves SOA, SRV and PTR answers to hickory.
        let count = |f: &dyn Fn(&Message) -> bool| responses.iter().filter(|m| f(m)).count();
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
                m.metadata.truncation && m.queries[0].name().to_string().starts_with("big.")
            })
            .map(|m| m.answers[0].data.to_string())
            .collect();
        assert_eq!(firsts.len(), 80);
        assert!(count(&|m| m.metadata.response_code == ResponseCode::NXDomain) > 0);
        assert!(count(&|m| m.metadata.response_code == ResponseCode::Refused) > 0);
        assert!(count(&|m| m.answers.is_empty() && m.authorities.len() == 1) > 0);
        assert!(
            taken.len() > datagrams.len() / 2,
            "{} of {}",
            taken.len(),
            datagrams.len()
        );
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
            handler.answer_directly(&datagram, &mut direct);
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
            handler.answer_directly(&plain, &mut direct);
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
        unsynced.answer_directly(&early, &mut direct);
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
            long.answer_directly(&datagram, &mut direct);
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
        quiet.answer_directly(&datagram, &mut direct);
        assert_eq!(reason_in(&direct), None);
    }
}
