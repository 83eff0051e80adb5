//! The reasons behind an answer: why a name does not exist or holds nothing of the asked type,
//! from the view alone, as one short line (sent as an RFC 8914 Extended DNS Error) or as the full
//! chain of facts looked at (`headless-dns explain`, `GET /explain`).
//!
//! The view keeps, besides what names answer, the little it takes to say why one does not: for a
//! Service that lists endpoints, the selected pods it holds back and the backing pods it names by
//! address though they asked for a hostname ([`ServiceDiagnosis`], only when there are any); for a
//! namespace, its Services' names and the pods whose `spec.subdomain` no Service answers for
//! ([`Stray`]). A healthy cluster has none of either.

use std::fmt::Write;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::dns::answer::{self, Reply};
use crate::dns::diagnosis::{HeldBack, Stray, StrayWhy};
use crate::dns::question::{MAX_LABELS, Question, ReverseZone, SetQuestion, classify, labels_of};
use crate::dns::view::{ImportView, ServiceView, View};
use crate::dns::zone::{PodRecords, Zone, parse_dashed};
use crate::message::rcode_name;
use crate::records::{CompactName, ImportKind, ServiceKind};

/// RFC 8914 INFO-CODE "Other Error": the reason is in the text.
pub(crate) const OTHER: u16 = 0;

/// RFC 8914 INFO-CODE "Not Ready": no complete state of the cluster yet.
pub(crate) const NOT_READY: u16 = 14;

/// RFC 8914 INFO-CODE "Not Authoritative".
pub(crate) const NOT_AUTHORITATIVE: u16 = 20;

/// The EDNS option code of an Extended DNS Error.
pub(crate) const EDE_OPTION: u16 = 15;

/// The longest reason sent in an answer, in bytes: a line, not a report.
pub(crate) const MAX_REASON: usize = 240;

/// The reason for an answer, and with detail the facts that led there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Explanation {
    /// The RFC 8914 INFO-CODE.
    pub code: u16,
    pub reason: String,
    /// Empty unless asked for.
    pub facts: Vec<String>,
}

impl Explanation {
    /// The option data of an Extended DNS Error: INFO-CODE, then the reason, cut to
    /// [`MAX_REASON`] bytes at a character boundary.
    pub(crate) fn option_data(&self) -> Vec<u8> {
        let mut end = self.reason.len().min(MAX_REASON);
        while !self.reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(2 + end);
        data.extend_from_slice(&self.code.to_be_bytes());
        data.extend_from_slice(&self.reason.as_bytes()[..end]);
        data
    }
}

/// Collects facts only when they were asked for: the answer path wants the reason alone.
struct Trail {
    detail: bool,
    facts: Vec<String>,
}

impl Trail {
    fn fact(&mut self, fact: impl FnOnce() -> String) {
        if self.detail {
            self.facts.push(fact());
        }
    }
}

/// A conclusion reached early: no such namespace, Service, ...
type Stop = (u16, String);

/// Explains what the question (its lower-case labels, leftmost first) gets: why it is empty,
/// or, for a name that answers, what it holds. `detail` adds the facts looked at on the way.
pub(crate) fn explain(
    view: &View,
    zone: &Zone,
    labels: &[&[u8]],
    qtype: RecordType,
    detail: bool,
) -> Explanation {
    let mut trail = Trail {
        detail,
        facts: Vec::new(),
    };
    let (code, mut reason) = match reason(view, zone, labels, qtype, &mut trail) {
        Ok(reason) => (OTHER, reason),
        Err(stop) => stop,
    };
    // A label may hold any byte: the line stays one line.
    if reason.contains(char::is_control) {
        reason = reason.replace(char::is_control, "?");
    }
    Explanation {
        code,
        reason,
        facts: trail.facts,
    }
}

