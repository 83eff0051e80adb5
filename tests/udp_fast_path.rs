//! Over real sockets, both UDP transports — the fast path (threads, batches) and one async task
//! (`--udp-threads 0`) — answer every datagram byte for byte as hickory's parser and encoder
//! would: the same datagrams go to a server of each kind, and each reply is compared with what
//! hickory's path (`Handler::respond`, in this process, over the same cluster and serial) writes.

mod common;

use clap::Parser;
use common::*;
use headless_dns::config::Config;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

fn query(id: u16, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(size);
        message.set_edns(opt);
    }
    message.to_vec().unwrap()
}

/// Every kind of datagram the server handles: answers, negatives, truncation, message errors,
/// garbage.
fn corpus() -> Vec<Vec<u8>> {
    let z = "default.svc.cluster.local.";
    let mut out = Vec::new();
    let names = [
        format!("big.{z}"),
        format!("nginx-svc.{z}"),
        format!("WEB-0.Nginx-Svc.{z}"),
        format!("web-9.nginx-svc.{z}"),
        format!("_web._tcp.nginx-svc.{z}"),
        format!("_web._tcp.big.{z}"),
        "default.svc.cluster.local.".into(),
        "cluster.local.".into(),
        "dns-version.cluster.local.".into(),
        "10-244-1-10.default.pod.cluster.local.".into(),
        "10.1.244.10.in-addr.arpa.".into(),
        "example.com.".into(),
    ];
    let mut id = 1;
    for name in &names {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::SOA,
            RecordType::NS,
            RecordType::PTR,
            RecordType::TXT,
            RecordType::ANY,
        ] {
            for edns in [None, Some(512), Some(1232), Some(4096)] {
                out.push(query(id, name, qtype, edns));
                id += 1;
            }
        }
    }
    let mut notify = Message::new(7001, MessageType::Query, OpCode::Notify);
    notify.add_query(Query::query(
        Name::from_ascii("cluster.local.").unwrap(),
        RecordType::SOA,
    ));
    out.push(notify.to_vec().unwrap());
    let mut two = Message::from_vec(&query(7002, &names[0], RecordType::A, None)).unwrap();
    two.add_query(Query::query(
        Name::from_ascii(&names[1]).unwrap(),
        RecordType::A,
    ));
    out.push(two.to_vec().unwrap());
    out.push(
        Message::new(7003, MessageType::Query, OpCode::Query)
            .to_vec()
            .unwrap(),
    );
    let mut future = Message::from_vec(&query(7004, &names[1], RecordType::A, Some(1232))).unwrap();
    future.edns.as_mut().unwrap().set_version(1);
    out.push(future.to_vec().unwrap());
    let mut chaos = Message::new(7005, MessageType::Query, OpCode::Query);
    let mut q = Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    out.push(chaos.to_vec().unwrap());
    let mut response = Message::from_vec(&query(7006, &names[1], RecordType::A, None)).unwrap();
    response.metadata.message_type = MessageType::Response;
    out.push(response.to_vec().unwrap());
    let good = query(7007, &names[1], RecordType::A, None);
    out.extend((0..good.len()).map(|n| good[..n].to_vec()));
    out.push(vec![
        0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1,
    ]);
    out
}

