//! Several clusters in one process (`--cluster`, `--cluster-manifests`): each answered under
//! its own zone `<name>.cluster.local`, through the real sockets, with hickory's client; each
//! followed on its own, so that one cluster's broken file or unreachable API server leaves the
//! others' answers alone.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::apiserver::{self, FakeApi};
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

const PATIENCE: Duration = Duration::from_secs(20);

/// The rcode and the addresses (or PTR targets) `name` gets from `server`, over UDP or TCP.
async fn asked(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    tcp: bool,
) -> (ResponseCode, Vec<String>) {
    let client = if tcp {
        tcp_client(server).await
    } else {
        udp_client(server).await
    };
    let response = ask(&client, name, qtype, Some(1232)).await;
    (response.metadata.response_code, data(&response))
}

fn data(response: &Message) -> Vec<String> {
    let mut data: Vec<String> = response
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect();
    data.sort();
    data
}

fn ok(data: &[&str]) -> (ResponseCode, Vec<String>) {
    (
        ResponseCode::NoError,
        data.iter().map(|s| s.to_string()).collect(),
    )
}

fn nxdomain() -> (ResponseCode, Vec<String>) {
    (ResponseCode::NXDomain, Vec::new())
}

/// Waits until `name` gets `want` over UDP.
async fn until(server: SocketAddr, name: &str, want: (ResponseCode, Vec<String>)) {
    let seen = eventually(PATIENCE, || async {
        asked(server, name, RecordType::A, false).await == want
    })
    .await;
    assert!(
        seen.is_some(),
        "{name}: wanted {want:?}, still {:?}",
        asked(server, name, RecordType::A, false).await
    );
}

/// A ServiceExport of Service `name` in `default`.
fn export(name: &str) -> String {
    format!(
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\n\
         metadata: {{name: {name}, namespace: default}}\n"
    )
}

/// Two kind-like clusters: the same StatefulSet in both, at the same pod addresses in part (as
/// kind gives every cluster 10.244.0.0/16), exported from both; and a Service only `west` has,
/// exported.
fn east() -> Vec<String> {
    let mut parts = statefulset_cluster();
    parts.push(export("nginx-svc"));
    parts
}

