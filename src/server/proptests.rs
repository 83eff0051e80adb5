//! Property test of the wire writer: for random questions over random clusters, over UDP and
//! TCP, with and without EDNS and its options, the writer answers, and its bytes are exactly
//! those of hickory's parser and encoder ([`Handler::respond`]) — answers of every type,
//! NXDOMAIN, NODATA, refusals, and UDP answers cut to the client's limit at a rotating start.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::cluster::proptests::{ADDRESSES, NAMESPACES, object};
use crate::cluster::{ClusterEvent, ClusterState};
use crate::dns::view::SharedView;
use crate::dns::zone::{PodRecords, Zone, dashed};
use crate::records::{
    ClusterObject, Labels, ObjectKey, ObjectKind, PodHostname, PodRecord, PodTemplate, ServiceKind,
    ServiceRecord,
};
use crate::server::handler::Handler;

/// A headless Service `big` in namespace `a` with `pods` Ready pods, some dual-stack: answers
/// large enough to be cut at every limit.
fn big_service(pods: usize, dual_every: usize) -> Vec<ClusterObject> {
    let mut objects = vec![ClusterObject::Service(ServiceRecord {
        key: ObjectKey::new("a", "big"),
        kind: ServiceKind::Headless,
        selector: Some(Labels::new([("app".to_string(), "big".to_string())])),
        ports: Arc::new([]),
        publish_not_ready_addresses: false,
        families: Default::default(),
    })];
    for i in 0..pods {
        let mut ips = vec![format!("10.1.{}.{}", i / 250, i % 250 + 1).parse().unwrap()];
        if dual_every > 0 && i % dual_every == 0 {
            ips.push(format!("fd00:1::{:x}", i + 1).parse().unwrap());
        }
        objects.push(ClusterObject::Pod {
            namespace: "a".into(),
            pod: PodRecord {
                name: format!("big-{i}").into(),
                ips: ips.into(),
                template: Arc::new(PodTemplate {
                    labels: Labels::new([("app".to_string(), "big".to_string())]),
                    hostname: PodHostname::None,
                    subdomain: None,
                    named_ports: Box::new([]),
                    statefulset: None,
                }),
                ready: true,
                terminating: false,
                finished: false,
            },
        });
    }
    objects
}

/// Names a cluster of the generators may hold, and some it cannot.
fn qname() -> impl Strategy<Value = String> {
    let label = prop_oneof![
        prop::sample::select(&["s0", "s1", "s2", "s3", "big", "h0", "h1", "p0", "p1", "p5"][..])
            .prop_map(String::from),
        prop::sample::select(&ADDRESSES[..]).prop_map(|ip| dashed(ip.parse().unwrap())),
        "[a-z0-9-]{1,8}",
    ];
    let namespace = || prop::sample::select(&NAMESPACES[..]);
    prop_oneof![
        // The Service whose answers are cut.
        3 => Just("big.a.svc.cluster.local.".to_string()),
        1 => (label.clone(), namespace()).prop_map(|(l, ns)| format!("{l}.{ns}.svc.cluster.local.")),
        1 => (label.clone(), label.clone(), namespace())
            .prop_map(|(e, s, ns)| format!("{e}.{s}.{ns}.svc.cluster.local.")),
        1 => (label.clone(), namespace()).prop_map(|(l, ns)| format!("{l}.{ns}.pod.cluster.local.")),
        1 => (prop::sample::select(&["_http", "_dns", "_web", "_x"][..]), prop::sample::select(&["_tcp", "_udp"][..]), label.clone(), namespace())
            .prop_map(|(p, proto, s, ns)| format!("{p}.{proto}.{s}.{ns}.svc.cluster.local.")),
        1 => namespace().prop_map(|ns| format!("{ns}.svc.cluster.local.")),
        // The clusterset zone: imports, clusters' endpoints, SRV names.
        1 => (label.clone(), namespace()).prop_map(|(l, ns)| format!("{l}.{ns}.svc.clusterset.local.")),
        1 => (label.clone(), prop::sample::select(&["c0", "c1", "c2"][..]), label.clone(), namespace())
            .prop_map(|(e, c, s, ns)| format!("{e}.{c}.{s}.{ns}.svc.clusterset.local.")),
        1 => (prop::sample::select(&["_web", "_x"][..]), prop::sample::select(&["_tcp", "_udp"][..]), label.clone(), namespace())
            .prop_map(|(p, proto, s, ns)| format!("{p}.{proto}.{s}.{ns}.svc.clusterset.local.")),
        1 => prop::sample::select(&ADDRESSES[..]).prop_map(|ip| {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            Name::from(ip).to_string()
        }),
        1 => prop::sample::select(
            &[
                "cluster.local.",
                "ns.dns.cluster.local.",
                "dns-version.cluster.local.",
                "svc.cluster.local.",
                "example.com.",
                "a.b.c.d.e.f.cluster.local.",
                "clusterset.local.",
                "dns-version.clusterset.local.",
                "svc.clusterset.local.",
            ][..]
        )
        .prop_map(String::from),
    ]
}

