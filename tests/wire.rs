//! The server over real UDP and TCP sockets on an ephemeral port, asked by hickory's client
//! (and, for broken or unusual messages, by raw datagrams built with hickory-proto).

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const WEB0: &str = "web-0.nginx-svc.default.svc.cluster.local.";

#[tokio::test]
async fn answers_over_udp_and_tcp_in_the_question_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = TestServer::start(&path, &[]).await;

    for client in [udp_client(server.addr).await, tcp_client(server.addr).await] {
        let response = ask(&client, WEB0, RecordType::A, Some(1232)).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert_eq!(answers(&response), [format!("{WEB0} A 10.244.1.10")]);

        let mixed = "Web-1.NGINX-svc.Default.SVC.cluster.LOCAL.";
        let response = ask(&client, mixed, RecordType::A, None).await;
        assert_eq!(answers(&response), [format!("{mixed} A 10.244.2.11")]);
        assert_eq!(response.queries[0].name().to_string(), mixed);

        let response = ask(
            &client,
            "nginx-svc.default.svc.cluster.local.",
            RecordType::A,
            None,
        )
        .await;
        assert_eq!(a_records(&response), ["10.244.1.10", "10.244.2.11"]);

        let response = ask(
            &client,
            "web-9.nginx-svc.default.svc.cluster.local.",
            RecordType::A,
            None,
        )
        .await;
        assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            response.authorities.len(),
            1,
            "negative answers carry the SOA"
        );
        assert_eq!(response.authorities[0].record_type(), RecordType::SOA);

        let response = ask(&client, "example.com.", RecordType::A, None).await;
        assert_eq!(response.metadata.response_code, ResponseCode::Refused);
        assert!(!response.metadata.authoritative);
    }
    server.stop().await;
}

/// A pod with both an IPv4 and an IPv6 address.
fn dual_stack_pod(name: &str, app: &str, v4: &str, v6: &str) -> String {
    pod("default", name, app, v4, None, true).replace(
        &format!("podIPs: [{{ip: {v4}}}]"),
        &format!("podIPs: [{{ip: {v4}}}, {{ip: \"{v6}\"}}]"),
    )
}

