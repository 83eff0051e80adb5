//! The request handler: message-level checks (opcode, question count, EDNS, UDP size) around the
//! DNS rules, which answer from the current view.

use std::cell::RefCell;
use std::iter;
use std::sync::Arc;

use hickory_proto::op::{
    Edns, Header, HeaderCounts, Metadata, OpCode, Query, ResponseCode, emit_message_parts,
};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use tracing::debug;

use crate::dns::rules::{self, Reply, Zone};
use crate::dns::view::SharedView;
use crate::server::wire::{self, WireZone};

/// The largest UDP answer we send, whatever the client offers (the DNS flag day 2020 value,
/// which avoids IP fragmentation).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Without EDNS a UDP message may not exceed this (RFC 1035 §4.2.1).
pub const CLASSIC_UDP_PAYLOAD: u16 = 512;

#[derive(Clone)]
pub struct Handler {
    view: SharedView,
    zone: Arc<Zone>,
    wire: Arc<WireZone>,
}

/// A response decided but not yet sent: everything the wire message needs.
pub struct Prepared {
    metadata: Metadata,
    reply: Reply,
    edns: Option<Edns>,
}

impl Prepared {
    /// The wire message, as both UDP paths and TCP encode it.
    pub fn message<'q>(
        &'q self,
        request: &'q Request,
    ) -> MessageResponse<
        'q,
        'q,
        impl Iterator<Item = &'q Record> + Send + 'q,
        impl Iterator<Item = &'q Record> + Send + 'q,
        impl Iterator<Item = &'q Record> + Send + 'q,
        impl Iterator<Item = &'q Record> + Send + 'q,
    > {
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = &self.edns {
            builder.edns(edns);
        }
        builder.build(
            self.metadata,
            self.reply.answers.iter(),
            self.reply.authority.iter(),
            iter::empty(),
            self.reply.additionals.iter(),
        )
    }

    pub fn is_truncated(&self) -> bool {
        self.metadata.truncation
    }

    /// An answer is all or nothing: a cut one tells the client to ask again over TCP.
    pub fn truncate(&mut self) {
        self.metadata.truncation = true;
        self.reply.answers.clear();
        self.reply.authority.clear();
        self.reply.additionals.clear();
    }
}

impl Handler {
    pub fn new(view: SharedView, zone: Arc<Zone>) -> Self {
        let wire = Arc::new(WireZone::new(&zone));
        Self { view, zone, wire }
    }

    /// Answers a plain UDP query straight into `out`; `false` when it needs [`Handler::prepare`].
    pub fn answer_directly(&self, datagram: &[u8], out: &mut Vec<u8>) -> bool {
        wire::answer(&self.view.load(), &self.zone, &self.wire, datagram, out)
    }

    /// Decides the response to `request`: the one place both UDP paths and TCP answer from.
    pub fn prepare(&self, request: &Request, fit: Fit) -> Prepared {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let edns = request.edns.as_ref().map(|_| {
            let mut edns = Edns::new();
            edns.set_max_payload(MAX_UDP_PAYLOAD).set_version(0);
            edns
        });
        let mut prepared = |rcode: ResponseCode, reply: Reply| {
            metadata.response_code = rcode;
            metadata.authoritative = reply.authoritative;
            Prepared {
                metadata,
                reply,
                edns: edns.clone(),
            }
        };
        if request.metadata.op_code != OpCode::Query {
            return prepared(ResponseCode::NotImp, Reply::default());
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return prepared(ResponseCode::BADVERS, Reply::default());
        }
        let [query] = request.queries.queries() else {
            return prepared(ResponseCode::FormErr, Reply::default());
        };
        let reply = {
            let view = self.view.load();
            rules::answer(
                &view,
                &self.zone,
                query.name(),
                query.original().name(),
                query.query_type(),
                query.query_class(),
            )
        };
        debug!(
            name = %query.original().name(),
            qtype = %query.query_type(),
            src = %request.src(),
            protocol = %request.protocol(),
            rcode = %reply.rcode,
            answers = reply.answers.len(),
            "query"
        );
        let mut prepared = prepared(reply.rcode, reply);
        if fit == Fit::Check
            && request.protocol() == Protocol::Udp
            && !fits(
                &prepared,
                query.original(),
                udp_limit(request.edns.as_ref()),
            )
        {
            prepared.truncate();
        }
        prepared
    }
}

/// Whether [`Handler::prepare`] makes a UDP response fit the client's limit itself, or leaves
/// that to a caller that finds out while encoding (the fast path, which saves an encoding).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Check,
    Unchecked,
}

/// The client's EDNS payload size, at least 512 and at most [`MAX_UDP_PAYLOAD`].
pub fn udp_limit(edns: Option<&Edns>) -> u16 {
    edns.map_or(CLASSIC_UDP_PAYLOAD, |e| {
        e.max_payload().clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
    })
}

thread_local! {
    static TRIAL: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(MAX_UDP_PAYLOAD as usize));
}

/// Whether the whole response encodes within `limit` bytes.
fn fits(prepared: &Prepared, query: &Query, limit: u16) -> bool {
    let reply = &prepared.reply;
    if reply.answers.is_empty() && reply.authority.is_empty() && reply.additionals.is_empty() {
        // Header, one question (at most 259 bytes) and OPT always fit in 512.
        return true;
    }
    TRIAL.with_borrow_mut(|buffer| {
        buffer.clear();
        let mut encoder = BinEncoder::new(buffer);
        encoder.set_max_size(limit);
        let header = emit_message_parts(
            &prepared.metadata,
            &mut iter::once(query),
            &mut reply.answers.iter(),
            &mut reply.authority.iter(),
            &mut reply.additionals.iter(),
            prepared.edns.as_ref(),
            None,
            &mut encoder,
        );
        header.is_ok_and(|h| !h.metadata.truncation)
    })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let prepared = self.prepare(request, Fit::Check);
        match response_handle
            .send_response(prepared.message(request))
            .await
        {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, src = %request.src(), "could not send the response");
                let mut failed = prepared.metadata;
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
