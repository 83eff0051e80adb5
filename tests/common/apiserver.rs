//! A test Kubernetes API server speaking the real protocol over plain HTTP: paged lists with
//! `metadata.resourceVersion`, watch streams of newline-delimited `{"type","object"}` events on a
//! chunked response that end after `timeoutSeconds`, BOOKMARKs, a `410 Expired` ERROR event for a
//! resourceVersion older than the history it keeps, and `/version`. Tests drive it: apply and
//! delete objects, drop every watch, forget history, go down and come back up on the same port,
//! hang (take connections and requests, answer nothing) and recover, fail requests with a status.
//! Streaming lists (`sendInitialEvents=true`: the matching objects as ADDED events, then a
//! BOOKMARK annotated `k8s.io/initial-events-end`) once [`FakeApi::offer_streaming_lists`] is
//! called; until then such a watch is refused with 422, as kube-apiserver does with its
//! WatchList feature gate off.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// The resources headless-dns watches; ServiceImports and ServiceExports only once
/// [`FakeApi::install_mcs_crd`] is called, as a cluster serves them only with the Multi-Cluster
/// Services CRDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Namespaces,
    Services,
    Pods,
    EndpointSlices,
    ServiceImports,
    ServiceExports,
}

impl Resource {
    fn of_kind(kind: &str) -> Self {
        match kind {
            "Namespace" => Resource::Namespaces,
            "Service" => Resource::Services,
            "Pod" => Resource::Pods,
            "EndpointSlice" => Resource::EndpointSlices,
            "ServiceImport" => Resource::ServiceImports,
            "ServiceExport" => Resource::ServiceExports,
            other => panic!("the test API server does not serve {other}"),
        }
    }

    fn list_kind(self) -> &'static str {
        match self {
            Resource::Namespaces => "NamespaceList",
            Resource::Services => "ServiceList",
            Resource::Pods => "PodList",
            Resource::EndpointSlices => "EndpointSliceList",
            Resource::ServiceImports => "ServiceImportList",
            Resource::ServiceExports => "ServiceExportList",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Resource::EndpointSlices => "discovery.k8s.io/v1",
            Resource::ServiceImports | Resource::ServiceExports => MCS_GROUP_VERSION,
            _ => "v1",
        }
    }
}

const MCS_GROUP_VERSION: &str = "multicluster.x-k8s.io/v1alpha1";

type Key = (Resource, String, String);

#[derive(Clone)]
struct Change {
    rv: u64,
    resource: Resource,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Store {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Change>,
    /// A watch from a resourceVersion below this has lost events: it gets 410.
    oldest_watchable: u64,
}

struct Shared {
    store: Mutex<Store>,
    changes: broadcast::Sender<Change>,
    /// Bumped to end every open watch.
    watch_generation: watch::Sender<u64>,
    lists: AtomicUsize,
    watches: AtomicUsize,
    /// While true, requests and open watches wait: nothing is answered.
    hung: watch::Sender<bool>,
    /// Requests for these resources (`None`: any) fail with this status code.
    failing: Mutex<BTreeMap<Option<Resource>, u16>>,
    /// List requests per resource.
    /// The resourceVersion each list (its first page) asked for, per resource.
    lists_of: Mutex<BTreeMap<Resource, Vec<Option<u64>>>>,
    /// Whether watches with `sendInitialEvents=true` are served; how many were asked for.
    streaming_lists: std::sync::atomic::AtomicBool,
    streamed: AtomicUsize,
    /// Whether a list's continue token is refused with 410, as after an etcd compaction.
    continues_expire: std::sync::atomic::AtomicBool,
    /// Whether the Multi-Cluster Services CRD is installed: ServiceImports served, and their
    /// API group discovered.
    mcs_crd: std::sync::atomic::AtomicBool,
    /// Discovery requests for the Multi-Cluster Services group.
    mcs_discoveries: AtomicUsize,
}

pub struct FakeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl FakeApi {
    pub async fn start() -> Self {
        let api = Self::reserve().await;
        api.up().await;
        api
    }

