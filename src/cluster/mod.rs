//! The cluster state: the Services and Pods the sources report, and the indices that tell which
//! names a change touches. It is the view's only writer.

pub(crate) mod exports;
pub(crate) mod journal;
mod pods;
pub(crate) mod programming;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use pods::PodTable;
use programming::ProgrammingTimes;
use tracing::{debug, info};

use crate::dns::journal::Journal;
use crate::dns::view::{ServiceView, SharedView, View};
use crate::dns::zone::{EndpointNames, Zone};
use crate::dns::{backing, clusterset};
use crate::records::{
    Addresses, ClusterObject, CompactName, EndpointSliceRecord, ObjectKey, ObjectKind, PodRecord,
    PodTemplate, ServiceImportRecord, ServiceRecord,
};

/// What a source reports. Every source (manifests file, Kubernetes API) speaks only this.
#[derive(Debug)]
pub enum ClusterEvent {
    /// An object was created or changed.
    Upsert(ClusterObject),
    /// An object is gone (a Namespace's key: [`ObjectKey::of_namespace`]).
    Delete(ObjectKind, ObjectKey),
    /// A complete list of every object of `kinds` (in `namespace`, or everywhere): whatever it
    /// lacks is gone. Applied as one change, so readers never see a half-replaced state.
    Resync {
        kinds: Vec<ObjectKind>,
        namespace: Option<Arc<str>>,
        objects: Vec<ClusterObject>,
    },
    /// A complete list of every object of `kind` (in `namespace`, or everywhere) begins; it
    /// arrives in parts, so that a large list is never held whole. Each object is applied as it
    /// comes (a list only adds and changes until its end), and nothing is removed before
    /// [`ClusterEvent::ResyncEnd`]: answers never lose a name the list still holds.
    ResyncBegin {
        kind: ObjectKind,
        namespace: Option<Arc<str>>,
    },
    /// The next objects of the list begun for `kind` in `namespace`.
    ResyncObjects {
        kind: ObjectKind,
        namespace: Option<Arc<str>>,
        objects: Vec<ClusterObject>,
    },
    /// The list ends: if `complete`, whatever it lacked is gone; if not (it broke off), nothing
    /// is removed.
    ResyncEnd {
        kind: ObjectKind,
        namespace: Option<Arc<str>>,
        complete: bool,
    },
    /// The source has delivered a complete state once; from now on, absent means absent.
    Synced,
}

/// From this many Services to rebuild at once, their answers are worked out on every core.
const PARALLEL_REFRESH: usize = 4096;

/// A list arriving in parts: its kind and scope, and the keys it has brought so far.
type OpenResync = ((ObjectKind, Option<Arc<str>>), HashSet<ObjectKey>);

#[derive(Debug, Default)]
struct NamespaceState {
    /// A Namespace object exists (a namespace also exists while it holds Services or Pods).
    declared: bool,
    services: HashMap<CompactName, ServiceRecord>,
    pods: PodTable,
    /// For every Service that lists its endpoints: the names of the pods backing it.
    backing: HashMap<CompactName, BTreeSet<CompactName>>,
    /// For Services that list their endpoints: the pods they select but do not list (not Ready,
    /// terminating, ...), to say why; only Services with some have an entry.
    held_back: HashMap<CompactName, BTreeSet<CompactName>>,
    /// Services with a selector, filed under the hash of one of their selector's pairs: a pod
    /// can only be selected by Services filed under one of its own labels.
    selector_index: HashMap<u64, Vec<CompactName>>,
    slices: HashMap<CompactName, EndpointSliceRecord>,
    /// Service name → names of its EndpointSlices.
    slices_by_service: HashMap<CompactName, BTreeSet<CompactName>>,
    imports: HashMap<CompactName, ServiceImportRecord>,
    /// ServiceImport name → names of the EndpointSlices MCS controllers wrote for it.
    slices_by_import: HashMap<CompactName, BTreeSet<CompactName>>,
    /// The names of this namespace's ServiceExports.
    exports: BTreeSet<CompactName>,
}

impl NamespaceState {
    fn is_empty(&self) -> bool {
        !self.declared
            && self.services.is_empty()
            && self.pods.is_empty()
            && self.slices.is_empty()
            && self.imports.is_empty()
            && self.exports.is_empty()
    }

