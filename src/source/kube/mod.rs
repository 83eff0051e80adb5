//! The Kubernetes API source: Namespaces, Services, Pods and EndpointSlices (and ServiceImports
//! with their clusters' EndpointSlices where the API serves them), listed and watched
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
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info};

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKind};
pub use crate::source::json::{ListSplitter, NotAList};
use crate::source::objects::SERVICE_NAME_LABEL;
use crate::source::service_import;
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
    /// The Multi-Cluster Services objects followed where the API serves them.
    pub multicluster: Multicluster,
}

/// Which Multi-Cluster Services objects a cluster's source follows, where the API serves them
/// (most clusters lack the CRDs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Multicluster {
    /// ServiceImports and the EndpointSlices an MCS controller writes for them: the clusterset
    /// zone of a single cluster.
    #[default]
    Imports,
    /// ServiceExports: one cluster of several, the clusterset zone made from every cluster's
    /// exported Services.
    Exports,
}

impl Multicluster {
    /// The watches of its kinds in `scope`, and the resource discovery looks for.
    fn watches(self, scope: &Option<Arc<str>>) -> Vec<Watched> {
        let kinds: &[(ObjectKind, Option<&str>)] = match self {
            Multicluster::Imports => &[
                (ObjectKind::ServiceImport, None),
                (ObjectKind::ImportSlice, Some(IMPORT_SLICE_SELECTOR)),
            ],
            Multicluster::Exports => &[(ObjectKind::ServiceExport, None)],
        };
        kinds
            .iter()
            .map(|(kind, label_selector)| Watched {
                kind: *kind,
                scope: scope.clone(),
                label_selector: label_selector.map(String::from),
            })
            .collect()
    }

    /// The resource whose discovery says the API serves these kinds.
    fn resource(self) -> &'static str {
        match self {
            Multicluster::Imports => "serviceimports",
            Multicluster::Exports => "serviceexports",
        }
    }
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
/// ServiceImports and their slices are among them when the API serves them now; else the API is
/// asked again every minute (see [`follow_clusterset`]).
pub(crate) async fn spawn_watchers(
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
    let multicluster = options.multicluster;
    // `None`: the API did not say (unreachable, slow): asked again soon.
    let served = match tokio::time::timeout(DISCOVERY_TIMEOUT, serves(&client, multicluster)).await
    {
        Ok(Ok(served)) => Some(served),
        Ok(Err(_)) | Err(_) => None,
    };
    let clusterset_now = served == Some(true);
    let mut watches = Vec::new();
    for scope in scopes.clone() {
        // The Multi-Cluster Services kinds wait for the API to serve them (`follow_clusterset`).
        for kind in ObjectKind::CORE {
            let label_selector = match kind {
                // Namespaces named by --namespace are taken to exist: reading Namespace objects
                // needs cluster-wide access, and a Role in each namespace is then enough.
                ObjectKind::Namespace if scope.is_some() => continue,
                ObjectKind::Namespace | ObjectKind::Pod => None,
                ObjectKind::Service => options.service_selector.clone(),
                ObjectKind::EndpointSlice => Some(SERVICE_NAME_LABEL.into()),
                ObjectKind::ServiceImport | ObjectKind::ImportSlice | ObjectKind::ServiceExport => {
                    continue;
                }
            };
            watches.push(Watched {
                kind,
                scope: scope.clone(),
                label_selector,
            });
        }
        if clusterset_now {
            watches.extend(multicluster.watches(&scope));
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
        watches.iter().filter(|w| w.owes_first_state()).count(),
        stats,
        options.protobuf,
        options.stream_lists,
    ));
    let mut tasks: Vec<_> = watches
        .into_iter()
        // Each in the span of whoever started them (with several clusters, the cluster's).
        .map(|watched| tokio::spawn(follow(source.clone(), watched).in_current_span()))
        .collect();
    if clusterset_now {
        info!(
            resource = multicluster.resource(),
            "the API serves them: following them for clusterset.local"
        );
    } else {
        let told = served.is_some();
        tasks.push(tokio::spawn(
            follow_clusterset(source.clone(), scopes, multicluster, told).in_current_span(),
        ));
    }
    (tasks, source)
}

/// How long the start waits for the API to say whether it serves the MCS kinds followed.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the API is asked again whether it serves the MCS kinds while it does not.
const CLUSTERSET_RECHECK: Duration = Duration::from_secs(60);

/// The label selector of the EndpointSlices an MCS controller writes for its ServiceImports.
const IMPORT_SLICE_SELECTOR: &str =
    "multicluster.kubernetes.io/service-name,multicluster.kubernetes.io/source-cluster";

/// Follows the `multicluster` kinds in `scopes` once the API serves them (the MCS CRDs
/// installed after start): asked every minute once the API has `told` it does not; until it
/// has said (unreachable at start), after 1 s, 2 s, 4 s, ... up to the minute. Most clusters
/// lack the CRDs, so their absence is no fault: it is said once, at debug level.
///
/// The first complete state does not wait for these watches: nobody asked for the clusterset
/// zone (it comes with the CRDs), so an account without access to them, as most have, must
/// still become ready; the missing permission is logged as for any other resource (see
/// `Watched::owes_first_state`).
async fn follow_clusterset(
    source: Arc<Source>,
    scopes: Vec<Option<Arc<str>>>,
    multicluster: Multicluster,
    mut told: bool,
) {
    let resource = multicluster.resource();
    debug!(
        resource,
        told,
        "the API does not serve them (no Multi-Cluster Services CRD) or did not say: \
         clusterset.local stays unanswered; asking again"
    );
    let mut wait = Duration::from_secs(1);
    loop {
        let pause = if told { CLUSTERSET_RECHECK } else { wait };
        wait = (wait * 2).min(CLUSTERSET_RECHECK);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = source.events.closed() => return,
        }
        match tokio::time::timeout(DISCOVERY_TIMEOUT, serves(&source.client, multicluster)).await {
            Ok(Ok(true)) => break,
            Ok(Ok(false)) => told = true,
            Ok(Err(error)) => {
                debug!(%error, resource, "could not ask the API whether it serves them")
            }
            Err(_) => debug!(
                resource,
                "the API did not say in time whether it serves them"
            ),
        }
    }
    info!(
        resource,
        "the API serves them: following them for clusterset.local"
    );
    let mut watches = tokio::task::JoinSet::new();
    for scope in &scopes {
        for watched in multicluster.watches(scope) {
            watches.spawn(follow(source.clone(), watched));
        }
    }
    while watches.join_next().await.is_some() {}
}

/// Whether the API serves the `multicluster` kinds at the version read (discovery of the MCS
/// group).
async fn serves(client: &Client, multicluster: Multicluster) -> Result<bool, String> {
    let group_version = format!("{}/{}", service_import::GROUP, service_import::VERSIONS[0]);
    match client.list_api_group_resources(&group_version).await {
        Ok(list) => Ok(list
            .resources
            .iter()
            .any(|r| r.name == multicluster.resource())),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(chain(&error)),
    }
}
