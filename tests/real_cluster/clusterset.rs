//! The clusterset zone beside CoreDNS's `multicluster clusterset.local`, on one real API server
//! with the Multi-Cluster Services CRDs: ServiceImports and EndpointSlices created as an MCS
//! controller writes them (two source clusters, ClusterSetIP and Headless imports, ready, not
//! ready and terminating endpoints, with and without hostnames, dual-stack), every name asked of
//! both over UDP and TCP.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};

use crate::Env;
use crate::api;
use crate::cases::{Deliberate, eventually, parity};
use crate::dns::{Asker, Reply, Transport};

const NS: &str = "mcs";
const ZONE: &str = "clusterset.local.";

/// A ServiceImport, as an MCS controller creates it.
async fn import(client: &Client, name: &str, spec: Value) -> Result<(), String> {
    let resource = ApiResource {
        group: "multicluster.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "multicluster.x-k8s.io/v1alpha1".into(),
        kind: "ServiceImport".into(),
        plural: "serviceimports".into(),
    };
    let imports: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": name, "namespace": NS}, "spec": spec,
    }))
    .map_err(|e| e.to_string())?;
    imports
        .create(&PostParams::default(), &object)
        .await
        .map(|_| ())
        .map_err(|e| format!("ServiceImport {name}: {e}"))
}

/// One endpoint: address, hostname, `conditions.ready` (unset: `None`), terminating.
type Endpoint<'a> = (&'a str, Option<&'a str>, Option<bool>, bool);

/// An EndpointSlice of `import`'s endpoints in `cluster`, labelled as MCS controllers do.
async fn import_slice(
    client: &Client,
    name: &str,
    (import, cluster): (&str, &str),
    family: &str,
    (port_name, port): (&str, u16),
    endpoints: &[Endpoint<'_>],
) -> Result<(), String> {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, hostname, ready, terminating)| {
            let mut endpoint =
                json!({"addresses": [ip], "conditions": {"terminating": terminating}});
            if let Some(ready) = ready {
                endpoint["conditions"]["ready"] = json!(ready);
            }
            if let Some(hostname) = hostname {
                endpoint["hostname"] = json!(hostname);
            }
            endpoint
        })
        .collect();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let object = json!({
        "metadata": {"name": name, "labels": {
            "multicluster.kubernetes.io/service-name": import,
            "multicluster.kubernetes.io/source-cluster": cluster,
            "endpointslice.kubernetes.io/managed-by": "mcs-controller.headless-dns.test"}},
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    });
    api::create(&slices, object).await.map(|_| ())
}

/// Whether `name` exists in the zone by its shape alone once what it belongs to exists: the
/// apex, `svc.`, `dns-version.`, a namespace, a protocol (`_tcp.<import>`), a cluster of a
/// headless import (`<cluster>.<import>`).
fn exists_by_shape(name: &str) -> bool {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    let below = labels.len().saturating_sub(2);
    let underscored = labels.iter().filter(|l| l.starts_with('_')).count();
    match below {
        0 => true,
        1 => matches!(labels[0], "svc" | "dns-version"),
        2 => true,
        // `_tcp.<svc>.<ns>.svc` or `<cluster>.<svc>.<ns>.svc`.
        4 => underscored == 0 || (underscored == 1 && labels[0].starts_with('_')),
        _ => false,
    }
}

/// An answer's records with SRV weights and the case of names set aside.
fn unweighted(reply: &Reply) -> std::collections::BTreeSet<String> {
    crate::dns::unweighted(reply)
        .iter()
        .map(|a| a.to_lowercase())
        .collect()
}

