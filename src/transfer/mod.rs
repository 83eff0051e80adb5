//! Zone transfers to standard secondaries: AXFR (RFC 5936) and IXFR (RFC 1995) over TCP for the
//! clients `--allow-transfer` names, and NOTIFY (RFC 1996) to the `--notify` targets when the
//! zone changes.
//!
//! A transfer streams from one snapshot of the view, one message at a time (about 16 KB each),
//! made from the records of the next step of a walk over the zone (the Services or addresses of
//! one shard of the view's maps), so a zone of 100,000 pods never sits in memory as records.
//! An IXFR gets the current SOA alone when the client is up to date; the differences since its
//! serial when the view's journal reaches back that far ([`crate::dns::journal`]); else the
//! whole zone, as RFC 1995 §4 allows. With `--tsig-key` a request must be signed with the
//! key, and every message of the transfer is ([`tsig`]).

pub(crate) mod notify;
pub(crate) mod tsig;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::dns::contents::{self, Part};
use crate::dns::view::View;
use crate::dns::zone::{Apex, Zone};
use crate::message::wire_question_type;
use tsig::{ResponseSigner, Signature, TsigKey};

/// A message of a transfer is closed once its records reach this many bytes (uncompressed):
/// well under the 64 KB a TCP message may hold, whatever the next record.
const MESSAGE_BUDGET: usize = 16 * 1024;

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `fd00::/8`; an address alone is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (ip, self.address) {
            // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
            (IpAddr::V6(v6), IpAddr::V4(_)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        let prefix = u32::from(self.prefix);
        match (ip, self.address) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                u32::from(ip) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(ip), IpAddr::V6(net)) => {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                u128::from(ip) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let (address, prefix) = match value.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (value, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{value:?}: {address:?} is not an IP address"))?;
        let longest = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => longest,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= longest)
                .ok_or_else(|| format!("{value:?}: the prefix length must be 0 to {longest}"))?,
        };
        Ok(Self { address, prefix })
    }
}

/// Who may transfer the zones.
#[derive(Clone, Debug, Default)]
pub struct TransferPolicy {
    pub allowed: Vec<Network>,
    /// When set, a transfer request must also be signed with this key.
    pub key: Option<TsigKey>,
}

impl TransferPolicy {
    pub fn allows(&self, client: IpAddr) -> bool {
        self.allowed.iter().any(|network| network.contains(client))
    }
}

/// The zone a transfer question names, if we serve it.
fn apex_of(zone: &Zone, name: &hickory_proto::rr::Name) -> Option<Apex> {
    let name = name.to_lowercase();
    zone.apexes().find(|&apex| *zone.apex(apex) == name)
}

/// A transfer request that may be served: AXFR or IXFR of a zone we serve, from a client that
/// may have it.
pub struct Request {
    pub message: Message,
    pub apex: Apex,
    /// Signs the transfer's messages, when the request was signed.
    pub signer: Option<ResponseSigner>,
}

/// The transfer request `message` is, if it may be served. Any other (a question, a refused or
/// badly signed transfer) is for the handler, which refuses it or answers NOTAUTH.
pub(crate) fn request(
    message: &[u8],
    client: SocketAddr,
    policy: &TransferPolicy,
    zone: &Zone,
) -> Option<Request> {
    // Every TCP message passes here: only a transfer request from an allowed client is parsed
    // (the others are parsed once, by the handler).
    if !policy.allows(client.ip()) {
        return None;
    }
    let asked = wire_question_type(message).map(RecordType::from);
    if !matches!(asked, Some(RecordType::AXFR | RecordType::IXFR)) {
        return None;
    }
    let request = Message::from_vec(message).ok()?;
    let [query] = &request.queries[..] else {
        return None;
    };
    let transfer = matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR);
    if request.metadata.message_type != MessageType::Query
        || request.metadata.op_code != OpCode::Query
        || !transfer
        || query.query_class() != DNSClass::IN
    {
        return None;
    }
    let apex = apex_of(zone, query.name())?;
    let signer = match TsigKey::check(
        policy.key.as_ref(),
        message,
        request.signature.as_deref(),
        tsig::now(),
    ) {
        Signature::Valid(signer) => Some(signer),
        Signature::Unsigned if policy.key.is_none() => None,
        Signature::Unsigned | Signature::Rejected(_) => return None,
    };
    Some(Request {
        message: request,
        apex,
        signer,
    })
}

