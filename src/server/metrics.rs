//! What the DNS server has answered, counted in rows of relaxed atomic counters (one row per
//! answering thread, so that no two threads write the same cache line), and the Prometheus
//! text format they are written in when `/metrics` is scraped ([`crate::http::metrics`]).
//! Names and labels are CoreDNS's where a CoreDNS dashboard looks for them (`coredns_*`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;

pub(crate) use crate::message::rcode_name;
use crate::message::{RCODES, wire_name_end, wire_question_type};

/// Rows of counters; threads beyond this share rows (still correct, only contended).
const ROWS: usize = 16;

/// Query types counted by name, as CoreDNS's `type` label has them; the rest are `other`.
const TYPES: [(u16, &str); 11] = [
    (1, "A"),
    (28, "AAAA"),
    (5, "CNAME"),
    (2, "NS"),
    (12, "PTR"),
    (6, "SOA"),
    (33, "SRV"),
    (16, "TXT"),
    (255, "ANY"),
    (252, "AXFR"),
    (251, "IXFR"),
];

const TYPE_SLOTS: usize = TYPES.len() + 1;

const RCODE_SLOTS: usize = RCODES.len() + 1;

/// Upper bounds of the duration buckets: 1 µs doubling to about 1 s (an answer takes a few
/// microseconds; CoreDNS's buckets start at 250 µs and would put every answer in the first).
const DURATION_BUCKETS: usize = 21;

/// CoreDNS's size buckets, in bytes.
const SIZE_BOUNDS: [u64; 14] = [
    0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16_000, 32_000, 48_000, 64_000,
];

const SIZE_SLOTS: usize = SIZE_BOUNDS.len() + 1;

const PROTOCOLS: [&str; 2] = ["udp", "tcp"];

const FAMILIES: [&str; 2] = ["1", "2"];

/// One message as the servers saw it: enough to count it and to log it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exchange {
    pub protocol: Protocol,
    pub client: SocketAddr,
    pub qtype: u16,
    pub request_bytes: usize,
    /// `None`: nothing was sent (a response, a message shorter than a header).
    pub reply: Option<ReplySummary>,
    pub duration: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplySummary {
    pub rcode: u16,
    pub answers: u16,
    pub truncated: bool,
    pub bytes: usize,
}

#[repr(align(128))]
struct Row {
    requests: [[[AtomicU64; TYPE_SLOTS]; 2]; 2],
    dropped: AtomicU64,
    responses: [AtomicU64; RCODE_SLOTS],
    truncated: AtomicU64,
    duration: [[AtomicU64; DURATION_BUCKETS + 1]; TYPE_SLOTS],
    duration_nanos: [AtomicU64; TYPE_SLOTS],
    request_size: [[AtomicU64; SIZE_SLOTS]; 2],
    request_bytes: [AtomicU64; 2],
    response_size: [[AtomicU64; SIZE_SLOTS]; 2],
    response_bytes: [AtomicU64; 2],
}

