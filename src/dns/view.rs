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

use crate::cluster::objects::{Addresses, ObjectKey, ServiceKind, ServicePort};
use crate::dns::sharded::ShardedMap;

/// One address-bearing name under a headless Service: a pod's hostname, or its dashed IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// A pod's hostname (shared with its record) or its dashed IP.
    pub label: Arc<str>,
    pub ips: Addresses,
    /// Resolved SRV ports, aligned with the Service's ports (`0`: this endpoint lacks that port).
    /// Empty when every target port is a number, which is then used as is.
    pub ports: Box<[u16]>,
}

/// What a Service name and the names below it answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub kind: ServiceKind,
    pub ports: Box<[ServicePort]>,
    /// Headless only; sorted by label, labels unique.
    pub endpoints: Box<[Endpoint]>,
}

impl ServiceView {
    pub fn endpoint(&self, label: &str) -> Option<&Endpoint> {
        self.endpoints
            .binary_search_by(|e| (*e.label).cmp(label))
            .ok()
            .map(|i| &self.endpoints[i])
    }

    /// Every address this Service puts in reverse DNS.
    fn reverse_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let cluster_ips: &[IpAddr] = match &self.kind {
            ServiceKind::ClusterIp(ips) => ips,
            _ => &[],
        };
        cluster_ips
            .iter()
            .chain(self.endpoints.iter().flat_map(|e| e.ips.iter()))
            .copied()
    }
}

#[derive(Clone, Debug, Default)]
struct NamespaceView {
    /// How many Services, Pods and Namespace objects keep this namespace's name alive.
    objects: u32,
    services: imbl::HashMap<Arc<str>, Arc<ServiceView>>,
}

#[derive(Clone, Debug, Default)]
pub struct View {
    serial: u32,
    synced: bool,
    namespaces: imbl::HashMap<Arc<str>, NamespaceView>,
    /// Services whose cluster IPs or headless endpoints hold an address.
    reverse: ShardedMap<IpAddr, Arc<[ObjectKey]>>,
    /// The namespaces with pods holding an address, and how many (pods can share one on the
    /// host network).
    pod_ips: ShardedMap<IpAddr, Vec<(Arc<str>, u32)>>,
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

    /// Whether the source has delivered a complete state; before that nothing is known to be absent.
    pub fn synced(&self) -> bool {
        self.synced
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.contains_key(namespace)
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceView> {
        self.namespaces
            .get(namespace)?
            .services
            .get(name)
            .map(|s| &**s)
    }

    pub fn has_pod_ip(&self, namespace: &str, ip: IpAddr) -> bool {
        self.pod_ips
            .get(&ip)
            .is_some_and(|owners| owners.iter().any(|(ns, _)| &**ns == namespace))
    }

    pub fn services_at(&self, ip: IpAddr) -> &[ObjectKey] {
        self.reverse.get(&ip).map_or(&[], |keys| keys)
    }

    // ---- writer side ----

    pub fn set_synced(&mut self) {
        self.synced = true;
    }

    pub fn bump_serial(&mut self) {
        self.serial = self.serial.wrapping_add(1);
    }

    /// Counts one more object (Service, Pod or the Namespace itself) in `namespace`.
    pub fn retain_namespace(&mut self, namespace: &Arc<str>) {
        self.namespaces
            .entry(namespace.clone())
            .or_default()
            .objects += 1;
    }

    /// Drops one object's hold on `namespace`; the name disappears with the last one.
    pub fn release_namespace(&mut self, namespace: &str) {
        let Some(ns) = self.namespaces.get_mut(namespace) else {
            return;
        };
        ns.objects = ns.objects.saturating_sub(1);
        if ns.objects == 0 {
            self.namespaces.remove(namespace);
        }
    }

    pub fn add_pod_ip(&mut self, namespace: &Arc<str>, ip: IpAddr) {
        self.pod_ips.update(ip, |owners| {
            match owners.iter_mut().find(|(ns, _)| ns == namespace) {
                Some((_, count)) => *count += 1,
                None => owners.push((namespace.clone(), 1)),
            }
            true
        });
    }

    pub fn remove_pod_ip(&mut self, namespace: &str, ip: IpAddr) {
        if !self.pod_ips.contains_key(&ip) {
            return;
        }
        self.pod_ips.update(ip, |owners| {
            if let Some(i) = owners.iter().position(|(ns, _)| &**ns == namespace) {
                owners[i].1 -= 1;
                if owners[i].1 == 0 {
                    owners.swap_remove(i);
                }
            }
            !owners.is_empty()
        });
    }

    /// Replaces (or, with `None`, removes) what a Service answers, keeping reverse DNS in step.
    /// The namespace must be retained by the caller while the Service exists.
    pub fn set_service(&mut self, key: &ObjectKey, service: Option<ServiceView>) {
        let Some(ns) = self.namespaces.get_mut(&*key.namespace) else {
            return;
        };
        if ns.services.get(&*key.name).map(|s| &**s) == service.as_ref() {
            return;
        }
        let old = match service {
            Some(new) => {
                let new = Arc::new(new);
                let old = ns.services.insert(key.name.clone(), new.clone());
                self.reindex_reverse(key, old.as_deref(), Some(&new));
                old
            }
            None => {
                let old = ns.services.remove(&*key.name);
                self.reindex_reverse(key, old.as_deref(), None);
                old
            }
        };
        drop(old);
    }

    fn reindex_reverse(
        &mut self,
        key: &ObjectKey,
        old: Option<&ServiceView>,
        new: Option<&ServiceView>,
    ) {
        let old_ips: HashSet<IpAddr> = old.map(|s| s.reverse_ips().collect()).unwrap_or_default();
        let new_ips: HashSet<IpAddr> = new.map(|s| s.reverse_ips().collect()).unwrap_or_default();
        for ip in old_ips.difference(&new_ips) {
            let Some(keys) = self.reverse.get(ip) else {
                continue;
            };
            let rest: Arc<[ObjectKey]> = keys.iter().filter(|k| *k != key).cloned().collect();
            if rest.is_empty() {
                self.reverse.remove(ip);
            } else {
                self.reverse.insert(*ip, rest);
            }
        }
        for ip in new_ips.difference(&old_ips) {
            let keys: Arc<[ObjectKey]> = match self.reverse.get(ip) {
                Some(keys) => keys.iter().cloned().chain([key.clone()]).collect(),
                None => Arc::from([key.clone()]),
            };
            self.reverse.insert(*ip, keys);
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

    pub fn publish(&self, view: View) {
        self.0.store(Arc::new(view));
    }
}