#[tokio::test]
async fn large_answers_are_cut_over_udp_and_complete_over_tcp() {
    let mut parts = vec![
        headless_service("default", "big", "big"),
        headless_service("default", "medium", "medium"),
        headless_service("default", "dual", "dual"),
        headless_service("default", "small", "small"),
    ];
    for i in 0..6 {
        parts.push(pod(
            "default",
            &format!("small-{i}"),
            "small",
            &format!("10.4.0.{}", i + 1),
            None,
            true,
        ));
    }
    for i in 0..100 {
        parts.push(pod(
            "default",
            &format!("big-{i}"),
            "big",
            &format!("10.1.{}.{}", i / 200, i % 200 + 1),
            None,
            true,
        ));
    }
    for i in 0..40 {
        parts.push(pod(
            "default",
            &format!("medium-{i}"),
            "medium",
            &format!("10.2.0.{}", i + 1),
            None,
            true,
        ));
        parts.push(dual_stack_pod(
            &format!("dual-{i}"),
            "dual",
            &format!("10.3.0.{}", i + 1),
            &format!("fd00:3::{:x}", i + 1),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&parts)).unwrap();
    let server = TestServer::start(&path, &[]).await;
    let udp = udp_client(server.addr).await;
    let tcp = tcp_client(server.addr).await;
    let big = "big.default.svc.cluster.local.";
    let medium = "medium.default.svc.cluster.local.";

    // 100 A records fit neither in 512 bytes nor in the 1232 we cap EDNS at: as many whole
    // records as fit, TC set; which ones rotates from query to query (hickory's client picks a
    // new ID each time), so that clients which use what they get (musl) spread over every pod.
    for (edns, fitting) in [
        (None, 20..=30),
        (Some(1232), 60..=80),
        (Some(4096), 60..=80),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let response = ask(&udp, big, RecordType::A, edns).await;
            assert!(response.metadata.truncation, "TC with EDNS {edns:?}");
            assert!(
                fitting.contains(&response.answers.len()),
                "{} answers with EDNS {edns:?}",
                response.answers.len()
            );
            assert_eq!(response.edns.is_some(), edns.is_some(), "EDNS is echoed");
            assert!(response.answers.iter().all(|r| r.name.to_string() == big));
            seen.extend(a_records(&response));
        }
        assert!(
            seen.len() > 90,
            "40 cut answers covered only {} of 100 pods",
            seen.len()
        );
    }
    let response = ask(&tcp, big, RecordType::A, None).await;
    assert!(!response.metadata.truncation);
    assert_eq!(response.answers.len(), 100);

    // 40 records (~660 bytes): cut for classic UDP, whole with EDNS.
    let response = ask(&udp, medium, RecordType::A, None).await;
    assert!(response.metadata.truncation && !response.answers.is_empty());
    let response = ask(&udp, medium, RecordType::A, Some(1232)).await;
    assert!(!response.metadata.truncation);
    assert_eq!(response.answers.len(), 40);
    // An offer below 512 counts as 512.
    let response = ask(&udp, medium, RecordType::A, Some(100)).await;
    assert!(response.metadata.truncation && !response.answers.is_empty());

    // SRV: the additional addresses go first. 6 SRV records fit in 512 bytes, their 6
    // addresses beside them do not; with EDNS all fit.
    let srv = "_web._tcp.small.default.svc.cluster.local.";
    let response = ask(&udp, srv, RecordType::SRV, None).await;
    assert!(response.metadata.truncation);
    assert_eq!((response.answers.len(), response.additionals.len()), (6, 0));
    let response = ask(&udp, srv, RecordType::SRV, Some(1232)).await;
    assert!(!response.metadata.truncation);
    assert_eq!((response.answers.len(), response.additionals.len()), (6, 6));
    // 100 do not fit either: whole SRV records, no additionals.
    let response = ask(
        &udp,
        "_web._tcp.big.default.svc.cluster.local.",
        RecordType::SRV,
        None,
    )
    .await;
    assert!(response.metadata.truncation && response.additionals.is_empty());
    assert!(
        (5..100).contains(&response.answers.len()),
        "{}",
        response.answers.len()
    );
    assert!(
        response
            .answers
            .iter()
            .all(|r| r.record_type() == RecordType::SRV)
    );
    let response = ask(
        &tcp,
        "_web._tcp.big.default.svc.cluster.local.",
        RecordType::SRV,
        None,
    )
    .await;
    assert_eq!(response.answers.len(), 100);
    assert_eq!(response.additionals.len(), 100);

    // Dual stack: ANY mixes A and AAAA records, cut like the rest; over TCP all 80.
    let dual = "dual.default.svc.cluster.local.";
    let mut families = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let response = ask(&udp, dual, RecordType::ANY, None).await;
        assert!(response.metadata.truncation && !response.answers.is_empty());
        families.extend(response.answers.iter().map(|r| r.record_type()));
    }
    assert_eq!(
        families.into_iter().collect::<Vec<_>>(),
        [RecordType::A, RecordType::AAAA]
    );
    let response = ask(&tcp, dual, RecordType::ANY, None).await;
    assert_eq!(response.answers.len(), 80);
    server.stop().await;
}

fn query_message(id: u16, name: &str, qtype: RecordType) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    message
}

async fn exchange(addr: std::net::SocketAddr, message: &Message) -> Message {
    let reply = raw_udp(addr, &message.to_vec().unwrap())
        .await
        .expect("a reply");
    Message::from_vec(&reply).expect("a well-formed reply")
}

