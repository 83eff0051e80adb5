//! What each question gets: a name resolved to what it holds (or to its absence), then the
//! records of the answer, CNAMEs followed within the zone, and the SOA of negative answers.
//! Plain functions over the view: no sockets, no async, no locks.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::dns::question::{MAX_LABELS, Question, ReverseZone, classify, labels_of};
use crate::dns::view::{Endpoint, ServiceView, View};
use crate::dns::zone::{Apex, PodRecords, SCHEMA_VERSION, Zone, parse_dashed};
use crate::records::{Addresses, ServiceKind};

/// A complete answer, ready to be put on the wire.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Reply {
    fn refused() -> Self {
        Self {
            rcode: ResponseCode::Refused,
            ..Self::default()
        }
    }
}

/// What a name in our zones is, once it is known to exist.
pub(crate) enum Node<'a> {
    Apex,
    ReverseApex,
    Version,
    /// A name whose only records are addresses; none for a name that exists but holds no records
    /// of its own (`svc.<zone>`, `<ns>.svc.<zone>`, ...).
    Addresses(AddressSet<'a>),
    Alias(&'a Name),
    /// SRV records of one port (`_<port>._<proto>.<svc>`), or of every port (the Service's
    /// own name, as CoreDNS answers it).
    Srv {
        key: ServiceName<'a>,
        service: &'a ServiceView,
        port: Option<usize>,
    },
    Pointers(Vec<Name>),
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
        }
    }
}

/// Where a question leads, before any record is built.
pub(crate) enum Resolution<'a> {
    /// Not ours to answer: another zone or class, or a zone transfer.
    Refused,
    /// No complete state yet: nothing is known to be absent.
    NotReady,
    /// The name does not exist in the zone `Apex`.
    NoSuchName(Apex),
    /// The name exists in the zone `Apex`.
    Exists(Node<'a>, Apex),
}

#[derive(Clone, Copy)]
pub(crate) struct ServiceName<'a> {
    namespace: &'a str,
    name: &'a str,
}

/// CNAMEs followed within the zone for one question; a longer chain ends after this many.
pub(crate) const MAX_CNAME_CHAIN: usize = 8;

/// Answers one question. `lower` is the question name in lower case (for matching), `asked` as it
/// was asked (answers keep its case).
///
/// An ExternalName Service whose target lies in the zone is followed there, as an authoritative
/// server does (RFC 1034 §4.3.2): the CNAME, then what the target answers, its rcode included
/// (RFC 6604). A chain ends at a name it has already passed, or after [`MAX_CNAME_CHAIN`].
pub(crate) fn answer(
    view: &View,
    zone: &Zone,
    lower: &Name,
    asked: &Name,
    qtype: RecordType,
    qclass: DNSClass,
) -> Reply {
    let mut reply = Reply {
        authoritative: true,
        ..Reply::default()
    };
    let Some(mut target) = answer_name(view, zone, lower, asked, qtype, qclass, &mut reply) else {
        return reply;
    };
    let mut passed = vec![lower.clone()];
    while passed.len() < MAX_CNAME_CHAIN {
        let lower = target.to_lowercase();
        if passed.contains(&lower) {
            break;
        }
        let next = answer_name(view, zone, &lower, &target, qtype, qclass, &mut reply);
        match next {
            Some(next) => {
                passed.push(lower);
                target = next;
            }
            None => break,
        }
    }
    reply
}

/// Adds what the name `lower` (asked as `owner`) holds for `qtype` to `reply`; returns the
/// target of a CNAME it added that is to be followed within the zone.
fn answer_name(
    view: &View,
    zone: &Zone,
    lower: &Name,
    owner: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    reply: &mut Reply,
) -> Option<Name> {
    let mut buffer = [&[][..]; MAX_LABELS];
    let labels = labels_of(lower, &mut buffer);
    let (node, apex) = match resolve(view, zone, labels, qtype, qclass) {
        Resolution::Refused => {
            *reply = Reply::refused();
            return None;
        }
        Resolution::NotReady => {
            *reply = Reply {
                rcode: ResponseCode::ServFail,
                ..Reply::default()
            };
            return None;
        }
        Resolution::NoSuchName(apex) => (None, apex),
        Resolution::Exists(node, apex) => (Some(node), apex),
    };
    let before = reply.answers.len();
    match node {
        Some(Node::Alias(target)) if follows_aliases(qtype) && zone.origin.zone_of(target) => {
            let cname = RData::CNAME(CNAME(target.clone()));
            reply
                .answers
                .push(Record::from_rdata(owner.clone(), zone.ttl, cname));
            return Some(target.clone());
        }
        Some(node) => records(&node, view, zone, owner, qtype, reply),
        None => reply.rcode = ResponseCode::NXDomain,
    }
    if reply.answers.len() == before {
        reply
            .authority
            .push(soa(view, zone, zone.apex(apex).clone()));
    }
    None
}

