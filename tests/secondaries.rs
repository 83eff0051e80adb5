//! Zone transfers to real secondaries: Knot DNS, NSD and BIND (Debian's `knot`, `nsd`,
//! `bind9`), each configured as a secondary of the built binary on loopback. Each takes the zones
//! by AXFR, then every name it serves answers as ours does; a change reaches it by NOTIFY and a
//! new transfer. Clients not allowed are refused.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{self, Process};
use common::secondary::{Kind, Secondary, free_port};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// One secondary at a time: three name servers starting at once on two cores, beside the rest
/// of the suite, made the first transfer slow enough to time out.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cluster() -> Vec<String> {
    let mut parts = statefulset_cluster();
    parts.extend(headless_service_of("big", 40, "10.9.0"));
    parts.push(pod(
        "default",
        "web-2",
        "nginx",
        "10.244.3.12",
        Some(("web-2", "nginx-svc")),
        false,
    ));
    parts.push(
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: default}\n\
         spec: {clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20], selector: {app: api},\n\
         \x20 ports: [{name: http, port: 8080, protocol: TCP}]}\n"
            .into(),
    );
    parts.push(pod("default", "api-1", "api", "10.244.4.1", None, true));
    parts.push(
        "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: other}\n\
         spec: {type: ExternalName, externalName: db.example.com}\n"
            .into(),
    );
    parts
}

/// `(name, type)` of every record of an AXFR of `zone` from `server`, as `dig` lists them.
fn transferred(server: SocketAddr, zone: &str) -> (String, Vec<(String, String)>) {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args([
            "-p",
            &server.port().to_string(),
            "+tcp",
            "+noall",
            "+answer",
            "AXFR",
            zone,
        ])
        .output()
        .expect("dig is installed");
    let text = String::from_utf8(output.stdout).unwrap();
    let records = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 4).then(|| (fields[0].to_owned(), fields[3].to_owned()))
        })
        .collect();
    (text, records)
}