fn reason(
    view: &View,
    zone: &Zone,
    labels: &[&[u8]],
    qtype: RecordType,
    trail: &mut Trail,
) -> Result<String, Stop> {
    let question = classify(zone, labels);
    if question != Question::OutOfZone && !view.synced() {
        return Err((
            NOT_READY,
            "not yet synced with the Kubernetes API: no complete list of the cluster so far".into(),
        ));
    }
    trail.fact(|| format!("serial {}; {}", view.serial(), shape(&question)));
    match question {
        Question::OutOfZone => Err((NOT_AUTHORITATIVE, outside(view, zone, labels))),
        Question::NoSuchName => Err((
            OTHER,
            format!(
                "no name of this shape in {}: try <service>.<namespace>.svc, \
                 <endpoint>.<service>.<namespace>.svc or <a-b-c-d>.<namespace>.pod",
                zone.origin
            ),
        )),
        Question::Namespace(namespace) => {
            namespace_exists(view, zone, namespace, trail)?;
            holds(view, zone, labels, qtype)
        }
        Question::Service { namespace, name } => {
            namespace_exists(view, zone, namespace, trail)?;
            let service = service_exists(view, zone, namespace, name, None, trail)?;
            if service.kind == ServiceKind::Headless && service.endpoints.is_empty() {
                return Err((OTHER, no_endpoints(name, service)));
            }
            holds(view, zone, labels, qtype)
        }
        Question::Endpoint {
            namespace,
            service: name,
            label,
        } => {
            namespace_exists(view, zone, namespace, trail)?;
            let service = service_exists(view, zone, namespace, name, Some(label), trail)?;
            if service.endpoint(label).is_none() {
                return Err((OTHER, no_endpoint(view, namespace, name, service, label)));
            }
            holds(view, zone, labels, qtype)
        }
        Question::SrvProtocol {
            namespace,
            service: name,
            protocol,
        }
        | Question::Srv {
            namespace,
            service: name,
            protocol,
            ..
        } => {
            namespace_exists(view, zone, namespace, trail)?;
            let service = service_exists(view, zone, namespace, name, None, trail)?;
            if matches!(service.kind, ServiceKind::ExternalName(_)) {
                return Err((
                    OTHER,
                    format!("Service {name} is an ExternalName Service: it has no SRV records"),
                ));
            }
            if service.kind == ServiceKind::Headless && service.endpoints.is_empty() {
                return Err((OTHER, no_endpoints(name, service)));
            }
            let port = match question {
                Question::Srv { port, .. } => Some(port),
                _ => None,
            };
            let known = service.ports.iter().any(|p| {
                !p.name.is_empty()
                    && p.protocol.srv_label() == protocol
                    && port.is_none_or(|port| *p.name == *port)
            });
            if !known {
                return Err((OTHER, no_port(name, service, port, protocol)));
            }
            holds(view, zone, labels, qtype)
        }
        Question::Pods | Question::PodNamespace(_) | Question::PodAddress { .. }
            if zone.pod_records == PodRecords::Disabled =>
        {
            Err((
                OTHER,
                "pod names are turned off (--pod-records disabled)".into(),
            ))
        }
        Question::PodNamespace(namespace) => {
            if zone.pod_records == PodRecords::Verified {
                namespace_exists(view, zone, namespace, trail)?;
            }
            holds(view, zone, labels, qtype)
        }
        Question::PodAddress { namespace, label } => {
            let Some(ip) = parse_dashed(label) else {
                return Err((
                    OTHER,
                    format!("{label} is not an IP address written with dashes, like 10-244-1-5"),
                ));
            };
            if zone.pod_records == PodRecords::Verified {
                namespace_exists(view, zone, namespace, trail)?;
                if !view.has_pod_ip(namespace, ip) {
                    return Err((
                        OTHER,
                        format!(
                            "no pod in namespace {namespace} has IP {ip} \
                             (--pod-records verified)"
                        ),
                    ));
                }
                trail.fact(|| format!("a pod in namespace {namespace} has IP {ip}"));
            }
            holds(view, zone, labels, qtype)
        }
        Question::ReverseOther(reverse) => Err((
            OTHER,
            match reverse {
                ReverseZone::V4 => "not a whole address: in-addr.arpa names have four octets",
                ReverseZone::V6 => "not a whole address: ip6.arpa names have 32 nibbles",
            }
            .into(),
        )),
        Question::Reverse(ip, _) => {
            if view.services_at(ip).next().is_none() {
                return Err((
                    OTHER,
                    format!("no Service or endpoint has the address {ip}"),
                ));
            }
            holds(view, zone, labels, qtype)
        }
        Question::Apex
        | Question::Services
        | Question::Dns
        | Question::Nameserver
        | Question::Version
        | Question::Pods
        | Question::ReverseApex(_) => holds(view, zone, labels, qtype),
        Question::Clusterset(question) => in_clusterset(view, zone, labels, qtype, question),
    }
}

