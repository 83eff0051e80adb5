//! Following a live cluster: the real kube client against the test API server, and answers
//! checked over real DNS sockets.

mod common;

use std::time::Duration;

use common::apiserver::{self, FakeApi};
use common::*;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

const SVC: &str = "nginx-svc.default.svc.cluster.local.";
const WEB0: &str = "web-0.nginx-svc.default.svc.cluster.local.";
const WEB1: &str = "web-1.nginx-svc.default.svc.cluster.local.";
/// Generous: a change normally shows in milliseconds; reconnects wait for the watcher's backoff.
const PATIENCE: Duration = Duration::from_secs(20);

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

struct Watching {
    server: TestServer,
    client: Client<TokioRuntimeProvider>,
    _dir: tempfile::TempDir,
}

/// headless-dns pointed at `api` through a kubeconfig, with extra flags.
async fn watch(api: &FakeApi, extra: &[&str]) -> Watching {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    let mut args = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    args.extend_from_slice(extra);
    let server = TestServer::with_args(&args).await;
    let client = udp_client(server.addr).await;
    Watching {
        server,
        client,
        _dir: dir,
    }
}

impl Watching {
    async fn ready(&self) {
        let http = self.server.http;
        let ready = eventually(PATIENCE, || async move {
            http_get(http, "/readyz").await.0 == 200
        })
        .await;
        assert!(ready.is_some(), "never became ready");
    }

    async fn a(&self, name: &str) -> (ResponseCode, Vec<String>) {
        let response = ask(&self.client, name, RecordType::A, Some(1232)).await;
        (response.metadata.response_code, a_records(&response))
    }

