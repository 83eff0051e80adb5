//! The cases of the real-cluster tier, in the order they run (faults that restart the API
//! server last). Each returns a one-line summary of what it measured, or why it failed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::{self, PodSpec, ServiceSpec};
use crate::dns::{self, Asker, Reply, Transport};
use crate::servers::{apply_rbac, deployment_rbac, ready, start_headless_dns, token};
use crate::{Env, shipped};

pub async fn run_all(env: &mut Env, only: &[String]) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    macro_rules! case {
        ($name:expr, $body:expr) => {
            if wanted($name) {
                let start = Instant::now();
                match run($body).await {
                    Ok(summary) => {
                        passed += 1;
                        println!(
                            "case {} ... ok ({summary}; {:.1} s)",
                            $name,
                            start.elapsed().as_secs_f64()
                        );
                    }
                    Err(reason) => {
                        failed += 1;
                        println!("case {} ... FAILED: {reason}", $name);
                    }
                }
            }
        };
    }
    case!("spec table", spec_table(env));
    case!(
        "CoreDNS parity: spec namespace",
        coredns_parity(env, "spec")
    );
    case!("watch path", watch_path(env));
    case!(
        "clusterset.local: CoreDNS multicluster parity",
        crate::clusterset::differential(env)
    );
    case!("EndpointSlice controller parity", slice_parity(env));
    case!(
        "CoreDNS parity: generated namespaces",
        coredns_parity(env, "gen-")
    );
    case!(
        "protobuf and JSON from the API give the same answers",
        protobuf_and_json(env)
    );
    case!(
        "streaming lists (WatchList): refused with the gate off, used with it on",
        streaming_lists(env)
    );
    case!(
        "RBAC: the shipped ClusterRole is enough, and every rule is needed",
        rbac(env)
    );
    case!("fault: invalid token", invalid_token(env));
    case!(
        "fault: ClusterRole loses endpointslices",
        role_loses_slices(env)
    );
    case!("fault: kube-apiserver restarted", apiserver_restart(env));
    case!("fault: etcd compaction (410), re-list", compacted(env));
    case!(
        "shipped manifests: kubectl apply, Pod Security restricted",
        shipped::apply_the_shipped_manifests(env)
    );
    case!(
        "shipped manifests: the sidecar's namespaced Role is enough",
        shipped::sidecar_role_is_enough(env)
    );
    case!(
        "in-cluster configuration, token rotated on disk",
        shipped::in_cluster_token_rotated(env)
    );
    case!(
        "several clusters: two API servers, one killed and restarted",
        crate::clusters::two_api_servers(env)
    );
    (passed, failed)
}

async fn run(case: impl Future<Output = Result<String, String>>) -> Result<String, String> {
    match tokio::time::timeout(Duration::from_secs(300), case).await {
        Ok(result) => result,
        Err(_) => Err("no result within 300 s".into()),
    }
}

const ZONE: &str = "cluster.local.";

fn fqdn(name: &str, ns: &str) -> String {
    format!("{name}.{ns}.svc.{ZONE}")
}

/// `10.0.0.1` → `10-0-0-1`, as endpoint and pod names spell an address.
fn dashed(ip: &str) -> String {
    let mut label = ip.replace(['.', ':'], "-");
    if label.starts_with('-') {
        label.insert(0, '0');
    }
    if label.ends_with('-') {
        label.push('0');
    }
    label
}

fn reverse(ip: &str) -> String {
    let ip: std::net::IpAddr = ip.parse().expect("an address");
    hickory_proto::rr::Name::from(ip).to_string()
}

/// Polls `check` until it holds or `limit` passes; the last error if it never does.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) if start.elapsed() > limit => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// What one question must get from headless-dns.
struct Expect<'a> {
    name: String,
    qtype: RecordType,
    rcode: ResponseCode,
    answers: Vec<String>,
    _note: &'a str,
}

fn expect(
    name: String,
    qtype: RecordType,
    rcode: ResponseCode,
    answers: &[String],
) -> Expect<'static> {
    Expect {
        name,
        qtype,
        rcode,
        answers: answers.to_vec(),
        _note: "",
    }
}

