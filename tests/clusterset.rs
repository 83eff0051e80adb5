//! The clusterset zone (Multi-Cluster Services DNS) through the real wire: a manifests file as
//! an MCS controller leaves the cluster (ServiceImports, EndpointSlices labelled with their
//! import and source cluster), the server on ephemeral ports, hickory's client over UDP and TCP.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Two clusters export `cache` (headless, dual-stack in `west`); `db` is a ClusterSetIP import.
fn mcs_objects() -> Vec<String> {
    let slice = |name: &str,
                 import: &str,
                 cluster: &str,
                 family: &str,
                 port: u16,
                 endpoints: &str| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  \
             namespace: shop\n  labels:\n    multicluster.kubernetes.io/service-name: {import}\n    \
             multicluster.kubernetes.io/source-cluster: {cluster}\n    \
             endpointslice.kubernetes.io/managed-by: mcs-controller.example\n\
             addressType: {family}\nports: [{{name: redis, port: {port}, protocol: TCP}}]\n\
             endpoints:\n{endpoints}"
        )
    };
    vec![
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: db, namespace: shop}\n\
         spec:\n  type: ClusterSetIP\n  ips: [10.100.0.1]\n  ports: [{name: pg, port: 5432, protocol: TCP}]\n"
            .to_string(),
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: cache, namespace: shop}\n\
         spec:\n  type: Headless\n  ports: [{name: redis, port: 6379, protocol: TCP}]\n"
            .to_string(),
        slice(
            "cache-east-1",
            "cache",
            "east",
            "IPv4",
            6379,
            "- {addresses: [10.1.0.1], hostname: cache-0, conditions: {ready: true}}\n\
             - {addresses: [10.1.0.2], conditions: {ready: false}}\n",
        ),
        slice(
            "cache-west-1",
            "cache",
            "west",
            "IPv4",
            7000,
            "- {addresses: [10.2.0.1], hostname: cache-0}\n",
        ),
        slice(
            "cache-west-2",
            "cache",
            "west",
            "IPv6",
            7000,
            "- {addresses: [\"fd00:2::1\"], hostname: cache-0}\n",
        ),
    ]
}

#[tokio::test]
async fn clusterset_names_answer_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    let mut objects = statefulset_cluster();
    objects.extend(mcs_objects());
    std::fs::write(&path, documents(&objects)).unwrap();
    let server = TestServer::start(&path, &[]).await;

    for client in [udp_client(server.addr).await, tcp_client(server.addr).await] {
        let response = ask(
            &client,
            "db.shop.svc.clusterset.local.",
            RecordType::A,
            None,
        )
        .await;
        assert!(response.metadata.authoritative);
        assert_eq!(
            answers(&response),
            ["db.shop.svc.clusterset.local. A 10.100.0.1"]
        );

        let cache = "cache.shop.svc.clusterset.local.";
        let response = ask(&client, cache, RecordType::A, None).await;
        assert_eq!(a_records(&response), ["10.1.0.1", "10.2.0.1"]);
        let response = ask(&client, cache, RecordType::AAAA, None).await;
        assert_eq!(answers(&response), [format!("{cache} AAAA fd00:2::1")]);

        let west = "cache-0.west.cache.shop.svc.clusterset.local.";
        let response = ask(&client, west, RecordType::AAAA, None).await;
        assert_eq!(answers(&response), [format!("{west} AAAA fd00:2::1")]);

        let srv = "_redis._tcp.cache.shop.svc.clusterset.local.";
        let response = ask(&client, srv, RecordType::SRV, Some(1232)).await;
        assert_eq!(
            answers(&response),
            [
                format!("{srv} SRV 0 50 6379 cache-0.east.cache.shop.svc.clusterset.local."),
                format!("{srv} SRV 0 50 7000 cache-0.west.cache.shop.svc.clusterset.local."),
            ]
        );
        assert_eq!(response.additionals.len(), 3, "{response:?}");

        let response = ask(
            &client,
            "dns-version.clusterset.local.",
            RecordType::TXT,
            None,
        )
        .await;
        assert_eq!(
            answers(&response),
            ["dns-version.clusterset.local. TXT 1.0.0"]
        );

        // Not ready: NXDOMAIN, with the zone's SOA and the reason.
        let name = "10-1-0-2.east.cache.shop.svc.clusterset.local.";
        let response = ask(&client, name, RecordType::A, Some(1232)).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            response.authorities[0].name.to_string(),
            "clusterset.local."
        );
        assert_eq!(
            reason(&response).as_deref(),
            Some("no ready endpoint 10-1-0-2 of ServiceImport cache in cluster east")
        );

        // The cluster's own zone answers as before.
        let response = ask(
            &client,
            "web-0.nginx-svc.default.svc.cluster.local.",
            RecordType::A,
            None,
        )
        .await;
        assert_eq!(a_records(&response), ["10.244.1.10"]);
    }

    let (_, metrics) = http_get(server.http, "/metrics").await;
    for line in [
        "headless_dns_service_imports{type=\"headless\"} 1",
        "headless_dns_service_imports{type=\"cluster_set_ip\"} 1",
        "headless_dns_clusterset_endpoint_names 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    // The imports removed from the file: the zone is no longer ours.
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let udp = udp_client(server.addr).await;
    let refused = eventually(Duration::from_secs(20), || async {
        let response = ask(&udp, "db.shop.svc.clusterset.local.", RecordType::A, None).await;
        response.metadata.response_code == ResponseCode::Refused
    })
    .await;
    assert!(
        refused.is_some(),
        "the clusterset zone is refused without imports"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_clusterset_zone_takes_its_name_from_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&mcs_objects())).unwrap();
    let server = TestServer::start(&path, &["--clusterset-zone", "mcs.test"]).await;
    let udp = udp_client(server.addr).await;
    let response = ask(&udp, "db.shop.svc.mcs.test.", RecordType::A, None).await;
    assert_eq!(answers(&response), ["db.shop.svc.mcs.test. A 10.100.0.1"]);
    let response = ask(&udp, "mcs.test.", RecordType::SOA, None).await;
    assert_eq!(response.answers.len(), 1);
    let response = ask(&udp, "db.shop.svc.clusterset.local.", RecordType::A, None).await;
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    server.stop().await;
}