    /// Waits until `name` answers `ips` (empty: NXDOMAIN); panics with what it saw otherwise.
    async fn until(&self, name: &str, ips: &[&str]) {
        let want = if ips.is_empty() {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        };
        let seen = eventually(PATIENCE, || async {
            self.a(name).await == (want, ips.iter().map(|s| s.to_string()).collect())
        })
        .await;
        assert!(
            seen.is_some(),
            "{name}: wanted {want} {ips:?}, still {:?}",
            self.a(name).await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_and_services_follow_the_api() {
    let api = FakeApi::start().await;
    seed(&api);
    let w = watch(&api, &[]).await;
    w.ready().await;
    assert_eq!(
        w.a(SVC).await,
        (
            ResponseCode::NoError,
            vec!["10.244.1.10".into(), "10.244.2.11".into()]
        )
    );

    // A pod that is not Ready yet is not in DNS; becoming Ready puts it there.
    let web2 = apiserver::with_hostname(
        apiserver::pod("default", "web-2", "nginx", "10.244.1.12", false),
        "web-2",
        "nginx-svc",
    );
    api.apply(web2.clone());
    api.bookmark();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.a("web-2.nginx-svc.default.svc.cluster.local.").await.0,
        ResponseCode::NXDomain
    );
    api.apply(apiserver::with_hostname(
        apiserver::pod("default", "web-2", "nginx", "10.244.1.12", true),
        "web-2",
        "nginx-svc",
    ));
    w.until(
        "web-2.nginx-svc.default.svc.cluster.local.",
        &["10.244.1.12"],
    )
    .await;

    // NotReady, terminating, deleted: gone.
    let mut not_ready = api.get("Pod", "default", "web-1").unwrap();
    not_ready["status"]["conditions"][0]["status"] = json!("False");
    api.apply(not_ready);
    w.until(WEB1, &[]).await;
    let mut terminating = api.get("Pod", "default", "web-2").unwrap();
    terminating["metadata"]["deletionTimestamp"] = json!("2026-11-22T10:00:00Z");
    api.apply(terminating);
    w.until("web-2.nginx-svc.default.svc.cluster.local.", &[])
        .await;
    api.delete("Pod", "default", "web-0");
    w.until(WEB0, &[]).await;
    w.until(SVC, &[]).await;

    // A new pod with hostname and subdomain gets its name.
    api.apply(apiserver::with_hostname(
        apiserver::pod("default", "db-0", "nginx", "10.244.3.3", true),
        "db-0",
        "nginx-svc",
    ));
    w.until("db-0.nginx-svc.default.svc.cluster.local.", &["10.244.3.3"])
        .await;

    // Each change above rebuilt the headless Service: timed for /metrics (CoreDNS's name).
    // Read from one scrape, so that both figures count the same changes.
    let (_, scrape) = http_get(w.server.http, "/metrics").await;
    let value = |series: &str| -> Option<f64> {
        scrape
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    };
    let programmed = value(
        r#"coredns_kubernetes_dns_programming_duration_seconds_count{service_kind="headless_with_selector"}"#,
    );
    assert!(programmed.is_some_and(|n| n >= 5.0), "{programmed:?}");
    let slowest = value(
        r#"coredns_kubernetes_dns_programming_duration_seconds_bucket{service_kind="headless_with_selector",le="0.16384"}"#,
    );
    assert_eq!(slowest, programmed, "every change programmed within 164 ms");

    // A deleted Service takes its names with it.
    api.delete("Service", "default", "nginx-svc");
    w.until("db-0.nginx-svc.default.svc.cluster.local.", &[])
        .await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_denied_before_the_first_sync() {
    let api = FakeApi::reserve().await;
    seed(&api);
    let w = watch(&api, &[]).await;
    // The API is unreachable: the zone answers SERVFAIL (never a false NXDOMAIN), not ready.
    for name in [WEB0, "missing.default.svc.cluster.local."] {
        assert_eq!(w.a(name).await.0, ResponseCode::ServFail, "{name}");
    }
    assert_eq!(http_get(w.server.http, "/readyz").await.0, 503);
    assert_eq!(
        http_get(w.server.http, "/healthz").await,
        (200, "ok\n".into())
    );
    // Outside the zone is still refused.
    assert_eq!(w.a("example.com.").await.0, ResponseCode::Refused);

    api.up().await;
    w.ready().await;
    assert_eq!(
        w.a(WEB0).await,
        (ResponseCode::NoError, vec!["10.244.1.10".into()])
    );
    assert_eq!(
        w.a("missing.default.svc.cluster.local.").await.0,
        ResponseCode::NXDomain
    );
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_keeps_the_last_state_and_catches_up() {
    let api = FakeApi::start().await;
    seed(&api);
    let w = watch(&api, &[]).await;
    w.ready().await;

    api.down().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        w.a(WEB1).await,
        (ResponseCode::NoError, vec!["10.244.2.11".into()]),
        "answers survive the outage"
    );
    assert_eq!(
        http_get(w.server.http, "/readyz").await.0,
        200,
        "still ready: serving the last state"
    );

    // Meanwhile web-1 is deleted; when the API is back, it disappears and nothing else does.
    api.delete("Pod", "default", "web-1");
    api.up().await;
    w.until(WEB1, &[]).await;
    assert_eq!(
        w.a(WEB0).await,
        (ResponseCode::NoError, vec!["10.244.1.10".into()])
    );

    // Dropped watches resume without a re-list.
    let lists = api.list_requests();
    api.drop_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    api.apply(apiserver::with_hostname(
        apiserver::pod("default", "web-1", "nginx", "10.244.2.12", true),
        "web-1",
        "nginx-svc",
    ));
    w.until(WEB1, &["10.244.2.12"]).await;
    assert_eq!(
        api.list_requests(),
        lists,
        "a broken watch resumes from its resourceVersion"
    );
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_resource_version_relists_to_the_api_state() {
    let api = FakeApi::start().await;
    seed(&api);
    api.apply(apiserver::headless_service(
        "default",
        "other",
        Some(("app", "other")),
    ));
    api.apply(apiserver::pod(
        "default",
        "other-a",
        "other",
        "10.244.5.1",
        true,
    ));
    let w = watch(&api, &[]).await;
    w.ready().await;
    let lists = api.list_requests();

    api.down().await;
    // While disconnected: a pod and a Service deleted, a pod added, history compacted away.
    api.delete("Pod", "default", "web-0");
    api.delete("Service", "default", "other");
    api.apply(apiserver::with_hostname(
        apiserver::pod("default", "web-5", "nginx", "10.244.1.15", true),
        "web-5",
        "nginx-svc",
    ));
    api.forget_history();
    api.up().await;

    w.until(
        "web-5.nginx-svc.default.svc.cluster.local.",
        &["10.244.1.15"],
    )
    .await;
    w.until(WEB0, &[]).await;
    w.until("other.default.svc.cluster.local.", &[]).await;
    assert_eq!(
        w.a(SVC).await,
        (
            ResponseCode::NoError,
            vec!["10.244.1.15".into(), "10.244.2.11".into()]
        )
    );
    assert!(
        api.list_requests() > lists,
        "the 410 made the watcher list again"
    );
    // The first list may come from the API server's cache (any recent state); the one after
    // the 410 must be the current state, newer than what was served.
    let versions = api.list_versions_of("Pod");
    assert_eq!(versions.first(), Some(&Some(0)), "{versions:?}");
    assert_eq!(versions.last(), Some(&None), "{versions:?}");
    // Counted for /metrics: the re-lists, the restarted watches, the outage's failures.
    let http = w.server.http;
    let relists = metric(http, "headless_dns_kubernetes_relists_total").await;
    assert!(relists.is_some_and(|n| n >= 1.0), "{relists:?}");
    let lists = metric(http, "headless_dns_kubernetes_lists_total").await;
    assert!(
        lists.is_some_and(|n| n >= 4.0 + relists.unwrap()),
        "{lists:?}"
    );
    let restarts = metric(http, "headless_dns_kubernetes_watch_restarts_total").await;
    assert!(restarts.is_some_and(|n| n >= 1.0), "{restarts:?}");
    // In sync again once every watch that failed during the outage has been answered (the
    // others may still be waiting out their backoff when the Pod list has landed).
    let caught_up = eventually(PATIENCE, || async {
        metric(http, "headless_dns_seconds_behind_source").await == Some(0.0)
    })
    .await;
    assert!(caught_up.is_some(), "still behind the API after the outage");
    w.server.stop().await;
}

/// A list longer than a page whose continue token has expired (etcd compacted while it was
/// paged, as client-go's pager meets it too) is asked for again whole, in one response, rather
/// than retried page by page forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_lists_whole() {
    let api = FakeApi::start().await;
    seed(&api);
    api.expire_continues();
    // More pods than a page holds (5,000): the last ones come only after the first page.
    for i in 0..5_010 {
        api.apply(apiserver::pod(
            "default",
            &format!("bulk-{i}"),
            "bulk",
            &format!("10.250.{}.{}", i / 250, i % 250 + 1),
            true,
        ));
    }
    let w = watch(&api, &[]).await;
    w.ready().await;
    w.until("10-250-20-10.default.pod.cluster.local.", &["10.250.20.10"])
        .await;
    w.until(WEB0, &["10.244.1.10"]).await;
    w.server.stop().await;
}

/// `--initial-list stream`: where the API server offers streaming lists, each resource's state
/// comes as a watch's initial events (no list request at all), changes follow on an ordinary
/// watch from the version that ended them, and after a 410 the state is streamed again; where
/// the server refuses them (422, the WatchList gate off), the same flag lists instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_where_offered_and_lists_where_not() {
    let api = FakeApi::start().await;
    api.offer_streaming_lists();
    seed(&api);
    let w = watch(&api, &["--initial-list", "stream"]).await;
    w.ready().await;
    assert_eq!(
        w.a(SVC).await,
        (
            ResponseCode::NoError,
            vec!["10.244.1.10".into(), "10.244.2.11".into()]
        )
    );
    assert_eq!(api.list_requests(), 0, "the state came without a list");
    assert!(api.streaming_list_requests() >= 4);
    let http = w.server.http;
    let lists = metric(http, "headless_dns_kubernetes_lists_total").await;
    assert!(lists.is_some_and(|n| n >= 4.0), "{lists:?}");
    // A change, on the ordinary watch that follows the streamed state.
    api.apply(apiserver::with_hostname(
        apiserver::pod("default", "web-2", "nginx", "10.244.3.12", true),
        "web-2",
        "nginx-svc",
    ));
    w.until(
        "web-2.nginx-svc.default.svc.cluster.local.",
        &["10.244.3.12"],
    )
    .await;
    // The version forgotten while away: streamed again, to the API's state.
    let streamed = api.streaming_list_requests();
    api.down().await;
    api.delete("Pod", "default", "web-0");
    api.forget_history();
    api.up().await;
    w.until(WEB0, &[]).await;
    w.until(WEB1, &["10.244.2.11"]).await;
    assert!(api.streaming_list_requests() > streamed);
    assert_eq!(api.list_requests(), 0, "re-streamed, not listed");
    w.server.stop().await;

    let gate_off = FakeApi::start().await;
    seed(&gate_off);
    let w = watch(&gate_off, &["--initial-list", "stream"]).await;
    w.ready().await;
    w.until(WEB0, &["10.244.1.10"]).await;
    assert!(gate_off.streaming_list_requests() >= 1);
    assert!(gate_off.list_requests() >= 4, "refused, so listed");
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selectorless_service_resolves_its_endpoint_slices() {
    let api = FakeApi::start().await;
    api.apply(apiserver::headless_service("default", "manual", None));
    api.apply(apiserver::endpoint_slice(
        "default",
        "manual-abc",
        "manual",
        &[
            ("192.168.1.10", Some("db-0"), Some(true)),
            ("192.168.1.11", None, None),
            ("192.168.1.12", None, Some(false)),
        ],
    ));
    api.apply(apiserver::endpoint_slice(
        "default",
        "manual-v6",
        "manual",
        &[("fd00::1:10", Some("db-0"), None)],
    ));
    let w = watch(&api, &[]).await;
    w.ready().await;
    let manual = "manual.default.svc.cluster.local.";
    assert_eq!(
        w.a(manual).await,
        (
            ResponseCode::NoError,
            vec!["192.168.1.10".into(), "192.168.1.11".into()]
        )
    );
    assert_eq!(
        w.a("db-0.manual.default.svc.cluster.local.").await.1,
        ["192.168.1.10"]
    );
    let v6 = ask(
        &w.client,
        "db-0.manual.default.svc.cluster.local.",
        RecordType::AAAA,
        None,
    )
    .await;
    assert_eq!(
        answers(&v6),
        ["db-0.manual.default.svc.cluster.local. AAAA fd00::1:10"]
    );
    let srv = ask(
        &w.client,
        "_web._tcp.manual.default.svc.cluster.local.",
        RecordType::SRV,
        Some(1232),
    )
    .await;
    assert_eq!(srv.answers.len(), 2, "{:?}", answers(&srv));

    // The slice changes: db-0 not ready any more.
    api.apply(apiserver::endpoint_slice(
        "default",
        "manual-abc",
        "manual",
        &[
            ("192.168.1.10", Some("db-0"), Some(false)),
            ("192.168.1.11", None, None),
        ],
    ));
    api.delete("EndpointSlice", "default", "manual-v6");
    w.until("db-0.manual.default.svc.cluster.local.", &[]).await;
    w.until(manual, &["192.168.1.11"]).await;
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_selector_flags_limit_what_is_served() {
    let api = FakeApi::start().await;
    for ns in ["team-a", "team-b"] {
        api.apply(apiserver::namespace(ns));
        let mut service = apiserver::headless_service(ns, "web", Some(("app", "web")));
        service["metadata"]["labels"] = json!({"dns": "public"});
        api.apply(service);
        api.apply(apiserver::headless_service(
            ns,
            "hidden",
            Some(("app", "web")),
        ));
        api.apply(apiserver::pod(
            ns,
            "web-a",
            "web",
            if ns == "team-a" {
                "10.1.0.1"
            } else {
                "10.2.0.1"
            },
            true,
        ));
    }
    let w = watch(&api, &["--namespace", "team-a", "--selector", "dns=public"]).await;
    w.ready().await;
    assert_eq!(w.a("web.team-a.svc.cluster.local.").await.1, ["10.1.0.1"]);
    assert_eq!(
        w.a("hidden.team-a.svc.cluster.local.").await.0,
        ResponseCode::NXDomain
    );
    assert_eq!(
        w.a("web.team-b.svc.cluster.local.").await.0,
        ResponseCode::NXDomain
    );
    let team_b = ask(&w.client, "team-b.svc.cluster.local.", RecordType::A, None).await;
    assert_eq!(
        team_b.metadata.response_code,
        ResponseCode::NXDomain,
        "unwatched namespaces do not exist"
    );
    let team_a = ask(&w.client, "team-a.svc.cluster.local.", RecordType::A, None).await;
    assert_eq!(team_a.metadata.response_code, ResponseCode::NoError);
    w.server.stop().await;
}