    /// A server whose port is chosen but which is not listening yet (call [`FakeApi::up`]).
    pub async fn reserve() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let (changes, _) = broadcast::channel(1 << 16);
        let (watch_generation, _) = watch::channel(0);
        let (hung, _) = watch::channel(false);
        Self {
            addr,
            shared: Arc::new(Shared {
                store: Mutex::new(Store::default()),
                changes,
                watch_generation,
                lists: AtomicUsize::new(0),
                watches: AtomicUsize::new(0),
                hung,
                failing: Mutex::new(BTreeMap::new()),
                lists_of: Mutex::new(BTreeMap::new()),
                streaming_lists: std::sync::atomic::AtomicBool::new(false),
                mcs_crd: std::sync::atomic::AtomicBool::new(false),
                mcs_discoveries: AtomicUsize::new(0),
                streamed: AtomicUsize::new(0),
                continues_expire: std::sync::atomic::AtomicBool::new(false),
            }),
            accept: Mutex::new(None),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig that points kubectl (and kube-rs) at this server.
    pub fn kubeconfig(&self) -> String {
        kubeconfig_of(&[("test", self)])
    }

    /// Writes [`FakeApi::kubeconfig`] into `dir`; returns the file's path.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig()).unwrap();
        path
    }

    /// headless-dns's configuration for following this server (its kubeconfig written to
    /// `dir`), on ephemeral loopback ports, with `extra` flags: what the benches start.
    pub fn follower_config(
        &self,
        dir: &std::path::Path,
        extra: &[&str],
    ) -> headless_dns::config::Config {
        use clap::Parser as _;
        let kubeconfig = self.write_kubeconfig(dir);
        let mut args = vec![
            "headless-dns",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        headless_dns::config::Config::parse_from(args)
    }

    pub async fn up(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                // The old listener's port may take a moment to be released.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        };
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            // Dropping this set (when the task is aborted) closes every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    /// Stops listening and closes every connection, watches included.
    pub async fn down(&self) {
        let task = self.accept.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Creates or replaces an object (its `kind` says which resource), as `kubectl apply` would.
    pub fn apply(&self, mut object: Value) {
        let resource = Resource::of_kind(object["kind"].as_str().unwrap());
        let mut store = self.shared.store.lock().unwrap();
        store.rv += 1;
        let rv = store.rv;
        let meta = object["metadata"].as_object_mut().unwrap();
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        if resource != Resource::Namespaces && !meta.contains_key("namespace") {
            meta.insert("namespace".into(), json!("default"));
        }
        let key = key_of(resource, &object);
        let kind = if store.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        store.objects.insert(key, object.clone());
        record(
            &self.shared,
            &mut store,
            Change {
                rv,
                resource,
                kind,
                object,
            },
        );
    }

    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let resource = Resource::of_kind(kind);
        let namespace = if resource == Resource::Namespaces {
            ""
        } else {
            namespace
        };
        let mut store = self.shared.store.lock().unwrap();
        let Some(mut object) = store
            .objects
            .remove(&(resource, namespace.into(), name.into()))
        else {
            panic!("no {kind} {namespace}/{name} to delete");
        };
        store.rv += 1;
        let rv = store.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        record(
            &self.shared,
            &mut store,
            Change {
                rv,
                resource,
                kind: "DELETED",
                object,
            },
        );
    }

    /// The object as the API holds it now.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = Resource::of_kind(kind);
        let store = self.shared.store.lock().unwrap();
        store
            .objects
            .get(&(resource, namespace.into(), name.into()))
            .cloned()
    }

    /// Sends a BOOKMARK at the current resourceVersion on every open watch.
    pub fn bookmark(&self) {
        let store = self.shared.store.lock().unwrap();
        for resource in [
            Resource::Namespaces,
            Resource::Services,
            Resource::Pods,
            Resource::EndpointSlices,
            Resource::ServiceImports,
            Resource::ServiceExports,
        ] {
            let object = json!({"kind": resource.list_kind().trim_end_matches("List"),
                                "apiVersion": resource.api_version(),
                                "metadata": {"resourceVersion": store.rv.to_string()}});
            let _ = self.shared.changes.send(Change {
                rv: store.rv,
                resource,
                kind: "BOOKMARK",
                object,
            });
        }
    }

    /// Ends every open watch; clients resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.shared.watch_generation.send_modify(|g| *g += 1);
    }

    /// Forgets the event history: a watch resuming from any earlier resourceVersion gets 410.
    pub fn forget_history(&self) {
        let mut store = self.shared.store.lock().unwrap();
        store.history.clear();
        store.oldest_watchable = store.rv;
    }

