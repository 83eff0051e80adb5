//! Parsing a lower-case question name into what it asks for in the Kubernetes DNS schema,
//! without allocating: the parts borrow the name's labels.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

use crate::dns::zone::Zone;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReverseZone {
    V4,
    V6,
}

/// The shape of a question name; whether the named thing exists is decided later, by the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Question<'a> {
    /// Neither in the zone nor in a reverse zone.
    OutOfZone,
    /// In the zone, but no name of this shape can exist.
    NoSuchName,
    /// `<zone>`
    Apex,
    /// `svc.<zone>`
    Services,
    /// `<ns>.svc.<zone>`
    Namespace(&'a str),
    /// `<svc>.<ns>.svc.<zone>`
    Service { namespace: &'a str, name: &'a str },
    /// `<label>.<svc>.<ns>.svc.<zone>`: a pod's hostname or dashed IP.
    Endpoint {
        namespace: &'a str,
        service: &'a str,
        label: &'a str,
    },
    /// `_<proto>.<svc>.<ns>.svc.<zone>` (the parent of SRV names).
    SrvProtocol {
        namespace: &'a str,
        service: &'a str,
        protocol: &'a str,
    },
    /// `_<port>._<proto>.<svc>.<ns>.svc.<zone>`
    Srv {
        namespace: &'a str,
        service: &'a str,
        port: &'a str,
        protocol: &'a str,
    },
    /// `pod.<zone>`
    Pods,
    /// `<ns>.pod.<zone>`
    PodNamespace(&'a str),
    /// `<a-b-c-d>.<ns>.pod.<zone>`
    PodAddress { namespace: &'a str, label: &'a str },
    /// `dns.<zone>`
    Dns,
    /// `ns.dns.<zone>`: the SOA's and NS record's name server.
    Nameserver,
    /// `dns-version.<zone>`
    Version,
    /// `in-addr.arpa.` or `ip6.arpa.`
    ReverseApex(ReverseZone),
    /// A complete reverse name: one address.
    Reverse(IpAddr, ReverseZone),
    /// Any other name in a reverse zone.
    ReverseOther(ReverseZone),
    /// A name in the clusterset zone (Multi-Cluster Services).
    Clusterset(SetQuestion<'a>),
}

/// The shape of a name in the clusterset zone, as the MCS DNS specification names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetQuestion<'a> {
    /// In the zone, but no name of this shape can exist.
    NoSuchName,
    /// `<clusterset>`
    Apex,
    /// `svc.<clusterset>`
    Services,
    /// `<ns>.svc.<clusterset>`
    Namespace(&'a str),
    /// `<svc>.<ns>.svc.<clusterset>`: a ServiceImport.
    Import { namespace: &'a str, name: &'a str },
    /// `<cluster>.<svc>.<ns>.svc.<clusterset>`: the parent of one cluster's endpoint names.
    Cluster {
        namespace: &'a str,
        service: &'a str,
        cluster: &'a str,
    },
    /// `<hostname>.<cluster>.<svc>.<ns>.svc.<clusterset>`: one endpoint of a headless import.
    Endpoint {
        namespace: &'a str,
        service: &'a str,
        cluster: &'a str,
        label: &'a str,
    },
    /// `_<proto>.<svc>.<ns>.svc.<clusterset>`
    SrvProtocol {
        namespace: &'a str,
        service: &'a str,
        protocol: &'a str,
    },
    /// `_<port>._<proto>.<svc>.<ns>.svc.<clusterset>`
    Srv {
        namespace: &'a str,
        service: &'a str,
        port: &'a str,
        protocol: &'a str,
    },
    /// `dns-version.<clusterset>`
    Version,
}

/// The deepest name in the schema has five labels below the zone (`_port._proto.svc.ns.svc`).
const MAX_DEPTH: usize = 5;

/// A name of at most 255 wire bytes has at most 127 labels.
pub(crate) const MAX_LABELS: usize = 127;

const IN_ADDR_ARPA: [&[u8]; 2] = [b"in-addr", b"arpa"];

const IP6_ARPA: [&[u8]; 2] = [b"ip6", b"arpa"];

/// The labels of `name`, leftmost first and without the root, in `buffer`.
pub(crate) fn labels_of<'a, 'b>(
    name: &'a Name,
    buffer: &'b mut [&'a [u8]; MAX_LABELS],
) -> &'b [&'a [u8]] {
    let mut count = 0;
    for (slot, label) in buffer.iter_mut().zip(name.iter()) {
        *slot = label;
        count += 1;
    }
    &buffer[..count]
}

