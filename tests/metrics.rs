//! `/metrics` and `--log-queries` on the built binary: queries sent over UDP and TCP by
//! hickory's client (answers, NXDOMAIN, REFUSED, a cut answer, a response that gets no reply)
//! are counted under CoreDNS's names, the output passes `promtool check metrics`, and each
//! query is one log line whatever RUST_LOG says.

mod common;

use std::time::Duration;

use common::process::{self, Process};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// A headless Service of 60 pods: its A answer does not fit 512 bytes.
fn cluster(dir: &std::path::Path) -> std::path::PathBuf {
    let mut parts = headless_service_of("big", 60, "10.1.0");
    parts.extend(statefulset_cluster());
    let path = dir.join("cluster.yaml");
    std::fs::write(&path, documents(&parts)).unwrap();
    path
}

fn serve(path: &std::path::Path, extra: &[&str], rust_log: Option<&str>) -> Process {
    let mut command = process::command(None);
    command
        .args(["--manifests", path.to_str().unwrap()])
        .args(extra);
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    Process::start(command)
}

const WEB0: &str = "web-0.nginx-svc.default.svc.cluster.local.";

#[tokio::test]
async fn queries_are_counted_under_coredns_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&cluster(dir.path()), &[], None);
    let udp = udp_client(server.dns).await;
    let tcp = tcp_client(server.dns).await;
    for _ in 0..3 {
        assert_eq!(
            ask(&udp, WEB0, RecordType::A, None)
                .await
                .metadata
                .response_code,
            ResponseCode::NoError
        );
    }
    let missing = ask(
        &udp,
        "nope.default.svc.cluster.local.",
        RecordType::AAAA,
        Some(1232),
    )
    .await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    let outside = ask(&tcp, "example.com.", RecordType::A, None).await;
    assert_eq!(outside.metadata.response_code, ResponseCode::Refused);
    assert_eq!(
        ask(&tcp, WEB0, RecordType::SRV, None)
            .await
            .metadata
            .response_code,
        ResponseCode::NoError
    );
    // 60 addresses without EDNS: cut to 512 bytes (26 of them), TC set.
    let big = ask(&udp, "big.default.svc.cluster.local.", RecordType::A, None).await;
    assert!(big.metadata.truncation);
    assert_eq!(a_records(&big).len(), 26);
    // A response (QR=1) gets nothing.
    assert_eq!(
        raw_udp(server.dns, &[0x42, 0x42, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await,
        None
    );

    let http = server.http;
    let series = |labels: &str, name: &str| {
        format!("{name}{{server=\"dns://127.0.0.1:0\",zone=\"cluster.local.\",view=\"\",{labels}}}")
    };
    let requests = |proto: &str, qtype: &str| {
        series(
            &format!("proto=\"{proto}\",family=\"1\",type=\"{qtype}\""),
            "coredns_dns_requests_total",
        )
    };
    assert_eq!(metric(http, &requests("udp", "A")).await, Some(4.0));
    // The dropped response has no question: counted as type "other", with no response.
    assert_eq!(metric(http, &requests("udp", "other")).await, Some(1.0));
    assert_eq!(metric(http, &requests("udp", "AAAA")).await, Some(1.0));
    assert_eq!(metric(http, &requests("tcp", "A")).await, Some(1.0));
    assert_eq!(metric(http, &requests("tcp", "SRV")).await, Some(1.0));
    let responses = |rcode: &str| {
        series(
            &format!("rcode=\"{rcode}\",plugin=\"\""),
            "coredns_dns_responses_total",
        )
    };
    assert_eq!(metric(http, &responses("NOERROR")).await, Some(5.0));
    assert_eq!(metric(http, &responses("NXDOMAIN")).await, Some(1.0));
    assert_eq!(metric(http, &responses("REFUSED")).await, Some(1.0));
    assert_eq!(
        metric(http, "headless_dns_truncated_answers_total").await,
        Some(1.0)
    );
    assert_eq!(
        metric(http, "headless_dns_dropped_messages_total").await,
        Some(1.0)
    );
    let durations = series("type=\"A\"", "coredns_dns_request_duration_seconds_count");
    assert_eq!(metric(http, &durations).await, Some(5.0));
    let sizes = series("proto=\"udp\"", "coredns_dns_response_size_bytes_count");
    assert_eq!(metric(http, &sizes).await, Some(5.0));
    let cut = series(
        "proto=\"udp\",le=\"511\"",
        "coredns_dns_response_size_bytes_bucket",
    );
    assert_eq!(
        metric(http, &cut).await,
        Some(5.0),
        "the cut answer fits 511 bytes"
    );
    assert_eq!(
        metric(http, r#"headless_dns_services{kind="headless"}"#).await,
        Some(2.0)
    );
    assert_eq!(
        metric(http, "headless_dns_endpoint_names").await,
        Some(62.0)
    );
    assert_eq!(metric(http, "headless_dns_synced").await, Some(1.0));

    // Prometheus's own linter finds nothing to complain about.
    let (_, head, body) = http_exchange(http, "/metrics").await;
    // Announced as what it is: Prometheus parses by the announced format.
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    promtool_check(&body);
}

#[tokio::test]
async fn log_queries_logs_each_query_whatever_rust_log_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = cluster(dir.path());
    // The filter turns the query lines off; the flag turns them on regardless.
    let filter = "warn,headless_dns=info,headless_dns::queries=off";
    let server = serve(
        &path,
        &["--log-queries", "--log-format", "json"],
        Some(filter),
    );
    let udp = udp_client(server.dns).await;
    ask(&udp, WEB0, RecordType::A, Some(1232)).await;
    let tcp = tcp_client(server.dns).await;
    ask(
        &tcp,
        "nope.default.svc.cluster.local.",
        RecordType::AAAA,
        None,
    )
    .await;
    let (line, _) = server
        .wait_for_line("nope.default", Duration::from_secs(5))
        .expect("a query line");
    let first = server.lines(WEB0.trim_end_matches('.')).remove(0);
    let parsed: serde_json::Value = serde_json::from_str(&first).unwrap();
    let fields = &parsed["fields"];
    assert_eq!(parsed["target"], "headless_dns::queries", "{first}");
    assert_eq!(fields["protocol"], "udp", "{first}");
    assert_eq!(fields["name"], WEB0, "{first}");
    assert_eq!(fields["qtype"], "A", "{first}");
    assert_eq!(fields["rcode"], "NOERROR", "{first}");
    assert_eq!(fields["answers"], 1, "{first}");
    assert_eq!(fields["tc"], false, "{first}");
    assert!(
        fields["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{first}"
    );
    assert!(fields["duration_us"].as_str().is_some(), "{first}");
    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["fields"]["protocol"], "tcp", "{line}");
    assert_eq!(parsed["fields"]["rcode"], "NXDOMAIN", "{line}");
    // Other lines follow RUST_LOG as before: still at info for headless_dns.
    assert!(
        !server.lines("loaded manifests").is_empty(),
        "{:?}",
        server.log()
    );

    // Without the flag, no query lines even at RUST_LOG=info.
    let quiet = serve(&path, &[], Some("info"));
    let udp = udp_client(quiet.dns).await;
    ask(&udp, WEB0, RecordType::A, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(quiet.lines("queries").is_empty(), "{:?}", quiet.log());
}
