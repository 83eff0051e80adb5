//! The Kubernetes API source: kube-runtime watchers (list, then watch, with backoff) on
//! Namespaces, Services, Pods and EndpointSlices, turned into cluster events.
//!
//! Each watcher buffers a (re-)list until it is complete and then sends it as one resync, so a
//! re-list after `410 Gone` replaces the state atomically; between lists, each watch event
//! changes only the object it names. Errors are logged and retried by the watcher's backoff while
//! the last state keeps being served.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Config, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKey, ObjectKind};
use crate::source::objects::{self, FieldError, SERVICE_NAME_LABEL};
use crate::source::pod::DnsPod;

/// Objects per list page: large pages make the first sync of a big cluster fast.
const PAGE_SIZE: u32 = 5000;

/// How to reach the API and what to watch.
#[derive(Clone, Debug, Default)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Empty: every namespace.
    pub namespaces: Vec<String>,
    /// A label selector limiting the Services.
    pub service_selector: Option<String>,
}

/// Connects like kubectl: `--kubeconfig`/`--context` if given, else `KUBECONFIG` or
/// `~/.kube/config`, else the in-cluster service account.
pub async fn connect(options: &KubeOptions) -> Result<Client, String> {
    let config_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("--kubeconfig {}: {}", path.display(), chain(&e)))?;
            Config::from_custom_kubeconfig(kubeconfig, &config_options)
                .await
                .map_err(|e| format!("--kubeconfig {}: {}", path.display(), chain(&e)))?
        }
        (None, Some(context)) => Config::from_kubeconfig(&config_options)
            .await
            .map_err(|e| format!("--context {context} (KUBECONFIG or ~/.kube/config): {}", chain(&e)))?,
        (None, None) => Config::infer().await.map_err(|e| {
            format!(
                "no Kubernetes API configuration: tried KUBECONFIG or ~/.kube/config, then the \
                 in-cluster service account ({}); pass --kubeconfig, or --manifests to serve a file",
                chain(&e)
            )
        })?,
    };
    let url = config.cluster_url.clone();
    let client =
        Client::try_from(config).map_err(|e| format!("API client for {url}: {}", chain(&e)))?;
    info!(%url, "watching the Kubernetes API");
    Ok(client)
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
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

/// A namespaced resource's API in one namespace, or across all of them.
fn scoped<K>(client: &Client, scope: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Counts the watchers still owing their first complete list; the last one declares the state
/// complete, after its own resync, so readers never see a partial first state as complete.
struct FirstSync {
    pending: AtomicUsize,
}

impl FirstSync {
    async fn listed(&self, events: &mpsc::Sender<ClusterEvent>) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = events.send(ClusterEvent::Synced).await;
        }
    }
}

/// Starts every watcher; they run until the cluster state stops listening.
pub fn spawn_watchers(
    client: Client,
    options: &KubeOptions,
    events: mpsc::Sender<ClusterEvent>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let first_sync = Arc::new(FirstSync {
        pending: AtomicUsize::new(scopes.len() * ObjectKind::ALL.len()),
    });
    let mut tasks = Vec::new();
    for scope in scopes {
        let ctx = Watch {
            scope: scope.as_deref().map(Arc::from),
            events: events.clone(),
            first_sync: first_sync.clone(),
        };
        let base = watcher::Config::default().page_size(PAGE_SIZE);

        // A namespace scope watches its own Namespace object only.
        let namespaces = match &scope {
            Some(ns) => base.clone().fields(&format!("metadata.name={ns}")),
            None => base.clone(),
        };
        let services = match &options.service_selector {
            Some(selector) => base.clone().labels(selector),
            None => base.clone(),
        };
        let slices = base.clone().labels(SERVICE_NAME_LABEL);

        tasks.push(tokio::spawn(ctx.clone().follow(
            Api::<Namespace>::all(client.clone()),
            namespaces,
            ObjectKind::Namespace,
            |ns: &Namespace| {
                objects::namespace_name(&ns.metadata).map(|n| Some(ClusterObject::Namespace(n)))
            },
        )));
        tasks.push(tokio::spawn(ctx.clone().follow(
            scoped(&client, scope.as_deref()),
            services,
            ObjectKind::Service,
            |s: &Service| objects::service_record(s).map(|r| Some(ClusterObject::Service(r))),
        )));
        tasks.push(tokio::spawn(ctx.clone().follow(
            scoped(&client, scope.as_deref()),
            base.clone(),
            ObjectKind::Pod,
            |p: &DnsPod| objects::pod_object(p).map(Some),
        )));
        tasks.push(tokio::spawn(ctx.follow(
            scoped(&client, scope.as_deref()),
            slices,
            ObjectKind::EndpointSlice,
            |e: &EndpointSlice| {
                objects::endpoint_slice_record(e).map(|r| r.map(ClusterObject::EndpointSlice))
            },
        )));
    }
    tasks
}

/// What every watcher shares.
#[derive(Clone)]
struct Watch {
    scope: Option<Arc<str>>,
    events: mpsc::Sender<ClusterEvent>,
    first_sync: Arc<FirstSync>,
}

type Convert<K> = fn(&K) -> Result<Option<ClusterObject>, FieldError>;

impl Watch {
    async fn follow<K>(
        self,
        api: Api<K>,
        config: watcher::Config,
        kind: ObjectKind,
        convert: Convert<K>,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut listing: Option<Vec<ClusterObject>> = None;
        let mut listed_once = false;
        let mut failing = false;
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(event) => event,
                Err(error) => {
                    // The watcher retries with backoff; say so once per outage, not per attempt.
                    if !failing {
                        warn!(?kind, scope = ?self.scope, error = %chain(&error), "watch failed; serving the last state and retrying");
                        failing = true;
                    } else {
                        debug!(?kind, error = %chain(&error), "watch still failing");
                    }
                    continue;
                }
            };
            if failing {
                info!(?kind, scope = ?self.scope, "watch recovered");
                failing = false;
            }
            let sent = match event {
                Event::Init => {
                    listing = Some(Vec::new());
                    Ok(())
                }
                Event::InitApply(object) => {
                    if let (Some(list), Some(record)) = (&mut listing, usable(&object, convert)) {
                        list.push(record);
                    }
                    Ok(())
                }
                Event::InitDone => {
                    let objects = listing.take().unwrap_or_default();
                    debug!(?kind, scope = ?self.scope, objects = objects.len(), "listed");
                    let sent = self
                        .events
                        .send(ClusterEvent::Resync {
                            kinds: vec![kind],
                            namespace: self.scope.clone(),
                            objects,
                        })
                        .await;
                    if sent.is_ok() && !listed_once {
                        listed_once = true;
                        self.first_sync.listed(&self.events).await;
                    }
                    sent
                }
                Event::Apply(object) => match usable(&object, convert) {
                    Some(record) => self.events.send(ClusterEvent::Upsert(record)).await,
                    // An object DNS cannot use any more must not keep its old answers.
                    None => {
                        self.events
                            .send(ClusterEvent::Delete(kind, key_of(&object, kind)))
                            .await
                    }
                },
                Event::Delete(object) => {
                    self.events
                        .send(ClusterEvent::Delete(kind, key_of(&object, kind)))
                        .await
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

/// The object's record, or `None` (logged) when DNS cannot or need not use it.
fn usable<K: Resource>(object: &K, convert: Convert<K>) -> Option<ClusterObject> {
    match convert(object) {
        Ok(record) => record,
        Err(error) => {
            warn!(
                object = %format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any()),
                %error,
                "ignoring an object DNS cannot use"
            );
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
