//! Following one resource in one scope: list it (in pages), then watch from the list's
//! resourceVersion; after a break, watch again from the last version seen; list again only when
//! the API has forgotten that version (410 Gone). A list reaches the cluster state as one
//! resync, a watch event as the one change it names.
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
use kube::client::Body;
use kube::core::Request;
use kube::core::params::{ListParams, WatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKey, ObjectKind};
use crate::source::kube::decode::{self, Identity, ListPage, Status, WatchLine};
use crate::source::kube::faults::{Backoff, Fault, Outages, shorten};
use crate::source::objects::FieldError;

/// Objects per list page: large pages make the first sync of a big cluster fast.
const PAGE_SIZE: u32 = 5000;
/// How long a request may take to be answered (its status and headers).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one list page may take to arrive whole.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The server ends each watch after this long, sending a bookmark two seconds before.
pub const WATCH_SECONDS: u32 = 20;
/// A watch that brings nothing (no event, no bookmark, no end) for this long is given up.
pub const WATCH_IDLE: Duration = Duration::from_secs(25);
/// While the API is unreachable or silent, it is probed this often during the backoff.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// The longest watch line taken: an object larger than this is not a Service, Pod or slice.
const MAX_LINE: usize = 64 << 20;
/// Undecodable objects named per minute and watch; the rest are counted.
const SKIPS_NAMED: u32 = 5;

/// What every watch of one API server shares.
pub struct Source {
    pub client: Client,
    pub events: mpsc::Sender<ClusterEvent>,
    pub outages: Outages,
    /// Watches still owing their first complete list.
    pending_first_lists: AtomicUsize,
    /// Whether the first complete state has been delivered.
    synced: AtomicBool,
}

impl Source {
    pub fn new(client: Client, events: mpsc::Sender<ClusterEvent>, watches: usize) -> Self {
        Self {
            client,
            events,
            outages: Outages::new(),
            pending_first_lists: AtomicUsize::new(watches),
            synced: AtomicBool::new(false),
        }
    }

