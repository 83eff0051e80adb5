//! How long changes take to reach the answers, for the metrics (CoreDNS's
//! `coredns_kubernetes_dns_programming_duration_seconds{service_kind}`): from a change reaching
//! the cluster state to the publication of the view that answers with it, per kind of Service
//! the change rebuilt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::records::{ServiceKind, ServiceRecord};

/// CoreDNS's `service_kind` values.
pub(crate) const KINDS: [&str; 3] = [
    "cluster_ip",
    "headless_with_selector",
    "headless_without_selector",
];

/// Bucket bounds: 10 µs doubling 20 times (to about 5 s); the last bucket is +Inf.
pub(crate) const BUCKETS: usize = 20;

/// The `KINDS` index of a Service, if it is one CoreDNS counts (not ExternalName).
pub(crate) fn kind_of(service: &ServiceRecord) -> Option<usize> {
    match (&service.kind, &service.selector) {
        (ServiceKind::ClusterIp(_), _) => Some(0),
        (ServiceKind::Headless, Some(_)) => Some(1),
        (ServiceKind::Headless, None) => Some(2),
        (ServiceKind::ExternalName(_), _) => None,
    }
}

#[derive(Debug, Default)]
pub struct ProgrammingTimes {
    counts: [[AtomicU64; BUCKETS + 1]; KINDS.len()],
    nanos: [AtomicU64; KINDS.len()],
}

impl ProgrammingTimes {
    pub fn observe(&self, kind: usize, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.counts[kind][bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        self.nanos[kind].fetch_add(nanos, Ordering::Relaxed);
    }

    /// Per-bucket counts and the sum in seconds, for `kind`.
    pub fn snapshot(&self, kind: usize) -> (Vec<u64>, f64) {
        let counts = self.counts[kind]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (
            counts,
            self.nanos[kind].load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// The upper bound of bucket `b` in seconds.
pub(crate) fn bound(b: usize) -> f64 {
    if b == BUCKETS {
        f64::INFINITY
    } else {
        (10u64 << b) as f64 / 1e6
    }
}

fn bucket(nanos: u64) -> usize {
    (0..BUCKETS)
        .find(|&b| nanos <= (10_000u64 << b))
        .unwrap_or(BUCKETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        for (nanos, b) in [
            (0, 0),
            (10_000, 0),
            (10_001, 1),
            (1_000_000, 7),
            (u64::MAX, BUCKETS),
        ] {
            assert_eq!(bucket(nanos), b, "{nanos}");
            assert!(nanos as f64 / 1e9 <= bound(b));
        }
        let times = ProgrammingTimes::default();
        times.observe(1, Duration::from_micros(15));
        times.observe(1, Duration::from_millis(2));
        let (counts, sum) = times.snapshot(1);
        assert_eq!(
            (counts[1], counts[8], counts.iter().sum::<u64>()),
            (1, 1, 2)
        );
        assert!((sum - 0.002015).abs() < 1e-9);
        assert_eq!(times.snapshot(0).0.iter().sum::<u64>(), 0);
    }
}
