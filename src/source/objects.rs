//! Converting Kubernetes API objects (k8s-openapi types) into the plain records DNS keeps,
//! with errors that name the offending field. Shared by every source.

use std::cell::RefCell;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::{Service, ServicePort as K8sServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::records::{
    ClusterObject, ContainerPort, EndpointSliceRecord, ImportKind, IpFamilies, Labels, ObjectKey,
    PodHostname, PodRecord, PodTemplate, Protocol, ServiceImportRecord, ServiceKind, ServicePort,
    ServiceRecord, SliceEndpoint, SlicePort, TargetPort, is_dns_label,
};
use crate::source::pod::DnsPod;
use crate::source::service_import::{ServiceExport, ServiceImport};

/// The label that ties an EndpointSlice to its Service.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The label that ties an EndpointSlice an MCS controller wrote to its ServiceImport.
pub(crate) const IMPORT_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";

/// The label naming the cluster an MCS controller's EndpointSlice holds the endpoints of.
pub(crate) const SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";

/// A field of an object that DNS cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

/// `metadata.namespace` (default `default`) and `metadata.name`, both checked as DNS labels
/// when `name_is_label`, since they become labels of DNS names.
fn object_key(meta: &ObjectMeta, name_is_label: bool) -> Result<ObjectKey, FieldError> {
    let name = meta
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| FieldError::new("metadata.name", "missing"))?;
    let namespace = meta.namespace.as_deref().unwrap_or("default");
    check_label("metadata.namespace", namespace)?;
    if name_is_label {
        check_label("metadata.name", name)?;
    }
    Ok(ObjectKey {
        namespace: recent_namespace(namespace),
        name: name.into(),
    })
}

fn check_label(field: &str, value: &str) -> Result<(), FieldError> {
    if is_dns_label(value) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{value:?} is not a DNS label (lower-case letters, digits and '-', at most 63)"
            ),
        ))
    }
}

fn parse_ip(field: impl Fn() -> String, value: &str) -> Result<IpAddr, FieldError> {
    value
        .parse()
        .map_err(|_| FieldError::new(field(), format!("{value:?} is not an IP address")))
}

/// The single-address field must name the first of the list (the API server refuses an object
/// where it does not, so a file that has one was edited by hand, and one of the two is wrong).
fn agree(
    field: &str,
    single: Option<&str>,
    first_field: &str,
    first: IpAddr,
) -> Result<(), FieldError> {
    let Some(single) = single.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    match single.parse::<IpAddr>() {
        Ok(ip) if ip == first => Ok(()),
        Ok(_) => Err(FieldError::new(
            field,
            format!("\"{single}\" is not {first_field} (\"{first}\")"),
        )),
        Err(_) => Err(FieldError::new(
            field,
            format!("{single:?} is not an IP address"),
        )),
    }
}

fn parse_protocol(field: impl Fn() -> String, value: Option<&str>) -> Result<Protocol, FieldError> {
    match value.unwrap_or("TCP") {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Ok(Protocol::Sctp),
        other => Err(FieldError::new(
            field(),
            format!("{other:?} is not TCP, UDP or SCTP"),
        )),
    }
}

fn parse_port(field: impl Fn() -> String, value: i32) -> Result<u16, FieldError> {
    u16::try_from(value)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| FieldError::new(field(), format!("{value} is not a port (1-65535)")))
}

/// The labels in `map` of the object named `owner` (empty for a selector).
fn labels(owner: &str, map: Option<&std::collections::BTreeMap<String, String>>) -> Labels {
    Labels::owned_by(
        owner,
        map.into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    )
}

pub(crate) fn namespace_name(meta: &ObjectMeta) -> Result<Arc<str>, FieldError> {
    let name = meta
        .name
        .as_deref()
        .ok_or_else(|| FieldError::new("metadata.name", "missing"))?;
    check_label("metadata.name", name)?;
    Ok(name.into())
}

