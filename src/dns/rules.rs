//! The Kubernetes DNS rules (schema 1.1.0): which pods back a Service, which names exist, and what
//! each question gets. Plain functions over plain data: no sockets, no async, no locks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::dns::explain::{self, HeldBack, HeldBackPod, MisnamedPod, Stray, StrayWhy};
use crate::dns::question::{MAX_LABELS, Question, ReverseZone, classify, labels_of};
use crate::dns::view::{Endpoint, ServiceView, View};
use crate::records::{
    Addresses, EndpointSliceRecord, IpFamilies, PodRecord, ServiceKind, ServicePort, ServiceRecord,
    TargetPort, is_dns_label,
};

/// The `dns-version` TXT answer: the schema of the Kubernetes DNS spec these rules follow.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// How `<a-b-c-d>.<ns>.pod.<zone>` is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PodRecords {
    /// Only when a pod in that namespace has that IP.
    #[default]
    Verified,
    /// Any well-formed address is echoed back (kube-dns's historical behaviour).
    Insecure,
    /// The pod subtree does not exist.
    Disabled,
}

/// How an endpoint without a hostname of its own is named under its Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EndpointNames {
    /// By its dashed address (`10-244-1-5`), as the Kubernetes DNS spec says.
    #[default]
    Hostname,
    /// By its pod's name when that is a DNS label, else by its dashed address (CoreDNS's
    /// `endpoint_pod_names`): Deployment pods get stable, readable names.
    PodName,
}

/// The zone being served and the answer settings; built once at startup.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Lower-case, fully qualified, e.g. `cluster.local.`.
    pub origin: Name,
    pub ttl: u32,
    pub pod_records: PodRecords,
    /// Address published for `ns.dns.<zone>`, when the server listens on a specific one.
    pub ns_address: Option<IpAddr>,
    /// What the source watches, for explanations of names it leaves out.
    pub scope: Scope,
    /// Whether negative answers carry their reason (RFC 8914 Extended DNS Errors).
    pub explain: bool,
    nameserver: Name,
    hostmaster: Name,
    in_addr_arpa: Name,
    ip6_arpa: Name,
}

impl Zone {
    pub fn new(
        origin: &str,
        ttl: u32,
        pod_records: PodRecords,
        ns_address: Option<IpAddr>,
    ) -> Result<Self, String> {
        let mut origin = Name::from_ascii(origin)
            .map_err(|e| format!("invalid zone {origin:?}: {e}"))?
            .to_lowercase();
        origin.set_fqdn(true);
        if origin.is_root() {
            return Err("the zone cannot be the root".into());
        }
        let child = |label: &str| {
            Name::from_ascii(label)
                .and_then(|n| n.append_domain(&origin))
                .map_err(|e| format!("zone {origin} is too long: {e}"))
        };
        Ok(Self {
            nameserver: child("ns.dns")?,
            hostmaster: child("hostmaster")?,
            in_addr_arpa: Name::from_ascii("in-addr.arpa.").expect("static name"),
            ip6_arpa: Name::from_ascii("ip6.arpa.").expect("static name"),
            origin,
            ttl,
            pod_records,
            ns_address,
            scope: Scope::default(),
            explain: true,
        })
    }

    /// Explanations name the `--namespace` and `--selector` the source is limited to.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// `false`: negative answers carry no reason (`--explain off`).
    pub fn with_explanations(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// The name of a zone we answer for, as a negative answer's SOA owner.
    pub fn apex(&self, apex: Apex) -> &Name {
        match apex {
            Apex::Zone => &self.origin,
            Apex::InAddrArpa => &self.in_addr_arpa,
            Apex::Ip6Arpa => &self.ip6_arpa,
        }
    }

    /// The SOA's and NS record's name server, `ns.dns.<zone>`.
    pub fn nameserver(&self) -> &Name {
        &self.nameserver
    }

    /// The SOA's mailbox, `hostmaster.<zone>`.
    pub fn hostmaster(&self) -> &Name {
        &self.hostmaster
    }

    /// The SOA record data `(refresh, retry, expire, minimum)` after the serial.
    pub fn soa_timers(&self) -> [u32; 4] {
        [7200, 1800, 86400, self.ttl]
    }
}

/// The part of the cluster the source watches: some namespaces (none listed: all), and the
/// Services matching a label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub namespaces: Vec<String>,
    pub selector: Option<String>,
}

