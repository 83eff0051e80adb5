//! What goes wrong between us and the API server, and how it is reported and waited out: each
//! failure is classified by cause; an outage (from the first failure of any watch until every
//! failing watch has had a list or a watch request answered again) gets one WARN naming the
//! cause, then at most a reminder a minute, and `recovered` only once the API has really
//! answered — a connection alone is not enough; retries back off exponentially with jitter.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// Why a request to the API failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No connection: refused, reset, DNS, TLS.
    Unreachable(String),
    /// The server took too long: to answer a request, or to send anything on a watch.
    Timeout(String),
    /// 401: the credentials were refused.
    Unauthorized(String),
    /// 403: the account lacks a permission; `missing` says which (`list pods (cluster scope)`).
    Forbidden { missing: String, message: String },
    /// 5xx.
    ServerError { code: u16, message: String },
    /// Any other answer we cannot use (a 4xx, a body that is not what was asked for).
    Rejected { code: u16, message: String },
}

/// The kinds of [`Fault`], for counting and for the log's `cause` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Cause {
    Unreachable,
    Timeout,
    Unauthorized,
    Forbidden,
    ServerError,
    Rejected,
}

impl Cause {
    pub(crate) const ALL: [Cause; 6] = [
        Cause::Unreachable,
        Cause::Timeout,
        Cause::Unauthorized,
        Cause::Forbidden,
        Cause::ServerError,
        Cause::Rejected,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Cause::Unreachable => "unreachable",
            Cause::Timeout => "timeout",
            Cause::Unauthorized => "unauthorized",
            Cause::Forbidden => "forbidden",
            Cause::ServerError => "server_error",
            Cause::Rejected => "rejected",
        }
    }
}

impl Fault {
    pub(crate) fn cause(&self) -> Cause {
        match self {
            Fault::Unreachable(_) => Cause::Unreachable,
            Fault::Timeout(_) => Cause::Timeout,
            Fault::Unauthorized(_) => Cause::Unauthorized,
            Fault::Forbidden { .. } => Cause::Forbidden,
            Fault::ServerError { .. } => Cause::ServerError,
            Fault::Rejected { .. } => Cause::Rejected,
        }
    }

    /// Whether the server may be answering again without us knowing: worth a cheap probe while
    /// waiting, rather than the whole backoff (a refusal would only be refused again).
    pub(crate) fn is_connectivity(&self) -> bool {
        matches!(self, Fault::Unreachable(_) | Fault::Timeout(_))
    }

    /// The fault an HTTP status and its body (a `metav1.Status`, usually) mean; `attempt`
    /// names what was asked, as in `list pods (cluster scope)`.
    pub(crate) fn from_status(code: u16, body: &str, attempt: &str) -> Fault {
        let message = status_message(body);
        match code {
            401 => Fault::Unauthorized(message),
            403 => Fault::Forbidden {
                missing: attempt.to_string(),
                message,
            },
            500..=599 => Fault::ServerError { code, message },
            _ => Fault::Rejected { code, message },
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Unreachable(detail) => write!(f, "unreachable: {detail}"),
            Fault::Timeout(detail) => write!(f, "timeout: {detail}"),
            Fault::Unauthorized(message) => {
                write!(
                    f,
                    "401 Unauthorized: the credentials were refused ({message})"
                )
            }
            Fault::Forbidden { missing, message } => {
                write!(
                    f,
                    "403 Forbidden: missing permission to {missing} ({message})"
                )
            }
            Fault::ServerError { code, message } => write!(f, "server error {code}: {message}"),
            Fault::Rejected { code, message } => write!(f, "rejected with {code}: {message}"),
        }
    }
}

/// The `message` of a `metav1.Status` body, or the start of whatever else the body is: never a
/// whole body, which may be megabytes.
fn status_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Status {
        message: Option<String>,
    }
    match serde_json::from_str::<Status>(body) {
        Ok(Status {
            message: Some(message),
        }) => shorten(&message),
        _ => shorten(body.trim()),
    }
}

/// At most 300 characters of `text`, on one line.
pub(crate) fn shorten(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// Retry delays: about 1 s doubling to 30 s, each ±25% (so that many servers restarted together
/// do not all come back in step), until [`Backoff::reset`].
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: u32,
}

pub(crate) const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(30);

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { failures: 0 }
    }

    /// The wait before the next attempt after one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = BACKOFF_FIRST
            .saturating_mul(1 << self.failures.min(5))
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        base.mul_f64(0.75 + 0.5 * jitter()).min(BACKOFF_MAX)
    }

    /// After a successful list: the next failure starts from the first delay again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// A number in [0, 1), different at each call: good enough to spread retries, no crate needed.
