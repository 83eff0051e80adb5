//! The DNS view: what every name in the zone answers, as one immutable snapshot.
//!
//! The maps are persistent (structurally shared), so the single writer clones the current view in
//! O(1), changes the few entries an event touches, and publishes the result with one atomic
//! pointer swap. Readers load the current snapshot without locks and never see a half-applied
//! change.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hashbrown::Equivalent;

use crate::dns::diagnosis::{ServiceDiagnosis, Stray};
use crate::dns::holders::{
    Holders, ManyHolders, NamespaceRef, PackedHolders, ServiceKey, ServiceRef,
};
use crate::dns::journal::{Change, Journal};
use crate::dns::sharded::{self, ShardedMap};
use crate::records::{Addresses, CompactName, ImportKind, ObjectKey, ServiceKind, ServicePort};

/// One address-bearing name under a headless Service: a pod's hostname, or its dashed IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// A pod's hostname (shared with its record when long) or its dashed IP.
    pub label: CompactName,
    pub ips: Addresses,
}

/// What a Service name and the names below it answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub kind: ServiceKind,
    pub ports: Arc<[ServicePort]>,
    /// Headless only; sorted by label, labels unique.
    pub endpoints: Box<[Endpoint]>,
    /// The endpoints' SRV ports when a target port is named: one row per endpoint, as wide as
    /// `ports`, `0` where the endpoint lacks the port. Empty when every target port is a number,
    /// used as is: then no endpoint needs a row (at 100k endpoints a list in each cost 1.6 MB).
    pub endpoint_ports: Box<[u16]>,
    /// Why it lists fewer endpoints than it might; `None` for most Services.
    pub diagnosis: Option<Box<ServiceDiagnosis>>,
}

impl ServiceView {
    pub fn endpoint(&self, label: &str) -> Option<&Endpoint> {
        self.endpoints
            .binary_search_by(|e| (*e.label).cmp(label))
            .ok()
            .map(|i| &self.endpoints[i])
    }

    /// The port the `endpoint`th endpoint serves for the Service's `index`th port, if it serves
    /// it.
    pub fn endpoint_port(&self, index: usize, endpoint: usize) -> Option<u16> {
        let row = endpoint * self.ports.len();
        let port = match self.endpoint_ports.get(row + index) {
            Some(&resolved) => resolved,
            None => self.ports[index].numbered_target(),
        };
        (port != 0).then_some(port)
    }

    /// Every address this Service puts in reverse DNS.
    pub fn reverse_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let cluster_ips: &[IpAddr] = match &self.kind {
            ServiceKind::ClusterIp(ips) => ips,
            _ => &[],
        };
        cluster_ips
            .iter()
            .copied()
            .chain(self.endpoints.iter().flat_map(|e| e.ips.iter()))
    }
}

/// One endpoint of a headless ServiceImport: `<label>.<cluster>.<service>.<ns>.svc.<clusterset>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportEndpoint {
    /// The cluster the endpoint is in (its slice's `multicluster.kubernetes.io/source-cluster`).
    pub cluster: Arc<str>,
    /// Its hostname, or its dashed IP.
    pub label: CompactName,
    pub ips: Addresses,
}

/// What a ServiceImport's name and the names below it answer in the clusterset zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportView {
    pub kind: ImportKind,
    pub ports: Arc<[ServicePort]>,
    /// Headless only: the ready endpoints of every exporting cluster, sorted by cluster then
    /// label, each pair once.
    pub endpoints: Box<[ImportEndpoint]>,
    /// One row per endpoint, as wide as `ports`: the port number the endpoint serves for each
    /// (its slice's port of the same name and protocol), `0` where it serves none.
    pub endpoint_ports: Box<[u16]>,
    /// Whether endpoints (of different clusters: kind gives every cluster the same pod range)
    /// hold the same address: the import's own name then lists it once, as an RRset holds a
    /// record once (RFC 2181 §5).
    pub shared_addresses: bool,
}

/// Whether two of `endpoints` hold the same address.
pub(crate) fn any_shared_address(endpoints: &[ImportEndpoint]) -> bool {
    let mut seen = HashSet::new();
    endpoints
        .iter()
        .flat_map(|e| e.ips.iter())
        .any(|ip| !seen.insert(ip))
}