/// Differences the README lists under Multi-Cluster Services, and how to know them.
const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        what: "endpoint names of a ClusterSetIP import: the MCS DNS spec names a headless import's only; CoreDNS answers them",
        applies: |name, _, ours, theirs| {
            name.contains(".db.mcs.svc.")
                && !name.starts_with("db.")
                && !name.starts_with('_')
                && ours.rcode == ResponseCode::NXDomain
                && theirs.rcode == ResponseCode::NoError
        },
    },
    Deliberate {
        what: "dns-version.clusterset.local: the MCS DNS spec's 1.0.0; CoreDNS: the cluster schema's 1.1.0",
        applies: |name, qtype, ours, theirs| {
            name == "dns-version.clusterset.local."
                && qtype == RecordType::TXT
                && ours.answers.iter().all(|a| a.contains("1.0.0"))
                && theirs.answers.iter().all(|a| a.contains("1.1.0"))
        },
    },
    Deliberate {
        what: "a name that exists but holds nothing of the type asked (the apex, a protocol, a cluster of an import): NODATA (RFC 8020); CoreDNS's multicluster: NXDOMAIN",
        applies: |name, _, ours, theirs| {
            exists_by_shape(name)
                && (ours.rcode, ours.answers.is_empty(), ours.soa)
                    == (ResponseCode::NoError, true, true)
                && theirs.rcode == ResponseCode::NXDomain
        },
    },
    Deliberate {
        what: "SOA asked of a name that does not exist: NXDOMAIN; CoreDNS's multicluster: NODATA",
        applies: |_, qtype, ours, theirs| {
            qtype == RecordType::SOA
                && ours.rcode == ResponseCode::NXDomain
                && (theirs.rcode, theirs.answers.is_empty()) == (ResponseCode::NoError, true)
        },
    },
    Deliberate {
        what: "A/AAAA at an SRV name: NODATA, it holds SRV records; CoreDNS's multicluster answers the targets' addresses",
        applies: |name, qtype, ours, theirs| {
            name.starts_with('_')
                && matches!(qtype, RecordType::A | RecordType::AAAA)
                && (ours.rcode, ours.answers.is_empty()) == (ResponseCode::NoError, true)
                && !theirs.answers.is_empty()
        },
    },
    Deliberate {
        what: "SRV at an endpoint's name: NODATA, SRV records are the import's; CoreDNS's multicluster answers one to the endpoint itself",
        applies: |name, qtype, ours, theirs| {
            qtype == RecordType::SRV
                && !name.starts_with('_')
                && (ours.rcode, ours.answers.is_empty()) == (ResponseCode::NoError, true)
                && theirs.answers.iter().all(|a| a.ends_with(name))
        },
    },
    Deliberate {
        what: "SRV weights, and the case of targets: CoreDNS weighs each address, and spells targets in the question's case",
        applies: |_, qtype, ours, theirs| {
            crate::dns::weights_alone_differ(qtype, ours, theirs, unweighted)
        },
    },
    Deliberate {
        what: "NS at the apex: ns.dns.<cluster zone>; CoreDNS outside a cluster has no address of its own to publish",
        applies: |name, qtype, ours, theirs| {
            name == ZONE
                && qtype == RecordType::NS
                && ours.answers.len() == 1
                && theirs.answers.is_empty()
        },
    },
    Deliberate {
        what: "the apex's SOA names the one name server, ns.dns.<cluster zone>; CoreDNS: ns.dns.clusterset.local",
        applies: |name, qtype, ours, theirs| {
            let spelled = |reply: &Reply| -> Vec<String> {
                reply
                    .answers
                    .iter()
                    .map(|a| a.replace(".cluster.local.", ".clusterset.local."))
                    .collect()
            };
            name == ZONE && qtype == RecordType::SOA && spelled(ours) == spelled(theirs)
        },
    },
];

