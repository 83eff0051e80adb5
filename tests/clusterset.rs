//! The clusterset zone (Multi-Cluster Services DNS) through the real wire: a manifests file as
//! an MCS controller leaves the cluster (ServiceImports, EndpointSlices labelled with their
//! import and source cluster), the server on ephemeral ports, hickory's client over UDP and TCP.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

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

/// The reason an answer carries as an Extended DNS Error, if any.
fn reason(response: &Message) -> Option<String> {
    let edns = response.edns.as_ref()?;
    match edns.option(EdnsCode::Unknown(15))? {
        EdnsOption::Unknown(15, data) => Some(String::from_utf8_lossy(&data[2..]).into_owned()),
        _ => None,
    }
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