/// [`reason`] for a name in the clusterset zone.
fn in_clusterset(
    view: &View,
    zone: &Zone,
    labels: &[&[u8]],
    qtype: RecordType,
    question: SetQuestion<'_>,
) -> Result<String, Stop> {
    let clusterset = zone.apex(crate::dns::zone::Apex::Clusterset);
    if !view.has_imports() {
        return Err((
            NOT_AUTHORITATIVE,
            format!("no ServiceImport exists, so {clusterset} is not served: refused"),
        ));
    }
    let import = |namespace: &str, name: &str| {
        view.import(namespace, name).ok_or_else(|| {
            let reason = match view.import_namespace_exists(namespace) {
                true => format!("no ServiceImport {name} in namespace {namespace}"),
                false => format!("no ServiceImport in namespace {namespace}"),
            };
            (OTHER, reason)
        })
    };
    let with_endpoints = |name: &str, import: &ImportView| match import.kind {
        ImportKind::Headless if import.endpoints.is_empty() => Err((
            OTHER,
            format!(
                "ServiceImport {name} is headless and no cluster exports a ready endpoint of it"
            ),
        )),
        _ => Ok(()),
    };
    match question {
        SetQuestion::NoSuchName => Err((
            OTHER,
            format!(
                "no name of this shape in {clusterset}: try <service>.<namespace>.svc or \
                 <hostname>.<cluster>.<service>.<namespace>.svc"
            ),
        )),
        SetQuestion::Namespace(namespace) if !view.namespace_exists(namespace) => {
            Err((OTHER, format!("no namespace {namespace}")))
        }
        SetQuestion::Import { namespace, name } => {
            with_endpoints(name, import(namespace, name)?)?;
            holds(view, zone, labels, qtype)
        }
        SetQuestion::Cluster {
            namespace,
            service: name,
            cluster,
        }
        | SetQuestion::Endpoint {
            namespace,
            service: name,
            cluster,
            ..
        } => {
            let import = import(namespace, name)?;
            if let ImportKind::ClusterSetIp(_) = import.kind {
                return Err((
                    OTHER,
                    format!(
                        "ServiceImport {name} is of type ClusterSetIP: its endpoints have no \
                         names (only a Headless import's have)"
                    ),
                ));
            }
            if !import.has_cluster(cluster) {
                return Err((
                    OTHER,
                    format!("no ready endpoint of ServiceImport {name} is in cluster {cluster}"),
                ));
            }
            if let SetQuestion::Endpoint { label, .. } = question
                && import.endpoint(cluster, label).is_none()
            {
                return Err((
                    OTHER,
                    format!(
                        "no ready endpoint {label} of ServiceImport {name} in cluster {cluster}"
                    ),
                ));
            }
            holds(view, zone, labels, qtype)
        }
        SetQuestion::SrvProtocol {
            namespace,
            service: name,
            protocol,
        }
        | SetQuestion::Srv {
            namespace,
            service: name,
            protocol,
            ..
        } => {
            let import = import(namespace, name)?;
            with_endpoints(name, import)?;
            let port = match question {
                SetQuestion::Srv { port, .. } => Some(port),
                _ => None,
            };
            let known = import.ports.iter().any(|p| {
                !p.name.is_empty()
                    && p.protocol.srv_label() == protocol
                    && port.is_none_or(|port| *p.name == *port)
            });
            if !known {
                let port = port.map_or(String::new(), |port| format!(" named {port}"));
                return Err((
                    OTHER,
                    format!("ServiceImport {name} has no port{port} over {protocol}"),
                ));
            }
            holds(view, zone, labels, qtype)
        }
        SetQuestion::Namespace(_)
        | SetQuestion::Apex
        | SetQuestion::Services
        | SetQuestion::Version => holds(view, zone, labels, qtype),
    }
}

/// What kind of name the question is, for the facts.
fn shape(question: &Question<'_>) -> String {
    match question {
        Question::OutOfZone => "outside our zones".into(),
        Question::NoSuchName => "in the zone, but of no shape the schema has".into(),
        Question::Apex => "the zone's apex".into(),
        Question::Services => "svc.<zone>, the parent of every namespace's Services".into(),
        Question::Namespace(ns) => format!("namespace {ns}'s Services' parent"),
        Question::Service { namespace, name } => format!("Service {name} in namespace {namespace}"),
        Question::Endpoint {
            namespace,
            service,
            label,
        } => format!("endpoint {label} of Service {service} in namespace {namespace}"),
        Question::SrvProtocol {
            namespace,
            service,
            protocol,
        } => format!("the _{protocol} SRV parent of Service {service} in namespace {namespace}"),
        Question::Srv {
            namespace,
            service,
            port,
            protocol,
        } => format!(
            "SRV records of port {port}/{protocol} of Service {service} in namespace {namespace}"
        ),
        Question::Pods => "pod.<zone>, the parent of pod names".into(),
        Question::PodNamespace(ns) => format!("namespace {ns}'s pod names' parent"),
        Question::PodAddress { namespace, label } => {
            format!("the pod name {label} in namespace {namespace}")
        }
        Question::Dns => "dns.<zone>".into(),
        Question::Nameserver => "the name server's name".into(),
        Question::Version => "the schema version".into(),
        Question::ReverseApex(_) => "a reverse zone's apex".into(),
        Question::Reverse(ip, _) => format!("the reverse name of {ip}"),
        Question::ReverseOther(_) => "a partial reverse name".into(),
        Question::Clusterset(question) => match question {
            SetQuestion::NoSuchName => "in the clusterset zone, but of no shape it has".into(),
            SetQuestion::Apex => "the clusterset zone's apex".into(),
            SetQuestion::Services => "svc.<clusterset>, the parent of every import".into(),
            SetQuestion::Namespace(ns) => format!("namespace {ns}'s ServiceImports' parent"),
            SetQuestion::Import { namespace, name } => {
                format!("ServiceImport {name} in namespace {namespace}")
            }
            SetQuestion::Cluster {
                namespace,
                service,
                cluster,
            } => format!(
                "the endpoints in cluster {cluster} of ServiceImport {service} in namespace \
                 {namespace}"
            ),
            SetQuestion::Endpoint {
                namespace,
                service,
                cluster,
                label,
            } => format!(
                "endpoint {label} in cluster {cluster} of ServiceImport {service} in namespace \
                 {namespace}"
            ),
            SetQuestion::SrvProtocol {
                namespace,
                service,
                protocol,
            } => format!(
                "the _{protocol} SRV parent of ServiceImport {service} in namespace {namespace}"
            ),
            SetQuestion::Srv {
                namespace,
                service,
                port,
                protocol,
            } => format!(
                "SRV records of port {port}/{protocol} of ServiceImport {service} in namespace \
                 {namespace}"
            ),
            SetQuestion::Version => "the clusterset schema version".into(),
        },
    }
}

