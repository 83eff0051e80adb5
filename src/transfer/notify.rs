//! NOTIFY (RFC 1996): telling secondaries the zones changed, so they transfer at once instead of
//! waiting for their refresh timer.
//!
//! The serial is looked at every [`COALESCE`]: a burst of changes within it becomes one NOTIFY
//! per zone and target. Each target has its own task, which sends until every zone is
//! acknowledged (any response counts, NOTAUTH from a secondary that does not serve a reverse
//! zone included), waiting 1 s, 2 s, 4 s, ... up to a minute between attempts; a newer serial
//! replaces the one being sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::dns::rules::{Apex, Zone};
use crate::dns::view::SharedView;

/// How often the serial is looked at; changes within one period are one NOTIFY.
pub const COALESCE: Duration = Duration::from_millis(200);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// Starts notifying `targets` of every change of the zones' serial (from the first complete
/// state on); the tasks run until aborted.
pub fn spawn(view: SharedView, zone: Arc<Zone>, targets: Vec<SocketAddr>) -> Vec<JoinHandle<()>> {
    if targets.is_empty() {
        return Vec::new();
    }
    let (serials, watching) = watch::channel(None);
    let mut tasks = vec![tokio::spawn(watch_serial(view, serials))];
    for target in targets {
        let names =
            [Apex::Zone, Apex::InAddrArpa, Apex::Ip6Arpa].map(|apex| zone.apex(apex).clone());
        tasks.push(tokio::spawn(notify_target(target, names, watching.clone())));
    }
    tasks
}

/// Publishes the serial of the view whenever it changes, once the view is complete.
async fn watch_serial(view: SharedView, serials: watch::Sender<Option<u32>>) {
    let mut interval = tokio::time::interval(COALESCE);
    loop {
        interval.tick().await;
        let current = view.load();
        if current.synced() {
            serials.send_if_modified(|serial| {
                let changed = *serial != Some(current.serial());
                *serial = Some(current.serial());
                changed
            });
        }
    }
}

/// Sends NOTIFY for `zones` to `target` for each new serial, until acknowledged.
async fn notify_target(
    target: SocketAddr,
    zones: [Name; 3],
    mut serials: watch::Receiver<Option<u32>>,
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
        let Some(serial) = *serials.borrow_and_update() else {
            if serials.changed().await.is_err() {
                return;
            }
            continue;
        };
        let mut waiting: Vec<(u16, &Name)> = zones.iter().map(|name| (rand_id(), name)).collect();
        let mut wait = FIRST_RETRY;
        let mut attempts = 0;
        let superseded = loop {
            for (id, name) in &waiting {
                if let Ok(bytes) = notify_message(*id, name).to_vec() {
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
                        if let Some(id) = acknowledged(&buffer[..length]) {
                            waiting.retain(|(waiting_id, _)| *waiting_id != id);
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
                        break;
                    }
                }
            }
            if serials.has_changed().unwrap_or(false) {
                break true;
            }
            if waiting.is_empty() {
                break false;
            }
            attempts += 1;
            // One warning per episode, once a few attempts went unanswered.
            if attempts == 4 && !warned {
                warned = true;
                warn!(%target, serial, "NOTIFY not acknowledged after 4 attempts; still sending");
            }
            wait = (wait * 2).min(LONGEST_RETRY);
        };
        if !superseded {
            if std::mem::take(&mut warned) {
                info!(%target, serial, "NOTIFY acknowledged again");
            }
            debug!(%target, serial, "NOTIFY acknowledged");
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

/// The ID of the NOTIFY `response` answers, if it is a response to a NOTIFY.
fn acknowledged(response: &[u8]) -> Option<u16> {
    let message = Message::from_vec(response).ok()?;
    (message.metadata.message_type == MessageType::Response
        && message.metadata.op_code == OpCode::Notify)
        .then_some(message.metadata.id)
}

/// An ID a spoofed response would have to guess.
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now()) as u16
}
