//! Following one resource in one scope: list it (in pages; or, with `--initial-list stream`, by a
//! streaming list where the API server offers one), then watch from the list's
//! resourceVersion; after a break, watch again from the last version seen; list again only when
//! the API has forgotten that version (410 Gone). A list reaches the cluster state in parts as
//! it arrives (removals only at its end), a watch event as the one change it names.
//!
//! Every request has a deadline, and a watch is asked to end after [`WATCH_SECONDS`] (the API
//! server sends a bookmark just before), so a watch that brings nothing for [`WATCH_IDLE`] is a
//! server that stopped answering: it is given up and retried, and a hung API server is noticed
//! within that time. While the API is unreachable or silent, retries back off, but a cheap probe
//! every few seconds ends the wait as soon as it answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::http;
use hyper::http::HeaderValue;
use kube::Client;
use kube::client::Body;
use kube::core::Request;
use kube::core::params::{ListParams, WatchParams};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKey, ObjectKind};
use crate::source::kube::decode::{Identity, IdentityMeta, Status, Undecodable, WatchLine};
use crate::source::kube::faults::{Backoff, Cause, Fault, Outages, chain, shorten};
use crate::source::kube::kinds::{self, Decoded};
use crate::source::kube::protobuf;
use crate::source::kube::protobuf::frames::FrameSplitter;
use crate::source::kube::split::{Encoding, ListBody};
use crate::source::stats::SourceStats;

/// Objects per list page: large pages make the first sync of a big cluster fast.
const PAGE_SIZE: u32 = 5000;
/// How long a request may take to be answered (its status and headers).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one list page may take to arrive whole.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The server ends each watch after this long, sending a bookmark two seconds before.
pub(super) const WATCH_SECONDS: u32 = 20;
/// The longest a streaming list may take to bring its state.
const STREAM_SECONDS: u32 = 600;
/// A watch that brings nothing (no event, no bookmark, no end) for this long is given up.
pub(super) const WATCH_IDLE: Duration = Duration::from_secs(25);
/// While the API is unreachable or silent, it is probed this often during the backoff.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// The longest watch line taken: an object larger than this is not a Service, Pod or slice.
const MAX_LINE: usize = 64 << 20;
/// Undecodable objects named per minute and watch; the rest are counted.
const SKIPS_NAMED: u32 = 5;

/// What every watch of one API server shares.
pub(crate) struct Source {
    pub client: Client,
    pub events: mpsc::Sender<ClusterEvent>,
    pub outages: Outages,
    pub stats: Arc<SourceStats>,
    /// Watches still owing their first complete list.
    pending_first_lists: AtomicUsize,
    /// Whether the first complete state has been delivered.
    synced: AtomicBool,
    /// Lists and watches ask for protobuf.
    protobuf: bool,
    /// A resource's state is first had by a streaming list; cleared once the API server
    /// refuses one.
    stream_lists: AtomicBool,
    /// The watches nobody asked for that the API refused for want of permission, said once.
    refused_optional: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Source {
    pub(crate) fn new(
        client: Client,
        events: mpsc::Sender<ClusterEvent>,
        watches: usize,
        stats: Arc<SourceStats>,
        protobuf: bool,
        stream_lists: bool,
    ) -> Self {
        Self {
            client,
            events,
            outages: Outages::new(),
            stats,
            pending_first_lists: AtomicUsize::new(watches),
            synced: AtomicBool::new(false),
            protobuf,
            stream_lists: AtomicBool::new(stream_lists),
            refused_optional: Default::default(),
        }
    }

    fn streams_lists(&self) -> bool {
        self.stream_lists.load(Ordering::Relaxed)
    }

    fn stop_streaming_lists(&self) {
        self.stream_lists.store(false, Ordering::Relaxed);
    }

    /// `watch` listed, or had a watch request accepted: an outage may end with it.
    fn answered_again(&self, watch: &str) {
        self.refused_optional
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(watch);
        self.outages.succeeded(watch);
        if self.serving() && !self.outages.ongoing() {
            self.stats.caught_up();
        }
    }

    /// One more watch has listed once; the last one declares the state complete, after its
    /// own resync, so readers never see a partial first state as complete.
    async fn listed_first_time(&self) {
        if self.pending_first_lists.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.events.send(ClusterEvent::Synced).await;
            self.synced.store(true, Ordering::Release);
            if !self.outages.ongoing() {
                self.stats.caught_up();
            }
        }
    }