fn jitter() -> f64 {
    static SEED: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let bits = SEED.get_or_init(RandomState::new).hash_one(call);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// One watch (a resource in a scope), as the outage log tells them apart.
pub(crate) type WatchName = String;

/// The outage log shared by every watch of one API server.
pub(crate) struct Outages {
    state: Mutex<Option<Outage>>,
    /// Failures by cause since start, for the metrics.
    counts: HashMap<Cause, AtomicU64>,
}

struct Outage {
    started: Instant,
    last_said: Instant,
    /// The watches failing now, with their latest fault.
    failing: HashMap<WatchName, Fault>,
    failures: u64,
}

/// How often an ongoing outage is mentioned again.
pub(crate) const REMINDER: Duration = Duration::from_secs(60);

impl Outages {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(None),
            counts: Cause::ALL
                .into_iter()
                .map(|c| (c, AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Failures with `cause` so far.
    #[cfg(test)]
    fn count(&self, cause: Cause) -> u64 {
        self.counts[&cause].load(Ordering::Relaxed)
    }

    /// Records a failure of `watch`. `serving` says whether a complete state is being served
    /// (else names in the zone answer SERVFAIL).
    pub(crate) fn failed(&self, watch: &str, fault: &Fault, serving: bool) {
        self.counts[&fault.cause()].fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let consequence = if serving {
            "serving the last state"
        } else {
            "not ready: names in the zone answer SERVFAIL until the first complete list"
        };
        match &mut *state {
            None => {
                warn!(
                    cause = fault.cause().name(),
                    watch, "Kubernetes API {fault}; {consequence}; retrying with backoff"
                );
                *state = Some(Outage {
                    started: now,
                    last_said: now,
                    failing: HashMap::from([(watch.to_string(), fault.clone())]),
                    failures: 1,
                });
            }
            Some(outage) => {
                outage.failures += 1;
                outage.failing.insert(watch.to_string(), fault.clone());
                if now.duration_since(outage.last_said) >= REMINDER {
                    outage.last_said = now;
                    let mut watches: Vec<&str> =
                        outage.failing.keys().map(String::as_str).collect();
                    watches.sort_unstable();
                    warn!(
                        cause = fault.cause().name(),
                        watch,
                        failing = watches.join(", "),
                        failures = outage.failures,
                        seconds = now.duration_since(outage.started).as_secs(),
                        "Kubernetes API still failing: {fault}; {consequence}"
                    );
                }
            }
        }
    }

    /// Records that `watch` has listed, or had a watch request accepted: the API answers it
    /// again. The outage ends when no watch is failing any more.
    pub(crate) fn succeeded(&self, watch: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(outage) = &mut *state else {
            return;
        };
        outage.failing.remove(watch);
        if outage.failing.is_empty() {
            info!(
                seconds = outage.started.elapsed().as_secs(),
                failures = outage.failures,
                "Kubernetes API recovered"
            );
            *state = None;
        }
    }

    /// Whether an outage is under way.
    pub(crate) fn ongoing(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

impl Default for Outages {
    fn default() -> Self {
        Self::new()
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_thirty_seconds_with_jitter_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(
            delays[0] >= Duration::from_millis(750) && delays[0] <= Duration::from_millis(1250)
        );
        assert!(
            delays[1] >= Duration::from_millis(1500) && delays[1] <= Duration::from_millis(2500)
        );
        assert!(delays[9] >= Duration::from_millis(22_500) && delays[9] <= BACKOFF_MAX);
        // Jitter: ten draws at the cap are not all equal.
        let capped: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(capped.windows(2).any(|w| w[0] != w[1]));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1250));
    }

    #[test]
    fn statuses_are_classified_and_bodies_shortened() {
        let forbidden = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"x\" cannot list resource \"pods\"","reason":"Forbidden","code":403}"#;
        let fault = Fault::from_status(403, forbidden, "list pods (cluster scope)");
        assert_eq!(fault.cause(), Cause::Forbidden);
        assert_eq!(
            fault.to_string(),
            "403 Forbidden: missing permission to list pods (cluster scope) (pods is forbidden: \
             User \"x\" cannot list resource \"pods\")"
        );
        assert_eq!(
            Fault::from_status(401, "", "x").cause(),
            Cause::Unauthorized
        );
        assert_eq!(
            Fault::from_status(503, "busy", "x").cause(),
            Cause::ServerError
        );
        assert_eq!(Fault::from_status(404, "", "x").cause(), Cause::Rejected);
        let huge = "x".repeat(1_000_000);
        assert!(Fault::from_status(500, &huge, "x").to_string().len() < 400);
        assert!(Fault::Timeout("t".into()).is_connectivity());
        assert!(!fault.is_connectivity());
    }

    #[test]
    fn an_outage_ends_when_every_failing_watch_is_back() {
        let outages = Outages::new();
        let down = Fault::Unreachable("connection refused".into());
        outages.failed("pods", &down, true);
        outages.failed("services", &down, true);
        assert!(outages.ongoing());
        outages.succeeded("pods");
        assert!(outages.ongoing(), "services still failing");
        // A watch that never failed does not end it either.
        outages.succeeded("namespaces");
        assert!(outages.ongoing());
        outages.succeeded("services");
        assert!(!outages.ongoing());
        assert_eq!(outages.count(Cause::Unreachable), 2);
    }
}
