//! The servers: DNS over UDP and TCP on one address, answered by [`handler::Handler`], and the
//! HTTP probes.

pub mod handler;
pub mod http;
pub mod truncation;
pub mod udp;
pub mod wire;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use handler::Handler;
use udp::UdpWorkers;

/// A TCP connection that sends no query for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Responses queued per TCP connection before the connection applies back-pressure.
const TCP_RESPONSE_BUFFER: usize = 32;

/// How often to retry binding TCP when an ephemeral UDP port's twin is taken.
const EPHEMERAL_ATTEMPTS: usize = 16;

pub struct DnsServer {
    server: Server<Handler>,
    udp_workers: Option<UdpWorkers>,
    local_addr: SocketAddr,
}

impl DnsServer {
    /// Binds UDP and TCP on `listen`; with port 0, one ephemeral port free for both. UDP is
    /// answered by `udp_threads` fast-path threads, or with 0 by hickory-server's own UDP loop.
    pub async fn bind(
        listen: SocketAddr,
        handler: Handler,
        udp_threads: usize,
    ) -> io::Result<Self> {
        let (udp, tcp) = bind_pair(listen, udp_threads).await?;
        let local_addr = tcp.local_addr()?;
        let mut server = Server::new(handler.clone());
        let udp_workers = match udp {
            Udp::Hickory(socket) => {
                server.register_socket(socket);
                None
            }
            Udp::FastPath(sockets) => Some(UdpWorkers::spawn(sockets, handler)?),
        };
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        Ok(Self {
            server,
            udp_workers,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn shutdown(mut self) {
        if let Some(workers) = self.udp_workers.take() {
            tokio::task::spawn_blocking(move || workers.stop())
                .await
                .ok();
        }
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::warn!(%error, "DNS server stopped with an error");
        }
    }
}

enum Udp {
    Hickory(UdpSocket),
    FastPath(Vec<std::net::UdpSocket>),
}

impl Udp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Udp::Hickory(socket) => socket.local_addr(),
            Udp::FastPath(sockets) => sockets[0].local_addr(),
        }
    }
}

async fn bind_pair(listen: SocketAddr, udp_threads: usize) -> io::Result<(Udp, TcpListener)> {
    let attempts = if listen.port() == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = match udp_threads {
            0 => Udp::Hickory(UdpSocket::bind(listen).await?),
            n => Udp::FastPath(udp::bind_sockets(listen, n)?),
        };
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}