/// One of the zones we are authoritative for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apex {
    Zone,
    InAddrArpa,
    Ip6Arpa,
}

// ---------------------------------------------------------------------------------------------
// Which pods back a Service, and the names they get.
// ---------------------------------------------------------------------------------------------

/// Whether `pod`, a pod of the Service's namespace, is an endpoint of `service`, as the
/// EndpointSlice controller decides it.
pub fn backs(service: &ServiceRecord, pod: &PodRecord) -> bool {
    selects(service, pod) && held_back(service, pod).is_none()
}

/// Whether the Service's selector matches the pod (a Service without one selects none).
pub fn selects(service: &ServiceRecord, pod: &PodRecord) -> bool {
    service
        .selector
        .as_ref()
        .is_some_and(|selector| selector.selects(pod.labels(), &pod.name))
}

/// Why the Service would not list the pod were it selected; `None`: it would.
pub fn held_back(service: &ServiceRecord, pod: &PodRecord) -> Option<HeldBack> {
    if pod.finished {
        Some(HeldBack::Finished)
    } else if pod.ips.is_empty() {
        Some(HeldBack::NoAddress)
    } else if service.publish_not_ready_addresses {
        None
    } else if pod.terminating {
        Some(HeldBack::Terminating)
    } else if !pod.ready {
        Some(HeldBack::NotReady)
    } else {
        None
    }
}

/// Why no Service answers for the pod's `spec.subdomain`, given the Service of that name in its
/// namespace; `None` when it has no subdomain or that Service selects it.
pub fn stray(pod: &PodRecord, subdomain_service: Option<&ServiceRecord>) -> Option<Stray> {
    let subdomain = pod.template.subdomain.as_ref()?;
    let why = match subdomain_service {
        None => StrayWhy::NoService,
        Some(service) if matches!(service.kind, ServiceKind::ExternalName(_)) => {
            StrayWhy::ExternalName
        }
        Some(service) if service.selector.is_none() => StrayWhy::NoSelector,
        Some(service) if !selects(service, pod) => {
            StrayWhy::NotSelected(selector_text(service).unwrap_or_default().into())
        }
        Some(_) => return None,
    };
    Some(Stray {
        hostname: pod.hostname().cloned(),
        subdomain: subdomain.clone(),
        statefulset: pod.template.statefulset.clone(),
        why,
    })
}

/// `key=value,...`, as `kubectl` prints a selector.
pub fn selector_text(service: &ServiceRecord) -> Option<String> {
    let selector = service.selector.as_ref()?;
    let pairs: Vec<String> = selector.pairs().map(|(k, v)| format!("{k}={v}")).collect();
    Some(pairs.join(","))
}

/// Whether a Service's answers depend on the pods behind it: every Service with a selector but
/// an ExternalName one names its endpoints (`<endpoint>.<svc>.<ns>.svc.<zone>`, and their PTR);
/// a ClusterIP Service's own name still answers with its cluster IPs.
pub fn lists_endpoints(service: &ServiceRecord) -> bool {
    service.selector.is_some() && !matches!(service.kind, ServiceKind::ExternalName(_))
}

