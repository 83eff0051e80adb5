//! What the DNS targets share: a handler over a cluster with answers of every size, and the
//! properties every reply must have.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use headless_dns::manifests;
use headless_dns::{
    ClusterEvent, ClusterState, Handler, PodRecords, SharedView, TransferPolicy, Zone,
};
use hickory_proto::op::Message;

pub const SRC: &str = "192.0.2.1:5300";

/// The key signed messages are checked against (the seed corpora hold messages signed with it,
/// long expired: their MACs are computed and checked, then BADTIME).
pub const KEY: &str = "fuzz-key:hmac-sha256:ZnV6eiBrZXkgZnV6eiBrZXkgZnV6eiBrZXkgZnV6eg==";

/// A handler of [`cluster`] that lets [`SRC`] transfer with [`KEY`]: signed messages are
/// checked (and none can transfer: a fuzzer does not forge a MAC).
pub fn handler() -> &'static Handler {
    static HANDLER: OnceLock<Handler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let policy = TransferPolicy {
            allowed: vec!["192.0.2.0/24".parse().expect("a network")],
            key: Some(KEY.parse().expect("a key")),
        };
        cluster().clone().with_transfers(policy)
    })
}

/// A handler of [`cluster`] that lets [`SRC`] transfer without a key: AXFR and IXFR stream.
pub fn transfer_handler() -> &'static Handler {
    static HANDLER: OnceLock<Handler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let policy = TransferPolicy {
            allowed: vec!["192.0.2.0/24".parse().expect("a network")],
            key: None,
        };
        cluster().clone().with_transfers(policy)
    })
}

/// The demo cluster, an ExternalName chain into the zone, and a headless Service of 120 pods
/// (a third dual-stack) whose answers are cut at every limit.
fn cluster() -> &'static Handler {
    static HANDLER: OnceLock<Handler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let mut text = include_str!("../../config/demo-cluster.yaml").to_string();
        text.push_str(
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: to-nginx, namespace: default}\n\
             spec: {type: ExternalName, externalName: nginx-svc.default.svc.cluster.local}\n\
             ---\napiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\n\
             spec: {clusterIP: None, selector: {app: big}, ports: [{name: web, port: 80}]}\n",
        );
        for i in 0..120 {
            let v4 = format!("10.1.0.{}", i + 1);
            let ips = if i % 3 == 0 {
                format!("[{{ip: {v4}}}, {{ip: \"fd00:1::{:x}\"}}]", i + 1)
            } else {
                format!("[{{ip: {v4}}}]")
            };
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: big-{i}, namespace: default, labels: {{app: big}}}}\n\
                 status: {{podIP: {v4}, podIPs: {ips}, conditions: [{{type: Ready, status: 'True'}}]}}\n"
            ));
        }
        let objects = manifests::parse(&text).expect("the fixture parses");
        let mut state = ClusterState::new(7);
        state.apply(manifests::resync(objects));
        state.apply(ClusterEvent::Synced);
        let view = SharedView::new(state.publish().expect("a synced state publishes"));
        let zone = Zone::new("cluster.local", 5, PodRecords::Verified, None).expect("a zone");
        Handler::new(view, Arc::new(zone))
    })
}

pub fn src() -> SocketAddr {
    SRC.parse().expect("an address")
}

/// What every reply must be, for `query`: none to a response (QR=1) or to fewer than 12 bytes;
/// else the query's ID, QR=1, within `limit` bytes, and a message that parses.
pub fn check_reply(query: &[u8], reply: Option<&[u8]>, limit: usize) {
    let Some(reply) = reply else {
        return;
    };
    assert!(query.len() >= 12, "a reply to {} bytes", query.len());
    assert_eq!(query[2] & 0x80, 0, "a reply to a response");
    assert!(reply.len() >= 12 && reply.len() <= limit, "{} bytes over {limit}", reply.len());
    assert_eq!(reply[..2], query[..2], "another ID");
    assert_ne!(reply[2] & 0x80, 0, "QR not set");
    if let Err(error) = Message::from_vec(reply) {
        panic!("the reply does not parse: {error}");
    }
}

/// The UDP limit a query asks for (512 without EDNS, its size within 512..=1232), or 1232 when
/// the query does not parse as a message.
pub fn udp_limit(query: &[u8]) -> usize {
    match Message::from_vec(query) {
        Ok(message) => message
            .edns
            .map_or(512, |edns| usize::from(edns.max_payload().clamp(512, 1232))),
        Err(_) => 1232,
    }
}
