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
    let origin = usize::from(zone.origin.num_labels());
    if let Some(depth) = labels.len().checked_sub(origin)
        && labels[depth..]
            .iter()
            .zip(zone.origin.iter())
            .all(|(a, b)| *a == b)
    {
        return classify_in_zone(&labels[..depth]);
    }
    if labels.ends_with(&IN_ADDR_ARPA) {
        return classify_reverse(&labels[..labels.len() - 2], ReverseZone::V4);
    }
    if labels.ends_with(&IP6_ARPA) {
        return classify_reverse(&labels[..labels.len() - 2], ReverseZone::V6);
    }
    Question::OutOfZone
}

/// `below`: the labels below the zone, leftmost first.
fn classify_in_zone<'a>(below: &[&'a [u8]]) -> Question<'a> {
    let depth = below.len();
    if depth > MAX_DEPTH {
        return Question::NoSuchName;
    }
    // Labels from the zone outwards: rel[0] is the one just below the zone.
    let mut rel = [""; MAX_DEPTH];
    for (i, label) in below.iter().enumerate() {
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