/// One transfer in progress: the messages of a zone, made one at a time from a snapshot.
pub struct Transfer {
    view: Arc<View>,
    zone: Arc<Zone>,
    apex: Apex,
    id: u16,
    query: Query,
    soa: Record,
    parts: Vec<Part>,
    next_part: usize,
    /// Records made but not yet sent: a part may hold more than one message takes.
    pending: std::collections::VecDeque<Record>,
    stage: Stage,
    /// Whether the question went out (in the first message only).
    asked: bool,
    /// What the transfer sends, for the log.
    pub kind: TransferKind,
    signer: Option<ResponseSigner>,
    scratch: Vec<u8>,
}

/// What a transfer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    Axfr,
    /// An IXFR from a client that has the current serial: the SOA alone.
    UpToDate,
    /// An IXFR answered with the differences of this many changes.
    Incremental(usize),
    /// An IXFR from further back than the journal reaches: the whole zone.
    WholeZone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The opening SOA is still to be sent.
    Opening,
    Body,
    /// Only the closing SOA is left.
    Closing,
    Done,
}

impl Transfer {
    /// The transfer answering `request` from `view`; `None` when the view is not complete yet
    /// (the request is then refused like any other).
    pub fn new(view: Arc<View>, zone: Arc<Zone>, request: Request) -> Option<Self> {
        if !view.synced() {
            return None;
        }
        let Request {
            message: request,
            apex,
            signer,
        } = request;
        let query = request.queries.first()?.clone();
        let soa = contents::soa(&view, &zone, apex)?;
        let ixfr_from = client_serial(&request).filter(|_| query.query_type() == RecordType::IXFR);
        let up_to_date = ixfr_from.is_some_and(|serial| !serial_less(serial, view.serial()));
        let changes = ixfr_from.and_then(|serial| view.journal().since(serial));
        let kind = match (ixfr_from, &changes) {
            (None, _) => TransferKind::Axfr,
            _ if up_to_date => TransferKind::UpToDate,
            (Some(_), Some(changes)) => TransferKind::Incremental(changes.len()),
            (Some(_), None) => TransferKind::WholeZone,
        };
        let mut pending = std::collections::VecDeque::new();
        let parts = if up_to_date {
            Vec::new()
        } else if let Some(changes) = changes {
            // RFC 1995 §4: for each change, the old SOA, what it removed, the new SOA, what
            // it added; between the current SOA at both ends.
            // The journal holds every zone's changes: this zone's are those of the names
            // within it and not within a zone it holds.
            let in_zone = |record: &Record| zone.zone_holding(&record.name) == Some(apex);
            for change in changes {
                pending.push_back(with_serial(&soa, change.from));
                pending.extend(change.removed.records().into_iter().filter(in_zone));
                pending.push_back(with_serial(&soa, change.to));
                pending.extend(change.added.records().into_iter().filter(in_zone));
            }
            Vec::new()
        } else {
            contents::parts(&zone, apex)
        };
        Some(Self {
            stage: if up_to_date {
                Stage::Closing
            } else {
                Stage::Opening
            },
            id: request.metadata.id,
            view,
            zone,
            apex,
            query,
            soa,
            parts,
            next_part: 0,
            pending,
            asked: false,
            kind,
            signer,
            scratch: Vec::new(),
        })
    }

    /// Writes the next message of the transfer into `out`; `false` once all were written.
    pub fn next_message(&mut self, out: &mut Vec<u8>) -> bool {
        if self.stage == Stage::Done {
            return false;
        }
        let mut message = Message::new(self.id, MessageType::Response, OpCode::Query);
        message.metadata.authoritative = true;
        message.metadata.response_code = ResponseCode::NoError;
        if !self.asked {
            message.add_query(self.query.clone());
            self.asked = true;
        }
        let mut size = 0;
        if self.stage == Stage::Opening {
            let soa = self.soa.clone();
            size += self.encoded_len(&soa);
            message.add_answer(soa);
            self.stage = Stage::Body;
        }
        while self.stage == Stage::Body && size < MESSAGE_BUDGET {
            match self.pending.pop_front() {
                Some(record) => {
                    size += self.encoded_len(&record);
                    message.add_answer(record);
                }
                None if self.next_part < self.parts.len() => {
                    let part = self.parts[self.next_part];
                    let mut records = Vec::new();
                    contents::records(&self.view, &self.zone, self.apex, &part, &mut records);
                    self.pending.extend(records);
                    self.next_part += 1;
                }
                None => self.stage = Stage::Closing,
            }
        }
        if self.stage == Stage::Closing && size < MESSAGE_BUDGET {
            message.add_answer(self.soa.clone());
            self.stage = Stage::Done;
        }
        out.clear();
        if message.emit(&mut BinEncoder::new(out)).is_err() {
            self.stage = Stage::Done;
            return false;
        }
        if let Some(signer) = &mut self.signer {
            signer.sign(out, tsig::now());
        }
        true
    }