impl ImportView {
    pub fn endpoint(&self, cluster: &str, label: &str) -> Option<&ImportEndpoint> {
        self.endpoints
            .binary_search_by(|e| (&*e.cluster, &*e.label).cmp(&(cluster, label)))
            .ok()
            .map(|i| &self.endpoints[i])
    }

    /// Whether an endpoint of `cluster` is named: `<cluster>.<service>...` then exists.
    pub fn has_cluster(&self, cluster: &str) -> bool {
        self.endpoints.iter().any(|e| &*e.cluster == cluster)
    }

    /// The port the `endpoint`th endpoint serves for the import's `index`th port, if any.
    pub fn endpoint_port(&self, index: usize, endpoint: usize) -> Option<u16> {
        let port = *self
            .endpoint_ports
            .get(endpoint * self.ports.len() + index)?;
        (port != 0).then_some(port)
    }
}

/// A namespace that exists, with the number of Services, Pods and Namespace objects that keep it.
#[derive(Clone, Debug)]
struct NamespaceEntry {
    name: NamespaceRef,
    objects: u32,
    /// Its Services' names, for suggestions when one is misspelt.
    services: imbl::OrdSet<CompactName>,
    /// Its pods (by name) whose `spec.subdomain` no Service answers for; usually none.
    strays: imbl::OrdMap<CompactName, Arc<Stray>>,
}

/// A Service looked up by its two names, without building its key.
#[derive(Hash)]
struct ServiceName<'a> {
    // Field for field as in `ObjectKey`, so that both hash alike.
    namespace: &'a str,
    name: &'a str,
}

impl Equivalent<ServiceRef> for ServiceName<'_> {
    fn equivalent(&self, key: &ServiceRef) -> bool {
        **key.namespace == *self.namespace && *key.name == *self.name
    }
}

/// How much a view holds (see [`View::counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewCounts {
    pub namespaces: usize,
    pub headless_services: usize,
    pub cluster_ip_services: usize,
    pub external_name_services: usize,
    /// Names below Services, each with its addresses.
    pub endpoints: usize,
    /// Addresses with a reverse (PTR) name.
    pub addresses: usize,
    pub headless_imports: usize,
    pub cluster_set_ip_imports: usize,
    /// Names below headless ServiceImports (`<hostname>.<cluster>`).
    pub import_endpoints: usize,
}

#[derive(Clone, Debug, Default)]
pub struct View {
    serial: u32,
    synced: bool,
    /// Every namespace that exists.
    namespaces: imbl::HashMap<Arc<str>, NamespaceEntry>,
    /// Every Service, in one map rather than one per namespace: 11k Services took 1.9 MB in
    /// per-namespace persistent maps.
    services: ShardedMap<ServiceRef, Arc<ServiceView>>,
    /// Who holds each address, IPv4 and IPv6 apart so that the common key is four bytes.
    holders_v4: ShardedMap<u32, PackedHolders>,
    holders_v6: ShardedMap<u128, PackedHolders>,
    /// What the last publications changed, for IXFR (kept only when transfers are allowed).
    journal: Arc<Journal>,
    /// Every ServiceImport (the clusterset zone), by namespace and name.
    imports: ShardedMap<ServiceRef, Arc<ImportView>>,
    /// The namespaces with ServiceImports, with how many each has.
    import_namespaces: imbl::HashMap<Arc<str>, u32>,
    /// The Services exported to the clusterset (ServiceExports), by namespace and name: with
    /// several clusters, the clusterset zone is made of them ([`crate::dns::clusterset`]).
    exports: imbl::OrdSet<ObjectKey>,
}

impl View {
    pub fn new(serial: u32) -> Self {
        Self {
            serial,
            ..Self::default()
        }
    }

    /// The SOA serial; it increases with every published change.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The record changes of the last publications, up to this view's serial.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether the source has delivered a complete state; before that nothing is known to be absent.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// What is served, counted for the metrics: a walk over the Services, made per scrape.
    pub fn counts(&self) -> ViewCounts {
        let mut counts = ViewCounts {
            namespaces: self.namespaces.len(),
            addresses: self.holders_v4.len() + self.holders_v6.len(),
            ..ViewCounts::default()
        };
        for (_, service) in self.services.iter() {
            match service.kind {
                ServiceKind::Headless => counts.headless_services += 1,
                ServiceKind::ClusterIp(_) => counts.cluster_ip_services += 1,
                ServiceKind::ExternalName(_) => counts.external_name_services += 1,
            }
            counts.endpoints += service.endpoints.len();
        }
        for (_, import) in self.imports.iter() {
            match import.kind {
                ImportKind::Headless => counts.headless_imports += 1,
                ImportKind::ClusterSetIp(_) => counts.cluster_set_ip_imports += 1,
            }
            counts.import_endpoints += import.endpoints.len();
        }
        counts
    }

