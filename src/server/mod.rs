//! The DNS server: our own transports — UDP threads or one async task (`udp`), a TCP server
//! (`tcp`, accepting through `accept`), bound together (`listeners`) — so that what they must
//! never do (answer a response, spin when descriptors run out, lose a thread to a panic) is
//! decided here; every message answered by the handler (`handler`, through `responder`): plain
//! UDP queries written straight into wire format (`wire`), the rest decided by the rules and
//! encoded by hickory, cut to the client's limit over UDP (`truncation`); each exchange counted
//! and logged (`observe`, `metrics`).

pub(crate) mod accept;
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
