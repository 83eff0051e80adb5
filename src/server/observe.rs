//! Each exchange on its way out: counted for `/metrics` ([`metrics`](super::metrics)) and, with
//! `--log-queries`, logged one line per query. Wraps the answering [`Responder`], so the
//! answers themselves are untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_server::net::xfer::Protocol;

use crate::server::metrics::{DnsMetrics, Exchange, rcode_name, summarize};
use crate::server::responder::Responder;
use crate::transfer::Transfer;

/// The log target of query lines, enabled by `--log-queries` whatever `RUST_LOG` says.
pub(crate) const QUERY_LOG_TARGET: &str = "headless_dns::queries";

#[derive(Clone)]
pub(crate) struct Observed<R> {
    inner: R,
    metrics: Arc<DnsMetrics>,
    log_queries: bool,
}

impl<R> Observed<R> {
    pub(crate) fn new(inner: R, metrics: Arc<DnsMetrics>, log_queries: bool) -> Self {
        Self {
            inner,
            metrics,
            log_queries,
        }
    }

    /// Runs `answer` (which fills `out`), then counts and perhaps logs the exchange.
    fn observed(
        &self,
        protocol: Protocol,
        client: SocketAddr,
        message: &[u8],
        out: &mut Vec<u8>,
        answer: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> bool {
        let started = Instant::now();
        let answered = answer(out);
        let reply = answered.then_some(&out[..]);
        let (qtype, summary) = summarize(message, reply);
        let exchange = Exchange {
            protocol,
            client,
            qtype,
            request_bytes: message.len(),
            reply: summary,
            duration: started.elapsed(),
        };
        self.metrics.record(&exchange);
        if self.log_queries {
            log_query(&exchange, reply.unwrap_or(message));
        }
        answered
    }
}

impl<R: Responder> Responder for Observed<R> {
    fn answer(
        &self,
        message: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        self.observed(protocol, src, message, out, |out| {
            self.inner.answer(message, src, protocol, out)
        })
    }

    fn transfer(&self, message: &[u8], src: SocketAddr) -> Option<Transfer> {
        let transfer = self.inner.transfer(message, src)?;
        tracing::info!(
            client = %src,
            zone = %question_name(message),
            kind = ?transfer.kind,
            "zone transfer"
        );
        Some(transfer)
    }
}

/// One line: client, transport, name, type, rcode, answers, duration, TC.
fn log_query(exchange: &Exchange, message: &[u8]) {
    use hickory_proto::rr::RecordType;
    let name = question_name(message);
    let qtype = RecordType::from(exchange.qtype);
    let protocol = match exchange.protocol {
        Protocol::Tcp => "tcp",
        _ => "udp",
    };
    let duration_us = exchange.duration.as_secs_f64() * 1e6;
    match exchange.reply {
        Some(reply) => tracing::info!(
            target: QUERY_LOG_TARGET,
            client = %exchange.client,
            protocol,
            name = %name,
            qtype = %qtype,
            rcode = rcode_name(reply.rcode),
            answers = reply.answers,
            bytes = reply.bytes,
            tc = reply.truncated,
            duration_us = format_args!("{duration_us:.1}"),
            "query"
        ),
        None => tracing::info!(
            target: QUERY_LOG_TARGET,
            client = %exchange.client,
            protocol,
            name = %name,
            qtype = %qtype,
            bytes = exchange.request_bytes,
            "message dropped: a response or shorter than a header"
        ),
    }
}

/// The question's name as text (`.` for the root), or `-` when the message has none; for the
/// log only, so pointers are followed at most a few times and odd bytes are escaped.
fn question_name(message: &[u8]) -> String {
    if message.len() < 12 || u16::from_be_bytes([message[4], message[5]]) == 0 {
        return "-".into();
    }
    let mut name = String::new();
    let mut at = 12;
    for _ in 0..128 {
        let Some(&length) = message.get(at) else {
            break;
        };
        match length {
            0 => {
                if name.is_empty() {
                    name.push('.');
                }
                return name;
            }
            l if l & 0xc0 == 0xc0 => {
                let Some(&low) = message.get(at + 1) else {
                    break;
                };
                at = usize::from(u16::from_be_bytes([l & 0x3f, low]));
            }
            l if l & 0xc0 == 0 => {
                let Some(label) = message.get(at + 1..at + 1 + usize::from(l)) else {
                    break;
                };
                for &byte in label {
                    if byte.is_ascii_graphic() && byte != b'.' && byte != b'\\' {
                        name.push(char::from(byte));
                    } else {
                        name.push_str(&format!("\\{byte:03}"));
                    }
                }
                name.push('.');
                at += 1 + usize::from(l);
            }
            _ => break,
        }
    }
    name.push_str("<malformed>");
    name
}

#[cfg(test)]
mod tests {
    use super::question_name;

    #[test]
    fn question_names() {
        let header = [0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let with = |name: &[u8]| [&header[..], name, &[0, 1, 0, 1]].concat();
        assert_eq!(question_name(&with(b"\x03www\x03Foo\x00")), "www.Foo.");
        assert_eq!(question_name(&with(b"\x00")), ".");
        assert_eq!(question_name(&with(b"\x03a.b\x00")), "a\\046b.");
        // A label longer than what is left: what was read, then the mark.
        assert_eq!(
            question_name(&[&header[..], b"\x02ok\x05ab"].concat()),
            "ok.<malformed>"
        );
        // A pointer to itself ends after a bounded number of hops.
        assert_eq!(question_name(&with(b"\xc0\x0c")), "<malformed>");
        assert_eq!(question_name(&header[..6]), "-");
    }
}
