//! Zone transfers to real secondaries: Knot DNS, NSD and BIND (Debian's `knot`, `nsd`,
//! `bind9`), each configured as a secondary of the built binary on loopback. Each takes the zones
//! by AXFR, then every name it serves answers as ours does; a change reaches it by NOTIFY and a
//! new transfer. Clients not allowed are refused. With a TSIG key, the same with every
//! transfer and NOTIFY signed, checked by the secondaries and by `dig -y`.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{self, Process};
use common::secondary::{Key, Kind, Secondary, TEST_KEY, free_port};
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
    // What an MCS controller writes: a headless import with endpoints in two clusters (one
    // of them not ready), a ClusterSetIP import.
    parts.push(
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\n\
         metadata: {name: nginx-svc, namespace: default}\n\
         spec: {type: Headless, ports: [{name: web, port: 80, protocol: TCP}]}\n"
            .into(),
    );
    parts.push(
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\n\
         metadata: {name: api, namespace: default}\n\
         spec: {type: ClusterSetIP, ips: [10.96.250.7], ports: [{name: http, port: 8080, protocol: TCP}]}\n"
            .into(),
    );
    for (cluster, subnet, ready) in [("east", "10.245.1", "true"), ("west", "10.246.1", "false")] {
        parts.push(format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: imported-nginx-svc-{cluster}, namespace: default, labels: {{\
             multicluster.kubernetes.io/service-name: nginx-svc, \
             multicluster.kubernetes.io/source-cluster: {cluster}}}}}\n\
             addressType: IPv4\nports: [{{name: web, port: 80, protocol: TCP}}]\n\
             endpoints:\n\
             - {{addresses: [{subnet}.10], hostname: web-0, conditions: {{ready: true}}}}\n\
             - {{addresses: [{subnet}.11], hostname: web-1, conditions: {{ready: {ready}}}}}\n"
        ));
    }
    parts
}

