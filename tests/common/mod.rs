//! Helpers shared by the integration tests: manifests, a server on an ephemeral port, and DNS
//! clients over real sockets.
#![allow(dead_code)]

pub mod apiserver;
pub mod process;
pub mod secondary;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use headless_dns::config::Config;
use hickory_net::DnsHandle;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{DnsRequestOptions, Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

pub fn headless_service(ns: &str, name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  clusterIP: None\n  selector: {{app: {app}}}\n  ports:\n  - {{name: web, port: 80, protocol: TCP}}\n"
    )
}

/// A pod as kubectl shows it: `ready` sets the Ready condition.
pub fn pod(
    ns: &str,
    name: &str,
    app: &str,
    ip: &str,
    hostname: Option<(&str, &str)>,
    ready: bool,
) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{app: {app}}}\nspec:\n"
    );
    if let Some((hostname, subdomain)) = hostname {
        writeln!(text, "  hostname: {hostname}\n  subdomain: {subdomain}").unwrap();
    }
    let status = if ready { "True" } else { "False" };
    write!(
        text,
        "  containers: [{{name: app, image: app}}]\nstatus:\n  phase: Running\n  podIP: {ip}\n  podIPs: [{{ip: {ip}}}]\n\
         \x20 conditions: [{{type: Ready, status: \"{status}\"}}]\n"
    )
    .unwrap();
    text
}

/// A headless Service `name` in `default` and `pods` Ready pods `name-<i>` behind it, at
/// `<prefix>.1`, `<prefix>.2`, ... (up to 254).
pub fn headless_service_of(name: &str, pods: usize, prefix: &str) -> Vec<String> {
    let mut parts = vec![headless_service("default", name, name)];
    parts.extend((0..pods).map(|i| {
        let ip = format!("{prefix}.{}", i + 1);
        pod("default", &format!("{name}-{i}"), name, &ip, None, true)
    }));
    parts
}

pub fn documents(parts: &[String]) -> String {
    parts.join("---\n")
}

/// The StatefulSet example of the seeds: nginx-svc with web-0 and web-1 Ready.
pub fn statefulset_cluster() -> Vec<String> {
    vec![
        headless_service("default", "nginx-svc", "nginx"),
        pod(
            "default",
            "web-0",
            "nginx",
            "10.244.1.10",
            Some(("web-0", "nginx-svc")),
            true,
        ),
        pod(
            "default",
            "web-1",
            "nginx",
            "10.244.2.11",
            Some(("web-1", "nginx-svc")),
            true,
        ),
    ]
}

/// Writes `path` atomically (write + rename), as editors and ConfigMap updates do.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The flags `args` parsed, with the DNS and HTTP listeners on ephemeral loopback ports.
pub fn ephemeral_config(args: &[&str]) -> Result<Config, clap::Error> {
    let mut all = vec![
        "headless-dns",
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    Config::try_parse_from(all)
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub http: SocketAddr,
    running: Option<headless_dns::Running>,
}

impl TestServer {
    pub async fn start(manifests: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["--manifests", manifests.to_str().unwrap()];
        args.extend_from_slice(extra);
        Self::with_args(&args).await
    }

    /// The server with these flags, on ephemeral DNS and HTTP ports.
    pub async fn with_args(args: &[&str]) -> Self {
        let config = ephemeral_config(args).expect("valid flags");
        let running = headless_dns::start(&config).await.expect("server starts");
        Self {
            addr: running.dns_addr,
            http: running.http_addr,
            running: Some(running),
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

pub async fn udp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default()).build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(background);
    client
}

pub async fn tcp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let (connect, handle) = TcpClientStream::new(addr, None, None, TokioRuntimeProvider::new());
    let stream = connect.await.expect("TCP connect");
    let (client, background) = Client::<TokioRuntimeProvider>::new(stream, handle);
    tokio::spawn(background);
    client
}

/// Asks one question; `edns`: `None` for a classic query, or the payload size to offer.
pub async fn ask(
    client: &Client<TokioRuntimeProvider>,
    name: &str,
    qtype: RecordType,
    edns: Option<u16>,
) -> Message {
    let mut options = DnsRequestOptions::default();
    options.use_edns = edns.is_some();
    options.edns_payload_len = edns.unwrap_or(512);
    let query = Query::query(Name::from_ascii(name).unwrap(), qtype);
    client
        .lookup(query, options)
        .next()
        .await
        .expect("a response")
        .expect("no transport error")
        .into_message()
}

/// The answer section rendered as `name TYPE data`, sorted.
pub fn answers(response: &Message) -> Vec<String> {
    let mut lines: Vec<String> = response
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    lines.sort();
    lines
}

/// The reason an answer carries as an Extended DNS Error (RFC 8914), if any.
pub fn reason(response: &Message) -> Option<String> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    match response.edns.as_ref()?.option(EdnsCode::Unknown(15))? {
        EdnsOption::Unknown(15, data) if data.len() >= 2 => {
            Some(String::from_utf8_lossy(&data[2..]).into_owned())
        }
        _ => None,
    }
}

pub fn a_records(response: &Message) -> Vec<String> {
    let mut ips: Vec<String> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

/// Sends raw bytes over UDP and returns the raw reply, if one comes within 300 ms.
pub async fn raw_udp(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(packet, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Polls `check` until it holds or `limit` passes; returns how long it took.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// `GET path` over plain HTTP/1.1; returns the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http_exchange(addr, path).await;
    (status, body)
}

/// `GET path`: the status, the header lines (lower case) and the body.
pub async fn http_exchange(addr: SocketAddr, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("HTTP connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_lowercase(), body.to_owned())
}

/// Prometheus's own linter, `promtool check metrics`, finds nothing to complain about in
/// `body`.
pub fn promtool_check(body: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian: apt-get install prometheus)");
    let mut input = promtool.stdin.take().unwrap();
    input.write_all(body.as_bytes()).unwrap();
    drop(input);
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The value of one series on `/metrics` (`name` or `name{labels}` exactly as printed), if
/// it is there.
pub async fn metric(http: SocketAddr, series: &str) -> Option<f64> {
    let (status, body) = http_get(http, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