    /// Whether the clusterset zone is answered: some ServiceImport exists.
    pub fn has_imports(&self) -> bool {
        !self.import_namespaces.is_empty()
    }

    pub fn import(&self, namespace: &str, name: &str) -> Option<&ImportView> {
        self.imports
            .get(&ServiceName { namespace, name })
            .map(|i| &**i)
    }

    /// Whether `<namespace>.svc.<clusterset>` exists: a ServiceImport is in it.
    pub fn import_namespace_exists(&self, namespace: &str) -> bool {
        self.import_namespaces.contains_key(namespace)
    }

    /// Sets (or with `None` removes) what ServiceImport `key` answers.
    pub fn set_import(&mut self, key: &ObjectKey, answers: Option<ImportView>) {
        let name = ServiceName {
            namespace: &key.namespace,
            name: &key.name,
        };
        let old = self.imports.get_key_value(&name);
        if old.map(|(_, old)| &**old) == answers.as_ref() {
            return;
        }
        let import = old.map_or_else(|| self.service_ref(key), |(key, _)| key.clone());
        let old = match answers {
            Some(new) => self.imports.insert(import, Arc::new(new)),
            None => {
                let old = self.imports.remove(&import);
                if old.is_some() {
                    let count = self.import_namespaces.get(&*key.namespace).copied();
                    match count {
                        Some(1) | None => self.import_namespaces.remove(&*key.namespace),
                        Some(n) => self.import_namespaces.insert(key.namespace.clone(), n - 1),
                    };
                }
                return;
            }
        };
        if old.is_none() {
            *self
                .import_namespaces
                .entry(key.namespace.clone())
                .or_insert(0) += 1;
        }
    }

    /// Whether `other` answers the clusterset zone as this one does: the same completeness,
    /// namespaces and imports (all a clusterset view made from several clusters holds).
    pub fn same_clusterset(&self, other: &View) -> bool {
        self.synced == other.synced
            && self.namespaces.len() == other.namespaces.len()
            && self
                .namespaces
                .keys()
                .all(|ns| other.namespaces.contains_key(ns))
            && self.imports.len() == other.imports.len()
            && self
                .imports
                .iter()
                .all(|(key, import)| other.import(&key.namespace, &key.name) == Some(&**import))
    }

    /// Marks Service `key` exported to the clusterset (a ServiceExport of its name exists), or
    /// not.
    pub fn set_export(&mut self, key: &ObjectKey, exported: bool) {
        if exported {
            self.exports.insert(key.clone());
        } else {
            self.exports.remove(key);
        }
    }

    /// The Services a ServiceExport names, whether they exist or not, in order.
    pub fn exports(&self) -> impl Iterator<Item = &ObjectKey> {
        self.exports.iter()
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.contains_key(namespace)
    }

    pub fn namespace_names(&self) -> impl Iterator<Item = &str> {
        self.namespaces.keys().map(|name| &**name)
    }

    /// The names of the Services of `namespace`, in order.
    pub fn service_names(&self, namespace: &str) -> impl Iterator<Item = &str> {
        self.namespaces
            .get(namespace)
            .into_iter()
            .flat_map(|entry| entry.services.iter().map(|name| &**name))
    }

