//! The DNS server: our own transports — UDP threads or one async task (`udp`), a TCP server
//! (`tcp`, accepting through `accept`), bound together (`listeners`) — so that what they must
//! never do (answer a response, spin when descriptors run out, lose a thread to a panic) is
//! decided here; every message answered by the handler (`handler`, through `responder`; with
//! several clusters, by the handler of the cluster a question goes to, `clusters`): every
//! query written straight into wire format by one writer (`wire`), UDP answers cut to the
//! client's limit (`truncation`); hickory's parser and encoder only for other opcodes, signed and
//! malformed messages, and as the reference the writer is tested against; each exchange counted
//! and logged (`observe`, `metrics`).

pub(crate) mod accept;
pub(crate) mod clusters;
pub(crate) mod handler;
pub(crate) mod listeners;
pub(crate) mod metrics;
pub(crate) mod observe;
pub(crate) mod responder;
pub(crate) mod tcp;
pub(crate) mod truncation;
pub(crate) mod udp;
pub(crate) mod wire;

pub(crate) use listeners::{DnsOptions, DnsServer};

#[cfg(test)]
mod proptests;
