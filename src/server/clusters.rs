//! Answering for several clusters (`--cluster`): each question goes to the handler of the
//! cluster whose zone holds its name ([`crate::dns::clusters`]); a reverse question is put to
//! each cluster in turn and gets the answer of the first that holds the address.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_server::net::xfer::Protocol;

use crate::dns::clusters::{Outcome, Route, Routes};
use crate::server::handler::Handler;
use crate::server::responder::Responder;

/// The handlers of the clusters served, in the order they were named, and how to route to them.
#[derive(Clone)]
pub(crate) struct Clusters {
    handlers: Arc<[Handler]>,
    routes: Arc<Routes>,
}

impl Clusters {
    /// `handlers` answer for the clusters `routes` was made from, in the same order (at least
    /// one).
    pub(crate) fn new(handlers: Vec<Handler>, routes: Routes) -> Self {
        assert!(!handlers.is_empty(), "at least one cluster");
        Self {
            handlers: handlers.into(),
            routes: Arc::new(routes),
        }
    }
}

impl Responder for Clusters {
    fn answer(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        let chosen = match self.routes.route(message) {
            Route::Cluster(index) => index,
            Route::Elsewhere => 0,
            Route::Reverse => {
                // The first cluster's answer that says most (see `Outcome`): one with
                // records ends the search.
                let holders = self.routes.address_holders();
                let mut best = (Outcome::Missing, 0);
                for &index in holders {
                    out.clear();
                    if !self.handlers[index].answer(message, src, protocol, out) {
                        return false;
                    }
                    let outcome = outcome(out);
                    if outcome == Outcome::Answered {
                        return true;
                    }
                    if outcome > best.0 {
                        best = (outcome, index);
                    }
                }
                if holders.last() == Some(&best.1) {
                    // `out` holds that one's answer already.
                    return true;
                }
                best.1
            }
        };
        out.clear();
        self.handlers[chosen].answer(message, src, protocol, out)
    }
}

/// What a reply says of the name, read from its header.
fn outcome(reply: &[u8]) -> Outcome {
    let (Some(&flags), Some(answers)) = (reply.get(3), reply.get(6..8)) else {
        return Outcome::Missing;
    };
    let answers = u16::from_be_bytes([answers[0], answers[1]]);
    Outcome::of(ResponseCode::from_low(flags & 0x0f), usize::from(answers))
}
