//! The built binary following the test API server through faults — unreachable, 401, 403, 5xx,
//! hung, undecodable objects — with its log read back: one WARN per outage naming the cause,
//! backoff between attempts, `recovered` only when the API really answers again, no body in any
//! line; and what is served meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::apiserver::{self, FakeApi};
use common::process::{self, Process, field};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

const WEB0: &str = "web-0.nginx-svc.default.svc.cluster.local.";
const WEB1: &str = "web-1.nginx-svc.default.svc.cluster.local.";

/// The seeds' StatefulSet: nginx-svc, web-0 and web-1 Ready.
fn seed(api: &FakeApi) {
    api.apply(apiserver::namespace("default"));
    api.apply(apiserver::headless_service(
        "default",
        "nginx-svc",
        Some(("app", "nginx")),
    ));
    for (name, ip) in [("web-0", "10.244.1.10"), ("web-1", "10.244.2.11")] {
        let pod = apiserver::pod("default", name, "nginx", ip, true);
        api.apply(apiserver::with_hostname(pod, name, "nginx-svc"));
    }
}

/// The binary following `api` through a kubeconfig, logging JSON.
struct Following {
    process: Process,
    _dir: tempfile::TempDir,
}

fn follow(api: &FakeApi) -> Following {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    let mut command = process::command(None);
    command
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .args(["--log-format", "json"]);
    Following {
        process: Process::start(command),
        _dir: dir,
    }
}

impl Following {
    fn warnings(&self) -> Vec<String> {
        self.process
            .lines("\"level\":\"WARN\"")
            .into_iter()
            .filter(|l| l.contains("Kubernetes API"))
            .collect()
    }

    async fn ready(&self) -> bool {
        http_get(self.process.http, "/readyz").await.0 == 200
    }

    async fn wait_ready(&self, limit: Duration) -> Option<Duration> {
        eventually(limit, || self.ready()).await
    }

    async fn rcode(&self, name: &str) -> ResponseCode {
        let client = udp_client(self.process.dns).await;
        ask(&client, name, RecordType::A, None)
            .await
            .metadata
            .response_code
    }

    /// No log line may carry a body (every one is short), and nothing but the API source's own
    /// reports may warn about the API (no line per attempt from the client).
    fn assert_quiet_log(&self) {
        for line in self.process.log() {
            assert!(
                line.len() < 2_000,
                "a {}-byte log line: {}…",
                line.len(),
                &line[..200]
            );
            let loud = line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"");
            assert!(
                !loud || line.contains("headless_dns::source::kube"),
                "{line}"
            );
        }
    }
}

/// A failing API (500 on every request) is reported once, retried with a growing delay (not
/// every second), and `recovered` is said once, when it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_api_is_reported_once_and_retried_with_backoff() {
    let api = FakeApi::start().await;
    seed(&api);
    api.fail(None, Some(500));
    let w = follow(&api);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let warnings = w.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(field(&warnings[0], "cause"), Some("server_error"));
    assert!(
        warnings[0].contains("server error 500: Internal error occurred"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("not ready"), "{}", warnings[0]);
    for kind in ["Namespace", "Service", "Pod", "EndpointSlice"] {
        let lists = api.list_requests_of(kind);
        // 1 s growing to 30 s, ±25%: at 0, ~1, ~3, ~7, ~15 s.
        assert!((3..=6).contains(&lists), "{kind}: {lists} lists in 20 s");
    }
    assert!(!w.ready().await);
    assert_eq!(w.rcode(WEB0).await, ResponseCode::ServFail);
    assert!(w.process.lines("recovered").is_empty());

    api.fail(None, None);
    // The next attempts come up to ~20 s later (backoff 16 s ±25%).
    assert!(w.wait_ready(Duration::from_secs(30)).await.is_some());
    assert_eq!(w.rcode(WEB0).await, ResponseCode::NoError);
    assert!(
        w.process
            .wait_for_line("Kubernetes API recovered", Duration::from_secs(5))
            .is_some()
    );
    assert_eq!(w.process.lines("recovered").len(), 1);
    assert_eq!(w.warnings().len(), 1);
    w.assert_quiet_log();
}