/// `(name, type)` of every record of an AXFR of `zone` from `server`, as `dig` lists them
/// (signed with `key`, whose records are left out; dig checks every message's signature).
fn transferred(
    server: SocketAddr,
    zone: &str,
    key: Option<&Key>,
) -> (String, Vec<(String, String)>) {
    let mut command = Command::new("dig");
    if let Some(key) = key {
        command.args(["-y", &key.dig()]);
    }
    let output = command
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
    assert!(
        !text.contains("Couldn't verify") && !text.contains("could not be validated"),
        "{text}"
    );
    let records = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 4).then(|| (fields[0].to_owned(), fields[3].to_owned()))
        })
        .filter(|(_, rtype)| rtype != "TSIG")
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
    let (a, b) = (
        ask_tcp(ours, name, qtype).await?,
        ask_tcp(theirs, name, qtype).await?,
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

/// The built binary serving `manifests`, transferring to `allowed` with `key`.
fn primary(manifests: &std::path::Path, allowed: Option<&str>, key: Option<&Key>) -> Command {
    let mut command = process::command(None);
    command.args(["--manifests", manifests.to_str().unwrap()]);
    if let Some(allowed) = allowed {
        command.args(["--allow-transfer", allowed]);
    }
    if let Some(key) = key {
        command.env("HEADLESS_DNS_TSIG_KEY", key.flag());
    }
    command
}

/// One question over a new TCP connection, asked again on a transport error: NSD's server
/// processes are replaced when a zone is reloaded, resetting their connections.
async fn ask_tcp(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
) -> Result<hickory_proto::op::Message, String> {
    use futures_util::StreamExt as _;
    use hickory_net::DnsHandle as _;
    use hickory_proto::op::DnsRequestOptions;
    let mut last_error = String::new();
    for _ in 0..3 {
        let client = tcp_client(server).await;
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_payload_len = 1232;
        let query = hickory_proto::op::Query::query(name.parse().unwrap(), qtype);
        match client.lookup(query, options).next().await {
            Some(Ok(response)) => return Ok(response.into_message()),
            Some(Err(error)) => last_error = error.to_string(),
            None => last_error = "no response".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{server}: {name} {qtype}: {last_error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_follows_by_axfr_and_notify() {
    follows(Kind::Knot, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_follows_by_axfr_and_notify() {
    follows(Kind::Nsd, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_follows_by_axfr_and_notify() {
    follows(Kind::Bind, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_follows_with_tsig() {
    follows(Kind::Knot, Some(&TEST_KEY)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_follows_with_tsig() {
    follows(Kind::Bind, Some(&TEST_KEY)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_follows_with_tsig() {
    follows(Kind::Nsd, Some(&TEST_KEY)).await;
}

/// A secondary of `kind` takes both zones, answers every name as we do, and follows a change;
/// with `key`, everything between us is signed.
async fn follows(kind: Kind, key: Option<&Key>) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("cluster.yaml");
    replace_file(&manifests, &documents(&cluster()));
    let secondary_port = free_port();
    let mut command = primary(&manifests, Some("127.0.0.0/8"), key);
    command
        .args(["--notify", &format!("127.0.0.1:{secondary_port}")])
        .env("RUST_LOG", "info,headless_dns::transfer=debug");
    let server = Process::start(command);
    let zones = ["cluster.local", "in-addr.arpa", "clusterset.local"];
    let secondary = Secondary::start(
        kind,
        &dir.path().join("secondary"),
        secondary_port,
        server.dns,
        &zones,
        key,
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
        let (text, records) = transferred(server.dns, zone, key);
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

    // A change: web-2 becomes Ready, the ExternalName Service goes, west's web-1 becomes
    // ready. NOTIFY brings it over.
    let mut changed = cluster();
    changed.retain(|part| !part.contains("externalName"));
    for part in &mut changed {
        if part.contains("name: web-2") {
            *part = part.replace("status: \"False\"", "status: \"True\"");
        }
        if part.contains("imported-nginx-svc-west") {
            *part = part.replace("ready: false", "ready: true");
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
        "the change never reached {kind:?}:\n{}\nours: {:#?}",
        secondary.log_tail(),
        server.log()
    );
    eprintln!(
        "{kind:?}: file written → answer at the secondary: {:?} (includes the manifests' 1 s \
         quiet period)",
        written.elapsed()
    );
    // It came as the differences (IXFR from the journal), not as the whole zone again, for
    // each zone whose records changed.
    for zone in ["cluster.local.", "clusterset.local."] {
        let line = format!("zone={zone} kind=Incremental");
        let incremental = server.wait_for_line(&line, Duration::from_secs(10));
        assert!(
            incremental.is_some(),
            "{kind:?} did not get an incremental transfer of {zone}: {:?}",
            server.lines("zone transfer")
        );
    }
    if key.is_some() {
        // Our signed NOTIFY got a response signed with the key (NSD does not answer one for
        // ip6.arpa, which it does not serve; Knot and BIND answer NOTAUTH).
        let acknowledged = server.wait_for_line(
            &format!("NOTIFY acknowledged target=127.0.0.1:{secondary_port} zone=cluster.local."),
            Duration::from_secs(5),
        );
        assert!(
            acknowledged.is_some(),
            "{kind:?}: {:#?}\n{}",
            server.log(),
            secondary.log_tail()
        );
        assert!(
            server.lines("signature rejected").is_empty(),
            "{:?}",
            server.lines("signature rejected")
        );
    }
    for (name, qtype) in [
        (web2, RecordType::A),
        ("db.other.svc.cluster.local.", RecordType::CNAME),
        ("nginx-svc.default.svc.cluster.local.", RecordType::A),
        ("12.3.244.10.in-addr.arpa.", RecordType::PTR),
        (
            "web-1.west.nginx-svc.default.svc.clusterset.local.",
            RecordType::A,
        ),
        ("nginx-svc.default.svc.clusterset.local.", RecordType::A),
        (
            "_web._tcp.nginx-svc.default.svc.clusterset.local.",
            RecordType::SRV,
        ),
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
        let server = Process::start(primary(&manifests, allowed, None));
        let (text, records) = transferred(server.dns, "cluster.local", None);
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

/// `dig` with `args`, its output.
fn dig(server: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(args)
        .output()
        .expect("dig is installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// With `--tsig-key` a transfer must be signed with the key: `dig -y` gets every message of a
/// zone too large for one message signed (it checks each MAC, the later ones chained to the
/// one before), questions signed with the key are answered signed over UDP and TCP; an
/// unsigned transfer is refused, a wrong secret gets BADSIG and an unknown key BADKEY. Without
/// a key, a signed question gets BADKEY.
#[tokio::test]
async fn signed_transfers_and_questions() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("cluster.yaml");
    let mut parts = cluster();
    parts.extend(headless_service_of("many", 240, "10.9.1"));
    replace_file(&manifests, &documents(&parts));
    let start = |key| Process::start(primary(&manifests, Some("127.0.0.1"), key));
    let server = start(Some(&TEST_KEY));
    let signed = ["-y", &TEST_KEY.dig()[..]];

    let transfer = dig(server.dns, &[signed[0], signed[1], "AXFR", "cluster.local"]);
    let summary = transfer
        .lines()
        .find(|line| line.starts_with(";; XFR size"))
        .unwrap_or_else(|| panic!("{transfer}"));
    let messages: usize = summary
        .split("messages ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|count| count.parse().ok())
        .unwrap();
    assert!(messages > 3, "{summary}");
    let signatures = transfer
        .lines()
        .filter(|line| line.split_whitespace().nth(3) == Some("TSIG"))
        .count();
    assert_eq!(signatures, messages, "one signature per message: {summary}");
    assert!(
        !transfer.contains("Couldn't verify") && !transfer.contains("could not be validated"),
        "{transfer}"
    );
    eprintln!("signed AXFR: {summary}");

    // The same transfer unsigned, or signed with a key we do not have.
    let unsigned = dig(server.dns, &["AXFR", "cluster.local"]);
    assert!(unsigned.contains("Transfer failed"), "{unsigned}");
    let wrong_secret = format!(
        "{}:{}:{}",
        TEST_KEY.algorithm, TEST_KEY.name, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    );
    let badsig = dig(server.dns, &["-y", &wrong_secret, "AXFR", "cluster.local"]);
    assert!(
        badsig.contains("BADSIG") && badsig.contains("Transfer failed"),
        "{badsig}"
    );
    let other_key = format!("{}:other-key:{}", TEST_KEY.algorithm, TEST_KEY.secret);
    let badkey = dig(server.dns, &["-y", &other_key, "AXFR", "cluster.local"]);
    assert!(
        badkey.contains("BADKEY") && badkey.contains("Transfer failed"),
        "{badkey}"
    );

    // Questions signed with the key, as a secondary's SOA query is: answered and signed.
    for transport in ["+notcp", "+tcp"] {
        let answer = dig(
            server.dns,
            &[signed[0], signed[1], transport, "SOA", "cluster.local"],
        );
        assert!(
            answer.contains("status: NOERROR")
                && answer.contains("TSIG PSEUDOSECTION")
                && !answer.contains("Couldn't verify"),
            "{transport}: {answer}"
        );
        let rejected = dig(
            server.dns,
            &["-y", &wrong_secret, transport, "SOA", "cluster.local"],
        );
        assert!(
            rejected.contains("status: NOTAUTH") && rejected.contains("BADSIG"),
            "{transport}: {rejected}"
        );
    }
    // A large signed answer over UDP still fits the client's limit with its signature.
    let large = dig(
        server.dns,
        &[
            signed[0],
            signed[1],
            "+bufsize=1232",
            "A",
            "many.default.svc.cluster.local",
        ],
    );
    assert!(
        large.contains("flags: qr aa tc") || large.contains("Truncated, retrying in TCP"),
        "{large}"
    );
    assert!(!large.contains("Couldn't verify"), "{large}");
    drop(server);

    let keyless = start(None);
    let answer = dig(keyless.dns, &[signed[0], signed[1], "SOA", "cluster.local"]);
    assert!(
        answer.contains("status: NOTAUTH") && answer.contains("BADKEY"),
        "{answer}"
    );
}

/// A key that cannot be used stops the server with one line saying why, before it listens.
#[test]
fn a_bad_key_is_a_clear_error() {
    for (key, allow, expected) in [
        (
            "transfer-key:hmac-md5:c2VjcmV0",
            true,
            "\"hmac-md5\" is not a TSIG algorithm we sign with: hmac-sha256, hmac-sha384, hmac-sha512",
        ),
        (
            "transfer-key:hmac-sha256:not base64!",
            true,
            "is not base64",
        ),
        (
            "just-a-name",
            true,
            "--tsig-key: a TSIG key is NAME:ALGORITHM:BASE64",
        ),
        (
            &TEST_KEY.flag(),
            false,
            "--tsig-key signs zone transfers, but no client may transfer: add --allow-transfer",
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_headless-dns"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--manifests", "config/demo-cluster.yaml"])
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(["--tsig-key", key]);
        if allow {
            command.args(["--allow-transfer", "127.0.0.1"]);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{key}: {stderr}");
        assert!(stderr.contains(expected), "{key}: {stderr}");
        let secret = key.rsplit(':').next().unwrap();
        assert!(
            !stderr.contains(secret),
            "the secret is not repeated: {stderr}"
        );
    }
}
