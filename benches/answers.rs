//! The cost of writing answers, without sockets: the handler answers pre-built queries of each
//! kind over `benches/gen_cluster.py`'s cluster (1,000 headless Services × 10 pods, some
//! dual-stack, ExternalName aliases), in process, and the time per answer is printed — for
//! the wire writer, and for hickory's path beside it. Instruction counts are steadier than time
//! on a shared machine: run it under `valgrind --tool=callgrind` with a small COUNT.
//!
//!   cargo bench --bench answers                   # every kind, 200,000 answers each
//!   cargo bench --bench answers -- srv 20000      # one kind

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use headless_dns::manifests;
use headless_dns::{ClusterEvent, ClusterState, Handler, PodRecords, SharedView, Zone};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

const SERVICES: usize = 1000;
const PODS: usize = 10;

/// The cluster: headless Services `svc-N` in `ns-(N % 10)` of PODS pods with hostnames, every
/// tenth dual-stack; ClusterIP Services `api-M`, each with an ExternalName alias `ext-M`.
fn cluster() -> String {
    let mut text = String::new();
    let mut n = 0u32;
    for s in 0..SERVICES {
        let ns = format!("ns-{}", s % 10);
        let dual = s % 10 == 0;
        let families = if dual {
            "  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{s}, namespace: {ns}}}\n\
             spec:\n  clusterIP: None\n  selector: {{app: svc-{s}}}\n{families}  \
             ports: [{{name: web, port: 80, protocol: TCP}}]\n"
        ));
        for p in 0..PODS {
            n += 1;
            let v4 = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
            let mut ips = format!("{{ip: {v4}}}");
            if dual {
                ips.push_str(&format!(", {{ip: 'fd00:10::{:x}'}}", n));
            }
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: svc-{s}-{p}, namespace: {ns}, \
                 labels: {{app: svc-{s}}}}}\nspec: {{hostname: svc-{s}-{p}, subdomain: svc-{s}, \
                 containers: [{{name: app, image: app, ports: [{{name: web, containerPort: 80}}]}}]}}\n\
                 status: {{phase: Running, podIP: {v4}, podIPs: [{ips}], \
                 conditions: [{{type: Ready, status: 'True'}}]}}\n"
            ));
        }
    }
    for c in 0..SERVICES / 10 {
        let ns = format!("ns-{}", c % 10);
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: api-{c}, namespace: {ns}}}\n\
             spec: {{clusterIP: 10.96.{}.{}, selector: {{app: api-{c}}}, \
             ports: [{{name: http, port: 8080}}]}}\n\
             ---\napiVersion: v1\nkind: Service\nmetadata: {{name: ext-{c}, namespace: {ns}}}\n\
             spec: {{type: ExternalName, externalName: api-{c}.{ns}.svc.cluster.local}}\n",
            c >> 8,
            c & 255
        ));
    }
    text
}

fn query(name: &str, qtype: RecordType, edns: bool, cookie: bool) -> Vec<u8> {
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(1232);
        if cookie {
            opt.options_mut()
                .insert(EdnsOption::Unknown(10, vec![1, 2, 3, 4, 5, 6, 7, 8]));
        }
        message.set_edns(opt);
    }
    message.to_vec().unwrap()
}