/// An unreachable API is reported once; however long the backoff has grown, a probe notices
/// within a few seconds when the API is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_noticed_as_soon_as_it_is_back() {
    let api = FakeApi::reserve().await;
    seed(&api);
    let w = follow(&api);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let warnings = w.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(field(&warnings[0], "cause"), Some("unreachable"));
    assert!(warnings[0].contains("onnection refused"), "{}", warnings[0]);
    api.up().await;
    let took = w.wait_ready(Duration::from_secs(15)).await;
    eprintln!("ready {took:?} after the API came back");
    assert!(took.is_some_and(|t| t < Duration::from_secs(5)), "{took:?}");
    assert_eq!(w.process.lines("Kubernetes API recovered").len(), 1);
}

/// A missing permission is named; until it is granted nothing is ready (SERVFAIL, never a false
/// NXDOMAIN). Losing it later keeps the last state served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_named_and_the_last_state_kept() {
    let api = FakeApi::start().await;
    seed(&api);
    api.fail(Some("EndpointSlice"), Some(403));
    let w = follow(&api);
    let (warning, _) = w
        .process
        .wait_for_line("403 Forbidden", Duration::from_secs(10))
        .expect("a warning");
    assert!(
        warning
            .contains("missing permission to list endpointslices.discovery.k8s.io (cluster scope)"),
        "{warning}"
    );
    assert_eq!(field(&warning, "cause"), Some("forbidden"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!w.ready().await);
    let http = w.process.http;
    let forbidden = metric(
        http,
        r#"headless_dns_kubernetes_api_errors_total{cause="forbidden"}"#,
    );
    assert!(forbidden.await.is_some_and(|n| n >= 1.0));
    let behind = metric(http, "headless_dns_seconds_behind_source").await;
    assert!(behind.is_some_and(|s| s >= 3.0), "{behind:?}");
    assert_eq!(metric(http, "headless_dns_synced").await, Some(0.0));
    assert_eq!(
        w.rcode("missing.default.svc.cluster.local.").await,
        ResponseCode::ServFail
    );
    api.fail(Some("EndpointSlice"), None);
    assert!(w.wait_ready(Duration::from_secs(15)).await.is_some());
    assert_eq!(w.rcode(WEB0).await, ResponseCode::NoError);
    assert_eq!(metric(http, "headless_dns_synced").await, Some(1.0));
    // In sync once the failing watch's success is recorded, just after the state it brought.
    let caught_up = eventually(Duration::from_secs(5), || async {
        metric(http, "headless_dns_seconds_behind_source").await == Some(0.0)
    })
    .await;
    assert!(
        caught_up.is_some(),
        "still behind after the permission came back"
    );

    // Revoked again while serving: named, and the answers stay.
    api.fail(Some("EndpointSlice"), Some(403));
    api.drop_watches();
    let revoked = w
        .process
        .wait_for_line("missing permission to watch", Duration::from_secs(10));
    assert!(revoked.is_some(), "{:#?}", w.warnings());
    assert!(revoked.unwrap().0.contains("serving the last state"));
    assert!(w.ready().await);
    assert_eq!(w.rcode(WEB0).await, ResponseCode::NoError);
    w.assert_quiet_log();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_reported() {
    let api = FakeApi::start().await;
    seed(&api);
    api.fail(None, Some(401));
    let w = follow(&api);
    let (warning, _) = w
        .process
        .wait_for_line("401 Unauthorized", Duration::from_secs(10))
        .expect("a warning");
    assert_eq!(field(&warning, "cause"), Some("unauthorized"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!w.ready().await);
    assert_eq!(w.warnings().len(), 1);
}

/// An API server that takes connections and answers nothing: noticed and logged within 30 s,
/// the last state served meanwhile, and a change made during the hang served within 10 s of
/// its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_api_is_noticed_and_caught_up() {
    let api = FakeApi::start().await;
    seed(&api);
    let w = follow(&api);
    assert!(w.wait_ready(Duration::from_secs(10)).await.is_some());
    api.hang(true);
    let hung = Instant::now();
    api.delete("Pod", "default", "web-1");
    let (warning, _) = w
        .process
        .wait_for_line("\"cause\":\"timeout\"", Duration::from_secs(40))
        .expect("the hang is reported");
    let noticed = hung.elapsed();
    eprintln!("hang noticed after {noticed:?}: {warning}");
    assert!(noticed < Duration::from_secs(30), "{noticed:?}");
    assert_eq!(
        w.rcode(WEB1).await,
        ResponseCode::NoError,
        "the last state is served"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    api.hang(false);
    let resumed = Instant::now();
    let served = eventually(Duration::from_secs(20), || async {
        w.rcode(WEB1).await == ResponseCode::NXDomain
    })
    .await;
    eprintln!("change served {:?} after the hang ended", resumed.elapsed());
    assert!(
        served.is_some_and(|t| t < Duration::from_secs(10)),
        "{served:?}"
    );
    assert_eq!(w.rcode(WEB0).await, ResponseCode::NoError);
    assert!(
        w.process
            .wait_for_line("Kubernetes API recovered", Duration::from_secs(10))
            .is_some()
    );
    w.assert_quiet_log();
}

/// One object that does not decode — in a list, then in a watch — is skipped and named; the
/// rest of the list is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_object_is_skipped_not_the_list() {
    let api = FakeApi::start().await;
    seed(&api);
    let mut broken = apiserver::headless_service("default", "broken", Some(("app", "x")));
    broken["spec"]["ports"][0]["port"] = json!("eighty");
    api.apply(broken);
    for i in 0..300 {
        api.apply(apiserver::pod(
            "default",
            &format!("filler-{i}"),
            "filler",
            "10.9.0.1",
            true,
        ));
    }
    let w = follow(&api);
    assert!(w.wait_ready(Duration::from_secs(10)).await.is_some());
    assert_eq!(w.rcode(WEB0).await, ResponseCode::NoError);
    let skipped = w.process.lines("skipping an object DNS cannot read or use");
    assert_eq!(skipped.len(), 1, "{skipped:#?}");
    assert_eq!(field(&skipped[0], "object"), Some("default/broken"));
    assert!(
        skipped[0].contains("spec.ports[0].port: invalid type"),
        "{}",
        skipped[0]
    );

    // In a watch: a pod whose podIPs is not a list.
    let mut bad_pod = apiserver::pod("default", "bad-pod", "nginx", "10.244.9.9", true);
    bad_pod["status"]["podIPs"] = json!("10.244.9.9");
    api.apply(bad_pod);
    let line = w
        .process
        .wait_for_line("default/bad-pod", Duration::from_secs(10))
        .expect("the bad pod is named")
        .0;
    assert!(line.contains("status.podIPs: invalid type"), "{line}");
    api.delete("Pod", "default", "web-0");
    let gone = eventually(Duration::from_secs(10), || async {
        w.rcode(WEB0).await == ResponseCode::NXDomain
    });
    assert!(
        gone.await.is_some(),
        "the watch goes on after the bad object"
    );
    assert!(w.warnings().is_empty(), "{:#?}", w.warnings());
    w.assert_quiet_log();
}

/// An outage that lasts is mentioned again at most once a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_is_mentioned_once_a_minute() {
    let api = FakeApi::start().await;
    seed(&api);
    let w = follow(&api);
    assert!(w.wait_ready(Duration::from_secs(10)).await.is_some());
    api.fail(None, Some(503));
    api.drop_watches();
    // A reminder comes with the first failure a minute or more after the first warning; with
    // the backoff at 30 s ±25%, within 100 s.
    tokio::time::sleep(Duration::from_secs(55)).await;
    assert_eq!(w.warnings().len(), 1, "{:#?}", w.warnings());
    let reminder = w
        .process
        .wait_for_line("still failing", Duration::from_secs(45));
    assert!(reminder.is_some(), "{:#?}", w.warnings());
    let warnings = w.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains("serving the last state"));
    assert!(w.ready().await, "still ready: serving the last state");
    api.fail(None, None);
    // The next attempts come within the backoff: 30 s ±25%.
    assert!(
        w.process
            .wait_for_line("Kubernetes API recovered", Duration::from_secs(40))
            .is_some()
    );
    assert_eq!(w.process.lines("recovered").len(), 1);
    w.assert_quiet_log();
}