/// Classifies a lower-case question name, given as its labels (leftmost first, no root): both
/// hickory's parsed names and the UDP path's raw question bytes come down to these.
pub(crate) fn classify<'a>(zone: &Zone, labels: &[&'a [u8]]) -> Question<'a> {
    // The deeper zone first, should one hold the other (`clusterset.local` under `local`).
    let clusterset = zone.clusterset.as_ref();
    let first = clusterset.filter(|set| set.num_labels() >= zone.origin.num_labels());
    if let Some(below) = first.and_then(|set| below_origin(set, labels)) {
        return Question::Clusterset(classify_in_clusterset(below));
    }
    if let Some(below) = below_origin(&zone.origin, labels) {
        return classify_in_zone(below);
    }
    if let Some(below) = clusterset.and_then(|set| below_origin(set, labels)) {
        return Question::Clusterset(classify_in_clusterset(below));
    }
    if labels.ends_with(&IN_ADDR_ARPA) {
        return classify_reverse(&labels[..labels.len() - 2], ReverseZone::V4);
    }
    if labels.ends_with(&IP6_ARPA) {
        return classify_reverse(&labels[..labels.len() - 2], ReverseZone::V6);
    }
    Question::OutOfZone
}

/// The labels of `labels` below `origin`, if it is in that zone.
fn below_origin<'l, 'a>(origin: &Name, labels: &'l [&'a [u8]]) -> Option<&'l [&'a [u8]]> {
    let depth = labels.len().checked_sub(usize::from(origin.num_labels()))?;
    let inside = labels[depth..]
        .iter()
        .zip(origin.iter())
        .all(|(a, b)| *a == b);
    inside.then(|| &labels[..depth])
}

/// The labels below a zone from the zone outwards (`rel[0]` is the one just below it), in
/// `rel`; `None` past the deepest name of the schema or for a label that is not UTF-8.
fn outwards<'r, 'a>(
    below: &[&'a [u8]],
    rel: &'r mut [&'a str; MAX_DEPTH],
) -> Option<&'r [&'a str]> {
    let depth = below.len();
    if depth > MAX_DEPTH {
        return None;
    }
    for (i, label) in below.iter().enumerate() {
        rel[depth - 1 - i] = std::str::from_utf8(label).ok()?;
    }
    Some(&rel[..depth])
}

/// `below`: the labels below the clusterset zone, leftmost first.
fn classify_in_clusterset<'a>(below: &[&'a [u8]]) -> SetQuestion<'a> {
    let mut rel = [""; MAX_DEPTH];
    let Some(rel) = outwards(below, &mut rel) else {
        return SetQuestion::NoSuchName;
    };
    match *rel {
        [] => SetQuestion::Apex,
        ["svc"] => SetQuestion::Services,
        ["svc", ns] => SetQuestion::Namespace(ns),
        ["svc", namespace, name] => SetQuestion::Import { namespace, name },
        ["svc", namespace, service, label] => match label.strip_prefix('_') {
            Some(protocol) => SetQuestion::SrvProtocol {
                namespace,
                service,
                protocol,
            },
            None => SetQuestion::Cluster {
                namespace,
                service,
                cluster: label,
            },
        },
        ["svc", namespace, service, outer, inner] => {
            match (outer.strip_prefix('_'), inner.strip_prefix('_')) {
                (Some(protocol), Some(port)) => SetQuestion::Srv {
                    namespace,
                    service,
                    port,
                    protocol,
                },
                (None, None) => SetQuestion::Endpoint {
                    namespace,
                    service,
                    cluster: outer,
                    label: inner,
                },
                _ => SetQuestion::NoSuchName,
            }
        }
        ["dns-version"] => SetQuestion::Version,
        _ => SetQuestion::NoSuchName,
    }
}