    /// The pods of `namespace` whose `spec.subdomain` no Service answers for, by name.
    pub fn strays(&self, namespace: &str) -> impl Iterator<Item = (&str, &Stray)> {
        self.namespaces
            .get(namespace)
            .into_iter()
            .flat_map(|entry| entry.strays.iter().map(|(pod, stray)| (&**pod, &**stray)))
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceView> {
        self.services
            .get(&ServiceName { namespace, name })
            .map(|s| &**s)
    }

    fn holders(&self, ip: IpAddr) -> Option<&PackedHolders> {
        match ip {
            IpAddr::V4(v4) => self.holders_v4.get(&u32::from(v4)),
            IpAddr::V6(v6) => self.holders_v6.get(&u128::from(v6)),
        }
    }

    pub fn has_pod_ip(&self, namespace: &str, ip: IpAddr) -> bool {
        self.holders(ip).is_some_and(|h| h.has_pods_in(namespace))
    }

    /// Steps a walk over the view's Services or addresses takes (see [`View::services_in`],
    /// [`View::addresses_in`]): a transfer makes one step's records at a time.
    pub const STEPS: usize = sharded::SHARDS;

    /// `(namespace, name)` of the Services of step `step` of a walk over all of them.
    pub fn services_in(&self, step: usize) -> impl Iterator<Item = (&str, &str)> {
        self.services
            .shard(step)
            .map(|(key, _)| (&**key.namespace, &*key.name))
    }

    /// `(namespace, name)` of the ServiceImports of step `step` of a walk over all of them.
    pub fn imports_in(&self, step: usize) -> impl Iterator<Item = (&str, &str)> {
        self.imports
            .shard(step)
            .map(|(key, _)| (&**key.namespace, &*key.name))
    }

    /// The addresses of step `step` (of `2 * STEPS`: IPv4, then IPv6) of a walk over all
    /// addresses, with whether a pod holds it (a name under `pod.<zone>`) and whether a Service
    /// does (a PTR name).
    pub fn addresses_in(&self, step: usize) -> impl Iterator<Item = (IpAddr, bool, bool)> + '_ {
        let v4 = self
            .holders_v4
            .shard(step)
            .map(|(ip, h)| (IpAddr::V4((*ip).into()), h));
        let v6 = self
            .holders_v6
            .shard(step.wrapping_sub(Self::STEPS))
            .map(|(ip, h)| (IpAddr::V6((*ip).into()), h));
        v4.chain(v6).map(|(ip, holders)| {
            let pods = holders.pod_namespaces().next().is_some();
            (ip, pods, holders.services().next().is_some())
        })
    }

    /// The namespaces with a pod on `ip`.
    pub fn pod_namespaces(&self, ip: IpAddr) -> impl Iterator<Item = &str> {
        self.holders(ip)
            .into_iter()
            .flat_map(PackedHolders::pod_namespaces)
    }

    /// `(namespace, name)` of the Services whose cluster IPs or endpoints hold `ip`.
    pub fn services_at(&self, ip: IpAddr) -> impl Iterator<Item = (&str, &str)> {
        self.holders(ip)
            .into_iter()
            .flat_map(PackedHolders::services)
    }

    // ---- writer side ----

    pub fn set_synced(&mut self) {
        self.synced = true;
    }

    pub fn bump_serial(&mut self) {
        self.serial = self.serial.wrapping_add(1);
    }

    /// Appends a change to the journal (copying the list of changes, not the changes, if a
    /// published snapshot shares it).
    pub fn record_change(&mut self, change: Change) {
        Arc::make_mut(&mut self.journal).push(change);
    }

    pub fn clear_journal(&mut self) {
        if !self.journal.is_empty() {
            Arc::make_mut(&mut self.journal).clear();
        }
    }

    /// Counts one more object (Service, Pod or the Namespace itself) in `namespace`.
    pub fn retain_namespace(&mut self, namespace: &Arc<str>) {
        self.namespaces
            .entry(namespace.clone())
            .or_insert_with(|| NamespaceEntry {
                name: Arc::new(namespace.clone()),
                objects: 0,
                services: imbl::OrdSet::new(),
                strays: imbl::OrdMap::new(),
            })
            .objects += 1;
    }

    /// Drops one object's hold on `namespace`; the name disappears with the last one.
    pub fn release_namespace(&mut self, namespace: &str) {
        let Some(entry) = self.namespaces.get_mut(namespace) else {
            return;
        };
        entry.objects = entry.objects.saturating_sub(1);
        if entry.objects == 0 {
            self.namespaces.remove(namespace);
        }
    }

