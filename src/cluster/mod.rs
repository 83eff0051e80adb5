//! The cluster state: the Services and Pods the sources report, and the indices that tell which
//! names a change touches. It is the view's only writer.

pub mod objects;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::dns::rules;
use crate::dns::view::{SharedView, View};
use objects::{ClusterObject, ObjectKey, ObjectKind, PodRecord, ServiceRecord};

/// What a source reports. Every source (manifests file, Kubernetes API) speaks only this.
#[derive(Debug)]
pub enum ClusterEvent {
    /// An object was created or changed.
    Upsert(ClusterObject),
    /// An object is gone. For a Namespace, `key.name` is its name and `key.namespace` is empty.
    Delete(ObjectKind, ObjectKey),
    /// A complete list of every object of `kinds`: whatever it lacks is gone.
    Resync {
        kinds: Vec<ObjectKind>,
        objects: Vec<ClusterObject>,
    },
}

#[derive(Debug, Default)]
struct NamespaceState {
    /// A Namespace object exists (a namespace also exists while it holds Services or Pods).
    declared: bool,
    services: HashMap<Arc<str>, ServiceRecord>,
    pods: HashMap<Arc<str>, PodRecord>,
    /// For every headless Service with a selector: the names of the pods backing it.
    backing: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
    /// Services with a selector, filed under the hash of one of their selector's pairs: a pod
    /// can only be selected by Services filed under one of its own labels.
    selector_index: HashMap<u64, Vec<Arc<str>>>,
}

impl NamespaceState {
    fn is_empty(&self) -> bool {
        !self.declared && self.services.is_empty() && self.pods.is_empty()
    }
}

/// The state and its single writer. Changes accumulate in a working copy of the view, which
/// [`ClusterState::publish`] swaps in for readers in one step.
pub struct ClusterState {
    namespaces: HashMap<Arc<str>, NamespaceState>,
    required: HashSet<ObjectKind>,
    synced: HashSet<ObjectKind>,
    view: View,
    /// Services whose answers must be rebuilt before the next publish.
    dirty: HashSet<ObjectKey>,
    changed: bool,
    hasher: RandomState,
}

impl ClusterState {
    /// `required`: the kinds that must have been resynced once before the view is complete.
    pub fn new(required: &[ObjectKind], initial_serial: u32) -> Self {
        Self {
            namespaces: HashMap::new(),
            required: required.iter().copied().collect(),
            synced: HashSet::new(),
            view: View::new(initial_serial),
            dirty: HashSet::new(),
            changed: false,
            hasher: RandomState::new(),
        }
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    pub fn service_count(&self) -> usize {
        self.namespaces.values().map(|ns| ns.services.len()).sum()
    }

    pub fn pod_count(&self) -> usize {
        self.namespaces.values().map(|ns| ns.pods.len()).sum()
    }

    pub fn apply(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Upsert(object) => self.upsert(object),
            ClusterEvent::Delete(kind, key) => self.delete(kind, &key),
            ClusterEvent::Resync { kinds, objects } => self.resync(&kinds, objects),
        }
    }

    /// Rebuilds the touched Services and returns the new view if anything changed.
    pub fn publish(&mut self) -> Option<View> {
        for key in std::mem::take(&mut self.dirty) {
            self.refresh_service(&key);
        }
        let now_synced = !self.view.synced() && self.required.is_subset(&self.synced);
        if now_synced {
            self.view.set_synced();
        }
        if !self.changed && !now_synced {
            return None;
        }
        self.changed = false;
        self.view.bump_serial();
        Some(self.view.clone())
    }

    fn upsert(&mut self, object: ClusterObject) {
        match object {
            ClusterObject::Namespace(name) => {
                let ns = self.namespace_mut(&name);
                if !ns.declared {
                    ns.declared = true;
                    self.view.retain_namespace(&name);
                    self.changed = true;
                }
            }
            ClusterObject::Service(service) => self.upsert_service(service),
            ClusterObject::Pod(pod) => self.upsert_pod(pod),
        }
    }

    fn delete(&mut self, kind: ObjectKind, key: &ObjectKey) {
        match kind {
            ObjectKind::Namespace => {
                let Some(ns) = self.namespaces.get_mut(&key.name) else {
                    return;
                };
                if ns.declared {
                    ns.declared = false;
                    self.view.release_namespace(&key.name);
                    self.forget_if_empty(&key.name);
                    self.changed = true;
                }
            }
            ObjectKind::Service => self.delete_service(key),
            ObjectKind::Pod => self.delete_pod(key),
        }
    }