    /// Keys of the objects of `kind` held here.
    fn keys(&self, name: &Arc<str>, kind: ObjectKind) -> Vec<ObjectKey> {
        match kind {
            ObjectKind::Namespace if self.declared => vec![ObjectKey::of_namespace(name)],
            ObjectKind::Namespace => Vec::new(),
            ObjectKind::Service => self.services.values().map(|s| s.key.clone()).collect(),
            ObjectKind::Pod => self
                .pods
                .values()
                .map(|p| ObjectKey {
                    namespace: name.clone(),
                    name: p.name.clone(),
                })
                .collect(),
            ObjectKind::EndpointSlice | ObjectKind::ImportSlice => self
                .slices
                .values()
                .filter(|e| e.kind() == kind)
                .map(|e| e.key.clone())
                .collect(),
            ObjectKind::ServiceImport => self.imports.values().map(|i| i.key.clone()).collect(),
            ObjectKind::ServiceExport => self
                .exports
                .iter()
                .map(|export| ObjectKey {
                    namespace: name.clone(),
                    name: export.clone(),
                })
                .collect(),
        }
    }
}

/// The state and its single writer. Changes accumulate in a working copy of the view, which
/// [`ClusterState::publish`] swaps in for readers in one step.
pub struct ClusterState {
    namespaces: HashMap<Arc<str>, NamespaceState>,
    view: View,
    /// Services whose answers must be rebuilt before the next publish.
    dirty: HashSet<ObjectKey>,
    /// ServiceImports whose answers must be rebuilt before the next publish.
    dirty_imports: HashSet<ObjectKey>,
    changed: bool,
    hasher: RandomState,
    /// One copy of each distinct pod template (labels and naming), shared by its pods.
    templates: HashSet<Arc<PodTemplate>>,
    /// Size of `templates` after its last sweep (see [`ClusterState::intern_template`]).
    templates_swept: usize,
    endpoint_names: EndpointNames,
    /// The `programming::KINDS` of the Services rebuilt since the last publish, as bits.
    rebuilt_kinds: u8,
    /// Set when zone transfers are allowed: each publication's record changes are journaled.
    journaling: Option<Box<Journaling>>,
    /// Lists arriving in parts ([`ClusterEvent::ResyncBegin`]); one per watch at most.
    open_resyncs: Vec<OpenResync>,
    /// Between [`ClusterState::load`] and [`ClusterState::finish_loading`]: which pods back
    /// which Services is worked out once at the end, not object by object.
    loading: bool,
}

/// What working out a publication's record changes takes.
struct Journaling {
    zone: Arc<Zone>,
    /// The view as last published, to compare with.
    published: View,
    /// Services, ServiceImports and addresses touched since then.
    services: HashSet<ObjectKey>,
    imports: HashSet<ObjectKey>,
    addresses: HashSet<IpAddr>,
}

impl ClusterState {
    /// An empty, not yet synced state; serials count up from `initial_serial`.
    pub fn new(initial_serial: u32) -> Self {
        Self {
            namespaces: HashMap::new(),
            view: View::new(initial_serial),
            dirty: HashSet::new(),
            dirty_imports: HashSet::new(),
            changed: false,
            hasher: RandomState::new(),
            templates: HashSet::new(),
            templates_swept: 0,
            endpoint_names: EndpointNames::default(),
            rebuilt_kinds: 0,
            journaling: None,
            open_resyncs: Vec::new(),
            loading: false,
        }
    }

    /// Journals each publication's record changes for IXFR, with names in `zone`; the serial
    /// then moves only when a record changed (set before the first event).
    pub fn with_journal(mut self, zone: Arc<Zone>) -> Self {
        self.journaling = Some(Box::new(Journaling {
            zone,
            published: self.view.clone(),
            services: HashSet::new(),
            imports: HashSet::new(),
            addresses: HashSet::new(),
        }));
        self
    }

