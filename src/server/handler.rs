//! The request handler, the one place every transport answers from: a query goes to the wire
//! writer ([`crate::server::wire`]); the rest — other opcodes, signed messages (TSIG), malformed
//! ones, EDNS versions above 0 — is parsed by hickory, checked here (opcode, question count,
//! EDNS, UDP size, TSIG), answered by the same rules and encoded by hickory-server's
//! `MessageResponse`. That path, kept for those rare messages, is also the reference the
//! writer's bytes are tested against (unit tables, the property test, the fuzz targets).

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseInfo};
use tracing::debug;

use crate::dns::answer::{self, Reply};
use crate::dns::explain::{self, EDE_OPTION};
use crate::dns::view::SharedView;
use crate::dns::zone::Zone;
use crate::message::{MAX_UDP_PAYLOAD, udp_limit};
use crate::server::responder::Responder;
use crate::server::truncation::Prepared;
use crate::server::wire::{self, Transport, WireZone};
use crate::transfer::tsig::{self, ResponseSigner, Signature, TsigKey};
use crate::transfer::{self, Transfer, TransferPolicy};

#[derive(Clone)]
pub struct Handler {
    view: SharedView,
    zone: Arc<Zone>,
    wire: Arc<WireZone>,
    transfers: Arc<TransferPolicy>,
}

impl Handler {
    pub fn new(view: SharedView, zone: Arc<Zone>) -> Self {
        let wire = Arc::new(WireZone::new(&zone));
        Self {
            view,
            zone,
            wire,
            transfers: Arc::default(),
        }
    }

    /// Allows zone transfers to the clients `policy` names (by default nobody).
    pub fn with_transfers(mut self, policy: TransferPolicy) -> Self {
        self.transfers = Arc::new(policy);
        self
    }

    /// The zone transfer `message` asks for, if it is one the client may have; from the
    /// current snapshot of the view, which the transfer keeps until it ends.
    pub fn transfer(&self, message: &[u8], src: SocketAddr) -> Option<Transfer> {
        let request = transfer::request(message, src, &self.transfers, &self.zone)?;
        Transfer::new(self.view.load_full(), self.zone.clone(), request)
    }

