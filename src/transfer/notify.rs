//! NOTIFY (RFC 1996): telling secondaries the zones changed, so they transfer at once instead of
//! waiting for their refresh timer.
//!
//! The serial is looked at every [`COALESCE`]: a burst of changes within it becomes one NOTIFY
//! per zone and target. Each target has its own task, which sends until every zone is
//! acknowledged (any response counts, NOTAUTH from a secondary that does not serve a reverse
//! zone included), waiting 1 s, 2 s, 4 s, ... up to a minute between attempts; a newer serial
//! replaces the one being sent. With `--tsig-key` each NOTIFY is signed and only a response
//! signed with the key acknowledges it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, RecordType, TSigVerifier};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::dns::view::SharedView;
use crate::dns::zone::{Apex, Zone};
use crate::transfer::tsig::{self, TsigKey};

/// How often the serial is looked at; changes within one period are one NOTIFY.
pub(crate) const COALESCE: Duration = Duration::from_millis(200);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// Starts notifying `targets` of every change of the zones' serial (from the first complete
/// state on), signing with `key` if given; the tasks run until aborted.
pub(crate) fn spawn(
    view: SharedView,
    zone: Arc<Zone>,
    targets: Vec<SocketAddr>,
    key: Option<TsigKey>,
) -> Vec<JoinHandle<()>> {
    if targets.is_empty() {
        return Vec::new();
    }
    let (serials, watching) = watch::channel(None);
    let mut tasks = vec![tokio::spawn(watch_serial(view, serials))];
    let zones: Vec<(Apex, Name)> = zone
        .apexes()
        .map(|apex| (apex, zone.apex(apex).clone()))
        .collect();
    for target in targets {
        tasks.push(tokio::spawn(notify_target(
            target,
            zones.clone(),
            key.clone(),
            watching.clone(),
        )));
    }
    tasks
}

/// A serial of the complete view, and whether the clusterset zone was answered at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Published {
    serial: u32,
    clusterset: bool,
}

impl Published {
    /// Whether zone `apex` is served at this serial: the clusterset zone only while some
    /// ServiceImport exists (a NOTIFY for a zone we refuse would have the secondary ask in
    /// vain).
    fn serves(&self, apex: Apex) -> bool {
        apex != Apex::Clusterset || self.clusterset
    }
}

/// Publishes the serial of the view whenever it changes, once the view is complete.
async fn watch_serial(view: SharedView, serials: watch::Sender<Option<Published>>) {
    let mut interval = tokio::time::interval(COALESCE);
    loop {
        interval.tick().await;
        let current = view.load();
        if current.synced() {
            let now = Published {
                serial: current.serial(),
                clusterset: current.has_imports(),
            };
            serials.send_if_modified(|published| {
                let changed = *published != Some(now);
                *published = Some(now);
                changed
            });
        }
    }
}