/// `name` with the case of some letters flipped: answers keep the question's case.
fn recase(name: &str, flips: &[bool]) -> String {
    name.chars()
        .zip(flips.iter().cycle())
        .map(|(c, &flip)| if flip { c.to_ascii_uppercase() } else { c })
        .collect()
}

fn qtype() -> impl Strategy<Value = RecordType> {
    prop::sample::select(
        &[
            RecordType::A,
            RecordType::AAAA,
            RecordType::ANY,
            RecordType::SRV,
            RecordType::PTR,
            RecordType::TXT,
            RecordType::SOA,
            RecordType::NS,
            RecordType::MX,
            RecordType::CNAME,
        ][..],
    )
}

fn handler(objects: Vec<ClusterObject>) -> Handler {
    let mut state = ClusterState::new(77);
    state.apply(ClusterEvent::Resync {
        kinds: ObjectKind::ALL.to_vec(),
        namespace: None,
        objects,
    });
    state.apply(ClusterEvent::Synced);
    let view = SharedView::new(state.publish().expect("a synced state publishes"));
    let zone = Zone::new("cluster.local", 5, PodRecords::Verified, None).unwrap();
    Handler::new(view, Arc::new(zone))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn the_direct_writer_answers_exactly_as_hickory(
        objects in vec(object(), 0..25),
        big in 0..90usize,
        dual_every in 0..4usize,
        questions in vec(
            (qname(), vec(any::<bool>(), 1..8), qtype(),
             prop::option::of((prop::sample::select(&[0u16, 512, 600, 900, 1232, 4096][..]), any::<bool>())),
             any::<u16>(), any::<bool>(), any::<bool>(), any::<bool>(),
             vec((prop::sample::select(&[10u16, 11, 12, 15, 65001][..]), vec(any::<u8>(), 0..40)), 0..3)),
            1..40,
        ),
    ) {
        let mut objects = objects;
        objects.extend(big_service(big, dual_every));
        // Keep one object per identity, as a cluster has.
        let mut seen = std::collections::BTreeSet::new();
        objects.retain(|o| seen.insert((o.kind(), o.namespace().to_string(), o.name().to_string())));
        let handler = handler(objects);
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        for (name, flips, qtype, edns, id, rd, cd, tcp, options) in questions {
            let Ok(name) = Name::from_ascii(recase(&name, &flips)) else { continue };
            let mut message = Message::new(id, MessageType::Query, OpCode::Query);
            message.metadata.recursion_desired = rd;
            message.metadata.checking_disabled = cd;
            message.add_query(Query::query(name, qtype));
            if let Some((size, dnssec_ok)) = edns {
                let mut opt = Edns::new();
                opt.set_max_payload(size).set_dnssec_ok(dnssec_ok);
                // Options a client may send: the writer and hickory ignore them alike.
                for (code, data) in &options {
                    opt.options_mut().insert(EdnsOption::Unknown(*code, data.clone()));
                }
                message.set_edns(opt);
            }
            let Ok(query) = message.to_vec() else { continue };
            let protocol = if tcp { Protocol::Tcp } else { Protocol::Udp };
            let mut general = Vec::new();
            prop_assert!(handler.respond(&query, src, protocol, &mut general));
            let limit = match (tcp, edns) {
                (true, _) => usize::from(u16::MAX),
                (false, edns) => edns.map_or(512, |(size, _)| usize::from(size.clamp(512, 1232))),
            };
            prop_assert!(general.len() <= limit, "{} bytes over {limit}", general.len());
            let mut direct = Vec::new();
            prop_assert!(
                handler.answer_directly(&query, protocol, &mut direct),
                "the writer declined {:?}", message.queries
            );
            prop_assert_eq!(&direct, &general, "{:?} over {:?}", message.queries, protocol);
        }
    }
}
