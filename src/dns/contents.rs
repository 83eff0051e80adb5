//! The zone's contents as records, for zone transfers: every name the view answers for and
//! what each holds. Each record comes from the rules' own answer to that name and type, so a
//! secondary that loads them answers as we do.
//!
//! The names are walked one Service or one address at a time, from keys collected up front, so
//! that a transfer of 100,000 pods holds a list of keys, never the whole zone as records.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

use crate::dns::rules::{self, Apex, PodRecords, Zone, dashed};
use crate::dns::view::View;
use crate::records::ServiceKind;

/// What one step of a walk covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The apex's SOA and NS, the name server's address, `dns-version`.
    Apex,
    Service {
        namespace: Box<str>,
        name: Box<str>,
    },
    /// `<a-b-c-d>.<ns>.pod.<zone>` for every namespace with a pod on the address.
    PodAddress(IpAddr),
    /// The PTR name of the address.
    Reverse(IpAddr),
}

/// The parts of the zone `apex`, in the order a transfer sends them.
pub fn parts(view: &View, zone: &Zone, apex: Apex) -> Vec<Part> {
    let mut parts = vec![Part::Apex];
    match apex {
        Apex::Zone => {
            parts.extend(view.service_keys().map(|(namespace, name)| Part::Service {
                namespace: namespace.into(),
                name: name.into(),
            }));
            // Insecure pod names answer for any address: they cannot be listed, so a
            // secondary does not have them.
            if zone.pod_records == PodRecords::Verified {
                parts.extend(view.pod_addresses().map(Part::PodAddress));
            }
        }
        Apex::InAddrArpa | Apex::Ip6Arpa => {
            let v4 = apex == Apex::InAddrArpa;
            parts.extend(
                view.service_addresses()
                    .filter(|ip| ip.is_ipv4() == v4)
                    .map(Part::Reverse),
            );
        }
    }
    parts
}

/// Appends the records of `part` of zone `apex` to `out` (the apex's SOA excepted: a transfer
/// puts it first and last).
pub fn records(view: &View, zone: &Zone, apex: Apex, part: &Part, out: &mut Vec<Record>) {
    match part {
        Part::Apex => {
            let origin = zone.apex(apex).clone();
            answers(view, zone, &origin, RecordType::NS, out);
            if apex == Apex::Zone {
                let nameserver = zone.nameserver().clone();
                answers(view, zone, &nameserver, RecordType::A, out);
                answers(view, zone, &nameserver, RecordType::AAAA, out);
                if let Ok(version) =
                    Name::from_ascii("dns-version").and_then(|n| n.append_domain(&zone.origin))
                {
                    answers(view, zone, &version, RecordType::TXT, out);
                }
            }
        }
        Part::Service { namespace, name } => service(view, zone, namespace, name, out),
        Part::PodAddress(ip) => {
            for namespace in view.pod_namespaces(*ip) {
                let labels = [dashed(*ip), namespace.to_owned(), "pod".to_owned()];
                if let Some(owner) = below(zone, &labels) {
                    answers(view, zone, &owner, address_type(*ip), out);
                }
            }
        }
        Part::Reverse(ip) => answers(view, zone, &Name::from(*ip), RecordType::PTR, out),
    }
}

/// The SOA of zone `apex`, which a transfer begins and ends with.
pub fn soa(view: &View, zone: &Zone, apex: Apex) -> Option<Record> {
    let mut out = Vec::new();
    answers(view, zone, zone.apex(apex), RecordType::SOA, &mut out);
    out.pop()
}

/// Every name of one Service: its own (addresses or CNAME, SRV), its endpoints', its ports'.
fn service(view: &View, zone: &Zone, namespace: &str, name: &str, out: &mut Vec<Record>) {
    let Some(service) = view.service(namespace, name) else {
        return;
    };
    let Some(owner) = below(zone, &[name, namespace, "svc"]) else {
        return;
    };
    if let ServiceKind::ExternalName(_) = service.kind {
        answers(view, zone, &owner, RecordType::CNAME, out);
        return;
    }
    for rtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
        answers(view, zone, &owner, rtype, out);
    }
    for endpoint in service.endpoints.iter() {
        if let Some(owner) = below(zone, &[&endpoint.label, name, namespace, "svc"]) {
            answers(view, zone, &owner, RecordType::A, out);
            answers(view, zone, &owner, RecordType::AAAA, out);
        }
    }
    for port in service.ports.iter().filter(|p| !p.name.is_empty()) {
        let (port_label, protocol) = (
            format!("_{}", port.name),
            format!("_{}", port.protocol.srv_label()),
        );
        if let Some(owner) = below(zone, &[&port_label, &protocol, name, namespace, "svc"]) {
            answers(view, zone, &owner, RecordType::SRV, out);
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
    Name::from_labels(labels.iter().map(|l| l.as_ref().as_bytes()))
        .and_then(|name| name.append_domain(&zone.origin))
        .ok()
}

/// The records of type `rtype` the rules answer at `name` with (owned by `name` itself: not
/// the targets of a CNAME followed).
fn answers(view: &View, zone: &Zone, name: &Name, rtype: RecordType, out: &mut Vec<Record>) {
    let reply = rules::answer(view, zone, &name.to_lowercase(), name, rtype, DNSClass::IN);
    if reply.rcode == ResponseCode::NoError {
        out.extend(
            reply
                .answers
                .into_iter()
                .filter(|r| r.record_type() == rtype && r.name == *name),
        );
    }
}