    /// Names endpoints without a hostname of their own by `names` (set before the first event).
    pub fn with_endpoint_names(mut self, names: EndpointNames) -> Self {
        self.endpoint_names = names;
        self
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    pub fn service_count(&self) -> usize {
        self.namespaces.values().map(|ns| ns.services.len()).sum()
    }

    pub fn import_count(&self) -> usize {
        self.namespaces.values().map(|ns| ns.imports.len()).sum()
    }

    pub fn pod_count(&self) -> usize {
        self.namespaces.values().map(|ns| ns.pods.len()).sum()
    }

    /// Adds objects to a state that holds nothing yet, part by part (a source's first state
    /// read as it arrives), until [`ClusterState::finish_loading`].
    ///
    /// Object by object, a Service finds its pods by going through every pod of its namespace,
    /// and Services and pods arrive interleaved: a million pods in 1,000 namespaces cost 50
    /// million such checks. Deferred, each pod finds its Services through the selector index
    /// once, at the end. Only for a first state: a pod replaced while loading would stay with
    /// the Services of its old labels.
    pub fn load(&mut self, objects: Vec<ClusterObject>) {
        self.loading = true;
        for object in objects {
            self.upsert(object);
        }
    }

    /// Works out what [`ClusterState::load`] deferred: the pods backing each Service, and why
    /// pods have no name under their subdomain.
    pub fn finish_loading(&mut self) {
        if !std::mem::take(&mut self.loading) {
            return;
        }
        let names: Vec<Arc<str>> = self.namespaces.keys().cloned().collect();
        for namespace in names {
            let pods: Vec<CompactName> = self.namespaces[&namespace]
                .pods
                .values()
                .map(|pod| pod.name.clone())
                .collect();
            for name in pods {
                let key = ObjectKey {
                    namespace: namespace.clone(),
                    name,
                };
                self.reconsider_backing(&key, None);
                self.refresh_stray(&key);
            }
        }
    }

    /// How many objects are held: Namespace objects, Services, Pods, EndpointSlices and
    /// ServiceImports.
    pub fn object_count(&self) -> usize {
        self.namespaces
            .values()
            .map(|ns| {
                usize::from(ns.declared)
                    + ns.services.len()
                    + ns.pods.len()
                    + ns.slices.len()
                    + ns.imports.len()
            })
            .sum()
    }

    pub fn apply(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Upsert(object) => self.upsert(object),
            ClusterEvent::Delete(kind, key) => self.delete(kind, &key),
            ClusterEvent::Resync {
                kinds,
                namespace,
                objects,
            } => self.resync(&kinds, namespace.as_deref(), objects),
            ClusterEvent::ResyncBegin { kind, namespace } => {
                let scope = (kind, namespace);
                self.open_resyncs.retain(|(open, _)| *open != scope);
                self.open_resyncs.push((scope, HashSet::new()));
            }
            ClusterEvent::ResyncObjects {
                kind,
                namespace,
                objects,
            } => {
                let scope = (kind, namespace);
                if let Some((_, seen)) = self.open_resyncs.iter_mut().find(|(s, _)| *s == scope) {
                    seen.extend(objects.iter().map(ClusterObject::key));
                }
                for object in objects {
                    self.upsert(object);
                }
            }
            ClusterEvent::ResyncEnd {
                kind,
                namespace,
                complete,
            } => {
                let scope = (kind, namespace);
                let Some(at) = self.open_resyncs.iter().position(|(s, _)| *s == scope) else {
                    return;
                };
                let (_, seen) = self.open_resyncs.swap_remove(at);
                if complete {
                    let gone =
                        self.keys_absent(&[kind], scope.1.as_deref(), |_, key| seen.contains(key));
                    for (kind, key) in gone {
                        self.delete(kind, &key);
                    }
                }
            }
            ClusterEvent::Synced => {
                if !self.view.synced() {
                    self.view.set_synced();
                    self.changed = true;
                }
            }
        }
    }

    /// Rebuilds the touched Services and returns the new view if anything changed.
    pub fn publish(&mut self) -> Option<View> {
        let dirty: Vec<ObjectKey> = std::mem::take(&mut self.dirty).into_iter().collect();
        self.refresh_services(dirty);
        for key in std::mem::take(&mut self.dirty_imports) {
            if let Some(journaling) = self.journaling.as_deref_mut() {
                journaling.imports.insert(key.clone());
            }
            let answers = self.namespaces.get(&key.namespace).and_then(|ns| {
                let import = ns.imports.get(&key.name)?;
                let slices = ns.slices_by_import.get(&key.name).into_iter().flatten();
                let slices = slices.filter_map(|name| ns.slices.get(name));
                Some(clusterset::import_view(import, slices))
            });
            self.view.set_import(&key, answers);
        }
        if !self.changed {
            return None;
        }
        self.changed = false;
        let Some(journaling) = self.journaling.as_deref_mut() else {
            self.view.bump_serial();
            return Some(self.view.clone());
        };
        let services = std::mem::take(&mut journaling.services);
        let imports = std::mem::take(&mut journaling.imports);
        let addresses = std::mem::take(&mut journaling.addresses);
        if journaling.published.synced() && self.view.synced() {
            let change = journal::diff(
                &journaling.published,
                &self.view,
                &journaling.zone,
                services.iter().map(ObjectKey::names),
                imports.iter().map(ObjectKey::names),
                addresses,
                Journal::MAX_RECORDS,
            );
            match change {
                Some(change) if change.is_empty() => {}
                Some(mut change) => {
                    change.from = self.view.serial();
                    self.view.bump_serial();
                    change.to = self.view.serial();
                    self.view.record_change(change);
                }
                None => {
                    info!(
                        services = services.len(),
                        "more records changed at once than the IXFR journal holds: \
                         secondaries will transfer the whole zone"
                    );
                    self.view.bump_serial();
                    self.view.clear_journal();
                }
            }
        } else {
            // The first complete state: nothing before it to differ from.
            self.view.bump_serial();
            self.view.clear_journal();
        }
        journaling.published = self.view.clone();
        Some(self.view.clone())
    }

