//! Table-driven tests of the DNS rules — which pods back a Service, what each question gets,
//! and why an answer is empty: `(qname, qtype) → (rcode, answers, authority)` and `(qname,
//! qtype) → reason` over a small cluster built from plain records.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

use crate::cluster::{ClusterEvent, ClusterState};
use crate::dns::answer::{MAX_CNAME_CHAIN, Reply, answer};
use crate::dns::explain;
use crate::dns::view::View;
use crate::dns::zone::{EndpointNames, PodRecords, Scope, Zone, dashed, parse_dashed};
use crate::records::*;

fn ips(list: &[&str]) -> Box<[IpAddr]> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn port(name: &str, protocol: Protocol, number: u16, target: TargetPort) -> ServicePort {
    ServicePort {
        name: name.into(),
        protocol,
        port: number,
        target,
    }
}

fn service(ns: &str, name: &str, kind: ServiceKind, selector: Option<&[(&str, &str)]>) -> ServiceRecord {
    ServiceRecord {
        key: ObjectKey::new(ns, name),
        kind,
        selector: selector.map(labels),
        ports: Arc::new([]),
        publish_not_ready_addresses: false,
        families: IpFamilies::BOTH,
    }
}

fn pod(name: &str, app: &str, addresses: &[&str]) -> PodRecord {
    PodRecord {
        name: name.into(),
        ips: ips(addresses).into_vec().into(),
        template: Arc::new(PodTemplate {
            labels: labels(&[("app", app)]),
            ..PodTemplate::default()
        }),
        ready: true,
        terminating: false,
        finished: false,
    }
}

fn with_hostname(mut pod: PodRecord, hostname: &str, subdomain: &str) -> PodRecord {
    let naming = Arc::make_mut(&mut pod.template);
    naming.hostname = PodHostname::of(&pod.name, Some(hostname));
    naming.subdomain = Some(subdomain.into());
    pod
}

fn placed(namespace: &str, pod: PodRecord) -> ClusterObject {
    ClusterObject::Pod { namespace: namespace.into(), pod }
}

/// The cluster every table runs against.
fn cluster() -> Vec<ClusterObject> {
    let web_port = port("web", Protocol::Tcp, 80, TargetPort::Number(80));
    let mut nginx = service("default", "nginx-svc", ServiceKind::Headless, Some(&[("app", "nginx")]));
    nginx.ports = Arc::new([web_port]);
    let mut api = service(
        "default",
        "api",
        ServiceKind::ClusterIp(ips(&["10.96.0.20", "fd00::20"])),
        Some(&[("app", "api")]),
    );
    api.ports = Arc::new([
        port("http", Protocol::Tcp, 8080, TargetPort::Name("http".into())),
        port("dns", Protocol::Udp, 53, TargetPort::Number(5353)),
    ]);
    let mut slow = service("default", "slow", ServiceKind::Headless, Some(&[("app", "slow")]));
    slow.publish_not_ready_addresses = true;
    let mut named = service("default", "named", ServiceKind::Headless, Some(&[("app", "named")]));
    named.ports = Arc::new([port("grpc", Protocol::Tcp, 50051, TargetPort::Name("grpc".into()))]);
    let mut named_pod = pod("named-a", "named", &["10.244.7.1"]);
    Arc::make_mut(&mut named_pod.template).named_ports = Box::new([ContainerPort {
        name: "grpc".into(),
        protocol: Protocol::Tcp,
        port: 9000,
    }]);
    let mut not_ready = with_hostname(pod("web-2", "nginx", &["10.244.1.12"]), "web-2", "nginx-svc");
    not_ready.ready = false;
    let mut terminating = with_hostname(pod("web-3", "nginx", &["10.244.1.13"]), "web-3", "nginx-svc");
    terminating.terminating = true;
    let mut finished = with_hostname(pod("web-4", "nginx", &["10.244.1.14"]), "web-4", "nginx-svc");
    finished.finished = true;
    let mut slow_pod = pod("slow-0", "slow", &["10.244.5.1"]);
    slow_pod.ready = false;
    vec![
        ClusterObject::Namespace("empty-ns".into()),
        ClusterObject::Service(nginx),
        ClusterObject::Service(api),
        ClusterObject::Service(slow),
        ClusterObject::Service(named),
        ClusterObject::Service(service("default", "empty-svc", ServiceKind::Headless, Some(&[("app", "none")]))),
        ClusterObject::Service(service("default", "manual", ServiceKind::Headless, None)),
        ClusterObject::Service(service("default", "dual", ServiceKind::Headless, Some(&[("app", "dual")]))),
        ClusterObject::Service(service(
            "default",
            "db",
            ServiceKind::ExternalName(Box::new(Name::from_ascii("db.example.com.").unwrap())),
            None,
        )),
        placed("default", with_hostname(pod("web-0", "nginx", &["10.244.1.10"]), "web-0", "nginx-svc")),
        placed("default", with_hostname(pod("web-1", "nginx", &["10.244.2.11"]), "web-1", "nginx-svc")),
        // A hostname whose subdomain is another Service's: it gets a dashed name here.
        placed("default", with_hostname(pod("other-sub", "nginx", &["10.244.3.5"]), "x", "elsewhere")),
        placed("default", not_ready),
        placed("default", terminating),
        placed("default", finished),
        placed("default", slow_pod),
        placed("default", named_pod),
        placed("default", pod("api-1", "api", &["10.244.4.1"])),
        placed("default", pod("dual-a", "dual", &["10.244.6.1", "fd00:244::6:1"])),
        placed("default", with_hostname(
            pod("dual-b", "dual", &["10.244.6.2", "fd00:244::6:2"]),
            "dual-b",
            "dual",
        )),
        placed("other", pod("solo", "solo", &["10.244.9.9"])),
    ]
}

fn view_of(objects: Vec<ClusterObject>) -> View {
    view_named(objects, EndpointNames::Hostname)
}

fn view_named(objects: Vec<ClusterObject>, names: EndpointNames) -> View {
    let mut state = ClusterState::new(100).with_endpoint_names(names);
    state.apply(ClusterEvent::Resync { kinds: ObjectKind::ALL.to_vec(), namespace: None, objects });
    state.apply(ClusterEvent::Synced);
    state.publish().expect("a resync publishes")
}

fn zone(pod_records: PodRecords) -> Zone {
    Zone::new("cluster.local", 5, pod_records, Some("127.0.0.1".parse().unwrap())).unwrap()
}

fn render(record: &Record) -> String {
    format!("{} {} {}", record.name, record.record_type(), record.data)
}

fn ask(view: &View, zone: &Zone, qname: &str, qtype: RecordType) -> Reply {
    let asked = Name::from_ascii(qname).unwrap();
    answer(view, zone, &asked.to_lowercase(), &asked, qtype, DNSClass::IN)
}

struct Row {
    qname: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    answers: &'static [&'static str],
    /// Owner and type of each authority record.
    authority: &'static [&'static str],
}

const NOERROR: ResponseCode = ResponseCode::NoError;
const NXDOMAIN: ResponseCode = ResponseCode::NXDomain;
const SOA_ZONE: &[&str] = &["cluster.local. SOA"];
use RecordType::{A, AAAA, ANY, CNAME, NS, PTR, SOA, SRV, TXT};

fn check(view: &View, zone: &Zone, rows: &[Row]) {
    for row in rows {
        let reply = ask(view, zone, row.qname, row.qtype);
        let mut answers: Vec<String> = reply.answers.iter().map(render).collect();
        answers.sort();
        let mut expected: Vec<String> = row.answers.iter().map(|s| s.to_string()).collect();
        expected.sort();
        let authority: Vec<String> = reply
            .authority
            .iter()
            .map(|r| format!("{} {}", r.name, r.record_type()))
            .collect();
        let context = format!("{} {}", row.qname, row.qtype);
        assert_eq!(reply.rcode, row.rcode, "rcode of {context}");
        assert_eq!(answers, expected, "answers of {context}");
        assert_eq!(authority, row.authority, "authority of {context}");
        assert!(reply.authoritative, "{context} must be authoritative");
    }
}

#[test]
fn headless_service_names_list_ready_backing_pods() {
    let view = view_of(cluster());
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "nginx-svc.default.svc.cluster.local. A 10.244.1.10",
            "nginx-svc.default.svc.cluster.local. A 10.244.2.11",
            "nginx-svc.default.svc.cluster.local. A 10.244.3.5",
        ], authority: &[] },
        // The name exists, it has no IPv6 addresses: NODATA.
        Row { qname: "nginx-svc.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "nginx-svc.default.svc.cluster.local.", qtype: TXT, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "empty-svc.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "manual.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "slow.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "slow.default.svc.cluster.local. A 10.244.5.1",
        ], authority: &[] },
        Row { qname: "dual.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "dual.default.svc.cluster.local. A 10.244.6.1",
            "dual.default.svc.cluster.local. A 10.244.6.2",
        ], authority: &[] },
        Row { qname: "dual.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "dual.default.svc.cluster.local. AAAA fd00:244::6:1",
            "dual.default.svc.cluster.local. AAAA fd00:244::6:2",
        ], authority: &[] },
    ]);
}

#[test]
fn pod_names_under_headless_services() {
    let view = view_of(cluster());
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "web-0.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "web-0.nginx-svc.default.svc.cluster.local. A 10.244.1.10",
        ], authority: &[] },
        Row { qname: "web-0.nginx-svc.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        // Not Ready, terminating, finished: not in DNS.
        Row { qname: "web-2.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "web-3.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "web-4.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        // A pod whose subdomain names another Service gets its dashed IP, not its hostname.
        Row { qname: "10-244-3-5.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "10-244-3-5.nginx-svc.default.svc.cluster.local. A 10.244.3.5",
        ], authority: &[] },
        Row { qname: "x.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        // A pod with a hostname is not also reachable by its dashed IP.
        Row { qname: "10-244-1-10.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        // Dual-stack: one dashed name per address, the hostname name carries both.
        Row { qname: "fd00-244--6-1.dual.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "fd00-244--6-1.dual.default.svc.cluster.local. AAAA fd00:244::6:1",
        ], authority: &[] },
        Row { qname: "10-244-6-1.dual.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "10-244-6-1.dual.default.svc.cluster.local. A 10.244.6.1",
        ], authority: &[] },
        Row { qname: "dual-b.dual.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "dual-b.dual.default.svc.cluster.local. AAAA fd00:244::6:2",
        ], authority: &[] },
        // ClusterIP Services name their endpoints too.
        Row { qname: "10-244-4-1.api.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "10-244-4-1.api.default.svc.cluster.local. A 10.244.4.1",
        ], authority: &[] },
        Row { qname: "10-244-4-2.api.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "a.b.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
}

