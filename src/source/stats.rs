//! What a source has done, counted for `/metrics`: lists and re-lists, watch restarts, failures
//! of the API by cause, manifests reloads, and since when it has been out of sync.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct SourceStats {
    started: Instant,
    /// Complete lists of a resource received from the API (the first of each and re-lists).
    pub lists: AtomicU64,
    /// Lists after a resource's first: after `410 Gone` or a watch that could not resume.
    pub relists: AtomicU64,
    /// Of `lists`, those the API sent as protobuf.
    pub protobuf_lists: AtomicU64,
    /// Of `lists`, those had as a streaming list (a watch's initial events).
    pub streamed_lists: AtomicU64,
    /// Watch requests that ended (closed by the server, failed, expired) and were made again.
    pub watch_restarts: AtomicU64,
    /// Manifests files read again after a change, and those refused (the last state kept).
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    api_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Since when what is served may be behind the source; `None` while in sync.
    behind_since: Mutex<Option<Instant>>,
    synced_once: std::sync::atomic::AtomicBool,
}

impl SourceStats {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            lists: AtomicU64::new(0),
            relists: AtomicU64::new(0),
            protobuf_lists: AtomicU64::new(0),
            streamed_lists: AtomicU64::new(0),
            watch_restarts: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            api_errors: Mutex::new(BTreeMap::new()),
            behind_since: Mutex::new(None),
            synced_once: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn api_error(&self, cause: &'static str) {
        *self
            .api_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(cause)
            .or_default() += 1;
    }

    /// Failures of the API so far, by cause.
    pub fn api_errors(&self) -> Vec<(&'static str, u64)> {
        let errors = self.api_errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.iter().map(|(cause, n)| (*cause, *n)).collect()
    }

    /// The source failed: what is served may fall behind from now on (if it was not already).
    pub fn fell_behind(&self) {
        let mut since = self.behind_since.lock().unwrap_or_else(|e| e.into_inner());
        since.get_or_insert_with(Instant::now);
    }

    /// What is served is the source's state again.
    pub fn caught_up(&self) {
        self.synced_once.store(true, Ordering::Relaxed);
        *self.behind_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// How long what is served may have been behind the source: 0 while in sync; before the
    /// first complete state, the time since start.
    pub fn behind(&self) -> Duration {
        if !self.synced_once.load(Ordering::Relaxed) {
            return self.started.elapsed();
        }
        self.behind_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(Duration::ZERO, |since| since.elapsed())
    }
}

impl Default for SourceStats {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_until_synced_then_only_while_failing() {
        let stats = SourceStats::new();
        std::thread::sleep(Duration::from_millis(5));
        assert!(stats.behind() >= Duration::from_millis(5));
        stats.caught_up();
        assert_eq!(stats.behind(), Duration::ZERO);
        stats.fell_behind();
        std::thread::sleep(Duration::from_millis(5));
        stats.fell_behind();
        assert!(stats.behind() >= Duration::from_millis(5));
        stats.caught_up();
        assert_eq!(stats.behind(), Duration::ZERO);
        stats.api_error("timeout");
        stats.api_error("timeout");
        stats.api_error("forbidden");
        assert_eq!(stats.api_errors(), vec![("forbidden", 1), ("timeout", 2)]);
    }
}
