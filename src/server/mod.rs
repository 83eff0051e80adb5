//! The DNS server: our own transports — UDP threads or one async task (`udp`), a TCP server
//! (`tcp`, accepting through `accept`), bound together (`listeners`) — so that what they must
//! never do (answer a response, spin when descriptors run out, lose a thread to a panic) is
//! decided here; every message answered by the handler (`handler`, through `responder`): plain
//! UDP queries written straight into wire format (`wire`), the rest decided by the rules and
//! encoded by hickory, cut to the client's limit over UDP (`truncation`); each exchange counted
//! and logged (`observe`, `metrics`).

pub mod accept;
pub mod handler;
pub mod listeners;
pub mod metrics;
pub mod observe;
pub mod responder;
pub mod tcp;
pub mod truncation;
pub mod udp;
pub mod wire;

pub use listeners::{DnsOptions, DnsServer, DnsSockets};
pub use responder::{Responder, contained, contained_panics};

#[cfg(test)]
mod proptests;
