//! Answers that explain themselves, end to end: `dig` prints the Extended DNS Error the built
//! binary attaches to negative answers (on the direct UDP path, hickory's, and TCP), `--explain
//! off` removes it, and `GET /explain` and `headless-dns explain` give the whole account; from
//! the demo cluster's manifests, and from the test API server through the real kube client.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::apiserver::{self, FakeApi};
use common::process::{self, BINARY, Process};
use common::*;

const DEMO: &str = "config/demo-cluster.yaml";
const WEB2: &str = "web-2.nginx-svc.default.svc.cluster.local";
const NOT_READY: &str =
    "; EDE: 0 (Other): (pod web-2 is not Ready, so Service nginx-svc does not list it)";

fn dig(server: &Process, args: &str) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.dns.ip()))
        .args(["-p", &server.dns.port().to_string(), "+time=2", "+tries=1"])
        .args(args.split_whitespace())
        .output()
        .expect("dig is installed (Debian: apt-get install bind9-dnsutils)");
    assert!(output.status.success(), "dig {args}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn ede_lines(reply: &str) -> Vec<&str> {
    reply.lines().filter(|l| l.starts_with("; EDE:")).collect()
}

fn serve(extra: &[&str]) -> Process {
    let mut command = process::command(None);
    command.args(["--manifests", DEMO]).args(extra);
    Process::start(command)
}

/// `headless-dns ARGS`, run to its end.
fn run(args: &[&str]) -> Output {
    Command::new(BINARY)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn dig_prints_why_a_name_does_not_resolve() {
    let server = serve(&[]);
    // dig sends a cookie (hickory's path), +nocookie a bare OPT (the direct writer), +tcp TCP.
    for transport in ["", "+nocookie", "+tcp"] {
        let reply = dig(&server, &format!("{transport} {WEB2}"));
        assert!(reply.contains("status: NXDOMAIN"), "{reply}");
        assert_eq!(ede_lines(&reply), [NOT_READY], "{transport}: {reply}");
    }
    for (question, says) in [
        (
            "nginx.default.svc.cluster.local",
            "no Service nginx in namespace default; did you mean nginx-svc?",
        ),
        (
            "nginx-svc.defualt.svc.cluster.local",
            "no namespace defualt; did you mean default?",
        ),
        (
            "nginx-svc.default.svc.cluster.local AAAA",
            "the name has no AAAA records (it has A, SRV)",
        ),
    ] {
        let reply = dig(&server, &format!("+nocookie {question}"));
        assert_eq!(
            ede_lines(&reply),
            [format!("; EDE: 0 (Other): ({says})")],
            "{reply}"
        );
    }
    // Nothing to explain in an answer, and nowhere to put it without EDNS.
    let found = dig(
        &server,
        "+nocookie web-0.nginx-svc.default.svc.cluster.local",
    );
    assert!(
        found.contains("status: NOERROR") && ede_lines(&found).is_empty(),
        "{found}"
    );
    let plain = dig(&server, &format!("+noedns {WEB2}"));
    assert!(
        plain.contains("status: NXDOMAIN") && ede_lines(&plain).is_empty(),
        "{plain}"
    );

    let quiet = serve(&["--explain", "off"]);
    for transport in ["", "+nocookie", "+tcp"] {
        let reply = dig(&quiet, &format!("{transport} {WEB2}"));
        assert!(reply.contains("status: NXDOMAIN"), "{reply}");
        assert!(
            ede_lines(&reply).is_empty(),
            "--explain off, {transport}: {reply}"
        );
    }
}

/// `--explain off`: no reason for a name outside the zone either, and none over HTTP.
#[tokio::test]
async fn explain_off_keeps_the_reasons_from_everyone() {
    let quiet = serve(&["--explain", "off"]);
    let reply = dig(&quiet, "nginx-svc");
    assert!(
        reply.contains("status: REFUSED") && ede_lines(&reply).is_empty(),
        "{reply}"
    );
    let (status, _, body) = http_exchange(quiet.http, &format!("/explain?name={WEB2}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("--explain off") && !body.contains("web-2"),
        "{body}"
    );
}

#[tokio::test]
async fn explain_on_http_and_on_the_command_line_agree() {
    let server = serve(&[]);
    let (status, head, body) =
        http_exchange(server.http, &format!("/explain?name={WEB2}&type=a")).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let over_http: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(over_http["rcode"], "NXDOMAIN");
    assert_eq!(over_http["ede"]["code"], 0);
    assert_eq!(
        over_http["reason"],
        "pod web-2 is not Ready, so Service nginx-svc does not list it"
    );
    let facts = over_http["facts"].as_array().unwrap();
    assert!(
        facts.iter().any(|f| f
            .as_str()
            .unwrap()
            .starts_with("Service nginx-svc: headless, selector app=nginx, 2 endpoints")),
        "{facts:?}"
    );

    // The command reads the same file and says the same, as text or as the same JSON.
    let text = run(&["explain", WEB2, "--manifests", DEMO]);
    assert!(text.status.success(), "{text:?}");
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with(&format!("{WEB2}. A: NXDOMAIN\n")),
        "{text}"
    );
    assert!(text.ends_with(&format!(
        "why: {} (EDE 0)\n",
        over_http["reason"].as_str().unwrap()
    )));
    let json = run(&["explain", WEB2, "A", "--json", "--manifests", DEMO]);
    let from_command: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let without_serial = |mut report: serde_json::Value| {
        // Each process starts its own SOA serial.
        report["authority"] = serde_json::Value::Null;
        report["facts"][0] = serde_json::Value::Null;
        report
    };
    assert_eq!(without_serial(from_command), without_serial(over_http));

    // A name is read as dig reads it: a short one is outside the zone, and refused, with the
    // full name it likely means; dig gets the same.
    let short = run(&[
        "explain",
        "web-2.nginx-svc.default.svc",
        "--manifests",
        DEMO,
    ]);
    let short = String::from_utf8(short.stdout).unwrap();
    let likely = "not in cluster.local: did you mean web-2.nginx-svc.default.svc.cluster.local?";
    assert!(
        short.starts_with("web-2.nginx-svc.default.svc. A: REFUSED\n")
            && short.ends_with(&format!("why: {likely} (EDE 20)\n")),
        "{short}"
    );
    for transport in ["", "+nocookie", "+tcp"] {
        let reply = dig(&server, &format!("{transport} web-2.nginx-svc.default.svc"));
        assert!(reply.contains("status: REFUSED"), "{reply}");
        assert_eq!(
            ede_lines(&reply),
            [format!("; EDE: 20 (Not Authoritative): ({likely})")],
            "{transport}: {reply}"
        );
    }

    // An address is asked by its reverse name; an answer has records and no EDE.
    let (_, _, body) = http_get_json(server.http, "/explain?name=10.244.1.10").await;
    assert_eq!(body["type"], "PTR");
    assert_eq!(
        body["answers"][0],
        "10.1.244.10.in-addr.arpa. 5 IN PTR web-0.nginx-svc.default.svc.cluster.local."
    );
    assert!(body["ede"].is_null());

    // Bad questions: a clear error, never a panic.
    let (status, _, body) = http_get_json(server.http, "/explain?name=web-0&type=BOGUS").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("\"BOGUS\" is not a record type"),
        "{body}"
    );
    let (status, _, _) = http_get_json(server.http, "/explain").await;
    assert_eq!(status, 400);
    let bad = run(&["explain", "web-0", "BOGUS", "--manifests", DEMO]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is not a record type"),
        "{bad:?}"
    );
}