impl Row {
    fn new() -> Self {
        Self {
            requests: Default::default(),
            dropped: AtomicU64::new(0),
            responses: Default::default(),
            truncated: AtomicU64::new(0),
            duration: std::array::from_fn(|_| Default::default()),
            duration_nanos: Default::default(),
            request_size: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            request_bytes: Default::default(),
            response_size: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            response_bytes: Default::default(),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The DNS servers' counters, shared by every transport.
pub(crate) struct DnsMetrics {
    rows: Box<[Row]>,
    /// `server` label: `dns://ADDRESS`, as CoreDNS names a server block's listener.
    server: String,
    /// `zone` label: the zone served, with its final dot.
    zone: String,
}

impl std::fmt::Debug for DnsMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsMetrics")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

thread_local! {
    static ROW: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % ROWS
    };
}

impl DnsMetrics {
    pub(crate) fn new(listen: SocketAddr, zone: &str) -> Self {
        let mut zone = zone.to_ascii_lowercase();
        if !zone.ends_with('.') {
            zone.push('.');
        }
        Self {
            rows: (0..ROWS).map(|_| Row::new()).collect(),
            server: format!("dns://{listen}"),
            zone,
        }
    }

    /// Counts one message; a few relaxed additions to this thread's row.
    pub(crate) fn record(&self, exchange: &Exchange) {
        let row = &self.rows[ROW.with(|row| *row)];
        let protocol = usize::from(exchange.protocol == Protocol::Tcp);
        let family = usize::from(exchange.client.is_ipv6());
        let qtype = type_slot(exchange.qtype);
        add(&row.requests[protocol][family][qtype], 1);
        add(
            &row.request_size[protocol][size_slot(exchange.request_bytes)],
            1,
        );
        add(&row.request_bytes[protocol], exchange.request_bytes as u64);
        let Some(reply) = exchange.reply else {
            add(&row.dropped, 1);
            return;
        };
        add(&row.responses[rcode_slot(reply.rcode)], 1);
        if reply.truncated {
            add(&row.truncated, 1);
        }
        add(&row.response_size[protocol][size_slot(reply.bytes)], 1);
        add(&row.response_bytes[protocol], reply.bytes as u64);
        let nanos = u64::try_from(exchange.duration.as_nanos()).unwrap_or(u64::MAX);
        add(&row.duration[qtype][duration_slot(nanos)], 1);
        add(&row.duration_nanos[qtype], nanos);
    }

    fn sum(&self, counter: impl Fn(&Row) -> &AtomicU64) -> u64 {
        self.rows
            .iter()
            .map(|row| counter(row).load(Ordering::Relaxed))
            .sum()
    }

    /// Writes every DNS metric.
    pub(crate) fn write(&self, out: &mut Exposition) {
        let (server, zone) = (self.server.as_str(), self.zone.as_str());
        let base = [("server", server), ("zone", zone), ("view", "")];

        out.family(
            "coredns_dns_requests_total",
            "Queries received, by transport, address family of the client and query type.",
            "counter",
        );
        for (p, proto) in PROTOCOLS.iter().enumerate() {
            for (f, family) in FAMILIES.iter().enumerate() {
                for (t, qtype) in type_names().enumerate() {
                    let count = self.sum(|row| &row.requests[p][f][t]);
                    if count > 0 {
                        let labels = [("proto", *proto), ("family", *family), ("type", qtype)];
                        out.sample("coredns_dns_requests_total", &[&base, &labels], count);
                    }
                }
            }
        }

        out.family(
            "coredns_dns_responses_total",
            "Responses sent, by response code.",
            "counter",
        );
        for (r, rcode) in rcode_names().enumerate() {
            let count = self.sum(|row| &row.responses[r]);
            if count > 0 {
                let labels = [("rcode", rcode), ("plugin", "")];
                out.sample("coredns_dns_responses_total", &[&base, &labels], count);
            }
        }

        out.family(
            "coredns_dns_request_duration_seconds",
            "Time from a query's arrival to its response being ready, by query type.",
            "histogram",
        );
        for (t, qtype) in type_names().enumerate() {
            let counts: Vec<u64> = (0..=DURATION_BUCKETS)
                .map(|b| self.sum(|row| &row.duration[t][b]))
                .collect();
            let nanos = self.sum(|row| &row.duration_nanos[t]);
            out.histogram(
                "coredns_dns_request_duration_seconds",
                &[&base, &[("type", qtype)]],
                (0..=DURATION_BUCKETS).map(duration_bound),
                &counts,
                nanos as f64 / 1e9,
            );
        }

        type SizeCounter = fn(&Row, usize, usize) -> &AtomicU64;
        type ByteCounter = fn(&Row, usize) -> &AtomicU64;
        let request_sizes: (SizeCounter, ByteCounter) = (
            |row, p, s| &row.request_size[p][s],
            |row, p| &row.request_bytes[p],
        );
        let response_sizes: (SizeCounter, ByteCounter) = (
            |row, p, s| &row.response_size[p][s],
            |row, p| &row.response_bytes[p],
        );
        for (name, help, (sizes, bytes)) in [
            (
                "coredns_dns_request_size_bytes",
                "Size of the queries received, by transport.",
                request_sizes,
            ),
            (
                "coredns_dns_response_size_bytes",
                "Size of the responses sent, by transport.",
                response_sizes,
            ),
        ] {
            out.family(name, help, "histogram");
            for (p, proto) in PROTOCOLS.iter().enumerate() {
                let counts: Vec<u64> = (0..SIZE_SLOTS)
                    .map(|s| self.sum(|row| sizes(row, p, s)))
                    .collect();
                out.histogram(
                    name,
                    &[&base, &[("proto", *proto)]],
                    (0..SIZE_SLOTS).map(size_bound),
                    &counts,
                    self.sum(|row| bytes(row, p)) as f64,
                );
            }
        }

        out.single(
            "headless_dns_truncated_answers_total",
            "UDP answers cut to the client's limit, TC set.",
            "counter",
            self.sum(|row| &row.truncated),
        );
        out.single(
            "headless_dns_dropped_messages_total",
            "Messages that got no reply: responses (QR=1) and messages shorter than a header.",
            "counter",
            self.sum(|row| &row.dropped),
        );
    }
}

/// The Prometheus text format (0.0.4), written by hand: it is a few lines per family, and it is
/// what `promtool check metrics` lints and CoreDNS serves. (prometheus-client writes only
/// OpenMetrics, whose counter families are named without `_total`, which promtool rejects.)
#[derive(Default)]
pub(crate) struct Exposition {
    pub text: String,
}

impl Exposition {
    pub(crate) fn family(&mut self, name: &str, help: &str, kind: &str) {
        use std::fmt::Write;
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub(crate) fn sample(
        &mut self,
        name: &str,
        labels: &[&[(&str, &str)]],
        value: impl std::fmt::Display,
    ) {
        use std::fmt::Write;
        self.text.push_str(name);
        let mut first = true;
        for (label, value) in labels.iter().flat_map(|set| set.iter()) {
            self.text.push(if first { '{' } else { ',' });
            first = false;
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(self.text, "{label}=\"{value}\"");
        }
        if !first {
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub(crate) fn single(
        &mut self,
        name: &str,
        help: &str,
        kind: &str,
        value: impl std::fmt::Display,
    ) {
        self.family(name, help, kind);
        self.sample(name, &[], value);
    }

    /// One histogram series from per-bucket counts (the last bucket's bound is +Inf); nothing
    /// when it has counted nothing.
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        labels: &[&[(&str, &str)]],
        bounds: impl Iterator<Item = f64>,
        counts: &[u64],
        sum: f64,
    ) {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return;
        }
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, count) in bounds.zip(counts) {
            cumulative += count;
            let le = if bound.is_infinite() {
                "+Inf".to_owned()
            } else {
                bound.to_string()
            };
            let le = [("le", le.as_str())];
            let mut with_le: Vec<&[(&str, &str)]> = labels.to_vec();
            with_le.push(&le);
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, total);
    }
}

/// Reads how many TCP connections are open.
#[derive(Clone)]
pub(crate) struct OpenConnections(pub Arc<dyn Fn() -> usize + Send + Sync>);

impl std::fmt::Debug for OpenConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenConnections({})", (self.0)())
    }
}

