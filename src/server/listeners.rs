//! The DNS listeners: UDP and TCP on one address (with port 0, one ephemeral port free for
//! both), bound first and serving once asked — so that every listener of the process is bound
//! before anything answers — then stopped together.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::server::metrics::OpenConnections;
use crate::server::responder::Responder;
use crate::server::tcp::{self, TcpServer};
use crate::server::udp::{self, UdpAsync, UdpWorkers};

/// How often to retry binding TCP when an ephemeral UDP port's twin is taken.
const EPHEMERAL_ATTEMPTS: usize = 16;

/// How DNS is served; see the `--udp-threads` and `--tcp-connections` flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DnsOptions {
    /// UDP fast-path threads; 0: one async task instead.
    pub udp_threads: usize,
    /// TCP connections open at once; past this the least recently active one is closed.
    pub tcp_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub tcp_idle: Duration,
}

pub(crate) struct DnsServer {
    udp: Udp,
    tcp: TcpServer,
    local_addr: SocketAddr,
}

enum Udp {
    Async(UdpAsync),
    FastPath(UdpWorkers),
}

/// The DNS sockets, bound but not yet answering: every listener is bound before any answers, so
/// a port that cannot be had stops the start before a single query is answered.
pub(crate) struct DnsSockets {
    udp: BoundUdp,
    tcp: std::net::TcpListener,
    local_addr: SocketAddr,
    options: DnsOptions,
}

impl DnsSockets {
    /// Starts answering on the sockets.
    pub(crate) fn serve<R: Responder>(self, responder: R) -> io::Result<DnsServer> {
        let tcp = TcpServer::spawn(
            self.tcp,
            responder.clone(),
            self.options.tcp_connections,
            self.options.tcp_idle,
        )?;
        let udp = match self.udp {
            BoundUdp::Async(socket) => Udp::Async(UdpAsync::spawn(socket, responder)),
            BoundUdp::FastPath(sockets) => Udp::FastPath(UdpWorkers::spawn(sockets, responder)?),
        };
        Ok(DnsServer {
            udp,
            tcp,
            local_addr: self.local_addr,
        })
    }
}

impl DnsServer {
    /// Binds UDP and TCP on `listen` (with port 0, one ephemeral port free for both), to answer
    /// once [`DnsSockets::serve`] is called.
    pub(crate) async fn bind(listen: SocketAddr, options: DnsOptions) -> io::Result<DnsSockets> {
        let (udp, tcp) = bind_pair(listen, options).await?;
        let local_addr = tcp.local_addr()?;
        Ok(DnsSockets {
            udp,
            tcp,
            local_addr,
            options,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reads the TCP connections open, for the metrics.
    pub(crate) fn tcp_connections_reader(&self) -> OpenConnections {
        self.tcp.open_connections_reader()
    }

    pub(crate) async fn shutdown(self) {
        self.tcp.shutdown().await;
        match self.udp {
            Udp::Async(task) => task.stop(),
            Udp::FastPath(workers) => {
                tokio::task::spawn_blocking(move || workers.stop())
                    .await
                    .ok();
            }
        }
    }
}

enum BoundUdp {
    Async(UdpSocket),
    FastPath(Vec<std::net::UdpSocket>),
}

impl BoundUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            BoundUdp::Async(socket) => socket.local_addr(),
            BoundUdp::FastPath(sockets) => sockets[0].local_addr(),
        }
    }
}

async fn bind_pair(
    listen: SocketAddr,
    options: DnsOptions,
) -> io::Result<(BoundUdp, std::net::TcpListener)> {
    let attempts = if listen.port() == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = match options.udp_threads {
            0 => BoundUdp::Async(UdpSocket::bind(listen).await?),
            n => BoundUdp::FastPath(udp::bind_sockets(listen, n)?),
        };
        match tcp::bind_listener(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use hickory_server::net::xfer::Protocol;

    use super::*;
    use crate::server::responder::contained_panics;

    /// Echoes every message, and panics on one whose first byte is 0xEE.
    #[derive(Clone)]
    struct Fragile;

    impl Responder for Fragile {
        fn answer(&self, message: &[u8], _: SocketAddr, _: Protocol, out: &mut Vec<u8>) -> bool {
            assert_ne!(message.first(), Some(&0xEE), "injected panic");
            out.extend_from_slice(message);
            true
        }
    }

    /// The reply to `message`, if one comes within `wait`.
    async fn udp_exchange(server: SocketAddr, message: &[u8], wait: Duration) -> Option<Vec<u8>> {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(message, server).await.unwrap();
        let mut reply = vec![0; 512];
        let received = tokio::time::timeout(wait, socket.recv(&mut reply));
        let len = received.await.ok()?.ok()?;
        Some(reply[..len].to_vec())
    }

    /// A panic while answering costs that message only: the UDP thread (or task) and the TCP
    /// connection answer the next one.
    #[tokio::test]
    async fn a_panic_loses_one_message_on_every_transport() {
        for udp_threads in [1, 0] {
            let options = DnsOptions {
                udp_threads,
                tcp_connections: 8,
                tcp_idle: Duration::from_secs(5),
            };
            let listen = "127.0.0.1:0".parse().unwrap();
            let server = DnsServer::bind(listen, options)
                .await
                .unwrap()
                .serve(Fragile)
                .unwrap();
            let addr = server.local_addr();
            let before = contained_panics();
            // A reply may wait long: the thread first writes the panic's backtrace (with
            // RUST_BACKTRACE set, resolving the first one's symbols takes a while on a busy host).
            let (none, reply) = (Duration::from_millis(300), Duration::from_secs(20));
            for _ in 0..3 {
                assert_eq!(udp_exchange(addr, &[0xEE, 1, 2], none).await, None);
                assert_eq!(
                    udp_exchange(addr, &[1, 2, 3], reply).await,
                    Some(vec![1, 2, 3])
                );
            }
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            for message in [[0xEE, 5], [7, 8], [0xEE, 6], [9, 10]] {
                tcp.write_all(&[0, 2]).await.unwrap();
                tcp.write_all(&message).await.unwrap();
            }
            let mut replies = [0u8; 8];
            tcp.read_exact(&mut replies).await.unwrap();
            assert_eq!(replies, [0, 2, 7, 8, 0, 2, 9, 10]);
            assert_eq!(contained_panics() - before, 5);
            server.shutdown().await;
        }
    }
}