#[test]
fn cluster_ip_and_external_name_services() {
    let view = view_of(cluster());
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "api.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "api.default.svc.cluster.local. A 10.96.0.20",
        ], authority: &[] },
        Row { qname: "api.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "api.default.svc.cluster.local. AAAA fd00::20",
        ], authority: &[] },
        Row { qname: "api.default.svc.cluster.local.", qtype: ANY, rcode: NOERROR, answers: &[
            "api.default.svc.cluster.local. A 10.96.0.20",
            "api.default.svc.cluster.local. AAAA fd00::20",
        ], authority: &[] },
        Row { qname: "db.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "db.default.svc.cluster.local. CNAME db.example.com.",
        ], authority: &[] },
        Row { qname: "db.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "db.default.svc.cluster.local. CNAME db.example.com.",
        ], authority: &[] },
        Row { qname: "db.default.svc.cluster.local.", qtype: CNAME, rcode: NOERROR, answers: &[
            "db.default.svc.cluster.local. CNAME db.example.com.",
        ], authority: &[] },
        Row { qname: "_http._tcp.db.default.svc.cluster.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "missing.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
}

#[test]
fn srv_records_for_named_ports() {
    let view = view_of(cluster());
    let zone = zone(PodRecords::Verified);
    check(&view, &zone, &[
        Row { qname: "_http._tcp.api.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_http._tcp.api.default.svc.cluster.local. SRV 0 100 8080 api.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "_dns._udp.api.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_dns._udp.api.default.svc.cluster.local. SRV 0 100 53 api.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "_web._tcp.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_web._tcp.nginx-svc.default.svc.cluster.local. SRV 0 33 80 10-244-3-5.nginx-svc.default.svc.cluster.local.",
            "_web._tcp.nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-0.nginx-svc.default.svc.cluster.local.",
            "_web._tcp.nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-1.nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        // Headless SRV ports are the pods' ports: a named targetPort resolves per pod.
        Row { qname: "_grpc._tcp.named.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_grpc._tcp.named.default.svc.cluster.local. SRV 0 100 9000 10-244-7-1.named.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "_web._tcp.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "_web._udp.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "_nope._tcp.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "_WEB._TCP.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_WEB._TCP.nginx-svc.default.svc.cluster.local. SRV 0 33 80 10-244-3-5.nginx-svc.default.svc.cluster.local.",
            "_WEB._TCP.nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-0.nginx-svc.default.svc.cluster.local.",
            "_WEB._TCP.nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-1.nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        // The protocol level exists (NODATA) when the Service has a port of that protocol.
        Row { qname: "_tcp.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "_udp.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "_web.x._tcp.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
    // Target addresses ride along in the additional section.
    let reply = ask(&view, &zone, "_web._tcp.nginx-svc.default.svc.cluster.local.", SRV);
    let mut additionals: Vec<String> = reply.additionals.iter().map(render).collect();
    additionals.sort();
    assert_eq!(additionals, [
        "10-244-3-5.nginx-svc.default.svc.cluster.local. A 10.244.3.5",
        "web-0.nginx-svc.default.svc.cluster.local. A 10.244.1.10",
        "web-1.nginx-svc.default.svc.cluster.local. A 10.244.2.11",
    ]);
    let reply = ask(&view, &zone, "_http._tcp.api.default.svc.cluster.local.", SRV);
    let additionals: Vec<String> = reply.additionals.iter().map(render).collect();
    assert_eq!(additionals, [
        "api.default.svc.cluster.local. A 10.96.0.20",
        "api.default.svc.cluster.local. AAAA fd00::20",
    ]);
}

#[test]
fn reverse_lookups() {
    let view = view_of(cluster());
    const SOA_V4: &[&str] = &["in-addr.arpa. SOA"];
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "20.0.96.10.in-addr.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "20.0.96.10.in-addr.arpa. PTR api.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. PTR api.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "10.1.244.10.in-addr.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "10.1.244.10.in-addr.arpa. PTR web-0.nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "5.3.244.10.in-addr.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "5.3.244.10.in-addr.arpa. PTR 10-244-3-5.nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "10.1.244.10.in-addr.arpa.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_V4 },
        // A pod behind a ClusterIP Service is named under it.
        Row { qname: "1.4.244.10.in-addr.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "1.4.244.10.in-addr.arpa. PTR 10-244-4-1.api.default.svc.cluster.local.",
        ], authority: &[] },
        // Not-Ready pods, and pods that back no Service, have no reverse name.
        Row { qname: "12.1.244.10.in-addr.arpa.", qtype: PTR, rcode: NXDOMAIN, answers: &[], authority: SOA_V4 },
        Row { qname: "9.9.244.10.in-addr.arpa.", qtype: PTR, rcode: NXDOMAIN, answers: &[], authority: SOA_V4 },
        Row { qname: "244.10.in-addr.arpa.", qtype: PTR, rcode: NXDOMAIN, answers: &[], authority: SOA_V4 },
        Row { qname: "010.1.244.10.in-addr.arpa.", qtype: PTR, rcode: NXDOMAIN, answers: &[], authority: SOA_V4 },
        Row { qname: "in-addr.arpa.", qtype: SOA, rcode: NOERROR, answers: &[
            "in-addr.arpa. SOA ns.dns.cluster.local. hostmaster.cluster.local. 101 7200 1800 86400 5",
        ], authority: &[] },
    ]);
}

#[test]
fn pod_address_records_follow_the_mode() {
    let view = view_of(cluster());
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "10-244-9-9.other.pod.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "10-244-9-9.other.pod.cluster.local. A 10.244.9.9",
        ], authority: &[] },
        // Verified: the IP must belong to a pod of that namespace.
        Row { qname: "10-244-9-9.default.pod.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "1-2-3-4.other.pod.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "not-an-ip.other.pod.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "10-244-9-9.other.pod.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        // Not-Ready pods still have pod records; finished ones do not.
        Row { qname: "10-244-1-12.default.pod.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "10-244-1-12.default.pod.cluster.local. A 10.244.1.12",
        ], authority: &[] },
        Row { qname: "10-244-1-14.default.pod.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "fd00-244--6-1.default.pod.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "fd00-244--6-1.default.pod.cluster.local. AAAA fd00:244::6:1",
        ], authority: &[] },
        Row { qname: "other.pod.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "pod.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
    ]);
    check(&view, &zone(PodRecords::Insecure), &[
        Row { qname: "1-2-3-4.anywhere.pod.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "1-2-3-4.anywhere.pod.cluster.local. A 1.2.3.4",
        ], authority: &[] },
        Row { qname: "1-2-3.anywhere.pod.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
    check(&view, &zone(PodRecords::Disabled), &[
        Row { qname: "10-244-9-9.other.pod.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "pod.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
}

#[test]
fn zone_structure_names() {
    let view = view_of(cluster());
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "dns-version.cluster.local.", qtype: TXT, rcode: NOERROR, answers: &[
            "dns-version.cluster.local. TXT 1.1.0",
        ], authority: &[] },
        Row { qname: "dns-version.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "cluster.local.", qtype: SOA, rcode: NOERROR, answers: &[
            "cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 101 7200 1800 86400 5",
        ], authority: &[] },
        Row { qname: "cluster.local.", qtype: NS, rcode: NOERROR, answers: &[
            "cluster.local. NS ns.dns.cluster.local.",
        ], authority: &[] },
        Row { qname: "cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "ns.dns.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "ns.dns.cluster.local. A 127.0.0.1",
        ], authority: &[] },
        Row { qname: "svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        // A namespace exists through its Namespace object alone, or through its objects.
        Row { qname: "empty-ns.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "other.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "nowhere.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "nothing.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "a.b.c.d.e.f.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
}

#[test]
fn answers_keep_the_question_case() {
    let view = view_of(cluster());
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "WEB-0.Nginx-Svc.DEFAULT.svc.Cluster.Local.", qtype: A, rcode: NOERROR, answers: &[
            "WEB-0.Nginx-Svc.DEFAULT.svc.Cluster.Local. A 10.244.1.10",
        ], authority: &[] },
        Row { qname: "Nope.DEFAULT.svc.Cluster.Local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
}

#[test]
fn outside_the_zone_is_refused_without_authority() {
    let view = view_of(cluster());
    let zone = zone(PodRecords::Verified);
    for qname in ["example.com.", "local.", "cluster.local.example.com.", "."] {
        let reply = ask(&view, &zone, qname, A);
        assert_eq!(reply.rcode, ResponseCode::Refused, "{qname}");
        assert!(!reply.authoritative && reply.answers.is_empty() && reply.authority.is_empty());
    }
    let asked = Name::from_ascii("web-0.nginx-svc.default.svc.cluster.local.").unwrap();
    let chaos = answer(&view, &zone, &asked, &asked, A, DNSClass::CH);
    assert_eq!(chaos.rcode, ResponseCode::Refused);
    let transfer = ask(&view, &zone, "cluster.local.", RecordType::AXFR);
    assert_eq!(transfer.rcode, ResponseCode::Refused);
}

#[test]
fn nothing_is_denied_before_the_first_complete_state() {
    let mut state = ClusterState::new(7);
    state.apply(ClusterEvent::Resync { kinds: ObjectKind::ALL.to_vec(), namespace: None, objects: cluster() });
    let view = state.publish().unwrap();
    let reply = ask(&view, &zone(PodRecords::Verified), "missing.default.svc.cluster.local.", A);
    assert_eq!(reply.rcode, ResponseCode::ServFail);
    assert!(reply.authority.is_empty());
}

#[test]
fn other_zone_names_work_too() {
    let view = view_of(cluster());
    let zone = Zone::new("Example.Internal", 30, PodRecords::Verified, None).unwrap();
    let reply = ask(&view, &zone, "web-1.nginx-svc.default.svc.example.internal.", A);
    assert_eq!(reply.answers.iter().map(render).collect::<Vec<_>>(), [
        "web-1.nginx-svc.default.svc.example.internal. A 10.244.2.11",
    ]);
    assert_eq!(reply.answers[0].ttl, 30);
    let ns = ask(&view, &zone, "ns.dns.example.internal.", A);
    assert!(ns.answers.is_empty(), "no address to publish when listening on any");
    assert_eq!(ask(&view, &zone, "web-1.nginx-svc.default.svc.cluster.local.", A).rcode, ResponseCode::Refused);
}

#[test]
fn dashed_addresses_round_trip() {
    for ip in ["10.0.0.1", "255.255.255.255", "fd00::1", "::1", "2001:db8:0:1:2:3:4:5", "2001:db8::", "::"] {
        let ip: IpAddr = ip.parse().unwrap();
        let label = dashed(ip);
        assert_eq!(parse_dashed(&label), Some(ip), "{ip}");
        assert!(!label.starts_with('-') && !label.ends_with('-'), "{label}");
    }
    for (ip, label) in [
        ("2001:db8:3333:4444:5555:6666::", "2001-db8-3333-4444-5555-6666--0"),
        ("::ffff:0", "0--ffff-0"),
        ("::", "0--0"),
        ("fd00::1", "fd00--1"),
    ] {
        assert_eq!(dashed(ip.parse().unwrap()), label);
    }
    for bad in ["", "1-2-3", "1-2-3-4-5", "256-0-0-1", "a-b-c-d", "web-0", "01-2-3-4x", "---"] {
        assert_eq!(parse_dashed(bad), None, "{bad:?}");
    }
}

#[test]
fn a_pod_that_stops_being_ready_leaves_its_names() {
    let mut state = ClusterState::new(1);
    state.apply(ClusterEvent::Resync { kinds: ObjectKind::ALL.to_vec(), namespace: None, objects: cluster() });
    state.apply(ClusterEvent::Synced);
    let before = state.publish().unwrap();
    let mut web0 = with_hostname(pod("web-0", "nginx", &["10.244.1.10"]), "web-0", "nginx-svc");
    web0.ready = false;
    state.apply(ClusterEvent::Upsert(placed("default", web0)));
    let after = state.publish().unwrap();
    let zone = zone(PodRecords::Verified);
    assert!(after.serial() > before.serial());
    assert_eq!(ask(&after, &zone, "web-0.nginx-svc.default.svc.cluster.local.", A).rcode, ResponseCode::NXDomain);
    assert_eq!(ask(&after, &zone, "10.1.244.10.in-addr.arpa.", PTR).rcode, ResponseCode::NXDomain);
    // The snapshot taken before the change is untouched.
    assert_eq!(ask(&before, &zone, "web-0.nginx-svc.default.svc.cluster.local.", A).answers.len(), 1);
    // Deleting the Service removes every name under it, and nothing else.
    state.apply(ClusterEvent::Delete(ObjectKind::Service, ObjectKey::new("default", "nginx-svc")));
    let gone = state.publish().unwrap();
    assert_eq!(ask(&gone, &zone, "web-1.nginx-svc.default.svc.cluster.local.", A).rcode, ResponseCode::NXDomain);
    assert_eq!(ask(&gone, &zone, "10.2.244.10.in-addr.arpa.", PTR).rcode, ResponseCode::NXDomain);
    assert_eq!(ask(&gone, &zone, "api.default.svc.cluster.local.", A).answers.len(), 1);
    // Applying nothing publishes nothing.
    assert!(state.publish().is_none());
}

/// A pod's `<a-b-c-d>.<ns>.pod` record stays through a readiness change (which leaves the address
/// table alone), moves with a new address, and goes when the pod finishes.
#[test]
fn a_pods_address_record_follows_its_addresses() {
    let mut state = ClusterState::new(1);
    state.apply(ClusterEvent::Resync { kinds: ObjectKind::ALL.to_vec(), namespace: None, objects: cluster() });
    state.apply(ClusterEvent::Synced);
    let zone = zone(PodRecords::Verified);
    let mut change = |ip: &str, ready: bool, finished: bool| {
        let mut web0 = with_hostname(pod("web-0", "nginx", &[ip]), "web-0", "nginx-svc");
        (web0.ready, web0.finished) = (ready, finished);
        state.apply(ClusterEvent::Upsert(placed("default", web0)));
        state.publish().unwrap()
    };
    let answers = |view: &View, name: &str| ask(view, &zone, name, A).answers.len();
    let (old, new) = ("10-244-1-10.default.pod.cluster.local.", "10-244-1-99.default.pod.cluster.local.");
    let view = change("10.244.1.10", false, false);
    assert_eq!((answers(&view, old), answers(&view, new)), (1, 0));
    let view = change("10.244.1.99", true, false);
    assert_eq!((answers(&view, old), answers(&view, new)), (0, 1));
    assert_eq!(ask(&view, &zone, "web-0.nginx-svc.default.svc.cluster.local.", A).answers.len(), 1);
    let view = change("10.244.1.99", true, true);
    assert_eq!((answers(&view, old), answers(&view, new)), (0, 0));
    let view = change("10.244.1.99", false, false);
    assert_eq!((answers(&view, old), answers(&view, new)), (0, 1));
}

fn slice(name: &str, service: &str, endpoints: &[(&[&str], Option<&str>, bool)]) -> ClusterObject {
    ClusterObject::EndpointSlice(EndpointSliceRecord {
        key: ObjectKey::new("default", name),
        service: service.into(),
        cluster: None,
        ports: Box::new([SlicePort { name: "db".into(), protocol: Protocol::Tcp, port: 5432 }]),
        endpoints: endpoints
            .iter()
            .map(|(addresses, hostname, ready)| SliceEndpoint {
                addresses: ips(addresses).into_vec().into(),
                hostname: hostname.map(Into::into),
                target_name: None,
                ready: *ready,
            })
            .collect(),
    })
}

#[test]
fn selectorless_headless_services_take_their_endpoints_from_slices() {
    let mut manual = service("default", "manual", ServiceKind::Headless, None);
    manual.ports = Arc::new([port("db", Protocol::Tcp, 5432, TargetPort::Number(5432))]);
    let view = view_of(vec![
        ClusterObject::Service(manual),
        // Two slices, both families, one address listed twice, one endpoint not ready.
        slice("manual-v4", "manual", &[
            (&["192.168.10.1"], Some("db-0"), true),
            (&["192.168.10.2"], None, true),
            (&["192.168.10.3"], None, false),
        ]),
        slice("manual-v6", "manual", &[(&["fd00::a:1"], Some("db-0"), true), (&["192.168.10.2"], None, true)]),
        // A slice of a Service that has a selector is not used: its pods are.
        slice("nginx-extra", "nginx-svc", &[(&["192.168.99.1"], None, true)]),
    ]);
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "manual.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "manual.default.svc.cluster.local. A 192.168.10.1",
            "manual.default.svc.cluster.local. A 192.168.10.2",
        ], authority: &[] },
        Row { qname: "manual.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "manual.default.svc.cluster.local. AAAA fd00::a:1",
        ], authority: &[] },
        Row { qname: "db-0.manual.default.svc.cluster.local.", qtype: ANY, rcode: NOERROR, answers: &[
            "db-0.manual.default.svc.cluster.local. A 192.168.10.1",
            "db-0.manual.default.svc.cluster.local. AAAA fd00::a:1",
        ], authority: &[] },
        Row { qname: "192-168-10-3.manual.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "_db._tcp.manual.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_db._tcp.manual.default.svc.cluster.local. SRV 0 50 5432 192-168-10-2.manual.default.svc.cluster.local.",
            "_db._tcp.manual.default.svc.cluster.local. SRV 0 50 5432 db-0.manual.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "1.10.168.192.in-addr.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "1.10.168.192.in-addr.arpa. PTR db-0.manual.default.svc.cluster.local.",
        ], authority: &[] },
    ]);
}