pub(crate) fn service_record(service: &Service) -> Result<ServiceRecord, FieldError> {
    let key = object_key(&service.metadata, true)?;
    let spec = service
        .spec
        .as_ref()
        .ok_or_else(|| FieldError::new("spec", "missing"))?;
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec
            .external_name
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| FieldError::new("spec.externalName", "missing for type ExternalName"))?;
        let mut name = Name::from_ascii(target).map_err(|e| {
            FieldError::new(
                "spec.externalName",
                format!("{target:?} is not a DNS name: {e}"),
            )
        })?;
        name.set_fqdn(true);
        ServiceKind::ExternalName(Box::new(name))
    } else if spec.cluster_ip.as_deref() == Some("None") {
        ServiceKind::Headless
    } else {
        let ips = match (&spec.cluster_ips, &spec.cluster_ip) {
            (Some(ips), _) if !ips.is_empty() => {
                let parsed = ips
                    .iter()
                    .enumerate()
                    .map(|(i, ip)| parse_ip(|| format!("spec.clusterIPs[{i}]"), ip))
                    .collect::<Result<Vec<_>, _>>()?;
                agree(
                    "spec.clusterIP",
                    spec.cluster_ip.as_deref(),
                    "spec.clusterIPs[0]",
                    parsed[0],
                )?;
                parsed
            }
            (_, Some(ip)) if !ip.is_empty() => vec![parse_ip(|| "spec.clusterIP".into(), ip)?],
            _ => Vec::new(),
        };
        ServiceKind::ClusterIp(ips.into())
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, port)| service_port(i, port))
        .collect::<Result<Vec<_>, _>>()?;
    let selector = Some(labels("", spec.selector.as_ref())).filter(|s| !s.is_empty());
    let families = match spec.ip_families.as_deref() {
        None | Some([]) => IpFamilies::BOTH,
        Some(listed) => {
            let mut families = IpFamilies {
                v4: false,
                v6: false,
            };
            for (i, family) in listed.iter().enumerate() {
                match family.as_str() {
                    "IPv4" => families.v4 = true,
                    "IPv6" => families.v6 = true,
                    other => {
                        return Err(FieldError::new(
                            format!("spec.ipFamilies[{i}]"),
                            format!("{other:?} is not IPv4 or IPv6"),
                        ));
                    }
                }
            }
            families
        }
    };
    Ok(ServiceRecord {
        key,
        kind,
        selector,
        ports: ports.into(),
        publish_not_ready_addresses: spec.publish_not_ready_addresses.unwrap_or(false),
        families,
    })
}

/// A ServiceExport's record: its key, which names the Service exported.
pub(crate) fn service_export_record(export: &ServiceExport) -> Result<ClusterObject, FieldError> {
    object_key(&export.metadata, true).map(ClusterObject::ServiceExport)
}

/// A ServiceImport's record: its type, ClusterSetIPs and ports.
pub(crate) fn service_import_record(
    import: &ServiceImport,
) -> Result<ServiceImportRecord, FieldError> {
    let key = object_key(&import.metadata, true)?;
    let spec = import
        .spec
        .as_ref()
        .ok_or_else(|| FieldError::new("spec", "missing"))?;
    let ips = spec
        .ips
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, ip)| parse_ip(|| format!("spec.ips[{i}]"), ip))
        .collect::<Result<Vec<_>, _>>()?;
    let kind = match spec.type_.as_deref() {
        Some("ClusterSetIP") => ImportKind::ClusterSetIp(ips.into()),
        Some("Headless") => ImportKind::Headless,
        Some(other) => {
            return Err(FieldError::new(
                "spec.type",
                format!("{other:?} is not ClusterSetIP or Headless"),
            ));
        }
        None => return Err(FieldError::new("spec.type", "missing")),
    };
    let mut ports = Vec::new();
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        let field = |name: &'static str| move || format!("spec.ports[{i}].{name}");
        let name = port.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            check_label(&field("name")(), name)?;
        }
        let number = parse_port(field("port"), port.port)?;
        ports.push(ServicePort {
            name: name.into(),
            protocol: parse_protocol(field("protocol"), port.protocol.as_deref())?,
            port: number,
            target: TargetPort::Number(number),
        });
    }
    Ok(ServiceImportRecord {
        key,
        kind,
        ports: ports.into(),
    })
}

