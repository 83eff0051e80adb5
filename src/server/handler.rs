//! The request handler: message-level checks (opcode, question count, EDNS, UDP size) around the
//! DNS rules, which answer from the current view.

use std::iter;
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use tracing::debug;

use crate::dns::rules::{self, Reply, Zone};
use crate::dns::view::SharedView;
use crate::server::truncation;
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
    pub(super) metadata: Metadata,
    pub(super) reply: Reply,
    pub(super) edns: Option<Edns>,
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

    /// Cuts the response to encode within `limit` bytes (see [`truncation`]).
    pub fn fit(&mut self, request: &Request, limit: u16) {
        truncation::fit(self, request, limit);
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
        if fit == Fit::Check && request.protocol() == Protocol::Udp {
            prepared.fit(request, udp_limit(request.edns.as_ref()));
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
