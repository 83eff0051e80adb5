//! The zone's contents as records, for zone transfers: every name the view answers for and
//! what each holds. Each record comes from the rules' own answer to that name and type, so a
//! secondary that loads them answers as we do.
//!
//! The names are walked in steps (the Services or addresses of one shard of the view's maps), so
//! that a transfer of 100,000 pods holds one step's records at a time, never the whole zone.

use std::net::IpAddr;

use hickory_proto::rr::{Name, Record, RecordType};

use crate::dns::answer::{self, ServiceName};
use crate::dns::journal::WireRecords;
use crate::dns::view::{ServiceView, View};
use crate::dns::zone::{Apex, PodRecords, Zone, dashed};
use crate::records::ServiceKind;

/// Where the records of the names walked go: hickory records for a transfer, records on the
/// wire for the journal.
pub(crate) trait Out {
    /// Appends the records of type `rtype` that `name` itself holds.
    fn owned(&mut self, view: &View, zone: &Zone, name: &Name, rtype: RecordType);

    /// Appends `name`'s addresses: its A records, then its AAAA records.
    fn owned_addresses(&mut self, view: &View, zone: &Zone, name: &Name) {
        self.owned(view, zone, name, RecordType::A);
        self.owned(view, zone, name, RecordType::AAAA);
    }
}

impl Out for Vec<Record> {
    fn owned(&mut self, view: &View, zone: &Zone, name: &Name, rtype: RecordType) {
        answer::owned_records(view, zone, name, rtype, self);
    }
}

impl Out for WireRecords {
    fn owned(&mut self, view: &View, zone: &Zone, name: &Name, rtype: RecordType) {
        answer::owned_wire(view, zone, name, rtype, self);
    }

    /// In one walk, in the order the name holds them: the journal's order is its own.
    fn owned_addresses(&mut self, view: &View, zone: &Zone, name: &Name) {
        answer::owned_wire(view, zone, name, RecordType::ANY, self);
    }
}

/// One step of a walk over a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The apex's NS, the name server's address, `dns-version`.
    Apex,
    /// Every name of the Services of one step of [`View::services_in`].
    Services(usize),
    /// `<a-b-c-d>.<ns>.pod.<zone>` for the addresses of one step of [`View::addresses_in`].
    PodAddresses(usize),
    /// The PTR names of the addresses of one step of [`View::addresses_in`].
    Reverse(usize),
    /// Every name of the ServiceImports of one step of [`View::imports_in`].
    Imports(usize),
}

/// The steps of a walk over the zone `apex`, in the order a transfer sends them.
pub(crate) fn parts(zone: &Zone, apex: Apex) -> Vec<Part> {
    let mut parts = vec![Part::Apex];
    match apex {
        Apex::Zone => {
            parts.extend((0..View::STEPS).map(Part::Services));
            // Insecure pod names answer for any address: they cannot be listed, so a
            // secondary does not have them.
            if zone.pod_records == PodRecords::Verified {
                parts.extend((0..2 * View::STEPS).map(Part::PodAddresses));
            }
        }
        Apex::InAddrArpa => parts.extend((0..View::STEPS).map(Part::Reverse)),
        Apex::Ip6Arpa => parts.extend((View::STEPS..2 * View::STEPS).map(Part::Reverse)),
        Apex::Clusterset => parts.extend((0..View::STEPS).map(Part::Imports)),
    }
    parts
}

/// Appends the records of `part` of zone `apex` to `out` (the apex's SOA excepted: a transfer
/// puts it first and last).
pub(crate) fn records(view: &View, zone: &Zone, apex: Apex, part: &Part, out: &mut impl Out) {
    match part {
        Part::Apex => apex_records(view, zone, apex, out),
        Part::Services(step) => {
            for (namespace, name) in view.services_in(*step) {
                service_records(view, zone, namespace, name, out);
            }
        }
        Part::PodAddresses(step) => {
            for (ip, _, _) in view.addresses_in(*step).filter(|(_, pods, _)| *pods) {
                pod_address_records(view, zone, ip, out);
            }
        }
        Part::Imports(step) => {
            for (namespace, name) in view.imports_in(*step) {
                import_records(view, zone, namespace, name, out);
            }
        }
        Part::Reverse(step) => {
            for (ip, _, _) in view
                .addresses_in(*step)
                .filter(|(_, _, services)| *services)
            {
                out.owned(view, zone, &Name::from(ip), RecordType::PTR);
            }
        }
    }
}

/// The apex's NS; in the cluster's zone and the clusterset zone, `dns-version`'s TXT; in the
/// cluster's, the name server's address.
pub(crate) fn apex_records(view: &View, zone: &Zone, apex: Apex, out: &mut impl Out) {
    let origin = zone.apex(apex);
    out.owned(view, zone, origin, RecordType::NS);
    if apex == Apex::Zone {
        let nameserver = zone.nameserver();
        out.owned(view, zone, nameserver, RecordType::A);
        out.owned(view, zone, nameserver, RecordType::AAAA);
    }
    if matches!(apex, Apex::Zone | Apex::Clusterset)
        && let Some(version) = answer::name_below([&b"dns-version"[..]], origin)
    {
        out.owned(view, zone, &version, RecordType::TXT);
    }
}

