//! Fitting a UDP answer into the client's limit (512 bytes without EDNS, else its EDNS size, at
//! most 1232): whole records only; the additional section goes first, then the authority
//! section, then answer records from the end, and TC is set whenever anything was left out.
//!
//! A cut answer keeps what fits rather than nothing because musl's resolver up to 1.2.3 (Alpine
//! ≤ 3.17, busybox images) sends no EDNS, reads 512 bytes and never retries over TCP: it uses
//! whatever records arrived, so an answer cut to nothing left a headless Service of more than
//! ~28 pods unresolvable. Which records a cut answer keeps rotates with the query ID, so a fleet
//! of such clients spreads over every endpoint, not the first few dozen. Clients that retry over
//! TCP on TC (glibc, musl ≥ 1.2.4) get the whole answer there. CoreDNS and BIND cut alike.
//!
//! The wire writer ([`crate::server::wire`]) cuts answers by the same rules and must produce the
//! same bytes; [`rotation`] is the one both use. hickory's path cuts a [`Prepared`] response: one
//! decided by the handler and not yet encoded.

use std::cell::RefCell;
use std::iter;

use hickory_proto::op::{Edns, Metadata};
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::{Request, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};

use crate::dns::answer::Reply;
use crate::dns::explain::EDE_OPTION;
use crate::message::MAX_UDP_PAYLOAD;

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
        fit(self, request, limit);
    }

    /// Takes the Extended DNS Error out; `false` if there was none. A reason is sent only with
    /// an answer it fits beside whole: it is worth less than any record.
    pub fn drop_explanation(&mut self) -> bool {
        let code = EdnsCode::from(EDE_OPTION);
        match &mut self.edns {
            Some(edns) if edns.options().get(code).is_some() => {
                edns.options_mut().remove(code);
                true
            }
            _ => false,
        }
    }
}

/// The first of `records` answer records a cut answer keeps, for the query with ID `id`.
pub(crate) fn rotation(id: u16, records: usize) -> usize {
    usize::from(id) % records.max(1)
}

thread_local! {
    static TRIAL: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(MAX_UDP_PAYLOAD as usize));
}

/// Cuts `prepared` until its message encodes within `limit` bytes; leaves it alone if it does.
fn fit(prepared: &mut Prepared, request: &Request, limit: u16) {
    if encodes_whole(prepared, request, limit) {
        return;
    }
    prepared.metadata.truncation = true;
    prepared.reply.additionals.clear();
    if encodes_whole(prepared, request, limit) {
        return;
    }
    prepared.reply.authority.clear();
    if encodes_whole(prepared, request, limit) {
        return;
    }
    // A CNAME chain stays in front: the records after it are the ones that rotate.
    let answers = &mut prepared.reply.answers;
    let chain = answers
        .iter()
        .take_while(|r| r.record_type() == RecordType::CNAME)
        .count();
    let rotating = &mut answers[chain..];
    let start = rotation(request.metadata.id, rotating.len());
    rotating.rotate_left(start);
    let kept = answers_that_fit(prepared, request, limit);
    prepared.reply.answers.truncate(kept);
}

/// The message of `prepared` encoded within `limit` bytes into a scratch buffer; `None` if even
/// its header and question do not fit.
fn trial(prepared: &Prepared, request: &Request, limit: u16) -> Option<ResponseInfo> {
    TRIAL.with_borrow_mut(|buffer| {
        buffer.clear();
        let mut encoder = BinEncoder::new(buffer);
        encoder.set_max_size(limit);
        prepared
            .message(request)
            .destructive_emit(&mut encoder)
            .ok()
    })
}

/// Whether every record of `prepared` (and its OPT) encodes within `limit`.
fn encodes_whole(prepared: &Prepared, request: &Request, limit: u16) -> bool {
    let reply = &prepared.reply;
    trial(prepared, request, limit).is_some_and(|info| {
        let counts = info.counts();
        usize::from(counts.answers) == reply.answers.len()
            && usize::from(counts.authorities) == reply.authority.len()
            && usize::from(counts.additionals)
                == reply.additionals.len() + usize::from(prepared.edns.is_some())
    })
}

/// How many of the answer records, in order, hickory's encoder takes within `limit` beside the
/// header, the question and the OPT record (whose room is kept: the encoder would otherwise leave
/// it out). The encoder writes a name's labels in full before it replaces them with a pointer,
/// so it refuses a record whose owner name, uncompressed, would cross the limit.
fn answers_that_fit(prepared: &mut Prepared, request: &Request, limit: u16) -> usize {
    let edns = prepared.edns.take();
    let opt = edns
        .as_ref()
        .map_or(0, |edns| encoded_len(&Record::from(edns)));
    let fitted = trial(prepared, request, limit.saturating_sub(opt));
    prepared.edns = edns;
    fitted.map_or(0, |info| usize::from(info.counts().answers))
}

fn encoded_len(record: &Record) -> u16 {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    // An OPT record is at most a few hundred bytes: it always encodes.
    let _ = record.emit(&mut encoder);
    u16::try_from(bytes.len()).unwrap_or(u16::MAX)
}