/// The state of `cluster()`, synced and published.
fn synced_cluster() -> ClusterState {
    let mut state = ClusterState::new(1);
    state.apply(ClusterEvent::Resync { kinds: ObjectKind::ALL.to_vec(), namespace: None, objects: cluster() });
    state.apply(ClusterEvent::Synced);
    state.publish().unwrap();
    state
}

/// The pods of `cluster()` in `default`, but `lacking`.
fn default_pods_without(lacking: &str) -> Vec<ClusterObject> {
    cluster()
        .into_iter()
        .filter(|o| matches!(o, ClusterObject::Pod { namespace, pod } if &**namespace == "default" && &*pod.name != lacking))
        .collect()
}

#[test]
fn a_scoped_resync_replaces_one_namespace_and_keeps_the_rest() {
    let mut state = synced_cluster();
    // A re-list of pods in `default` that lacks web-1 (deleted while the watch was down).
    let pods = default_pods_without("web-1");
    state.apply(ClusterEvent::Resync { kinds: vec![ObjectKind::Pod], namespace: Some("default".into()), objects: pods });
    let view = state.publish().unwrap();
    let zone = zone(PodRecords::Verified);
    assert_eq!(ask(&view, &zone, "web-1.nginx-svc.default.svc.cluster.local.", A).rcode, ResponseCode::NXDomain);
    assert_eq!(ask(&view, &zone, "web-0.nginx-svc.default.svc.cluster.local.", A).answers.len(), 1);
    // Other namespaces and other kinds are untouched.
    assert_eq!(ask(&view, &zone, "10-244-9-9.other.pod.cluster.local.", A).answers.len(), 1);
    assert_eq!(ask(&view, &zone, "api.default.svc.cluster.local.", A).answers.len(), 1);
    assert_eq!(state.pod_count(), cluster().iter().filter(|o| matches!(o, ClusterObject::Pod { .. })).count() - 1);
}