    fn serving(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Whether the API server answers at all (`/version` is open to every account).
    async fn answers(&self) -> bool {
        let Ok(request) = http::Request::get("/version").body(Vec::new()) else {
            return false;
        };
        let probe = self.client.send(request.map(Body::from));
        matches!(tokio::time::timeout(PROBE_EVERY, probe).await, Ok(Ok(response)) if response.status().is_success())
    }
}

/// One resource in one scope, as watched.
pub(super) struct Watched {
    pub kind: ObjectKind,
    /// The namespace watched; `None`: all.
    pub scope: Option<Arc<str>>,
    pub label_selector: Option<String>,
}

impl Watched {
    /// Whether the first complete state waits for its first list: for the core kinds, not for
    /// the Multi-Cluster Services ones, which come with a CRD nobody turned on.
    pub(super) fn owes_first_state(&self) -> bool {
        ObjectKind::CORE.contains(&self.kind)
    }

    /// For logs: `pods`, or `pods in team-a`.
    fn name(&self) -> String {
        let plural = match self.kind {
            ObjectKind::ImportSlice => "imported endpointslices",
            kind => kinds::plural(kind),
        };
        match &self.scope {
            Some(ns) => format!("{plural} in {ns}"),
            None => plural.to_string(),
        }
    }

    /// For a 403: what the account must be allowed, e.g. `list pods (cluster scope)`.
    fn permission(&self, verb: &str) -> String {
        let resource = kinds::resource(self.kind);
        match &self.scope {
            Some(ns) if self.kind != ObjectKind::Namespace => {
                format!("{verb} {resource} in namespace {ns}")
            }
            _ => format!("{verb} {resource} (cluster scope)"),
        }
    }