fn soa_serial(reply: &[u8]) -> u32 {
    match &Message::from_vec(reply).unwrap().answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

/// hickory's path over the cluster of `path`, its SOA serial `serial`, as the server on
/// 127.0.0.1 answers it.
fn reference(path: &std::path::Path, serial: u32) -> headless_dns::Handler {
    use headless_dns::manifests::{self, Input};
    use headless_dns::{ClusterEvent, ClusterState, PodRecords, SharedView, Zone};
    let view = |first: u32| {
        let loaded = manifests::load(&Input::File(path.into()), u64::MAX).unwrap();
        let mut state = ClusterState::new(first);
        state.apply(manifests::resync(loaded.objects));
        state.apply(ClusterEvent::Synced);
        state.publish().unwrap()
    };
    // The serial the server started from: what publishing added to it, taken off.
    let added = view(0).serial();
    let zone = Zone::new(
        "cluster.local",
        5,
        PodRecords::Verified,
        Some("127.0.0.1".parse().unwrap()),
    )
    .unwrap();
    headless_dns::Handler::new(
        SharedView::new(view(serial - added)),
        std::sync::Arc::new(zone),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_udp_transports_answer_exactly_as_hickory() {
    let mut parts = statefulset_cluster();
    parts.extend(headless_service_of("big", 100, "10.1.0"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&parts)).unwrap();

    // The SOA serial starts at the Unix time: start the pair within one second.
    let soa = query(1, "cluster.local.", RecordType::SOA, None);
    let (task, fast, serial) = loop {
        let task = TestServer::start(&path, &["--udp-threads", "0"]).await;
        let fast = TestServer::start(&path, &["--udp-threads", "2"]).await;
        let a = soa_serial(&raw_udp(task.addr, &soa).await.unwrap());
        let b = soa_serial(&raw_udp(fast.addr, &soa).await.unwrap());
        if a == b {
            break (task, fast, a);
        }
        task.stop().await;
        fast.stop().await;
    };
    let hickory = reference(&path, serial);
    let src = "127.0.0.1:5300".parse().unwrap();

    let mut compared = 0;
    for datagram in corpus() {
        let mut reply = Vec::new();
        let expected = hickory
            .respond(
                &datagram,
                src,
                hickory_server::net::xfer::Protocol::Udp,
                &mut reply,
            )
            .then_some(reply);
        for server in [&fast, &task] {
            let actual = raw_udp(server.addr, &datagram).await;
            assert_eq!(actual, expected, "reply to {datagram:?}");
        }
        compared += usize::from(expected.is_some());
    }
    assert!(compared > 300, "only {compared} replies compared");
    task.stop().await;
    fast.stop().await;
}

/// A burst from many sockets at once is taken in batches; every query still gets its own answer,
/// sent to the socket it came from, over IPv6 as over IPv4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_answered_query_by_query_on_both_families() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let config = Config::try_parse_from([
            "headless-dns",
            "--manifests",
            path.to_str().unwrap(),
            "--listen",
            listen,
            "--http-listen",
            "127.0.0.1:0",
            "--udp-threads",
            "1",
        ])
        .unwrap();
        let running = headless_dns::start(&config).await.expect("starts");
        let addr = running.dns_addr;
        let bind = if addr.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let mut sockets = Vec::new();
        for _ in 0..8 {
            sockets.push(tokio::net::UdpSocket::bind(bind).await.unwrap());
        }
        let names = [
            (
                "web-0.nginx-svc.default.svc.cluster.local.",
                Some("10.244.1.10"),
            ),
            (
                "web-1.nginx-svc.default.svc.cluster.local.",
                Some("10.244.2.11"),
            ),
            ("web-2.nginx-svc.default.svc.cluster.local.", None),
        ];
        // 8 sockets × 24 queries, all sent before any answer is read.
        for (s, socket) in sockets.iter().enumerate() {
            for i in 0..24u16 {
                let (name, _) = names[usize::from(i) % 3];
                let id = (s as u16) << 8 | i;
                socket
                    .send_to(&query(id, name, RecordType::A, None), addr)
                    .await
                    .unwrap();
            }
        }
        for (s, socket) in sockets.iter().enumerate() {
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 1500];
            while seen.len() < 24 {
                let n =
                    tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv(&mut buf))
                        .await
                        .expect("every query answered")
                        .unwrap();
                let reply = Message::from_vec(&buf[..n]).unwrap();
                assert_eq!(
                    usize::from(reply.metadata.id >> 8),
                    s,
                    "reply to another socket"
                );
                let i = reply.metadata.id & 0xFF;
                let (name, ip) = names[usize::from(i) % 3];
                assert_eq!(reply.queries[0].name().to_ascii(), name);
                let got: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
                assert_eq!(got, ip.into_iter().map(String::from).collect::<Vec<_>>());
                seen.push(i);
            }
            seen.sort();
            assert_eq!(seen, (0..24).collect::<Vec<_>>());
        }
        running.shutdown().await;
    }
}
