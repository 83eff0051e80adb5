//! What answers DNS messages on every transport ([`Responder`], implemented by the handler and,
//! in the transports' own tests, by stand-ins), and the containment that makes a panic while
//! answering cost one message rather than a thread or a connection.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_server::net::xfer::Protocol;

use crate::transfer::Transfer;

/// What answers DNS messages on every transport: the [`Handler`](crate::server::handler::Handler)
/// (in the transports' own tests, a stand-in).
pub(crate) trait Responder: Clone + Send + Sync + 'static {
    /// Writes the response to one message, received over `protocol`, into `out`: a query
    /// by the wire writer, anything else by hickory (see `Handler::answer`). `false`: nothing
    /// to send.
    fn answer(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool;

    /// A zone transfer a client asked for over TCP and may have: its messages, made one at a
    /// time. `None`: the message is answered by [`Responder::answer`] like any other.
    fn transfer(&self, _message: &[u8], _src: SocketAddr) -> Option<Transfer> {
        None
    }
}

/// Runs `answer`; a panic in it costs that one message (no response), not the thread that runs
/// it. (The binary's panic hook logs panics, at most once a minute.)
pub(crate) fn contained(answer: impl FnOnce() -> bool) -> bool {
    // What a panic can leave behind is per message: the response buffer (cleared before every
    // use) and thread-local scratch buffers behind RefCells, whose guards unwind.
    catch_unwind(AssertUnwindSafe(answer)).unwrap_or_else(|_| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        false
    })
}

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Panics contained so far while answering (see [`contained`]).
pub(crate) fn contained_panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}
