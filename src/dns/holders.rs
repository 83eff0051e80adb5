//! Who holds an address — the namespaces with pods on it and the Services naming it — kept in
//! one word per address for the view's address tables.
//!
//! At a million pods the tables hold a million entries: an entry of an address and a two-word
//! [`Holders`] took 24 bytes, half again what an entry of a one-word [`PackedHolders`] takes. The
//! common cases (one pod; one Service; one Service and the pod behind it) are a tagged pointer
//! to the shared name or key; the rest point to a [`ManyHolders`].

use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::records::CompactName;

/// A namespace's name behind one thin pointer, shared by the entries of every address its pods
/// hold and by its Services' keys: a plain name would take 16 bytes in each of 100k entries
/// (and push each past 16 bytes, and each shard's table past a size class: 1.6 MB in all).
pub(super) type NamespaceRef = Arc<Arc<str>>;

/// A Service's key, shared by the entries of every address it names: one thin pointer where its
/// two names would take 32 bytes in each of 100k entries. It is also the Service's key in the
/// view's map.
pub(super) type ServiceRef = Arc<ServiceKey>;

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ServiceKey {
    // Field for field as in `ServiceName`, so that both hash alike.
    pub(super) namespace: NamespaceRef,
    pub(super) name: CompactName,
}

/// Who holds one address: the namespaces with pods on it (for `<a-b-c-d>.<ns>.pod.<zone>`) and
/// the Services whose cluster IPs or headless endpoints name it (for reverse DNS). The first
/// three are the usual cases and fit in a [`PackedHolders`] word with their pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Holders {
    /// One pod of the namespace, and no Service.
    Pod(NamespaceRef),
    /// One Service, and no pod.
    Service(ServiceRef),
    /// One Service and one pod of its namespace (the pod behind a headless endpoint).
    ServiceAndPod(ServiceRef),
    /// Anything else (several pods on the host network, several Services).
    Many(Box<ManyHolders>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ManyHolders {
    pub(super) pods: Vec<(NamespaceRef, u32)>,
    pub(super) services: Vec<ServiceRef>,
}

impl Holders {
    pub(super) fn expand(this: Option<Holders>) -> ManyHolders {
        let (pod, service) = match this {
            None => (None, None),
            Some(Holders::Many(many)) => return *many,
            Some(Holders::Pod(namespace)) => (Some(namespace), None),
            Some(Holders::Service(service)) => (None, Some(service)),
            Some(Holders::ServiceAndPod(service)) => {
                (Some(service.namespace.clone()), Some(service))
            }
        };
        ManyHolders {
            pods: pod.map(|namespace| (namespace, 1)).into_iter().collect(),
            services: service.into_iter().collect(),
        }
    }

    /// The smallest form of `many`; `None` when nothing holds the address any more.
    fn compact(many: ManyHolders) -> Option<Holders> {
        match (&many.pods[..], &many.services[..]) {
            ([], []) => None,
            ([(namespace, 1)], []) => Some(Holders::Pod(namespace.clone())),
            ([], [service]) => Some(Holders::Service(service.clone())),
            ([(namespace, 1)], [service]) if *namespace == service.namespace => {
                Some(Holders::ServiceAndPod(service.clone()))
            }
            _ => Some(Holders::Many(Box::new(many))),
        }
    }

    /// Applies `change` to the holders of an address (`None`: nobody), by way of the general form
    /// unless `fast` handles the case in place.
    pub(super) fn change(
        this: Option<Holders>,
        fast: impl FnOnce(&mut Holders) -> Option<bool>,
        change: impl FnOnce(&mut ManyHolders),
    ) -> Option<Holders> {
        if let Some(mut holders) = this {
            match fast(&mut holders) {
                Some(true) => return Some(holders),
                Some(false) => return None,
                None => {
                    let mut many = Holders::expand(Some(holders));
                    change(&mut many);
                    return Holders::compact(many);
                }
            }
        }
        let mut many = ManyHolders::default();
        change(&mut many);
        Holders::compact(many)
    }
}

/// [`Holders`] in one word: a pointer to the namespace's name, the Service's key or the general
/// form, with what it points to in its two low bits (each pointee is 8-aligned, so they are
/// free).
pub(super) struct PackedHolders(NonNull<()>);

/// One pod of the namespace pointed to; no Service.
const ONE_POD: usize = 0;
/// The Service pointed to; no pod.
const SERVICE: usize = 1;
/// The Service pointed to and one pod of its namespace.
const SERVICE_AND_POD: usize = 2;
/// A `ManyHolders`.
const MANY: usize = 3;
const TAG_BITS: usize = 3;

/// What a [`PackedHolders`] holds, borrowed.
#[derive(Debug, PartialEq)]
enum HoldersRef<'a> {
    OnePod(&'a Arc<str>),
    Service(&'a ServiceKey, bool),
    Many(&'a ManyHolders),
}

// SAFETY: a `PackedHolders` owns an `Arc<Arc<str>>`, an `Arc<ServiceKey>` or a
// `Box<ManyHolders>`, all of which are `Send` and `Sync`.
unsafe impl Send for PackedHolders {}
unsafe impl Sync for PackedHolders {}

impl PackedHolders {
    pub(super) fn pack(holders: Holders) -> Self {
        let (pointer, tag) = match holders {
            Holders::Pod(namespace) => (Arc::into_raw(namespace).cast::<()>(), ONE_POD),
            Holders::Service(service) => (Arc::into_raw(service).cast(), SERVICE),
            Holders::ServiceAndPod(service) => (Arc::into_raw(service).cast(), SERVICE_AND_POD),
            Holders::Many(many) => (Box::into_raw(many).cast_const().cast(), MANY),
        };
        debug_assert_eq!(pointer.addr() & TAG_BITS, 0, "pointees are 8-aligned");
        let tagged = pointer.cast_mut().map_addr(|address| address | tag);
        Self(NonNull::new(tagged).expect("from an Arc or a Box"))
    }

    fn tag(&self) -> usize {
        self.0.as_ptr().addr() & TAG_BITS
    }

    fn pointer(&self) -> *const () {
        self.0.as_ptr().map_addr(|address| address & !TAG_BITS)
    }

    pub(super) fn unpack(self) -> Holders {
        let this = ManuallyDrop::new(self);
        let pointer = this.pointer();
        // SAFETY: `pack` made the pointer with `into_raw` of the type its tag names, and
        // `ManuallyDrop` keeps `self` from releasing what ownership moves back here.
        unsafe {
            match this.tag() {
                ONE_POD => Holders::Pod(Arc::from_raw(pointer.cast())),
                SERVICE => Holders::Service(Arc::from_raw(pointer.cast())),
                SERVICE_AND_POD => Holders::ServiceAndPod(Arc::from_raw(pointer.cast())),
                _ => Holders::Many(Box::from_raw(pointer.cast_mut().cast())),
            }
        }
    }

    fn get(&self) -> HoldersRef<'_> {
        let pointer = self.pointer();
        // SAFETY: as in `unpack`; the pointee lives as long as `self` owns it.
        unsafe {
            match self.tag() {
                ONE_POD => HoldersRef::OnePod(&*pointer.cast::<Arc<str>>()),
                SERVICE => HoldersRef::Service(&*pointer.cast(), false),
                SERVICE_AND_POD => HoldersRef::Service(&*pointer.cast(), true),
                _ => HoldersRef::Many(&*pointer.cast()),
            }
        }
    }

    pub(super) fn has_pods_in(&self, namespace: &str) -> bool {
        match self.get() {
            HoldersRef::OnePod(ns) => **ns == *namespace,
            HoldersRef::Service(service, pod) => pod && **service.namespace == *namespace,
            HoldersRef::Many(many) => many.pods.iter().any(|(ns, _)| ***ns == *namespace),
        }
    }

    /// The namespaces with pods on the address.
    pub(super) fn pod_namespaces(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&Arc<str>>, &[(NamespaceRef, u32)]) = match self.get() {
            HoldersRef::OnePod(namespace) => (Some(namespace), &[]),
            HoldersRef::Service(service, true) => (Some(&*service.namespace), &[]),
            HoldersRef::Service(_, false) => (None, &[]),
            HoldersRef::Many(many) => (None, &many.pods[..]),
        };
        one.into_iter()
            .chain(many.iter().map(|(namespace, _)| &**namespace))
            .map(|namespace| &**namespace)
    }

    pub(super) fn services(&self) -> impl Iterator<Item = (&str, &str)> {
        let (one, many): (Option<&ServiceKey>, &[ServiceRef]) = match self.get() {
            HoldersRef::OnePod(_) => (None, &[]),
            HoldersRef::Service(service, _) => (Some(service), &[]),
            HoldersRef::Many(many) => (None, &many.services[..]),
        };
        one.into_iter()
            .chain(many.iter().map(|service| &**service))
            .map(|key| (&**key.namespace, &*key.name))
    }
}

impl Drop for PackedHolders {
    fn drop(&mut self) {
        // SAFETY: `self` is not used again; `unpack` takes over what it owns.
        drop(unsafe { std::ptr::read(self) }.unpack());
    }
}

impl Clone for PackedHolders {
    fn clone(&self) -> Self {
        // SAFETY: the unpacked copy shares what `self` owns and is never dropped; only its clone
        // (which counts its references) is kept.
        let copy = ManuallyDrop::new(unsafe { std::ptr::read(self) }.unpack());
        Self::pack((*copy).clone())
    }
}

impl PartialEq for PackedHolders {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for PackedHolders {}

impl fmt::Debug for PackedHolders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each form survives packing, cloning, reading and unpacking as it was, and every reference
    /// taken is given back (a leak or a double release shows in the counts).
    #[test]
    fn every_form_round_trips_with_its_references_counted() {
        let a: NamespaceRef = Arc::new("a".into());
        let b: NamespaceRef = Arc::new("b".into());
        let web: ServiceRef = Arc::new(ServiceKey {
            namespace: a.clone(),
            name: "web".into(),
        });
        let many = ManyHolders {
            pods: vec![(a.clone(), 1), (b.clone(), 2)],
            services: vec![web.clone()],
        };
        // (form, namespaces with pods, Services)
        let forms = [
            (Holders::Pod(a.clone()), vec!["a"], vec![]),
            (Holders::Pod(b.clone()), vec!["b"], vec![]),
            (Holders::Service(web.clone()), vec![], vec![("a", "web")]),
            (
                Holders::ServiceAndPod(web.clone()),
                vec!["a"],
                vec![("a", "web")],
            ),
            (
                Holders::Many(Box::new(many)),
                vec!["a", "b"],
                vec![("a", "web")],
            ),
        ];
        for (form, namespaces, services) in forms {
            let packed = PackedHolders::pack(form.clone());
            let copy = packed.clone();
            assert_eq!(copy, packed);
            assert_eq!(packed.pod_namespaces().collect::<Vec<_>>(), namespaces);
            assert_eq!(packed.services().collect::<Vec<_>>(), services);
            for namespace in ["a", "b", "c"] {
                assert_eq!(
                    packed.has_pods_in(namespace),
                    namespaces.contains(&namespace)
                );
            }
            drop(copy);
            assert_eq!(
                Holders::expand(Some(packed.unpack())),
                Holders::expand(Some(form))
            );
        }
        // Each still held here, and `a` by `web`'s key.
        assert_eq!(
            (
                Arc::strong_count(&a),
                Arc::strong_count(&b),
                Arc::strong_count(&web)
            ),
            (2, 1, 1)
        );
    }
}