fn west() -> Vec<String> {
    let mut parts: Vec<String> = statefulset_cluster()
        .into_iter()
        .map(|p| p.replace("10.244.2.11", "10.244.7.11"))
        .collect();
    parts.extend(headless_service_of("api", 2, "10.245.0"));
    parts.push(export("nginx-svc"));
    parts.push(export("api"));
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_files_each_answer_under_their_own_zone() {
    let dir = tempfile::tempdir().unwrap();
    let (east_file, west_file) = (dir.path().join("east.yaml"), dir.path().join("west.yaml"));
    replace_file(&east_file, &documents(&east()));
    replace_file(&west_file, &documents(&west()));
    let east_arg = format!("east={}", east_file.display());
    let west_arg = format!("west={}", west_file.display());
    let server = TestServer::with_args(&[
        "--cluster-manifests",
        &east_arg,
        "--cluster-manifests",
        &west_arg,
    ])
    .await;
    let dns = server.addr;

    for tcp in [false, true] {
        let a = |name: &'static str| asked(dns, name, RecordType::A, tcp);
        assert_eq!(
            a("web-1.nginx-svc.default.svc.east.cluster.local.").await,
            ok(&["10.244.2.11"])
        );
        assert_eq!(
            a("web-1.nginx-svc.default.svc.west.cluster.local.").await,
            ok(&["10.244.7.11"])
        );
        assert_eq!(
            a("api.default.svc.west.cluster.local.").await,
            ok(&["10.245.0.1", "10.245.0.2"])
        );
        // What one cluster has, the other does not: NXDOMAIN with that cluster's SOA.
        let client = if tcp {
            tcp_client(dns).await
        } else {
            udp_client(dns).await
        };
        let missing = ask(
            &client,
            "api.default.svc.east.cluster.local.",
            RecordType::A,
            Some(1232),
        )
        .await;
        assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            missing
                .authorities
                .first()
                .map(|r| r.name.to_string())
                .as_deref(),
            Some("east.cluster.local.")
        );
        // The zone the clusters share is no cluster's: refused, with the name likely meant.
        assert_eq!(
            a("nginx-svc.default.svc.cluster.local.").await.0,
            ResponseCode::Refused
        );
        // Reverse names: an address of one cluster gets its name there; one both clusters
        // hold, the first cluster's.
        let ptr = |name: &'static str| asked(dns, name, RecordType::PTR, tcp);
        assert_eq!(
            ptr("11.7.244.10.in-addr.arpa.").await,
            ok(&["web-1.nginx-svc.default.svc.west.cluster.local."])
        );
        assert_eq!(
            ptr("11.2.244.10.in-addr.arpa.").await,
            ok(&["web-1.nginx-svc.default.svc.east.cluster.local."])
        );
        assert_eq!(
            ptr("10.1.244.10.in-addr.arpa.").await,
            ok(&["web-0.nginx-svc.default.svc.east.cluster.local."])
        );
        assert_eq!(ptr("99.9.244.10.in-addr.arpa.").await, nxdomain());

        // The clusterset zone, from the Services both export: one name for the StatefulSet
        // of both (the address both clusters hold listed once), each endpoint under its
        // cluster; a Service one exports, from that one.
        assert_eq!(
            a("nginx-svc.default.svc.clusterset.local.").await,
            ok(&["10.244.1.10", "10.244.2.11", "10.244.7.11"])
        );
        assert_eq!(
            a("web-1.west.nginx-svc.default.svc.clusterset.local.").await,
            ok(&["10.244.7.11"])
        );
        assert_eq!(
            a("web-1.east.nginx-svc.default.svc.clusterset.local.").await,
            ok(&["10.244.2.11"])
        );
        assert_eq!(
            a("api.default.svc.clusterset.local.").await,
            ok(&["10.245.0.1", "10.245.0.2"])
        );
        assert_eq!(
            asked(
                dns,
                "_web._tcp.nginx-svc.default.svc.clusterset.local.",
                RecordType::SRV,
                tcp
            )
            .await,
            ok(&[
                "0 25 80 web-0.east.nginx-svc.default.svc.clusterset.local.",
                "0 25 80 web-0.west.nginx-svc.default.svc.clusterset.local.",
                "0 25 80 web-1.east.nginx-svc.default.svc.clusterset.local.",
                "0 25 80 web-1.west.nginx-svc.default.svc.clusterset.local.",
            ])
        );
        assert_eq!(
            a("web-0.east.api.default.svc.clusterset.local.").await,
            nxdomain()
        );
    }
    let refused = ask(
        &udp_client(dns).await,
        "nginx-svc.default.svc.cluster.local.",
        RecordType::A,
        Some(1232),
    )
    .await;
    assert_eq!(
        reason(&refused).as_deref(),
        Some(
            "not in east.cluster.local, west.cluster.local: did you mean \
             nginx-svc.default.svc.east.cluster.local?"
        )
    );

    // The probes and figures, per cluster.
    assert_eq!(
        http_get(server.http, "/readyz").await,
        (200, "ready\n".into())
    );
    assert_eq!(
        metric(
            server.http,
            "headless_dns_services{cluster=\"west\",kind=\"headless\"}"
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        metric(
            server.http,
            "headless_dns_services{cluster=\"east\",kind=\"headless\"}"
        )
        .await,
        Some(1.0)
    );
    // The clusterset zone is the clusters' together: its figures carry no cluster.
    assert_eq!(
        metric(
            server.http,
            "headless_dns_service_imports{type=\"headless\"}"
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        metric(server.http, "headless_dns_clusterset_endpoint_names").await,
        Some(6.0)
    );
    promtool_check(&http_get(server.http, "/metrics").await.1);
    let (status, body) = http_get(
        server.http,
        "/explain?name=10-245-0-1.api.default.svc.west.cluster.local&type=A",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("10.245.0.1"), "{body}");
    let (_, body) = http_get(server.http, "/explain?name=10.244.7.11").await;
    assert!(
        body.contains("web-1.nginx-svc.default.svc.west.cluster.local"),
        "{body}"
    );

    // A change in one file reaches its cluster alone.
    const EAST_WEB1: &str = "web-1.nginx-svc.default.svc.east.cluster.local.";
    let east_web1 = ok(&["10.244.2.11"]);
    let mut changed = west();
    changed.retain(|p| !p.contains("name: api-1"));
    replace_file(&west_file, &documents(&changed));
    until(
        dns,
        "api.default.svc.west.cluster.local.",
        ok(&["10.245.0.1"]),
    )
    .await;
    until(
        dns,
        "api.default.svc.clusterset.local.",
        ok(&["10.245.0.1"]),
    )
    .await;
    assert_eq!(asked(dns, EAST_WEB1, RecordType::A, false).await, east_web1);
    // A broken file keeps its cluster's last state; the other follows on.
    replace_file(
        &east_file,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n",
    );
    let refused = eventually(PATIENCE, || async {
        metric(
            server.http,
            "headless_dns_manifests_reload_failures_total{cluster=\"east\"}",
        )
        .await
            == Some(1.0)
    })
    .await;
    assert!(refused.is_some(), "the broken file was not refused");
    assert_eq!(asked(dns, EAST_WEB1, RecordType::A, false).await, east_web1);
    replace_file(&west_file, &documents(&west()));
    until(
        dns,
        "api.default.svc.west.cluster.local.",
        ok(&["10.245.0.1", "10.245.0.2"]),
    )
    .await;
    server.stop().await;
}

/// The seeds' StatefulSet in `api`, web-0 at `web0`, exported (the MCS CRDs installed).
fn seed(api: &FakeApi, web0: &str) {
    api.install_mcs_crd();
    api.apply(serde_json::json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": "nginx-svc", "namespace": "default"}
    }));
    api.apply(apiserver::namespace("default"));
    api.apply(apiserver::headless_service(
        "default",
        "nginx-svc",
        Some(("app", "nginx")),
    ));
    let pod = apiserver::pod("default", "web-0", "nginx", web0, true);
    api.apply(apiserver::with_hostname(pod, "web-0", "nginx-svc"));
}