/// Why a name outside our zones is refused, with the full name it most likely stands for: dig
/// and `explain` ask `nginx-svc` as the name `nginx-svc.`, where a pod's stub resolver would
/// have tried its search path.
///
/// With several clusters (each zone `<cluster>.<zone>`), a name under the zone they share most
/// likely lacks the cluster: it is looked for in this one, the first, and every zone is named.
fn outside(view: &View, zone: &Zone, labels: &[&[u8]]) -> String {
    let mut origins = zone.origin.to_string();
    origins.pop();
    for sibling in &zone.siblings {
        origins.push_str(", ");
        origins.push_str(sibling.to_string().trim_end_matches('.'));
    }
    let shared = zone.origin.base_name();
    let shared: Vec<&[u8]> = shared.iter().collect();
    let without_shared = match labels.len().checked_sub(shared.len()) {
        Some(kept) if !zone.siblings.is_empty() && labels[kept..].iter().eq(shared.iter()) => {
            &labels[..kept]
        }
        _ => labels,
    };
    match likely_name(view, zone, without_shared) {
        Some(name) => format!("not in {origins}: did you mean {name}?"),
        None => format!("not in {origins} nor a reverse zone: refused"),
    }
}

/// The most namespaces looked through for a Service a short name may mean: this runs on every
/// refusal of an EDNS query, so it stays cheap in a cluster of many namespaces.
const NAMESPACES_SEARCHED: usize = 1000;

/// The name in the zone that `labels` (outside it) most likely means, as a search path would
/// complete it: `<labels>.<zone>` (`nginx-svc.default.svc`), `<labels>.svc.<zone>`
/// (`nginx-svc.default`), or `<labels>.<ns>.svc.<zone>` for a namespace `ns` holding a Service
/// named by the last label (`nginx-svc`, `web-0.nginx-svc`), namespace `default` first.
fn likely_name(view: &View, zone: &Zone, labels: &[&[u8]]) -> Option<String> {
    let origin: Vec<&[u8]> = zone.origin.iter().collect();
    let exists = |middle: &[&[u8]]| {
        let candidate: Vec<&[u8]> = labels
            .iter()
            .chain(middle)
            .chain(&origin)
            .copied()
            .collect();
        let found = candidate.len() <= MAX_LABELS && names_something(view, zone, &candidate);
        found.then(|| {
            let text: Vec<_> = candidate
                .iter()
                .map(|l| String::from_utf8_lossy(l))
                .collect();
            text.join(".")
        })
    };
    let last = std::str::from_utf8(labels.last()?).ok()?;
    exists(&[]).or_else(|| exists(&[b"svc"])).or_else(|| {
        let holds_it = |ns: &str| view.service(ns, last).is_some();
        let namespace = Some("default").filter(|ns| holds_it(ns)).or_else(|| {
            view.namespace_names()
                .take(NAMESPACES_SEARCHED)
                .find(|ns| holds_it(ns))
        })?;
        exists(&[namespace.as_bytes(), b"svc"])
    })
}

/// Whether a name in the zone (its labels) belongs to a Service or namespace that exists: worth
/// suggesting even when it holds nothing now (a pod not Ready yet), since its own answer then
/// says why.
fn names_something(view: &View, zone: &Zone, labels: &[&[u8]]) -> bool {
    match classify(zone, labels) {
        Question::OutOfZone | Question::NoSuchName => false,
        Question::Service { namespace, name }
        | Question::Endpoint {
            namespace,
            service: name,
            ..
        }
        | Question::SrvProtocol {
            namespace,
            service: name,
            ..
        }
        | Question::Srv {
            namespace,
            service: name,
            ..
        } => view.service(namespace, name).is_some(),
        Question::Namespace(namespace)
        | Question::PodNamespace(namespace)
        | Question::PodAddress { namespace, .. } => view.namespace_exists(namespace),
        Question::Apex
        | Question::Services
        | Question::Pods
        | Question::Dns
        | Question::Nameserver
        | Question::Version
        | Question::ReverseApex(_)
        | Question::Reverse(..)
        | Question::ReverseOther(_) => true,
        // Suggestions are names in the zone, which these are not.
        Question::Clusterset(_) => false,
    }
}

/// Ends with the reason when `namespace` does not exist or is not watched.
fn namespace_exists(
    view: &View,
    zone: &Zone,
    namespace: &str,
    trail: &mut Trail,
) -> Result<(), Stop> {
    let watched = &zone.scope.namespaces;
    if !watched.is_empty() && !watched.iter().any(|w| **w == *namespace) {
        return Err((
            OTHER,
            format!(
                "namespace {namespace} is not watched (--namespace {})",
                watched.join(",")
            ),
        ));
    }
    if view.namespace_exists(namespace) {
        trail.fact(|| format!("namespace {namespace} exists"));
        return Ok(());
    }
    let mut reason = format!("no namespace {namespace}");
    if let Some(close) = closest(namespace, view.namespace_names()) {
        let _ = write!(reason, "; did you mean {close}?");
    }
    Err((OTHER, reason))
}