    fn resync(&mut self, kinds: &[ObjectKind], objects: Vec<ClusterObject>) {
        let mut present: HashSet<(ObjectKind, ObjectKey)> = HashSet::with_capacity(objects.len());
        for object in &objects {
            present.insert(match object {
                ClusterObject::Namespace(name) => (ObjectKind::Namespace, namespace_key(name)),
                ClusterObject::Service(s) => (ObjectKind::Service, s.key.clone()),
                ClusterObject::Pod(p) => (ObjectKind::Pod, p.key.clone()),
            });
        }
        let mut gone = Vec::new();
        for (name, ns) in &self.namespaces {
            let mut check = |kind: ObjectKind, key: ObjectKey| {
                if kinds.contains(&kind) && !present.contains(&(kind, key.clone())) {
                    gone.push((kind, key));
                }
            };
            if ns.declared {
                check(ObjectKind::Namespace, namespace_key(name));
            }
            for service in ns.services.values() {
                check(ObjectKind::Service, service.key.clone());
            }
            for pod in ns.pods.values() {
                check(ObjectKind::Pod, pod.key.clone());
            }
        }
        for (kind, key) in gone {
            self.delete(kind, &key);
        }
        // Services before pods: each pod then finds every Service that selects it.
        let mut objects = objects;
        objects.sort_by_key(|o| match o {
            ClusterObject::Namespace(_) => 0,
            ClusterObject::Service(_) => 1,
            ClusterObject::Pod(_) => 2,
        });
        for object in objects {
            self.upsert(object);
        }
        self.synced.extend(kinds.iter().copied());
    }

    fn namespace_mut(&mut self, name: &Arc<str>) -> &mut NamespaceState {
        self.namespaces.entry(name.clone()).or_default()
    }

    /// The namespace's shared name, so that 100k pods of one namespace hold one string.
    fn intern(&mut self, key: &mut ObjectKey) {
        match self.namespaces.get_key_value(&key.namespace) {
            Some((shared, _)) => key.namespace = shared.clone(),
            None => {
                self.namespaces
                    .insert(key.namespace.clone(), NamespaceState::default());
            }
        }
    }

    fn forget_if_empty(&mut self, namespace: &str) {
        if self
            .namespaces
            .get(namespace)
            .is_some_and(NamespaceState::is_empty)
        {
            self.namespaces.remove(namespace);
        }
    }

    fn upsert_service(&mut self, mut service: ServiceRecord) {
        self.intern(&mut service.key);
        let key = service.key.clone();
        let hasher = &self.hasher;
        let ns = self.namespaces.get_mut(&key.namespace).expect("interned");
        if ns.services.get(&key.name) == Some(&service) {
            return;
        }
        let new_hash = selector_hash(hasher, &service);
        match ns.services.insert(key.name.clone(), service) {
            Some(old) => {
                if let Some(hash) = selector_hash(hasher, &old) {
                    unfile(&mut ns.selector_index, hash, &key.name);
                }
            }
            None => self.view.retain_namespace(&key.namespace),
        }
        if let Some(hash) = new_hash {
            ns.selector_index
                .entry(hash)
                .or_default()
                .push(key.name.clone());
        }
        let service = &ns.services[&key.name];
        if rules::lists_endpoints(service) {
            let backing = ns
                .pods
                .values()
                .filter(|pod| rules::backs(service, pod))
                .map(|pod| pod.key.name.clone())
                .collect();
            ns.backing.insert(key.name.clone(), backing);
        } else {
            ns.backing.remove(&key.name);
        }
        self.dirty.insert(key);
        self.changed = true;
    }

    fn delete_service(&mut self, key: &ObjectKey) {
        let Some(ns) = self.namespaces.get_mut(&key.namespace) else {
            return;
        };
        let Some(old) = ns.services.remove(&key.name) else {
            return;
        };
        if let Some(hash) = selector_hash(&self.hasher, &old) {
            unfile(&mut ns.selector_index, hash, &key.name);
        }
        ns.backing.remove(&key.name);
        self.dirty.remove(key);
        self.view.set_service(key, None);
        self.view.release_namespace(&key.namespace);
        self.forget_if_empty(&key.namespace);
        self.changed = true;
    }