async fn http_get_json(http: std::net::SocketAddr, path: &str) -> (u16, String, serde_json::Value) {
    let (status, head, body) = http_exchange(http, path).await;
    (status, head, serde_json::from_str(&body).unwrap())
}

/// From the API through the real kube client: the reason follows the pod; before the first
/// complete list every name in the zone is SERVFAIL with "Not Ready"; `explain` reads the API.
/// Two worker threads: the test API server keeps answering while the test waits on `dig` and
/// on `headless-dns explain`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explanations_follow_the_api() {
    let api = FakeApi::start().await;
    api.apply(apiserver::namespace("default"));
    api.apply(apiserver::headless_service(
        "default",
        "nginx-svc",
        Some(("app", "nginx")),
    ));
    for (name, ip, ready) in [
        ("web-0", "10.244.1.10", true),
        ("web-2", "10.244.1.12", false),
    ] {
        let pod = apiserver::pod("default", name, "nginx", ip, ready);
        api.apply(apiserver::with_hostname(pod, name, "nginx-svc"));
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let mut command = process::command(None);
    command.args(["--kubeconfig", kubeconfig]);
    let server = Process::start(command);
    let said = |reply: &str| ede_lines(reply).first().map(|l| l.to_string());
    let first = eventually(Duration::from_secs(20), || {
        let reply = dig(&server, &format!("+nocookie {WEB2}"));
        async move { said(&reply).is_some_and(|l| l == NOT_READY) }
    })
    .await;
    assert!(first.is_some(), "{}", dig(&server, WEB2));

    let explained = run(&["explain", WEB2, "--kubeconfig", kubeconfig]);
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(
        explained.status.success() && text.contains("why: pod web-2 is not Ready"),
        "{explained:?}"
    );

    // Ready now: it answers, and says nothing more.
    let pod = apiserver::pod("default", "web-2", "nginx", "10.244.1.12", true);
    api.apply(apiserver::with_hostname(pod, "web-2", "nginx-svc"));
    let resolved = eventually(Duration::from_secs(20), || {
        let reply = dig(&server, &format!("+nocookie {WEB2}"));
        async move { reply.contains("status: NOERROR") && ede_lines(&reply).is_empty() }
    })
    .await;
    assert!(resolved.is_some(), "{}", dig(&server, WEB2));

    // An API that is not there: nothing is known to be absent, and the answer says so.
    let away = FakeApi::reserve().await;
    let kubeconfig = away.write_kubeconfig(dir.path());
    let mut command = process::command(None);
    command.args(["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let early = Process::start(command);
    let reply = dig(&early, &format!("+nocookie {WEB2}"));
    assert!(reply.contains("status: SERVFAIL"), "{reply}");
    assert_eq!(
        said(&reply).as_deref(),
        Some(
            "; EDE: 14 (Not Ready): (not yet synced with the Kubernetes API: no complete list of the cluster so far)"
        )
    );
}