/// A re-list in parts: objects are served as they arrive, nothing is removed until the list's
/// end, and a list that broke off removes nothing; a complete one removes what it lacked.
#[test]
fn a_resync_in_parts_removes_only_at_its_end() {
    let mut state = synced_cluster();
    let zone = zone(PodRecords::Verified);
    let (kind, namespace) = (ObjectKind::Pod, Some(Arc::<str>::from("default")));
    for complete in [false, true] {
        state.apply(ClusterEvent::ResyncBegin { kind, namespace: namespace.clone() });
        let mut pods = default_pods_without("web-1");
        let rest = pods.split_off(1);
        for part in [pods, rest] {
            state.apply(ClusterEvent::ResyncObjects { kind, namespace: namespace.clone(), objects: part });
            // Part way: web-1, which the list lacks, still answers.
            let view = state.publish().unwrap_or_else(|| state.view().clone());
            assert_eq!(ask(&view, &zone, "web-1.nginx-svc.default.svc.cluster.local.", A).answers.len(), 1);
        }
        state.apply(ClusterEvent::ResyncEnd { kind, namespace: namespace.clone(), complete });
        let view = state.publish().unwrap_or_else(|| state.view().clone());
        let web1 = ask(&view, &zone, "web-1.nginx-svc.default.svc.cluster.local.", A);
        if complete {
            assert_eq!(web1.rcode, ResponseCode::NXDomain);
        } else {
            assert_eq!(web1.answers.len(), 1, "a list that broke off removed web-1");
        }
        assert_eq!(ask(&view, &zone, "web-0.nginx-svc.default.svc.cluster.local.", A).answers.len(), 1);
        // Other namespaces and other kinds are untouched.
        assert_eq!(ask(&view, &zone, "10-244-9-9.other.pod.cluster.local.", A).answers.len(), 1);
        assert_eq!(ask(&view, &zone, "api.default.svc.cluster.local.", A).answers.len(), 1);
    }
    // An end without a beginning changes nothing.
    state.apply(ClusterEvent::ResyncEnd { kind: ObjectKind::Service, namespace: None, complete: true });
    assert!(state.service_count() > 0);
}

/// Endpoint labels made from IPv6 addresses that begin or end with `::` get a `0` there, in every
/// name they appear in: addresses, SRV targets, PTR.
#[test]
fn ipv6_endpoint_labels_are_valid_labels() {
    let mut v6 = service("default", "v6", ServiceKind::Headless, Some(&[("app", "v6")]));
    v6.ports = Arc::new([port("web", Protocol::Tcp, 80, TargetPort::Number(80))]);
    let view = view_of(vec![
        ClusterObject::Service(v6),
        placed("default", pod("v6-a", "v6", &["2001:db8:3333:4444:5555:6666::"])),
        placed("default", pod("v6-b", "v6", &["::a:1"])),
    ]);
    const END: &str = "2001-db8-3333-4444-5555-6666--0.v6.default.svc.cluster.local.";
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: END, qtype: AAAA, rcode: NOERROR, answers: &[
            "2001-db8-3333-4444-5555-6666--0.v6.default.svc.cluster.local. AAAA 2001:db8:3333:4444:5555:6666::",
        ], authority: &[] },
        Row { qname: "0--a-1.v6.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "0--a-1.v6.default.svc.cluster.local. AAAA ::a:1",
        ], authority: &[] },
        Row { qname: "2001-db8-3333-4444-5555-6666--.v6.default.svc.cluster.local.", qtype: AAAA, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "_web._tcp.v6.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_web._tcp.v6.default.svc.cluster.local. SRV 0 50 80 0--a-1.v6.default.svc.cluster.local.",
            "_web._tcp.v6.default.svc.cluster.local. SRV 0 50 80 2001-db8-3333-4444-5555-6666--0.v6.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "0.0.0.0.0.0.0.0.6.6.6.6.5.5.5.5.4.4.4.4.3.3.3.3.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "0.0.0.0.0.0.0.0.6.6.6.6.5.5.5.5.4.4.4.4.3.3.3.3.8.b.d.0.1.0.0.2.ip6.arpa. PTR 2001-db8-3333-4444-5555-6666--0.v6.default.svc.cluster.local.",
        ], authority: &[] },
        // The pod's own record takes either spelling: both read back as the address.
        Row { qname: "0--a-1.default.pod.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "0--a-1.default.pod.cluster.local. AAAA ::a:1",
        ], authority: &[] },
    ]);
}

/// ExternalName targets in the zone are followed there: the CNAME, then the target's answer
/// (its rcode, and the SOA when it has nothing of the type); other targets stay a lone CNAME.
#[test]
fn external_names_inside_the_zone_are_followed() {
    let external = |name: &str, target: &str| {
        ClusterObject::Service(service(
            "default",
            name,
            ServiceKind::ExternalName(Box::new(Name::from_ascii(target).unwrap())),
            None,
        ))
    };
    let mut objects = cluster();
    objects.extend([
        external("to-svc", "nginx-svc.default.svc.cluster.local."),
        external("to-pod", "Web-0.Nginx-Svc.default.svc.cluster.local."),
        external("to-clusterip", "api.default.svc.cluster.local."),
        external("to-missing", "missing.default.svc.cluster.local."),
        external("to-db", "db.default.svc.cluster.local."),
        external("loop-a", "loop-b.default.svc.cluster.local."),
        external("loop-b", "loop-a.default.svc.cluster.local."),
    ]);
    for i in 0..12 {
        objects.push(external(&format!("chain-{i}"), &format!("chain-{}.default.svc.cluster.local.", i + 1)));
    }
    objects.push(external("chain-12", "api.default.svc.cluster.local."));
    let view = view_of(objects);
    let zone = zone(PodRecords::Verified);
    check(&view, &zone, &[
        Row { qname: "to-svc.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "to-svc.default.svc.cluster.local. CNAME nginx-svc.default.svc.cluster.local.",
            "nginx-svc.default.svc.cluster.local. A 10.244.1.10",
            "nginx-svc.default.svc.cluster.local. A 10.244.2.11",
            "nginx-svc.default.svc.cluster.local. A 10.244.3.5",
        ], authority: &[] },
        // The target keeps the case it was given in.
        Row { qname: "to-pod.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "to-pod.default.svc.cluster.local. CNAME Web-0.Nginx-Svc.default.svc.cluster.local.",
            "Web-0.Nginx-Svc.default.svc.cluster.local. A 10.244.1.10",
        ], authority: &[] },
        Row { qname: "to-clusterip.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "to-clusterip.default.svc.cluster.local. CNAME api.default.svc.cluster.local.",
            "api.default.svc.cluster.local. AAAA fd00::20",
        ], authority: &[] },
        // The target has nothing of the type: NODATA after the CNAME.
        Row { qname: "to-svc.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "to-svc.default.svc.cluster.local. CNAME nginx-svc.default.svc.cluster.local.",
        ], authority: SOA_ZONE },
        // The target does not exist: NXDOMAIN with the CNAME (RFC 6604).
        Row { qname: "to-missing.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[
            "to-missing.default.svc.cluster.local. CNAME missing.default.svc.cluster.local.",
        ], authority: SOA_ZONE },
        // Through another ExternalName to one outside the zone: two CNAMEs, nothing more.
        Row { qname: "to-db.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "to-db.default.svc.cluster.local. CNAME db.default.svc.cluster.local.",
            "db.default.svc.cluster.local. CNAME db.example.com.",
        ], authority: &[] },
        // The CNAME itself is what CNAME and ANY ask for.
        Row { qname: "to-svc.default.svc.cluster.local.", qtype: CNAME, rcode: NOERROR, answers: &[
            "to-svc.default.svc.cluster.local. CNAME nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "to-svc.default.svc.cluster.local.", qtype: ANY, rcode: NOERROR, answers: &[
            "to-svc.default.svc.cluster.local. CNAME nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        // A loop ends where it comes back.
        Row { qname: "loop-a.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "loop-a.default.svc.cluster.local. CNAME loop-b.default.svc.cluster.local.",
            "loop-b.default.svc.cluster.local. CNAME loop-a.default.svc.cluster.local.",
        ], authority: &[] },
    ]);
    // A long chain ends after MAX_CNAME_CHAIN CNAMEs, without the target's addresses.
    let reply = ask(&view, &zone, "chain-0.default.svc.cluster.local.", A);
    assert_eq!(reply.rcode, NOERROR);
    assert_eq!(reply.answers.len(), MAX_CNAME_CHAIN);
    assert!(reply.answers.iter().all(|r| r.record_type() == CNAME));
    // Nine links end at the ClusterIP's address.
    let reply = ask(&view, &zone, "chain-5.default.svc.cluster.local.", A);
    assert_eq!(render(reply.answers.last().unwrap()), "chain-12.default.svc.cluster.local. CNAME api.default.svc.cluster.local.");
    let reply = ask(&view, &zone, "chain-6.default.svc.cluster.local.", A);
    assert_eq!(render(reply.answers.last().unwrap()), "api.default.svc.cluster.local. A 10.96.0.20");
    assert_eq!(reply.answers.len(), MAX_CNAME_CHAIN);
}

