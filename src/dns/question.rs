//! Parsing a lower-case question name into what it asks for in the Kubernetes DNS schema,
//! without allocating: the parts borrow the name's labels.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

use crate::dns::rules::Zone;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReverseZone {
    V4,
    V6,
}

/// The shape of a question name; whether the named thing exists is decided later, by the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question<'a> {
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
}

/// The deepest name in the schema has five labels below the zone (`_port._proto.svc.ns.svc`).
const MAX_DEPTH: usize = 5;

/// Classifies a lower-case question name.
pub fn classify<'a>(zone: &Zone, name: &'a Name) -> Question<'a> {
    if zone.origin.zone_of(name) {
        return classify_in_zone(name, name.num_labels() - zone.origin.num_labels());
    }
    if zone.in_addr_arpa().zone_of(name) {
        return classify_reverse(name, ReverseZone::V4);
    }
    if zone.ip6_arpa().zone_of(name) {
        return classify_reverse(name, ReverseZone::V6);
    }
    Question::OutOfZone
}

fn classify_in_zone(name: &Name, depth: u8) -> Question<'_> {
    let depth = usize::from(depth);
    if depth > MAX_DEPTH {
        return Question::NoSuchName;
    }
    // Labels from the zone outwards: rel[0] is the one just below the zone.
    let mut rel = [""; MAX_DEPTH];
    for (i, label) in name.iter().take(depth).enumerate() {
        match std::str::from_utf8(label) {
            Ok(label) => rel[depth - 1 - i] = label,
            Err(_) => return Question::NoSuchName,
        }
    }
    let rel = &rel[..depth];
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

/// `d.c.b.a.in-addr.arpa.` (exactly four decimal octets) or the 32 nibbles of an ip6.arpa name.
fn classify_reverse(name: &Name, zone: ReverseZone) -> Question<'_> {
    let depth = usize::from(name.num_labels()) - 2;
    if depth == 0 {
        return Question::ReverseApex(zone);
    }
    let ip = match zone {
        ReverseZone::V4 if depth == 4 => {
            let mut octets = [0u8; 4];
            let mut ok = true;
            for (i, label) in name.iter().take(4).enumerate() {
                match parse_octet(label) {
                    Some(octet) => octets[3 - i] = octet,
                    None => ok = false,
                }
            }
            ok.then(|| IpAddr::V4(Ipv4Addr::from(octets)))
        }
        ReverseZone::V6 if depth == 32 => {
            let mut value: u128 = 0;
            let mut ok = true;
            for (i, label) in name.iter().take(32).enumerate() {
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