async fn check_table(asker: &Asker, table: &[Expect<'_>]) -> Result<(), String> {
    let mut wrong = Vec::new();
    for row in table {
        let reply = asker.reply(&row.name, row.qtype).await?;
        let answers: BTreeSet<String> = row.answers.iter().cloned().collect();
        if reply.rcode != row.rcode || reply.answers != answers {
            wrong.push(format!(
                "{} {}: got {reply}, want {} {:?}",
                row.name, row.qtype, row.rcode, row.answers
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// The spec namespace: a StatefulSet-like headless Service, a dual-stack headless Service, a
/// PreferDualStack ClusterIP Service, ExternalName Services (out of and into the zone), and a
/// selector-less Service with a hand-made EndpointSlice.
async fn spec_cluster(env: &Env) -> Result<Vec<String>, String> {
    let (c, ns) = (&env.admin, "spec");
    api::namespace(c, ns).await?;
    api::service(c, ns, &ServiceSpec::headless("nginx-svc", "nginx")).await?;
    let mut dual = ServiceSpec::headless("dual", "dual");
    dual.families = Some(vec!["IPv4", "IPv6"]);
    dual.policy = Some("RequireDualStack");
    api::service(c, ns, &dual).await?;
    let mut api_svc = ServiceSpec::cluster_ip("api", "api");
    api_svc.policy = Some("PreferDualStack");
    api_svc.ports = vec![("http".into(), 80, json!("web"))];
    let created = api::service(c, ns, &api_svc).await?;
    let cluster_ips = created
        .spec
        .and_then(|s| s.cluster_ips)
        .ok_or("the API allocated no cluster IPs")?;
    api::external_name(c, ns, "db", "db.example.com").await?;
    api::external_name(c, ns, "to-api", "api.spec.svc.cluster.local").await?;
    let mut manual = ServiceSpec::headless("manual", "none");
    manual.selector = None;
    manual.ports = vec![("db".into(), 5432, json!(5432))];
    api::service(c, ns, &manual).await?;
    api::slice(
        c,
        ns,
        "manual-1",
        "manual",
        "IPv4",
        &[
            ("192.168.10.1", Some("db-0"), true),
            ("192.168.10.2", None, true),
            ("192.168.10.3", None, false),
        ],
    )
    .await?;
    let pods = [
        PodSpec::new("web-0", "nginx", &["10.244.1.10", "fd00:244::1:10"])
            .named("web-0", "nginx-svc"),
        PodSpec::new("web-1", "nginx", &["10.244.2.11", "fd00:244::2:11"])
            .named("web-1", "nginx-svc"),
        PodSpec::new("web-2", "nginx", &["10.244.1.12"])
            .named("web-2", "nginx-svc")
            .not_ready(),
        PodSpec::new("dual-0", "dual", &["10.244.3.1", "fd00:244::3:1"]),
        PodSpec::new("dual-1", "dual", &["10.244.3.2"]),
        PodSpec::new("api-7f9c-x2x", "api", &["10.244.4.1"]),
    ];
    for pod in &pods {
        api::pod(c, ns, "node-a", pod).await?;
    }
    Ok(cluster_ips)
}

async fn spec_table(env: &mut Env) -> Result<String, String> {
    let cluster_ips = spec_cluster(env).await?;
    let hdns = Asker::new(env.hdns.dns, Transport::Udp).await?;
    let (v4, v6) = (
        cluster_ips
            .iter()
            .find(|ip| !ip.contains(':'))
            .cloned()
            .unwrap_or_default(),
        cluster_ips
            .iter()
            .find(|ip| ip.contains(':'))
            .cloned()
            .unwrap_or_default(),
    );
    let ns = "spec";
    let a = |name: &str, ip: &str| format!("{name} A {ip}");
    let aaaa = |name: &str, ip: &str| format!("{name} AAAA {ip}");
    let nginx = fqdn("nginx-svc", ns);
    let web0 = format!("web-0.{nginx}");
    let dual = fqdn("dual", ns);
    let api_name = fqdn("api", ns);
    let api_pod = format!("10-244-4-1.{api_name}");
    let manual = fqdn("manual", ns);
    let to_api = fqdn("to-api", ns);
    use RecordType::{A, AAAA, CNAME, PTR, SOA, SRV, TXT};
    let (ok, nx) = (ResponseCode::NoError, ResponseCode::NXDomain);
    let table = vec![
        expect(
            nginx.clone(),
            A,
            ok,
            &[a(&nginx, "10.244.1.10"), a(&nginx, "10.244.2.11")],
        ),
        // SingleStack (the cluster's first family): its slices, and so its answers, IPv4 only.
        expect(nginx.clone(), AAAA, ok, &[]),
        expect(web0.clone(), A, ok, &[a(&web0, "10.244.1.10")]),
        expect(format!("web-2.{nginx}"), A, nx, &[]),
        expect(
            format!("_web._tcp.{nginx}"),
            SRV,
            ok,
            &[
                format!("_web._tcp.{nginx} SRV 0 50 8080 {web0}"),
                format!("_web._tcp.{nginx} SRV 0 50 8080 web-1.{nginx}"),
            ],
        ),
        expect(
            dual.clone(),
            A,
            ok,
            &[a(&dual, "10.244.3.1"), a(&dual, "10.244.3.2")],
        ),
        expect(dual.clone(), AAAA, ok, &[aaaa(&dual, "fd00:244::3:1")]),
        expect(api_name.clone(), A, ok, &[a(&api_name, &v4)]),
        expect(api_name.clone(), AAAA, ok, &[aaaa(&api_name, &v6)]),
        expect(api_pod.clone(), A, ok, &[a(&api_pod, "10.244.4.1")]),
        expect(
            reverse("10.244.4.1"),
            PTR,
            ok,
            &[format!("{} PTR {api_pod}", reverse("10.244.4.1"))],
        ),
        expect(
            reverse(&v4),
            PTR,
            ok,
            &[format!("{} PTR {api_name}", reverse(&v4))],
        ),
        expect(
            fqdn("db", ns),
            CNAME,
            ok,
            &[format!("{} CNAME db.example.com.", fqdn("db", ns))],
        ),
        expect(
            to_api.clone(),
            A,
            ok,
            &[format!("{to_api} CNAME {api_name}"), a(&api_name, &v4)],
        ),
        expect(
            manual.clone(),
            A,
            ok,
            &[a(&manual, "192.168.10.1"), a(&manual, "192.168.10.2")],
        ),
        expect(
            format!("db-0.{manual}"),
            A,
            ok,
            &[a(&format!("db-0.{manual}"), "192.168.10.1")],
        ),
        expect(format!("192-168-10-3.{manual}"), A, nx, &[]),
        expect(
            format!("10-244-1-12.{ns}.pod.{ZONE}"),
            A,
            ok,
            &[a(&format!("10-244-1-12.{ns}.pod.{ZONE}"), "10.244.1.12")],
        ),
        expect(format!("10-9-9-9.{ns}.pod.{ZONE}"), A, nx, &[]),
        expect(format!("nope.{ns}.svc.{ZONE}"), A, nx, &[]),
        expect(format!("{ns}.svc.{ZONE}"), A, ok, &[]),
        expect(format!("nowhere.svc.{ZONE}"), A, nx, &[]),
        expect(
            format!("dns-version.{ZONE}"),
            TXT,
            ok,
            &[format!("dns-version.{ZONE} TXT 1.1.0")],
        ),
        expect(
            ZONE.into(),
            SOA,
            ok,
            &[format!(
                "{ZONE} SOA ns.dns.{ZONE} hostmaster.{ZONE} (serial) 7200 1800 86400 5"
            )],
        ),
    ];
    let took = eventually(Duration::from_secs(30), || check_table(&hdns, &table)).await?;
    // The negative answers say why (RFC 8914), from what the real API reported.
    let reasons = [
        (
            format!("web-2.{nginx}"),
            "pod web-2 is not Ready, so Service nginx-svc does not list it",
        ),
        (
            format!("nope.{ns}.svc.{ZONE}"),
            "no Service nope in namespace spec",
        ),
        (format!("nowhere.svc.{ZONE}"), "no namespace nowhere"),
        (
            format!("192-168-10-3.{manual}"),
            "Service manual has no endpoint 192-168-10-3",
        ),
    ];
    for (name, says) in &reasons {
        let reason = dns::ede_text(&hdns.ask(name, A).await?);
        if !reason.as_deref().is_some_and(|r| r.starts_with(says)) {
            return Err(format!("{name}: reason {reason:?}, expected {says:?}"));
        }
    }
    Ok(format!(
        "{} questions answered as the spec says, {:.1} s after the objects were created; \
         {} negative answers say why",
        table.len(),
        took.as_secs_f64(),
        reasons.len()
    ))
}

/// Every name the objects of namespaces starting with `prefix` could give, and some that
/// cannot exist, with the types asked of each.
async fn parity_questions(env: &Env, prefix: &str) -> Result<Vec<(String, RecordType)>, String> {
    use RecordType::{A, AAAA, NS, PTR, SOA, SRV, TXT};
    use k8s_openapi::api::core::v1::{Pod, Service};
    let services: Api<Service> = Api::all(env.admin.clone());
    let pods: Api<Pod> = Api::all(env.admin.clone());
    let lp = kube::api::ListParams::default();
    let mut questions = BTreeSet::new();
    let mut names = |name: String, types: &[RecordType]| {
        for t in types {
            questions.insert((name.clone(), *t));
        }
    };
    let mut namespaces = BTreeSet::new();
    for service in services.list(&lp).await.map_err(|e| e.to_string())?.items {
        let ns = service.metadata.namespace.clone().unwrap_or_default();
        if !ns.starts_with(prefix) {
            continue;
        }
        namespaces.insert(ns.clone());
        let name = service.metadata.name.clone().unwrap_or_default();
        let svc = fqdn(&name, &ns);
        names(svc.clone(), &[A, AAAA, SRV, TXT]);
        names(format!("nope.{svc}"), &[A]);
        let spec = service.spec.unwrap_or_default();
        for port in spec.ports.unwrap_or_default() {
            if let Some(port_name) = port.name {
                let protocol = port.protocol.unwrap_or("TCP".into()).to_lowercase();
                names(format!("_{port_name}._{protocol}.{svc}"), &[SRV]);
                names(format!("_{port_name}._udp.{svc}"), &[SRV]);
            }
        }
        for ip in spec
            .cluster_ips
            .unwrap_or_default()
            .iter()
            .filter(|ip| *ip != "None")
        {
            names(reverse(ip), &[PTR]);
        }
        for endpoint in api::ready_endpoints(&env.admin, &ns, &name).await? {
            let (address, hostname) = endpoint;
            names(
                format!("{}.{svc}", hostname.unwrap_or_else(|| dashed(&address))),
                &[A, AAAA],
            );
            names(format!("{}.{svc}", dashed(&address)), &[A]);
        }
    }
    for pod in pods.list(&lp).await.map_err(|e| e.to_string())?.items {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        if !ns.starts_with(prefix) {
            continue;
        }
        namespaces.insert(ns.clone());
        for ip in pod.status.and_then(|s| s.pod_ips).unwrap_or_default() {
            names(reverse(&ip.ip), &[PTR]);
            names(format!("{}.{ns}.pod.{ZONE}", dashed(&ip.ip)), &[A, AAAA]);
        }
    }
    for ns in &namespaces {
        names(format!("{ns}.svc.{ZONE}"), &[A]);
        names(format!("{ns}.pod.{ZONE}"), &[A]);
    }
    names(format!("{prefix}missing.svc.{ZONE}"), &[A]);
    names(format!("dns-version.{ZONE}"), &[TXT]);
    names(ZONE.into(), &[SOA, NS]);
    names(format!("svc.{ZONE}"), &[A]);
    names(reverse("10.255.255.1"), &[PTR]);
    Ok(questions.into_iter().collect())
}

/// A difference between headless-dns and CoreDNS that is meant (README: "Deliberate
/// differences from CoreDNS"), and how to know it.
pub struct Deliberate {
    pub what: &'static str,
    pub applies: fn(&str, RecordType, &Reply, &Reply) -> bool,
}

const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        what: "SRV weights: CoreDNS divides 100 by its entries before merging a target's addresses",
        applies: |_, qtype, ours, theirs| {
            crate::dns::weights_alone_differ(qtype, ours, theirs, crate::dns::unweighted)
        },
    },
    Deliberate {
        what: "an ExternalName asked for another type: a CNAME for every type (RFC 1034); CoreDNS: NODATA",
        applies: |name, qtype, ours, theirs| {
            !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::CNAME)
                && ours
                    .answers
                    .iter()
                    .any(|a| a.starts_with(&format!("{name} CNAME ")))
                && theirs.answers.is_empty()
                && theirs.rcode == ResponseCode::NoError
        },
    },
    Deliberate {
        what: "pod record of a pod's second (IPv6) address: CoreDNS knows only status.podIP",
        applies: |name, _, ours, theirs| {
            name.ends_with(&format!(".pod.{ZONE}"))
                && name
                    .split('.')
                    .next()
                    .is_some_and(|label| label.contains("--") || label.matches('-').count() > 3)
                && ours.rcode == ResponseCode::NoError
                && theirs.rcode == ResponseCode::NXDomain
        },
    },
    Deliberate {
        what: "NS at the apex: CoreDNS outside a cluster has no address of its own to publish",
        applies: |name, qtype, ours, theirs| {
            name == ZONE
                && qtype == RecordType::NS
                && ours.answers.len() == 1
                && theirs.answers.is_empty()
        },
    },
];

/// The parity questions of the spec namespace and the generated ones.
async fn spec_and_generated_questions(env: &Env) -> Result<Vec<(String, RecordType)>, String> {
    let mut questions = Vec::new();
    for prefix in ["spec", "gen-"] {
        questions.extend(parity_questions(env, prefix).await?);
    }
    Ok(questions)
}

/// Asks two headless-dns servers (named `names` in a difference) every question over UDP:
/// rcode, answers and SOA must be the same.
async fn same_replies(
    servers: [&crate::servers::Server; 2],
    names: [&str; 2],
    questions: &[(String, RecordType)],
) -> Result<(), String> {
    let a = Asker::new(servers[0].dns, Transport::Udp).await?;
    let b = Asker::new(servers[1].dns, Transport::Udp).await?;
    let mut differences = Vec::new();
    for (name, qtype) in questions {
        let (x, y) = (a.reply(name, *qtype).await?, b.reply(name, *qtype).await?);
        if x.rcode != y.rcode || x.answers != y.answers || x.soa != y.soa {
            differences.push(format!(
                "{name} {qtype}: {} {x} / {} {y}",
                names[0], names[1]
            ));
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    let shown: Vec<&String> = differences.iter().take(20).collect();
    Err(format!(
        "{} of {} replies differ: {shown:#?}",
        differences.len(),
        questions.len()
    ))
}

/// A server's lists so far, and how many of them were of a kind (`series`: its counter).
fn lists_of(server: &crate::servers::Server, series: &str) -> (f64, f64) {
    (
        shipped::metric(server, series).unwrap_or(-1.0),
        shipped::metric(server, "headless_dns_kubernetes_lists_total").unwrap_or(-1.0),
    )
}

/// The API's protobuf, as the real kube-apiserver writes it, read into the same state as its
/// JSON: a second headless-dns with `--api-encoding json` on the same cluster answers every
/// parity question exactly as the first (protobuf, the default), over UDP; each says in
/// `/metrics` which encoding its lists came in; and a change made now reaches both through
/// their watches.
async fn protobuf_and_json(env: &mut Env) -> Result<String, String> {
    const PROTOBUF_LISTS: &str = "headless_dns_kubernetes_protobuf_lists_total";
    let json_server = start_headless_dns(
        env.work(),
        "headless-dns-json",
        &env.hdns_kubeconfig,
        &["--api-encoding", "json"],
        None,
    )?;
    crate::control_plane::wait_for(
        Duration::from_secs(30),
        "the JSON headless-dns to be ready",
        || ready(&json_server),
    )?;
    let (protobuf, lists) = lists_of(&env.hdns, PROTOBUF_LISTS);
    // ServiceImports are a custom resource, which the API serves as JSON only: one list each.
    if protobuf < 5.0 || protobuf != lists - 1.0 {
        return Err(format!(
            "the default server listed {lists} times, {protobuf} of them as protobuf"
        ));
    }
    let (json_protobuf, json_lists) = lists_of(&json_server, PROTOBUF_LISTS);
    if json_protobuf != 0.0 || json_lists < 4.0 {
        return Err(format!(
            "--api-encoding json listed {json_lists} times, {json_protobuf} of them as protobuf"
        ));
    }
    // Changes after the lists, carried by each server's watches: a namespace, a headless
    // Service, a dual-stack pod (named, with a named port) behind it.
    let (c, ns) = (env.admin.clone(), "encodings");
    api::namespace(&c, ns).await?;
    api::service(&c, ns, &ServiceSpec::headless("encodings", "enc")).await?;
    let pod =
        PodSpec::new("enc-0", "enc", &["10.77.0.1", "fd00:77::1"]).named("enc-0", "encodings");
    api::pod(&c, ns, "node-a", &pod).await?;
    let name = fqdn("encodings", ns);
    let mut questions = spec_and_generated_questions(env).await?;
    for qtype in [RecordType::SRV, RecordType::A, RecordType::AAAA] {
        questions.push((name.clone(), qtype));
        questions.push((format!("enc-0.{name}"), qtype));
    }
    let ours = Asker::new(env.hdns.dns, Transport::Udp).await?;
    let theirs = Asker::new(json_server.dns, Transport::Udp).await?;
    for asker in [&ours, &theirs] {
        eventually(Duration::from_secs(10), || async {
            let reply = asker.reply(&name, RecordType::A).await?;
            (reply.rcode == ResponseCode::NoError && !reply.answers.is_empty())
                .then_some(())
                .ok_or(format!("{name} A: {reply}"))
        })
        .await?;
    }
    same_replies([&env.hdns, &json_server], ["protobuf", "JSON"], &questions).await?;
    Ok(format!(
        "{} replies alike; {protobuf} of {lists} lists as protobuf, 0 of {json_lists} with \
         --api-encoding json",
        questions.len()
    ))
}

/// `--initial-list stream` against the real kube-apiserver: with its WatchList gate off (1.33's
/// default) the streaming list is refused and headless-dns lists instead; with the gate on it
/// has every resource's state from a watch's initial events (protobuf), and answers every
/// parity question exactly as the listing server does. The API server is left as it was.
async fn streaming_lists(env: &mut Env) -> Result<String, String> {
    const STREAMED: &str = "headless_dns_kubernetes_streamed_lists_total";
    let (work, kubeconfig) = (env.work().to_path_buf(), env.hdns_kubeconfig.clone());
    let start = |name: &str| {
        start_headless_dns(
            &work,
            name,
            &kubeconfig,
            &["--initial-list", "stream"],
            None,
        )
    };
    let ready_in = |server: &crate::servers::Server, what: &str| {
        crate::control_plane::wait_for(Duration::from_secs(60), what, || ready(server))
            .map_err(|e| format!("{e}:\n{}", server.process.tail(10)))
    };
    let gate_off = start("headless-dns-stream-gate-off")?;
    ready_in(&gate_off, "headless-dns (gate off) to be ready")?;
    let off = lists_of(&gate_off, STREAMED);
    if off.0 != 0.0 || off.1 < 4.0 {
        return Err(format!("gate off: {} streamed of {} lists", off.0, off.1));
    }
    drop(gate_off);

    env.plane
        .start_apiserver_with(&["--feature-gates=WatchList=true".to_string()])?;
    env.admin = api::client(&env.plane.admin).await?;
    let outcome = async {
        let gate_on = start("headless-dns-stream-gate-on")?;
        ready_in(&gate_on, "headless-dns (gate on) to be ready")?;
        let on = lists_of(&gate_on, STREAMED);
        if on.0 < 4.0 || on.0 != on.1 {
            return Err(format!("gate on: {} streamed of {} lists", on.0, on.1));
        }
        let questions = spec_and_generated_questions(env).await?;
        same_replies([&gate_on, &env.hdns], ["streamed", "listed"], &questions).await?;
        Ok(format!(
            "gate off: 0 of {} lists streamed; gate on: {} of {} streamed, {} replies as the \
             listing server's",
            off.1,
            on.0,
            on.1,
            questions.len()
        ))
    }
    .await;
    env.plane.start_apiserver()?;
    env.admin = api::client(&env.plane.admin).await?;
    outcome
}

async fn coredns_parity(env: &mut Env, prefix: &str) -> Result<String, String> {
    let questions = parity_questions(env, prefix).await?;
    if questions.len() < 10 {
        return Err(format!("only {} questions for {prefix}*", questions.len()));
    }
    parity(env, &questions, DELIBERATE).await
}

/// Asks headless-dns and CoreDNS each question over UDP and TCP: every reply alike (rcode, AA,
/// answers, SOA in the authority) but where one of `deliberate` explains the difference.
pub async fn parity(
    env: &Env,
    questions: &[(String, RecordType)],
    deliberate_differences: &[Deliberate],
) -> Result<String, String> {
    let mut compared = 0;
    let mut deliberate: BTreeMap<&str, usize> = BTreeMap::new();
    let mut differences = Vec::new();
    for transport in [Transport::Udp, Transport::Tcp] {
        let ours = Asker::new(env.hdns.dns, transport).await?;
        let theirs = Asker::new(env.coredns.dns, transport).await?;
        for (name, qtype) in questions {
            let (a, b) = (
                ours.reply(name, *qtype)
                    .await
                    .map_err(|e| format!("headless-dns {transport:?}: {e}"))?,
                theirs
                    .reply(name, *qtype)
                    .await
                    .map_err(|e| format!("CoreDNS {transport:?}: {e}"))?,
            );
            compared += 1;
            let same = a.rcode == b.rcode
                && a.authoritative == b.authoritative
                && a.answers == b.answers
                && a.soa == b.soa;
            if same {
                continue;
            }
            match deliberate_differences
                .iter()
                .find(|d| (d.applies)(name, *qtype, &a, &b))
            {
                Some(d) => *deliberate.entry(d.what).or_default() += 1,
                None => differences.push(format!(
                    "{transport:?} {name} {qtype}: headless-dns {a} / CoreDNS {b}"
                )),
            }
        }
    }
    if !differences.is_empty() {
        let shown: Vec<&String> = differences.iter().take(120).collect();
        return Err(format!(
            "{} of {compared} replies differ: {shown:#?}",
            differences.len()
        ));
    }
    Ok(format!(
        "{compared} replies (UDP and TCP) alike; deliberate differences: {}",
        if deliberate.is_empty() {
            "none met".into()
        } else {
            format!("{deliberate:?}")
        }
    ))
}

/// Changes through the real API, each timed from the write's return to the first answer that
/// reflects it.
async fn watch_path(env: &mut Env) -> Result<String, String> {
    let (c, ns) = (env.admin.clone(), "watch");
    api::namespace(&c, ns).await?;
    api::service(&c, ns, &ServiceSpec::headless("web", "web")).await?;
    let hdns = Asker::new(env.hdns.dns, Transport::Udp).await?;
    let svc = fqdn("web", ns);
    let mut latencies = Vec::new();
    // Times `change`, then waits until `name` answers `want` (addresses; empty: none).
    async fn timed(
        hdns: &Asker,
        name: &str,
        want: &[&str],
        latencies: &mut Vec<Duration>,
        change: impl Future<Output = Result<(), String>>,
    ) -> Result<(), String> {
        change.await?;
        let start = Instant::now();
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        loop {
            if hdns.addresses(name).await? == want {
                latencies.push(start.elapsed());
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!("{name} never answered {want:?}"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // Scale up, one pod at a time, each becoming Ready.
    let mut pods = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        let ip = format!("10.246.0.{}", i + 1);
        let pod =
            PodSpec::new(&format!("web-{i}"), "web", &[&ip]).named(&format!("web-{i}"), "web");
        expected.push(ip.clone());
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        timed(
            &hdns,
            &svc,
            &want,
            &mut latencies,
            api::pod(&c, ns, "node-a", &pod),
        )
        .await?;
        pods.push(pod);
    }
    // Readiness off and on again, twenty times.
    for round in 0..20 {
        let mut pod = pods[round % 10].clone();
        let name = format!("{}.{svc}", pod.name);
        pod.ready = false;
        timed(
            &hdns,
            &name,
            &[],
            &mut latencies,
            api::set_status(&c, ns, &pod),
        )
        .await?;
        pod.ready = true;
        let ip = pod.ips[0].clone();
        timed(
            &hdns,
            &name,
            &[&ip],
            &mut latencies,
            api::set_status(&c, ns, &pod),
        )
        .await?;
    }
    // Terminating: held by a finalizer, deleted.
    let mut held = PodSpec::new("held", "web", &["10.246.1.1"]).named("held", "web");
    held.terminating = false;
    let held_name = format!("held.{svc}");
    timed(
        &hdns,
        &held_name,
        &["10.246.1.1"],
        &mut latencies,
        api::pod(&c, ns, "node-a", &held),
    )
    .await?;
    let pods_api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), ns);
    let hold = async {
        pods_api
            .patch(
                "held",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": ["headless-dns.test/hold"]}})),
            )
            .await
            .map_err(|e| e.to_string())?;
        pods_api
            .delete("held", &Default::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    timed(&hdns, &held_name, &[], &mut latencies, hold).await?;
    api::delete_pod(&c, ns, "held").await?;
    // Scale down: deleted pods leave.
    for i in (5..10).rev() {
        expected.pop();
        let want: Vec<&str> = expected.iter().map(String::as_str).collect();
        timed(
            &hdns,
            &svc,
            &want,
            &mut latencies,
            api::delete_pod(&c, ns, &format!("web-{i}")),
        )
        .await?;
    }
    // A selector-less Service and its hand-made slice.
    let mut manual = ServiceSpec::headless("manual", "none");
    manual.selector = None;
    api::service(&c, ns, &manual).await?;
    let manual_name = fqdn("manual", ns);
    timed(
        &hdns,
        &manual_name,
        &["192.168.20.1"],
        &mut latencies,
        api::slice(
            &c,
            ns,
            "manual-1",
            "manual",
            "IPv4",
            &[("192.168.20.1", Some("db-0"), true)],
        ),
    )
    .await?;
    // The Service deleted: every name under it goes.
    timed(
        &hdns,
        &format!("web-0.{svc}"),
        &[],
        &mut latencies,
        api::delete_service(&c, ns, "web"),
    )
    .await?;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Ok(format!(
        "{} changes (scale up, 20 readiness flips each way, terminating, scale down, slice, Service deleted); \
         watch event -> answer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    ))
}

/// A small deterministic random source, so that a failing cluster can be made again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Generates a namespace of Services (headless and ClusterIP, every family policy, named and
/// numbered target ports, publishNotReadyAddresses) and pods (random readiness, phases,
/// terminating, hostnames under the right or another Service, one or two families).
async fn generated_cluster(env: &Env, g: usize, rng: &mut Rng) -> Result<Vec<String>, String> {
    let ns = &format!("gen-{g}");
    let c = &env.admin;
    api::namespace(c, ns).await?;
    let families: [(Option<Vec<&'static str>>, Option<&'static str>); 5] = [
        (None, None),
        (Some(vec!["IPv6"]), Some("SingleStack")),
        (None, Some("PreferDualStack")),
        (Some(vec!["IPv6", "IPv4"]), Some("RequireDualStack")),
        (Some(vec!["IPv4"]), Some("SingleStack")),
    ];
    let mut services = Vec::new();
    for s in 0..5 {
        let name = format!("s{s}");
        let mut spec = if rng.chance(70) {
            ServiceSpec::headless(&name, &format!("app{}", s % 4))
        } else {
            ServiceSpec::cluster_ip(&name, &format!("app{}", s % 4))
        };
        spec.publish_not_ready = rng.chance(25);
        let (f, p) = families[rng.below(5) as usize].clone();
        spec.families = f;
        spec.policy = p;
        if rng.chance(50) {
            spec.ports = vec![("web".into(), 80, json!(8080))];
        }
        api::service(c, ns, &spec).await?;
        services.push(name);
    }
    let mut pod_ips = Vec::new();
    for p in 0..16 {
        let (n, subnet) = (rng.below(200) + 1, g * 16 + p);
        let mut ips = vec![format!("10.247.{subnet}.{n}")];
        if rng.chance(60) {
            ips.push(format!("fd00:247:{subnet:x}::{n:x}"));
        }
        let mut pod = PodSpec::new(
            &format!("p{p}"),
            &format!("app{}", rng.below(4)),
            &ips.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        pod.ready = rng.chance(70);
        pod.phase = [
            "Running",
            "Running",
            "Running",
            "Pending",
            "Succeeded",
            "Failed",
        ][rng.below(6) as usize];
        pod.terminating = rng.chance(15);
        if rng.chance(50) {
            pod.hostname = Some(format!("h{p}"));
            pod.subdomain = Some(format!("s{}", rng.below(6)));
        }
        if rng.chance(20) {
            pod.ports = vec![];
        }
        api::pod(c, ns, if p % 2 == 0 { "node-a" } else { "node-b" }, &pod).await?;
        pod_ips.extend(ips);
    }
    Ok(pod_ips)
}

/// For every Service with a selector, what headless-dns serves equals the ready endpoints of
/// the Service's EndpointSlices, by address family: the service name's addresses (headless),
/// each endpoint's name, and every pod address's PTR names.
async fn slice_parity(env: &mut Env) -> Result<String, String> {
    let seed = std::env::var("REAL_CLUSTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_u64);
    let mut rng = Rng(seed);
    let mut checked = 0;
    let mut endpoints_seen = 0;
    for g in 0..3 {
        let ns = format!("gen-{g}");
        let pod_ips = generated_cluster(env, g, &mut rng).await?;
        let hdns = Asker::new(env.hdns.dns, Transport::Udp).await?;
        let start = Instant::now();
        let count = loop {
            match compare_with_slices(env, &ns, &pod_ips, &hdns).await {
                Ok(count) => break count,
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("{ns} (seed {seed:#x}): {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        endpoints_seen += count;
        checked += 1;
    }
    Ok(format!(
        "{checked} generated namespaces (seed {seed:#x}), {endpoints_seen} ready endpoints: headless-dns serves exactly the controller's slices"
    ))
}

async fn compare_with_slices(
    env: &Env,
    ns: &str,
    pod_ips: &[String],
    hdns: &Asker,
) -> Result<usize, String> {
    use k8s_openapi::api::core::v1::Service;
    let services: Api<Service> = Api::namespaced(env.admin.clone(), ns);
    let mut ptr_expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut count = 0;
    for service in services
        .list(&Default::default())
        .await
        .map_err(|e| e.to_string())?
        .items
    {
        let name = service.metadata.name.clone().unwrap_or_default();
        let spec = service.spec.unwrap_or_default();
        if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
            continue;
        }
        let svc = fqdn(&name, ns);
        let ready = api::ready_endpoints(&env.admin, ns, &name).await?;
        count += ready.len();
        if spec.cluster_ip.as_deref() == Some("None") {
            let want: BTreeSet<String> = ready.iter().map(|(ip, _)| ip.clone()).collect();
            let got = hdns.addresses(&svc).await?;
            if got != want {
                return Err(format!("{svc}: serves {got:?}, slices say {want:?}"));
            }
        }
        let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (ip, hostname) in &ready {
            let endpoint = format!("{}.{svc}", hostname.clone().unwrap_or_else(|| dashed(ip)));
            by_name
                .entry(endpoint.clone())
                .or_default()
                .insert(ip.clone());
            ptr_expected.entry(ip.clone()).or_default().insert(endpoint);
        }
        for (endpoint, want) in by_name {
            let got = hdns.addresses(&endpoint).await?;
            if got != want {
                return Err(format!("{endpoint}: serves {got:?}, slices say {want:?}"));
            }
        }
    }
    for ip in pod_ips {
        let reply = hdns.reply(&reverse(ip), RecordType::PTR).await?;
        let got: BTreeSet<String> = reply
            .answers
            .iter()
            .filter_map(|a| a.rsplit(' ').next().map(str::to_owned))
            .collect();
        let want = ptr_expected.get(ip).cloned().unwrap_or_default();
        if got != want {
            return Err(format!("PTR of {ip}: serves {got:?}, slices say {want:?}"));
        }
    }
    Ok(count)
}

/// The shipped ClusterRole lets headless-dns become ready; without any one of its verbs on any
/// one of its resources, it does not, and says which permission it lacks.
async fn rbac(env: &mut Env) -> Result<String, String> {
    if !ready(&env.hdns) {
        return Err("headless-dns with the shipped ClusterRole is not ready".into());
    }
    let shipped: Vec<Value> = deployment_rbac();
    let role = shipped
        .iter()
        .find(|o| o["kind"] == "ClusterRole")
        .ok_or("no ClusterRole in config/deploy/headless-dns.yaml")?
        .clone();
    let mut variants = Vec::new();
    for (r, rule) in role["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let group = rule["apiGroups"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for resource in rule["resources"].as_array().cloned().unwrap_or_default() {
            for verb in rule["verbs"].as_array().cloned().unwrap_or_default() {
                let (resource, verb) = (
                    resource.as_str().unwrap_or_default().to_string(),
                    verb.as_str().unwrap_or_default().to_string(),
                );
                // The role without `verb` on `resource`: that resource's rule split out.
                let mut rules: Vec<Value> = role["rules"].as_array().cloned().unwrap_or_default();
                let others: Vec<Value> = rule["resources"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|x| *x != json!(resource))
                    .collect();
                rules[r]["resources"] = json!(others);
                let verbs: Vec<Value> = rule["verbs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|x| *x != json!(verb))
                    .collect();
                rules.push(json!({"apiGroups": [group], "resources": [resource], "verbs": verbs}));
                rules.retain(|rule| {
                    rule["resources"].as_array().is_some_and(|r| !r.is_empty())
                        && rule["verbs"].as_array().is_some_and(|v| !v.is_empty())
                });
                let name = format!("hdns-without-{verb}-{resource}");
                variants.push((name, resource, group.clone(), verb, rules));
            }
        }
    }
    let mut servers = Vec::new();
    for (name, resource, group, verb, rules) in &variants {
        apply_rbac(
            &env.admin,
            &[
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "headless-dns"}}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                       "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "headless-dns"}]}),
            ],
        )
        .await?;
        let token = token(&env.admin, "headless-dns", name).await?;
        let kubeconfig = env.work().join(format!("{name}.kubeconfig"));
        std::fs::write(
            &kubeconfig,
            crate::control_plane::kubeconfig(env.work(), &env.plane.api_url(), &token),
        )
        .map_err(|e| e.to_string())?;
        let server = start_headless_dns(env.work(), name, &kubeconfig, &[], None)?;
        let resource = if group.is_empty() {
            resource.clone()
        } else {
            format!("{resource}.{group}")
        };
        servers.push((
            server,
            verb.clone(),
            format!("missing permission to {verb} {resource}"),
        ));
    }
    // A watch starts once the list is done, and is refused then.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut wrong = Vec::new();
    let mut unready = 0;
    for (server, verb, missing) in &servers {
        let log = std::fs::read_to_string(&server.process.log).unwrap_or_default();
        let named = log
            .lines()
            .any(|l| l.contains("\"WARN\"") && l.contains(missing.as_str()));
        if !named {
            wrong.push(format!(
                "{}: no warning naming '{missing}'",
                server.process.name
            ));
        }
        // Without list there is no first complete state; without watch the list still is one.
        // ServiceImports come with a CRD nobody asked to be followed: readiness does not wait.
        if verb == "list" && !missing.contains("serviceimports") {
            if ready(server) {
                wrong.push(format!("{}: ready without listing", server.process.name));
            }
            unready += 1;
        }
    }
    if !wrong.is_empty() {
        return Err(wrong.join("; "));
    }
    Ok(format!(
        "{} rule/verb pairs each removed in turn: the missing permission named at WARN each time; \
         without list ({unready}), never ready",
        servers.len()
    ))
}

async fn invalid_token(env: &mut Env) -> Result<String, String> {
    let kubeconfig = env.work().join("bad-token.kubeconfig");
    std::fs::write(
        &kubeconfig,
        crate::control_plane::kubeconfig(env.work(), &env.plane.api_url(), "not-a-token"),
    )
    .map_err(|e| e.to_string())?;
    let server = start_headless_dns(env.work(), "bad-token", &kubeconfig, &[], None)?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = std::fs::read_to_string(&server.process.log).unwrap_or_default();
    if ready(&server) {
        return Err("ready with a refused token".into());
    }
    if !log.contains("401 Unauthorized") {
        return Err(format!("no 401 warning: {}", server.process.tail(5)));
    }
    let asker = Asker::new(server.dns, Transport::Udp).await?;
    let reply = asker
        .reply(&fqdn("nginx-svc", "spec"), RecordType::A)
        .await?;
    if reply.rcode != ResponseCode::ServFail {
        return Err(format!("answers {reply} before any complete list"));
    }
    let warnings = log.lines().filter(|l| l.contains("\"WARN\"")).count();
    Ok(format!(
        "not ready, SERVFAIL in the zone, 401 named; {warnings} warning line(s) in 6 s"
    ))
}

async fn role_loses_slices(env: &mut Env) -> Result<String, String> {
    let roles: Api<ClusterRole> = Api::all(env.admin.clone());
    let shipped = roles.get("headless-dns").await.map_err(|e| e.to_string())?;
    let without: Vec<Value> = serde_json::to_value(shipped.rules.clone().unwrap_or_default())
        .map_err(|e| e.to_string())?
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|rule| !rule["resources"].to_string().contains("endpointslices"))
        .collect();
    roles
        .patch(
            "headless-dns",
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": without})),
        )
        .await
        .map_err(|e| e.to_string())?;
    // The open watch ends within 20 s; watching again is refused.
    let log_path = env.hdns.process.log.clone();
    let named = eventually(Duration::from_secs(45), || {
        let log_path = log_path.clone();
        async move {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("missing permission to watch endpointslices.discovery.k8s.io")
                || log.contains("missing permission to list endpointslices.discovery.k8s.io")
            {
                Ok(())
            } else {
                Err("no warning yet".into())
            }
        }
    })
    .await;
    let hdns = Asker::new(env.hdns.dns, Transport::Udp).await?;
    let still = hdns
        .addresses(&format!("web-0.{}", fqdn("nginx-svc", "spec")))
        .await?;
    let still_ready = ready(&env.hdns);
    // Restore the role, and wait for recovery.
    roles
        .patch(
            "headless-dns",
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": shipped.rules})),
        )
        .await
        .map_err(|e| e.to_string())?;
    let took = named.map_err(|e| format!("{e}: {}", env.hdns.process.tail(5)))?;
    if still.is_empty() || !still_ready {
        return Err("stopped serving the last state".into());
    }
    let recovered = eventually(Duration::from_secs(60), || {
        let log_path = log_path.clone();
        async move {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.matches("Kubernetes API recovered").count() >= 1 {
                Ok(())
            } else {
                Err("not recovered".into())
            }
        }
    })
    .await?;
    Ok(format!(
        "the missing permission named {:.1} s after the role changed; last state served; recovered {:.1} s after it was restored",
        took.as_secs_f64(),
        recovered.as_secs_f64()
    ))
}

/// Names and addresses that must keep answering through faults.
async fn known_answers(hdns: &Asker) -> Result<(), String> {
    let web0 = format!("web-0.{}", fqdn("nginx-svc", "spec"));
    let got = hdns.addresses(&web0).await?;
    if got != BTreeSet::from(["10.244.1.10".to_string()]) {
        return Err(format!("{web0}: {got:?}"));
    }
    Ok(())
}

async fn apiserver_restart(env: &mut Env) -> Result<String, String> {
    let hdns = Asker::new(env.hdns.dns, Transport::Udp).await?;
    known_answers(&hdns).await?;
    env.plane.stop_apiserver();
    let down = Instant::now();
    let mut asked = 0;
    while down.elapsed() < Duration::from_secs(5) {
        known_answers(&hdns)
            .await
            .map_err(|e| format!("while the API server was down: {e}"))?;
        let missing = hdns.reply(&fqdn("nope", "spec"), RecordType::A).await?;
        if missing.rcode != ResponseCode::NXDomain {
            return Err(format!(
                "a missing name answered {missing} while the API server was down"
            ));
        }
        asked += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.plane.start_apiserver()?;
    let restarted = Instant::now();
    env.admin = crate::api::client(&env.plane.admin).await?;
    let pod =
        PodSpec::new("after-restart", "nginx", &["10.244.9.1"]).named("after-restart", "nginx-svc");
    api::pod(&env.admin, "spec", "node-a", &pod).await?;
    let name = format!("after-restart.{}", fqdn("nginx-svc", "spec"));
    eventually(Duration::from_secs(60), || async {
        if hdns.addresses(&name).await? == BTreeSet::from(["10.244.9.1".to_string()]) {
            Ok(())
        } else {
            Err(format!("{name} not served"))
        }
    })
    .await?;
    Ok(format!(
        "{asked} rounds of questions answered from the last state while it was down (no false NXDOMAIN); \
         a pod made after the restart served {:.1} s after the API server was ready again",
        restarted.elapsed().as_secs_f64()
    ))
}

/// etcd compaction under a watch: headless-dns is stopped (SIGSTOP) while objects change and the
/// API server restarts without a watch cache (watches read etcd) and compacting etcd every 2 s;
/// its watches resume from a compacted revision, get 410, and it lists again; nothing made
/// meanwhile is lost.
async fn compacted(env: &mut Env) -> Result<String, String> {
    let (c, ns) = (env.admin.clone(), "spec");
    let hdns = Asker::new(env.hdns.dns, Transport::Udp).await?;
    let log = |env: &Env| std::fs::read_to_string(&env.hdns.process.log).unwrap_or_default();
    let expired_before = log(env)
        .matches("resourceVersion expired; listing again")
        .count();
    env.hdns.process.signal(libc::SIGSTOP);
    let result = async {
        api::delete_pod(&c, ns, "web-1").await?;
        let pod = PodSpec::new("while-stopped", "nginx", &["10.244.9.2"])
            .named("while-stopped", "nginx-svc");
        api::pod(&c, ns, "node-a", &pod).await?;
        env.plane.stop_apiserver();
        env.plane.start_apiserver_with(&[
            "--watch-cache=false".into(),
            "--etcd-compaction-interval=2s".into(),
        ])?;
        env.admin = crate::api::client(&env.plane.admin).await?;
        let pod = PodSpec::new("after-compaction", "nginx", &["10.244.9.3"])
            .named("after-compaction", "nginx-svc");
        api::pod(&env.admin, ns, "node-a", &pod).await?;
        // Two compaction rounds: every revision headless-dns saw is gone from etcd.
        tokio::time::sleep(Duration::from_secs(6)).await;
        Ok::<_, String>(())
    }
    .await;
    env.hdns.process.signal(libc::SIGCONT);
    result?;
    let resumed = Instant::now();
    let svc = fqdn("nginx-svc", ns);
    eventually(Duration::from_secs(60), || async {
        let web1 = hdns.addresses(&format!("web-1.{svc}")).await?;
        let stopped = hdns.addresses(&format!("while-stopped.{svc}")).await?;
        let after = hdns.addresses(&format!("after-compaction.{svc}")).await?;
        if web1.is_empty() && !stopped.is_empty() && !after.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "web-1 {web1:?}, while-stopped {stopped:?}, after-compaction {after:?}"
            ))
        }
    })
    .await?;
    let took = resumed.elapsed();
    let expired = log(env)
        .matches("resourceVersion expired; listing again")
        .count()
        - expired_before;
    if expired == 0 {
        return Err("the state caught up without meeting a 410".into());
    }
    Ok(format!(
        "{expired} watch(es) met 410 on a compacted revision and listed again; the deletion and both \
         additions served {:.1} s after it resumed",
        took.as_secs_f64()
    ))
}