fn type_names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|(_, name)| *name).chain(["other"])
}

fn rcode_names() -> impl Iterator<Item = &'static str> {
    RCODES.iter().map(|(_, name)| *name).chain(["other"])
}

fn type_slot(qtype: u16) -> usize {
    TYPES
        .iter()
        .position(|(code, _)| *code == qtype)
        .unwrap_or(TYPES.len())
}

fn rcode_slot(rcode: u16) -> usize {
    RCODES
        .iter()
        .position(|(code, _)| *code == rcode)
        .unwrap_or(RCODES.len())
}

/// Bucket `b` holds durations up to 2^b µs; the last, everything longer.
fn duration_slot(nanos: u64) -> usize {
    let micros = nanos.div_ceil(1_000).max(1);
    let bucket = (u64::BITS - (micros - 1).leading_zeros()) as usize;
    bucket.min(DURATION_BUCKETS)
}

fn duration_bound(bucket: usize) -> f64 {
    if bucket == DURATION_BUCKETS {
        f64::INFINITY
    } else {
        (1u64 << bucket) as f64 / 1e6
    }
}

fn size_slot(bytes: usize) -> usize {
    SIZE_BOUNDS
        .iter()
        .position(|&bound| bytes as u64 <= bound)
        .unwrap_or(SIZE_BOUNDS.len())
}