/// `--endpoint-names pod-name`: an endpoint without a hostname of its own takes its pod's name,
/// when that is a DNS label; a hostname still wins.
#[test]
fn endpoints_named_by_pod_name() {
    let mut objects = cluster();
    objects.push(placed("default", pod("api.dotted", "api", &["10.244.4.2"])));
    let mut manual = service("default", "manual2", ServiceKind::Headless, None);
    manual.ports = Arc::new([port("db", Protocol::Tcp, 5432, TargetPort::Number(5432))]);
    objects.push(ClusterObject::Service(manual));
    let mut slice = slice("manual2-a", "manual2", &[(&["192.168.20.1"], None, true), (&["192.168.20.2"], Some("db-1"), true)]);
    if let ClusterObject::EndpointSlice(slice) = &mut slice {
        slice.endpoints[0].target_name = Some("db-0".into());
        slice.endpoints[1].target_name = Some("ignored".into());
    }
    objects.push(slice);
    let by_pod = view_named(objects.clone(), EndpointNames::PodName);
    check(&by_pod, &zone(PodRecords::Verified), &[
        Row { qname: "api-1.api.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "api-1.api.default.svc.cluster.local. A 10.244.4.1",
        ], authority: &[] },
        Row { qname: "10-244-4-1.api.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        // A pod name that is not a label keeps the dashed name.
        Row { qname: "10-244-4-2.api.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "10-244-4-2.api.default.svc.cluster.local. A 10.244.4.2",
        ], authority: &[] },
        // A hostname under its own subdomain wins; under another Service's, the pod name serves.
        Row { qname: "web-0.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "web-0.nginx-svc.default.svc.cluster.local. A 10.244.1.10",
        ], authority: &[] },
        Row { qname: "other-sub.nginx-svc.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "other-sub.nginx-svc.default.svc.cluster.local. A 10.244.3.5",
        ], authority: &[] },
        // Dual stack: one name with both addresses.
        Row { qname: "dual-a.dual.default.svc.cluster.local.", qtype: ANY, rcode: NOERROR, answers: &[
            "dual-a.dual.default.svc.cluster.local. A 10.244.6.1",
            "dual-a.dual.default.svc.cluster.local. AAAA fd00:244::6:1",
        ], authority: &[] },
        Row { qname: "_web._tcp.nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_web._tcp.nginx-svc.default.svc.cluster.local. SRV 0 33 80 other-sub.nginx-svc.default.svc.cluster.local.",
            "_web._tcp.nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-0.nginx-svc.default.svc.cluster.local.",
            "_web._tcp.nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-1.nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "1.4.244.10.in-addr.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "1.4.244.10.in-addr.arpa. PTR api-1.api.default.svc.cluster.local.",
        ], authority: &[] },
        // Slices: the target's name, unless the endpoint has a hostname.
        Row { qname: "db-0.manual2.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "db-0.manual2.default.svc.cluster.local. A 192.168.20.1",
        ], authority: &[] },
        Row { qname: "db-1.manual2.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "db-1.manual2.default.svc.cluster.local. A 192.168.20.2",
        ], authority: &[] },
        Row { qname: "ignored.manual2.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
    ]);
    // The default names the same endpoints by address.
    let by_hostname = view_of(objects);
    check(&by_hostname, &zone(PodRecords::Verified), &[
        Row { qname: "api-1.api.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "192-168-20-1.manual2.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "192-168-20-1.manual2.default.svc.cluster.local. A 192.168.20.1",
        ], authority: &[] },
    ]);
}

/// A ClusterIP Service with selector-less EndpointSlices names their endpoints too; its own
/// name stays its cluster IP.
#[test]
fn selectorless_cluster_ip_services_name_their_slice_endpoints() {
    let mut manual = service("default", "legacy", ServiceKind::ClusterIp(ips(&["10.96.0.99"])), None);
    manual.ports = Arc::new([port("db", Protocol::Tcp, 5432, TargetPort::Number(5432))]);
    let view = view_of(vec![
        ClusterObject::Service(manual),
        slice("legacy-1", "legacy", &[(&["192.168.30.1"], None, true)]),
    ]);
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "legacy.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "legacy.default.svc.cluster.local. A 10.96.0.99",
        ], authority: &[] },
        Row { qname: "192-168-30-1.legacy.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "192-168-30-1.legacy.default.svc.cluster.local. A 192.168.30.1",
        ], authority: &[] },
        Row { qname: "_db._tcp.legacy.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_db._tcp.legacy.default.svc.cluster.local. SRV 0 100 5432 legacy.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "1.30.168.192.in-addr.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "1.30.168.192.in-addr.arpa. PTR 192-168-30-1.legacy.default.svc.cluster.local.",
        ], authority: &[] },
    ]);
}

/// A Service's endpoints are its pods' addresses of its own families (`spec.ipFamilies`): a
/// SingleStack headless Service over dual-stack pods has endpoints of one family, as its
/// EndpointSlices do.
#[test]
fn endpoints_are_of_the_services_families() {
    let mut v4 = service("default", "v4", ServiceKind::Headless, Some(&[("app", "dual")]));
    v4.families = IpFamilies { v4: true, v6: false };
    let mut v6 = service("default", "v6", ServiceKind::Headless, Some(&[("app", "dual")]));
    v6.families = IpFamilies { v4: false, v6: true };
    let mut only_v4 = service("default", "only-v4", ServiceKind::Headless, Some(&[("app", "nginx")]));
    only_v4.families = IpFamilies { v4: false, v6: true };
    let mut objects = cluster();
    objects.extend([ClusterObject::Service(v4), ClusterObject::Service(v6), ClusterObject::Service(only_v4)]);
    let view = view_of(objects);
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "v4.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[
            "v4.default.svc.cluster.local. A 10.244.6.1",
            "v4.default.svc.cluster.local. A 10.244.6.2",
        ], authority: &[] },
        Row { qname: "v4.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        Row { qname: "fd00-244--6-1.v4.default.svc.cluster.local.", qtype: AAAA, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "v6.default.svc.cluster.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "v6.default.svc.cluster.local. AAAA fd00:244::6:1",
            "v6.default.svc.cluster.local. AAAA fd00:244::6:2",
        ], authority: &[] },
        Row { qname: "v6.default.svc.cluster.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_ZONE },
        // A hostname under a one-family Service carries that family only.
        Row { qname: "dual-b.dual.default.svc.cluster.local.", qtype: ANY, rcode: NOERROR, answers: &[
            "dual-b.dual.default.svc.cluster.local. A 10.244.6.2",
            "dual-b.dual.default.svc.cluster.local. AAAA fd00:244::6:2",
        ], authority: &[] },
        // IPv4-only pods behind an IPv6-only Service: no endpoints at all.
        Row { qname: "only-v4.default.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        // The IPv6 address names only the Services of its family.
        Row { qname: "1.0.0.0.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa.", qtype: PTR, rcode: NOERROR, answers: &[
            "1.0.0.0.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa. PTR fd00-244--6-1.dual.default.svc.cluster.local.",
            "1.0.0.0.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa. PTR fd00-244--6-1.v6.default.svc.cluster.local.",
        ], authority: &[] },
    ]);
}

/// An SRV question at a Service's own name gets a record per target and port, unnamed ports
/// included, as CoreDNS answers it (tutorials list a StatefulSet's pods that way); the
/// `_<proto>` level below a Service still needs a named port.
#[test]
fn srv_at_a_services_own_name() {
    let mut objects = cluster();
    let mut unnamed = service("default", "unnamed", ServiceKind::Headless, Some(&[("app", "nginx")]));
    unnamed.ports = Arc::new([port("", Protocol::Tcp, 81, TargetPort::Number(8081))]);
    objects.push(ClusterObject::Service(unnamed));
    let view = view_of(objects);
    let zone = zone(PodRecords::Verified);
    check(&view, &zone, &[
        Row { qname: "nginx-svc.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "nginx-svc.default.svc.cluster.local. SRV 0 33 80 10-244-3-5.nginx-svc.default.svc.cluster.local.",
            "nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-0.nginx-svc.default.svc.cluster.local.",
            "nginx-svc.default.svc.cluster.local. SRV 0 33 80 web-1.nginx-svc.default.svc.cluster.local.",
        ], authority: &[] },
        // Every port: weights split among all the records.
        Row { qname: "api.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "api.default.svc.cluster.local. SRV 0 50 53 api.default.svc.cluster.local.",
            "api.default.svc.cluster.local. SRV 0 50 8080 api.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "unnamed.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "unnamed.default.svc.cluster.local. SRV 0 33 8081 10-244-1-10.unnamed.default.svc.cluster.local.",
            "unnamed.default.svc.cluster.local. SRV 0 33 8081 10-244-2-11.unnamed.default.svc.cluster.local.",
            "unnamed.default.svc.cluster.local. SRV 0 33 8081 10-244-3-5.unnamed.default.svc.cluster.local.",
        ], authority: &[] },
        Row { qname: "_tcp.unnamed.default.svc.cluster.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        // No endpoints: the name does not exist, whatever the type.
        Row { qname: "empty-svc.default.svc.cluster.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        // An ExternalName is a CNAME for every type.
        Row { qname: "db.default.svc.cluster.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "db.default.svc.cluster.local. CNAME db.example.com.",
        ], authority: &[] },
    ]);
    // The addresses of a target named for two ports are listed once.
    let reply = ask(&view, &zone, "api.default.svc.cluster.local.", SRV);
    assert_eq!(reply.additionals.len(), 2);
}

/// The table cluster, and pods whose names went astray: subdomains no Service answers for, a
/// subdomain without a hostname and the reverse, a Service whose pods are all held back.
fn astray_cluster() -> Vec<ClusterObject> {
    let mut objects = cluster();
    let mut sleepy_0 = pod("sleepy-0", "sleepy", &["10.244.8.1"]);
    sleepy_0.ready = false;
    let mut sleepy_1 = pod("sleepy-1", "sleepy", &["10.244.8.2"]);
    sleepy_1.terminating = true;
    let mut cache_0 = pod("cache-0", "cache", &["10.244.8.10"]);
    Arc::make_mut(&mut cache_0.template).subdomain = Some("cache".into());
    let mut cache_1 = pod("cache-1", "cache", &["10.244.8.11"]);
    Arc::make_mut(&mut cache_1.template).hostname = PodHostname::of("cache-1", Some("cache-1"));
    objects.extend([
        ClusterObject::Service(service("default", "sleepy", ServiceKind::Headless, Some(&[("app", "sleepy")]))),
        ClusterObject::Service(service("default", "cache", ServiceKind::Headless, Some(&[("app", "cache")]))),
        placed("default", sleepy_0),
        placed("default", sleepy_1),
        placed("default", cache_0),
        placed("default", cache_1),
        // kubernetes#74950: the subdomain (the StatefulSet's serviceName) names no Service.
        placed("default", with_hostname(pod("lost-0", "lost", &["10.244.8.20"]), "lost-0", "lost")),
        // Its subdomain names a Service whose selector does not match it.
        placed("default", with_hostname(pod("picky-0", "picky", &["10.244.8.30"]), "picky-0", "nginx-svc")),
        // A Service only in another namespace.
        ClusterObject::Service(service("other", "solo", ServiceKind::Headless, Some(&[("app", "solo")]))),
        // A StatefulSet whose spec.serviceName (stores) is not its headless Service (store).
        ClusterObject::Service(service("default", "store", ServiceKind::Headless, Some(&[("app", "store")]))),
        placed("default", of_statefulset(with_hostname(pod("store-0", "store", &["10.244.8.40"]), "store-0", "stores"), "store")),
    ]);
    objects
}