    /// Refuses every list page after the first with 410, as etcd does once it has compacted
    /// the revision the list began at.
    pub fn expire_continues(&self) {
        self.shared.continues_expire.store(true, Ordering::Relaxed);
    }

    /// Serves streaming lists from now on (refused with 422 until then).
    /// Serves ServiceImports from now on, as after `kubectl apply` of the MCS CRDs.
    pub fn install_mcs_crd(&self) {
        self.shared.mcs_crd.store(true, Ordering::Relaxed);
    }

    /// How often the Multi-Cluster Services group was asked for by discovery.
    pub fn mcs_discoveries(&self) -> usize {
        self.shared.mcs_discoveries.load(Ordering::Relaxed)
    }

    pub fn offer_streaming_lists(&self) {
        self.shared.streaming_lists.store(true, Ordering::Relaxed);
    }

    /// Watches that asked for a streaming list, served or refused.
    pub fn streaming_list_requests(&self) -> usize {
        self.shared.streamed.load(Ordering::Relaxed)
    }

    pub fn list_requests(&self) -> usize {
        self.shared.lists.load(Ordering::Relaxed)
    }

    /// Lists (first pages) of one resource (`kind`: `Pod`, `Service`, ...).
    pub fn list_requests_of(&self, kind: &str) -> usize {
        self.list_versions_of(kind).len()
    }

    /// The resourceVersion each list of `kind` asked for (`None`: the current state), in order.
    pub fn list_versions_of(&self, kind: &str) -> Vec<Option<u64>> {
        let lists = self.shared.lists_of.lock().unwrap();
        lists
            .get(&Resource::of_kind(kind))
            .cloned()
            .unwrap_or_default()
    }

    /// Takes connections and requests but answers nothing, and open watches go silent, as a
    /// stopped (SIGSTOP) or wedged API server does; `false` resumes everything.
    pub fn hang(&self, hung: bool) {
        self.shared.hung.send_replace(hung);
    }

    /// Fails every request for `kind` (`None`: any resource) with HTTP `code` and a
    /// `metav1.Status`, as the real server does for 401, 403, 5xx; `None` code: stop failing.
    pub fn fail(&self, kind: Option<&str>, code: Option<u16>) {
        let resource = kind.map(Resource::of_kind);
        let mut failing = self.shared.failing.lock().unwrap();
        match code {
            Some(code) => failing.insert(resource, code),
            None => failing.remove(&resource),
        };
    }

    pub fn watch_requests(&self) -> usize {
        self.shared.watches.load(Ordering::Relaxed)
    }

    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().unwrap().rv
    }
}

fn record(shared: &Shared, store: &mut Store, change: Change) {
    store.history.push(change.clone());
    let _ = shared.changes.send(change);
}

