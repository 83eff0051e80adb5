//! Zone transfers to real secondaries: Knot DNS, NSD and BIND (Debian's `knot`, `nsd`,
//! `bind9`), each configured as a secondary of the built binary on loopback. Each takes the zones
//! by AXFR, then every name it serves answers as ours does; a change reaches it by NOTIFY and a
//! new transfer. Clients not allowed are refused.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{self, Process};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// A secondary server of one of the three kinds, killed when dropped.
struct Secondary {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (for a server whose address must be known before it starts).
fn free_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Knot,
    Nsd,
    Bind,
}

impl Secondary {
    /// `kind` on `port`, secondary for `zones` of the primary at `primary`, taking NOTIFY from
    /// it. Each runs in the foreground, as root or not, with everything under `dir`.
    fn start(kind: Kind, dir: &Path, port: u16, primary: SocketAddr, zones: &[&str]) -> Self {
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        let (ip, primary_port, dir_text) = (primary.ip(), primary.port(), dir.display());
        let path = dir.join("secondary.conf");
        let mut command = match kind {
            Kind::Knot => {
                let mut config = format!(
                    "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir_text}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
                     log:\n  - target: stderr\n    any: info\n\
                     database:\n    storage: {dir_text}/db\n\
                     remote:\n  - id: primary\n    address: {ip}@{primary_port}\n\
                     acl:\n  - id: from_primary\n    address: {ip}\n    action: notify\n\
                     template:\n  - id: default\n    storage: {dir_text}/zones\n    master: primary\n    acl: from_primary\n    zonefile-sync: -1\n\
                     zone:\n"
                );
                for zone in zones {
                    config.push_str(&format!("  - domain: {zone}\n"));
                }
                std::fs::write(&path, config).unwrap();
                let mut command = Command::new("knotd");
                command.arg("-c").arg(&path);
                command
            }
            Kind::Nsd => {
                let mut config = format!(
                    "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n\
                     \x20 zonesdir: \"{dir_text}/zones\"\n  pidfile: \"{dir_text}/nsd.pid\"\n  xfrdfile: \"{dir_text}/xfrd.state\"\n\
                     \x20 xfrdir: \"{dir_text}\"\n  zonelistfile: \"{dir_text}/zone.list\"\n  database: \"\"\n  verbosity: 1\n  server-count: 1\n\
                     remote-control:\n  control-enable: no\n"
                );
                for zone in zones {
                    config.push_str(&format!(
                        "zone:\n  name: {zone}\n  request-xfr: {ip}@{primary_port} NOKEY\n  allow-notify: {ip} NOKEY\n"
                    ));
                }
                std::fs::write(&path, config).unwrap();
                let mut command = Command::new("nsd");
                command.arg("-d").arg("-c").arg(&path);
                command
            }
            Kind::Bind => {
                let mut config = format!(
                    "options {{\n  directory \"{dir_text}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n\
                     \x20 pid-file \"{dir_text}/named.pid\";\n  session-keyfile \"{dir_text}/session.key\";\n\
                     \x20 managed-keys-directory \"{dir_text}\";\n  recursion no;\n  dnssec-validation no;\n  notify no;\n}};\n\
                     controls {{ }};\n"
                );
                for zone in zones {
                    config.push_str(&format!(
                        "zone \"{zone}\" {{\n  type secondary;\n  primaries port {primary_port} {{ {ip}; }};\n\
                         \x20 file \"zones/{zone}.db\";\n  allow-notify {{ {ip}; }};\n}};\n"
                    ));
                }
                std::fs::write(&path, config).unwrap();
                let mut command = Command::new("named");
                command.arg("-g").arg("-c").arg(&path);
                command
            }
        };
        let log = std::fs::File::create(dir.join("secondary.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?} is installed (Debian: knot, nsd, bind9): {e}"));
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: dir.join("secondary.log"),
        }
    }

    /// The end of its log, for a failure's message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

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
    let loaded = eventually(Duration::from_secs(20), || async {
        let theirs = udp_client(secondary.addr).await;
        let want = serial(&ask(&ours, "cluster.local.", RecordType::SOA, None).await);
        let got = tokio::time::timeout(
            Duration::from_millis(500),
            ask(&theirs, "cluster.local.", RecordType::SOA, None),
        )
        .await;
        got.is_ok_and(|got| {
            got.metadata.response_code == ResponseCode::NoError && serial(&got) == want
        })
    })
    .await;
    assert!(
        loaded.is_some(),
        "{kind:?} never loaded the zone:\n{}",
        secondary.log_tail()
    );

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