fn size_bound(slot: usize) -> f64 {
    SIZE_BOUNDS
        .get(slot)
        .map_or(f64::INFINITY, |&bound| bound as f64)
}

/// What a reply's bytes say about it, and the question's type: read from the reply when there
/// is one (our own bytes, well formed), else from the message as received.
pub(crate) fn summarize(message: &[u8], reply: Option<&[u8]>) -> (u16, Option<ReplySummary>) {
    let Some(reply) = reply else {
        return (wire_question_type(message).unwrap_or(0), None);
    };
    let qtype = wire_question_type(reply)
        .or_else(|| wire_question_type(message))
        .unwrap_or(0);
    let header = |at: usize| reply.get(at).copied().unwrap_or(0);
    let mut rcode = u16::from(header(3) & 0x0f);
    let counts = |at: usize| u16::from_be_bytes([header(at), header(at + 1)]);
    if let Some(extended) = extended_rcode(reply) {
        rcode |= u16::from(extended) << 4;
    }
    let summary = ReplySummary {
        rcode,
        answers: counts(6),
        truncated: header(2) & 0x02 != 0,
        bytes: reply.len(),
    };
    (qtype, Some(summary))
}

/// The upper eight bits of the rcode, from an OPT record that is the message's only record
/// besides the question (the only replies that carry one: BADVERS and other header-only errors).
fn extended_rcode(reply: &[u8]) -> Option<u8> {
    if reply.len() < 12 {
        return None;
    }
    let counts: Vec<u16> = (0..4)
        .map(|i| u16::from_be_bytes([reply[4 + 2 * i], reply[5 + 2 * i]]))
        .collect();
    if counts[1] != 0 || counts[2] != 0 || counts[3] != 1 {
        return None;
    }
    let mut at = 12;
    for _ in 0..counts[0] {
        at = wire_name_end(reply, at)? + 4;
    }
    // Root name, TYPE OPT (41), CLASS, then the TTL whose first byte is the extended rcode.
    match reply.get(at..at + 6)? {
        [0, 0, 41, _, _, extended] => Some(*extended),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_buckets() {
        for (nanos, slot) in [
            (0, 0),
            (1_000, 0),
            (1_001, 1),
            (2_000, 1),
            (3_500, 2),
            (4_000, 2),
            (1_000_000, 10),
            (1_048_576_000, 20),
            (1_048_577_000, 21),
            (u64::MAX, 21),
        ] {
            assert_eq!(duration_slot(nanos), slot, "{nanos} ns");
            let bound = duration_bound(slot);
            assert!(
                nanos as f64 / 1e9 <= bound,
                "{nanos} ns above bucket {slot}"
            );
        }
    }

    #[test]
    fn size_buckets() {
        for (bytes, slot) in [(0, 0), (1, 1), (100, 1), (512, 6), (1232, 7), (70_000, 14)] {
            assert_eq!(size_slot(bytes), slot, "{bytes}");
        }
    }

    #[test]
    fn summaries_of_replies() {
        // A reply: ID, QR AA TC NXDOMAIN, 1 question, 2 answers; www. A.
        let mut reply = vec![0x42, 0x42, 0x86, 0x03, 0, 1, 0, 2, 0, 0, 0, 0];
        reply.extend_from_slice(b"\x03www\x00\x00\x01\x00\x01");
        let (qtype, summary) = summarize(&[], Some(&reply));
        assert_eq!(qtype, 1);
        let summary = summary.unwrap();
        assert_eq!(
            (summary.rcode, summary.answers, summary.truncated),
            (3, 2, true)
        );

        // BADVERS: header rcode 0, OPT with extended rcode 1.
        let mut badvers = vec![0x42, 0x42, 0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        badvers.extend_from_slice(b"\x03www\x00\x00\x1c\x00\x01");
        badvers.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 1, 0, 0, 0, 0, 0]);
        let (qtype, summary) = summarize(&[], Some(&badvers));
        assert_eq!((qtype, summary.unwrap().rcode), (28, 16));

        // No reply: the type comes from the message; garbage gives 0.
        assert_eq!(summarize(&reply, None), (1, None));
        assert_eq!(summarize(&[1, 2, 3], None), (0, None));
        assert_eq!(summarize(&reply[..14], None), (0, None));
    }
}