/// Sends NOTIFY for `zones` to `target` for each new serial, until acknowledged.
async fn notify_target(
    target: SocketAddr,
    zones: Vec<(Apex, Name)>,
    key: Option<TsigKey>,
    mut serials: watch::Receiver<Option<Published>>,
) {
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(socket) => socket,
        Err(error) => {
            warn!(%target, %error, "cannot open a socket to send NOTIFY: none will be sent");
            return;
        }
    };
    // Whether the current episode of unacknowledged NOTIFYs has been warned about.
    let mut warned = false;
    loop {
        let Some(published) = *serials.borrow_and_update() else {
            if serials.changed().await.is_err() {
                return;
            }
            continue;
        };
        let serial = published.serial;
        let mut waiting: Vec<Waiting> = zones
            .iter()
            .filter(|(apex, _)| published.serves(*apex))
            .map(|(_, zone)| Waiting {
                id: rand_id(),
                zone,
                verifier: None,
            })
            .collect();
        let mut wait = FIRST_RETRY;
        let mut attempts = 0;
        let mut newer_serial = false;
        // The last response that did not acknowledge, for the warning.
        let mut last_refusal = None;
        loop {
            for waiting in &mut waiting {
                let mut message = notify_message(waiting.id, waiting.zone);
                if let Some(key) = &key {
                    waiting.verifier = key.sign_request(&mut message, tsig::now());
                }
                if let Ok(bytes) = message.to_vec() {
                    let _ = socket.send_to(&bytes, target).await;
                }
            }
            let deadline = tokio::time::Instant::now() + wait;
            let mut buffer = [0u8; 512];
            loop {
                tokio::select! {
                    received = socket.recv_from(&mut buffer) => {
                        let Ok((length, from)) = received else { continue };
                        if from != target {
                            continue;
                        }
                        match acknowledged(&buffer[..length], &mut waiting) {
                            Ok(index) => {
                                let zone = waiting.swap_remove(index).zone;
                                debug!(%target, %zone, serial, "NOTIFY acknowledged");
                            }
                            Err(refusal) => last_refusal = refusal.or(last_refusal),
                        }
                        if waiting.is_empty() {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => break,
                    changed = serials.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        newer_serial = true;
                        break;
                    }
                }
            }
            if newer_serial || waiting.is_empty() {
                break;
            }
            attempts += 1;
            // One warning per episode, once a few attempts went unanswered.
            if attempts == 4 && !warned {
                warned = true;
                let response = last_refusal.unwrap_or("none");
                let zones: Vec<String> = waiting.iter().map(|w| w.zone.to_string()).collect();
                let zones = zones.join(",");
                warn!(%target, serial, %zones, response, "NOTIFY not acknowledged after 4 attempts; still sending");
            }
            wait = (wait * 2).min(LONGEST_RETRY);
        }
        if !newer_serial {
            if std::mem::take(&mut warned) {
                info!(%target, serial, "NOTIFY acknowledged again");
            }
            if serials.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A NOTIFY for the SOA of `zone` (RFC 1996 §3.7: QUERY section with the zone's SOA, AA set).
fn notify_message(id: u16, zone: &Name) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(zone.clone(), RecordType::SOA));
    message
}

/// A zone's NOTIFY not yet acknowledged.
struct Waiting<'z> {
    id: u16,
    zone: &'z Name,
    /// Checks the signature of the response to a signed NOTIFY.
    verifier: Option<TSigVerifier>,
}

/// Which of `waiting` the NOTIFY `response` acknowledges; else what was wrong with it, if it
/// answered one of ours.
fn acknowledged(response: &[u8], waiting: &mut [Waiting]) -> Result<usize, Option<&'static str>> {
    let message = Message::from_vec(response).map_err(|_| None)?;
    if message.metadata.message_type != MessageType::Response
        || message.metadata.op_code != OpCode::Notify
    {
        return Err(None);
    }
    let index = waiting
        .iter()
        .position(|waiting| waiting.id == message.metadata.id)
        .ok_or(None)?;
    // Any response will do, NOTAUTH from a secondary that does not serve the zone included;
    // but a signed NOTIFY wants a signed response. A secondary answers a zone it does not
    // serve unsigned (Knot: NOTAUTH, no TSIG record), and a key it does not accept with a
    // TSIG error.
    if let Some(verifier) = &mut waiting[index].verifier
        && verifier.verify(response).is_err()
    {
        let not_served = matches!(
            message.metadata.response_code,
            ResponseCode::NotAuth | ResponseCode::Refused
        );
        return match &message.signature {
            None if not_served => Ok(index),
            None => Err(Some("a response not signed with the TSIG key")),
            Some(tsig) => Err(Some(match tsig.data.error {
                Some(TsigError::BadKey) => "BADKEY: the secondary does not know the TSIG key",
                Some(TsigError::BadSig) => "BADSIG: the secondary has another secret for the key",
                Some(TsigError::BadTime) => "BADTIME: the clocks differ by more than 5 minutes",
                _ => "a TSIG signature that does not verify",
            })),
        };
    }
    Ok(index)
}

