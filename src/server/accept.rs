//! Accepting connections when accept fails: out of descriptors, the loop backs off instead of
//! retrying at once (a pending connection keeps the listener readable, so an immediate retry
//! spins on the CPU), and says so once per episode rather than once per attempt.

use std::io;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

/// The first wait after running out of descriptors; it doubles up to [`MAX_DELAY`].
const MIN_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Exhaustion that comes back within this long belongs to the same episode.
const EPISODE_GAP: Duration = Duration::from_secs(60);
/// An episode is over once accepts have gone through this long after its last failure.
const RECOVERY: Duration = Duration::from_secs(5);

/// Descriptors kept for everything but TCP clients (sockets, listeners, the API's connections,
/// the manifests file) when `--tcp-connections` is fitted to the limit.
pub(crate) const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft limit on open descriptors to the hard limit (as nginx and CoreDNS's Go
/// runtime do): a default soft limit of 1024 would cap TCP clients near a thousand. Returns the
/// limit in force, and the one before if it was raised.
pub fn raise_descriptor_limit() -> io::Result<(u64, Option<u64>)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur >= limit.rlim_max {
        return Ok((before, None));
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit; raising the soft limit up to the hard one needs no
    // privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((raised.rlim_cur, Some(before)))
}

/// The soft limit on open descriptors.
pub(crate) fn descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as in `raise_descriptor_limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return u64::MAX;
    }
    limit.rlim_cur
}

/// Whether `error` means the process or the system ran out of file descriptors (or, the same
/// thing for accept, of socket buffers).
pub(crate) fn is_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The state of one accept loop.
pub(crate) struct AcceptBackoff {
    /// What accepts, for the log: `DNS over TCP`, `HTTP`.
    what: &'static str,
    delay: Duration,
    /// The current (or last) episode: when its latest failure was, and how many failed.
    last_exhausted: Option<Instant>,
    failed_in_episode: u64,
    in_episode: bool,
}

impl AcceptBackoff {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            delay: MIN_DELAY,
            last_exhausted: None,
            failed_in_episode: 0,
            in_episode: false,
        }
    }

    /// Records a failed accept; returns how long to wait before the next one, and whether the
    /// failure was exhaustion (the caller may free a descriptor).
    pub(crate) fn failed(&mut self, error: &io::Error) -> (Duration, bool) {
        if !is_exhaustion(error) {
            // The connection went away before we took it (ECONNABORTED), a signal, a firewall:
            // the listener itself is fine. A short pause still keeps an unexpected persistent
            // error from spinning.
            debug!(what = self.what, %error, "accept failed");
            return (Duration::from_millis(1), false);
        }
        let now = Instant::now();
        let new_episode = self
            .last_exhausted
            .is_none_or(|last| now.duration_since(last) > EPISODE_GAP);
        if new_episode {
            self.failed_in_episode = 0;
            self.delay = MIN_DELAY;
            warn!(
                what = self.what,
                %error,
                "out of file descriptors: new connections wait (backing off, closing the least \
                 recently active one); UDP is unaffected. Raise the descriptor limit or lower \
                 --tcp-connections"
            );
        } else {
            self.delay = (self.delay * 2).min(MAX_DELAY);
        }
        self.in_episode = true;
        self.failed_in_episode += 1;
        self.last_exhausted = Some(now);
        (self.delay, true)
    }

    /// Records an accepted connection.
    pub(crate) fn accepted(&mut self) {
        if self.in_episode
            && self
                .last_exhausted
                .is_some_and(|last| last.elapsed() >= RECOVERY)
        {
            self.in_episode = false;
            self.delay = MIN_DELAY;
            info!(
                what = self.what,
                refused = self.failed_in_episode,
                "file descriptors available again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_backs_off_and_other_errors_do_not() {
        let mut backoff = AcceptBackoff::new("test");
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        let delays: Vec<Duration> = (0..10).map(|_| backoff.failed(&emfile).0).collect();
        assert_eq!(delays[0], MIN_DELAY);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
        assert_eq!(backoff.failed_in_episode, 10);
        assert!(backoff.failed(&aborted).0 < MIN_DELAY);
        assert!(!backoff.failed(&aborted).1 && backoff.failed(&emfile).1);
        // Accepts right after a failure do not end the episode.
        backoff.accepted();
        assert!(backoff.in_episode);
    }
}