#[tokio::test]
async fn message_level_errors_get_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = TestServer::start(&path, &[]).await;

    let mut notify = query_message(1, WEB0, RecordType::SOA);
    notify.metadata.op_code = OpCode::Notify;
    assert_eq!(
        exchange(server.addr, &notify).await.metadata.response_code,
        ResponseCode::NotImp
    );

    let mut two = query_message(2, WEB0, RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii(WEB0).unwrap(),
        RecordType::AAAA,
    ));
    let reply = exchange(server.addr, &two).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert!(reply.answers.is_empty());

    let none = Message::new(3, MessageType::Query, OpCode::Query);
    assert_eq!(
        exchange(server.addr, &none).await.metadata.response_code,
        ResponseCode::FormErr
    );

    let mut future = query_message(4, WEB0, RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1);
    future.set_edns(edns);
    let reply = exchange(server.addr, &future).await;
    // 16 is both BADVERS and BADSIG; hickory decodes it as the latter.
    assert_eq!(
        u16::from(reply.metadata.response_code),
        u16::from(ResponseCode::BADVERS)
    );
    assert_eq!(reply.edns.as_ref().map(Edns::version), Some(0));

    let mut plain = query_message(5, WEB0, RecordType::A);
    let reply = exchange(server.addr, &plain).await;
    assert_eq!(reply.metadata.id, 5);
    assert!(reply.edns.is_none(), "no OPT without one in the question");
    plain.set_edns(Edns::new());
    let reply = exchange(server.addr, &plain).await;
    assert!(reply.edns.is_some(), "EDNS is echoed");
    assert_eq!(reply.answers.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn malformed_packets_do_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = TestServer::start(&path, &[]).await;
    let good = query_message(9, WEB0, RecordType::A).to_vec().unwrap();

    let mut garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 5],
        vec![0xab; 3000],
        // A header announcing one question, and no question.
        vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        // A label running past the end of the packet.
        vec![0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, b'a', b'b'],
        // A compression pointer to itself.
        vec![0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
    ];
    // The good query cut short at every length.
    garbage.extend((1..good.len()).map(|n| good[..n].to_vec()));
    for packet in &garbage {
        if let Some(reply) = raw_udp(server.addr, packet).await {
            let reply = Message::from_vec(&reply).expect("replies are well-formed");
            assert_ne!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "{packet:?}"
            );
        }
    }
    // Over TCP too: a length prefix that lies, then a close.
    {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(&[0x40, 0x00, 1, 2, 3]).await.unwrap();
    }
    let reply = raw_udp(server.addr, &good).await.expect("still answering");
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.answers.len(), 1);
    let tcp = tcp_client(server.addr).await;
    assert_eq!(ask(&tcp, WEB0, RecordType::A, None).await.answers.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn file_changes_are_served_and_bad_ones_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    let mut cluster = statefulset_cluster();
    std::fs::write(&path, documents(&cluster)).unwrap();
    let server = TestServer::start(&path, &[]).await;
    let client = udp_client(server.addr).await;
    let web2 = "web-2.nginx-svc.default.svc.cluster.local.";
    let serial = |m: &Message| match &m.authorities[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("not an SOA: {other:?}"),
    };
    let before = ask(&client, web2, RecordType::A, None).await;
    assert_eq!(before.metadata.response_code, ResponseCode::NXDomain);

    // web-2 becomes Ready.
    cluster.push(pod(
        "default",
        "web-2",
        "nginx",
        "10.244.1.12",
        Some(("web-2", "nginx-svc")),
        true,
    ));
    replace_file(&path, &documents(&cluster));
    let took = eventually(Duration::from_secs(5), || async {
        a_records(&ask(&client, web2, RecordType::A, None).await) == ["10.244.1.12"]
    })
    .await;
    assert!(took.is_some(), "the new pod was never served");
    eprintln!("reload served after {took:?}");

    // A broken edit: logged, and the last good state stays.
    replace_file(
        &path,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {podIP: nope}\n",
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        a_records(&ask(&client, web2, RecordType::A, None).await),
        ["10.244.1.12"]
    );
    // A deleted file: the same.
    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        a_records(&ask(&client, web2, RecordType::A, None).await),
        ["10.244.1.12"]
    );

    // Back with web-0 gone: it disappears, the serial moves on.
    cluster.remove(1);
    replace_file(&path, &documents(&cluster));
    let gone = eventually(Duration::from_secs(5), || async {
        ask(&client, WEB0, RecordType::A, None)
            .await
            .metadata
            .response_code
            == ResponseCode::NXDomain
    })
    .await;
    assert!(gone.is_some(), "the deleted pod is still served");
    let after = ask(
        &client,
        web2.replace("web-2", "web-7").as_str(),
        RecordType::A,
        None,
    )
    .await;
    assert!(serial(&after) > serial(&before));
    server.stop().await;
}

