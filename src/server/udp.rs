//! DNS over UDP. The fast path: one thread per core, each on its own `SO_REUSEPORT` socket,
//! taking datagrams in batches (`recvmmsg`/`sendmmsg` on Linux: one system call per batch each
//! way, not per datagram) and answering each in place through the handler (queries by the wire
//! writer, [`crate::server::wire`]). With `--udp-threads 0`, one task on the async runtime
//! answers instead: no threads of its own, for sidecars.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use socket2::{Domain, Socket, Type};
use tracing::debug;

use crate::server::responder::{Responder, contained};

/// Large enough for any query; what does not fit is cut and answered FORMERR, as hickory does.
const RECEIVE_BUFFER: usize = 4096;

/// Kernel buffer per socket: bursts of queries (dnsperf keeps hundreds in flight; so do busy
/// clients behind a NAT) overflow the 208 KiB default and are dropped before we see them. The
/// kernel caps this at `net.core.rmem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// How often an idle worker looks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(200);

pub(crate) struct UdpWorkers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// `count` sockets sharing `listen` (its port resolved from the first if 0).
pub(crate) fn bind_sockets(listen: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = listen;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
        socket.set_reuse_port(true)?;
        // Best effort: a smaller buffer than asked for still works.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&addr.into())?;
        let socket: UdpSocket = socket.into();
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

impl UdpWorkers {
    pub(crate) fn spawn<R: Responder>(sockets: Vec<UdpSocket>, responder: R) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(sockets.len());
        for (i, socket) in sockets.into_iter().enumerate() {
            socket.set_read_timeout(Some(STOP_CHECK))?;
            let (responder, stop) = (responder.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{i}"))
                    .spawn(move || serve(&socket, &responder, &stop))?,
            );
        }
        Ok(Self { stop, threads })
    }

    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Whether a receive error only means "nothing arrived before the stop check".
fn is_idle(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(not(target_os = "linux"))]
fn serve<R: Responder>(socket: &UdpSocket, responder: &R, stop: &AtomicBool) {
    let mut datagram = vec![0u8; RECEIVE_BUFFER];
    let mut response = Vec::with_capacity(RECEIVE_BUFFER);
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match socket.recv_from(&mut datagram) {
            Ok(received) => received,
            Err(error) => {
                if !is_idle(&error) {
                    debug!(%error, "UDP receive failed");
                }
                continue;
            }
        };
        // A reply to port 0 cannot be delivered.
        if src.port() == 0 {
            continue;
        }
        response.clear();
        let datagram = &datagram[..len];
        if contained(|| responder.answer(datagram, src, Protocol::Udp, &mut response))
            && let Err(error) = socket.send_to(&response, src)
        {
            debug!(%error, %src, "UDP send failed");
        }
    }
}

#[cfg(target_os = "linux")]
fn serve<R: Responder>(socket: &UdpSocket, responder: &R, stop: &AtomicBool) {
    let mut batch = batch::Batch::new();
    while !stop.load(Ordering::Relaxed) {
        match batch.receive(socket) {
            Ok(()) => {}
            Err(error) => {
                if !is_idle(&error) {
                    debug!(%error, "UDP receive failed");
                }
                continue;
            }
        }
        batch.answer_all(|datagram, src, response| {
            contained(|| responder.answer(datagram, src, Protocol::Udp, response))
        });
        batch.send(socket);
    }
}

/// `recvmmsg`/`sendmmsg` over fixed buffers, reused for every batch.
#[cfg(target_os = "linux")]
mod batch {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use socket2::{SockAddr, SockAddrStorage};
    use tracing::debug;

    use super::RECEIVE_BUFFER;

    /// Datagrams taken per system call: enough to amortise it under load, while a lone query
    /// is answered as soon as it arrives (`MSG_WAITFORONE`).
    const SIZE: usize = 32;

    pub(super) struct Batch {
        datagrams: Vec<Vec<u8>>,
        lengths: [usize; SIZE],
        /// Source addresses as the kernel wrote them; replies go back to the same bytes.
        sources: [libc::sockaddr_storage; SIZE],
        source_lengths: [libc::socklen_t; SIZE],
        received: usize,
        responses: Vec<Vec<u8>>,
        /// Which received datagrams have a response to send, in order.
        replies: Vec<usize>,
    }

    impl Batch {
        pub(super) fn new() -> Self {
            Self {
                datagrams: vec![vec![0u8; RECEIVE_BUFFER]; SIZE],
                lengths: [0; SIZE],
                // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
                sources: unsafe { zeroed() },
                source_lengths: [0; SIZE],
                received: 0,
                responses: (0..SIZE)
                    .map(|_| Vec::with_capacity(RECEIVE_BUFFER))
                    .collect(),
                replies: Vec::with_capacity(SIZE),
            }
        }