    /// Records (or, with `None`, forgets) why pod `pod` of `namespace`, which must be retained,
    /// has no name under its subdomain. Touches the namespace only when that changes.
    pub fn set_stray(&mut self, namespace: &str, pod: &CompactName, stray: Option<Stray>) {
        let Some(entry) = self.namespaces.get(namespace) else {
            return;
        };
        if entry.strays.get(pod).map(|s| &**s) == stray.as_ref() {
            return;
        }
        let Some(entry) = self.namespaces.get_mut(namespace) else {
            return;
        };
        match stray {
            Some(stray) => entry.strays.insert(pod.clone(), Arc::new(stray)),
            None => entry.strays.remove(pod),
        };
    }

    /// Changes who holds `ip` (see [`Holders::change`]).
    fn change_holders(
        &mut self,
        ip: IpAddr,
        fast: impl FnOnce(&mut Holders) -> Option<bool>,
        change: impl FnOnce(&mut ManyHolders),
    ) {
        let update = |old: Option<PackedHolders>| {
            Holders::change(old.map(PackedHolders::unpack), fast, change).map(PackedHolders::pack)
        };
        match ip {
            IpAddr::V4(v4) => self.holders_v4.update(u32::from(v4), update),
            IpAddr::V6(v6) => self.holders_v6.update(u128::from(v6), update),
        }
    }

    pub fn add_pod_ip(&mut self, namespace: &Arc<str>, ip: IpAddr) {
        self.count_pod_ip(namespace, ip, true);
    }

    pub fn remove_pod_ip(&mut self, namespace: &Arc<str>, ip: IpAddr) {
        self.count_pod_ip(namespace, ip, false);
    }

    /// The shared name of `namespace` (a new one if it is not retained).
    fn namespace_ref(&self, namespace: &Arc<str>) -> NamespaceRef {
        self.namespaces
            .get(namespace)
            .map_or_else(|| Arc::new(namespace.clone()), |entry| entry.name.clone())
    }

    fn service_ref(&self, key: &ObjectKey) -> ServiceRef {
        Arc::new(ServiceKey {
            namespace: self.namespace_ref(&key.namespace),
            name: key.name.clone(),
        })
    }

    /// Counts one pod more (`added`) or one less holding `ip` in `namespace`.
    fn count_pod_ip(&mut self, namespace: &Arc<str>, ip: IpAddr, added: bool) {
        // Only a new holder needs the shared name; a removal never does.
        let shared = added.then(|| self.namespace_ref(namespace));
        self.change_holders(
            ip,
            |holders| match holders {
                Holders::Pod(ns) if !added && **ns == *namespace => Some(false),
                Holders::Service(service) if added && *service.namespace == *namespace => {
                    *holders = Holders::ServiceAndPod(service.clone());
                    Some(true)
                }
                Holders::ServiceAndPod(service) if !added && *service.namespace == *namespace => {
                    *holders = Holders::Service(service.clone());
                    Some(true)
                }
                _ => None,
            },
            |many| match many.pods.iter().position(|(ns, _)| **ns == *namespace) {
                Some(i) if added => many.pods[i].1 += 1,
                Some(i) => {
                    many.pods[i].1 -= 1;
                    if many.pods[i].1 == 0 {
                        many.pods.swap_remove(i);
                    }
                }
                None => many.pods.extend(shared.map(|shared| (shared, 1))),
            },
        );
    }

    fn add_service_ip(&mut self, service: &ServiceRef, ip: IpAddr) {
        self.change_holders(
            ip,
            |holders| match holders {
                Holders::Pod(namespace) if *namespace == service.namespace => {
                    *holders = Holders::ServiceAndPod(service.clone());
                    Some(true)
                }
                _ => None,
            },
            |many| many.services.push(service.clone()),
        );
    }

    fn remove_service_ip(&mut self, service: &ServiceRef, ip: IpAddr) {
        self.change_holders(
            ip,
            |holders| match holders {
                Holders::Service(held) if held == service => Some(false),
                Holders::ServiceAndPod(held) if held == service => {
                    *holders = Holders::Pod(service.namespace.clone());
                    Some(true)
                }
                _ => None,
            },
            |many| many.services.retain(|held| held != service),
        );
    }