/// A Service port; an unnamed one has the empty name (no `_<port>._<proto>` name, but an SRV
/// record at the Service's own name).
fn service_port(i: usize, port: &K8sServicePort) -> Result<ServicePort, FieldError> {
    let field = |name: &'static str| move || format!("spec.ports[{i}].{name}");
    let protocol = parse_protocol(field("protocol"), port.protocol.as_deref())?;
    let number = parse_port(field("port"), port.port)?;
    let target = match &port.target_port {
        None => TargetPort::Number(number),
        Some(IntOrString::Int(n)) => TargetPort::Number(parse_port(field("targetPort"), *n)?),
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(n) => TargetPort::Number(parse_port(field("targetPort"), n)?),
            Err(_) => TargetPort::Name(name.as_str().into()),
        },
    };
    let name = port.name.as_deref().unwrap_or_default();
    if !name.is_empty() {
        check_label(&field("name")(), name)?;
    }
    Ok(ServicePort {
        name: name.into(),
        protocol,
        port: number,
        target,
    })
}

/// The StatefulSet that controls an object, if one does.
fn statefulset_of(metadata: &ObjectMeta) -> Option<Arc<str>> {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.kind == "StatefulSet" && owner.controller == Some(true))
        .filter(|owner| !owner.name.is_empty())
        .map(|owner| owner.name.as_str().into())
}

