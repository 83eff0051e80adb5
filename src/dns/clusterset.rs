//! What a ServiceImport answers in the clusterset zone, by the Multi-Cluster Services DNS
//! specification (KEP-1645, version 1.0.0): its EndpointSlices from every exporting cluster
//! turned into the [`ImportView`] the answers read. The writer's half of the clusterset rules,
//! as `backing` is for Services.

use std::net::IpAddr;
use std::sync::Arc;

use crate::dns::backing::slice_ports;
use crate::dns::view::{ImportEndpoint, ImportView};
use crate::dns::zone::dashed;
use crate::records::{EndpointSliceRecord, ImportKind, ServiceImportRecord};

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
                let named = |label: Arc<str>, ips| ImportEndpoint {
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
    ImportView {
        kind: import.kind.clone(),
        ports: import.ports.clone(),
        endpoints: merged.into_iter().map(|(endpoint, _)| endpoint).collect(),
        endpoint_ports,
    }
}