/// `below`: the labels below the zone, leftmost first.
fn classify_in_zone<'a>(below: &[&'a [u8]]) -> Question<'a> {
    let mut rel = [""; MAX_DEPTH];
    let Some(rel) = outwards(below, &mut rel) else {
        return Question::NoSuchName;
    };
    match rel {
        [] => Question::Apex,
        ["svc"] => Question::Services,
        ["svc", ns] => Question::Namespace(ns),
        ["svc", ns, svc] => Question::Service {
            namespace: ns,
            name: svc,
        },
        ["svc", ns, svc, label] => match label.strip_prefix('_') {
            Some(protocol) => Question::SrvProtocol {
                namespace: ns,
                service: svc,
                protocol,
            },
            None => Question::Endpoint {
                namespace: ns,
                service: svc,
                label,
            },
        },
        ["svc", ns, svc, protocol, port] => {
            match (protocol.strip_prefix('_'), port.strip_prefix('_')) {
                (Some(protocol), Some(port)) => Question::Srv {
                    namespace: ns,
                    service: svc,
                    port,
                    protocol,
                },
                _ => Question::NoSuchName,
            }
        }
        ["pod"] => Question::Pods,
        ["pod", ns] => Question::PodNamespace(ns),
        ["pod", ns, label] => Question::PodAddress {
            namespace: ns,
            label,
        },
        ["dns"] => Question::Dns,
        ["dns", "ns"] => Question::Nameserver,
        ["dns-version"] => Question::Version,
        _ => Question::NoSuchName,
    }
}

/// `d.c.b.a.in-addr.arpa.` (exactly four decimal octets) or the 32 nibbles of an ip6.arpa name;
/// `below`: the labels below the reverse zone, leftmost first.
fn classify_reverse<'a>(below: &[&'a [u8]], zone: ReverseZone) -> Question<'a> {
    if below.is_empty() {
        return Question::ReverseApex(zone);
    }
    let ip = match zone {
        ReverseZone::V4 if below.len() == 4 => {
            let mut octets = [0u8; 4];
            let mut ok = true;
            for (i, label) in below.iter().enumerate() {
                match parse_octet(label) {
                    Some(octet) => octets[3 - i] = octet,
                    None => ok = false,
                }
            }
            ok.then(|| IpAddr::V4(Ipv4Addr::from(octets)))
        }
        ReverseZone::V6 if below.len() == 32 => {
            let mut value: u128 = 0;
            let mut ok = true;
            for (i, label) in below.iter().enumerate() {
                match label {
                    [digit] if digit.is_ascii_hexdigit() => {
                        let nibble = (*digit as char).to_digit(16).unwrap_or(0);
                        value |= u128::from(nibble) << (4 * i);
                    }
                    _ => ok = false,
                }
            }
            ok.then(|| IpAddr::V6(Ipv6Addr::from(value)))
        }
        _ => None,
    };
    match ip {
        Some(ip) => Question::Reverse(ip, zone),
        None => Question::ReverseOther(zone),
    }
}

/// A decimal octet in canonical form (`0`..`255`, no leading zeros).
fn parse_octet(label: &[u8]) -> Option<u8> {
    if label.is_empty() || label.len() > 3 || (label.len() > 1 && label[0] == b'0') {
        return None;
    }
    std::str::from_utf8(label).ok()?.parse().ok()
}