/// Whether a CNAME is followed for `qtype`: not when the CNAME itself is asked for (`CNAME`,
/// or `ANY`, which it matches).
fn follows_aliases(qtype: RecordType) -> bool {
    !matches!(qtype, RecordType::CNAME | RecordType::ANY)
}

/// Decides what a question (its lower-case labels, leftmost first) leads to.
pub(crate) fn resolve<'a>(
    view: &'a View,
    zone: &'a Zone,
    labels: &[&'a [u8]],
    qtype: RecordType,
    qclass: DNSClass,
) -> Resolution<'a> {
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
        _ => Apex::Zone,
    };
    match find(view, zone, question, qtype) {
        Some(node) => Resolution::Exists(node, apex),
        None => Resolution::NoSuchName(apex),
    }
}

/// Resolves a question to the node it names, or `None` when the name does not exist. `qtype`
/// only picks what a Service's own name holds: addresses, or SRV records of all its ports.
fn find<'a>(
    view: &'a View,
    zone: &'a Zone,
    question: Question<'a>,
    qtype: RecordType,
) -> Option<Node<'a>> {
    let pods_enabled = zone.pod_records != PodRecords::Disabled;
    let empty = Node::Addresses(AddressSet::NONE);
    Some(match question {
        Question::OutOfZone | Question::NoSuchName => return None,
        Question::Apex => Node::Apex,
        Question::Services | Question::Dns => empty,
        Question::Namespace(ns) => view.namespace_exists(ns).then_some(empty)?,
        Question::Nameserver => Node::Addresses(AddressSet::List(zone.ns_address.as_slice())),
        Question::Version => Node::Version,
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
            let names = pointer_targets(view, zone, ip);
            (!names.is_empty()).then_some(Node::Pointers(names))?
        }
    })
}

/// The types of the records a name (lower-case labels) holds, for explanations.
pub(crate) fn record_types(view: &View, zone: &Zone, labels: &[&[u8]]) -> Vec<RecordType> {
    let mut types = Vec::new();
    if let Resolution::Exists(node, _) = resolve(view, zone, labels, RecordType::A, DNSClass::IN) {
        match node {
            Node::Apex | Node::ReverseApex => types.extend([RecordType::SOA, RecordType::NS]),
            Node::Version => types.push(RecordType::TXT),
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
            Node::Srv { .. } => types.push(RecordType::SRV),
            Node::Pointers(_) => types.push(RecordType::PTR),
        }
    }
    if !types.contains(&RecordType::SRV)
        && let Resolution::Exists(Node::Srv { .. }, _) =
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

/// Every name that holds `ip`: cluster IPs name their Service, pod IPs each of their names.
fn pointer_targets(view: &View, zone: &Zone, ip: IpAddr) -> Vec<Name> {
    let mut names = Vec::new();
    for (namespace, name) in view.services_at(ip) {
        let Some(service) = view.service(namespace, name) else {
            continue;
        };
        let name = ServiceName { namespace, name };
        if let ServiceKind::ClusterIp(ips) = &service.kind
            && ips.contains(&ip)
        {
            names.extend(service_name(zone, name, None));
        }
        for endpoint in service.endpoints.iter().filter(|e| e.ips.contains(ip)) {
            names.extend(service_name(zone, name, Some(&endpoint.label)));
        }
    }
    names
}

/// `[<label>.]<service>.<namespace>.svc.<zone>`; `None` only if it would exceed 255 bytes.
fn service_name(zone: &Zone, service: ServiceName<'_>, label: Option<&str>) -> Option<Name> {
    let labels = label
        .into_iter()
        .chain([service.name, service.namespace, "svc"]);
    Name::from_labels(labels.map(str::as_bytes))
        .and_then(|n| n.append_domain(&zone.origin))
        .ok()
}

/// Fills `reply` with the records of `node` for `qtype` (none: NODATA).
fn records(
    node: &Node<'_>,
    view: &View,
    zone: &Zone,
    owner: &Name,
    qtype: RecordType,
    reply: &mut Reply,
) {
    let ttl = zone.ttl;
    let record = |rdata: RData| Record::from_rdata(owner.clone(), ttl, rdata);
    let any = qtype == RecordType::ANY;
    let answers = &mut reply.answers;
    match node {
        Node::Apex | Node::ReverseApex => {
            if any || qtype == RecordType::SOA {
                answers.push(soa(view, zone, owner.clone()));
            }
            if any || qtype == RecordType::NS {
                answers.push(record(RData::NS(NS(zone.nameserver().clone()))));
                if let Some(ip) = zone.ns_address {
                    push_addresses(
                        &mut reply.additionals,
                        zone.nameserver(),
                        ttl,
                        AddressSet::One(ip),
                        RecordType::ANY,
                    );
                }
            }
        }
        Node::Version => {
            if any || qtype == RecordType::TXT {
                answers.push(record(RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()]))));
            }
        }
        Node::Addresses(set) => push_addresses(answers, owner, ttl, *set, qtype),
        Node::Alias(target) => answers.push(record(RData::CNAME(CNAME((*target).clone())))),
        Node::Srv { key, service, port } => {
            if any || qtype == RecordType::SRV {
                srv_records(zone, *key, service, *port, owner, reply);
            }
        }
        Node::Pointers(names) => {
            if any || qtype == RecordType::PTR {
                answers.extend(names.iter().map(|n| record(RData::PTR(PTR(n.clone())))));
            }
        }
    }
}

