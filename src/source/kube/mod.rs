//! The Kubernetes API source: Namespaces, Services, Pods and EndpointSlices, listed and watched
//! ([`watch`]), turned into cluster events; faults classified, reported once per outage and
//! waited out ([`faults`]); objects read one at a time, as JSON ([`decode`]) or protobuf
//! ([`protobuf`]), whichever the API server answers with.

mod decode;
pub(crate) mod faults;
mod kinds;
pub(crate) mod protobuf;
mod split;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::mpsc;
use tracing::info;

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKind};
pub use crate::source::json::{ListSplitter, NotAList};
use crate::source::objects::SERVICE_NAME_LABEL;
use crate::source::stats::SourceStats;
pub use decode::ListMeta;
pub use faults::Fault;
use faults::chain;
pub use protobuf::list::ProtobufListSplitter;
pub(crate) use watch::Source;
pub use watch::{Line, read_frame, read_line};
use watch::{Watched, follow};

/// One object of `kind` in the API's protobuf encoding (a list's item, or a watch event's object
/// out of its envelope), as a list or watch reads it: its record (`None`: one DNS need not keep),
/// or why it cannot be used.
pub fn read_protobuf_object(
    kind: ObjectKind,
    bytes: &[u8],
) -> Result<Option<ClusterObject>, String> {
    match kinds::decode_protobuf(kind, bytes) {
        Ok(decoded) => decoded.record.map_err(|e| format!("{}: {e}", decoded.key)),
        Err(undecodable) => Err(format!("{}: {}", undecodable.object, undecodable.error)),
    }
}

/// How to reach the API and what to watch.
#[derive(Clone, Debug, Default)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Empty: every namespace.
    pub namespaces: Vec<String>,
    /// A label selector limiting the Services.
    pub service_selector: Option<String>,
    /// Ask for protobuf, taking JSON where the API server answers with it.
    pub protobuf: bool,
    /// Have each resource's state by a streaming list (WatchList) where the API server offers
    /// it, by a list otherwise.
    pub stream_lists: bool,
}

/// Connects like kubectl: `--kubeconfig`/`--context` if given, else `KUBECONFIG` or
/// `~/.kube/config`, else the in-cluster service account.
pub(crate) async fn connect(options: &KubeOptions) -> Result<Client, String> {
    let config_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("--kubeconfig {}: {}", path.display(), chain(&e)))?;
            let place = path.display().to_string();
            has_context(&kubeconfig, options.context.as_deref(), &place)?;
            Config::from_custom_kubeconfig(kubeconfig, &config_options)
                .await
                .map_err(|e| format!("--kubeconfig {place}: {}", chain(&e)))?
        }
        (None, Some(context)) => {
            let place = "KUBECONFIG or ~/.kube/config";
            let kubeconfig = Kubeconfig::read()
                .map_err(|e| format!("--context {context} ({place}): {}", chain(&e)))?;
            has_context(&kubeconfig, Some(context), place)?;
            Config::from_custom_kubeconfig(kubeconfig, &config_options)
                .await
                .map_err(|e| format!("--context {context} ({place}): {}", chain(&e)))?
        }
        (None, None) => Config::infer().await.map_err(|e| {
            format!(
                "no Kubernetes API configuration: tried KUBECONFIG or ~/.kube/config, then the \
                 in-cluster service account ({}); pass --kubeconfig, or --manifests to serve a file",
                chain(&e)
            )
        })?,
    };
    let mut config = config;
    // Retries and their reporting are the watches' own (backoff, one warning per outage); the
    // client would otherwise retry 429/503/504 up to 15 times inside one request.
    config.default_retry = false;
    let url = config.cluster_url.clone();
    let client =
        Client::try_from(config).map_err(|e| format!("API client for {url}: {}", chain(&e)))?;
    info!(%url, "watching the Kubernetes API");
    Ok(client)
}

/// `--context NAME` names a context the kubeconfig has; the client library would only say it
/// failed "to load current context".
fn has_context(kubeconfig: &Kubeconfig, context: Option<&str>, place: &str) -> Result<(), String> {
    let Some(context) = context else {
        return Ok(());
    };
    let names: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if names.contains(&context) {
        return Ok(());
    }
    let known = if names.is_empty() {
        "it has no contexts".to_owned()
    } else {
        format!("it has {}", names.join(", "))
    };
    Err(format!(
        "--context {context}: no such context in {place} ({known})"
    ))
}

/// Starts a watch of every resource in every scope; they run until the cluster state stops
/// listening, counting what they do in `stats`. Returns their tasks and what they share.
pub(crate) fn spawn_watchers(
    client: Client,
    options: &KubeOptions,
    events: mpsc::Sender<ClusterEvent>,
    stats: Arc<SourceStats>,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<Source>) {
    let scopes: Vec<Option<Arc<str>>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options
            .namespaces
            .iter()
            .map(|ns| Some(Arc::from(ns.as_str())))
            .collect()
    };
    let mut watches = Vec::new();
    for scope in scopes {
        // The Multi-Cluster Services kinds are read from manifests files only, so far: most
        // clusters lack their CRD, and watching them waits for a check that it is served.
        for kind in ObjectKind::CORE {
            let label_selector = match kind {
                // Namespaces named by --namespace are taken to exist: reading Namespace objects
                // needs cluster-wide access, and a Role in each namespace is then enough.
                ObjectKind::Namespace if scope.is_some() => continue,
                ObjectKind::Namespace | ObjectKind::Pod => None,
                ObjectKind::Service => options.service_selector.clone(),
                ObjectKind::EndpointSlice => Some(SERVICE_NAME_LABEL.into()),
                ObjectKind::ServiceImport | ObjectKind::ImportSlice => continue,
            };
            watches.push(Watched {
                kind,
                scope: scope.clone(),
                label_selector,
            });
        }
    }
    if !options.namespaces.is_empty() {
        let named = ClusterEvent::Resync {
            kinds: vec![ObjectKind::Namespace],
            namespace: None,
            objects: options
                .namespaces
                .iter()
                .map(|ns| ClusterObject::Namespace(ns.as_str().into()))
                .collect(),
        };
        // The queue is new and empty: this is the first event, before any watch's list.
        let _ = events.try_send(named);
    }
    let source = Arc::new(Source::new(
        client,
        events,
        watches.len(),
        stats,
        options.protobuf,
        options.stream_lists,
    ));
    let tasks = watches
        .into_iter()
        .map(|watched| tokio::spawn(follow(source.clone(), watched)))
        .collect();
    (tasks, source)
}