    /// Replaces (or, with `None`, removes) what a Service answers, keeping reverse DNS in step.
    /// The namespace must be retained by the caller while the Service exists.
    pub fn set_service(&mut self, key: &ObjectKey, answers: Option<ServiceView>) {
        if !self.namespaces.contains_key(&*key.namespace) {
            return;
        }
        let name = ServiceName {
            namespace: &key.namespace,
            name: &key.name,
        };
        let old = self.services.get_key_value(&name);
        if old.map(|(_, old)| &**old) == answers.as_ref() {
            return;
        }
        let service = old.map_or_else(|| self.service_ref(key), |(key, _)| key.clone());
        let answers = answers.map(Arc::new);
        let old = match &answers {
            Some(new) => self.services.insert(service.clone(), new.clone()),
            None => self.services.remove(&service),
        };
        if old.is_none() != answers.is_none()
            && let Some(entry) = self.namespaces.get_mut(&*key.namespace)
        {
            match answers {
                Some(_) => entry.services.insert(key.name.clone()),
                None => entry.services.remove(&*key.name),
            };
        }
        self.reindex_reverse(&service, old.as_deref(), answers.as_deref());
    }

    fn reindex_reverse(
        &mut self,
        service: &ServiceRef,
        old: Option<&ServiceView>,
        new: Option<&ServiceView>,
    ) {
        let old_ips: HashSet<IpAddr> = old.map(|s| s.reverse_ips().collect()).unwrap_or_default();
        let new_ips: HashSet<IpAddr> = new.map(|s| s.reverse_ips().collect()).unwrap_or_default();
        for &ip in old_ips.difference(&new_ips) {
            self.remove_service_ip(service, ip);
        }
        for &ip in new_ips.difference(&old_ips) {
            self.add_service_ip(service, ip);
        }
    }
}

/// What a view holds, as plain ordered data, the serial aside: two views that answer alike
/// describe alike. For tests, which compare a view kept up to date change by change with one
/// built from scratch.
#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
pub struct Contents {
    pub synced: bool,
    /// Namespace → how many objects keep it.
    pub namespaces: std::collections::BTreeMap<String, u32>,
    pub services: std::collections::BTreeMap<(String, String), ServiceView>,
    /// Namespace → its Services' names, as the namespace lists them.
    pub service_names: std::collections::BTreeMap<String, Vec<String>>,
    /// (namespace, pod) → why no Service answers for its subdomain.
    pub strays: std::collections::BTreeMap<(String, String), Stray>,
    /// Address → who holds it, sorted.
    pub holders: std::collections::BTreeMap<IpAddr, HeldBy>,
    pub imports: std::collections::BTreeMap<(String, String), ImportView>,
    /// Namespace → how many ServiceImports it has.
    pub import_namespaces: std::collections::BTreeMap<String, u32>,
    pub exports: Vec<ObjectKey>,
}

/// The namespaces with pods on an address (and how many), and the Services naming it.
#[cfg(test)]
type HeldBy = (Vec<(String, u32)>, Vec<(String, String)>);

#[cfg(test)]
impl View {
    pub fn contents(&self) -> Contents {
        let holders_of = |ip: IpAddr, holders: &PackedHolders| {
            let many = Holders::expand(Some(holders.clone().unpack()));
            let mut pods: Vec<(String, u32)> = many
                .pods
                .iter()
                .map(|(ns, n)| (ns.to_string(), *n))
                .collect();
            let mut services: Vec<(String, String)> = many
                .services
                .iter()
                .map(|s| (s.namespace.to_string(), s.name.to_string()))
                .collect();
            pods.sort();
            services.sort();
            (ip, (pods, services))
        };
        Contents {
            synced: self.synced,
            namespaces: self
                .namespaces
                .iter()
                .map(|(name, entry)| (name.to_string(), entry.objects))
                .collect(),
            service_names: self
                .namespaces
                .iter()
                .filter(|(_, entry)| !entry.services.is_empty())
                .map(|(name, entry)| {
                    let names = entry.services.iter().map(|s| s.to_string()).collect();
                    (name.to_string(), names)
                })
                .collect(),
            strays: self
                .namespaces
                .iter()
                .flat_map(|(name, entry)| {
                    entry.strays.iter().map(move |(pod, stray)| {
                        ((name.to_string(), pod.to_string()), (**stray).clone())
                    })
                })
                .collect(),
            services: self
                .services
                .iter()
                .map(|(key, view)| {
                    (
                        (key.namespace.to_string(), key.name.to_string()),
                        (**view).clone(),
                    )
                })
                .collect(),
            holders: self
                .holders_v4
                .iter()
                .map(|(ip, h)| holders_of(IpAddr::V4((*ip).into()), h))
                .chain(
                    self.holders_v6
                        .iter()
                        .map(|(ip, h)| holders_of(IpAddr::V6((*ip).into()), h)),
                )
                .collect(),
            imports: self
                .imports
                .iter()
                .map(|(key, view)| {
                    (
                        (key.namespace.to_string(), key.name.to_string()),
                        (**view).clone(),
                    )
                })
                .collect(),
            import_namespaces: self
                .import_namespaces
                .iter()
                .map(|(name, count)| (name.to_string(), *count))
                .collect(),
            exports: self.exports.iter().cloned().collect(),
        }
    }
}