/// What `service` answers, given the pods that back it, the pods it selects but holds back, and
/// its EndpointSlices. A Service with a selector lists its pods; one without (but an
/// ExternalName one) its slices' ready endpoints.
pub fn service_view<'p, 's>(
    service: &ServiceRecord,
    backing_pods: impl IntoIterator<Item = &'p PodRecord>,
    held_back_pods: impl IntoIterator<Item = &'p PodRecord>,
    slices: impl IntoIterator<Item = &'s EndpointSliceRecord>,
    names: EndpointNames,
) -> ServiceView {
    let mut endpoints = Vec::new();
    let (mut misnamed, mut held, mut slice_not_ready) = (Vec::new(), Vec::new(), 0u32);
    if lists_endpoints(service) {
        for pod in backing_pods {
            pod_endpoints(service, pod, names, &mut endpoints);
            if let Some(pod) = misnamed_pod(service, pod) {
                misnamed.push(pod);
            }
        }
        held.extend(held_back_pods.into_iter().filter_map(|pod| {
            Some(HeldBackPod {
                pod: pod.name.clone(),
                hostname: pod.hostname().cloned(),
                ips: pod.ips.clone(),
                why: held_back(service, pod)?,
            })
        }));
    } else if !matches!(service.kind, ServiceKind::ExternalName(_)) {
        for slice in slices {
            slice_endpoints(service, slice, names, &mut endpoints);
            let not_ready = slice.endpoints.iter().filter(|e| !e.ready).count();
            slice_not_ready += u32::try_from(not_ready).unwrap_or(u32::MAX);
        }
    }
    let (endpoints, endpoint_ports) = merge_endpoints(service, endpoints);
    let diagnosis = match service.kind {
        ServiceKind::ExternalName(_) => None,
        // A ClusterIP Service answers with its address whether or not it has endpoints: an
        // empty one has nothing to explain unless it holds pods back.
        _ => explain::diagnose(
            || selector_text(service),
            endpoints.is_empty() && service.kind == ServiceKind::Headless,
            held,
            misnamed,
            slice_not_ready,
        ),
    };
    ServiceView {
        kind: service.kind.clone(),
        ports: service.ports.clone(),
        endpoints,
        endpoint_ports,
        diagnosis,
    }
}

/// A backing pod that asked for a hostname under the Service (a hostname, or a subdomain naming
/// it) and is named by its address instead.
fn misnamed_pod(service: &ServiceRecord, pod: &PodRecord) -> Option<MisnamedPod> {
    let names_service = pod.subdomain() == Some(&*service.key.name);
    let asked = pod.hostname().is_some() || names_service;
    (asked && !(names_service && pod.hostname().is_some())).then(|| MisnamedPod {
        pod: pod.name.clone(),
        hostname: pod.hostname().cloned(),
        subdomain: pod.template.subdomain.clone(),
        statefulset: pod.template.statefulset.clone(),
    })
}

/// An endpoint with its SRV ports, aligned with the Service's ports (`0`: it lacks that port);
/// empty when every target port is a number.
type PortedEndpoint = (Endpoint, Box<[u16]>);

/// Sorts endpoints by label and merges those sharing one (two pods claiming the same hostname);
/// returns them with their port rows (see [`ServiceView::endpoint_ports`]).
fn merge_endpoints(
    service: &ServiceRecord,
    mut endpoints: Vec<PortedEndpoint>,
) -> (Box<[Endpoint]>, Box<[u16]>) {
    endpoints.sort_unstable_by(|(a, _), (b, _)| a.label.cmp(&b.label));
    let mut merged: Vec<PortedEndpoint> = Vec::with_capacity(endpoints.len());
    for (endpoint, ports) in endpoints {
        match merged.last_mut() {
            Some((last, _)) if last.label == endpoint.label => {
                let mut ips: Vec<IpAddr> = last.ips.iter().collect();
                ips.extend(endpoint.ips.iter().filter(|ip| !last.ips.contains(*ip)));
                last.ips = ips.into();
            }
            _ => merged.push((endpoint, ports)),
        }
    }
    // Both lists are allocated at their exact size: collecting in place into the merged list's
    // buffer and trimming it would keep the larger block (the allocator shrinks in place when
    // the new size is at least half the old).
    let mut endpoint_ports = Vec::new();
    if merged.iter().any(|(_, ports)| !ports.is_empty()) {
        let numbers: Vec<u16> = service.ports.iter().map(numbered_target).collect();
        endpoint_ports.reserve_exact(merged.len() * numbers.len());
        for (_, ports) in &merged {
            endpoint_ports.extend_from_slice(if ports.is_empty() { &numbers } else { ports });
        }
    }
    let mut endpoints = Vec::with_capacity(merged.len());
    endpoints.extend(merged.into_iter().map(|(endpoint, _)| endpoint));
    (
        endpoints.into_boxed_slice(),
        endpoint_ports.into_boxed_slice(),
    )
}