/// Issue 12's answers over real sockets: ExternalName followed inside the zone, names and PTR
/// for pods behind a ClusterIP Service, valid labels for IPv6 addresses ending in `::`, and
/// endpoints named by pod name.
#[tokio::test]
async fn coredns_parity_answers_over_the_wire() {
    let mut parts = statefulset_cluster();
    parts.push(
        "apiVersion: v1\nkind: Service\nmetadata: {name: to-nginx, namespace: default}\n\
         spec: {type: ExternalName, externalName: nginx-svc.default.svc.cluster.local}\n"
            .into(),
    );
    parts.push(
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: default}\n\
         spec: {clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20], selector: {app: api},\n\
         \x20      ports: [{name: http, port: 8080}]}\n"
            .into(),
    );
    parts.push(pod(
        "default",
        "api-7d9f-x2x",
        "api",
        "10.244.4.1",
        None,
        true,
    ));
    parts.push(headless_service("default", "v6", "v6"));
    parts.push(
        pod("default", "v6-a", "v6", "10.244.6.1", None, true).replace(
            "podIPs: [{ip: 10.244.6.1}]",
            "podIPs: [{ip: 10.244.6.1}, {ip: \"2001:db8:3333:4444:5555:6666::\"}]",
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&parts)).unwrap();
    let zone = "default.svc.cluster.local.";

    let server = TestServer::start(&path, &[]).await;
    for client in [udp_client(server.addr).await, tcp_client(server.addr).await] {
        let response = ask(&client, &format!("to-nginx.{zone}"), RecordType::A, None).await;
        assert_eq!(
            answers(&response),
            [
                format!("nginx-svc.{zone} A 10.244.1.10"),
                format!("nginx-svc.{zone} A 10.244.2.11"),
                format!("to-nginx.{zone} CNAME nginx-svc.{zone}"),
            ]
        );
        let response = ask(
            &client,
            &format!("10-244-4-1.api.{zone}"),
            RecordType::A,
            None,
        )
        .await;
        assert_eq!(
            answers(&response),
            [format!("10-244-4-1.api.{zone} A 10.244.4.1")]
        );
        let response = ask(&client, &format!("api.{zone}"), RecordType::A, None).await;
        assert_eq!(a_records(&response), ["10.96.0.20"]);
        let response = ask(&client, "1.4.244.10.in-addr.arpa.", RecordType::PTR, None).await;
        assert_eq!(
            answers(&response),
            [format!(
                "1.4.244.10.in-addr.arpa. PTR 10-244-4-1.api.{zone}"
            )]
        );
        let v6 = format!("2001-db8-3333-4444-5555-6666--0.v6.{zone}");
        let response = ask(&client, &v6, RecordType::AAAA, Some(1232)).await;
        assert_eq!(
            answers(&response),
            [format!("{v6} AAAA 2001:db8:3333:4444:5555:6666::")]
        );
        let srv = ask(
            &client,
            &format!("_web._tcp.v6.{zone}"),
            RecordType::SRV,
            Some(1232),
        )
        .await;
        let targets: Vec<String> = answers(&srv)
            .iter()
            .map(|line| line.rsplit(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(targets, [format!("10-244-6-1.v6.{zone}"), v6.clone()]);
        let ptr = "0.0.0.0.0.0.0.0.6.6.6.6.5.5.5.5.4.4.4.4.3.3.3.3.8.b.d.0.1.0.0.2.ip6.arpa.";
        let response = ask(&client, ptr, RecordType::PTR, None).await;
        assert_eq!(answers(&response), [format!("{ptr} PTR {v6}")]);
    }
    server.stop().await;

    // --endpoint-names pod-name: the Deployment pod by its name, everywhere.
    let server = TestServer::start(&path, &["--endpoint-names", "pod-name"]).await;
    let client = udp_client(server.addr).await;
    let named = format!("api-7d9f-x2x.api.{zone}");
    let response = ask(&client, &named, RecordType::A, None).await;
    assert_eq!(answers(&response), [format!("{named} A 10.244.4.1")]);
    let response = ask(&client, "1.4.244.10.in-addr.arpa.", RecordType::PTR, None).await;
    assert_eq!(
        answers(&response),
        [format!("1.4.244.10.in-addr.arpa. PTR {named}")]
    );
    let response = ask(
        &client,
        &format!("_web._tcp.v6.{zone}"),
        RecordType::SRV,
        Some(1232),
    )
    .await;
    assert_eq!(
        answers(&response),
        [format!("_web._tcp.v6.{zone} SRV 0 100 80 v6-a.v6.{zone}")]
    );
    server.stop().await;
}

/// Sends `message` over a fresh TCP connection; the reply if one comes within 300 ms.
async fn raw_tcp(addr: std::net::SocketAddr, message: &[u8]) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).await.unwrap();
    let read = async {
        let length = stream.read_u16().await.ok()?;
        let mut reply = vec![0; usize::from(length)];
        stream.read_exact(&mut reply).await.ok()?;
        Some(reply)
    };
    tokio::time::timeout(Duration::from_millis(300), read)
        .await
        .ok()
        .flatten()
}