/// An ID a spoofed response would have to guess.
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now()) as u16
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::op::Message;

    use super::*;
    use crate::dns::view::View;
    use crate::dns::zone::PodRecords;
    use crate::transfer::tsig::{Signature, TsigKey};

    fn synced(serial: u32) -> View {
        let mut view = View::new(serial);
        view.set_synced();
        view
    }

    /// A secondary on an ephemeral port: the next NOTIFY it gets within `limit`.
    async fn next_notify(socket: &UdpSocket, limit: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buffer = [0u8; 512];
        let (length, from) = tokio::time::timeout(limit, socket.recv_from(&mut buffer))
            .await
            .ok()?
            .ok()?;
        Some((buffer[..length].to_vec(), from))
    }

    /// The response to `notify` with `rcode`, signed with `key` if given.
    fn response(notify: &[u8], rcode: ResponseCode, key: Option<&TsigKey>) -> Vec<u8> {
        let request = Message::from_vec(notify).unwrap();
        let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Notify);
        response.metadata.response_code = rcode;
        response.add_query(request.queries[0].clone());
        let mut bytes = response.to_vec().unwrap();
        let now = tsig::now();
        if let Some(key) = key {
            let Signature::Valid(mut signer) =
                TsigKey::check(Some(key), notify, request.signature.as_deref(), now)
            else {
                panic!("the NOTIFY is signed with the key");
            };
            signer.sign(&mut bytes, now);
        }
        bytes
    }

    fn zone_of(notify: &[u8]) -> String {
        Message::from_vec(notify).unwrap().queries[0]
            .name()
            .to_string()
    }

    /// A secondary that does not answer for ip6.arpa keeps getting its NOTIFY, but a newer
    /// serial is sent for every zone at once, not after the old one's backoff.
    #[tokio::test]
    async fn a_newer_serial_is_sent_at_once() {
        let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let view = SharedView::new(synced(1));
        let zone = Arc::new(Zone::new("cluster.local.", 5, PodRecords::Verified, None).unwrap());
        let tasks = spawn(
            view.clone(),
            zone,
            vec![secondary.local_addr().unwrap()],
            None,
        );
        let mut zones = Vec::new();
        while zones.len() < 3 {
            let (notify, from) = next_notify(&secondary, Duration::from_secs(2))
                .await
                .unwrap();
            zones.push(zone_of(&notify));
            if !zone_of(&notify).starts_with("ip6") {
                let ack = response(&notify, ResponseCode::NoError, None);
                secondary.send_to(&ack, from).await.unwrap();
            }
        }
        zones.sort();
        assert_eq!(zones, ["cluster.local.", "in-addr.arpa.", "ip6.arpa."]);
        view.publish(synced(2));
        let mut again = Vec::new();
        while let Some((notify, _)) = next_notify(&secondary, Duration::from_millis(800)).await {
            again.push(zone_of(&notify));
            if again.contains(&"cluster.local.".to_owned()) {
                break;
            }
        }
        assert!(
            again.contains(&"cluster.local.".to_owned()),
            "after the change: {again:?}"
        );
        tasks.iter().for_each(JoinHandle::abort);
    }

    /// With a key, each NOTIFY is signed; a signed response acknowledges it, and so does an
    /// unsigned NOTAUTH without a TSIG record (a zone the secondary does not serve); an
    /// unsigned NOERROR does not.
    #[tokio::test]
    async fn signed_notifies_want_signed_responses() {
        let key: TsigKey = "notify-key:hmac-sha256:c2VjcmV0IHNlY3JldCBzZWNyZXQ="
            .parse()
            .unwrap();
        let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let view = SharedView::new(synced(1));
        let zone = Arc::new(Zone::new("cluster.local.", 5, PodRecords::Verified, None).unwrap());
        let tasks = spawn(
            view,
            zone,
            vec![secondary.local_addr().unwrap()],
            Some(key.clone()),
        );
        let mut first_round = Vec::new();
        for _ in 0..3 {
            let (notify, from) = next_notify(&secondary, Duration::from_secs(2))
                .await
                .unwrap();
            let zone = zone_of(&notify);
            let ack = match zone.as_str() {
                "cluster.local." => response(&notify, ResponseCode::NoError, Some(&key)),
                "in-addr.arpa." => response(&notify, ResponseCode::NotAuth, None),
                _ => response(&notify, ResponseCode::NoError, None),
            };
            secondary.send_to(&ack, from).await.unwrap();
            first_round.push(zone);
        }
        first_round.sort();
        assert_eq!(
            first_round,
            ["cluster.local.", "in-addr.arpa.", "ip6.arpa."]
        );
        // Only the zone whose response was not signed is sent again.
        let (retry, _) = next_notify(&secondary, Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(zone_of(&retry), "ip6.arpa.");
        assert!(
            next_notify(&secondary, Duration::from_millis(500))
                .await
                .is_none()
        );
        tasks.iter().for_each(JoinHandle::abort);
    }
}
