//! DNS over TCP (RFC 7766): two-byte length-prefixed messages on connections that stay open
//! while in use, answered in order by the same [`Responder`] as UDP.
//!
//! At most `--tcp-connections` are open: a new connection closes the least recently active one,
//! so a flood of idle connections cannot lock clients out, and neither can it take every
//! descriptor. When descriptors run out all the same, the accept loop backs off
//! ([`crate::server::accept`]) and frees one by closing the least recently active connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::server::accept::AcceptBackoff;
use crate::server::metrics::OpenConnections;
use crate::server::responder::{Responder, contained};

/// Connections waiting to be accepted: bursts of TC retries arrive together (the kernel caps
/// this at `net.core.somaxconn`).
pub(crate) const LISTEN_BACKLOG: i32 = 1024;

/// A TCP listener on `addr`, with [`LISTEN_BACKLOG`].
pub(crate) fn bind_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

pub(crate) struct TcpServer {
    connections: Arc<Connections>,
    accept: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

impl TcpServer {
    /// Accepts on `listener` until [`TcpServer::shutdown`].
    pub(crate) fn spawn<R: Responder>(
        listener: std::net::TcpListener,
        responder: R,
        connections: usize,
        idle: Duration,
    ) -> io::Result<Self> {
        let listener = TcpListener::from_std(listener)?;
        let connections = Arc::new(Connections::new(connections.max(1)));
        let (shutdown, stopping) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(
            listener,
            responder,
            connections.clone(),
            idle,
            stopping,
        ));
        Ok(Self {
            connections,
            accept,
            shutdown,
        })
    }

    /// A reader of [`TcpServer::open_connections`] that outlives a borrow of the server.
    pub(crate) fn open_connections_reader(&self) -> OpenConnections {
        let connections = self.connections.clone();
        OpenConnections(Arc::new(move || connections.len()))
    }

    /// Stops accepting and closes every connection.
    pub(crate) async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
    }
}

async fn accept_loop<R: Responder>(
    listener: TcpListener,
    responder: R,
    connections: Arc<Connections>,
    idle: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut backoff = AcceptBackoff::new("DNS over TCP");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.accepted();
                let connection = connections.admit();
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    responder.clone(),
                    connections.clone(),
                    connection,
                    idle,
                    stopping.clone(),
                ));
            }
            Err(error) => {
                let (wait, exhausted) = backoff.failed(&error);
                if exhausted {
                    connections.close_least_recently_active();
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopping.changed() => return,
                }
            }
        }
    }
}

/// Reads messages from one connection and writes their responses, until the client closes it,
/// it idles for `idle`, a message is cut short, or the connection is closed to make room.
async fn serve_connection<R: Responder>(
    stream: TcpStream,
    peer: SocketAddr,
    responder: R,
    connections: Arc<Connections>,
    connection: Arc<Connection>,
    idle: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut message = Vec::new();
    let mut response = Vec::new();
    let mut frame = Vec::new();
    'connection: loop {
        let length = tokio::select! {
            length = tokio::time::timeout(idle, reader.read_u16()) => match length {
                Ok(Ok(length)) => usize::from(length),
                _ => break,
            },
            _ = connection.close.notified() => break,
            _ = stopping.changed() => break,
        };
        message.resize(length, 0);
        match tokio::time::timeout(idle, reader.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        connections.touch(&connection);
        if let Some(mut transfer) = responder.transfer(&message, peer) {
            // Message after message from the transfer's snapshot; nothing is held between them.
            while contained(|| transfer.next_message(&mut response)) {
                if !send(&mut writer, &mut frame, &response, peer, idle).await {
                    break 'connection;
                }
                connections.touch(&connection);
            }
            continue;
        }
        response.clear();
        if !contained(|| responder.answer(&message, peer, Protocol::Tcp, &mut response)) {
            continue;
        }
        if !send(&mut writer, &mut frame, &response, peer, idle).await {
            break;
        }
    }
    connections.remove(&connection);
}

/// Writes `response` with its length; `false` when the connection is to be closed (the write
/// failed or stalled for `idle`). A response too large for TCP is skipped.
async fn send(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    frame: &mut Vec<u8>,
    response: &[u8],
    peer: SocketAddr,
    idle: Duration,
) -> bool {
    let Ok(length) = u16::try_from(response.len()) else {
        debug!(%peer, bytes = response.len(), "response too large for TCP");
        return true;
    };
    frame.clear();
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(response);
    matches!(
        tokio::time::timeout(idle, writer.write_all(frame)).await,
        Ok(Ok(()))
    )
}

/// The open connections, and when each was last active.
struct Connections {
    limit: usize,
    epoch: Instant,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

struct Connection {
    id: u64,
    /// Milliseconds since [`Connections::epoch`] at its last message.
    last_active: AtomicU64,
    /// Notified to close it.
    close: Notify,
}

impl Connections {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            epoch: Instant::now(),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Registers a new connection, closing the least recently active one if it would be one
    /// too many.
    fn admit(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            last_active: AtomicU64::new(self.now()),
            close: Notify::new(),
        });
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.limit {
            close_least_recently_active(&mut open);
        }
        open.insert(connection.id, connection.clone());
        connection
    }

    fn touch(&self, connection: &Connection) {
        connection.last_active.store(self.now(), Ordering::Relaxed);
    }

    fn remove(&self, connection: &Connection) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&connection.id);
    }

    fn close_least_recently_active(&self) {
        close_least_recently_active(&mut self.open.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Tells the connection active longest ago to close, and forgets it.
fn close_least_recently_active(open: &mut HashMap<u64, Arc<Connection>>) {
    let idlest = open
        .values()
        .min_by_key(|c| (c.last_active.load(Ordering::Relaxed), c.id))
        .map(|c| c.id);
    if let Some(connection) = idlest.and_then(|id| open.remove(&id)) {
        connection.close.notify_one();
    }
}