    /// One more watch has listed once; the last one declares the state complete, after its
    /// own resync, so readers never see a partial first state as complete.
    async fn listed_first_time(&self) {
        if self.pending_first_lists.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.events.send(ClusterEvent::Synced).await;
            self.synced.store(true, Ordering::Release);
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

/// Converts an API object into a record: `None` for an object DNS need not keep.
pub type Convert<K> = fn(&K) -> Result<Option<ClusterObject>, FieldError>;

/// One resource in one scope, as watched.
pub struct Watched<K> {
    pub kind: ObjectKind,
    /// The namespace watched; `None`: all.
    pub scope: Option<Arc<str>>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub convert: Convert<K>,
}

impl<K: Resource<DynamicType = ()>> Watched<K> {
    /// For logs: `pods`, or `pods in team-a`.
    fn name(&self) -> String {
        let plural = K::plural(&());
        match &self.scope {
            Some(ns) => format!("{plural} in {ns}"),
            None => plural.into_owned(),
        }
    }

    /// For a 403: what the account must be allowed, e.g. `list pods (cluster scope)`.
    fn permission(&self, verb: &str) -> String {
        let group = K::group(&());
        let resource = if group.is_empty() {
            K::plural(&()).into_owned()
        } else {
            format!("{}.{group}", K::plural(&()))
        };
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
        Request::new(K::url_path(&(), namespace))
    }
}

/// How a watch ended.
enum WatchEnd {
    /// The server closed it, as asked: watch again from the last version.
    Closed,
    /// 410: the version is gone; list again.
    Expired,
    Failed(Fault),
    /// The cluster state is gone: stop.
    Stopped,
}

/// Follows `watched` until the cluster state stops listening.
pub async fn follow<K>(source: Arc<Source>, watched: Watched<K>)
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let name = watched.name();
    let mut backoff = Backoff::new();
    let mut skips = SkipLog::new(&name);
    let mut listed_once = false;
    let mut version: Option<String> = None;
    loop {
        let from = match version.take() {
            Some(version) => version,
            None => match list(&source, &watched, &mut skips).await {
                Ok((objects, version)) => {
                    debug!(watch = %name, objects = objects.len(), "listed");
                    let resync = ClusterEvent::Resync {
                        kinds: vec![watched.kind],
                        namespace: watched.scope.clone(),
                        objects,
                    };
                    if source.events.send(resync).await.is_err() {
                        return;
                    }
                    if !listed_once {
                        listed_once = true;
                        source.listed_first_time().await;
                    }
                    backoff.reset();
                    source.outages.succeeded(&name);
                    version
                }
                Err(fault) => {
                    if !wait(&source, &name, &fault, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let mut at = from;
        match watch(&source, &watched, &name, &mut at, &mut backoff, &mut skips).await {
            WatchEnd::Closed => version = Some(at),
            WatchEnd::Expired => debug!(watch = %name, "resourceVersion expired; listing again"),
            WatchEnd::Failed(fault) => {
                version = Some(at);
                if !wait(&source, &name, &fault, &mut backoff).await {
                    return;
                }
            }
            WatchEnd::Stopped => return,
        }
    }
}

/// Reports `fault` and waits out the backoff; a probe may end the wait early when the fault
/// was the connection's. `false`: the cluster state is gone.
async fn wait(source: &Source, name: &str, fault: &Fault, backoff: &mut Backoff) -> bool {
    source.outages.failed(name, fault, source.serving());
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
    // An error's body is a short metav1.Status; read at most a little of it.
    let body = http_body_util::Limited::new(response.into_body(), 64 << 10);
    let text = match tokio::time::timeout(REQUEST_TIMEOUT, body.collect()).await {
        Ok(Ok(body)) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        _ => String::new(),
    };
    Err(Fault::from_status(status.as_u16(), &text, attempt))
}

/// The fault a client error means: the credentials could not be had, or no answer came.
fn client_fault(error: &kube::Error) -> Fault {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    match error {
        kube::Error::Auth(_) => Fault::Unauthorized(shorten(&text)),
        _ => Fault::Unreachable(shorten(&text)),
    }
}

/// Lists every object of `watched`, page by page; returns their records and the version to
/// watch from.
async fn list<K>(
    source: &Source,
    watched: &Watched<K>,
    skips: &mut SkipLog,
) -> Result<(Vec<ClusterObject>, String), Fault>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let attempt = watched.permission("list");
    let mut objects = Vec::new();
    let mut continue_token = None;
    loop {
        let params = ListParams {
            label_selector: watched.label_selector.clone(),
            field_selector: watched.field_selector.clone(),
            limit: Some(PAGE_SIZE),
            continue_token: continue_token.take(),
            ..ListParams::default()
        };
        let request = watched
            .request()
            .list(&params)
            .map_err(|e| Fault::Rejected {
                code: 0,
                message: e.to_string(),
            })?;
        let response = send(&source.client, request, &attempt).await?;
        let body = match tokio::time::timeout(PAGE_TIMEOUT, response.into_body().collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(error)) => {
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
        let page: ListPage = serde_json::from_slice(&body).map_err(|e| Fault::Rejected {
            code: 200,
            message: format!("the answer to {attempt} is not a list: {e}"),
        })?;
        for item in &page.items {
            match decode::object::<K>(item) {
                Ok(object) => objects.extend(usable(&object, watched.convert, skips)),
                Err(undecodable) => skips.skip(&undecodable.object, &undecodable.error),
            }
        }
        match page.metadata.continue_token.filter(|t| !t.is_empty()) {
            Some(token) => continue_token = Some(token),
            None => {
                let version = page.metadata.resource_version.unwrap_or_default();
                skips.flush();
                return Ok((objects, version));
            }
        }
    }
}

/// Watches `watched` from `version`, applying each event, until the watch ends; `version`
/// follows the events.
async fn watch<K>(
    source: &Source,
    watched: &Watched<K>,
    name: &str,
    version: &mut String,
    backoff: &mut Backoff,
    skips: &mut SkipLog,
) -> WatchEnd
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let params = WatchParams {
        label_selector: watched.label_selector.clone(),
        field_selector: watched.field_selector.clone(),
        timeout: Some(WATCH_SECONDS),
        bookmarks: true,
        ..WatchParams::default()
    };
    let request = match watched.request().watch(&params, version) {
        Ok(request) => request,
        Err(error) => {
            return WatchEnd::Failed(Fault::Rejected {
                code: 0,
                message: error.to_string(),
            });
        }
    };
    let response = match send(&source.client, request, &watched.permission("watch")).await {
        Ok(response) => response,
        Err(Fault::Rejected { code: 410, .. }) => return WatchEnd::Expired,
        Err(fault) => return WatchEnd::Failed(fault),
    };
    // An accepted watch is the API answering us again; the backoff starts afresh only once the
    // watch has brought something (a server that accepts and drops each watch stays backed off).
    source.outages.succeeded(name);
    let mut lines = Lines::new(response.into_body());
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
        let Ok(event) = serde_json::from_str::<WatchLine>(&line) else {
            return WatchEnd::Failed(Fault::Rejected {
                code: 200,
                message: format!(
                    "the {name} watch sent a line that is not an event: {}",
                    shorten(&line)
                ),
            });
        };
        let change = match event.kind.as_ref() {
            "ADDED" | "MODIFIED" | "DELETED" => {
                let deleted = event.kind == "DELETED";
                match decode::object::<K>(event.object) {
                    Ok(object) => {
                        if let Some(at) = object.resource_version() {
                            *version = at;
                        }
                        match usable(&object, watched.convert, skips).filter(|_| !deleted) {
                            Some(record) => ClusterEvent::Upsert(record),
                            // An object DNS cannot use any more must not keep its old answers.
                            None => {
                                ClusterEvent::Delete(watched.kind, key_of(&object, watched.kind))
                            }
                        }
                    }
                    Err(undecodable) => {
                        skips.skip(&undecodable.object, &undecodable.error);
                        let identity = Identity::of(event.object);
                        if let Some(at) = identity.metadata.resource_version.clone() {
                            *version = at;
                        }
                        let Some(name) = identity.metadata.name else {
                            continue;
                        };
                        let key = match watched.kind {
                            ObjectKind::Namespace => ObjectKey::of_namespace(&Arc::from(name)),
                            _ => ObjectKey::new(
                                identity.metadata.namespace.as_deref().unwrap_or("default"),
                                &name,
                            ),
                        };
                        ClusterEvent::Delete(watched.kind, key)
                    }
                }
            }
            "BOOKMARK" => {
                if let Some(at) = Identity::of(event.object).metadata.resource_version {
                    *version = at;
                }
                continue;
            }
            "ERROR" => {
                let status: Status = serde_json::from_str(event.object.get()).unwrap_or_default();
                return match status.code {
                    410 => WatchEnd::Expired,
                    code => WatchEnd::Failed(Fault::from_status(
                        code,
                        event.object.get(),
                        &watched.permission("watch"),
                    )),
                };
            }
            other => {
                debug!(watch = %name, kind = other, "ignoring a watch event of an unknown type");
                continue;
            }
        };
        if source.events.send(change).await.is_err() {
            return WatchEnd::Stopped;
        }
    }
}

/// The object's record; `None` (named in the log) when DNS cannot or need not use it.
fn usable<K: Resource>(
    object: &K,
    convert: Convert<K>,
    skips: &mut SkipLog,
) -> Option<ClusterObject> {
    match convert(object) {
        Ok(record) => record,
        Err(error) => {
            let name = format!(
                "{}/{}",
                object.namespace().unwrap_or_default(),
                object.name_any()
            );
            skips.skip(&name, &error.to_string());
            None
        }
    }
}

fn key_of<K: Resource>(object: &K, kind: ObjectKind) -> ObjectKey {
    let name = object.name_any();
    match kind {
        ObjectKind::Namespace => ObjectKey::of_namespace(&Arc::from(name)),
        _ => ObjectKey::new(
            &object.namespace().unwrap_or_else(|| "default".into()),
            &name,
        ),
    }
}

/// A watch response's body, split into lines.
struct Lines {
    body: Body,
    buffer: Vec<u8>,
}

impl Lines {
    fn new(body: Body) -> Self {
        Self {
            body,
            buffer: Vec::new(),
        }
    }

    /// The next non-empty line; `None` at the end of the body.
    async fn next(&mut self) -> Option<Result<String, String>> {
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