/// Two API servers, one of them not up at start: the other's names answer at once, `/readyz`
/// waits for both; then the first is stopped, changed and started again, while the other's
/// names keep answering and following.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_servers_each_followed_on_their_own() {
    let east_api = FakeApi::start().await;
    let west_api = FakeApi::reserve().await;
    seed(&east_api, "10.244.1.10");
    seed(&west_api, "10.244.1.20");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(
        &config,
        apiserver::kubeconfig_of(&[("kind-east", &east_api), ("kind-west", &west_api)]),
    )
    .unwrap();
    let server = TestServer::with_args(&[
        "--kubeconfig",
        config.to_str().unwrap(),
        "--cluster",
        "east=kind-east",
        "--cluster",
        "west=kind-west",
    ])
    .await;
    let (dns, http) = (server.addr, server.http);
    const EAST: &str = "web-0.nginx-svc.default.svc.east.cluster.local.";
    const WEST: &str = "web-0.nginx-svc.default.svc.west.cluster.local.";

    until(dns, EAST, ok(&["10.244.1.10"])).await;
    // west's API server is not up: its names are not known yet (SERVFAIL), nor is the server
    // ready; east's answer.
    assert_eq!(
        asked(dns, WEST, RecordType::A, false).await.0,
        ResponseCode::ServFail
    );
    let (status, body) = http_get(http, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (
            503,
            "not ready: the first complete list of cluster west has not arrived\n"
        )
    );
    assert_eq!(
        metric(http, "headless_dns_synced{cluster=\"west\"}").await,
        Some(0.0)
    );
    west_api.up().await;
    until(dns, WEST, ok(&["10.244.1.20"])).await;
    const SET: &str = "nginx-svc.default.svc.clusterset.local.";
    until(dns, SET, ok(&["10.244.1.10", "10.244.1.20"])).await;
    let ready = eventually(PATIENCE, || async {
        http_get(http, "/readyz").await.0 == 200
    })
    .await;
    assert!(ready.is_some());

    // west goes away: its last state still answers, east follows a change meanwhile.
    west_api.down().await;
    let pod = apiserver::pod("default", "web-1", "nginx", "10.244.2.10", true);
    east_api.apply(apiserver::with_hostname(pod, "web-1", "nginx-svc"));
    until(
        dns,
        "web-1.nginx-svc.default.svc.east.cluster.local.",
        ok(&["10.244.2.10"]),
    )
    .await;
    assert_eq!(
        asked(dns, WEST, RecordType::A, true).await,
        ok(&["10.244.1.20"])
    );
    until(dns, SET, ok(&["10.244.1.10", "10.244.1.20", "10.244.2.10"])).await;
    let behind = eventually(PATIENCE, || async {
        metric(http, "headless_dns_seconds_behind_source{cluster=\"west\"}")
            .await
            .is_some_and(|s| s > 0.0)
    })
    .await;
    assert!(behind.is_some(), "west's outage is not shown");
    assert_eq!(
        metric(http, "headless_dns_seconds_behind_source{cluster=\"east\"}").await,
        Some(0.0)
    );
    assert_eq!(http_get(http, "/readyz").await.0, 200);

    // Changed while it was away, west comes back: its names follow.
    let pod = apiserver::pod("default", "web-0", "nginx", "10.244.1.21", true);
    west_api.apply(apiserver::with_hostname(pod, "web-0", "nginx-svc"));
    west_api.up().await;
    until(dns, WEST, ok(&["10.244.1.21"])).await;
    until(dns, SET, ok(&["10.244.1.10", "10.244.1.21", "10.244.2.10"])).await;
    assert_eq!(
        asked(dns, EAST, RecordType::A, false).await,
        ok(&["10.244.1.10"])
    );
    server.stop().await;
}