fn of_statefulset(mut pod: PodRecord, statefulset: &str) -> PodRecord {
    Arc::make_mut(&mut pod.template).statefulset = Some(statefulset.into());
    pod
}

fn explained(view: &View, zone: &Zone, qname: &str, qtype: RecordType) -> explain::Explanation {
    let name = Name::from_ascii(qname).unwrap().to_lowercase();
    let reply = answer(view, zone, &name, &name, qtype, DNSClass::IN);
    let why = explain::for_reply(view, zone, &name, qtype, &reply);
    why.unwrap_or_else(|| panic!("{qname} {qtype} is answered ({:?}): nothing to explain", reply.rcode))
}

/// `(qname, qtype) → reason`: every empty answer says why, in one line.
#[test]
fn empty_answers_say_why() {
    let view = view_of(astray_cluster());
    let zone = zone(PodRecords::Verified);
    for (qname, qtype, says) in [
        ("web-2.nginx-svc.default.svc.cluster.local.", A, "pod web-2 is not Ready, so Service nginx-svc does not list it"),
        ("web-3.nginx-svc.default.svc.cluster.local.", A, "pod web-3 is terminating"),
        ("web-4.nginx-svc.default.svc.cluster.local.", A, "pod web-4 has finished (Succeeded or Failed)"),
        ("10-244-1-12.nginx-svc.default.svc.cluster.local.", A, "pod web-2 is not Ready"),
        ("empty-svc.default.svc.cluster.local.", A, "no pod matches the selector app=none of headless Service empty-svc"),
        ("manual.default.svc.cluster.local.", A, "headless Service manual has no selector and its EndpointSlices list no endpoint"),
        ("sleepy.default.svc.cluster.local.", A, "headless Service sleepy has no ready endpoints: 2 pods match its selector app=sleepy, 1 not Ready, 1 terminating"),
        ("_web._tcp.sleepy.default.svc.cluster.local.", SRV, "headless Service sleepy has no ready endpoints"),
        ("nginx-svc.default.svc.cluster.local.", AAAA, "the name has no AAAA records (it has A, SRV)"),
        ("web-0.nginx-svc.default.svc.cluster.local.", TXT, "the name has no TXT records (it has A)"),
        ("default.svc.cluster.local.", A, "the name exists but holds no records"),
        // #124207: the subdomain names another Service (here one that does not exist).
        ("x.nginx-svc.default.svc.cluster.local.", A, "pod other-sub's spec.subdomain is elsewhere, not nginx-svc: Service nginx-svc names it by its address"),
        ("x.elsewhere.default.svc.cluster.local.", A, "no Service elsewhere in namespace default, though pod other-sub has spec.subdomain elsewhere"),
        ("lost-0.lost.default.svc.cluster.local.", A, "no Service lost in namespace default, though pod lost-0 has spec.subdomain lost"),
        ("lost-0.nginx-svc.default.svc.cluster.local.", A, "pod lost-0's spec.subdomain is lost, not nginx-svc"),
        ("store-0.store.default.svc.cluster.local.", A, "pod store-0 of StatefulSet store has spec.subdomain stores, not store: the StatefulSet's spec.serviceName is stores, so Service store names it by its address"),
        ("store-0.stores.default.svc.cluster.local.", A, "no Service stores in namespace default, though pod store-0 has spec.subdomain stores (StatefulSet store's spec.serviceName); did you mean store?"),
        ("picky-0.nginx-svc.default.svc.cluster.local.", A, "pod picky-0 has spec.subdomain nginx-svc, but Service nginx-svc's selector app=nginx does not match its labels"),
        ("cache-0.cache.default.svc.cluster.local.", A, "pod cache-0 has spec.subdomain cache but no spec.hostname: Service cache names it by its address"),
        ("cache-1.cache.default.svc.cluster.local.", A, "pod cache-1 has a spec.hostname but no spec.subdomain"),
        ("10-244-1-10.nginx-svc.default.svc.cluster.local.", A, "10.244.1.10 is endpoint web-0 of Service nginx-svc"),
        ("10-244-9-9.nginx-svc.default.svc.cluster.local.", A, "Service nginx-svc has no endpoint 10-244-9-9 (3 endpoints)"),
        ("wbe-0.nginx-svc.default.svc.cluster.local.", A, "Service nginx-svc has no endpoint wbe-0 (3 endpoints); did you mean web-0?"),
        ("nginx.default.svc.cluster.local.", A, "no Service nginx in namespace default; did you mean nginx-svc?"),
        ("ngnix-svc.default.svc.cluster.local.", A, "no Service ngnix-svc in namespace default; did you mean nginx-svc?"),
        ("zzz.default.svc.cluster.local.", A, "no Service zzz in namespace default"),
        ("nginx-svc.defualt.svc.cluster.local.", A, "no namespace defualt; did you mean default?"),
        ("web-0.nginx-svc.nowhere.svc.cluster.local.", A, "no namespace nowhere"),
        ("x.db.default.svc.cluster.local.", A, "Service db is an ExternalName Service: it has no endpoint names"),
        ("_web._udp.nginx-svc.default.svc.cluster.local.", SRV, "Service nginx-svc has no port named web over udp (it has web/tcp)"),
        ("_tcp.empty-svc.default.svc.cluster.local.", A, "no pod matches the selector"),
        ("_x._tcp.manual.default.svc.cluster.local.", SRV, "has no selector"),
        ("10-244-9-8.default.pod.cluster.local.", A, "no pod in namespace default has IP 10.244.9.8 (--pod-records verified)"),
        ("web-0.default.pod.cluster.local.", A, "web-0 is not an IP address written with dashes"),
        ("99.1.244.10.in-addr.arpa.", PTR, "no Service or endpoint has the address 10.244.1.99"),
        ("1.244.10.in-addr.arpa.", PTR, "not a whole address"),
        ("foo.cluster.local.", A, "no name of this shape in cluster.local."),
    ] {
        let why = explained(&view, &zone, qname, qtype);
        assert!(why.reason.contains(says), "{qname} {qtype}: {:?}, not {says:?}", why.reason);
        assert_eq!(why.code, explain::OTHER, "{qname}");
        assert!(why.reason.len() <= explain::MAX_REASON && !why.reason.contains('\n'), "{}", why.reason);
    }
    // The exact line matters where a suggestion would mislead: none for a name far from all.
    assert_eq!(explained(&view, &zone, "zzz.default.svc.cluster.local.", A).reason, "no Service zzz in namespace default");
}

/// Answers with records, refusals and out-of-zone CNAMEs have nothing to explain; before the
/// first sync everything in the zone is "Not Ready"; the scope names what it leaves out.
#[test]
fn what_is_explained_and_how() {
    let view = view_of(astray_cluster());
    let zone = zone(PodRecords::Verified);
    for (qname, qtype) in [
        ("web-0.nginx-svc.default.svc.cluster.local.", A),
        ("db.default.svc.cluster.local.", A),
        // A zone transfer over UDP is refused in the zone: not for being outside it.
        ("cluster.local.", RecordType::AXFR),
    ] {
        let name = Name::from_ascii(qname).unwrap();
        let reply = answer(&view, &zone, &name, &name, qtype, DNSClass::IN);
        assert_eq!(explain::for_reply(&view, &zone, &name, qtype, &reply), None, "{qname}");
    }

    let unsynced = View::new(1);
    let why = explained(&unsynced, &zone, "web-0.nginx-svc.default.svc.cluster.local.", A);
    assert_eq!(why.code, explain::NOT_READY);
    assert!(why.reason.starts_with("not yet synced with the Kubernetes API"), "{}", why.reason);

    let scoped = zone.clone().with_scope(Scope {
        namespaces: vec!["default".into(), "kube-system".into()],
        selector: Some("dns=public".into()),
    });
    assert_eq!(
        explained(&view, &scoped, "zzz.other.svc.cluster.local.", A).reason,
        "namespace other is not watched (--namespace default,kube-system)"
    );
    assert_eq!(
        explained(&view, &scoped, "zzz.default.svc.cluster.local.", A).reason,
        "no Service zzz in namespace default (only Services matching --selector dns=public are watched)"
    );

    // Any byte may be in a label; the reason stays one printable line.
    let labels: [&[u8]; 6] = [b"we\nb\x00", b"nginx-svc", b"default", b"svc", b"cluster", b"local"];
    let why = explain::explain(&view, &zone, &labels, A, false);
    assert_eq!(why.reason, "Service nginx-svc has no endpoint we?b? (3 endpoints)");

    // An ExternalName whose target is in the zone: the reason is the target's.
    let mut objects = astray_cluster();
    objects.push(ClusterObject::Service(service(
        "default",
        "alias",
        ServiceKind::ExternalName(Box::new(Name::from_ascii("web-2.nginx-svc.default.svc.cluster.local.").unwrap())),
        None,
    )));
    let view = view_of(objects);
    let why = explained(&view, &zone, "alias.default.svc.cluster.local.", A);
    assert!(why.reason.starts_with("pod web-2 is not Ready"), "{}", why.reason);

    // The full account lists what was looked at, and ends where the line does.
    let name = Name::from_ascii("web-2.nginx-svc.default.svc.cluster.local.").unwrap();
    let report = explain::report(&view, &zone, &name, A);
    assert_eq!(report.rcode, "NXDOMAIN");
    assert_eq!(report.ede.as_ref().map(|e| e.code), Some(explain::OTHER));
    assert!(report.facts.iter().any(|f| f.starts_with("Service nginx-svc: headless, selector app=nginx, 3 endpoints")), "{:?}", report.facts);
    let text = report.to_string();
    assert!(text.ends_with("why: pod web-2 is not Ready, so Service nginx-svc does not list it (EDE 0)\n"), "{text}");
}