// Against the test API server: ServiceImports watched where the API serves them.

/// headless-dns following `api` through a kubeconfig in `dir`, once it is ready.
async fn ready_server(api: &common::apiserver::FakeApi, dir: &tempfile::TempDir) -> TestServer {
    let kubeconfig = api.write_kubeconfig(dir.path());
    let server = TestServer::with_args(&["--kubeconfig", kubeconfig.to_str().unwrap()]).await;
    let http = server.http;
    let ready = eventually(Duration::from_secs(20), || async move {
        http_get(http, "/readyz").await.0 == 200
    })
    .await;
    assert!(ready.is_some(), "never became ready");
    server
}

mod api {
    use super::*;
    use common::apiserver::{self, FakeApi};
    use serde_json::{Value, json};

    const PATIENCE: Duration = Duration::from_secs(20);

    fn service_import(ns: &str, name: &str, spec: Value) -> Value {
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
               "metadata": {"name": name, "namespace": ns}, "spec": spec})
    }

    /// An MCS controller's slice of `import` from `cluster`: `(address, hostname, ready)`.
    fn import_slice(
        ns: &str,
        name: &str,
        import: &str,
        cluster: &str,
        endpoints: &[(&str, &str, bool)],
    ) -> Value {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(ip, hostname, ready)| {
                json!({"addresses": [ip], "hostname": hostname, "conditions": {"ready": ready}})
            })
            .collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": name, "namespace": ns, "labels": {
                   "multicluster.kubernetes.io/service-name": import,
                   "multicluster.kubernetes.io/source-cluster": cluster,
                   "endpointslice.kubernetes.io/managed-by": "mcs-controller.example"}},
               "addressType": "IPv4",
               "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}],
               "endpoints": endpoints})
    }

    fn seed(api: &FakeApi) {
        api.apply(apiserver::namespace("shop"));
        api.apply(service_import(
            "shop",
            "db",
            json!({"type": "ClusterSetIP", "ips": ["10.100.0.1"]}),
        ));
        api.apply(service_import(
            "shop",
            "cache",
            json!({"type": "Headless",
            "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}]}),
        ));
        api.apply(import_slice(
            "shop",
            "cache-east",
            "cache",
            "east",
            &[("10.1.0.1", "cache-0", true)],
        ));
        api.apply(import_slice(
            "shop",
            "cache-west",
            "cache",
            "west",
            &[("10.2.0.1", "cache-0", true)],
        ));
    }

    async fn a(server: &TestServer, name: &str) -> (ResponseCode, Vec<String>) {
        let udp = udp_client(server.addr).await;
        let response = ask(&udp, name, RecordType::A, None).await;
        (response.metadata.response_code, a_records(&response))
    }

    /// Waits until `name` answers `ips` (with NOERROR) or `rcode` (empty `ips`).
    async fn until(server: &TestServer, name: &str, rcode: ResponseCode, ips: &[&str]) {
        let want = (rcode, ips.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let seen = eventually(PATIENCE, || async { a(server, name).await == want }).await;
        assert!(
            seen.is_some(),
            "{name}: wanted {want:?}, have {:?}",
            a(server, name).await
        );
    }

    #[tokio::test]
    async fn imports_are_followed_where_the_api_serves_them() {
        let api = FakeApi::start().await;
        api.install_mcs_crd();
        seed(&api);
        let dir = tempfile::tempdir().unwrap();
        let server = ready_server(&api, &dir).await;
        // Readiness does not wait for the imports (nobody turned them on): they follow at once.
        until(
            &server,
            "cache.shop.svc.clusterset.local.",
            ResponseCode::NoError,
            &["10.1.0.1", "10.2.0.1"],
        )
        .await;
        until(
            &server,
            "db.shop.svc.clusterset.local.",
            ResponseCode::NoError,
            &["10.100.0.1"],
        )
        .await;
        // Changes follow: an endpoint not ready any more, a cluster's slice gone, an import gone.
        api.apply(import_slice(
            "shop",
            "cache-east",
            "cache",
            "east",
            &[("10.1.0.1", "cache-0", false)],
        ));
        until(
            &server,
            "cache.shop.svc.clusterset.local.",
            ResponseCode::NoError,
            &["10.2.0.1"],
        )
        .await;
        until(
            &server,
            "cache-0.east.cache.shop.svc.clusterset.local.",
            ResponseCode::NXDomain,
            &[],
        )
        .await;
        api.delete("EndpointSlice", "shop", "cache-west");
        until(
            &server,
            "cache.shop.svc.clusterset.local.",
            ResponseCode::NXDomain,
            &[],
        )
        .await;
        api.delete("ServiceImport", "shop", "db");
        until(
            &server,
            "db.shop.svc.clusterset.local.",
            ResponseCode::NXDomain,
            &[],
        )
        .await;
        api.delete("ServiceImport", "shop", "cache");
        until(
            &server,
            "db.shop.svc.clusterset.local.",
            ResponseCode::Refused,
            &[],
        )
        .await;
        // A slice of a local Service is not an import's, nor the reverse.
        api.apply(apiserver::endpoint_slice(
            "shop",
            "local-1",
            "cache",
            &[("10.3.0.1", None, Some(true))],
        ));
        api.apply(service_import("shop", "cache", json!({"type": "Headless"})));
        until(
            &server,
            "cache.shop.svc.clusterset.local.",
            ResponseCode::NXDomain,
            &[],
        )
        .await;
        server.stop().await;
    }

    #[tokio::test]
    async fn without_the_crd_the_zone_is_refused_quietly_until_it_is_installed() {
        let api = FakeApi::start().await;
        seed(&api);
        api.apply(apiserver::headless_service(
            "shop",
            "web",
            Some(("app", "web")),
        ));
        api.apply(apiserver::pod("shop", "web-0", "web", "10.4.0.1", true));
        let dir = tempfile::tempdir().unwrap();
        let server = ready_server(&api, &dir).await;
        assert_eq!(
            a(&server, "web.shop.svc.cluster.local.").await,
            (ResponseCode::NoError, vec!["10.4.0.1".into()])
        );
        assert_eq!(
            a(&server, "db.shop.svc.clusterset.local.").await.0,
            ResponseCode::Refused
        );
        assert_eq!(api.list_requests_of("ServiceImport"), 0);
        assert_eq!(api.mcs_discoveries(), 1, "asked once at start");
        // Installed later: followed at the next minute's question, without a restart.
        api.install_mcs_crd();
        let patience = Duration::from_secs(75);
        let seen = eventually(patience, || async {
            a(&server, "db.shop.svc.clusterset.local.").await
                == (ResponseCode::NoError, vec!["10.100.0.1".to_string()])
        })
        .await;
        assert!(
            seen.is_some(),
            "the imports are followed once the CRD is installed"
        );
        assert_eq!(api.mcs_discoveries(), 2);
        server.stop().await;
    }
}

mod refused {
    use super::*;
    use common::apiserver::{self, FakeApi};

    /// An account not allowed to read ServiceImports where the CRD is installed (a sidecar's
    /// Role, say): ready, nothing behind, the cluster's names answered; no outage.
    #[tokio::test]
    async fn imports_the_account_may_not_read_are_no_outage() {
        let api = FakeApi::start().await;
        api.install_mcs_crd();
        api.fail(Some("ServiceImport"), Some(403));
        api.apply(apiserver::namespace("shop"));
        api.apply(apiserver::headless_service(
            "shop",
            "web",
            Some(("app", "web")),
        ));
        api.apply(apiserver::pod("shop", "web-0", "web", "10.4.0.1", true));
        let dir = tempfile::tempdir().unwrap();
        // Ready without ServiceImports.
        let server = ready_server(&api, &dir).await;
        let http = server.http;
        let udp = udp_client(server.addr).await;
        let response = ask(&udp, "web.shop.svc.cluster.local.", RecordType::A, None).await;
        assert_eq!(a_records(&response), ["10.4.0.1"]);
        // The refusal was met (a list was asked for), and it is no outage.
        let asked = eventually(Duration::from_secs(10), || async {
            api.list_requests_of("ServiceImport") >= 1
        })
        .await;
        assert!(asked.is_some(), "ServiceImports were asked for");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (_, metrics) = http_get(http, "/metrics").await;
        assert!(
            metrics
                .lines()
                .any(|l| l == "headless_dns_seconds_behind_source 0"),
            "{metrics}"
        );
        let response = ask(&udp, "x.shop.svc.clusterset.local.", RecordType::A, None).await;
        assert_eq!(response.metadata.response_code, ResponseCode::Refused);
        server.stop().await;
    }
}