/// Never a reply to a response (QR=1), parseable or not: answering responses reflects traffic
/// at whoever the source address names. On the UDP fast path, the async UDP path and TCP.
#[tokio::test]
async fn responses_are_never_answered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let mut response = query_message(0x4343, WEB0, RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let response = response.to_vec().unwrap();
    let responses: Vec<Vec<u8>> = vec![
        // The datagram: QR=1, one question announced, none there.
        vec![0x42, 0x42, 0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0],
        // A well-formed response, and the same cut short and padded.
        response.clone(),
        response[..20].to_vec(),
        [&response[..], &[0xff; 40]].concat(),
        // QR with other opcodes and flags.
        vec![0, 7, 0xA8, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1],
        vec![
            0, 8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ],
    ];
    let good = query_message(9, WEB0, RecordType::A).to_vec().unwrap();
    for udp_threads in ["1", "0"] {
        let server = TestServer::start(&path, &["--udp-threads", udp_threads]).await;
        for packet in &responses {
            assert_eq!(
                raw_udp(server.addr, packet).await,
                None,
                "UDP ({udp_threads} threads): {packet:?}"
            );
            assert_eq!(raw_tcp(server.addr, packet).await, None, "TCP: {packet:?}");
        }
        // A query cut short still gets FORMERR, as before.
        let cut = [&good[..12], &[3, b'w', b'e']].concat();
        let reply = Message::from_vec(&raw_udp(server.addr, &cut).await.expect("FORMERR")).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        let reply = Message::from_vec(&raw_tcp(server.addr, &cut).await.expect("FORMERR")).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        // And the server answers on.
        assert!(raw_udp(server.addr, &good).await.is_some());
        assert!(raw_tcp(server.addr, &good).await.is_some());
        server.stop().await;
    }
}

/// A query with the EDNS DO bit gets DO back (RFC 3225 §3), on every path; one without, not.
#[tokio::test]
async fn the_do_bit_is_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = TestServer::start(&path, &[]).await;
    let async_server = TestServer::start(&path, &["--udp-threads", "0"]).await;
    for dnssec_ok in [true, false] {
        for (name, qtype) in [
            // Answered directly on the fast path.
            (WEB0, RecordType::A),
            ("web-9.nginx-svc.default.svc.cluster.local.", RecordType::A),
            // Answered through hickory.
            (WEB0, RecordType::SRV),
            ("cluster.local.", RecordType::SOA),
        ] {
            let mut message = query_message(77, name, qtype);
            let mut edns = Edns::new();
            edns.set_max_payload(1232).set_dnssec_ok(dnssec_ok);
            message.set_edns(edns);
            let bytes = message.to_vec().unwrap();
            for (transport, reply) in [
                ("UDP", raw_udp(server.addr, &bytes).await),
                ("UDP async", raw_udp(async_server.addr, &bytes).await),
                ("TCP", raw_tcp(server.addr, &bytes).await),
            ] {
                let reply = Message::from_vec(&reply.expect("a reply")).unwrap();
                let echoed = reply.edns.as_ref().map(|e| e.flags().dnssec_ok);
                assert_eq!(echoed, Some(dnssec_ok), "{transport} {name} {qtype}");
            }
        }
    }
    server.stop().await;
    async_server.stop().await;
}

/// Found by fuzzing: a question name with a compression pointer into the header. The response
/// repeats the question's bytes, where the pointer would land on the response's own header and
/// make it unparseable; such a message gets FORMERR instead, on UDP and TCP.
#[tokio::test]
async fn a_question_pointing_into_the_header_gets_formerr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = TestServer::start(&path, &[]).await;
    // "\x03web" then a pointer to offset 2 (the flags), then a valid rest of the question.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x03web\xc0\x02\x00\x01\x00\x01");
    for reply in [
        raw_udp(server.addr, &query).await,
        raw_tcp(server.addr, &query).await,
    ] {
        let reply = Message::from_vec(&reply.expect("a reply")).expect("a reply that parses");
        assert_eq!(reply.metadata.id, 0x1234);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    }
    // A pointer within the question itself is not the header's: a second question may use one.
    let mut two = query_message(5, WEB0, RecordType::A).to_vec().unwrap();
    two[5] = 2;
    two.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1]);
    let reply = Message::from_vec(&raw_udp(server.addr, &two).await.unwrap()).unwrap();
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::FormErr,
        "two questions"
    );
    assert_eq!(reply.queries.len(), 2, "repeated as asked");
    server.stop().await;
}