    fn request(&self) -> Request {
        let namespace = self
            .scope
            .as_deref()
            .filter(|_| self.kind != ObjectKind::Namespace);
        Request::new(kinds::url_path(self.kind, namespace))
    }
}

/// What one line of a watch stream means.
#[derive(Debug)]
pub enum Line {
    /// A change to apply; the stream is then at `version`.
    Change {
        event: ClusterEvent,
        version: Option<String>,
    },
    /// Nothing changed; the stream is at this version.
    Bookmark(Option<String>),
    /// The bookmark that ends a streaming list's initial events: the state so far is complete,
    /// at this version.
    InitialEventsEnd(Option<String>),
    /// 410: the version watched from is gone.
    Expired,
    Failed(Fault),
    /// An object DNS cannot read or use: named, and removed from the state when it can be told
    /// which it was (a re-list would leave it out as well).
    Skipped {
        object: String,
        error: String,
        remove: Option<ClusterEvent>,
        version: Option<String>,
    },
    /// An event type this server does not know.
    Ignored,
}

/// Reads one line of a watch stream of `kind`; `attempt` names the watch for a failure.
pub fn read_line(kind: ObjectKind, line: &str, attempt: &str) -> Line {
    let Ok(event) = serde_json::from_str::<WatchLine>(line) else {
        return Line::Failed(Fault::Rejected {
            code: 200,
            message: format!("{attempt}: a line that is not an event: {}", shorten(line)),
        });
    };
    let raw = event.object;
    let change = |deleted| {
        change(kind, kinds::decode(kind, raw), deleted, || {
            Identity::of(raw).metadata
        })
    };
    match event.kind.as_ref() {
        "ADDED" | "MODIFIED" => change(false),
        "DELETED" => change(true),
        "BOOKMARK" => bookmark(Identity::of(raw).metadata),
        "ERROR" => {
            let status: Status = serde_json::from_str(raw.get()).unwrap_or_default();
            match status.code {
                410 => Line::Expired,
                code => Line::Failed(Fault::from_status(code, raw.get(), attempt)),
            }
        }
        _ => Line::Ignored,
    }
}

/// Reads one frame of a protobuf watch stream of `kind`, as [`read_line`] reads a JSON line.
pub fn read_frame(kind: ObjectKind, frame: &[u8], attempt: &str) -> Line {
    let event = match protobuf::frames::watch_event(frame) {
        Ok(event) => event,
        Err(error) => {
            return Line::Failed(Fault::Rejected {
                code: 200,
                message: format!("{attempt}: a frame that is not an event: {error}"),
            });
        }
    };
    let object = event.object;
    let identity = || protobuf::objects::identity(object);
    let change = |deleted| {
        change(
            kind,
            kinds::decode_protobuf(kind, object),
            deleted,
            identity,
        )
    };
    match event.kind {
        "ADDED" | "MODIFIED" => change(false),
        "DELETED" => change(true),
        "BOOKMARK" => bookmark(identity()),
        "ERROR" => match protobuf::objects::status(object) {
            (410, _) => Line::Expired,
            (code, message) => Line::Failed(Fault::from_status(code, &message, attempt)),
        },
        _ => Line::Ignored,
    }
}

fn bookmark(meta: IdentityMeta) -> Line {
    if meta.ends_initial_events() {
        Line::InitialEventsEnd(meta.resource_version)
    } else {
        Line::Bookmark(meta.resource_version)
    }
}

/// The change an ADDED, MODIFIED or DELETED event makes, given its object as decoded and, for
/// one that did not decode, what can be read of its identity.
fn change(
    kind: ObjectKind,
    decoded: Result<Decoded, Undecodable>,
    deleted: bool,
    identity: impl FnOnce() -> IdentityMeta,
) -> Line {
    match decoded {
        Ok(Decoded {
            record,
            key,
            version,
        }) => match record {
            Ok(Some(record)) if !deleted => Line::Change {
                event: ClusterEvent::Upsert(record),
                version,
            },
            // Gone, or an object DNS does not use (any more): it must not keep old answers.
            Ok(_) => Line::Change {
                event: ClusterEvent::Delete(kind, key),
                version,
            },
            Err(error) if key.name.is_empty() => Line::Skipped {
                object: "(unnamed)".into(),
                error: error.to_string(),
                remove: None,
                version,
            },
            Err(error) => Line::Skipped {
                object: key.to_string(),
                error: error.to_string(),
                remove: Some(ClusterEvent::Delete(kind, key)),
                version,
            },
        },
        Err(undecodable) => {
            let identity = identity();
            let remove = identity.name.map(|name| {
                let key = match kind {
                    ObjectKind::Namespace => ObjectKey::of_namespace(&Arc::from(name)),
                    _ => ObjectKey::new(identity.namespace.as_deref().unwrap_or("default"), &name),
                };
                ClusterEvent::Delete(kind, key)
            });
            Line::Skipped {
                object: undecodable.object,
                error: undecodable.error,
                remove,
                version: identity.resource_version,
            }
        }
    }
}

/// How a watch ended.
enum WatchEnd {
    /// The server closed it, as asked: watch again from the last version.
    Closed,
    /// 410: the version is gone; list again.
    Expired,
    /// A streaming list was refused as a request the API server does not know.
    Unsupported,
    Failed(Fault),
    /// The cluster state is gone: stop.
    Stopped,
}

/// Follows `watched` until the cluster state stops listening.
pub(super) async fn follow(source: Arc<Source>, watched: Watched) {
    let name = watched.name();
    let mut backoff = Backoff::new();
    let mut skips = SkipLog::new(&name);
    let mut listed_once = false;
    let mut version: Option<String> = None;
    loop {
        let freshness = if listed_once {
            Freshness::Current
        } else {
            Freshness::Any
        };
        // Without a version to watch from, the state is had whole first: by a streaming list
        // (a watch whose initial events are the state) where the API server offers it, else by
        // a list.
        let mut initial = None;
        let mut at = match version.take() {
            Some(version) => version,
            None if source.streams_lists() => {
                initial = Some(Initial {
                    parts: Parts::new(&source, &watched),
                    listed_once: &mut listed_once,
                });
                freshness.stream_version().to_string()
            }
            None => match list(&source, &watched, freshness, &mut skips, &mut listed_once).await {
                Ok(Some(version)) => {
                    backoff.reset();
                    version
                }
                Ok(None) => return,
                Err(fault) => {
                    if !wait(&source, &watched, &fault, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let streaming = initial.is_some();
        let asked = at.clone();
        let end = watch(
            &source,
            &watched,
            &mut at,
            &mut backoff,
            &mut skips,
            &mut initial,
        )
        .await;
        // A streaming list that broke off removes nothing.
        if let Some(initial) = initial
            && !initial.parts.end(false).await
        {
            return;
        }
        if !matches!(end, WatchEnd::Stopped) {
            SourceStats::count(&source.stats.watch_restarts);
        }
        // A streaming list that ended before its state was complete leaves nothing to watch from.
        let complete = !streaming || at != asked;
        match end {
            WatchEnd::Closed if complete => version = Some(at),
            WatchEnd::Closed | WatchEnd::Unsupported => {
                info!(watch = %name, "the API server does not stream lists; listing instead");
                source.stop_streaming_lists();
            }
            WatchEnd::Expired => debug!(watch = %name, "resourceVersion expired; listing again"),
            WatchEnd::Failed(fault) => {
                version = complete.then_some(at);
                if !wait(&source, &watched, &fault, &mut backoff).await {
                    return;
                }
            }
            WatchEnd::Stopped => return,
        }
    }
}

/// A streaming list under way: its initial events so far, handed on in parts.
struct Initial<'a> {
    parts: Parts<'a>,
    listed_once: &'a mut bool,
}

/// Objects per part of a list handed to the cluster state: a large list is never held whole
/// (at 100,000 pods the whole list's records took 17 MB beside the state they replace).
const PART: usize = 1000;

/// A list of `watched` handed to the cluster state in parts as it arrives
/// ([`ClusterEvent::ResyncBegin`], `ResyncObjects`, `ResyncEnd`).
struct Parts<'a> {
    source: &'a Source,
    watched: &'a Watched,
    batch: Vec<ClusterObject>,
    count: usize,
    begun: bool,
}

impl<'a> Parts<'a> {
    fn new(source: &'a Source, watched: &'a Watched) -> Self {
        Self {
            source,
            watched,
            batch: Vec::new(),
            count: 0,
            begun: false,
        }
    }

    fn push(&mut self, object: ClusterObject) {
        self.count += 1;
        self.batch.push(object);
    }

    /// Hands on the objects gathered once there are a part's worth (`all`: whatever there
    /// is); `false`: the cluster state is gone.
    async fn send(&mut self, all: bool) -> bool {
        let (kind, namespace) = (self.watched.kind, self.watched.scope.clone());
        if !self.begun {
            self.begun = true;
            let begin = ClusterEvent::ResyncBegin {
                kind,
                namespace: namespace.clone(),
            };
            if self.source.events.send(begin).await.is_err() {
                return false;
            }
        }
        let due = self.batch.len() >= PART || all && !self.batch.is_empty();
        if !due {
            return true;
        }
        let objects = std::mem::take(&mut self.batch);
        let part = ClusterEvent::ResyncObjects {
            kind,
            namespace,
            objects,
        };
        self.source.events.send(part).await.is_ok()
    }

    /// Ends the list: complete (whatever it lacked is gone), or broken off (nothing removed).
    /// `false`: the cluster state is gone.
    async fn end(mut self, complete: bool) -> bool {
        if !self.begun && !complete {
            return true;
        }
        if !self.send(true).await {
            return false;
        }
        let end = ClusterEvent::ResyncEnd {
            kind: self.watched.kind,
            namespace: self.watched.scope.clone(),
            complete,
        };
        self.source.events.send(end).await.is_ok()
    }
}

/// Ends a complete list of `watched` of `count` objects, and counts it; `false`: the cluster
/// state is gone.
async fn finish_list(parts: Parts<'_>, encoding: Encoding, listed_once: &mut bool) -> bool {
    let (source, watched, count) = (parts.source, parts.watched, parts.count);
    let name = watched.name();
    if !parts.end(true).await {
        return false;
    }
    debug!(watch = %name, objects = count, ?encoding, "listed");
    if encoding == Encoding::Protobuf {
        SourceStats::count(&source.stats.protobuf_lists);
    }
    SourceStats::count(&source.stats.lists);
    if *listed_once {
        SourceStats::count(&source.stats.relists);
    } else {
        *listed_once = true;
        if watched.owes_first_state() {
            source.listed_first_time().await;
        }
    }
    source.answered_again(&name);
    true
}

/// Reports `fault` and waits out the backoff; a probe may end the wait early when the fault
/// was the connection's. `false`: the cluster state is gone.
async fn wait(source: &Source, watched: &Watched, fault: &Fault, backoff: &mut Backoff) -> bool {
    let name = &watched.name();
    if !watched.owes_first_state() && fault.cause() == Cause::Forbidden {
        return wait_for_permission(source, name, fault).await;
    }
    source.outages.failed(name, fault, source.serving());
    source.stats.api_error(fault.cause().name());
    source.stats.fell_behind();
    let delay = backoff.next_delay();
    let deadline = Instant::now() + delay;
    while !source.events.is_closed() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        if !fault.is_connectivity() {
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            continue;
        }
        tokio::time::sleep(left.min(PROBE_EVERY)).await;
        if Instant::now() < deadline && source.answers().await {
            debug!(watch = %name, "the API server answers again; retrying now");
            return true;
        }
    }
    false
}

/// How often a watch nobody asked for asks again once the API refused it.
const PERMISSION_RECHECK: Duration = Duration::from_secs(60);

/// A watch the first state does not wait for (the Multi-Cluster Services kinds, which come with
/// a CRD) refused for want of permission: no outage, as nobody asked for it — the account may
/// simply not be meant to read it. Said once per refusal, then asked again every minute, so that
/// a permission granted later is taken up. `false`: the cluster state is gone.
async fn wait_for_permission(source: &Source, name: &str, fault: &Fault) -> bool {
    if source
        .refused_optional
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_string())
    {
        warn!(
            watch = %name,
            "Kubernetes API {fault}; what it would add is not answered (everything else is); \
             asking again every minute"
        );
    }
    tokio::select! {
        () = tokio::time::sleep(PERMISSION_RECHECK) => true,
        () = source.events.closed() => false,
    }
}

/// Sends `request`; the response if its status is a success, else the fault it means.
async fn send(
    client: &Client,
    request: http::Request<Vec<u8>>,
    attempt: &str,
) -> Result<http::Response<Body>, Fault> {
    let response =
        match tokio::time::timeout(REQUEST_TIMEOUT, client.send(request.map(Body::from))).await {
            Err(_) => {
                return Err(Fault::Timeout(format!(
                    "no answer within {}s to {attempt}",
                    REQUEST_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(error)) => return Err(client_fault(&error)),
            Ok(Ok(response)) => response,
        };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    // An error's body is a short metav1.Status (in protobuf, if that was asked for); read at
    // most a little of it.
    let encoding = Encoding::of(&response);
    let body = http_body_util::Limited::new(response.into_body(), 64 << 10);
    let text = match tokio::time::timeout(REQUEST_TIMEOUT, body.collect()).await {
        Ok(Ok(body)) => match encoding {
            Encoding::Json => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            Encoding::Protobuf => protobuf::objects::status_message(&body.to_bytes()),
        },
        _ => String::new(),
    };
    Err(Fault::from_status(status.as_u16(), &text, attempt))
}

/// The fault a client error means: the credentials could not be had, or no answer came.
fn client_fault(error: &kube::Error) -> Fault {
    let text = chain(error);
    match error {
        kube::Error::Auth(_) => Fault::Unauthorized(shorten(&text)),
        _ => Fault::Unreachable(shorten(&text)),
    }
}

/// Which state a list must reflect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freshness {
    /// Any recent state: the first list, which the API server answers from its watch cache
    /// (`resourceVersion=0`, as client-go's reflectors list) — no etcd read, and for 10,000 pods
    /// 0.5 s instead of 0.9 s. The watch from its version brings whatever came after.
    Any,
    /// The current state, read from etcd: after a watch met 410, the cache may be older than
    /// what was already served.
    Current,
}

impl Freshness {
    /// The `resourceVersion` a streaming list asks for: `0` for any recent state (the watch
    /// cache's), none for the current one (a consistent read).
    fn stream_version(self) -> &'static str {
        match self {
            Freshness::Any => "0",
            Freshness::Current => "",
        }
    }
}

/// Lists every object of `watched`, page by page, each page decoded while it arrives and its
/// records handed to the cluster state in parts; returns the version to watch from (`None`:
/// the cluster state is gone). A list that fails part way removes nothing.
async fn list(
    source: &Source,
    watched: &Watched,
    freshness: Freshness,
    skips: &mut SkipLog,
    listed_once: &mut bool,
) -> Result<Option<String>, Fault> {
    let mut parts = Parts::new(source, watched);
    match list_pages(&mut parts, freshness, skips).await {
        Ok(Some((version, encoding))) => Ok(finish_list(parts, encoding, listed_once)
            .await
            .then_some(version)),
        Ok(None) => Ok(None),
        Err(fault) => {
            if parts.end(false).await {
                Err(fault)
            } else {
                Ok(None)
            }
        }
    }
}

/// The pages of a list, their records handed on to `parts`; the version and encoding of the
/// last page (`None`: the cluster state is gone).
async fn list_pages(
    parts: &mut Parts<'_>,
    freshness: Freshness,
    skips: &mut SkipLog,
) -> Result<Option<(String, Encoding)>, Fault> {
    let (source, watched) = (parts.source, parts.watched);
    let attempt = watched.permission("list");
    let mut continue_token = None;
    let mut paged = true;
    loop {
        let params = ListParams {
            label_selector: watched.label_selector.clone(),
            limit: paged.then_some(PAGE_SIZE),
            continue_token: continue_token.take(),
            ..ListParams::default()
        };
        let mut request = watched
            .request()
            .list(&params)
            .map_err(|e| Fault::Rejected {
                code: 0,
                message: e.to_string(),
            })?;
        if freshness == Freshness::Any && params.continue_token.is_none() {
            // kube's ListParams drops resourceVersion=0 beside a limit; the limit stays for an
            // API server without a watch cache, which then pages through etcd (as client-go's
            // reflector asks: both).
            let uri = request.uri().to_string();
            let separator = if uri.contains('?') { '&' } else { '?' };
            if let Ok(uri) = format!("{uri}{separator}resourceVersion=0").parse() {
                *request.uri_mut() = uri;
            }
        }
        if source.protobuf {
            request.headers_mut().insert(
                http::header::ACCEPT,
                HeaderValue::from_static(protobuf::ACCEPT),
            );
        }
        let response = match send(&source.client, request, &attempt).await {
            // The continue token outlived etcd's history (compacted while paging, as client-go's
            // pager meets it too): the whole list again, in one response. The parts already
            // handed on stay; what the new list lacks goes at its end.
            Err(Fault::Rejected { code: 410, .. }) if params.continue_token.is_some() => {
                debug!(watch = %watched.name(), "the list's continue token expired; listing whole");
                paged = false;
                continue;
            }
            response => response?,
        };
        let not_a_list = |e: &dyn std::fmt::Display| Fault::Rejected {
            code: 200,
            message: format!("the answer to {attempt} is not a list: {e}"),
        };
        let encoding = Encoding::of(&response);
        let mut body = response.into_body();
        let mut splitter = ListBody::new(encoding);
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    return Err(Fault::Unreachable(format!(
                        "the answer to {attempt} broke off: {error}"
                    )));
                }
                Err(_) => {
                    return Err(Fault::Timeout(format!(
                        "{attempt}: a page took longer than {}s",
                        PAGE_TIMEOUT.as_secs()
                    )));
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            splitter
                .feed(&data, |item| match encoding.decode(watched.kind, item) {
                    Ok(Decoded {
                        record: Ok(record), ..
                    }) => {
                        if let Some(record) = record {
                            parts.push(record);
                        }
                    }
                    Ok(Decoded {
                        record: Err(error),
                        key,
                        ..
                    }) => skips.skip(&key.to_string(), &error.to_string()),
                    Err(undecodable) => skips.skip(&undecodable.object, &undecodable.error),
                })
                .map_err(|e| not_a_list(&e))?;
            if !parts.send(false).await {
                return Ok(None);
            }
        }
        let page = splitter.finish().map_err(|e| not_a_list(&e))?;
        match page.continue_token.filter(|t| !t.is_empty()) {
            Some(token) => continue_token = Some(token),
            None => {
                let version = page.resource_version.unwrap_or_default();
                skips.flush();
                return Ok(Some((version, encoding)));
            }
        }
    }
}

/// Watches `watched` from `version`, applying each event, until the watch ends; `version`
/// follows the events. With `initial`, the watch is a streaming list: its first events are
/// the state, gathered and handed on as one resync when the bookmark that ends them arrives.
async fn watch(
    source: &Source,
    watched: &Watched,
    version: &mut String,
    backoff: &mut Backoff,
    skips: &mut SkipLog,
    initial: &mut Option<Initial<'_>>,
) -> WatchEnd {
    let name = &watched.name();
    let params = WatchParams {
        label_selector: watched.label_selector.clone(),
        // A streaming list ends once its state is in (see below); until then its events flow
        // without pause, so only its length is bounded.
        timeout: Some(if initial.is_some() {
            STREAM_SECONDS
        } else {
            WATCH_SECONDS
        }),
        bookmarks: true,
        send_initial_events: initial.is_some(),
        ..WatchParams::default()
    };
    let mut request = match watched.request().watch(&params, version) {
        Ok(request) => request,
        Err(error) => {
            return WatchEnd::Failed(Fault::Rejected {
                code: 0,
                message: error.to_string(),
            });
        }
    };
    if source.protobuf {
        request.headers_mut().insert(
            http::header::ACCEPT,
            HeaderValue::from_static(protobuf::ACCEPT),
        );
    }
    let attempt = watched.permission("watch");
    let response = match send(&source.client, request, &attempt).await {
        Ok(response) => response,
        Err(Fault::Rejected { code: 410, .. }) => return WatchEnd::Expired,
        // A server without streaming lists refuses the parameters as invalid (422), or as a
        // bad request (400) where it does not know them at all.
        Err(Fault::Rejected {
            code: 400 | 422, ..
        }) if initial.is_some() => return WatchEnd::Unsupported,
        Err(fault) => return WatchEnd::Failed(fault),
    };
    // An accepted watch is the API answering us again; the backoff starts afresh only once the
    // watch has brought something (a server that accepts and drops each watch stays backed off).
    source.answered_again(name);
    let encoding = Encoding::of(&response);
    let mut lines = Messages::new(response.into_body(), encoding);
    let mut proven = false;
    loop {
        let line = match tokio::time::timeout(WATCH_IDLE, lines.next()).await {
            Err(_) => {
                return WatchEnd::Failed(Fault::Timeout(format!(
                    "nothing on the {name} watch for {}s, not even a bookmark",
                    WATCH_IDLE.as_secs()
                )));
            }
            Ok(None) => return WatchEnd::Closed,
            Ok(Some(Err(error))) => {
                return WatchEnd::Failed(Fault::Unreachable(format!(
                    "the {name} watch broke off: {error}"
                )));
            }
            Ok(Some(Ok(line))) => line,
        };
        if !proven {
            proven = true;
            backoff.reset();
        }
        let line = match line {
            Message::Line(line) => read_line(watched.kind, &line, &attempt),
            Message::Frame(frame) => read_frame(watched.kind, &frame, &attempt),
        };
        let (change, at) = match line {
            Line::Change {
                event: ClusterEvent::Upsert(object),
                version,
            } if initial.is_some() => {
                if let Some(initial) = initial.as_mut() {
                    initial.parts.push(object);
                    if !initial.parts.send(false).await {
                        return WatchEnd::Stopped;
                    }
                }
                (None, version)
            }
            Line::InitialEventsEnd(at) if initial.is_some() => {
                let Some(Initial { parts, listed_once }) = initial.take() else {
                    continue;
                };
                skips.flush();
                SourceStats::count(&source.stats.streamed_lists);
                if !finish_list(parts, encoding, listed_once).await {
                    return WatchEnd::Stopped;
                }
                // The state is in: on from its version with an ordinary watch, which the server
                // ends every WATCH_SECONDS with a bookmark, as the idle limit expects.
                if let Some(at) = at {
                    *version = at;
                }
                return WatchEnd::Closed;
            }
            Line::Change { event, version } => (Some(event), version),
            Line::Bookmark(version) | Line::InitialEventsEnd(version) => (None, version),
            Line::Expired => return WatchEnd::Expired,
            Line::Failed(fault) => return WatchEnd::Failed(fault),
            Line::Skipped {
                object,
                error,
                remove,
                version,
            } => {
                skips.skip(&object, &error);
                (remove, version)
            }
            Line::Ignored => {
                debug!(watch = %name, "ignoring a watch event of an unknown type");
                (None, None)
            }
        };
        // During a streaming list's initial events there is no version to resume from.
        if let Some(at) = at
            && initial.is_none()
        {
            *version = at;
        }
        if let Some(change) = change
            && source.events.send(change).await.is_err()
        {
            return WatchEnd::Stopped;
        }
    }
}

/// One message of a watch stream: a JSON line, or a protobuf frame.
enum Message {
    Line(String),
    Frame(Vec<u8>),
}

/// A watch response's body, split into its messages.
struct Messages {
    body: Body,
    encoding: Encoding,
    buffer: Vec<u8>,
    frames: FrameSplitter,
}

impl Messages {
    fn new(body: Body, encoding: Encoding) -> Self {
        Self {
            body,
            encoding,
            buffer: Vec::new(),
            frames: FrameSplitter::default(),
        }
    }