fn key_of(resource: Resource, object: &Value) -> Key {
    let meta = &object["metadata"];
    let namespace = if resource == Resource::Namespaces {
        ""
    } else {
        meta["namespace"].as_str().unwrap_or("default")
    };
    (
        resource,
        namespace.into(),
        meta["name"].as_str().unwrap().into(),
    )
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// What a request asks for.
struct Query {
    resource: Resource,
    namespace: Option<String>,
    watch: bool,
    resource_version: Option<u64>,
    labels: Option<String>,
    fields: Option<String>,
    limit: Option<usize>,
    continue_from: Option<usize>,
    timeout_seconds: Option<u64>,
    send_initial_events: bool,
}

fn parse(request: &Request<Incoming>) -> Option<Query> {
    let segments: Vec<&str> = request.uri().path().trim_matches('/').split('/').collect();
    let (namespace, plural) = match segments.as_slice() {
        ["api", "v1", plural]
        | ["apis", "discovery.k8s.io", "v1", plural]
        | ["apis", "multicluster.x-k8s.io", "v1alpha1", plural] => (None, *plural),
        ["api", "v1", "namespaces", ns, plural]
        | ["apis", "discovery.k8s.io", "v1", "namespaces", ns, plural]
        | [
            "apis",
            "multicluster.x-k8s.io",
            "v1alpha1",
            "namespaces",
            ns,
            plural,
        ] => (Some(ns.to_string()), *plural),
        _ => return None,
    };
    let resource = match plural {
        "namespaces" => Resource::Namespaces,
        "services" => Resource::Services,
        "pods" => Resource::Pods,
        "endpointslices" => Resource::EndpointSlices,
        "serviceimports" => Resource::ServiceImports,
        "serviceexports" => Resource::ServiceExports,
        _ => return None,
    };
    let mut query = Query {
        resource,
        namespace,
        watch: false,
        resource_version: None,
        labels: None,
        fields: None,
        limit: None,
        continue_from: None,
        timeout_seconds: None,
        send_initial_events: false,
    };
    for pair in request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "watch" => query.watch = value == "true" || value == "1",
            "resourceVersion" => query.resource_version = value.parse().ok(),
            "labelSelector" => query.labels = Some(value),
            "fieldSelector" => query.fields = Some(value),
            "limit" => query.limit = value.parse().ok(),
            "continue" => query.continue_from = value.parse().ok(),
            "timeoutSeconds" => query.timeout_seconds = value.parse().ok(),
            "sendInitialEvents" => query.send_initial_events = value == "true",
            _ => {}
        }
    }
    Some(query)
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key`, `!key`, `key=value`, `key==value`, `key!=value` terms, comma-separated.
fn selects(selector: &str, fields: &serde_json::Map<String, Value>) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            let value = |key: &str| {
                fields
                    .get(key.trim())
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if let Some((k, v)) = term.split_once("!=") {
                value(k).as_deref() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                value(k).as_deref() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                value(k).is_none()
            } else {
                value(term).is_some()
            }
        })
}

fn matches(query: &Query, resource: Resource, object: &Value) -> bool {
    if resource != query.resource {
        return false;
    }
    let meta = &object["metadata"];
    if let Some(ns) = &query.namespace
        && meta["namespace"].as_str() != Some(ns)
    {
        return false;
    }
    if let Some(selector) = &query.labels {
        let empty = serde_json::Map::new();
        if !selects(selector, meta["labels"].as_object().unwrap_or(&empty)) {
            return false;
        }
    }
    if let Some(selector) = &query.fields {
        let mut fields = serde_json::Map::new();
        fields.insert("metadata.name".into(), meta["name"].clone());
        fields.insert("metadata.namespace".into(), meta["namespace"].clone());
        if !selects(selector, &fields) {
            return false;
        }
    }
    true
}

/// Waits while the server is hung.
async fn while_hung(shared: &Shared) {
    let mut hung = shared.hung.subscribe();
    let _ = hung.wait_for(|hung| !hung).await;
}

/// A `metav1.Status` failure, as the real server words it.
fn failure(code: u16, query: &Query) -> Response<Body> {
    let plural = query
        .resource
        .list_kind()
        .trim_end_matches("List")
        .to_lowercase()
        + "s";
    let (reason, message) = match code {
        401 => ("Unauthorized", "Unauthorized".to_string()),
        403 => (
            "Forbidden",
            format!(
                "{plural} is forbidden: User \"system:serviceaccount:headless-dns:headless-dns\" \
                 cannot {} resource \"{plural}\" at the cluster scope",
                if query.watch { "watch" } else { "list" }
            ),
        ),
        _ => (
            "InternalError",
            "Internal error occurred: etcdserver: request timed out".into(),
        ),
    };
    full(
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

async fn handle(shared: &Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    while_hung(shared).await;
    if request.uri().path() == "/version" {
        return full(
            StatusCode::OK,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0"}),
        );
    }
    let mcs_crd = shared.mcs_crd.load(Ordering::Relaxed);
    if request.uri().path() == format!("/apis/{MCS_GROUP_VERSION}") {
        shared.mcs_discoveries.fetch_add(1, Ordering::Relaxed);
        if mcs_crd {
            return full(
                StatusCode::OK,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": MCS_GROUP_VERSION,
                       "resources": [{"name": "serviceimports", "singularName": "serviceimport",
                                      "namespaced": true, "kind": "ServiceImport",
                                      "verbs": ["get", "list", "watch"]},
                                     {"name": "serviceexports", "singularName": "serviceexport",
                                      "namespaced": true, "kind": "ServiceExport",
                                      "verbs": ["get", "list", "watch"]}]}),
            );
        }
    }
    let query = parse(&request).filter(|q| {
        mcs_crd
            || !matches!(
                q.resource,
                Resource::ServiceImports | Resource::ServiceExports
            )
    });
    let Some(query) = query else {
        return full(
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                  "reason": "NotFound", "code": 404}),
        );
    };
    let code = {
        let failing = shared.failing.lock().unwrap();
        failing
            .get(&Some(query.resource))
            .or_else(|| failing.get(&None))
            .copied()
    };
    if query.watch {
        shared.watches.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.lists.fetch_add(1, Ordering::Relaxed);
        if query.continue_from.is_none() {
            shared
                .lists_of
                .lock()
                .unwrap()
                .entry(query.resource)
                .or_default()
                .push(query.resource_version);
        }
    }
    if let Some(code) = code {
        return failure(code, &query);
    }
    if query.continue_from.is_some() && shared.continues_expire.load(Ordering::Relaxed) {
        return full(
            StatusCode::GONE,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                   "reason": "Expired", "code": 410}),
        );
    }
    if query.watch && query.send_initial_events {
        shared.streamed.fetch_add(1, Ordering::Relaxed);
        if !shared.streaming_lists.load(Ordering::Relaxed) {
            return full(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                       "reason": "Invalid", "code": 422}),
            );
        }
    }
    if query.watch {
        watch_response(shared, query)
    } else {
        list_response(shared, query)
    }
}

fn list_response(shared: &Shared, query: Query) -> Response<Body> {
    let store = shared.store.lock().unwrap();
    let matching: Vec<&Value> = store
        .objects
        .iter()
        .filter(|((resource, _, _), object)| matches(&query, *resource, object))
        .map(|(_, object)| object)
        .collect();
    let start = query.continue_from.unwrap_or(0).min(matching.len());
    let end = query
        .limit
        .filter(|&l| l > 0)
        .map_or(matching.len(), |l| (start + l).min(matching.len()));
    let mut metadata = json!({"resourceVersion": store.rv.to_string()});
    if end < matching.len() {
        metadata["continue"] = json!(end.to_string());
    }
    full(
        StatusCode::OK,
        json!({
            "apiVersion": query.resource.api_version(),
            "kind": query.resource.list_kind(),
            "metadata": metadata,
            "items": matching[start..end],
        }),
    )
}

fn watch_response(shared: &Arc<Shared>, query: Query) -> Response<Body> {
    let (lines, body) = mpsc::unbounded_channel::<Bytes>();
    let line = |kind: &str, object: &Value| {
        Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
    };
    let store = shared.store.lock().unwrap();
    if query.send_initial_events {
        // The state as ADDED events, then the bookmark that ends them; then changes from now.
        for ((resource, _, _), object) in &store.objects {
            if matches(&query, *resource, object) {
                let _ = lines.send(line("ADDED", object));
            }
        }
        let end = json!({"kind": query.resource.list_kind().trim_end_matches("List"),
                         "apiVersion": query.resource.api_version(),
                         "metadata": {"resourceVersion": store.rv.to_string(),
                                      "annotations": {"k8s.io/initial-events-end": "true"}}});
        let _ = lines.send(line("BOOKMARK", &end));
    }
    let from = match query.resource_version {
        _ if query.send_initial_events => store.rv,
        Some(version) => version,
        None => store.rv,
    };
    if from < store.oldest_watchable {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": format!("too old resource version: {from} ({})", store.oldest_watchable),
                            "reason": "Expired", "code": 410});
        let _ = lines.send(line("ERROR", &status));
    } else {
        for change in store.history.iter().filter(|c| c.rv > from) {
            if matches(&query, change.resource, &change.object) {
                let _ = lines.send(line(change.kind, &change.object));
            }
        }
        // Subscribed under the store's lock: no change falls between history and live events.
        let mut live = shared.changes.subscribe();
        let mut generation = shared.watch_generation.subscribe();
        let timeout = query.timeout_seconds.map(std::time::Duration::from_secs);
        let deadline = tokio::time::sleep(timeout.unwrap_or(std::time::Duration::MAX / 4));
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    // A hung server does not end its watches either.
                    _ = &mut deadline => return while_hung(&shared).await,
                    change = live.recv() => match change {
                        Ok(change) if change.kind == "BOOKMARK" => {
                            if change.resource == query.resource && lines.send(line("BOOKMARK", &change.object)).is_err() {
                                return;
                            }
                        }
                        Ok(change) => {
                            if matches(&query, change.resource, &change.object)
                                && lines.send(line(change.kind, &change.object)).is_err()
                            {
                                return;
                            }
                        }
                        Err(_) => return,
                    },
                    _ = generation.changed() => return,
                    _ = lines.closed() => return,
                }
            }
        });
    }
    drop(store);
    let shared = shared.clone();
    let stream = futures_util::stream::unfold(body, move |mut body| {
        let shared = shared.clone();
        async move {
            let bytes = body.recv().await?;
            // A hung server sends nothing on its open watches.
            while_hung(&shared).await;
            Some((Ok::<_, Infallible>(Frame::data(bytes)), body))
        }
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// A kubeconfig with one context per `(name, server)`, each reaching its server as a user of the
/// same name; the first is the current context.
pub fn kubeconfig_of(contexts: &[(&str, &FakeApi)]) -> String {
    let current = contexts.first().map_or("test", |c| c.0);
    let (mut clusters, mut named, mut users) = (String::new(), String::new(), String::new());
    for (name, api) in contexts {
        clusters += &format!("- name: {name}\n  cluster:\n    server: {}\n", api.url());
        named += &format!(
            "- name: {name}\n  context: {{cluster: {name}, user: {name}, namespace: default}}\n"
        );
        users += &format!("- name: {name}\n  user: {{token: test-token}}\n");
    }
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {current}\nclusters:\n{clusters}\
         contexts:\n{named}users:\n{users}"
    )
}

// ---- objects as the API returns them ----

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "status": {"phase": "Active"}})
}

pub fn headless_service(ns: &str, name: &str, selector: Option<(&str, &str)>) -> Value {
    let mut spec = json!({"clusterIP": "None", "clusterIPs": ["None"],
                          "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": 80}],
                          "type": "ClusterIP"});
    if let Some((k, v)) = selector {
        spec["selector"] = json!({k: v});
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

pub fn pod(ns: &str, name: &str, app: &str, ip: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 80, "name": "web"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

pub fn with_hostname(mut pod: Value, hostname: &str, subdomain: &str) -> Value {
    pod["spec"]["hostname"] = json!(hostname);
    pod["spec"]["subdomain"] = json!(subdomain);
    pod
}

pub fn endpoint_slice(
    ns: &str,
    name: &str,
    service: &str,
    endpoints: &[(&str, Option<&str>, Option<bool>)],
) -> Value {
    let family = if endpoints.iter().any(|(ip, _, _)| ip.contains(':')) {
        "IPv6"
    } else {
        "IPv4"
    };
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, hostname, ready)| {
            let mut endpoint = json!({"addresses": [ip]});
            if let Some(hostname) = hostname {
                endpoint["hostname"] = json!(hostname);
            }
            if let Some(ready) = ready {
                endpoint["conditions"] = json!({"ready": ready});
            }
            endpoint
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
           "addressType": family, "endpoints": endpoints,
           "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]})
}

// ---- the benchmarks' cluster ----

pub const BENCH_PODS_PER_SERVICE: usize = 10;

/// Pod `i` of the benchmarks' cluster: `pod-<i>` with that hostname under the headless Service
/// `svc-<i / 10>` in namespace `bench`.
pub fn bench_pod(i: usize, ready: bool) -> Value {
    let service = format!("svc-{}", i / BENCH_PODS_PER_SERVICE);
    let ip = format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
    with_hostname(
        pod("bench", &format!("pod-{i}"), &service, &ip, ready),
        &format!("pod-{i}"),
        &service,
    )
}

/// The benchmarks' cluster: `pods` Ready pods, 10 per headless Service.
pub fn populate_bench(api: &FakeApi, pods: usize) {
    api.apply(namespace("bench"));
    for s in 0..pods.div_ceil(BENCH_PODS_PER_SERVICE) {
        let name = format!("svc-{s}");
        api.apply(headless_service("bench", &name, Some(("app", &name))));
    }
    for i in 0..pods {
        api.apply(bench_pod(i, true));
    }
}

/// The benchmarks' changes over a cluster of `pods` Ready pods ([`populate_bench`]): each flips
/// one pod's readiness, spread over all of them. Yields the pod's number, its name in DNS, and
/// whether it is Ready now.
pub fn readiness_flips(pods: usize) -> impl Iterator<Item = (usize, String, bool)> {
    let mut ready = vec![true; pods];
    (0..).map(move |change: usize| {
        let i = (change * 7919) % pods;
        ready[i] = !ready[i];
        let service = i / BENCH_PODS_PER_SERVICE;
        let name = format!("pod-{i}.svc-{service}.bench.svc.cluster.local.");
        (i, name, ready[i])
    })
}