/// A name outside the zone is refused, and says so (RFC 8914 "Not Authoritative"), with the
/// name in the zone it most likely stands for: what a pod's search path would have made of it.
#[test]
fn names_outside_the_zone_say_what_they_likely_mean() {
    let view = view_of(astray_cluster());
    let zone = zone(PodRecords::Verified);
    for (qname, qtype, says) in [
        ("nginx-svc.", A, "not in cluster.local: did you mean nginx-svc.default.svc.cluster.local?"),
        ("nginx-svc.default.", A, "not in cluster.local: did you mean nginx-svc.default.svc.cluster.local?"),
        ("nginx-svc.default.svc.", A, "not in cluster.local: did you mean nginx-svc.default.svc.cluster.local?"),
        ("web-0.nginx-svc.", A, "not in cluster.local: did you mean web-0.nginx-svc.default.svc.cluster.local?"),
        ("web-1.nginx-svc.default.", AAAA, "not in cluster.local: did you mean web-1.nginx-svc.default.svc.cluster.local?"),
        ("_web._tcp.nginx-svc.", SRV, "not in cluster.local: did you mean _web._tcp.nginx-svc.default.svc.cluster.local?"),
        ("10-244-1-10.default.pod.", A, "not in cluster.local: did you mean 10-244-1-10.default.pod.cluster.local?"),
        // Only in another namespace.
        ("solo.", A, "not in cluster.local: did you mean solo.other.svc.cluster.local?"),
        ("NGINX-SVC.", A, "not in cluster.local: did you mean nginx-svc.default.svc.cluster.local?"),
        // A name under a Service that exists, though it holds nothing (its answer says why).
        ("web-2.nginx-svc.default.svc.", A, "not in cluster.local: did you mean web-2.nginx-svc.default.svc.cluster.local?"),
        // Nothing in the zone that it could mean.
        ("default.nowhere.", A, "not in cluster.local nor a reverse zone: refused"),
        ("example.com.", A, "not in cluster.local nor a reverse zone: refused"),
        ("nowhere.", A, "not in cluster.local nor a reverse zone: refused"),
    ] {
        let name = Name::from_ascii(qname).unwrap();
        let reply = answer(&view, &zone, &name.to_lowercase(), &name, qtype, DNSClass::IN);
        assert_eq!(reply.rcode, ResponseCode::Refused, "{qname}");
        let why = explained(&view, &zone, qname, qtype);
        assert_eq!((why.code, why.reason.as_str()), (explain::NOT_AUTHORITATIVE, says), "{qname}");
    }
}

#[test]
fn suggestions_are_close_names_only() {
    let names = ["nginx-svc", "api", "web", "database", "shop"];
    for (asked, suggested) in [
        // Neighbours swapped: one edit.
        ("shpo", Some("shop")),
        ("aip", Some("api")),
        ("ndinx-svc", Some("nginx-svc")),
        ("ngixn-scv", Some("nginx-svc")),
        ("nginx", Some("nginx-svc")),
        ("ngnix-svc", Some("nginx-svc")),
        ("nginx-svc-headless", Some("nginx-svc")),
        ("apo", Some("api")),
        ("databse", Some("database")),
        ("xyz", None),
        ("we", Some("web")),
        ("cache", None),
    ] {
        assert_eq!(explain::closest(asked, names), suggested, "{asked}");
    }
}

/// Names spelled from their labels in one pass are hickory's own, case kept; too long, none.
#[test]
fn names_below_an_origin_are_hickorys() {
    use crate::dns::answer::name_below;
    for origin in ["cluster.local.", "Cluster.LOCAL.", "example.", "."] {
        let origin = Name::from_ascii(origin).unwrap();
        for labels in [
            &["web-0", "nginx-svc", "default", "svc"][..],
            &["Web-0", "x"],
            &["_http", "_tcp", "a", "b", "svc"],
            &[],
        ] {
            let ours = name_below(labels.iter().map(|l| l.as_bytes()), &origin).unwrap();
            let theirs = Name::from_labels(labels.iter().map(|l| l.as_bytes()))
                .and_then(|n| n.append_domain(&origin))
                .unwrap();
            assert_eq!(ours.to_string(), theirs.to_string());
            assert_eq!(ours.to_ascii(), theirs.to_ascii());
            assert!(ours.is_fqdn());
        }
    }
    let origin = Name::from_ascii("cluster.local.").unwrap();
    // Three labels of 63, one of `n`, cluster.local: 255 bytes on the wire with n = 47.
    let long = "x".repeat(63);
    for (n, fits) in [(47, true), (48, false)] {
        let last = "y".repeat(n);
        let labels = [long.as_str(), &long, &long, &last];
        let bytes = || labels.iter().map(|l| l.as_bytes());
        assert_eq!(name_below(bytes(), &origin).is_some(), fits);
        let theirs = Name::from_labels(bytes()).and_then(|n| n.append_domain(&origin));
        assert_eq!(theirs.is_ok(), fits);
    }
    assert!(name_below([&[b'x'; 64][..]], &origin).is_none());
    assert!(name_below([&b""[..]], &origin).is_none());
}

// The clusterset zone (Multi-Cluster Services DNS, KEP-1645 1.0.0).

fn import(ns: &str, name: &str, kind: ImportKind, ports: &[ServicePort]) -> ClusterObject {
    ClusterObject::ServiceImport(ServiceImportRecord {
        key: ObjectKey::new(ns, name),
        kind,
        ports: ports.iter().cloned().collect(),
    })
}

/// An EndpointSlice an MCS controller wrote: `(addresses, hostname, ready)` per endpoint.
fn import_slice(
    name: &str,
    import: &str,
    cluster: &str,
    port: u16,
    endpoints: &[(&[&str], Option<&str>, bool)],
) -> ClusterObject {
    ClusterObject::EndpointSlice(EndpointSliceRecord {
        key: ObjectKey::new("shop", name),
        service: import.into(),
        cluster: Some(cluster.into()),
        ports: Box::new([SlicePort { name: "redis".into(), protocol: Protocol::Tcp, port }]),
        endpoints: endpoints
            .iter()
            .map(|(addresses, hostname, ready)| SliceEndpoint {
                addresses: ips(addresses).into_vec().into(),
                hostname: hostname.map(Into::into),
                target_name: None,
                ready: *ready,
            })
            .collect(),
    })
}

/// Two clusters export `cache` (headless), `db` is a ClusterSetIP import, `idle` has no
/// endpoints; the local cluster's objects are the usual ones.
fn clusterset() -> Vec<ClusterObject> {
    let redis = port("redis", Protocol::Tcp, 6379, TargetPort::Number(6379));
    let pg = port("pg", Protocol::Tcp, 5432, TargetPort::Number(5432));
    let mut objects = cluster();
    objects.extend([
        import("shop", "db", ImportKind::ClusterSetIp(ips(&["10.100.0.1", "fd00:100::1"])), &[pg]),
        import("shop", "cache", ImportKind::Headless, std::slice::from_ref(&redis)),
        import("shop", "idle", ImportKind::Headless, &[redis]),
        import_slice("cache-east", "cache", "east", 6379, &[
            (&["10.1.0.1"], Some("cache-0"), true),
            (&["10.1.0.2"], None, true),
            (&["10.1.0.3"], Some("cache-2"), false),
        ]),
        // Two slices of one cluster (one per family) name the same endpoint: it has both.
        import_slice("cache-west-v4", "cache", "west", 7000, &[(&["10.2.0.1"], Some("cache-0"), true)]),
        import_slice("cache-west-v6", "cache", "west", 7000, &[(&["fd00:2::1"], Some("cache-0"), true)]),
        // A ClusterSetIP import's endpoints get no names.
        import_slice("db-east", "db", "east", 5432, &[(&["10.1.9.9"], Some("db-0"), true)]),
        import_slice("idle-east", "idle", "east", 6379, &[(&["10.1.8.8"], None, false)]),
        // A local Service's slice, beside them.
        slice("manual-a", "manual", &[(&["10.244.8.1"], None, true)]),
    ]);
    objects
}

const SOA_CLUSTERSET: &[&str] = &["clusterset.local. SOA"];