    /// The next message; `None` at the end of the body.
    async fn next(&mut self) -> Option<Result<Message, String>> {
        match self.encoding {
            Encoding::Json => self.next_line().await.map(|line| line.map(Message::Line)),
            Encoding::Protobuf => self
                .next_frame()
                .await
                .map(|frame| frame.map(Message::Frame)),
        }
    }

    /// The next non-empty line; `None` at the end of the body.
    async fn next_line(&mut self) -> Option<Result<String, String>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).trim().to_string();
                if line.is_empty() {
                    continue;
                }
                return Some(Ok(line));
            }
            if self.buffer.len() > MAX_LINE {
                return Some(Err(format!("a line longer than {MAX_LINE} bytes")));
            }
            match self.body.frame().await {
                None => {
                    let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buffer))
                        .trim()
                        .to_string();
                    return (!rest.is_empty()).then_some(Ok(rest));
                }
                Some(Err(error)) => return Some(Err(error.to_string())),
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.buffer.extend_from_slice(data);
                    }
                }
            }
        }
    }

    /// The next protobuf frame; `None` at the end of the body.
    async fn next_frame(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            match self.frames.next_frame(MAX_LINE) {
                Ok(Some(frame)) => return Some(Ok(frame)),
                Ok(None) => {}
                Err(error) => return Some(Err(error.to_string())),
            }
            match self.body.frame().await {
                None if self.frames.unfinished() == 0 => return None,
                None => return Some(Err("the stream ended inside a frame".into())),
                Some(Err(error)) => return Some(Err(error.to_string())),
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.frames.push(data);
                    }
                }
            }
        }
    }
}

