//! Watch-to-answer latency: the time from a change leaving the test API server (the object is
//! handed to every open watch) to the first DNS answer over UDP that reflects it, at 1,000 and
//! 100,000 pods; and the time from start to `/readyz` 200. Prints figures; not a test.
//!
//!     cargo bench --bench watch_latency [-- PODS...]

#[path = "../tests/common/apiserver.rs"]
mod apiserver;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use apiserver::FakeApi;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

const CHANGES: usize = 1000;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if std::env::var_os("RUST_LOG").is_some() {
        headless_dns::logging::init(headless_dns::config::LogFormat::Text, false).unwrap();
    }
    let sizes = if sizes.is_empty() {
        vec![1_000, 100_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for pods in sizes {
        runtime.block_on(measure(pods));
    }
}

async fn measure(pods: usize) {
    let api = FakeApi::start().await;
    apiserver::populate_bench(&api, pods);
    let dir = tempfile::tempdir().unwrap();
    let config = api.follower_config(dir.path(), &[]);

    let serve_list = list_alone(api.addr).await;
    let started = Instant::now();
    let running = headless_dns::start(&config).await.expect("starts");
    while !ready(running.http_addr).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_after = started.elapsed();

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(running.dns_addr).await.unwrap();
    let mut latencies = Vec::with_capacity(CHANGES);
    let flips = apiserver::readiness_flips(pods).take(CHANGES);
    for (change, (i, name, becomes_ready)) in flips.enumerate() {
        let query = query_bytes(change as u16, &name);
        let want = if becomes_ready {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        let sent = Instant::now();
        api.apply(apiserver::bench_pod(i, becomes_ready));
        loop {
            if rcode(&socket, &query).await == Some(want) {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "{name} never changed"
            );
        }
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{pods:>7} pods: start -> /readyz 200 in {:>7.1} ms (the test API server alone takes {:.1} ms \
         to serve that pod list); watch event -> answer over {CHANGES} changes: p50 {:.3} ms, p99 {:.3} ms, \
         max {:.3} ms",
        ms(ready_after),
        ms(serve_list),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*latencies.last().unwrap())
    );
    running.shutdown().await;
    api.down().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn query_bytes(id: u16, name: &str) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    message.to_vec().unwrap()
}

async fn rcode(socket: &UdpSocket, query: &[u8]) -> Option<ResponseCode> {
    socket.send(query).await.ok()?;
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n])
        .ok()
        .map(|m| m.metadata.response_code)
}

/// How long the test API server takes to produce every page of the pod list, read by a client
/// that does nothing with it: the share of startup that is not headless-dns's.
async fn list_alone(api: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut from = String::new();
    loop {
        let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
        let request = format!(
            "GET /api/v1/pods?limit=5000{from} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        match text
            .split("\"continue\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            Some(token) => from = format!("&continue={token}"),
            None => return started.elapsed(),
        }
    }
}

async fn ready(http: SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(http).await else {
        return false;
    };
    let _ = stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .await;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response.starts_with("HTTP/1.1 200")
}
