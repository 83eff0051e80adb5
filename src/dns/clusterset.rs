//! What a ServiceImport answers in the clusterset zone, by the Multi-Cluster Services DNS
//! specification (KEP-1645, version 1.0.0): its EndpointSlices from every exporting cluster
//! turned into the [`ImportView`] the answers read; and, with several clusters and no MCS
//! controller, what a Service exported from some of them answers there ([`exported_view`]).
//! The writer's half of the clusterset rules, as `backing` is for Services.

use std::net::IpAddr;
use std::sync::Arc;

use crate::dns::backing::slice_ports;
use crate::dns::view::{ImportEndpoint, ImportView, ServiceView, any_shared_address};
use crate::dns::zone::dashed;
use crate::records::{
    CompactName, EndpointSliceRecord, ImportKind, ServiceImportRecord, ServiceKind, ServicePort,
    TargetPort,
};

/// What `import` answers, given the EndpointSlices MCS controllers wrote for it. A ClusterSetIP
/// import answers its ClusterSetIPs and names no endpoint; a headless one names each ready
/// endpoint of every cluster `<hostname>.<cluster>` (its dashed address without a hostname), and
/// its SRV records take each endpoint's port from its slice, by name and protocol.
pub(crate) fn import_view<'s>(
    import: &ServiceImportRecord,
    slices: impl IntoIterator<Item = &'s EndpointSliceRecord>,
) -> ImportView {
    let mut endpoints: Vec<(ImportEndpoint, Box<[u16]>)> = Vec::new();
    if import.kind == ImportKind::Headless {
        for slice in slices {
            let Some(cluster) = &slice.cluster else {
                continue;
            };
            let ports = slice_ports(&import.ports, slice);
            for endpoint in slice.endpoints.iter().filter(|e| e.ready) {
                let named = |label: CompactName, ips| ImportEndpoint {
                    cluster: cluster.clone(),
                    label,
                    ips,
                };
                match &endpoint.hostname {
                    Some(hostname) => endpoints.push((
                        named(hostname.clone(), endpoint.addresses.clone()),
                        ports.clone(),
                    )),
                    None => endpoints.extend(
                        endpoint
                            .addresses
                            .iter()
                            .map(|ip| (named(dashed(ip).into(), ip.into()), ports.clone())),
                    ),
                }
            }
        }
    }
    // One name per cluster and label: endpoints sharing one (two slices of a cluster naming the
    // same hostname) answer with the addresses of both.
    endpoints
        .sort_unstable_by(|(a, _), (b, _)| (&a.cluster, &a.label).cmp(&(&b.cluster, &b.label)));
    let mut merged: Vec<(ImportEndpoint, Box<[u16]>)> = Vec::with_capacity(endpoints.len());
    for (endpoint, ports) in endpoints {
        match merged.last_mut() {
            Some((last, _)) if last.cluster == endpoint.cluster && last.label == endpoint.label => {
                let mut ips: Vec<IpAddr> = last.ips.iter().collect();
                ips.extend(endpoint.ips.iter().filter(|ip| !last.ips.contains(*ip)));
                last.ips = ips.into();
            }
            _ => merged.push((endpoint, ports)),
        }
    }
    let endpoint_ports = merged
        .iter()
        .flat_map(|(_, ports)| ports.iter().copied())
        .collect();
    let endpoints: Box<[ImportEndpoint]> =
        merged.into_iter().map(|(endpoint, _)| endpoint).collect();
    ImportView {
        kind: import.kind.clone(),
        ports: import.ports.clone(),
        shared_addresses: any_shared_address(&endpoints),
        endpoints,
        endpoint_ports,
    }
}

/// What a Service exported (a ServiceExport of its name) from the clusters `exports` names, in
/// the order given, answers in the clusterset zone when no MCS controller makes a ServiceImport
/// of it: what that controller would make, but for the ClusterSetIP, which only a controller
/// allocates. The first cluster's Service decides the type and the ports (the MCS API's
/// conflict rule picks the oldest export; the order given stands in for age), and a cluster
/// whose Service is of the other type is left out, as the controller leaves a conflicting
/// export out. Headless: every exporting cluster's endpoints, each named
/// `<label>.<cluster>`, with its SRV ports from its own Service by port name and protocol.
/// ClusterIP: the exporting clusters' cluster IPs, in order, each once (reached across the
/// clusters as their networks allow). ExternalName Services are not exported (the API leaves
/// them out too); `None` when no cluster exports another.
pub(crate) fn exported_view(exports: &[(&Arc<str>, &ServiceView)]) -> Option<ImportView> {
    let exportable = |service: &ServiceView| !matches!(service.kind, ServiceKind::ExternalName(_));
    let (_, first) = exports.iter().find(|(_, service)| exportable(service))?;
    let headless = first.kind == ServiceKind::Headless;
    let contributing = exports.iter().filter(|(_, service)| {
        exportable(service) && (service.kind == ServiceKind::Headless) == headless
    });
    // An import's ports are its own: each serves its number.
    let ports: Arc<[ServicePort]> = first
        .ports
        .iter()
        .map(|port| ServicePort {
            target: TargetPort::Number(port.port),
            ..port.clone()
        })
        .collect();
    if !headless {
        let mut ips: Vec<IpAddr> = Vec::new();
        for (_, service) in contributing {
            if let ServiceKind::ClusterIp(cluster_ips) = &service.kind {
                for ip in cluster_ips {
                    if !ips.contains(ip) {
                        ips.push(*ip);
                    }
                }
            }
        }
        return Some(ImportView {
            kind: ImportKind::ClusterSetIp(ips.into()),
            ports,
            endpoints: Box::default(),
            endpoint_ports: Box::default(),
            shared_addresses: false,
        });
    }
    let mut endpoints: Vec<(ImportEndpoint, Vec<u16>)> = Vec::new();
    for (cluster, service) in contributing {
        // The import's ports, as this cluster's Service numbers them.
        let own: Vec<Option<usize>> = ports
            .iter()
            .map(|port| {
                service
                    .ports
                    .iter()
                    .position(|p| p.name == port.name && p.protocol == port.protocol)
            })
            .collect();
        for (index, endpoint) in service.endpoints.iter().enumerate() {
            let row = own
                .iter()
                .map(|port| {
                    port.and_then(|p| service.endpoint_port(p, index))
                        .unwrap_or(0)
                })
                .collect();
            let named = ImportEndpoint {
                cluster: (*cluster).clone(),
                label: endpoint.label.clone(),
                ips: endpoint.ips.clone(),
            };
            endpoints.push((named, row));
        }
    }
    // Clusters' names are unique, and labels within a Service: each pair is once.
    endpoints.sort_by(|(a, _), (b, _)| (&a.cluster, &a.label).cmp(&(&b.cluster, &b.label)));
    let endpoint_ports = endpoints
        .iter()
        .flat_map(|(_, row)| row.iter().copied())
        .collect();
    let endpoints: Box<[ImportEndpoint]> = endpoints
        .into_iter()
        .map(|(endpoint, _)| endpoint)
        .collect();
    Some(ImportView {
        kind: ImportKind::Headless,
        ports,
        endpoint_ports,
        shared_addresses: any_shared_address(&endpoints),
        endpoints,
    })
}
