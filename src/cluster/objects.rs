//! The few fields a Service or Pod contributes to DNS, as plain data.
//!
//! Both sources (the manifests file and the Kubernetes API) convert their objects into these
//! records once, so nothing downstream ever holds a whole API object.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;

/// `namespace/name` of an object; both parts are shared with the view's keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl ObjectKey {
    /// Namespaces are cluster-scoped: their key has an empty namespace.
    pub fn of_namespace(name: &Arc<str>) -> Self {
        Self {
            namespace: Arc::from(""),
            name: name.clone(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Label pairs sorted by key, in one allocation (`key\0value\0key\0value`): a pod keeps its
/// labels only to be matched against selectors, and 100k pods with several labels each would
/// otherwise hold two allocations per pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<str>);

impl Labels {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        pairs.sort_unstable();
        let mut packed =
            String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (key, value) in &pairs {
            // Label keys and values cannot contain NUL: the API validates them.
            packed.push_str(key);
            packed.push('\0');
            packed.push_str(value);
            packed.push('\0');
        }
        Self(packed.into_boxed_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.0.split_terminator('\0');
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether every pair of `self` (a selector) is present in `labels`.
    pub fn selects(&self, labels: &Labels) -> bool {
        self.pairs().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// A pod's or endpoint's addresses: nearly always one, kept inline without a heap allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addresses {
    One([IpAddr; 1]),
    Many(Box<[IpAddr]>),
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses::Many(Box::default())
    }
}

impl std::ops::Deref for Addresses {
    type Target = [IpAddr];

    fn deref(&self) -> &[IpAddr] {
        match self {
            Addresses::One(one) => one,
            Addresses::Many(many) => many,
        }
    }
}

impl From<Vec<IpAddr>> for Addresses {
    fn from(ips: Vec<IpAddr>) -> Self {
        match ips[..] {
            [one] => Addresses::One([one]),
            _ => Addresses::Many(ips.into_boxed_slice()),
        }
    }
}

impl From<IpAddr> for Addresses {
    fn from(ip: IpAddr) -> Self {
        Addresses::One([ip])
    }
}

impl FromIterator<IpAddr> for Addresses {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<_>>().into()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The SRV label for this protocol, without the leading underscore.
    pub fn srv_label(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    /// A container port name, resolved per pod.
    Name(Box<str>),
}

/// A named Service port; unnamed ports have no SRV records, so they are not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub name: Box<str>,
    pub protocol: Protocol,
    pub port: u16,
    pub target: TargetPort,
}

/// A named container port, kept only to resolve a Service's named `targetPort`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerPort {
    pub name: Box<str>,
    pub protocol: Protocol,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// `spec.clusterIPs` (possibly empty while the API has not allocated one yet).
    ClusterIp(Box<[IpAddr]>),
    /// `clusterIP: None`: the name answers with the backing pods' addresses.
    Headless,
    /// A CNAME to `spec.externalName`, not chased.
    ExternalName(Name),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecord {
    pub key: ObjectKey,
    pub kind: ServiceKind,
    /// `None` for a Service without a selector: it has no pod endpoints.
    pub selector: Option<Labels>,
    pub ports: Box<[ServicePort]>,
    pub publish_not_ready_addresses: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRecord {
    pub key: ObjectKey,
    pub labels: Labels,
    /// Shared with the endpoint name it gives the pod.
    pub hostname: Option<Arc<str>>,
    pub subdomain: Option<Box<str>>,
    /// `status.podIPs`, or `status.podIP` when the list is absent.
    pub ips: Addresses,
    /// Condition `Ready` is `True`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// Phase `Succeeded` or `Failed`: its IP may already belong to another pod.
    pub finished: bool,
    /// Pods of one template have the same list: the cluster state shares one copy.
    pub named_ports: Arc<[ContainerPort]>,
}

/// A port of an EndpointSlice; SRV names match it to a Service port by name and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePort {
    pub name: Box<str>,
    pub protocol: Protocol,
    pub port: u16,
}

/// One endpoint of an EndpointSlice that DNS may publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceEndpoint {
    pub addresses: Addresses,
    pub hostname: Option<Arc<str>>,
    /// `conditions.ready`; a missing condition counts as ready.
    pub ready: bool,
}

/// An EndpointSlice (`discovery.k8s.io/v1`) of a Service, joined by `kubernetes.io/service-name`.
/// Only Services without a selector take their endpoints from slices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSliceRecord {
    pub key: ObjectKey,
    pub service: Arc<str>,
    pub ports: Box<[SlicePort]>,
    pub endpoints: Box<[SliceEndpoint]>,
}

/// An object of one of the kinds DNS cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterObject {
    Namespace(Arc<str>),
    Service(ServiceRecord),
    Pod(PodRecord),
    EndpointSlice(EndpointSliceRecord),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Namespace,
    Service,
    Pod,
    EndpointSlice,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 4] = [
        ObjectKind::Namespace,
        ObjectKind::Service,
        ObjectKind::Pod,
        ObjectKind::EndpointSlice,
    ];
}

impl ClusterObject {
    pub fn kind(&self) -> ObjectKind {
        match self {
            ClusterObject::Namespace(_) => ObjectKind::Namespace,
            ClusterObject::Service(_) => ObjectKind::Service,
            ClusterObject::Pod(_) => ObjectKind::Pod,
            ClusterObject::EndpointSlice(_) => ObjectKind::EndpointSlice,
        }
    }

    pub fn key(&self) -> ObjectKey {
        match self {
            ClusterObject::Namespace(name) => ObjectKey::of_namespace(name),
            ClusterObject::Service(s) => s.key.clone(),
            ClusterObject::Pod(p) => p.key.clone(),
            ClusterObject::EndpointSlice(e) => e.key.clone(),
        }
    }
}
