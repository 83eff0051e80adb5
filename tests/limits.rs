//! The built binary under descriptor limits (`prlimit`): the soft limit raised at start, TCP
//! connections capped by closing the least recently active, a 1024-connection listen backlog,
//! and — with every descriptor taken — accept loops that back off (measured: CPU well under 5%
//! of a core) and warn once, while UDP keeps answering.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{self, Process};

/// The binary on the demo cluster under `prlimit --nofile=SOFT:HARD`, with one UDP thread.
fn start(nofile: &str, args: &[&str]) -> Process {
    let limit = format!("--nofile={nofile}");
    let mut command = process::command(Some(&["prlimit", &limit, "--"]));
    command
        .args([
            "--manifests",
            "config/demo-cluster.yaml",
            "--udp-threads",
            "1",
        ])
        .args(args);
    Process::start(command)
}

/// Whether a UDP query for web-0 gets its answer.
fn udp_answers(server: &Process) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket.send_to(&query(1), server.dns).unwrap();
    let mut reply = [0u8; 512];
    matches!(socket.recv(&mut reply), Ok(n) if n > 12 && reply[7] == 1)
}

/// A query for web-0.nginx-svc.default.svc.cluster.local A with ID `id`.
fn query(id: u16) -> Vec<u8> {
    let mut message = id.to_be_bytes().to_vec();
    message.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in "web-0.nginx-svc.default.svc.cluster.local".split('.') {
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.extend_from_slice(&[0, 0, 1, 0, 1]);
    message
}

/// Asks one query over `stream`; whether an answer came back.
fn tcp_exchange(stream: &mut TcpStream, id: u16) -> bool {
    let message = query(id);
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&message);
    if stream.write_all(&framed).is_err() {
        return false;
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut length = [0u8; 2];
    if stream.read_exact(&mut length).is_err() {
        return false;
    }
    let mut reply = vec![0; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut reply).is_ok() && reply[..2] == id.to_be_bytes()
}

/// Whether the server has closed `stream` (a read ends at once, with nothing).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    matches!(stream.read(&mut [0u8; 1]), Ok(0)) || matches!(stream.read(&mut [0u8; 1]), Ok(0))
}

#[test]
fn the_descriptor_limit_is_raised_and_tcp_connections_are_capped() {
    let server = start("200:4096", &["--tcp-connections", "10"]);
    let raised = server.lines("raised the open-file limit");
    assert!(
        raised
            .iter()
            .any(|l| l.contains("from=200") && l.contains("to=4096")),
        "{raised:?}"
    );

    // 15 clients one after another: the 5 least recently active are closed to make room.
    let mut clients: Vec<TcpStream> = Vec::new();
    for id in 0..15 {
        let mut stream = TcpStream::connect(server.dns).unwrap();
        assert!(tcp_exchange(&mut stream, id), "client {id} got no answer");
        clients.push(stream);
    }
    std::thread::sleep(Duration::from_millis(100));
    let closed: Vec<bool> = clients.iter_mut().map(closed_by_server).collect();
    assert_eq!(closed, [[true; 5].as_slice(), &[false; 10]].concat());
    // A client that keeps asking stays: client 5, active again, outlives client 6.
    assert!(tcp_exchange(&mut clients[5], 100));
    let mut newcomer = TcpStream::connect(server.dns).unwrap();
    assert!(tcp_exchange(&mut newcomer, 101));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!closed_by_server(&mut clients[5]) && closed_by_server(&mut clients[6]));

    // The listen backlog, as the kernel reports it for a listening socket.
    let ss = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{}", server.dns.port())])
        .output()
        .expect("ss runs (iproute2)");
    let ss = String::from_utf8_lossy(&ss.stdout);
    let backlog: Vec<&str> = ss
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(backlog, ["1024"], "{ss}");
}

/// The case: 300 TCP clients against a limit of 256 descriptors. The cap is fitted to
/// the limit, so the oldest clients are closed instead of the process running out.
#[test]
fn more_tcp_clients_than_descriptors() {
    let server = start("256:256", &[]);
    let fitted = server.lines("fewer TCP connections than --tcp-connections asks");
    assert!(
        fitted.iter().any(|l| l.contains("allowed=192")),
        "{fitted:?}"
    );
    let mut clients = Vec::new();
    let mut answered = 0;
    for id in 0..300 {
        let mut stream = TcpStream::connect(server.dns).unwrap();
        answered += usize::from(tcp_exchange(&mut stream, id));
        clients.push(stream);
    }
    assert_eq!(answered, 300);
    assert!(udp_answers(&server));
    // With 300 connections open or closed and nothing asked, nothing may spin.
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let share = (server.cpu_seconds() - cpu_before) / started.elapsed().as_secs_f64();
    eprintln!(
        "300 clients under 256 descriptors: server CPU {:.1}% of a core",
        share * 100.0
    );
    assert!(share < 0.05, "server CPU {share:.3} of a core");
    assert!(server.lines("out of file descriptors").is_empty());
}

/// Every descriptor taken (by idle HTTP clients, which are not capped): both accept loops back
/// off instead of spinning, each warns once, UDP answers throughout, and TCP is served again
/// once descriptors are free.
#[test]
fn exhausted_descriptors_back_off_quietly() {
    let server = start("100:100", &[]);
    let mut hogs = Vec::new();
    for _ in 0..130 {
        hogs.push(TcpStream::connect(server.http).unwrap());
    }
    let exhausted = server.wait_for_line("what=\"HTTP\"", Duration::from_secs(10));
    assert!(
        exhausted.is_some(),
        "HTTP clients never took every descriptor"
    );
    // Clients waiting in the DNS listener's backlog, which cannot be taken.
    let waiting: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(server.dns).unwrap())
        .collect();
    let exhausted = server.wait_for_line("what=\"DNS over TCP\"", Duration::from_secs(10));
    assert!(exhausted.is_some(), "{:?}", server.lines("WARN"));
    let cpu_before = server.cpu_seconds();
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let share = (server.cpu_seconds() - cpu_before) / window.elapsed().as_secs_f64();
    eprintln!(
        "descriptors exhausted: server CPU {:.2}% of a core",
        share * 100.0
    );
    assert!(
        share < 0.05,
        "server CPU {share:.3} of a core while exhausted"
    );
    assert!(udp_answers(&server), "UDP keeps answering");
    let warnings = server.lines("out of file descriptors");
    assert_eq!(warnings.len(), 2, "one warning per listener: {warnings:?}");
    assert!(warnings.iter().all(|l| l.contains("WARN")));
    assert_eq!(server.lines("what=\"HTTP\"").len(), 1, "{warnings:?}");

    drop(waiting);
    drop(hogs);
    std::thread::sleep(Duration::from_secs(1));
    let mut client = TcpStream::connect(server.dns).unwrap();
    assert!(tcp_exchange(&mut client, 7), "TCP is served again");
    assert_eq!(server.lines("out of file descriptors").len(), 2);
}