/// The Service, or the reason there is none: the closest name, the pods whose subdomain names
/// it (`label`: the one asked for first), the `--selector` that may leave it out.
fn service_exists<'v>(
    view: &'v View,
    zone: &Zone,
    namespace: &str,
    name: &str,
    label: Option<&str>,
    trail: &mut Trail,
) -> Result<&'v ServiceView, Stop> {
    if let Some(service) = view.service(namespace, name) {
        trail.fact(|| describe(name, service));
        return Ok(service);
    }
    let mut reason = format!("no Service {name} in namespace {namespace}");
    let mut waiting: Vec<(&str, &Stray)> = view
        .strays(namespace)
        .filter(|(_, stray)| *stray.subdomain == *name)
        .collect();
    if !waiting.is_empty() {
        // The pod asked about first, if it is one of them.
        if let Some(at) = waiting.iter().position(|(pod, _)| Some(*pod) == label) {
            waiting.swap(0, at);
        }
        let pods: Vec<&str> = waiting.iter().map(|(pod, _)| *pod).collect();
        let _ = write!(
            reason,
            ", though pod {} {} spec.subdomain {name}",
            list(&pods, 2),
            if pods.len() == 1 { "has" } else { "have" }
        );
        if let Some(set) = waiting
            .iter()
            .find_map(|(_, stray)| stray.statefulset.as_ref())
        {
            let _ = write!(reason, " (StatefulSet {set}'s spec.serviceName)");
        }
    }
    if let Some(close) = closest(name, view.service_names(namespace)) {
        let _ = write!(reason, "; did you mean {close}?");
    }
    if let Some(selector) = &zone.scope.selector {
        let _ = write!(
            reason,
            " (only Services matching --selector {selector} are watched)"
        );
    }
    Err((OTHER, reason))
}

/// One line on what a Service is and answers.
fn describe(name: &str, service: &ServiceView) -> String {
    let selector = service
        .diagnosis
        .as_ref()
        .filter(|d| !d.selector.is_empty())
        .map(|d| format!(", selector {}", d.selector))
        .unwrap_or_default();
    match &service.kind {
        ServiceKind::ClusterIp(ips) => format!(
            "Service {name}: ClusterIP {}{selector}, {} endpoint names",
            join(ips.iter()),
            service.endpoints.len()
        ),
        ServiceKind::ExternalName(target) => format!("Service {name}: ExternalName {target}"),
        ServiceKind::Headless => format!(
            "Service {name}: headless{selector}, {} endpoints{}",
            service.endpoints.len(),
            match service.endpoints.len() {
                0 => String::new(),
                _ => format!(
                    " ({})",
                    list(
                        &service
                            .endpoints
                            .iter()
                            .map(|e| &*e.label)
                            .collect::<Vec<_>>(),
                        5
                    )
                ),
            }
        ),
    }
}