/// The names a backing pod gets under its Service: its hostname when its subdomain names the
/// Service (the EndpointSlice controller's rule); else, by `names`, its own name or one
/// dashed-IP name per address.
fn pod_endpoints(
    service: &ServiceRecord,
    pod: &PodRecord,
    names: EndpointNames,
    out: &mut Vec<PortedEndpoint>,
) {
    let hostname = pod
        .hostname()
        .filter(|_| pod.subdomain() == Some(&*service.key.name))
        .or_else(|| {
            let by_pod = names == EndpointNames::PodName && is_dns_label(&pod.name);
            by_pod.then_some(&pod.name)
        });
    // Only the Service's families: its EndpointSlices hold no others.
    let ips = if service.families == IpFamilies::BOTH {
        pod.ips.clone()
    } else {
        pod.ips
            .iter()
            .filter(|&ip| service.families.contains(ip))
            .collect()
    };
    if !ips.is_empty() {
        push_endpoints(hostname, &ips, &resolve_ports(service, pod), out);
    }
}

/// The names of a slice's ready endpoints: the hostname when it has one; else, by `names`, its
/// target's name or one name per address.
fn slice_endpoints(
    service: &ServiceRecord,
    slice: &EndpointSliceRecord,
    names: EndpointNames,
    out: &mut Vec<PortedEndpoint>,
) {
    let ports: Box<[u16]> = service
        .ports
        .iter()
        .map(|p| {
            slice
                .ports
                .iter()
                .find(|s| s.name == p.name && s.protocol == p.protocol)
                .map_or(0, |s| s.port)
        })
        .collect();
    for endpoint in slice.endpoints.iter().filter(|e| e.ready) {
        let by_target = endpoint
            .target_name
            .as_ref()
            .filter(|_| names == EndpointNames::PodName);
        let name = endpoint.hostname.as_ref().or(by_target);
        push_endpoints(name, &endpoint.addresses, &ports, out);
    }
}

/// One endpoint named `hostname`, or without a hostname one per address, named by its dashes.
fn push_endpoints(
    hostname: Option<&Arc<str>>,
    ips: &Addresses,
    ports: &[u16],
    out: &mut Vec<PortedEndpoint>,
) {
    match hostname {
        Some(hostname) => {
            let endpoint = Endpoint {
                label: hostname.clone(),
                ips: ips.clone(),
            };
            out.push((endpoint, ports.into()));
        }
        None => out.extend(ips.iter().map(|ip| {
            let endpoint = Endpoint {
                label: dashed(ip).into(),
                ips: ip.into(),
            };
            (endpoint, ports.into())
        })),
    }
}

/// SRV ports of a pod, aligned with the Service's ports; empty when every target is a number.
fn resolve_ports(service: &ServiceRecord, pod: &PodRecord) -> Box<[u16]> {
    if service
        .ports
        .iter()
        .all(|p| matches!(p.target, TargetPort::Number(_)))
    {
        return Box::default();
    }
    service
        .ports
        .iter()
        .map(|p| match &p.target {
            TargetPort::Number(n) => *n,
            TargetPort::Name(name) => pod
                .named_ports()
                .iter()
                .find(|c| c.name == *name && c.protocol == p.protocol)
                .map_or(0, |c| c.port),
        })
        .collect()
}

/// A port's target when it is a number; `0` (not served) for a name nothing resolved.
fn numbered_target(port: &ServicePort) -> u16 {
    match &port.target {
        TargetPort::Number(n) => *n,
        TargetPort::Name(_) => 0,
    }
}

/// The port the `endpoint`th endpoint serves for the Service's `index`th port, if it serves it.
fn endpoint_port(service: &ServiceView, index: usize, endpoint: usize) -> Option<u16> {
    let row = endpoint * service.ports.len();
    let port = match service.endpoint_ports.get(row + index) {
        Some(&resolved) => resolved,
        None => numbered_target(&service.ports[index]),
    };
    (port != 0).then_some(port)
}