/// The published view: readers `load()` a snapshot, the single writer `publish()`es a new one.
#[derive(Clone, Debug)]
pub struct SharedView(Arc<ArcSwap<View>>);

impl SharedView {
    pub fn new(view: View) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(view)))
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<View>> {
        self.0.load()
    }

    /// The current snapshot, to keep across awaits (a zone transfer).
    pub fn load_full(&self) -> Arc<View> {
        self.0.load_full()
    }

    pub fn publish(&self, view: View) {
        self.0.store(Arc::new(view));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(view: &View, ip: IpAddr) -> Vec<String> {
        let mut found: Vec<String> = view
            .services_at(ip)
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        found.sort();
        found
    }

    /// Every way an address gains and loses holders, through the inline and the general form,
    /// leaves exactly the holders added and not yet removed, and nothing once all are gone.
    #[test]
    fn address_holders_follow_adds_and_removes() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut view = View::default();
        let (web, api, other) = (
            view.service_ref(&ObjectKey::new("a", "web")),
            view.service_ref(&ObjectKey::new("a", "api")),
            view.service_ref(&ObjectKey::new("b", "web")),
        );
        view.add_pod_ip(&a, ip);
        view.add_service_ip(&web, ip);
        let snapshot = view.clone();
        view.add_pod_ip(&a, ip); // host network: two pods of one namespace
        view.add_pod_ip(&b, ip);
        view.add_service_ip(&api, ip);
        view.add_service_ip(&other, ip);
        assert!(view.has_pod_ip("a", ip) && view.has_pod_ip("b", ip) && !view.has_pod_ip("c", ip));
        assert_eq!(services(&view, ip), ["a/api", "a/web", "b/web"]);
        assert_eq!(services(&snapshot, ip), ["a/web"]);

        view.remove_pod_ip(&b, ip);
        view.remove_service_ip(&other, ip);
        view.remove_service_ip(&api, ip);
        assert!(view.has_pod_ip("a", ip) && !view.has_pod_ip("b", ip));
        view.remove_pod_ip(&a, ip);
        view.remove_pod_ip(&a, ip);
        assert!(!view.has_pod_ip("a", ip));
        assert_eq!(services(&view, ip), ["a/web"]);
        view.remove_service_ip(&web, ip);
        view.remove_pod_ip(&a, ip); // already gone: no effect
        assert!(view.holders(ip).is_none() && view.holders_v4.len() == 0);

        // The Service leaves before the pod: the pod's name stays.
        view.add_pod_ip(&a, ip);
        view.add_service_ip(&web, ip);
        view.remove_service_ip(&web, ip);
        assert!(view.has_pod_ip("a", ip) && services(&view, ip).is_empty());
        view.remove_pod_ip(&a, ip);
        assert!(view.holders_v4.len() == 0);

        // A Service alone, then a pod of another namespace joins it.
        let v6: IpAddr = "fd00::1".parse().unwrap();
        view.add_service_ip(&other, v6);
        view.add_pod_ip(&a, v6);
        assert!(view.has_pod_ip("a", v6) && !view.has_pod_ip("b", v6));
        assert_eq!(services(&view, v6), ["b/web"]);
        view.remove_service_ip(&other, v6);
        view.remove_pod_ip(&a, v6);
        assert!(view.holders_v6.len() == 0);

        // 100k of these make the address tables: what they cost depends on this.
        assert_eq!(std::mem::size_of::<(u32, PackedHolders)>(), 16);
        assert_eq!(std::mem::size_of::<Endpoint>(), 24);
    }
}