    fn encoded_len(&mut self, record: &Record) -> usize {
        self.scratch.clear();
        let mut encoder = BinEncoder::new(&mut self.scratch);
        let _ = record.emit(&mut encoder);
        self.scratch.len()
    }
}

/// `soa` with serial `serial`.
fn with_serial(soa: &Record, serial: u32) -> Record {
    let mut record = soa.clone();
    if let RData::SOA(data) = &mut record.data {
        data.serial = serial;
    }
    record
}

/// The serial of the SOA an IXFR request carries in its authority section.
fn client_serial(request: &Message) -> Option<u32> {
    request
        .authorities
        .iter()
        .find_map(|record| match &record.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
}

/// RFC 1982 serial number arithmetic: whether `a` comes before `b`.
pub(crate) fn serial_less(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::SOA;

    use super::*;
    use crate::cluster::journal;
    use crate::cluster::{ClusterEvent, ClusterState};
    use crate::dns::zone::PodRecords;
    use crate::source::manifests;

    #[test]
    fn networks() {
        let net = |text: &str| text.parse::<Network>().unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(
            net("127.0.0.1").contains(ip("127.0.0.1"))
                && !net("127.0.0.1").contains(ip("127.0.0.2"))
        );
        assert!(
            net("127.0.0.0/8").contains(ip("::ffff:127.0.0.9")),
            "IPv4 on a dual-stack socket"
        );
        assert!(
            net("fd00::/8").contains(ip("fd12::1")) && !net("fd00::/8").contains(ip("fe80::1"))
        );
        assert!(
            net("0.0.0.0/0").contains(ip("192.0.2.1")) && !net("0.0.0.0/0").contains(ip("fd00::1"))
        );
        for bad in ["10.0.0.0/33", "fd00::/129", "ten/8", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    /// A synced view: one headless Service of `pods` pods, and the ExternalName `db`.
    fn view(pods: usize) -> Arc<View> {
        let mut state = ClusterState::new(7);
        state.apply(manifests::resync(objects(pods, &[])));
        state.apply(ClusterEvent::Synced);
        Arc::new(state.publish().unwrap())
    }

    /// The objects of [`view`], the pods numbered in `not_ready` not Ready.
    fn objects(pods: usize, not_ready: &[usize]) -> Vec<crate::records::ClusterObject> {
        let mut text = String::from(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
             spec: {clusterIP: None, selector: {app: web}, ports: [{name: http, port: 80}]}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\n\
             spec: {type: ExternalName, externalName: db.example.com}\n",
        );
        for i in 0..pods {
            let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
            write!(
                text,
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: web-{i}, namespace: default, labels: {{app: web}}}}\n\
                 spec: {{hostname: web-{i}, subdomain: web, containers: [{{name: a, image: a}}]}}\n\
                 status: {{phase: Running, podIP: \"{ip}\", conditions: [{{type: Ready, status: \"{}\"}}]}}\n",
                if not_ready.contains(&i) { "False" } else { "True" }
            )
            .unwrap();
        }
        manifests::parse(&text).unwrap()
    }

    fn request(qtype: RecordType, zone: &str, serial: Option<u32>) -> Message {
        let mut message = Message::new(99, MessageType::Query, OpCode::Query);
        let name = Name::from_ascii(zone).unwrap();
        message.add_query(Query::query(name.clone(), qtype));
        if let Some(serial) = serial {
            let soa = SOA::new(name.clone(), name.clone(), serial, 1, 1, 1, 1);
            message.add_authority(Record::from_rdata(name, 0, RData::SOA(soa)));
        }
        message
    }

    fn unsigned(message: &Message, apex: Apex) -> super::Request {
        super::Request {
            message: message.clone(),
            apex,
            signer: None,
        }
    }

    /// Every message of a transfer, parsed.
    fn messages(view: &Arc<View>, request: &Message, apex: Apex) -> Vec<Message> {
        let zone = Arc::new(Zone::new("cluster.local.", 5, PodRecords::Verified, None).unwrap());
        messages_in(view, &zone, request, apex)
    }

    /// Every message of a transfer from `view` with names in `zone`, parsed.
    fn messages_in(
        view: &Arc<View>,
        zone: &Arc<Zone>,
        request: &Message,
        apex: Apex,
    ) -> Vec<Message> {
        let mut transfer =
            Transfer::new(view.clone(), zone.clone(), unsigned(request, apex)).unwrap();
        let mut out = Vec::new();
        let mut messages = Vec::new();
        while transfer.next_message(&mut out) {
            assert!(out.len() < 65_535 && messages.len() < 10_000);
            messages.push(Message::from_vec(&out).unwrap());
        }
        messages
    }

    #[test]
    fn a_zone_streams_in_messages_between_two_soas() {
        let view = view(3000);
        let messages = messages(
            &view,
            &request(RecordType::AXFR, "cluster.local.", None),
            Apex::Zone,
        );
        assert!(messages.len() > 10, "{} messages", messages.len());
        let records: Vec<&Record> = messages.iter().flat_map(|m| &m.answers).collect();
        let types = |rtype| records.iter().filter(|r| r.record_type() == rtype).count();
        assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
        assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
        assert_eq!(types(RecordType::SOA), 2);
        // The Service's name and each pod's: 2 × 3000 A; SRV at the Service's name and at
        // _http._tcp; 3000 pod names; the CNAME; NS and the version's TXT.
        assert_eq!(types(RecordType::A), 3 * 3000);
        assert_eq!(types(RecordType::SRV), 2 * 3000);
        assert_eq!(
            (
                types(RecordType::CNAME),
                types(RecordType::NS),
                types(RecordType::TXT)
            ),
            (1, 1, 1)
        );
        assert!(
            messages
                .iter()
                .all(|m| m.metadata.id == 99 && m.metadata.authoritative)
        );
        assert_eq!(messages[0].queries.len(), 1);

        let reverse = super::tests::messages(
            &view,
            &request(RecordType::AXFR, "in-addr.arpa.", None),
            Apex::InAddrArpa,
        );
        let ptrs = reverse
            .iter()
            .flat_map(|m| &m.answers)
            .filter(|r| r.record_type() == RecordType::PTR)
            .count();
        assert_eq!(ptrs, 3000);
    }

    #[test]
    fn an_ixfr_gets_the_soa_alone_when_up_to_date_else_the_zone() {
        let view = view(10);
        let current = view.serial();
        let up_to_date = messages(
            &view,
            &request(RecordType::IXFR, "cluster.local.", Some(current)),
            Apex::Zone,
        );
        assert_eq!(up_to_date.len(), 1);
        assert_eq!(up_to_date[0].answers.len(), 1);
        assert_eq!(up_to_date[0].answers[0].record_type(), RecordType::SOA);
        let behind = messages(
            &view,
            &request(RecordType::IXFR, "cluster.local.", Some(current - 1)),
            Apex::Zone,
        );
        assert!(behind.iter().map(|m| m.answers.len()).sum::<usize>() > 30);
        assert!(serial_less(u32::MAX, 0) && !serial_less(0, u32::MAX) && !serial_less(5, 5));
    }

    /// With a journal, an IXFR from an earlier serial gets each change's differences between
    /// the SOAs RFC 1995 puts around them; a change that alters no record keeps the serial.
    #[test]
    fn an_ixfr_gets_the_differences_the_journal_holds() {
        let zone = Arc::new(Zone::new("cluster.local.", 5, PodRecords::Verified, None).unwrap());
        let mut state = ClusterState::new(7).with_journal(zone.clone());
        state.apply(manifests::resync(objects(3, &[])));
        state.apply(ClusterEvent::Synced);
        let first = state.publish().unwrap().serial();
        // web-1 stops being Ready: its names, its SRV records and its PTR go.
        state.apply(manifests::resync(objects(3, &[1])));
        let view = Arc::new(state.publish().unwrap());
        assert_eq!(view.serial(), first + 1);
        // The same objects again, and a pod that is not Ready changing state but no record:
        // published, the serial stays.
        state.apply(manifests::resync(objects(3, &[1])));
        assert!(state.publish().is_none_or(|v| v.serial() == first + 1));

        let ixfr = request(RecordType::IXFR, "cluster.local.", Some(first));
        let zone_messages = |view: &Arc<View>, request: &Message, apex| {
            let mut transfer =
                Transfer::new(view.clone(), zone.clone(), unsigned(request, apex)).unwrap();
            let mut out = Vec::new();
            let mut records = Vec::new();
            while transfer.next_message(&mut out) {
                records.extend(Message::from_vec(&out).unwrap().answers);
            }
            (transfer.kind, records)
        };
        let (kind, records) = zone_messages(&view, &ixfr, Apex::Zone);
        assert_eq!(kind, TransferKind::Incremental(1));
        let shown: Vec<String> = records
            .iter()
            .map(|r| match &r.data {
                RData::SOA(soa) => format!("SOA {}", soa.serial - first),
                data => format!("{} {} {data}", r.name, r.record_type()),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "SOA 1".to_owned(),
                "SOA 0".into(),
                "web.default.svc.cluster.local. A 10.1.0.2".into(),
                "web.default.svc.cluster.local. SRV 0 33 80 web-0.web.default.svc.cluster.local.".into(),
                "web.default.svc.cluster.local. SRV 0 33 80 web-1.web.default.svc.cluster.local.".into(),
                "web.default.svc.cluster.local. SRV 0 33 80 web-2.web.default.svc.cluster.local.".into(),
                "_http._tcp.web.default.svc.cluster.local. SRV 0 33 80 web-0.web.default.svc.cluster.local.".into(),
                "_http._tcp.web.default.svc.cluster.local. SRV 0 33 80 web-1.web.default.svc.cluster.local.".into(),
                "_http._tcp.web.default.svc.cluster.local. SRV 0 33 80 web-2.web.default.svc.cluster.local.".into(),
                "web-1.web.default.svc.cluster.local. A 10.1.0.2".into(),
                "SOA 1".into(),
                "web.default.svc.cluster.local. SRV 0 50 80 web-0.web.default.svc.cluster.local.".into(),
                "web.default.svc.cluster.local. SRV 0 50 80 web-2.web.default.svc.cluster.local.".into(),
                "_http._tcp.web.default.svc.cluster.local. SRV 0 50 80 web-0.web.default.svc.cluster.local.".into(),
                "_http._tcp.web.default.svc.cluster.local. SRV 0 50 80 web-2.web.default.svc.cluster.local.".into(),
                "SOA 1".into(),
            ]
        );
        // The reverse zone's change is its own: the PTR of web-1's address went.
        let ixfr = request(RecordType::IXFR, "in-addr.arpa.", Some(first));
        let (_, records) = zone_messages(&view, &ixfr, Apex::InAddrArpa);
        let ptrs: Vec<String> = records
            .iter()
            .filter(|r| r.record_type() == RecordType::PTR)
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert_eq!(
            ptrs,
            ["2.0.1.10.in-addr.arpa. web-1.web.default.svc.cluster.local."]
        );
        // Worked out directly, the same difference; past a limit, none.
        let touched = || {
            (
                [("default", "web")],
                ["10.1.0.2".parse::<IpAddr>().unwrap()],
            )
        };
        let old = {
            let mut state = ClusterState::new(7);
            state.apply(manifests::resync(objects(3, &[])));
            state.apply(ClusterEvent::Synced);
            state.publish().unwrap()
        };
        let (services, addresses) = touched();
        let change = journal::diff(&old, &view, &zone, services, [], addresses, 100).unwrap();
        // The Service's records as above, and the pod's PTR.
        assert_eq!((change.removed.len(), change.added.len()), (9, 4));
        let (services, addresses) = touched();
        assert!(journal::diff(&old, &view, &zone, services, [], addresses, 12).is_none());
        // From before the journal: the whole zone.
        let old = request(RecordType::IXFR, "cluster.local.", Some(first - 5));
        assert_eq!(
            zone_messages(&view, &old, Apex::Zone).0,
            TransferKind::WholeZone
        );
    }

    /// A headless ServiceImport `web` with the endpoints `a` and `b` of cluster `east`, `b`
    /// ready or not.
    fn import(b_ready: bool) -> Vec<crate::records::ClusterObject> {
        let text = format!(
            "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\n\
             metadata: {{name: web, namespace: default}}\n\
             spec: {{type: Headless, ports: [{{name: http, port: 80, protocol: TCP}}]}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: web-east, namespace: default, labels: {{\
             multicluster.kubernetes.io/service-name: web, \
             multicluster.kubernetes.io/source-cluster: east}}}}\n\
             addressType: IPv4\nports: [{{name: http, port: 80, protocol: TCP}}]\n\
             endpoints:\n\
             - {{addresses: [10.2.0.1], hostname: a}}\n\
             - {{addresses: [10.2.0.2], hostname: b, conditions: {{ready: {b_ready}}}}}\n"
        );
        manifests::parse(&text).unwrap()
    }

    /// The clusterset zone is transferred while a ServiceImport exists, and refused without
    /// one. Here it lies within the cluster's zone: each transfer, whole or incremental, holds
    /// the names of its own zone and none of the other's.
    #[test]
    fn the_clusterset_zone_transfers_on_its_own() {
        let zone = Arc::new(
            Zone::new("cluster.local.", 5, PodRecords::Verified, None)
                .unwrap()
                .with_clusterset("set.cluster.local")
                .unwrap(),
        );
        let set = Name::from_ascii("set.cluster.local.").unwrap();
        let axfr = request(RecordType::AXFR, "set.cluster.local.", None);
        assert!(
            Transfer::new(view(3), zone.clone(), unsigned(&axfr, Apex::Clusterset)).is_none(),
            "no import, no zone"
        );
        let mut state = ClusterState::new(7).with_journal(zone.clone());
        let cluster = |b_ready, not_ready: &[usize]| {
            let mut objects = objects(3, not_ready);
            objects.extend(import(b_ready));
            manifests::resync(objects)
        };
        state.apply(cluster(false, &[]));
        state.apply(ClusterEvent::Synced);
        let view = Arc::new(state.publish().unwrap());
        let first = view.serial();
        let names = |messages: &[Message]| -> Vec<String> {
            let mut names: Vec<String> = messages
                .iter()
                .flat_map(|m| &m.answers)
                .filter(|r| r.record_type() != RecordType::SOA)
                .map(|r| format!("{} {}", r.name, r.record_type()))
                .collect();
            names.sort();
            names.dedup();
            names
        };
        let whole = names(&messages_in(&view, &zone, &axfr, Apex::Clusterset));
        assert_eq!(
            whole,
            [
                "_http._tcp.web.default.svc.set.cluster.local. SRV",
                "a.east.web.default.svc.set.cluster.local. A",
                "dns-version.set.cluster.local. TXT",
                "set.cluster.local. NS",
                "web.default.svc.set.cluster.local. A",
                "web.default.svc.set.cluster.local. SRV",
            ]
        );
        let outer = request(RecordType::AXFR, "cluster.local.", None);
        let outer = names(&messages_in(&view, &zone, &outer, Apex::Zone));
        assert!(
            outer.iter().all(|n| !n.contains("set.cluster.local.")),
            "{outer:?}"
        );

        // Endpoint b turns ready and pod web-1 stops being: one change, each zone's IXFR
        // holds its own part of it.
        state.apply(cluster(true, &[1]));
        let view = Arc::new(state.publish().unwrap());
        assert_eq!(view.serial(), first + 1);
        let ixfr = |apex_name: &str, apex| {
            let ixfr = request(RecordType::IXFR, apex_name, Some(first));
            messages_in(&view, &zone, &ixfr, apex)
        };
        let inner = names(&ixfr("set.cluster.local.", Apex::Clusterset));
        assert_eq!(
            inner,
            [
                "_http._tcp.web.default.svc.set.cluster.local. SRV",
                "b.east.web.default.svc.set.cluster.local. A",
                "web.default.svc.set.cluster.local. A",
                "web.default.svc.set.cluster.local. SRV",
            ]
        );
        let outer = names(&ixfr("cluster.local.", Apex::Zone));
        assert!(
            !outer.is_empty()
                && outer
                    .iter()
                    .all(|n| !set.zone_of(&n.split(' ').next().unwrap().parse::<Name>().unwrap())),
            "{outer:?}"
        );
        assert!(
            outer
                .iter()
                .any(|n| n.starts_with("web-1.web.default.svc.cluster.local.")),
            "{outer:?}"
        );
    }
}