/// `10.0.0.1` → `10-0-0-1`; `fd00::1` → `fd00--1`. A label may not begin or end with `-`, so
/// an IPv6 address that begins or ends with `::` gets a `0` there (`2001:db8::` →
/// `2001-db8--0`, as CoreDNS names it; `::1` → `0--1`): each still reads back as the address.
pub fn dashed(ip: IpAddr) -> String {
    let mut label = ip.to_string().replace(['.', ':'], "-");
    if label.starts_with('-') {
        label.insert(0, '0');
    }
    if label.ends_with('-') {
        label.push('0');
    }
    label
}

/// The inverse of [`dashed`]; `None` for anything that is not an address.
pub fn parse_dashed(label: &str) -> Option<IpAddr> {
    if label.len() > 45 {
        return None;
    }
    if label.bytes().filter(|&b| b == b'-').count() == 3
        && label.bytes().all(|b| b.is_ascii_digit() || b == b'-')
    {
        let mut buf = [0u8; 15];
        let v4 = fill(&mut buf, label, b'.')?;
        return v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
    }
    let mut buf = [0u8; 45];
    let v6 = fill(&mut buf, label, b':')?;
    v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Copies `label` into `buf` with dashes replaced by `separator`, without allocating.
fn fill<'b>(buf: &'b mut [u8], label: &str, separator: u8) -> Option<&'b str> {
    let out = buf.get_mut(..label.len())?;
    for (o, b) in out.iter_mut().zip(label.bytes()) {
        *o = if b == b'-' { separator } else { b };
    }
    std::str::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------------------------
// What each question gets.
// ---------------------------------------------------------------------------------------------

/// Response codes by name, as `dig` prints them (BADVERS is extended: its upper bits travel in
/// the OPT record).
pub const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    // A TSIG signature we do not accept.
    (9, "NOTAUTH"),
    (16, "BADVERS"),
];

/// An rcode's name as `dig` prints it (`other` for the rest), for logs, metrics and reports.
pub fn rcode_name(rcode: u16) -> &'static str {
    RCODES
        .iter()
        .find(|(code, _)| *code == rcode)
        .map_or("other", |(_, name)| name)
}

/// A complete answer, ready to be put on the wire.
#[derive(Debug, Default, PartialEq)]
pub struct Reply {
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
pub enum Node<'a> {
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
pub enum AddressSet<'a> {
    List(&'a [IpAddr]),
    One(IpAddr),
    /// One endpoint's addresses.
    Endpoint(&'a Addresses),
    /// A headless Service's name: the addresses of all its endpoints.
    Endpoints(&'a [Endpoint]),
}

impl AddressSet<'_> {
    pub const NONE: AddressSet<'static> = AddressSet::List(&[]);

    /// Calls `f` with each address of the family `qtype` asks for (`ANY`: both), in answer order.
    pub fn for_each_of_type(self, qtype: RecordType, f: impl FnMut(IpAddr)) {
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
pub enum Resolution<'a> {
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
pub struct ServiceName<'a> {
    namespace: &'a str,
    name: &'a str,
}

/// CNAMEs followed within the zone for one question; a longer chain ends after this many.
pub const MAX_CNAME_CHAIN: usize = 8;

/// Answers one question. `lower` is the question name in lower case (for matching), `asked` as it
/// was asked (answers keep its case).
///
/// An ExternalName Service whose target lies in the zone is followed there, as an authoritative
/// server does (RFC 1034 §4.3.2): the CNAME, then what the target answers, its rcode included
/// (RFC 6604). A chain ends at a name it has already passed, or after [`MAX_CNAME_CHAIN`].
pub fn answer(
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
pub fn resolve<'a>(
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
pub fn record_types(view: &View, zone: &Zone, labels: &[&[u8]]) -> Vec<RecordType> {
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
                answers.push(record(RData::NS(NS(zone.nameserver.clone()))));
                if let Some(ip) = zone.ns_address {
                    push_addresses(
                        &mut reply.additionals,
                        &zone.nameserver,
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
                    let Some(number) = endpoint_port(service, port_index, position) else {
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
        zone.nameserver.clone(),
        zone.hostmaster.clone(),
        view.serial(),
        seconds(refresh),
        seconds(retry),
        seconds(expire),
        minimum,
    );
    Record::from_rdata(owner, zone.ttl, RData::SOA(soa))
}

#[cfg(test)]
#[rustfmt::skip]
#[path = "rules_tests.rs"]
mod tests;