pub(crate) fn pod_object(pod: &DnsPod) -> Result<ClusterObject, FieldError> {
    // Pod names may contain dots; they never become DNS labels themselves.
    let key = object_key(&pod.metadata, false)?;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let hostname = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty());
    if let Some(hostname) = hostname {
        check_label("spec.hostname", hostname)?;
    }
    let subdomain = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty());
    if let Some(subdomain) = subdomain {
        check_label("spec.subdomain", subdomain)?;
    }
    let mut ips = Vec::new();
    match status
        .and_then(|s| s.pod_ips.as_ref())
        .filter(|ips| !ips.is_empty())
    {
        Some(pod_ips) => {
            for (i, entry) in pod_ips.iter().enumerate() {
                let ip = parse_ip(|| format!("status.podIPs[{i}].ip"), &entry.ip)?;
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            let single = status.and_then(|s| s.pod_ip.as_deref());
            agree("status.podIP", single, "status.podIPs[0].ip", ips[0])?;
        }
        None => {
            if let Some(ip) = status
                .and_then(|s| s.pod_ip.as_deref())
                .filter(|ip| !ip.is_empty())
            {
                ips.push(parse_ip(|| "status.podIP".into(), ip)?);
            }
        }
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let finished = matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    let mut named_ports = Vec::new();
    let containers = spec
        .and_then(|s| s.containers.as_deref())
        .unwrap_or_default();
    for (c, container) in containers.iter().enumerate() {
        for (p, port) in container.ports.iter().flatten().enumerate() {
            let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let field =
                |name: &'static str| move || format!("spec.containers[{c}].ports[{p}].{name}");
            named_ports.push(ContainerPort {
                name: name.into(),
                protocol: parse_protocol(field("protocol"), port.protocol.as_deref())?,
                port: parse_port(field("containerPort"), port.container_port)?,
            });
        }
    }
    let template = PodTemplate {
        labels: labels(&key.name, pod.metadata.labels.as_ref()),
        hostname: PodHostname::of(&key.name, hostname),
        subdomain: subdomain.map(Into::into),
        named_ports: named_ports.into(),
        statefulset: statefulset_of(&pod.metadata),
    };
    Ok(ClusterObject::Pod {
        namespace: key.namespace,
        pod: PodRecord {
            name: key.name,
            ips: ips.into(),
            template: recent_template(template),
            ready,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            finished,
        },
    })
}

/// The last few values a converting thread made, so that equal values of neighbouring objects
/// share one allocation.
///
/// The cluster state keeps one copy of each namespace name and pod template anyway, but if every
/// pod of a 100k-pod list brought its own, the duplicates would die only when the state shares
/// them, after the names and labels allocated between them: a hundred thousand holes that keep
/// the allocator's pages resident (3.5 MB for the namespaces alone). Lists are sorted by
/// namespace and name, so neighbours share their namespace and, in one template, their template:
/// a handful of recent values finds nearly every duplicate before it is allocated.
struct Recent<T: ?Sized> {
    next: usize,
    values: [Option<Arc<T>>; RECENT],
}

/// How many recent values of each kind a converting thread remembers.
const RECENT: usize = 8;

impl<T: ?Sized + PartialEq> Recent<T> {
    const fn new() -> Self {
        Self {
            next: 0,
            values: [const { None }; RECENT],
        }
    }

    /// The remembered value equal to `value`, or a new one made by `make`.
    fn share<Q>(&mut self, value: Q, make: impl FnOnce(Q) -> Arc<T>) -> Arc<T>
    where
        Q: std::borrow::Borrow<T>,
    {
        if let Some(shared) = self
            .values
            .iter()
            .flatten()
            .find(|v| ***v == *value.borrow())
        {
            return shared.clone();
        }
        let made = make(value);
        self.values[self.next] = Some(made.clone());
        self.next = (self.next + 1) % RECENT;
        made
    }
}

thread_local! {
    static RECENT_NAMESPACES: RefCell<Recent<str>> = const { RefCell::new(Recent::new()) };
    static RECENT_TEMPLATES: RefCell<Recent<PodTemplate>> = const { RefCell::new(Recent::new()) };
}

fn recent_namespace(namespace: &str) -> Arc<str> {
    RECENT_NAMESPACES.with_borrow_mut(|recent| recent.share(namespace, Arc::from))
}

fn recent_template(template: PodTemplate) -> Arc<PodTemplate> {
    RECENT_TEMPLATES.with_borrow_mut(|recent| recent.share(template, Arc::new))
}

/// A slice's addresses and names, or `None` for a slice DNS ignores (no Service label, or FQDN
/// addresses).
pub(crate) fn endpoint_slice_record(
    slice: &EndpointSlice,
) -> Result<Option<EndpointSliceRecord>, FieldError> {
    let key = object_key(&slice.metadata, false)?;
    let label = |name: &str| slice.metadata.labels.as_ref().and_then(|l| l.get(name));
    // An MCS controller's slice names its ServiceImport and its cluster; it usually carries no
    // `kubernetes.io/service-name`, and when it does, it is the import's all the same.
    let (service, cluster) = match (label(IMPORT_NAME_LABEL), label(SOURCE_CLUSTER_LABEL)) {
        (Some(import), Some(cluster)) => {
            check_label(&format!("metadata.labels[{IMPORT_NAME_LABEL:?}]"), import)?;
            check_label(
                &format!("metadata.labels[{SOURCE_CLUSTER_LABEL:?}]"),
                cluster,
            )?;
            (import, Some(Arc::from(cluster.as_str())))
        }
        _ => match label(SERVICE_NAME_LABEL) {
            Some(service) => (service, None),
            None => return Ok(None),
        },
    };
    if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
        return Ok(None);
    }
    let mut ports = Vec::new();
    for (i, port) in slice.ports.iter().flatten().enumerate() {
        // A port without a number means "all ports": nothing an SRV record can name.
        let Some(number) = port.port else { continue };
        let field = |name: &'static str| move || format!("ports[{i}].{name}");
        ports.push(SlicePort {
            name: port.name.as_deref().unwrap_or("").into(),
            protocol: parse_protocol(field("protocol"), port.protocol.as_deref())?,
            port: parse_port(field("port"), number)?,
        });
    }
    let mut endpoints = Vec::with_capacity(slice.endpoints.len());
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        let addresses = endpoint
            .addresses
            .iter()
            .enumerate()
            .map(|(j, ip)| parse_ip(|| format!("endpoints[{i}].addresses[{j}]"), ip))
            .collect::<Result<Vec<_>, _>>()?;
        let hostname = endpoint.hostname.as_deref().filter(|h| !h.is_empty());
        if let Some(hostname) = hostname {
            check_label(&format!("endpoints[{i}].hostname"), hostname)?;
        }
        endpoints.push(SliceEndpoint {
            addresses: addresses.into_iter().collect(),
            hostname: hostname.map(Into::into),
            // Names the endpoint under `--endpoint-names pod-name` (as CoreDNS's
            // `endpoint_pod_names` uses it, whatever the referenced kind).
            target_name: endpoint
                .target_ref
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .filter(|name| is_dns_label(name))
                .map(Into::into),
            ready: endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true),
        });
    }
    Ok(Some(EndpointSliceRecord {
        key,
        service: service.as_str().into(),
        cluster,
        ports: ports.into(),
        endpoints: endpoints.into(),
    }))
}