    /// Notes for the journal that `key`'s records may have changed.
    fn touch_service(&mut self, key: &ObjectKey) {
        if let Some(journaling) = self.journaling.as_deref_mut() {
            journaling.services.insert(key.clone());
        }
    }

    /// Notes for the journal that the names of `ips` may have changed.
    fn touch_addresses(&mut self, ips: impl IntoIterator<Item = IpAddr>) {
        if let Some(journaling) = self.journaling.as_deref_mut() {
            journaling.addresses.extend(ips);
        }
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
            ClusterObject::Pod { namespace, pod } => self.upsert_pod(namespace, pod),
            ClusterObject::EndpointSlice(slice) => self.upsert_slice(slice),
            ClusterObject::ServiceImport(import) => self.upsert_import(import),
            ClusterObject::ServiceExport(mut key) => {
                self.intern_namespace(&mut key.namespace);
                let ns = self.namespaces.get_mut(&key.namespace).expect("interned");
                if ns.exports.insert(key.name.clone()) {
                    self.view.set_export(&key, true);
                    self.changed = true;
                }
            }
        }
    }

    fn delete(&mut self, kind: ObjectKind, key: &ObjectKey) {
        match kind {
            ObjectKind::Namespace => {
                let Some(ns) = self.namespaces.get_mut(&*key.name) else {
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
            ObjectKind::EndpointSlice | ObjectKind::ImportSlice => self.delete_slice(key),
            ObjectKind::ServiceImport => self.delete_import(key),
            ObjectKind::ServiceExport => {
                let Some(ns) = self.namespaces.get_mut(&key.namespace) else {
                    return;
                };
                if ns.exports.remove(&key.name) {
                    self.view.set_export(key, false);
                    self.forget_if_empty(&key.namespace);
                    self.changed = true;
                }
            }
        }
    }

    fn resync(
        &mut self,
        kinds: &[ObjectKind],
        namespace: Option<&str>,
        objects: Vec<ClusterObject>,
    ) {
        let present: HashSet<(ObjectKind, ObjectKey)> =
            objects.iter().map(|o| (o.kind(), o.key())).collect();
        let gone = self.keys_absent(kinds, namespace, |kind, key| {
            present.contains(&(kind, key.clone()))
        });
        for (kind, key) in gone {
            self.delete(kind, &key);
        }
        // Services before pods: each pod then finds every Service that selects it.
        let mut objects = objects;
        objects.sort_by_key(|o| match o.kind() {
            ObjectKind::Namespace => 0,
            ObjectKind::Service | ObjectKind::ServiceImport | ObjectKind::ServiceExport => 1,
            ObjectKind::EndpointSlice | ObjectKind::ImportSlice => 2,
            ObjectKind::Pod => 3,
        });
        for object in objects {
            self.upsert(object);
        }
    }

    /// The keys of the objects of `kinds` held in `namespace` (everywhere: `None`) that are not
    /// `listed`. A scoped resync covers one namespace: its objects, or its Namespace object.
    /// Only the absent are gathered: every key held is 40 MB at a million pods.
    fn keys_absent(
        &self,
        kinds: &[ObjectKind],
        namespace: Option<&str>,
        listed: impl Fn(ObjectKind, &ObjectKey) -> bool,
    ) -> Vec<(ObjectKind, ObjectKey)> {
        let mut keys = Vec::new();
        for (name, ns) in &self.namespaces {
            if namespace.is_none_or(|scope| &**name == scope) {
                for &kind in kinds {
                    let absent = ns
                        .keys(name, kind)
                        .into_iter()
                        .filter(|key| !listed(kind, key));
                    keys.extend(absent.map(|key| (kind, key)));
                }
            }
        }
        keys
    }

    fn namespace_mut(&mut self, name: &Arc<str>) -> &mut NamespaceState {
        self.namespaces.entry(name.clone()).or_default()
    }

    /// The namespace's shared name, so that 100k pods of one namespace hold one string.
    fn intern_namespace(&mut self, namespace: &mut Arc<str>) {
        match self.namespaces.get_key_value(namespace) {
            Some((shared, _)) => *namespace = shared.clone(),
            None => {
                self.namespaces
                    .insert(namespace.clone(), NamespaceState::default());
            }
        }
    }

    /// The shared copy of `template`.
    ///
    /// A template normally leaves the set with its last pod ([`ClusterState::forget_pod`]), but
    /// not when a source still held a copy then (converting threads remember their last few):
    /// whenever the set has doubled since the last sweep, the templates only it holds go.
    fn intern_template(&mut self, template: Arc<PodTemplate>) -> Arc<PodTemplate> {
        if let Some(shared) = self.templates.get(&template) {
            return shared.clone();
        }
        self.templates.insert(template.clone());
        if self.templates.len() > 2 * self.templates_swept.max(64) {
            self.templates.retain(|t| Arc::strong_count(t) > 1);
            self.templates_swept = self.templates.len();
        }
        template
    }

    /// Drops a pod record that left the state, and its template with the last pod using it.
    fn forget_pod(&mut self, pod: PodRecord) {
        // One reference is the set's, one this record's.
        if Arc::strong_count(&pod.template) == 2 {
            self.templates.remove(&pod.template);
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
        self.intern_namespace(&mut service.key.namespace);
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
        ns.held_back.remove(&key.name);
        if backing::lists_endpoints(service) {
            let (mut backing, mut held_back) = (BTreeSet::new(), BTreeSet::new());
            let pods = if self.loading {
                [].iter()
            } else {
                ns.pods.values()
            };
            for pod in pods.filter(|pod| backing::selects(service, pod)) {
                match backing::held_back(service, pod) {
                    None => backing.insert(pod.name.clone()),
                    Some(_) => held_back.insert(pod.name.clone()),
                };
            }
            ns.backing.insert(key.name.clone(), backing);
            if !held_back.is_empty() {
                ns.held_back.insert(key.name.clone(), held_back);
            }
        } else {
            ns.backing.remove(&key.name);
        }
        if !self.loading {
            self.refresh_strays(&key);
        }
        self.dirty.insert(key);
        self.changed = true;
    }

    /// Updates in the view why the pods whose subdomain is `service`'s name have no name there.
    fn refresh_strays(&mut self, service: &ObjectKey) {
        let Some(ns) = self.namespaces.get(&service.namespace) else {
            return;
        };
        let subdomain_service = ns.services.get(&service.name);
        for pod in ns.pods.values() {
            if pod.subdomain() == Some(&*service.name) {
                let stray = backing::stray(pod, subdomain_service);
                self.view.set_stray(&service.namespace, &pod.name, stray);
            }
        }
    }

    /// Updates in the view why pod `key` (present or gone) has no name under its subdomain.
    fn refresh_stray(&mut self, key: &ObjectKey) {
        let Some(ns) = self.namespaces.get(&key.namespace) else {
            return;
        };
        let stray = ns.pods.get(&key.name).and_then(|pod| {
            let subdomain_service = pod.subdomain().and_then(|name| ns.services.get(name));
            backing::stray(pod, subdomain_service)
        });
        self.view.set_stray(&key.namespace, &key.name, stray);
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
        ns.held_back.remove(&key.name);
        self.dirty.remove(key);
        self.touch_service(key);
        self.view.set_service(key, None);
        self.refresh_strays(key);
        self.view.release_namespace(&key.namespace);
        self.forget_if_empty(&key.namespace);
        self.changed = true;
    }

    fn upsert_pod(&mut self, mut namespace: Arc<str>, mut pod: PodRecord) {
        self.intern_namespace(&mut namespace);
        pod.template = self.intern_template(pod.template);
        let key = ObjectKey {
            namespace,
            name: pod.name.clone(),
        };
        let ns = self.namespaces.get_mut(&key.namespace).expect("interned");
        if ns.pods.get(&key.name) == Some(&pod) {
            self.forget_pod(pod);
            return;
        }
        // Copied (no allocation for one IPv4 address): the record moves into the table.
        let new_ips = (!pod.finished).then(|| pod.ips.clone());
        let old = ns.pods.insert(pod);
        let old_ips = old.as_ref().map(|old| (!old.finished).then_some(&old.ips));
        // Most changes (readiness, above all) keep the addresses: then the address table, whose
        // shard a published view shares, is left alone rather than copied.
        if old_ips != Some(new_ips.as_ref()) {
            let old_addresses = old.iter().flat_map(address_ips);
            let touched: Vec<IpAddr> = old_addresses
                .chain(new_ips.iter().flat_map(Addresses::iter))
                .collect();
            self.touch_addresses(touched);
            match &old {
                Some(old) => {
                    for ip in address_ips(old) {
                        self.view.remove_pod_ip(&key.namespace, ip);
                    }
                }
                None => self.view.retain_namespace(&key.namespace),
            }
            for ip in new_ips.iter().flat_map(Addresses::iter) {
                self.view.add_pod_ip(&key.namespace, ip);
            }
        }
        if !self.loading {
            self.reconsider_backing(&key, old.as_ref());
            self.refresh_stray(&key);
        }
        if let Some(old) = old {
            self.forget_pod(old);
        }
        self.changed = true;
    }

    fn delete_pod(&mut self, key: &ObjectKey) {
        let Some(ns) = self.namespaces.get_mut(&key.namespace) else {
            return;
        };
        let Some(old) = ns.pods.remove(&key.name) else {
            return;
        };
        self.touch_addresses(address_ips(&old));
        for ip in address_ips(&old) {
            self.view.remove_pod_ip(&key.namespace, ip);
        }
        self.reconsider_backing(key, Some(&old));
        self.refresh_stray(key);
        self.forget_pod(old);
        self.view.release_namespace(&key.namespace);
        self.forget_if_empty(&key.namespace);
        self.changed = true;
    }

    /// Updates which Services the pod `key` backs, given its previous record, and marks
    /// those whose answers change.
    fn reconsider_backing(&mut self, key: &ObjectKey, old: Option<&PodRecord>) {
        let mut candidates: Vec<CompactName> = Vec::new();
        let ns = &self.namespaces[&key.namespace];
        let current = ns.pods.get(&key.name);
        for pod in old.into_iter().chain(current) {
            for (k, v) in pod.labels().pairs_of(&pod.name) {
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
            let pod = ns
                .pods
                .get(&key.name)
                .filter(|pod| backing::selects(service, pod));
            let held = pod.and_then(|pod| backing::held_back(service, pod));
            let (now_backing, now_held) = (pod.is_some() && held.is_none(), held.is_some());
            let was_backing = if now_backing {
                !backing.insert(key.name.clone())
            } else {
                backing.remove(&key.name)
            };
            let was_held = match ns.held_back.get_mut(&service_name) {
                Some(names) if !now_held => {
                    let was = names.remove(&key.name);
                    if names.is_empty() {
                        ns.held_back.remove(&service_name);
                    }
                    was
                }
                Some(names) => !names.insert(key.name.clone()),
                None if now_held => {
                    let names = BTreeSet::from([key.name.clone()]);
                    ns.held_back.insert(service_name.clone(), names);
                    false
                }
                None => false,
            };
            if was_backing || now_backing || was_held || now_held {
                self.dirty.insert(ObjectKey {
                    namespace: key.namespace.clone(),
                    name: service_name,
                });
            }
        }
    }

    fn upsert_slice(&mut self, mut slice: EndpointSliceRecord) {
        self.intern_namespace(&mut slice.key.namespace);
        let key = slice.key.clone();
        let ns = self.namespaces.get_mut(&key.namespace).expect("interned");
        if ns.slices.get(&key.name) == Some(&slice) {
            return;
        }
        let owner = ObjectKey {
            namespace: key.namespace.clone(),
            name: slice.service.clone(),
        };
        let filed = match slice.cluster {
            Some(_) => &mut ns.slices_by_import,
            None => &mut ns.slices_by_service,
        };
        filed
            .entry(slice.service.clone())
            .or_default()
            .insert(key.name.clone());
        self.dirty_owner(&slice, owner);
        let ns = self.namespaces.get_mut(&key.namespace).expect("interned");
        let slice_kind = slice.kind();
        let service = slice.service.clone();
        match ns.slices.insert(key.name.clone(), slice) {
            Some(old) if old.service != service || old.kind() != slice_kind => {
                unfile_slice(ns, &old, &key.name);
                let old_owner = ObjectKey {
                    namespace: key.namespace.clone(),
                    name: old.service.clone(),
                };
                self.dirty_owner(&old, old_owner);
            }
            Some(_) => {}
            None => self.view.retain_namespace(&key.namespace),
        }
        self.changed = true;
    }

    /// Marks the Service or ServiceImport (`owner`) that `slice` belongs to for rebuilding.
    fn dirty_owner(&mut self, slice: &EndpointSliceRecord, owner: ObjectKey) {
        match slice.cluster {
            Some(_) => self.dirty_imports.insert(owner),
            None => self.dirty.insert(owner),
        };
    }

    fn upsert_import(&mut self, mut import: ServiceImportRecord) {
        self.intern_namespace(&mut import.key.namespace);
        let key = import.key.clone();
        let ns = self.namespaces.get_mut(&key.namespace).expect("interned");
        if ns.imports.get(&key.name) == Some(&import) {
            return;
        }
        if ns.imports.insert(key.name.clone(), import).is_none() {
            self.view.retain_namespace(&key.namespace);
        }
        self.dirty_imports.insert(key);
        self.changed = true;
    }

    fn delete_import(&mut self, key: &ObjectKey) {
        let Some(ns) = self.namespaces.get_mut(&key.namespace) else {
            return;
        };
        if ns.imports.remove(&key.name).is_none() {
            return;
        }
        self.dirty_imports.insert(key.clone());
        self.view.release_namespace(&key.namespace);
        self.forget_if_empty(&key.namespace);
        self.changed = true;
    }

    fn delete_slice(&mut self, key: &ObjectKey) {
        let Some(ns) = self.namespaces.get_mut(&key.namespace) else {
            return;
        };
        let Some(old) = ns.slices.remove(&key.name) else {
            return;
        };
        unfile_slice(ns, &old, &key.name);
        let owner = ObjectKey {
            namespace: key.namespace.clone(),
            name: old.service.clone(),
        };
        self.dirty_owner(&old, owner);
        self.view.release_namespace(&key.namespace);
        self.forget_if_empty(&key.namespace);
        self.changed = true;
    }

    /// Rebuilds the answers of the Services `keys` (those gone are skipped): worked out on
    /// every core when there are many (a first state's hundred thousand Services took two
    /// seconds on one), put into the view in order.
    fn refresh_services(&mut self, keys: Vec<ObjectKey>) {
        let threads = if keys.len() < PARALLEL_REFRESH {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
        };
        let views: Vec<Option<(Option<usize>, ServiceView)>> = if threads == 1 {
            keys.iter().map(|key| self.service_view(key)).collect()
        } else {
            let this = &*self;
            let part = keys.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let workers: Vec<_> = keys
                    .chunks(part)
                    .map(|keys| {
                        scope.spawn(move || {
                            keys.iter()
                                .map(|key| this.service_view(key))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|worker| worker.join().expect("building answers does not panic"))
                    .collect()
            })
        };
        for (key, view) in keys.iter().zip(views) {
            self.touch_service(key);
            let Some((kind, view)) = view else {
                continue;
            };
            if let Some(kind) = kind {
                self.rebuilt_kinds |= 1 << kind;
            }
            self.view.set_service(key, Some(view));
        }
    }

    /// The answers of Service `key` as the state now holds it, with its programming kind;
    /// `None` if it is gone.
    fn service_view(&self, key: &ObjectKey) -> Option<(Option<usize>, ServiceView)> {
        let ns = self.namespaces.get(&key.namespace)?;
        let service = ns.services.get(&key.name)?;
        let backing = ns.backing.get(&key.name).into_iter().flatten();
        let held_back = ns.held_back.get(&key.name).into_iter().flatten();
        let slices = ns.slices_by_service.get(&key.name).into_iter().flatten();
        let view = backing::service_view(
            service,
            backing.filter_map(|name| ns.pods.get(name)),
            held_back.filter_map(|name| ns.pods.get(name)),
            slices.filter_map(|name| ns.slices.get(name)),
            self.endpoint_names,
        );
        Some((programming::kind_of(service), view))
    }

    /// Applies events from `events` until every sender is gone, publishing after each batch;
    /// how long each batch took to be published is recorded in `programming`.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<ClusterEvent>,
        shared: SharedView,
        programming: Arc<ProgrammingTimes>,
    ) {
        while let Some(event) = events.recv().await {
            let received = Instant::now();
            self.rebuilt_kinds = 0;
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
                let took = received.elapsed();
                for kind in 0..programming::KINDS.len() {
                    if self.rebuilt_kinds & (1 << kind) != 0 {
                        programming.observe(kind, took);
                    }
                }
            }
        }
    }
}

/// Takes slice `name` (`slice` as it was filed) off its Service's or ServiceImport's list.
fn unfile_slice(ns: &mut NamespaceState, slice: &EndpointSliceRecord, name: &str) {
    let filed = match slice.cluster {
        Some(_) => &mut ns.slices_by_import,
        None => &mut ns.slices_by_service,
    };
    let service = &*slice.service;
    if let Some(names) = filed.get_mut(service) {
        names.remove(name);
        if names.is_empty() {
            filed.remove(service);
        }
    }
}

/// Where a Service is filed in the selector index: the hash of its selector's first pair.
fn selector_hash(hasher: &RandomState, service: &ServiceRecord) -> Option<u64> {
    let (key, value) = service.selector.as_ref()?.pairs().next()?;
    Some(hasher.hash_one((key, value)))
}

fn unfile(index: &mut HashMap<u64, Vec<CompactName>>, hash: u64, name: &str) {
    if let Some(names) = index.get_mut(&hash) {
        names.retain(|n| &**n != name);
        if names.is_empty() {
            index.remove(&hash);
        }
    }
}

/// The IPs a pod holds for `<a-b-c-d>.<ns>.pod.<zone>`: none once it has finished.
fn address_ips(pod: &PodRecord) -> impl Iterator<Item = IpAddr> + '_ {
    pod.ips.iter().filter(|_| !pod.finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Labels, PodHostname};

    fn pod(name: &str, subdomain: &str) -> ClusterObject {
        let ordinal = name.rsplit_once('-').unwrap().1;
        let labels = [
            ("app", subdomain),
            ("statefulset.kubernetes.io/pod-name", name),
            ("apps.kubernetes.io/pod-index", ordinal),
        ];
        ClusterObject::Pod {
            namespace: "ns".into(),
            pod: PodRecord {
                name: name.into(),
                ips: Default::default(),
                template: Arc::new(PodTemplate {
                    labels: Labels::owned_by(
                        name,
                        labels.map(|(k, v)| (k.to_string(), v.to_string())),
                    ),
                    hostname: PodHostname::of(name, Some(name)),
                    subdomain: Some(subdomain.into()),
                    named_ports: Box::new([]),
                    statefulset: None,
                }),
                ready: true,
                terminating: false,
                finished: false,
            },
        }
    }

    /// Pods of one template share one template record (labels that repeat a pod's name or
    /// ordinal included), which goes with the last pod that uses it.
    #[test]
    fn pod_templates_are_shared_and_released() {
        let mut state = ClusterState::new(1);
        for name in ["web-0", "web-1", "web-2"] {
            state.apply(ClusterEvent::Upsert(pod(name, "web")));
        }
        state.apply(ClusterEvent::Upsert(pod("db-0", "db")));
        assert_eq!(state.templates.len(), 2);
        let ns = &state.namespaces["ns"];
        let (web0, web1) = (ns.pods.get("web-0").unwrap(), ns.pods.get("web-1").unwrap());
        assert!(Arc::ptr_eq(&web0.template, &web1.template));
        assert_eq!(web1.hostname().map(|h| &**h), Some("web-1"));
        assert_eq!(
            web1.labels().pairs_of(&web1.name).collect::<Vec<_>>(),
            [
                ("app", "web"),
                ("apps.kubernetes.io/pod-index", "1"),
                ("statefulset.kubernetes.io/pod-name", "web-1"),
            ]
        );

        // Moving db-0 under `web` drops the template only it used; re-applying a pod keeps it.
        state.apply(ClusterEvent::Upsert(pod("db-0", "web")));
        state.apply(ClusterEvent::Upsert(pod("web-0", "web")));
        assert_eq!(state.templates.len(), 1);
        for name in ["web-0", "web-1", "web-2", "db-0"] {
            state.apply(ClusterEvent::Delete(
                ObjectKind::Pod,
                ObjectKey::new("ns", name),
            ));
        }
        assert!(state.templates.is_empty() && state.pod_count() == 0);

        // A template a source still holds when its last pod goes stays in the set until a
        // sweep; the set never holds more than about twice the templates in use.
        for round in 0..10 {
            let name = format!("web-{round}");
            state.apply(ClusterEvent::Upsert(pod(&name, &name)));
            let held = state.namespaces["ns"]
                .pods
                .get(&name)
                .unwrap()
                .template
                .clone();
            state.apply(ClusterEvent::Delete(
                ObjectKind::Pod,
                ObjectKey::new("ns", &name),
            ));
            drop(held);
        }
        assert_eq!(state.templates.len(), 10);
        for i in 0..200 {
            state.apply(ClusterEvent::Upsert(pod(
                &format!("db-{i}"),
                &format!("db{i}"),
            )));
        }
        assert!(
            state.templates.len() <= 2 * 200,
            "{}",
            state.templates.len()
        );
        assert!(
            state
                .templates
                .iter()
                .all(|t| &**t.subdomain.as_ref().unwrap() != "web-0")
        );
    }
}

#[cfg(test)]
pub(crate) mod proptests;