pub async fn differential(env: &mut Env) -> Result<String, String> {
    let c = env.admin.clone();
    api::namespace(&c, NS).await?;
    let redis = json!([{"name": "redis", "port": 6379, "protocol": "TCP"}]);
    import(
        &c,
        "db",
        json!({"type": "ClusterSetIP", "ips": ["10.100.0.1", "fd00:100::1"],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}),
    )
    .await?;
    import(&c, "cache", json!({"type": "Headless", "ports": redis})).await?;
    import(&c, "idle", json!({"type": "Headless", "ports": redis})).await?;
    let east_redis = (("cache", "east"), ("redis", 6379));
    let west_redis = (("cache", "west"), ("redis", 7000));
    import_slice(
        &c,
        "cache-east-v4",
        east_redis.0,
        "IPv4",
        east_redis.1,
        &[
            ("10.1.0.1", Some("cache-0"), Some(true), false),
            ("10.1.0.2", None, Some(true), false),
            ("10.1.0.3", Some("cache-2"), Some(false), false),
            ("10.1.0.4", Some("cache-3"), Some(false), true),
        ],
    )
    .await?;
    import_slice(
        &c,
        "cache-west-v4",
        west_redis.0,
        "IPv4",
        west_redis.1,
        &[("10.2.0.1", Some("cache-0"), Some(true), false)],
    )
    .await?;
    import_slice(
        &c,
        "cache-west-v6",
        west_redis.0,
        "IPv6",
        west_redis.1,
        &[
            ("fd00:2::1", Some("cache-0"), Some(true), false),
            ("fd00:2::2", None, None, false),
        ],
    )
    .await?;
    import_slice(
        &c,
        "db-east",
        ("db", "east"),
        "IPv4",
        ("pg", 5432),
        &[("10.1.9.9", Some("db-0"), Some(true), false)],
    )
    .await?;
    import_slice(
        &c,
        "idle-east",
        ("idle", "east"),
        "IPv4",
        ("redis", 6379),
        &[("10.1.8.8", None, Some(false), false)],
    )
    .await?;

    // Both servers have it all: the last slice's endpoint is in both answers.
    let cache = format!("cache.{NS}.svc.{ZONE}");
    let wanted = ["10.1.0.1", "10.1.0.2", "10.2.0.1", "fd00:2::1", "fd00:2::2"];
    for server in [env.hdns.dns, env.coredns.dns] {
        let asker = Asker::new(server, Transport::Udp).await?;
        eventually(Duration::from_secs(30), || async {
            let have = asker.addresses(&cache).await?;
            match have.iter().map(String::as_str).eq(wanted) {
                true => Ok(()),
                false => Err(format!("{server} answers {cache} with {have:?}")),
            }
        })
        .await?;
    }

    let mut names: Vec<String> = [
        "",
        "svc.",
        "mcs.svc.",
        "nowhere.svc.",
        "dns-version.",
        "db.mcs.svc.",
        "_pg._tcp.db.mcs.svc.",
        "_tcp.db.mcs.svc.",
        "db-0.east.db.mcs.svc.",
        "east.db.mcs.svc.",
        "cache.mcs.svc.",
        "_redis._tcp.cache.mcs.svc.",
        "_redis._udp.cache.mcs.svc.",
        "_http._tcp.cache.mcs.svc.",
        "_tcp.cache.mcs.svc.",
        "cache-0.east.cache.mcs.svc.",
        "10-1-0-2.east.cache.mcs.svc.",
        "cache-2.east.cache.mcs.svc.",
        "cache-3.east.cache.mcs.svc.",
        "cache-0.west.cache.mcs.svc.",
        "fd00-2--2.west.cache.mcs.svc.",
        "cache-0.north.cache.mcs.svc.",
        "east.cache.mcs.svc.",
        "west.cache.mcs.svc.",
        "idle.mcs.svc.",
        "_redis._tcp.idle.mcs.svc.",
        "10-1-8-8.east.idle.mcs.svc.",
        "missing.mcs.svc.",
    ]
    .iter()
    .map(|prefix| format!("{prefix}{ZONE}"))
    .collect();
    names.push(format!("Cache.MCS.svc.{}", ZONE.to_uppercase()));
    let mut questions: Vec<(String, RecordType)> = Vec::new();
    for name in &names {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::TXT,
            RecordType::SOA,
            RecordType::NS,
        ] {
            questions.push((name.clone(), qtype));
        }
    }
    let summary = parity(env, &questions, DELIBERATE).await?;
    // No PTR for an MCS endpoint's address (the spec asks for none). CoreDNS 1.14.7 sends no
    // reply at all to that question, so it is asked of headless-dns alone.
    let ours = Asker::new(env.hdns.dns, Transport::Udp).await?;
    for ip in ["10.1.0.1", "10.2.0.1", "10.1.9.9"] {
        let reverse: Vec<&str> = ip.split('.').rev().collect();
        let name = format!("{}.in-addr.arpa.", reverse.join("."));
        let reply: Reply = ours.reply(&name, RecordType::PTR).await?;
        if !(reply.rcode == ResponseCode::NXDomain && reply.soa) {
            return Err(format!("{name} PTR: {reply}"));
        }
    }
    Ok(format!("{} names; {summary}", names.len()))
}
