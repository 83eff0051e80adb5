//! Which pods back a Service, and the names they get under it: the writer's half of the rules
//! (the EndpointSlice controller's choice of endpoints, hostnames or dashed addresses, SRV ports
//! by name), turned into the [`ServiceView`] the answers read, with the diagnosis of what it
//! left out.

use std::net::IpAddr;

use crate::dns::diagnosis::{self, HeldBack, HeldBackPod, MisnamedPod, Stray, StrayWhy};
use crate::dns::view::{Endpoint, ServiceView};
use crate::dns::zone::{EndpointNames, dashed};
use crate::records::{
    Addresses, CompactName, EndpointSliceRecord, IpFamilies, PodRecord, ServiceKind, ServicePort,
    ServiceRecord, TargetPort, is_dns_label,
};

/// Whether the Service's selector matches the pod (a Service without one selects none).
pub(crate) fn selects(service: &ServiceRecord, pod: &PodRecord) -> bool {
    service
        .selector
        .as_ref()
        .is_some_and(|selector| selector.selects(pod.labels(), &pod.name))
}

/// Why the Service would not list the pod were it selected; `None`: it would.
pub(crate) fn held_back(service: &ServiceRecord, pod: &PodRecord) -> Option<HeldBack> {
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
pub(crate) fn stray(pod: &PodRecord, subdomain_service: Option<&ServiceRecord>) -> Option<Stray> {
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
pub(crate) fn selector_text(service: &ServiceRecord) -> Option<String> {
    let selector = service.selector.as_ref()?;
    let pairs: Vec<String> = selector.pairs().map(|(k, v)| format!("{k}={v}")).collect();
    Some(pairs.join(","))
}

/// Whether a Service's answers depend on the pods behind it: every Service with a selector but
/// an ExternalName one names its endpoints (`<endpoint>.<svc>.<ns>.svc.<zone>`, and their PTR);
/// a ClusterIP Service's own name still answers with its cluster IPs.
pub(crate) fn lists_endpoints(service: &ServiceRecord) -> bool {
    service.selector.is_some() && !matches!(service.kind, ServiceKind::ExternalName(_))
}

/// What `service` answers, given the pods that back it, the pods it selects but holds back, and
/// its EndpointSlices. A Service with a selector lists its pods; one without (but an
/// ExternalName one) its slices' ready endpoints.
pub(crate) fn service_view<'p, 's>(
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
        _ => diagnosis::diagnose(
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
        let numbers: Vec<u16> = service
            .ports
            .iter()
            .map(ServicePort::numbered_target)
            .collect();
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
    let ports = slice_ports(&service.ports, slice);
    for endpoint in slice.endpoints.iter().filter(|e| e.ready) {
        let by_target = endpoint
            .target_name
            .as_ref()
            .filter(|_| names == EndpointNames::PodName);
        let name = endpoint.hostname.as_ref().or(by_target);
        push_endpoints(name, &endpoint.addresses, &ports, out);
    }
}

/// The port `slice` gives for each of `ports` (a Service's or a ServiceImport's), matched by
/// name and protocol; `0` where it gives none.
pub(crate) fn slice_ports(ports: &[ServicePort], slice: &EndpointSliceRecord) -> Box<[u16]> {
    ports
        .iter()
        .map(|p| {
            slice
                .ports
                .iter()
                .find(|s| s.name == p.name && s.protocol == p.protocol)
                .map_or(0, |s| s.port)
        })
        .collect()
}

/// One endpoint named `hostname`, or without a hostname one per address, named by its dashes.
fn push_endpoints(
    hostname: Option<&CompactName>,
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