/// Flags that cannot work together are one clear line before anything starts.
#[tokio::test]
async fn clusters_given_wrongly_are_clear_errors() {
    let start = ephemeral_config;
    for (args, says) in [
        (
            &["--cluster", "east"][..],
            "names no cluster: give NAME=CONTEXT",
        ),
        (&["--cluster", "East=kind-east"], "is not a DNS label"),
        (&["--cluster", "east="], "nothing after '='"),
        (
            &["--cluster", "east=a", "--context", "b"],
            "cannot be used with",
        ),
        (
            &[
                "--cluster-manifests",
                "east=a.yaml",
                "--manifests",
                "b.yaml",
            ],
            "cannot be used with",
        ),
    ] {
        let error = start(args).unwrap_err().to_string();
        assert!(error.contains(says), "{args:?}: {error}");
    }
    for (args, says) in [
        (
            &[
                "--cluster-manifests",
                "east=a.yaml",
                "--cluster",
                "east=kind-east",
            ][..],
            "two clusters are named \"east\"",
        ),
        (
            &[
                "--cluster-manifests",
                "east=a.yaml",
                "--allow-transfer",
                "127.0.0.1",
            ],
            "--allow-transfer and --notify serve one cluster's zones",
        ),
        (
            &["--cluster-manifests", "east=/nonexistent/east.yaml"],
            "cluster east: ",
        ),
        (
            &[
                "--cluster-manifests",
                "clusterset=a.yaml",
                "--zone",
                "local",
            ],
            "cluster clusterset's zone clusterset.local. and the clusterset zone clusterset.local. overlap",
        ),
    ] {
        let config = start(args).unwrap();
        let error = headless_dns::start(&config).await.err().expect("an error");
        assert!(error.contains(says), "{args:?}: {error}");
    }
}