/// Whether both servers give the same rcode and answer records for `name` and `qtype`, over
/// TCP: over UDP a large answer is cut differently (we keep what fits, Knot sends none).
async fn alike(
    ours: SocketAddr,
    theirs: SocketAddr,
    name: &str,
    qtype: RecordType,
) -> Result<(), String> {
    let (a, b) = (tcp_client(ours).await, tcp_client(theirs).await);
    let (a, b) = (
        ask(&a, name, qtype, Some(1232)).await,
        ask(&b, name, qtype, Some(1232)).await,
    );
    let (rcode_a, rcode_b) = (a.metadata.response_code, b.metadata.response_code);
    if rcode_a != rcode_b || answers(&a) != answers(&b) {
        return Err(format!(
            "{name} {qtype}: ours {rcode_a:?} {:?}, secondary {rcode_b:?} {:?}",
            answers(&a),
            answers(&b)
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_follows_by_axfr_and_notify() {
    follows(Kind::Knot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_follows_by_axfr_and_notify() {
    follows(Kind::Nsd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_follows_by_axfr_and_notify() {
    follows(Kind::Bind).await;
}

/// A secondary of `kind` takes both zones, answers every name as we do, and follows a change.
async fn follows(kind: Kind) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("cluster.yaml");
    replace_file(&manifests, &documents(&cluster()));
    let secondary_port = free_port();
    let mut command = process::command(None);
    command.args([
        "--manifests",
        manifests.to_str().unwrap(),
        "--allow-transfer",
        "127.0.0.0/8",
        "--notify",
        &format!("127.0.0.1:{secondary_port}"),
    ]);
    let server = Process::start(command);
    let zones = ["cluster.local", "in-addr.arpa"];
    let secondary = Secondary::start(
        kind,
        &dir.path().join("secondary"),
        secondary_port,
        server.dns,
        &zones,
    );

    // The first transfer: the secondary serves our serial.
    let ours = udp_client(server.dns).await;
    let serial = |message: &hickory_proto::op::Message| {
        message.answers.first().map(|r| {
            r.data
                .to_string()
                .split_whitespace()
                .nth(2)
                .unwrap_or("")
                .to_owned()
        })
    };
    // Each zone is transferred on its own: wait until the secondary has every one.
    for zone in zones {
        let apex = format!("{zone}.");
        let loaded = eventually(Duration::from_secs(30), || async {
            let theirs = udp_client(secondary.addr).await;
            let want = serial(&ask(&ours, &apex, RecordType::SOA, None).await);
            let got = tokio::time::timeout(
                Duration::from_millis(500),
                ask(&theirs, &apex, RecordType::SOA, None),
            )
            .await;
            got.is_ok_and(|got| {
                got.metadata.response_code == ResponseCode::NoError && serial(&got) == want
            })
        })
        .await;
        assert!(
            loaded.is_some(),
            "{kind:?} never loaded {zone}:\n{}",
            secondary.log_tail()
        );
    }

    // Every record of both zones, and names that do not exist, answer alike.
    let mut questions: Vec<(String, RecordType)> = Vec::new();
    for zone in zones {
        let (text, records) = transferred(server.dns, zone);
        assert!(records.len() > 10, "{zone}: {text}");
        assert_eq!(records.first().map(|r| r.1.as_str()), Some("SOA"), "{text}");
        assert_eq!(records.last().map(|r| r.1.as_str()), Some("SOA"), "{text}");
        for (name, rtype) in records {
            let rtype: RecordType = rtype.parse().unwrap();
            if !questions.contains(&(name.clone(), rtype)) {
                questions.push((name, rtype));
            }
        }
    }
    for (name, qtype) in [
        ("web-2.nginx-svc.default.svc.cluster.local.", RecordType::A),
        ("nothing.default.svc.cluster.local.", RecordType::A),
        (
            "web-0.nginx-svc.default.svc.cluster.local.",
            RecordType::AAAA,
        ),
        ("db.other.svc.cluster.local.", RecordType::CNAME),
        ("12.3.244.10.in-addr.arpa.", RecordType::PTR),
    ] {
        questions.push((name.to_owned(), qtype));
    }
    let mut differences = Vec::new();
    for (name, qtype) in &questions {
        if let Err(difference) = alike(server.dns, secondary.addr, name, *qtype).await {
            differences.push(difference);
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} differ: {differences:#?}",
        differences.len(),
        questions.len()
    );
    eprintln!(
        "{kind:?}: {} questions answered alike by headless-dns and the secondary",
        questions.len()
    );

    // A change: web-2 becomes Ready, the ExternalName Service goes. NOTIFY brings it over.
    let mut changed = cluster();
    changed.retain(|part| !part.contains("externalName"));
    for part in &mut changed {
        if part.contains("name: web-2") {
            *part = part.replace("status: \"False\"", "status: \"True\"");
        }
    }
    let written = Instant::now();
    replace_file(&manifests, &documents(&changed));
    let web2 = "web-2.nginx-svc.default.svc.cluster.local.";
    let arrived = eventually(Duration::from_secs(20), || async {
        let theirs = udp_client(secondary.addr).await;
        let reply = tokio::time::timeout(
            Duration::from_millis(500),
            ask(&theirs, web2, RecordType::A, None),
        )
        .await;
        reply.is_ok_and(|r| a_records(&r) == ["10.244.3.12"])
    })
    .await;
    assert!(
        arrived.is_some(),
        "the change never reached {kind:?}:\n{}",
        secondary.log_tail()
    );
    eprintln!(
        "{kind:?}: file written → answer at the secondary: {:?} (includes the manifests' 1 s \
         quiet period)",
        written.elapsed()
    );
    // It came as the differences (IXFR from the journal), not as the whole zone again.
    let incremental = server.wait_for_line("kind=Incremental", Duration::from_secs(5));
    assert!(
        incremental.is_some(),
        "{kind:?} did not get an incremental transfer: {:?}",
        server.lines("zone transfer")
    );
    for (name, qtype) in [
        (web2, RecordType::A),
        ("db.other.svc.cluster.local.", RecordType::CNAME),
        ("nginx-svc.default.svc.cluster.local.", RecordType::A),
        ("12.3.244.10.in-addr.arpa.", RecordType::PTR),
    ] {
        let settled = eventually(Duration::from_secs(10), || async {
            alike(server.dns, secondary.addr, name, qtype).await.is_ok()
        })
        .await;
        assert!(
            settled.is_some(),
            "{:?}",
            alike(server.dns, secondary.addr, name, qtype).await
        );
    }
}

/// Transfers are refused to clients outside `--allow-transfer`, and to everyone by default;
/// over UDP they are refused too.
#[tokio::test]
async fn transfers_only_to_allowed_clients_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("cluster.yaml");
    replace_file(&manifests, &documents(&cluster()));
    for (allowed, transfers) in [
        (None, false),
        (Some("10.0.0.0/8"), false),
        (Some("127.0.0.1"), true),
    ] {
        let mut command = process::command(None);
        command.args(["--manifests", manifests.to_str().unwrap()]);
        if let Some(allowed) = allowed {
            command.args(["--allow-transfer", allowed]);
        }
        let server = Process::start(command);
        let (text, records) = transferred(server.dns, "cluster.local");
        assert_eq!(records.len() > 10, transfers, "{allowed:?}: {text}");
        let reply = ask(
            &udp_client(server.dns).await,
            "cluster.local.",
            RecordType::AXFR,
            None,
        )
        .await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::Refused,
            "{allowed:?}"
        );
    }
}