    /// Writes the answer to a query received over `protocol` straight into `out` (the wire
    /// writer, [`wire`]); `false` when the message is one it leaves to [`Handler::respond`].
    pub fn answer_directly(&self, message: &[u8], protocol: Protocol, out: &mut Vec<u8>) -> bool {
        let transport = match protocol {
            Protocol::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        wire::answer(
            &self.view.load(),
            &self.zone,
            &self.wire,
            message,
            transport,
            out,
        )
    }

    /// Writes the response to any message: a query by the wire writer, what it leaves (other
    /// opcodes, signed messages, malformed ones) by hickory ([`Handler::respond`]).
    pub fn answer(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.answer_directly(message, protocol, out) {
            return true;
        }
        out.clear();
        self.respond(message, src, protocol, out)
    }

    /// Encodes the response to one message into `out`: hickory parses, [`Handler::prepare`]
    /// decides, hickory encodes; a UDP answer over the client's limit is cut to fit
    /// ([`truncation`]). `false` when nothing is to be sent: a message shorter than a header,
    /// or a response (QR=1), parseable or not — a server that answers responses reflects
    /// traffic at whoever the source address names (RFC 8906 §3.1).
    pub fn respond(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(header) = Header::read(&mut BinDecoder::new(message)) else {
            return false;
        };
        if header.metadata.message_type == MessageType::Response {
            return false;
        }
        let form_error = |out: &mut Vec<u8>| {
            let mut metadata = Metadata::response_from_request(&header.metadata);
            metadata.response_code = ResponseCode::FormErr;
            let reply = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            reply.emit(&mut BinEncoder::new(out)).is_ok()
        };
        let request = match Request::from_bytes(message.to_vec(), src, protocol) {
            Ok(request) => request,
            Err(_) => return form_error(out),
        };
        // The response repeats the question's bytes as received, at the same offset: a
        // compression pointer into the header would point into the response's header, which
        // differs, and the response would not parse. No real question does that.
        if question_points_into_header(message, request.queries.queries().len()) {
            return form_error(out);
        }
        // A signed message is answered signed, or with NOTAUTH when its signature is not good.
        let now = if request.signature.is_some() {
            tsig::now()
        } else {
            0
        };
        let key = self.transfers.key.as_ref();
        let limit = match protocol {
            Protocol::Udp => udp_limit(request.edns.as_ref()),
            _ => u16::MAX,
        };
        let mut signer = match TsigKey::check(key, message, request.signature.as_deref(), now) {
            Signature::Unsigned => None,
            Signature::Valid(signer) => Some(signer),
            Signature::Rejected(mut signer) => {
                debug!(%src, error = ?signer.error(), "TSIG signature rejected");
                let query = request.queries.queries().first().map(|q| q.original());
                return signer.reject(&request.metadata, query, limit, out, now);
            }
        };
        let reserved = signer.as_ref().map_or(0, ResponseSigner::record_len);
        let limit = limit.saturating_sub(u16::try_from(reserved).unwrap_or(u16::MAX));
        if !self.encode_within(&request, limit, out) {
            return false;
        }
        if let Some(signer) = &mut signer {
            signer.sign(out, now);
        }
        true
    }

    /// Encodes the response to `request` within `limit` bytes into `out`.
    fn encode_within(&self, request: &Request, limit: u16, out: &mut Vec<u8>) -> bool {
        // Encode once against the limit; only an answer that does not fit is redone, without
        // its explanation, then cut.
        let mut prepared = self.prepare(request);
        if encode(&prepared, request, limit, out).is_some_and(|info| !info.truncation) {
            return true;
        }
        if prepared.drop_explanation() {
            out.clear();
            if encode(&prepared, request, limit, out).is_some_and(|info| !info.truncation) {
                return true;
            }
        }
        prepared.fit(request, limit);
        out.clear();
        encode(&prepared, request, limit, out).is_some()
    }

    /// Decides the response to `request`.
    pub fn prepare(&self, request: &Request) -> Prepared {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        // The DO bit is copied (RFC 3225 §3): a validating resolver reads DO=0 as a server that
        // does not understand DNSSEC.
        let mut edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(MAX_UDP_PAYLOAD)
                .set_version(0)
                .set_dnssec_ok(asked.flags().dnssec_ok);
            edns
        });
        let mut prepared = |rcode: ResponseCode, reply: Reply, edns: Option<Edns>| {
            metadata.response_code = rcode;
            metadata.authoritative = reply.authoritative;
            Prepared {
                metadata,
                reply,
                edns,
            }
        };
        if request.metadata.op_code != OpCode::Query {
            return prepared(ResponseCode::NotImp, Reply::default(), edns);
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return prepared(ResponseCode::BADVERS, Reply::default(), edns);
        }
        let [query] = request.queries.queries() else {
            return prepared(ResponseCode::FormErr, Reply::default(), edns);
        };
        let reply = {
            let view = self.view.load();
            let reply = answer::answer(
                &view,
                &self.zone,
                query.name(),
                query.original().name(),
                query.query_type(),
                query.query_class(),
            );
            // Only for clients that speak EDNS, which is where the option goes.
            if let Some(edns) = edns.as_mut()
                && self.zone.explain
                && let Some(why) =
                    explain::for_reply(&view, &self.zone, query.name(), query.query_type(), &reply)
            {
                edns.options_mut()
                    .insert(EdnsOption::Unknown(EDE_OPTION, why.option_data()));
            }
            reply
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
        prepared(reply.rcode, reply, edns)
    }
}

/// Whether a name in the question section of `message` (`count` questions, well formed) has a
/// compression pointer to the header.
fn question_points_into_header(message: &[u8], count: usize) -> bool {
    let mut at = 12;
    for _ in 0..count {
        loop {
            let Some(&length) = message.get(at) else {
                return false;
            };
            if length & 0xC0 == 0xC0 {
                let target = usize::from(length & 0x3F) << 8
                    | usize::from(message.get(at + 1).copied().unwrap_or(0));
                if target < 12 {
                    return true;
                }
                at += 2;
                break;
            }
            at += 1 + usize::from(length);
            if length == 0 {
                break;
            }
        }
        // Type and class.
        at += 4;
    }
    false
}

/// Encodes the response within `limit` bytes; the encoder sets TC when it had to leave records
/// out. `None` if it could not encode at all.
fn encode(
    prepared: &Prepared,
    request: &Request,
    limit: u16,
    out: &mut Vec<u8>,
) -> Option<ResponseInfo> {
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(limit);
    prepared
        .message(request)
        .destructive_emit(&mut encoder)
        .ok()
}

impl Responder for Handler {
    fn answer(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        Handler::answer(self, message, src, protocol, out)
    }

    fn transfer(&self, message: &[u8], src: SocketAddr) -> Option<Transfer> {
        Handler::transfer(self, message, src)
    }
}