/// 1,000 queries of one kind, over the cluster's names.
fn queries(kind: &str) -> Vec<Vec<u8>> {
    (0..1000)
        .map(|i| {
            let s = i * 7 % SERVICES;
            let ns = format!("ns-{}", s % 10);
            let service = format!("svc-{s}.{ns}.svc.cluster.local.");
            let pod = format!("svc-{s}-{}.{service}", i % PODS);
            let c = i % (SERVICES / 10);
            let n = s * PODS + i % PODS + 1;
            match kind {
                "pods" => query(&pod, RecordType::A, false, false),
                "svcs" => query(&service, RecordType::A, false, false),
                "aaaa" => {
                    let dual = (s / 10) * 10;
                    let name =
                        format!("svc-{dual}-{}.svc-{dual}.ns-0.svc.cluster.local.", i % PODS);
                    query(&name, RecordType::AAAA, false, false)
                }
                "srv" => query(
                    &format!("_web._tcp.{service}"),
                    RecordType::SRV,
                    true,
                    false,
                ),
                // Without EDNS the answer is cut to 512 bytes: rotated, as many targets as fit.
                "srv512" => query(
                    &format!("_web._tcp.{service}"),
                    RecordType::SRV,
                    false,
                    false,
                ),
                "ptr" => {
                    let name = format!(
                        "{}.{}.{}.10.in-addr.arpa.",
                        n & 255,
                        (n >> 8) & 255,
                        (n >> 16) & 255
                    );
                    query(&name, RecordType::PTR, false, false)
                }
                "cname" => query(
                    &format!("ext-{c}.ns-{}.svc.cluster.local.", c % 10),
                    RecordType::A,
                    false,
                    false,
                ),
                "edns" => query(&pod, RecordType::A, true, true),
                "nx" => query(&format!("nope-{i}.{service}"), RecordType::A, true, false),
                "soa" => query(
                    "cluster.local.",
                    if i % 2 == 0 {
                        RecordType::SOA
                    } else {
                        RecordType::NS
                    },
                    false,
                    false,
                ),
                other => panic!("no kind {other}"),
            }
        })
        .collect()
}

/// The writer's time per answer, `count` answers round `queries` (apart, for profilers:
/// `valgrind --tool=callgrind --toggle-collect='*write_all*'`).
#[inline(never)]
fn write_all(handler: &Handler, queries: &[Vec<u8>], count: usize, out: &mut Vec<u8>) -> f64 {
    let start = Instant::now();
    for i in 0..count {
        out.clear();
        assert!(handler.answer_directly(&queries[i % queries.len()], Protocol::Udp, out));
    }
    start.elapsed().as_nanos() as f64 / count as f64
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let kinds: Vec<&str> = match args.first().map(String::as_str) {
        Some(kind) if kind.parse::<usize>().is_err() => vec![kind],
        _ => vec![
            "pods", "svcs", "aaaa", "srv", "srv512", "ptr", "cname", "edns", "nx", "soa",
        ],
    };
    let count: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let objects = manifests::parse(&cluster()).expect("the cluster parses");
    let mut state = ClusterState::new(1);
    state.apply(manifests::resync(objects));
    state.apply(ClusterEvent::Synced);
    let view = SharedView::new(state.publish().expect("a synced state publishes"));
    let zone = Zone::new(
        "cluster.local",
        5,
        PodRecords::Verified,
        Some("127.0.0.1".parse().unwrap()),
    )
    .expect("a zone");
    let handler = Handler::new(view, Arc::new(zone));
    let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let mut out = Vec::with_capacity(65536);
    println!(
        "{:<8} {:>14} {:>14} {:>10}",
        "kind", "writer ns", "hickory ns", "bytes"
    );
    for kind in kinds {
        let queries = queries(kind);
        let time = |answer: &dyn Fn(&[u8], &mut Vec<u8>) -> bool, out: &mut Vec<u8>| {
            let start = Instant::now();
            for i in 0..count {
                out.clear();
                assert!(answer(&queries[i % queries.len()], out));
            }
            start.elapsed().as_nanos() as f64 / count as f64
        };
        let writer = write_all(&handler, &queries, count, &mut out);
        let bytes = out.len();
        let hickory = if std::env::var_os("WRITER_ONLY").is_some() {
            0.0
        } else {
            time(
                &|q, out| handler.respond(q, src, Protocol::Udp, out),
                &mut out,
            )
        };
        println!("{kind:<8} {writer:>14.0} {hickory:>14.0} {bytes:>10}");
    }
}
