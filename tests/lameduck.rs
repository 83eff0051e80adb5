//! Shutting down as CoreDNS's `lameduck` does: on SIGTERM `/readyz` fails at once while DNS
//! keeps answering for `--lameduck`, then the process exits 0.

mod common;

use std::time::{Duration, Instant};

use common::process::{self, Process};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const WEB0: &str = "web-0.nginx-svc.default.svc.cluster.local.";

fn serve(extra: &[&str]) -> Process {
    let mut command = process::command(None);
    command
        .args(["--manifests", "config/demo-cluster.yaml"])
        .args(extra);
    Process::start(command)
}

async fn answered(process: &Process) -> bool {
    let client = udp_client(process.dns).await;
    let response = ask(&client, WEB0, RecordType::A, None).await;
    response.metadata.response_code == ResponseCode::NoError && !a_records(&response).is_empty()
}

#[tokio::test]
async fn sigterm_fails_readiness_then_stops_after_the_lameduck_period() {
    let mut server = serve(&["--lameduck", "2s"]);
    assert_eq!(http_get(server.http, "/readyz").await.0, 200);
    assert!(answered(&server).await);

    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let not_ready = eventually(Duration::from_secs(1), || async {
        http_get(server.http, "/readyz").await.0 == 503
    })
    .await
    .expect("/readyz fails within a second of SIGTERM");
    let (status, body) = http_get(server.http, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("shutting down"), "{body}");
    assert_eq!(http_get(server.http, "/healthz").await.0, 200);
    eprintln!("/readyz 503 {not_ready:?} after SIGTERM");

    // DNS answers throughout the period, over UDP and TCP.
    let mut questions = 0;
    while signalled.elapsed() < Duration::from_millis(1500) {
        assert!(
            answered(&server).await,
            "no answer {:?} after SIGTERM",
            signalled.elapsed()
        );
        let tcp = tcp_client(server.dns).await;
        assert!(!a_records(&ask(&tcp, WEB0, RecordType::A, None).await).is_empty());
        questions += 2;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the process exits after the lameduck period");
    let stopped = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        stopped >= Duration::from_secs(2),
        "stopped {stopped:?} after SIGTERM, before the 2 s period ended"
    );
    assert!(
        server
            .wait_for_line("stopped", Duration::from_secs(1))
            .is_some(),
        "{:?}",
        server.log()
    );
    eprintln!(
        "{questions} questions answered during the period; exited 0 {stopped:?} after SIGTERM"
    );
}

#[tokio::test]
async fn lameduck_zero_stops_at_once() {
    let mut server = serve(&["--lameduck", "0"]);
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("the process exits");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "took {:?}",
        signalled.elapsed()
    );
}

#[test]
fn a_bad_lameduck_is_refused_with_the_reason() {
    for (value, reason) in [
        ("5h", "not one of ms, s, m"),
        ("11m", "at most 10 minutes"),
        ("soon", "whole number"),
    ] {
        let output = process::command(None)
            .args([
                "--manifests",
                "config/demo-cluster.yaml",
                "--lameduck",
                value,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--lameduck") && stderr.contains(reason),
            "{value}: {stderr}"
        );
    }
}