    fn upsert_pod(&mut self, mut pod: PodRecord) {
        self.intern(&mut pod.key);
        let key = pod.key.clone();
        let ns = self.namespaces.get_mut(&key.namespace).expect("interned");
        if ns.pods.get(&key.name) == Some(&pod) {
            return;
        }
        let new_ips = address_ips(&pod).to_vec();
        let old = ns.pods.insert(key.name.clone(), pod);
        match &old {
            Some(old) => {
                for ip in address_ips(old) {
                    self.view.remove_pod_ip(&key.namespace, *ip);
                }
            }
            None => self.view.retain_namespace(&key.namespace),
        }
        for ip in new_ips {
            self.view.add_pod_ip(&key.namespace, ip);
        }
        self.reconsider_backing(&key, old.as_ref());
        self.changed = true;
    }

    fn delete_pod(&mut self, key: &ObjectKey) {
        let Some(ns) = self.namespaces.get_mut(&key.namespace) else {
            return;
        };
        let Some(old) = ns.pods.remove(&key.name) else {
            return;
        };
        for ip in address_ips(&old) {
            self.view.remove_pod_ip(&key.namespace, *ip);
        }
        self.reconsider_backing(key, Some(&old));
        self.view.release_namespace(&key.namespace);
        self.forget_if_empty(&key.namespace);
        self.changed = true;
    }

    /// Updates which headless Services the pod `key` backs, given its previous record, and marks
    /// those whose answers change.
    fn reconsider_backing(&mut self, key: &ObjectKey, old: Option<&PodRecord>) {
        let mut candidates: Vec<Arc<str>> = Vec::new();
        let ns = &self.namespaces[&key.namespace];
        let current = ns.pods.get(&key.name);
        for pod in old.into_iter().chain(current) {
            for (k, v) in pod.labels.pairs() {
                if let Some(names) = ns.selector_index.get(&self.hasher.hash_one((k, v))) {
                    candidates.extend(names.iter().cloned());
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let ns = self.namespaces.get_mut(&key.namespace).expect("present");
        for service_name in candidates {
            let Some(service) = ns.services.get(&service_name) else {
                continue;
            };
            let Some(backing) = ns.backing.get_mut(&service_name) else {
                continue;
            };
            let was = backing.contains(&key.name);
            let now = ns
                .pods
                .get(&key.name)
                .is_some_and(|pod| rules::backs(service, pod));
            if now {
                backing.insert(key.name.clone());
            } else {
                backing.remove(&key.name);
            }
            if was || now {
                self.dirty.insert(ObjectKey {
                    namespace: key.namespace.clone(),
                    name: service_name,
                });
            }
        }
    }

    fn refresh_service(&mut self, key: &ObjectKey) {
        let Some(ns) = self.namespaces.get(&key.namespace) else {
            return;
        };
        let Some(service) = ns.services.get(&key.name) else {
            return;
        };
        let backing = ns.backing.get(&key.name).into_iter().flatten();
        let view = rules::service_view(service, backing.filter_map(|name| ns.pods.get(name)));
        self.view.set_service(key, Some(view));
    }

    /// Applies events from `events` until every sender is gone, publishing after each batch.
    pub async fn run(mut self, mut events: mpsc::Receiver<ClusterEvent>, shared: SharedView) {
        while let Some(event) = events.recv().await {
            self.apply(event);
            // Take whatever else is already queued, so a burst becomes one publish.
            while let Ok(event) = events.try_recv() {
                self.apply(event);
            }
            if let Some(view) = self.publish() {
                debug!(
                    serial = view.serial(),
                    services = self.service_count(),
                    pods = self.pod_count(),
                    "published view"
                );
                if view.synced() && !shared.load().synced() {
                    info!(
                        services = self.service_count(),
                        pods = self.pod_count(),
                        "cluster state complete; answering"
                    );
                }
                shared.publish(view);
            }
        }
    }
}

fn namespace_key(name: &Arc<str>) -> ObjectKey {
    ObjectKey {
        namespace: Arc::from(""),
        name: name.clone(),
    }
}

/// Where a Service is filed in the selector index: the hash of its selector's first pair.
fn selector_hash(hasher: &RandomState, service: &ServiceRecord) -> Option<u64> {
    let (key, value) = service.selector.as_ref()?.pairs().next()?;
    Some(hasher.hash_one((key, value)))
}

fn unfile(index: &mut HashMap<u64, Vec<Arc<str>>>, hash: u64, name: &str) {
    if let Some(names) = index.get_mut(&hash) {
        names.retain(|n| &**n != name);
        if names.is_empty() {
            index.remove(&hash);
        }
    }
}

/// The IPs a pod holds for `<a-b-c-d>.<ns>.pod.<zone>`: none once it has finished.
fn address_ips(pod: &PodRecord) -> &[IpAddr] {
    if pod.finished { &[] } else { &pod.ips }
}