/// Why a headless Service that lists its pods has no endpoint at all.
fn no_endpoints(name: &str, service: &ServiceView) -> String {
    let Some(diagnosis) = &service.diagnosis else {
        return format!("headless Service {name} has no endpoints");
    };
    if diagnosis.selector.is_empty() {
        return match diagnosis.slice_endpoints_not_ready {
            0 => format!(
                "headless Service {name} has no selector and its EndpointSlices list no endpoint"
            ),
            n => format!(
                "headless Service {name} has no selector and none of the {n} endpoints of its \
                 EndpointSlices is ready"
            ),
        };
    }
    if diagnosis.held_back.is_empty() {
        return format!(
            "no pod matches the selector {} of headless Service {name}",
            diagnosis.selector
        );
    }
    let mut counts: Vec<(HeldBack, usize)> = Vec::new();
    for pod in &diagnosis.held_back {
        match counts.iter_mut().find(|(why, _)| *why == pod.why) {
            Some((_, n)) => *n += 1,
            None => counts.push((pod.why, 1)),
        }
    }
    let total = diagnosis.held_back.len();
    format!(
        "headless Service {name} has no ready endpoints: {total} pod{} {} its selector {}, {}",
        if total == 1 { "" } else { "s" },
        if total == 1 { "matches" } else { "match" },
        diagnosis.selector,
        counts
            .iter()
            .map(|(why, n)| format!("{n} {}", why.adjective()))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Why a Service that exists has no endpoint `label`.
fn no_endpoint(
    view: &View,
    namespace: &str,
    name: &str,
    service: &ServiceView,
    label: &str,
) -> String {
    if matches!(service.kind, ServiceKind::ExternalName(_)) {
        return format!("Service {name} is an ExternalName Service: it has no endpoint names");
    }
    let ip = parse_dashed(label);
    let is = |pod: &str, hostname: Option<&CompactName>| {
        pod == label || hostname.is_some_and(|h| **h == *label)
    };
    if let Some(diagnosis) = &service.diagnosis {
        if let Some(held) = diagnosis.held_back.iter().find(|held| {
            is(&held.pod, held.hostname.as_ref()) || ip.is_some_and(|ip| held.ips.contains(ip))
        }) {
            return format!(
                "pod {} {}, so Service {name} does not list it",
                held.pod,
                held.why.says()
            );
        }
        if let Some(pod) = diagnosis
            .misnamed
            .iter()
            .find(|pod| is(&pod.pod, pod.hostname.as_ref()))
        {
            return match (&pod.hostname, &pod.subdomain) {
                (Some(_), Some(subdomain)) if let Some(set) = &pod.statefulset => format!(
                    "pod {} of StatefulSet {set} has spec.subdomain {subdomain}, not {name}: the \
                     StatefulSet's spec.serviceName is {subdomain}, so Service {name} names it by \
                     its address",
                    pod.pod
                ),
                (Some(_), Some(subdomain)) => format!(
                    "pod {}'s spec.subdomain is {subdomain}, not {name}: Service {name} names it \
                     by its address",
                    pod.pod
                ),
                (Some(_), None) => format!(
                    "pod {} has a spec.hostname but no spec.subdomain: Service {name} names it by \
                     its address",
                    pod.pod
                ),
                (None, _) => format!(
                    "pod {} has spec.subdomain {name} but no spec.hostname: Service {name} names \
                     it by its address",
                    pod.pod
                ),
            };
        }
    }
    if let Some((pod, stray)) = view
        .strays(namespace)
        .find(|(pod, stray)| is(pod, stray.hostname.as_ref()))
    {
        if *stray.subdomain != *name {
            return match &stray.statefulset {
                Some(set) => format!(
                    "pod {pod}'s spec.subdomain is {}, not {name}: its StatefulSet {set} has \
                     spec.serviceName {}",
                    stray.subdomain, stray.subdomain
                ),
                None => format!(
                    "pod {pod}'s spec.subdomain is {}, not {name}",
                    stray.subdomain
                ),
            };
        }
        return match &stray.why {
            StrayWhy::NotSelected(selector) => format!(
                "pod {pod} has spec.subdomain {name}, but Service {name}'s selector {selector} \
                 does not match its labels"
            ),
            StrayWhy::NoSelector => {
                format!("pod {pod} has spec.subdomain {name}, but Service {name} has no selector")
            }
            StrayWhy::ExternalName | StrayWhy::NoService => {
                format!("pod {pod} has spec.subdomain {name}, but Service {name} does not list it")
            }
        };
    }
    if let Some(ip) = ip
        && let Some(endpoint) = service.endpoints.iter().find(|e| e.ips.contains(ip))
    {
        return format!(
            "{ip} is endpoint {} of Service {name}: a pod with a hostname is named by it",
            endpoint.label
        );
    }
    if let Some(ip) = ip
        && view.has_pod_ip(namespace, ip)
    {
        return format!("the pod with IP {ip} is not an endpoint of Service {name}");
    }
    let mut reason = format!(
        "Service {name} has no endpoint {label} ({} endpoint{})",
        service.endpoints.len(),
        if service.endpoints.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    // A closer look only where it stays cheap: this runs on every such miss.
    if service.endpoints.len() <= 1024
        && let Some(close) = closest(label, service.endpoints.iter().map(|e| &*e.label))
    {
        let _ = write!(reason, "; did you mean {close}?");
    }
    reason
}

/// Why a Service has no SRV records for a port.
fn no_port(name: &str, service: &ServiceView, port: Option<&str>, protocol: &str) -> String {
    let named: Vec<String> = service
        .ports
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| format!("{}/{}", p.name, p.protocol.srv_label()))
        .collect();
    let asked = match port {
        Some(port) => format!("port named {port} over {protocol}"),
        None => format!("named port over {protocol}"),
    };
    match named.len() {
        0 => format!("Service {name} has no named ports, so no SRV records"),
        _ => format!(
            "Service {name} has no {asked} (it has {})",
            named.join(", ")
        ),
    }
}

/// For a name that exists: what it holds, or which types it has when not the one asked for.
fn holds(view: &View, zone: &Zone, labels: &[&[u8]], qtype: RecordType) -> Result<String, Stop> {
    let held = answer::record_types(view, zone, labels);
    let types = held
        .iter()
        .map(RecordType::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if held.contains(&qtype) || (qtype == RecordType::ANY && !held.is_empty()) {
        return Ok(format!("answered: the name has {types} records"));
    }
    match held.len() {
        0 => Err((
            OTHER,
            "the name exists but holds no records: only names below it do".into(),
        )),
        _ => Err((
            OTHER,
            format!("the name has no {qtype} records (it has {types})"),
        )),
    }
}

fn join(ips: impl Iterator<Item = impl std::fmt::Display>) -> String {
    ips.map(|ip| ip.to_string()).collect::<Vec<_>>().join(",")
}

/// `a, b and 3 more`.
fn list(names: &[&str], shown: usize) -> String {
    let mut text = names[..names.len().min(shown)].join(", ");
    if names.len() > shown {
        let _ = write!(text, " and {} more", names.len() - shown);
    }
    text
}

/// The candidate most like `name`, if one is close: at most two edits away (one for names of
/// up to four characters), or `name` with a `-suffix` added or removed (`nginx` for `nginx-svc`).
pub(crate) fn closest<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let bound = if name.len() <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let dashed_extension = |long: &str, short: &str| {
            long.strip_prefix(short)
                .is_some_and(|rest| rest.starts_with('-'))
        };
        let distance = if dashed_extension(candidate, name) || dashed_extension(name, candidate) {
            Some(bound)
        } else {
            edit_distance(name, candidate, bound)
        };
        if let Some(distance) = distance
            && best.is_none_or(|(d, _)| distance < d)
        {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The edit distance between `a` and `b` if it is at most `bound`: insertions, deletions,
/// substitutions and transpositions of neighbours (`shpo` is one edit from `shop`), each one
/// edit (the optimal string alignment distance).
fn edit_distance(a: &str, b: &str, bound: usize) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > bound || a.len() > 63 || b.len() > 63 {
        return None;
    }
    // Each letter one name has and the other lacks takes an edit: most candidates are ruled
    // out here, before the table (letters sharing a bit only make the count lower).
    let letters = |name: &[u8]| name.iter().fold(0u64, |set, &c| set | 1 << (c & 63));
    let (in_a, in_b) = (letters(a), letters(b));
    if (in_a & !in_b).count_ones().max((in_b & !in_a).count_ones()) as usize > bound {
        return None;
    }
    // Rows i-2, i-1 and i of the table (prefixes of `a` against every prefix of `b`), taken in
    // turn from `rows`. A cell further than `bound` from the diagonal costs more than `bound`,
    // so only that band is computed (this runs for every candidate of every miss); cells
    // around it read as FAR.
    const FAR: u8 = 64;
    let mut rows = [[FAR; 65]; 3];
    for (j, cell) in rows[0].iter_mut().enumerate().take(bound.min(b.len()) + 1) {
        *cell = j as u8;
    }
    for (i, &ca) in a.iter().enumerate() {
        let row = i + 1;
        let [before, previous, current] = three_rows(&mut rows, row);
        let first = row.saturating_sub(bound);
        let last = (row + bound).min(b.len());
        if first > 0 {
            current[first - 1] = FAR;
        } else {
            current[0] = row as u8;
        }
        let mut row_min = if first == 0 { row as u8 } else { FAR };
        for j in first.max(1)..=last {
            let cb = b[j - 1];
            let mut best = (previous[j - 1] + u8::from(ca != cb))
                .min(previous[j] + 1)
                .min(current[j - 1] + 1);
            if i > 0 && j > 1 && ca == b[j - 2] && a[i - 1] == cb {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
            row_min = row_min.min(best);
        }
        if usize::from(row_min) > bound {
            return None;
        }
    }
    let distance = usize::from(rows[a.len() % 3][b.len()]);
    (distance <= bound).then_some(distance)
}

/// Rows `row - 2`, `row - 1` and `row` of [`edit_distance`]'s table, kept three apart.
fn three_rows(rows: &mut [[u8; 65]; 3], row: usize) -> [&mut [u8; 65]; 3] {
    let [r0, r1, r2] = rows;
    match row % 3 {
        0 => [r1, r2, r0],
        1 => [r2, r0, r1],
        _ => [r0, r1, r2],
    }
}

/// The reason for `reply` to the question `lower` (lower case) if it is empty or negative:
/// NXDOMAIN, NODATA (also at the end of a CNAME chain within the zone), SERVFAIL before the
/// first sync, or REFUSED for a name outside our zones. `None` for answers with records, other
/// refusals and format errors.
pub(crate) fn for_reply(
    view: &View,
    zone: &Zone,
    lower: &Name,
    qtype: RecordType,
    reply: &Reply,
) -> Option<Explanation> {
    let about = reply.empty_at.as_ref()?;
    let mut buffer = [&[][..]; MAX_LABELS];
    if !tells_why(view, zone, labels_of(lower, &mut buffer), reply.rcode) {
        return None;
    }
    let mut buffer = [&[][..]; MAX_LABELS];
    Some(explain(
        view,
        zone,
        labels_of(about, &mut buffer),
        qtype,
        false,
    ))
}

/// Whether an empty answer with `rcode` to the question `labels` (lower case) has a reason to
/// give: NXDOMAIN and NODATA, SERVFAIL before the first complete state, and a refusal of a name
/// outside our zones (not a zone transfer over UDP, nor another class, which are in them).
pub(crate) fn tells_why(view: &View, zone: &Zone, labels: &[&[u8]], rcode: ResponseCode) -> bool {
    match rcode {
        ResponseCode::NXDomain | ResponseCode::NoError => true,
        ResponseCode::ServFail => !view.synced(),
        ResponseCode::Refused => classify(zone, labels) == Question::OutOfZone,
        _ => false,
    }
}

/// What `headless-dns explain` prints and `GET /explain` returns: the answer, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub rcode: String,
    pub answers: Vec<String>,
    pub authority: Vec<String>,
    pub additionals: Vec<String>,
    /// The Extended DNS Error an EDNS query would get (`None` for an answer with records).
    pub ede: Option<Ede>,
    /// The conclusion, for answers with records too.
    pub reason: String,
    /// What was looked at, in order.
    pub facts: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Ede {
    pub code: u16,
    pub text: String,
}

/// The question as `dig` asks it: a name, with or without its final dot (`nginx-svc` is the
/// name `nginx-svc.`, as dig sends it, so both get the same answer: REFUSED, with the full name
/// it likely means), or an IP address (its reverse name; then `A` means `PTR`); the type by its
/// mnemonic.
pub(crate) fn parse_question(name: &str, qtype: &str) -> Result<(Name, RecordType), String> {
    let mut qtype: RecordType = qtype
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("{qtype:?} is not a record type (A, AAAA, SRV, PTR, TXT, ...)"))?;
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        if qtype == RecordType::A {
            qtype = RecordType::PTR;
        }
        return Ok((Name::from(ip), qtype));
    }
    let mut parsed = Name::from_ascii(name).map_err(|e| format!("{name:?} is not a name: {e}"))?;
    parsed.set_fqdn(true);
    Ok((parsed, qtype))
}

/// The answer to `name` and `qtype` from `view`, with the reason and the facts behind it.
pub(crate) fn report(view: &View, zone: &Zone, name: &Name, qtype: RecordType) -> Report {
    let lower = name.to_lowercase();
    let reply = answer::answer(
        view,
        zone,
        &lower,
        name,
        qtype,
        hickory_proto::rr::DNSClass::IN,
    );
    let mut buffer = [&[][..]; MAX_LABELS];
    let about = reply
        .empty_at
        .clone()
        .filter(|_| tells_why(view, zone, labels_of(&lower, &mut buffer), reply.rcode));
    let explained = about.as_ref().unwrap_or(&lower);
    let mut buffer = [&[][..]; MAX_LABELS];
    let labels = labels_of(explained, &mut buffer);
    let explanation = explain(view, zone, labels, qtype, true);
    let mut facts = explanation.facts;
    if about.as_ref().is_some_and(|about| *about != lower) {
        facts.insert(
            0,
            format!("{name} is an alias; the chain ends at {explained}"),
        );
    }
    let lines = |records: &[hickory_proto::rr::Record]| {
        records.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    Report {
        name: name.to_string(),
        qtype: qtype.to_string(),
        rcode: rcode_name(u16::from(reply.rcode)).to_owned(),
        answers: lines(&reply.answers),
        authority: lines(&reply.authority),
        additionals: lines(&reply.additionals),
        ede: about.is_some().then(|| Ede {
            code: explanation.code,
            text: explanation.reason.clone(),
        }),
        reason: explanation.reason,
        facts,
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} {}: {}", self.name, self.qtype, self.rcode)?;
        for (section, records) in [
            ("answer", &self.answers),
            ("authority", &self.authority),
            ("additional", &self.additionals),
        ] {
            for record in records {
                writeln!(f, "  {section:<10} {record}")?;
            }
        }
        for fact in &self.facts {
            writeln!(f, "  - {fact}")?;
        }
        match &self.ede {
            Some(ede) => writeln!(f, "why: {} (EDE {})", ede.text, ede.code),
            None => writeln!(f, "{}", self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    /// The optimal string alignment distance, the whole table: what the banded one must equal.
    fn full_table(a: &[u8], b: &[u8]) -> usize {
        let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j - 1] + cost)
                    .min(d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
                }
            }
        }
        d[a.len()][b.len()]
    }

    /// Every string of up to five letters from a three-letter alphabet.
    fn words() -> Vec<String> {
        let mut words = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..5 {
            last = last
                .iter()
                .flat_map(|w| ['a', 'b', 'c'].map(|c| format!("{w}{c}")))
                .collect();
            words.extend(last.iter().cloned());
        }
        words
    }

    #[test]
    fn the_band_gives_the_distance_of_the_whole_table() {
        let words = words();
        for a in &words {
            for b in &words {
                let distance = full_table(a.as_bytes(), b.as_bytes());
                for bound in 0..4 {
                    assert_eq!(
                        edit_distance(a, b, bound),
                        (distance <= bound).then_some(distance),
                        "{a:?} {b:?} within {bound}"
                    );
                }
            }
        }
    }

    #[test]
    fn long_names_and_transpositions() {
        assert_eq!(edit_distance("shpo", "shop", 1), Some(1));
        assert_eq!(edit_distance("defualt", "default", 2), Some(1));
        let long = "a".repeat(63);
        assert_eq!(
            edit_distance(&long, &format!("{}b", &long[1..]), 2),
            Some(1)
        );
        assert_eq!(edit_distance(&long, &"b".repeat(63), 2), None);
        assert_eq!(edit_distance(&"a".repeat(64), &long, 2), None);
    }
}