/// Objects skipped because DNS cannot read or use them: the first few a minute are named, the
/// rest counted, so a list of 100k broken objects cannot flood the log.
struct SkipLog {
    watch: String,
    named: u32,
    unnamed: u64,
    window: Instant,
}

impl SkipLog {
    fn new(watch: &str) -> Self {
        Self {
            watch: watch.to_string(),
            named: 0,
            unnamed: 0,
            window: Instant::now(),
        }
    }

    fn skip(&mut self, object: &str, error: &str) {
        if self.window.elapsed() >= Duration::from_secs(60) {
            self.flush();
            self.named = 0;
            self.window = Instant::now();
        }
        if self.named < SKIPS_NAMED {
            self.named += 1;
            warn!(watch = %self.watch, object, error, "skipping an object DNS cannot read or use");
        } else {
            self.unnamed += 1;
        }
    }

    /// Says how many were skipped without being named.
    fn flush(&mut self) {
        if self.unnamed > 0 {
            warn!(watch = %self.watch, skipped = self.unnamed, "skipped more objects DNS cannot read or use");
            self.unnamed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of line a watch stream may bring, and what it means.
    #[test]
    fn watch_lines_are_read_one_by_one() {
        let pod = |kind: &str, status: &str| {
            format!(
                r#"{{"type":"{kind}","object":{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web-0","namespace":"a","resourceVersion":"7"}},"status":{status}}}}}"#
            )
        };
        let read = |line: &str| read_line(ObjectKind::Pod, line, "watch pods (cluster scope)");
        let good = r#"{"podIP":"10.0.0.1","conditions":[{"type":"Ready","status":"True"}]}"#;
        match read(&pod("ADDED", good)) {
            Line::Change {
                event: ClusterEvent::Upsert(object),
                version,
            } => {
                assert_eq!((object.name(), version.as_deref()), ("web-0", Some("7")));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(&pod("DELETED", good)),
            Line::Change { event: ClusterEvent::Delete(ObjectKind::Pod, key), .. } if key.to_string() == "a/web-0"
        ));
        // Readable but unusable: named, and removed.
        match read(&pod("MODIFIED", r#"{"podIP":"10.0.0.300"}"#)) {
            Line::Skipped {
                object,
                error,
                remove: Some(ClusterEvent::Delete(..)),
                version,
            } => {
                assert_eq!(object, "a/web-0");
                assert_eq!(error, "status.podIP: \"10.0.0.300\" is not an IP address");
                assert_eq!(version.as_deref(), Some("7"));
            }
            other => panic!("{other:?}"),
        }
        // Unreadable: named with its field, and removed by the name it carries.
        match read(&pod("MODIFIED", r#"{"podIPs":"10.0.0.1"}"#)) {
            Line::Skipped {
                object,
                error,
                remove: Some(_),
                version,
            } => {
                assert_eq!(object, "a/web-0");
                assert!(error.starts_with("status.podIPs: invalid type"), "{error}");
                assert_eq!(version.as_deref(), Some("7"));
            }
            other => panic!("{other:?}"),
        }
        let bookmark = r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"99"}}}"#;
        assert!(matches!(read(bookmark), Line::Bookmark(Some(v)) if v == "99"));
        let end = r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"100","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        assert!(matches!(read(end), Line::InitialEventsEnd(Some(v)) if v == "100"));
        let expired =
            r#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}"#;
        assert!(matches!(read(expired), Line::Expired));
        let failed =
            r#"{"type":"ERROR","object":{"kind":"Status","code":500,"message":"etcd down"}}"#;
        assert!(matches!(
            read(failed),
            Line::Failed(Fault::ServerError { code: 500, .. })
        ));
        assert!(matches!(
            read(r#"{"type":"SOMETHING","object":{}}"#),
            Line::Ignored
        ));
        assert!(matches!(
            read("not json at all"),
            Line::Failed(Fault::Rejected { .. })
        ));
        assert!(matches!(
            read(r#"{"type":"ADDED","object":[]}"#),
            Line::Skipped { remove: None, .. }
        ));
    }
}