        /// Waits for at least one datagram (up to the socket's read timeout), then takes
        /// whatever else is already queued, up to the batch size.
        pub(super) fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
            // SAFETY: iovec and mmsghdr are plain old data; all zeroes is a valid value.
            let mut iovecs: [libc::iovec; SIZE] = unsafe { zeroed() };
            let mut headers: [libc::mmsghdr; SIZE] = unsafe { zeroed() };
            for (i, (iovec, header)) in iovecs.iter_mut().zip(headers.iter_mut()).enumerate() {
                iovec.iov_base = self.datagrams[i].as_mut_ptr().cast();
                iovec.iov_len = self.datagrams[i].len();
                header.msg_hdr.msg_name = (&raw mut self.sources[i]).cast();
                header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every header points at a live buffer and address slot of `self` of the
            // stated size, and at its own iovec; all outlive the call.
            let count = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    SIZE as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if count < 0 {
                self.received = 0;
                return Err(io::Error::last_os_error());
            }
            self.received = count as usize;
            for (i, header) in headers[..self.received].iter().enumerate() {
                self.lengths[i] = header.msg_len as usize;
                self.source_lengths[i] = header.msg_hdr.msg_namelen;
            }
            Ok(())
        }

        /// The sender of datagram `i`, read by socket2 from the address the kernel wrote.
        fn source(&self, i: usize) -> Option<SocketAddr> {
            let mut storage = SockAddrStorage::zeroed();
            // SAFETY: sockaddr_storage is this platform's type for any socket address, and the
            // kernel wrote `source_lengths[i]` valid bytes of one into `sources[i]`.
            let address = unsafe {
                *storage.view_as::<libc::sockaddr_storage>() = self.sources[i];
                SockAddr::new(storage, self.source_lengths[i])
            };
            address.as_socket()
        }

        /// Fills in the response to each received datagram; `respond` returns whether there is one.
        pub(super) fn answer_all(
            &mut self,
            mut respond: impl FnMut(&[u8], SocketAddr, &mut Vec<u8>) -> bool,
        ) {
            self.replies.clear();
            for i in 0..self.received {
                // A reply to port 0 (or to an address we cannot read) cannot be delivered.
                let Some(src) = self.source(i).filter(|src| src.port() != 0) else {
                    continue;
                };
                let response = &mut self.responses[i];
                response.clear();
                if respond(&self.datagrams[i][..self.lengths[i]], src, response) {
                    self.replies.push(i);
                }
            }
        }

        /// Sends every response; one that cannot be sent is logged and skipped.
        pub(super) fn send(&mut self, socket: &UdpSocket) {
            // SAFETY: as in `receive`.
            let mut iovecs: [libc::iovec; SIZE] = unsafe { zeroed() };
            let mut headers: [libc::mmsghdr; SIZE] = unsafe { zeroed() };
            let count = self.replies.len();
            for (slot, &i) in self.replies.iter().enumerate() {
                iovecs[slot].iov_base = self.responses[i].as_mut_ptr().cast();
                iovecs[slot].iov_len = self.responses[i].len();
                let header = &mut headers[slot].msg_hdr;
                header.msg_name = (&raw mut self.sources[i]).cast();
                header.msg_namelen = self.source_lengths[i];
                header.msg_iov = &mut iovecs[slot];
                header.msg_iovlen = 1;
            }
            let mut sent = 0;
            while sent < count {
                // SAFETY: headers[sent..count] point at live responses and addresses of `self`
                // and at their iovecs, none of which change during the call.
                let result = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        headers[sent..].as_mut_ptr(),
                        (count - sent) as libc::c_uint,
                        0,
                    )
                };
                if result < 0 {
                    let error = io::Error::last_os_error();
                    if error.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    debug!(%error, dst = ?self.source(self.replies[sent]), "UDP send failed");
                    sent += 1;
                } else {
                    sent += result as usize;
                }
            }
        }
    }
}

/// `--udp-threads 0`: one task on the async runtime, every datagram answered the general way.
pub(crate) struct UdpAsync {
    task: tokio::task::JoinHandle<()>,
}

impl UdpAsync {
    pub(crate) fn spawn<R: Responder>(socket: tokio::net::UdpSocket, responder: R) -> Self {
        Self {
            task: tokio::spawn(serve_async(socket, responder)),
        }
    }

    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

async fn serve_async<R: Responder>(socket: tokio::net::UdpSocket, responder: R) {
    let mut datagram = vec![0u8; RECEIVE_BUFFER];
    let mut response = Vec::with_capacity(RECEIVE_BUFFER);
    loop {
        let (len, src) = match socket.recv_from(&mut datagram).await {
            Ok(received) => received,
            Err(error) => {
                debug!(%error, "UDP receive failed");
                // Receive errors are per datagram; the pause keeps a persistent one from spinning.
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        if src.port() == 0 {
            continue;
        }
        response.clear();
        let message = &datagram[..len];
        if contained(|| responder.answer(message, src, Protocol::Udp, &mut response))
            && let Err(error) = socket.send_to(&response, src).await
        {
            debug!(%error, %src, "UDP send failed");
        }
    }
}