/// The names `ip` holds: `<a-b-c-d>.<ns>.pod.<zone>` for each namespace with a pod on it
/// (with `--pod-records verified`), and its PTR name.
pub(crate) fn address_records(view: &View, zone: &Zone, ip: IpAddr, out: &mut impl Out) {
    if zone.pod_records == PodRecords::Verified {
        pod_address_records(view, zone, ip, out);
    }
    out.owned(view, zone, &Name::from(ip), RecordType::PTR);
}

fn pod_address_records(view: &View, zone: &Zone, ip: IpAddr, out: &mut impl Out) {
    for namespace in view.pod_namespaces(ip) {
        let labels = [dashed(ip), namespace.to_owned(), "pod".to_owned()];
        if let Some(owner) = below(zone, &labels) {
            out.owned(view, zone, &owner, address_type(ip));
        }
    }
}

/// The SOA of zone `apex`, which a transfer begins and ends with.
pub(crate) fn soa(view: &View, zone: &Zone, apex: Apex) -> Option<Record> {
    let mut out: Vec<Record> = Vec::new();
    out.owned(view, zone, zone.apex(apex), RecordType::SOA);
    out.pop()
}

/// Every name of one Service: its own (addresses or CNAME, SRV), its endpoints', its ports'.
pub(crate) fn service_records(
    view: &View,
    zone: &Zone,
    namespace: &str,
    name: &str,
    out: &mut impl Out,
) {
    if let Some(service) = view.service(namespace, name) {
        let labels = service.endpoints.iter().map(|e| &*e.label);
        service_names(view, zone, (namespace, name), service, labels, out);
    }
}

/// The names of Service `key` (namespace, name) with those of only the endpoints `labels`: its
/// own (addresses or CNAME, SRV), the endpoints' addresses, its ports' SRV. With the labels of the
/// endpoints that changed, what a change of endpoints alone changes.
pub(crate) fn service_names<'l>(
    view: &View,
    zone: &Zone,
    (namespace, name): (&str, &str),
    service: &ServiceView,
    labels: impl IntoIterator<Item = &'l str>,
    out: &mut impl Out,
) {
    let Some(owner) = below(zone, &[name, namespace, "svc"]) else {
        return;
    };
    if let ServiceKind::ExternalName(_) = service.kind {
        out.owned(view, zone, &owner, RecordType::CNAME);
        return;
    }
    out.owned_addresses(view, zone, &owner);
    out.owned(view, zone, &owner, RecordType::SRV);
    for label in labels {
        if let Some(owner) = below(zone, &[label, name, namespace, "svc"]) {
            out.owned_addresses(view, zone, &owner);
        }
    }
    for port in service.ports.iter().filter(|p| !p.name.is_empty()) {
        let (port_label, protocol) = (
            format!("_{}", port.name),
            format!("_{}", port.protocol.srv_label()),
        );
        if let Some(owner) = below(zone, &[&port_label, &protocol, name, namespace, "svc"]) {
            out.owned(view, zone, &owner, RecordType::SRV);
        }
    }
}

/// Every name of one ServiceImport in the clusterset zone: its own (addresses, SRV), its
/// endpoints' addresses, its ports' SRV.
pub(crate) fn import_records(
    view: &View,
    zone: &Zone,
    namespace: &str,
    name: &str,
    out: &mut impl Out,
) {
    let Some(import) = view.import(namespace, name) else {
        return;
    };
    let clusterset = zone.apex(Apex::Clusterset);
    let key = ServiceName::new(namespace, name);
    let Some(owner) = below_labels(answer::import_labels(key, None), clusterset) else {
        return;
    };
    out.owned_addresses(view, zone, &owner);
    out.owned(view, zone, &owner, RecordType::SRV);
    for endpoint in &import.endpoints {
        let labels = answer::import_labels(key, Some((&endpoint.cluster, &endpoint.label)));
        if let Some(owner) = below_labels(labels, clusterset) {
            out.owned_addresses(view, zone, &owner);
        }
    }
    for port in import.ports.iter().filter(|p| !p.name.is_empty()) {
        let (port_label, protocol) = (
            format!("_{}", port.name),
            format!("_{}", port.protocol.srv_label()),
        );
        let labels = [&*port_label, &*protocol].into_iter();
        if let Some(owner) =
            below_labels(labels.chain(answer::import_labels(key, None)), clusterset)
        {
            out.owned(view, zone, &owner, RecordType::SRV);
        }
    }
}

fn address_type(ip: IpAddr) -> RecordType {
    match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

/// `labels` (leftmost first) below the zone; `None` if too long for a name.
fn below<S: AsRef<str>>(zone: &Zone, labels: &[S]) -> Option<Name> {
    below_labels(labels.iter().map(AsRef::as_ref), &zone.origin)
}

/// `labels` (leftmost first) below `apex`; `None` if too long for a name.
fn below_labels<'l>(labels: impl Iterator<Item = &'l str>, apex: &'l Name) -> Option<Name> {
    answer::name_below(labels.map(str::as_bytes), apex)
}
