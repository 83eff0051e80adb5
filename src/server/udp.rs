//! The UDP fast path: one thread per core, each on its own `SO_REUSEPORT` socket, answering each
//! datagram in place. It parses, decides and encodes exactly as the hickory path does (hickory's
//! `Request` parsing, [`Handler::prepare`], hickory's message encoder) — only hickory-server's
//! task per datagram and its channels are gone. TCP stays on hickory-server.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use socket2::{Domain, Socket, Type};
use tracing::debug;

use crate::server::handler::{Fit, Handler, Prepared, udp_limit};

/// Large enough for any query; what does not fit is cut and answered FORMERR, as hickory does.
const RECEIVE_BUFFER: usize = 4096;

/// Kernel buffer per socket: bursts of queries (dnsperf keeps hundreds in flight; so do busy
/// clients behind a NAT) overflow the 208 KiB default and are dropped before we see them. The
/// kernel caps this at `net.core.rmem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// How often an idle worker looks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(200);

pub struct UdpWorkers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// `count` sockets sharing `listen` (its port resolved from the first if 0).
pub fn bind_sockets(listen: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
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
    pub fn spawn(sockets: Vec<UdpSocket>, handler: Handler) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(sockets.len());
        for (i, socket) in sockets.into_iter().enumerate() {
            socket.set_read_timeout(Some(STOP_CHECK))?;
            let (handler, stop) = (handler.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{i}"))
                    .spawn(move || serve(&socket, &handler, &stop))?,
            );
        }
        Ok(Self { stop, threads })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn serve(socket: &UdpSocket, handler: &Handler, stop: &AtomicBool) {
    let mut datagram = vec![0u8; RECEIVE_BUFFER];
    let mut response = Vec::with_capacity(RECEIVE_BUFFER);
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match socket.recv_from(&mut datagram) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(error) => {
                debug!(%error, "UDP receive failed");
                continue;
            }
        };
        // A reply to port 0 cannot be delivered.
        if src.port() == 0 {
            continue;
        }
        response.clear();
        if answer(handler, &datagram[..len], src, &mut response)
            && let Err(error) = socket.send_to(&response, src)
        {
            debug!(%error, %src, "UDP send failed");
        }
    }
}

/// Encodes the response to one datagram into `out`; `false` when nothing is to be sent (no
/// header, or a response rather than a query).
pub fn answer(handler: &Handler, datagram: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
    if handler.answer_directly(datagram, out) {
        return true;
    }
    out.clear();
    answer_with_hickory(handler, datagram, src, out)
}

/// [`answer`] for the datagrams the direct writer declines, following hickory-server's UDP
/// handling step by step: hickory parses, [`Handler::prepare`] decides, hickory encodes.
pub fn answer_with_hickory(
    handler: &Handler,
    datagram: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
) -> bool {
    let Ok(header) = Header::read(&mut BinDecoder::new(datagram)) else {
        return false;
    };
    let request = match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
        Ok(request) => request,
        Err(_) => {
            let mut metadata = Metadata::response_from_request(&header.metadata);
            metadata.response_code = ResponseCode::FormErr;
            let reply = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            return reply.emit(&mut BinEncoder::new(out)).is_ok();
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return false;
    }
    // Encode once against the client's limit; only an answer that does not fit is redone, cut,
    // exactly as `Fit::Check` would have cut it before encoding.
    let mut prepared = handler.prepare(&request, Fit::Unchecked);
    let limit = udp_limit(request.edns.as_ref());
    if encode(&prepared, &request, limit, out) {
        return true;
    }
    prepared.truncate();
    out.clear();
    encode(&prepared, &request, limit, out)
}

/// Whether the whole response encoded within `limit` bytes (the encoder sets TC when it had to
/// leave records out; an already cut response carries TC by design).
fn encode(prepared: &Prepared, request: &Request, limit: u16, out: &mut Vec<u8>) -> bool {
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(limit);
    prepared
        .message(request)
        .destructive_emit(&mut encoder)
        .is_ok_and(|info| info.truncation == prepared.is_truncated())
}
