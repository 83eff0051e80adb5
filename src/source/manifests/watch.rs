//! Following a manifests file: polled for changes, read again once it has been quiet for a
//! second (checked, then sent as a list in parts; what cannot be taken in parts read whole), a
//! read during which it changed thrown away; an invalid or emptied file logged and the last
//! good state kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::cluster::ClusterEvent;
use crate::source::manifests::file::{Fingerprint, Input, fingerprint, load};
use crate::source::manifests::parse::resync;
use crate::source::manifests::stream;
use crate::source::stats::SourceStats;

/// How often the file is checked for changes: well inside the one-second reload promise.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A changed file is read only once it has stayed unchanged this long, so that a file still
/// being written — `kubectl get ... > file` writes in several pieces — is not served
/// half-written. Writing a temporary file and renaming it over the old one is still the way
/// to change it in one step.
pub(super) const QUIET_PERIOD: Duration = Duration::from_secs(1);

/// Polls `path` and sends a resync when it has changed and then stayed unchanged for
/// [`QUIET_PERIOD`]. Invalid content is logged and ignored, so the last good state keeps being
/// served; so is a blank file. Ends when the cluster state is gone.
pub async fn watch(
    path: PathBuf,
    mut served: Option<Fingerprint>,
    max_size: u64,
    events: mpsc::Sender<ClusterEvent>,
    stats: Arc<SourceStats>,
) {
    let refused = || {
        SourceStats::count(&stats.reload_failures);
        stats.fell_behind();
    };
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let input = Input::File(path.clone());
    // A version not served yet, and since when it has not changed.
    let mut settling: Option<(Option<Fingerprint>, Instant)> = None;
    loop {
        ticks.tick().await;
        if events.is_closed() {
            return;
        }
        let now = fingerprint(&path);
        match settling {
            None if now == served => continue,
            Some((version, since)) if version == now => {
                if since.elapsed() < QUIET_PERIOD {
                    continue;
                }
            }
            _ => {
                settling = Some((now, Instant::now()));
                continue;
            }
        }
        settling = None;
        if now == served {
            continue;
        }
        served = now;
        if now.is_none() {
            warn!(path = %path.display(), "manifests file is unreadable; serving the last good state");
            refused();
            continue;
        }
        if let Some(sent) = resync_in_parts(&path, max_size, &events).await {
            // Changed while being read: the list ended incomplete. Read it again once settled.
            if fingerprint(&path) != now {
                served = None;
            }
            match sent {
                Ok(objects) => {
                    info!(path = %path.display(), objects, "manifests changed; reloaded in parts");
                    SourceStats::count(&stats.reloads);
                    stats.caught_up();
                }
                Err(why) if events.is_closed() => {
                    debug!(why, "stopped reloading");
                    return;
                }
                Err(why) => {
                    error!(
                        "{input}: reload broke off ({why}); serving the last good state with \
                         the objects read before"
                    );
                    refused();
                }
            }
            continue;
        }
        let load_input = input.clone();
        let loaded = match tokio::task::spawn_blocking(move || load(&load_input, max_size)).await {
            Ok(loaded) => loaded,
            Err(e) => Err(format!("{input}: reload failed: {e}")),
        };
        // Changed while being read: what was read may be half of it. Wait for it to settle.
        if fingerprint(&path) != now {
            served = None;
            continue;
        }
        match loaded {
            Ok(loaded) if loaded.blank => {
                warn!(
                    path = %path.display(),
                    "manifests file is empty; serving the last good state (to serve no objects, \
                     write an empty List: `apiVersion: v1`, `kind: List`, `items: []`)"
                );
                refused();
            }
            Ok(loaded) => {
                info!(path = %path.display(), objects = loaded.objects.len(), "manifests changed; reloading");
                if events.send(resync(loaded.objects)).await.is_err() {
                    return;
                }
                SourceStats::count(&stats.reloads);
                stats.caught_up();
            }
            Err(e) => {
                error!("{e}; serving the last good state");
                refused();
            }
        }
    }
}

/// Sends the file to the state as a list in parts, if all of it can be taken that way
/// (see [`stream::check`]); `None` when it must be read whole. Both readings read one open
/// file, so a file renamed over it in between is not half-applied.
async fn resync_in_parts(
    path: &Path,
    max_size: u64,
    events: &mpsc::Sender<ClusterEvent>,
) -> Option<Result<usize, String>> {
    let path = path.to_owned();
    let checked = tokio::task::spawn_blocking(move || {
        let file = stream::open(&path, max_size)?;
        stream::check(&file, max_size).map(|_| file)
    });
    let file = match checked.await.ok()? {
        Ok(file) => file,
        Err(why) => {
            debug!(why = %why.0, "reading the file whole");
            return None;
        }
    };
    let events = events.clone();
    let sent = tokio::task::spawn_blocking(move || stream::resync(&file, max_size, &events)).await;
    Some(match sent {
        Ok(sent) => sent.map_err(|why| why.0),
        Err(e) => Err(e.to_string()),
    })
}