#[test]
fn clusterset_names_follow_the_mcs_specification() {
    let view = view_of(clusterset());
    check(&view, &zone(PodRecords::Verified), &[
        Row { qname: "db.shop.svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[
            "db.shop.svc.clusterset.local. A 10.100.0.1",
        ], authority: &[] },
        Row { qname: "db.shop.svc.clusterset.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "db.shop.svc.clusterset.local. AAAA fd00:100::1",
        ], authority: &[] },
        Row { qname: "db-0.east.db.shop.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "east.db.shop.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        // A headless import answers the ready endpoints of every cluster.
        Row { qname: "cache.shop.svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[
            "cache.shop.svc.clusterset.local. A 10.1.0.1",
            "cache.shop.svc.clusterset.local. A 10.1.0.2",
            "cache.shop.svc.clusterset.local. A 10.2.0.1",
        ], authority: &[] },
        Row { qname: "cache.shop.svc.clusterset.local.", qtype: AAAA, rcode: NOERROR, answers: &[
            "cache.shop.svc.clusterset.local. AAAA fd00:2::1",
        ], authority: &[] },
        Row { qname: "cache-0.east.cache.shop.svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[
            "cache-0.east.cache.shop.svc.clusterset.local. A 10.1.0.1",
        ], authority: &[] },
        Row { qname: "Cache-0.West.cache.shop.svc.clusterset.local.", qtype: ANY, rcode: NOERROR, answers: &[
            "Cache-0.West.cache.shop.svc.clusterset.local. A 10.2.0.1",
            "Cache-0.West.cache.shop.svc.clusterset.local. AAAA fd00:2::1",
        ], authority: &[] },
        Row { qname: "10-1-0-2.east.cache.shop.svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[
            "10-1-0-2.east.cache.shop.svc.clusterset.local. A 10.1.0.2",
        ], authority: &[] },
        // Not ready: not in DNS.
        Row { qname: "cache-2.east.cache.shop.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "east.cache.shop.svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "north.cache.shop.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "cache-0.north.cache.shop.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "idle.shop.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "missing.shop.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "shop.svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_CLUSTERSET },
        // Imports do not make names in the cluster's own zone, nor Services in the clusterset's.
        // A namespace is the same in every cluster: it exists here as it does locally.
        Row { qname: "default.svc.clusterset.local.", qtype: A, rcode: NOERROR, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "nowhere.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "nginx-svc.default.svc.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "cache.shop.svc.cluster.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_ZONE },
        Row { qname: "pod.clusterset.local.", qtype: A, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "dns-version.clusterset.local.", qtype: TXT, rcode: NOERROR, answers: &[
            "dns-version.clusterset.local. TXT 1.0.0",
        ], authority: &[] },
        Row { qname: "clusterset.local.", qtype: SOA, rcode: NOERROR, answers: &[
            "clusterset.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 101 7200 1800 86400 5",
        ], authority: &[] },
        Row { qname: "clusterset.local.", qtype: NS, rcode: NOERROR, answers: &[
            "clusterset.local. NS ns.dns.cluster.local.",
        ], authority: &[] },
    ]);
}

#[test]
fn clusterset_srv_records_name_the_import_or_each_endpoint() {
    let view = view_of(clusterset());
    let zone = zone(PodRecords::Verified);
    check(&view, &zone, &[
        Row { qname: "_pg._tcp.db.shop.svc.clusterset.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_pg._tcp.db.shop.svc.clusterset.local. SRV 0 100 5432 db.shop.svc.clusterset.local.",
        ], authority: &[] },
        Row { qname: "db.shop.svc.clusterset.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "db.shop.svc.clusterset.local. SRV 0 100 5432 db.shop.svc.clusterset.local.",
        ], authority: &[] },
        // Each endpoint with its own cluster's port.
        Row { qname: "_redis._tcp.cache.shop.svc.clusterset.local.", qtype: SRV, rcode: NOERROR, answers: &[
            "_redis._tcp.cache.shop.svc.clusterset.local. SRV 0 33 6379 10-1-0-2.east.cache.shop.svc.clusterset.local.",
            "_redis._tcp.cache.shop.svc.clusterset.local. SRV 0 33 6379 cache-0.east.cache.shop.svc.clusterset.local.",
            "_redis._tcp.cache.shop.svc.clusterset.local. SRV 0 33 7000 cache-0.west.cache.shop.svc.clusterset.local.",
        ], authority: &[] },
        Row { qname: "_tcp.cache.shop.svc.clusterset.local.", qtype: SRV, rcode: NOERROR, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "_redis._udp.cache.shop.svc.clusterset.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "_redis._tcp.idle.shop.svc.clusterset.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
        Row { qname: "_redis.cache-0.east.cache.shop.svc.clusterset.local.", qtype: SRV, rcode: NXDOMAIN, answers: &[], authority: SOA_CLUSTERSET },
    ]);
    let reply = ask(&view, &zone, "_redis._tcp.cache.shop.svc.clusterset.local.", SRV);
    let mut additionals: Vec<String> = reply.additionals.iter().map(render).collect();
    additionals.sort();
    assert_eq!(additionals, [
        "10-1-0-2.east.cache.shop.svc.clusterset.local. A 10.1.0.2",
        "cache-0.east.cache.shop.svc.clusterset.local. A 10.1.0.1",
        "cache-0.west.cache.shop.svc.clusterset.local. A 10.2.0.1",
        "cache-0.west.cache.shop.svc.clusterset.local. AAAA fd00:2::1",
    ]);
}

#[test]
fn clusterset_zone_is_served_only_while_an_import_exists() {
    let zone = zone(PodRecords::Verified);
    let refused = |view: &View| {
        let reply = ask(view, &zone, "clusterset.local.", SOA);
        reply.rcode == ResponseCode::Refused && !reply.authoritative
    };
    assert!(refused(&view_of(cluster())));
    let mut state = ClusterState::new(1);
    state.apply(ClusterEvent::Resync { kinds: ObjectKind::ALL.to_vec(), namespace: None, objects: clusterset() });
    state.apply(ClusterEvent::Synced);
    assert!(!refused(&state.publish().unwrap()));
    // The imports go, with the slices of one: the zone goes with the last.
    for name in ["db", "cache", "idle"] {
        state.apply(ClusterEvent::Delete(ObjectKind::ServiceImport, ObjectKey::new("shop", name)));
    }
    state.apply(ClusterEvent::Delete(ObjectKind::ImportSlice, ObjectKey::new("shop", "cache-east")));
    let view = state.publish().unwrap();
    assert!(refused(&view));
    // An import back: its endpoints from the slices still held, the deleted one's gone.
    state.apply(ClusterEvent::Upsert(import("shop", "cache", ImportKind::Headless, &[])));
    let view = state.publish().unwrap();
    let reply = ask(&view, &zone, "cache.shop.svc.clusterset.local.", A);
    assert_eq!(reply.answers.iter().map(render).collect::<Vec<_>>(), ["cache.shop.svc.clusterset.local. A 10.2.0.1"]);
    // A re-list of the import slices that lacks the west ones removes them.
    state.apply(ClusterEvent::Resync { kinds: vec![ObjectKind::ImportSlice], namespace: None, objects: vec![] });
    let view = state.publish().unwrap();
    assert_eq!(ask(&view, &zone, "cache.shop.svc.clusterset.local.", A).rcode, NXDOMAIN);
    // ... and leaves the local Services' slices alone.
    assert_eq!(ask(&view, &zone, "manual.default.svc.cluster.local.", A).answers.len(), 1);
    assert_eq!(state.object_count(), cluster().len() + 2);
}

#[test]
fn clusterset_reasons() {
    let view = view_of(clusterset());
    let zone = zone(PodRecords::Verified);
    let reason = |qname: &str, qtype: RecordType| {
        let name = Name::from_ascii(qname).unwrap();
        let mut buffer = [&[][..]; crate::dns::question::MAX_LABELS];
        let labels = crate::dns::question::labels_of(&name, &mut buffer);
        explain::explain(&view, &zone, labels, qtype, false).reason
    };
    for (qname, qtype, expected) in [
        ("idle.shop.svc.clusterset.local.", A, "ServiceImport idle is headless and no cluster exports a ready endpoint of it"),
        ("missing.shop.svc.clusterset.local.", A, "no ServiceImport missing in namespace shop"),
        ("x.other.svc.clusterset.local.", A, "no ServiceImport in namespace other"),
        ("db-0.east.db.shop.svc.clusterset.local.", A, "ServiceImport db is of type ClusterSetIP: its endpoints have no names (only a Headless import's have)"),
        ("north.cache.shop.svc.clusterset.local.", A, "no ready endpoint of ServiceImport cache is in cluster north"),
        ("cache-2.east.cache.shop.svc.clusterset.local.", A, "no ready endpoint cache-2 of ServiceImport cache in cluster east"),
        ("_http._tcp.cache.shop.svc.clusterset.local.", SRV, "ServiceImport cache has no port named http over tcp"),
        ("cache.shop.svc.clusterset.local.", TXT, "the name has no TXT records (it has A, AAAA, SRV)"),
        ("a.b.c.d.e.f.clusterset.local.", A, "no name of this shape in clusterset.local.: try <service>.<namespace>.svc or <hostname>.<cluster>.<service>.<namespace>.svc"),
    ] {
        assert_eq!(reason(qname, qtype), expected, "{qname} {qtype}");
    }
    let none = view_of(cluster());
    let name = Name::from_ascii("db.shop.svc.clusterset.local.").unwrap();
    let mut buffer = [&[][..]; crate::dns::question::MAX_LABELS];
    let labels = crate::dns::question::labels_of(&name, &mut buffer);
    let why = explain::explain(&none, &zone, labels, A, false);
    assert_eq!((why.code, why.reason.as_str()), (explain::NOT_AUTHORITATIVE, "no ServiceImport exists, so clusterset.local. is not served: refused"));
}

#[test]
fn the_clusterset_zone_may_be_renamed_and_may_nest() {
    let view = view_of(clusterset());
    let addresses = |zone: &Zone, qname: &str| {
        let reply = ask(&view, zone, qname, A);
        (reply.rcode, reply.answers.len())
    };
    // A zone that holds the clusterset zone: a name is the deeper zone's.
    let local = Zone::new("local", 5, PodRecords::Verified, None).unwrap();
    assert_eq!(addresses(&local, "db.shop.svc.clusterset.local."), (NOERROR, 1));
    assert_eq!(addresses(&local, "nginx-svc.default.svc.local."), (NOERROR, 3));
    let renamed = zone(PodRecords::Verified).with_clusterset("MCS.example").unwrap();
    assert_eq!(addresses(&renamed, "db.shop.svc.mcs.example."), (NOERROR, 1));
    assert_eq!(addresses(&renamed, "db.shop.svc.clusterset.local."), (ResponseCode::Refused, 0));
    for bad in [".", "cluster.local", "a..b"] {
        assert!(zone(PodRecords::Verified).with_clusterset(bad).is_err(), "{bad}");
    }
    // A zone named as the clusterset zone is the zone; no clusterset zone then.
    let same = Zone::new("clusterset.local", 5, PodRecords::Verified, None).unwrap();
    assert_eq!(same.clusterset, None);
    assert_eq!(addresses(&same, "db.shop.svc.clusterset.local."), (NXDOMAIN, 0));
}
