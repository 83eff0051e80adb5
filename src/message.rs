//! What a DNS message may hold, beneath every stage that reads or writes one: the UDP payload
//! limits, the names of response codes, and readers of a question's raw bytes (for those that
//! must know a message's type before, or without, parsing it).

use hickory_proto::op::Edns;

/// The largest UDP answer we send, whatever the client offers (the DNS flag day 2020 value,
/// which avoids IP fragmentation).
pub(crate) const MAX_UDP_PAYLOAD: u16 = 1232;

/// Without EDNS a UDP message may not exceed this (RFC 1035 §4.2.1).
pub(crate) const CLASSIC_UDP_PAYLOAD: u16 = 512;

/// The client's EDNS payload size, at least 512 and at most [`MAX_UDP_PAYLOAD`].
pub(crate) fn udp_limit(edns: Option<&Edns>) -> u16 {
    edns.map_or(CLASSIC_UDP_PAYLOAD, |e| {
        e.max_payload().clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
    })
}

/// Response codes by name, as `dig` prints them (BADVERS is extended: its upper bits travel in
/// the OPT record).
pub(crate) const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    // A TSIG signature we do not accept.
    (9, "NOTAUTH"),
    (16, "BADVERS"),
];

/// An rcode's name as `dig` prints it (`other` for the rest), for logs, metrics and reports.
pub(crate) fn rcode_name(rcode: u16) -> &'static str {
    RCODES
        .iter()
        .find(|(code, _)| *code == rcode)
        .map_or("other", |(_, name)| name)
}

/// The type of the first question of a wire-format message, read without parsing it (for
/// counting, and to pick out zone transfer requests before a full parse).
pub(crate) fn wire_question_type(message: &[u8]) -> Option<u16> {
    if message.len() < 12 || u16::from_be_bytes([message[4], message[5]]) == 0 {
        return None;
    }
    let end = wire_name_end(message, 12)?;
    Some(u16::from_be_bytes([
        *message.get(end)?,
        *message.get(end + 1)?,
    ]))
}

/// Where the wire-format name starting at `at` in `message` ends (past a compression pointer,
/// which ends a name).
pub(crate) fn wire_name_end(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        match length {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}