/// One SRV per target and port: the Service name for a ClusterIP Service, each endpoint for a
/// headless one; of the port `port`, or of every port. The targets' addresses go in the
/// additional section. Weights split 100 evenly among the records sent.
fn srv_records(
    zone: &Zone,
    key: ServiceName<'_>,
    service: &ServiceView,
    port: Option<usize>,
    owner: &Name,
    reply: &mut Reply,
) {
    let ttl = zone.ttl;
    let ports = match port {
        Some(index) => index..index + 1,
        None => 0..service.ports.len(),
    };
    let mut targets: Vec<(Name, u16, AddressSet)> = Vec::new();
    for port_index in ports {
        match &service.kind {
            ServiceKind::ClusterIp(ips) => {
                let (ips, number) = (AddressSet::List(ips), service.ports[port_index].port);
                targets.extend(service_name(zone, key, None).map(|n| (n, number, ips)));
            }
            _ => {
                for (position, endpoint) in service.endpoints.iter().enumerate() {
                    let Some(number) = service.endpoint_port(port_index, position) else {
                        continue;
                    };
                    if let Some(name) = service_name(zone, key, Some(&endpoint.label)) {
                        targets.push((name, number, AddressSet::Endpoint(&endpoint.ips)));
                    }
                }
            }
        }
    }
    let weight = u16::try_from(100 / targets.len().max(1))
        .unwrap_or(1)
        .max(1);
    for (i, (target, number, ips)) in targets.iter().enumerate() {
        // A target named for several ports has its addresses listed once.
        if !targets[..i].iter().any(|(earlier, ..)| earlier == target) {
            push_addresses(&mut reply.additionals, target, ttl, *ips, RecordType::ANY);
        }
        let srv = SRV::new(0, weight, *number, target.clone());
        reply
            .answers
            .push(Record::from_rdata(owner.clone(), ttl, RData::SRV(srv)));
    }
}

/// A and/or AAAA records for the addresses of the asked family (`ANY`: both).
fn push_addresses(
    out: &mut Vec<Record>,
    owner: &Name,
    ttl: u32,
    set: AddressSet<'_>,
    qtype: RecordType,
) {
    set.for_each_of_type(qtype, |ip| {
        let rdata = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        out.push(Record::from_rdata(owner.clone(), ttl, rdata));
    });
}

fn soa(view: &View, zone: &Zone, owner: Name) -> Record {
    let [refresh, retry, expire, minimum] = zone.soa_timers();
    let seconds = |s: u32| i32::try_from(s).unwrap_or(i32::MAX);
    let soa = SOA::new(
        zone.nameserver().clone(),
        zone.hostmaster().clone(),
        view.serial(),
        seconds(refresh),
        seconds(retry),
        seconds(expire),
        minimum,
    );
    Record::from_rdata(owner, zone.ttl, RData::SOA(soa))
}
