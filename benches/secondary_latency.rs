//! Change → answer at a secondary: Knot DNS as a secondary of headless-dns, which follows the test
//! API server; each change flips one pod's readiness, and the time is taken from the change
//! leaving the API server to the first answer from Knot that reflects it (watch, publication,
//! NOTIFY, IXFR, Knot applying it). Also the size of each change's IXFR. Prints figures; not a
//! test.
//!
//!     cargo bench --bench secondary_latency [-- PODS [CHANGES]]

#[path = "../tests/common/apiserver.rs"]
mod apiserver;
#[path = "../tests/common/secondary.rs"]
mod secondary;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use apiserver::FakeApi;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use secondary::{Kind, Secondary, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pods = numbers.first().copied().unwrap_or(10_000);
    let changes = numbers.get(1).copied().unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(measure(pods, changes));
}

async fn measure(pods: usize, changes: usize) {
    let api = FakeApi::start().await;
    apiserver::populate_bench(&api, pods);
    let dir = tempfile::tempdir().unwrap();
    let knot_port = free_port();
    let notify = format!("127.0.0.1:{knot_port}");
    let config = api.follower_config(
        dir.path(),
        &["--allow-transfer", "127.0.0.1", "--notify", &notify],
    );
    let running = headless_dns::start(&config).await.expect("starts");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(running.dns_addr).await.unwrap();
    while serial(&socket).await.is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let knot = Secondary::start(
        Kind::Knot,
        &dir.path().join("knot"),
        knot_port,
        running.dns_addr,
        &["cluster.local"],
        None,
    );
    let theirs = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    theirs.connect(knot.addr).await.unwrap();
    let loading = Instant::now();
    while serial(&theirs).await != serial(&socket).await {
        assert!(
            loading.elapsed() < Duration::from_secs(120),
            "Knot never loaded the zone: {}",
            knot.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{pods} pods: Knot loaded the zone by AXFR {:.0} ms after it started",
        loading.elapsed().as_secs_f64() * 1000.0
    );

    let mut latencies = Vec::with_capacity(changes);
    let mut sizes = Vec::with_capacity(changes);
    let flips = apiserver::readiness_flips(pods).take(changes);
    for (change, (i, name, becomes_ready)) in flips.enumerate() {
        let want = if becomes_ready {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        let before = serial(&socket).await.unwrap();
        let sent = Instant::now();
        api.apply(apiserver::bench_pod(i, becomes_ready));
        while rcode(&theirs, change as u16, &name).await != Some(want) {
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "{name} never changed at Knot: {}",
                knot.log_tail()
            );
        }
        latencies.push(sent.elapsed());
        sizes.push(ixfr_size(running.dns_addr, before).await);
    }
    latencies.sort();
    sizes.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (records, bytes): (Vec<usize>, Vec<usize>) = sizes.iter().copied().unzip();
    let median = |v: &[usize]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "change -> answer at Knot over {changes} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         IXFR per change: median {} records / {} bytes (max {} / {})",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*latencies.last().unwrap()),
        median(&records),
        median(&bytes),
        records.iter().max().unwrap(),
        bytes.iter().max().unwrap(),
    );
    running.shutdown().await;
    api.down().await;
}

/// The zone's SOA serial at the server `socket` is connected to, if it answers.
async fn serial(socket: &UdpSocket) -> Option<u32> {
    let reply = exchange(socket, 1, "cluster.local.", RecordType::SOA).await?;
    reply.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

async fn rcode(socket: &UdpSocket, id: u16, name: &str) -> Option<ResponseCode> {
    Some(
        exchange(socket, id, name, RecordType::A)
            .await?
            .metadata
            .response_code,
    )
}

async fn exchange(socket: &UdpSocket, id: u16, name: &str, qtype: RecordType) -> Option<Message> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    socket.send(&message.to_vec().unwrap()).await.ok()?;
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

/// Records and bytes of the IXFR from `serial` that the server at `server` sends.
async fn ixfr_size(server: SocketAddr, serial: u32) -> (usize, usize) {
    let zone = Name::from_ascii("cluster.local.").unwrap();
    let mut message = Message::new(7, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(zone.clone(), RecordType::IXFR));
    let soa = SOA::new(zone.clone(), zone.clone(), serial, 0, 0, 0, 0);
    message.add_authority(Record::from_rdata(zone, 0, RData::SOA(soa)));
    let bytes = message.to_vec().unwrap();
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream.write_u16(bytes.len() as u16).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let (mut records, mut total) = (0, 0);
    // The last message is the one after which nothing more comes.
    while let Ok(Ok(length)) =
        tokio::time::timeout(Duration::from_millis(300), stream.read_u16()).await
    {
        let mut buf = vec![0u8; usize::from(length)];
        stream.read_exact(&mut buf).await.unwrap();
        total += buf.len() + 2;
        records += Message::from_vec(&buf).unwrap().answers.len();
    }
    (records, total)
}
