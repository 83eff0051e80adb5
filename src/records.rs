//! The few fields a Service or Pod contributes to DNS, as plain data.
//!
//! Both sources (the manifests file and the Kubernetes API) convert their objects into these
//! records once, so nothing downstream ever holds a whole API object.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock, RwLock};

use hickory_proto::rr::Name;

/// A DNS-1123 label: what Kubernetes accepts for the names that become DNS labels.
pub(crate) fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// `namespace/name` of an object; the namespace is shared with the view's keys, the name is
/// a [`CompactName`] (inline when short, shared when long).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Arc<str>,
    pub name: CompactName,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `(namespace, name)`, borrowed.
    pub fn names(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }

    /// Namespaces are cluster-scoped: their key has an empty namespace.
    pub fn of_namespace(name: &Arc<str>) -> Self {
        Self {
            namespace: Arc::from(""),
            name: CompactName::from(&**name),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Label pairs sorted by key, in one allocation: a pod keeps its labels only to be matched
/// against selectors, and 100k pods with several labels each would otherwise hold two
/// allocations per pair. Keys (`app`, `pod-template-hash`, ...) repeat across every pod, so each
/// is stored once for the process and referred to by number (see [`LabelKeys`]); values are
/// kept inline, except the values that repeat the name of the object carrying the labels, which
/// are markers: every StatefulSet pod has `statefulset.kubernetes.io/pod-name: <its name>` and
/// (since Kubernetes 1.28) `apps.kubernetes.io/pod-index: <its ordinal>`. With them, the pods of
/// one template have equal label sets, which the cluster state then keeps once.
///
/// Each pair is a key then a value. A key is one byte `n < 0x80` (number `n`), two bytes
/// `0x80 | hi, lo` (number `hi << 8 | lo`), or `0xFF`, a 2-byte length and the key itself. A
/// value is a length byte `< 0xFD` and the value; `0xFD`: the owner's ordinal (its name after
/// the last `-`); `0xFE`, a 2-byte length and the value; or `0xFF`: the owner's name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<[u8]>);

const INLINE_KEY: u8 = 0xFF;
const OWNER_ORDINAL: u8 = 0xFD;
const LONG_VALUE: u8 = 0xFE;
const OWNER_NAME: u8 = 0xFF;

/// The part of `owner`'s name after its last `-` (a StatefulSet pod's ordinal), if any.
fn ordinal(owner: &str) -> Option<&str> {
    owner.rsplit_once('-').map(|(_, ordinal)| ordinal)
}

/// The label keys seen so far. Kept for the life of the process, up to [`LabelKeys::LIMIT`]
/// (further keys are written out in each label set), so a stream of made-up keys cannot grow it
/// without bound.
struct LabelKeys {
    numbers: HashMap<&'static str, u16>,
    names: Vec<&'static str>,
}

impl LabelKeys {
    /// At most 4,096 keys of at most 317 bytes: about 1.3 MB in the worst case.
    const LIMIT: usize = 4096;

    fn table() -> &'static RwLock<LabelKeys> {
        static TABLE: OnceLock<RwLock<LabelKeys>> = OnceLock::new();
        TABLE.get_or_init(|| {
            RwLock::new(LabelKeys {
                numbers: HashMap::new(),
                names: Vec::new(),
            })
        })
    }

    /// The number of `key`, registering it while there is room; `None` past the limit.
    fn number(key: &str) -> Option<u16> {
        let table = Self::table();
        if let Some(&n) = table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .numbers
            .get(key)
        {
            return Some(n);
        }
        let mut table = table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&n) = table.numbers.get(key) {
            return Some(n);
        }
        if table.names.len() >= Self::LIMIT {
            return None;
        }
        let n = table.names.len() as u16;
        let name: &'static str = Box::leak(key.into());
        table.names.push(name);
        table.numbers.insert(name, n);
        Some(n)
    }

    fn name(number: u16) -> &'static str {
        let table = Self::table().read().unwrap_or_else(|e| e.into_inner());
        table.names.get(usize::from(number)).copied().unwrap_or("")
    }
}

/// A key as a label set writes it. A key has one number for the life of the process, and a key
/// written out in full never gets one (the table is full for good), so two sets name the same
/// key exactly when their `KeyRef`s are equal.
#[derive(PartialEq, Eq)]
enum KeyRef<'a> {
    Number(u16),
    Inline(&'a str),
}

impl<'a> KeyRef<'a> {
    fn name(self) -> &'a str {
        match self {
            KeyRef::Number(n) => LabelKeys::name(n),
            KeyRef::Inline(key) => key,
        }
    }
}

/// Reads a packed label set front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn long_text(&mut self) -> Option<&'a str> {
        let len = self.bytes(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]);
        std::str::from_utf8(self.bytes(usize::from(len))?).ok()
    }

    /// The key as written: its number, without a look-up in the key table.
    fn key_ref(&mut self) -> Option<KeyRef<'a>> {
        Some(match self.byte()? {
            INLINE_KEY => KeyRef::Inline(self.long_text()?),
            n if n < 0x80 => KeyRef::Number(u16::from(n)),
            hi => KeyRef::Number(u16::from(hi & 0x7F) << 8 | u16::from(self.byte()?)),
        })
    }

    fn value(&mut self, owner: &'a str) -> Option<&'a str> {
        match self.byte()? {
            OWNER_NAME => Some(owner),
            OWNER_ORDINAL => ordinal(owner),
            LONG_VALUE => self.long_text(),
            len => std::str::from_utf8(self.bytes(usize::from(len))?).ok(),
        }
    }
}

/// Appends a 2-byte length and `text`, cut (at a character boundary) to fit: label keys and
/// values are far shorter than 64 KiB (the API allows 317 and 63 bytes).
fn push_long_text(packed: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    packed.extend_from_slice(&(end as u16).to_be_bytes());
    packed.extend_from_slice(&text.as_bytes()[..end]);
}

impl Labels {
    /// A label set that names no object (a selector).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self::owned_by("", pairs)
    }

    /// The labels of the object named `owner`; read them back with [`Labels::pairs_of`].
    pub fn owned_by(owner: &str, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        pairs.sort_unstable();
        let mut packed = Vec::with_capacity(pairs.iter().map(|(_, v)| v.len() + 2).sum());
        for (key, value) in &pairs {
            match LabelKeys::number(key) {
                Some(n) if n < 0x80 => packed.push(n as u8),
                Some(n) => packed.extend_from_slice(&[0x80 | (n >> 8) as u8, n as u8]),
                None => {
                    packed.push(INLINE_KEY);
                    push_long_text(&mut packed, key);
                }
            }
            if !owner.is_empty() && *value == owner {
                packed.push(OWNER_NAME);
            } else if !value.is_empty() && ordinal(owner) == Some(value) {
                packed.push(OWNER_ORDINAL);
            } else if value.len() < usize::from(OWNER_ORDINAL) {
                packed.push(value.len() as u8);
                packed.extend_from_slice(value.as_bytes());
            } else {
                packed.push(LONG_VALUE);
                push_long_text(&mut packed, value);
            }
        }
        // A copy, not `into_boxed_slice`: the allocator shrinks a block in place when the new
        // size is at least half the old, so a trimmed vector would keep its full block.
        Self(Box::from(packed.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs of a label set made by [`Labels::new`].
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs_of("")
    }

    /// The pairs of the labels of the object named `owner`.
    pub fn pairs_of<'a>(&'a self, owner: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.raw_pairs(owner)
            .map(|(key, value)| (key.name(), value))
    }

    /// The pairs with their keys as written, which compare without the key table's lock.
    fn raw_pairs<'a>(&'a self, owner: &'a str) -> impl Iterator<Item = (KeyRef<'a>, &'a str)> {
        let mut cursor = Cursor(&self.0);
        std::iter::from_fn(move || Some((cursor.key_ref()?, cursor.value(owner)?)))
    }

    /// Whether every pair of `self` (a selector) is among the labels of the object `owner`.
    /// Asked for every pod of a namespace when a Service changes, so keys compare by number.
    pub fn selects(&self, labels: &Labels, owner: &str) -> bool {
        self.raw_pairs("").all(|(k, v)| {
            labels
                .raw_pairs(owner)
                .find(|(key, _)| *key == k)
                .is_some_and(|(_, value)| value == v)
        })
    }
}

/// A pod's or endpoint's addresses in one word: nearly always one IPv4 address, kept in the
/// word itself; otherwise a pointer to the list. A million pods and as many endpoints hold one
/// each, and an enum of the address and a boxed list took two words (8 MB more in each).
///
/// The word's low bit says which: `1`, inline (the address in the upper 32 bits, or none when
/// bit 1 is also set); `0`, a pointer to a `Box<[IpAddr]>` (8-aligned) with several addresses,
/// or one IPv6 address. One IPv4 address is always inline, so that equal lists compare equal.
pub struct Addresses(NonNull<Box<[IpAddr]>>);

const _: () = assert!(
    usize::BITS == 64,
    "an IPv4 address and its tag share a 64-bit word"
);

const INLINE: usize = 1;
const NO_ADDRESS: usize = 0b11;

// SAFETY: an `Addresses` owns its boxed list (when it has one) like a `Box`, which is `Send`
// and `Sync`.
unsafe impl Send for Addresses {}
unsafe impl Sync for Addresses {}

/// The addresses of an [`Addresses`], in order.
pub(crate) type AddressIter<'a> = std::iter::Chain<
    std::option::IntoIter<IpAddr>,
    std::iter::Copied<std::slice::Iter<'a, IpAddr>>,
>;

impl Addresses {
    fn inline(word: usize) -> Self {
        Self(NonNull::new(std::ptr::without_provenance_mut(word)).expect("tagged, not zero"))
    }

    fn boxed(ips: Box<[IpAddr]>) -> Self {
        Self(NonNull::from(Box::leak(Box::new(ips))))
    }

    /// The one IPv4 address held inline, or the list held elsewhere (empty when none).
    fn unpacked(&self) -> (Option<Ipv4Addr>, &[IpAddr]) {
        let word = self.0.as_ptr().addr();
        match word & NO_ADDRESS {
            NO_ADDRESS => (None, &[]),
            INLINE => (Some(Ipv4Addr::from_bits((word >> 32) as u32)), &[]),
            // SAFETY: a pointer made by `boxed` from a live box, owned by `self`.
            _ => (None, unsafe { self.0.as_ref() }),
        }
    }

    pub fn iter(&self) -> AddressIter<'_> {
        let (one, others) = self.unpacked();
        one.map(IpAddr::V4)
            .into_iter()
            .chain(others.iter().copied())
    }

    pub fn len(&self) -> usize {
        let (one, others) = self.unpacked();
        usize::from(one.is_some()) + others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match self.unpacked() {
            (Some(v4), _) => ip == IpAddr::V4(v4),
            (None, others) => others.contains(&ip),
        }
    }
}

impl Drop for Addresses {
    fn drop(&mut self) {
        if self.0.as_ptr().addr() & INLINE == 0 {
            // SAFETY: made by `boxed`; `self` owns it and is not used again.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        }
    }
}

impl Clone for Addresses {
    fn clone(&self) -> Self {
        match self.unpacked() {
            (Some(_), _) => Self(self.0),
            (None, []) => Self::default(),
            (None, others) => Self::boxed(others.into()),
        }
    }
}

impl PartialEq for Addresses {
    fn eq(&self, other: &Self) -> bool {
        self.unpacked() == other.unpacked()
    }
}

impl Eq for Addresses {}

impl std::fmt::Debug for Addresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Default for Addresses {
    fn default() -> Self {
        Self::inline(NO_ADDRESS)
    }
}

impl From<Vec<IpAddr>> for Addresses {
    fn from(ips: Vec<IpAddr>) -> Self {
        match ips[..] {
            [] => Self::default(),
            [IpAddr::V4(v4)] => Self::from(IpAddr::V4(v4)),
            // A copy, so that the block is exactly as large as the list (see `Labels`).
            _ => Self::boxed(Box::from(ips.as_slice())),
        }
    }
}

impl From<IpAddr> for Addresses {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::inline((v4.to_bits() as usize) << 32 | INLINE),
            IpAddr::V6(_) => Self::boxed(Box::new([ip])),
        }
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

/// A Service port. An unnamed one (the empty name) has no `_<port>._<proto>` name, but answers
/// among the SRV records at the Service's own name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub name: Box<str>,
    pub protocol: Protocol,
    pub port: u16,
    pub target: TargetPort,
}

impl ServicePort {
    /// The target when it is a number; `0` (not served) for a name nothing resolved.
    pub fn numbered_target(&self) -> u16 {
        match &self.target {
            TargetPort::Number(n) => *n,
            TargetPort::Name(_) => 0,
        }
    }
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
    /// A CNAME to `spec.externalName`, not chased. Boxed: a name is 80 bytes, and every other
    /// Service would carry that size in its record and its view.
    ExternalName(Box<Name>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecord {
    pub key: ObjectKey,
    pub kind: ServiceKind,
    /// `None` for a Service without a selector: it has no pod endpoints.
    pub selector: Option<Labels>,
    /// Shared with the Service's view.
    pub ports: Arc<[ServicePort]>,
    pub publish_not_ready_addresses: bool,
    /// `spec.ipFamilies`: the families of its pods' addresses that are its endpoints (the
    /// EndpointSlice controller makes slices of these families only).
    pub families: IpFamilies,
}

/// A set of IP families; both when a Service does not say (a hand-written manifest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpFamilies {
    pub v4: bool,
    pub v6: bool,
}

impl IpFamilies {
    pub const BOTH: IpFamilies = IpFamilies { v4: true, v6: true };

    pub fn contains(self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(_) => self.v4,
            IpAddr::V6(_) => self.v6,
        }
    }
}

impl Default for IpFamilies {
    fn default() -> Self {
        Self::BOTH
    }
}

/// A pod's name or an endpoint's label: inline up to 15 bytes (a StatefulSet pod's name, a
/// dashed IPv4 address), otherwise shared by reference count, in 16 bytes either way.
pub(crate) type CompactName = ecow::EcoString;

/// A pod, without its namespace: the cluster state files pods by namespace, and at 100k pods a
/// copy of the namespace's pointer in each would cost 1.6 MB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRecord {
    /// Shared with (or, when short, copied into) the endpoint name it gives the pod when it is
    /// also the hostname.
    pub name: CompactName,
    /// `status.podIPs`, or `status.podIP` when the list is absent.
    pub ips: Addresses,
    /// Shared with the other pods of its template.
    pub template: Arc<PodTemplate>,
    /// Condition `Ready` is `True`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// Phase `Succeeded` or `Failed`: its IP may already belong to another pod.
    pub finished: bool,
}

impl PodRecord {
    pub fn labels(&self) -> &Labels {
        &self.template.labels
    }

    /// `spec.hostname`.
    pub fn hostname(&self) -> Option<&CompactName> {
        match &self.template.hostname {
            PodHostname::None => None,
            PodHostname::Name => Some(&self.name),
            PodHostname::Other(hostname) => Some(hostname),
        }
    }

    pub fn subdomain(&self) -> Option<&str> {
        self.template.subdomain.as_deref()
    }

    pub fn named_ports(&self) -> &[ContainerPort] {
        &self.template.named_ports
    }
}

/// The labels, hostname, subdomain and named ports of a pod: the same for every pod of a
/// template (a StatefulSet's pods differ only in values that repeat their own name, which are
/// recorded as such), so the cluster state keeps one copy of each distinct value and the pods
/// point to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PodTemplate {
    /// Labels of the pod (see [`Labels::pairs_of`] with the pod's name).
    pub labels: Labels,
    pub hostname: PodHostname,
    pub subdomain: Option<Arc<str>>,
    /// Kept only to resolve a Service's named `targetPort`.
    pub named_ports: Box<[ContainerPort]>,
    /// The StatefulSet that controls the pod (its controller `ownerReference`): its
    /// `spec.serviceName` is the pod's subdomain, which explanations name.
    pub statefulset: Option<Arc<str>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum PodHostname {
    #[default]
    None,
    /// The pod's own name, as in every StatefulSet pod.
    Name,
    Other(CompactName),
}

impl PodHostname {
    /// How `hostname` is kept for the pod `name`.
    pub fn of(name: &str, hostname: Option<&str>) -> Self {
        match hostname {
            None => PodHostname::None,
            Some(hostname) if hostname == name => PodHostname::Name,
            Some(hostname) => PodHostname::Other(hostname.into()),
        }
    }
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
    pub hostname: Option<CompactName>,
    /// `targetRef.name`, when it is a DNS label.
    pub target_name: Option<CompactName>,
    /// `conditions.ready`; a missing condition counts as ready.
    pub ready: bool,
}

/// An EndpointSlice (`discovery.k8s.io/v1`) of a Service, joined by `kubernetes.io/service-name`
/// (only Services without a selector take their endpoints from slices), or one an MCS controller
/// wrote for a ServiceImport, joined by `multicluster.kubernetes.io/service-name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSliceRecord {
    pub key: ObjectKey,
    /// The Service, or the ServiceImport when `cluster` is set.
    pub service: CompactName,
    /// `multicluster.kubernetes.io/source-cluster`: the cluster the endpoints are in, for a
    /// slice of a ServiceImport; `None` for a slice of a local Service.
    pub cluster: Option<Arc<str>>,
    pub ports: Box<[SlicePort]>,
    pub endpoints: Box<[SliceEndpoint]>,
}

impl EndpointSliceRecord {
    /// The kind its list belongs to: a slice of a ServiceImport is listed apart from the
    /// slices of local Services (the API source finds the two by different labels).
    pub fn kind(&self) -> ObjectKind {
        match self.cluster {
            Some(_) => ObjectKind::ImportSlice,
            None => ObjectKind::EndpointSlice,
        }
    }
}

/// What a ServiceImport's own name answers (Multi-Cluster Services DNS, `spec.type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// `ClusterSetIP`: the name answers `spec.ips`; its endpoints have no names.
    ClusterSetIp(Box<[IpAddr]>),
    /// `Headless`: the name answers the ready endpoints of every exporting cluster, each also
    /// named `<hostname>.<cluster>.<service>`.
    Headless,
}

/// A ServiceImport (`multicluster.x-k8s.io/v1alpha1`): a Service exported by clusters of the
/// clusterset, named under `clusterset.local`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceImportRecord {
    pub key: ObjectKey,
    pub kind: ImportKind,
    /// `spec.ports`; the target of each is its own number (an import has no pods to resolve a
    /// name on).
    pub ports: Arc<[ServicePort]>,
}

/// An object of one of the kinds DNS cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterObject {
    Namespace(Arc<str>),
    Service(ServiceRecord),
    Pod {
        namespace: Arc<str>,
        pod: PodRecord,
    },
    EndpointSlice(EndpointSliceRecord),
    ServiceImport(ServiceImportRecord),
    /// A ServiceExport (`multicluster.x-k8s.io`): the Service of its name is exported to the
    /// clusterset. Its key is all DNS keeps.
    ServiceExport(ObjectKey),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Namespace,
    Service,
    Pod,
    EndpointSlice,
    ServiceImport,
    /// An EndpointSlice of a ServiceImport (see [`EndpointSliceRecord::cluster`]).
    ImportSlice,
    ServiceExport,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::Namespace,
        ObjectKind::Service,
        ObjectKind::Pod,
        ObjectKind::EndpointSlice,
        ObjectKind::ServiceImport,
        ObjectKind::ImportSlice,
        ObjectKind::ServiceExport,
    ];

    /// The kinds of the core API, which every cluster serves; the Multi-Cluster Services kinds
    /// come from a CRD most clusters lack.
    pub const CORE: [ObjectKind; 4] = [
        ObjectKind::Namespace,
        ObjectKind::Service,
        ObjectKind::Pod,
        ObjectKind::EndpointSlice,
    ];
}

impl ClusterObject {
    /// The object's Kubernetes kind, as `kind:` spells it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ClusterObject::Namespace(_) => "Namespace",
            ClusterObject::Service(_) => "Service",
            ClusterObject::Pod { .. } => "Pod",
            ClusterObject::EndpointSlice(_) => "EndpointSlice",
            ClusterObject::ServiceImport(_) => "ServiceImport",
            ClusterObject::ServiceExport(_) => "ServiceExport",
        }
    }

    /// The object's namespace (empty for a Namespace) and name, without copying them.
    pub fn namespace(&self) -> &str {
        match self {
            ClusterObject::Namespace(_) => "",
            ClusterObject::Service(s) => &s.key.namespace,
            ClusterObject::Pod { namespace, .. } => namespace,
            ClusterObject::EndpointSlice(e) => &e.key.namespace,
            ClusterObject::ServiceImport(i) => &i.key.namespace,
            ClusterObject::ServiceExport(key) => &key.namespace,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ClusterObject::Namespace(name) => name,
            ClusterObject::Service(s) => &s.key.name,
            ClusterObject::Pod { pod, .. } => &pod.name,
            ClusterObject::EndpointSlice(e) => &e.key.name,
            ClusterObject::ServiceImport(i) => &i.key.name,
            ClusterObject::ServiceExport(key) => &key.name,
        }
    }

    pub fn kind(&self) -> ObjectKind {
        match self {
            ClusterObject::Namespace(_) => ObjectKind::Namespace,
            ClusterObject::Service(_) => ObjectKind::Service,
            ClusterObject::Pod { .. } => ObjectKind::Pod,
            ClusterObject::EndpointSlice(e) => e.kind(),
            ClusterObject::ServiceImport(_) => ObjectKind::ServiceImport,
            ClusterObject::ServiceExport(_) => ObjectKind::ServiceExport,
        }
    }

    pub fn key(&self) -> ObjectKey {
        match self {
            ClusterObject::Namespace(name) => ObjectKey::of_namespace(name),
            ClusterObject::Service(s) => s.key.clone(),
            ClusterObject::Pod { namespace, pod } => ObjectKey {
                namespace: namespace.clone(),
                name: pod.name.clone(),
            },
            ClusterObject::EndpointSlice(e) => e.key.clone(),
            ClusterObject::ServiceImport(i) => i.key.clone(),
            ClusterObject::ServiceExport(key) => key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn labels_keep_their_pairs_sorted_and_compare_by_content() {
        let pairs = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let pod_pairs = pairs(&[
            ("statefulset.kubernetes.io/pod-name", "web-0"),
            ("app", "web"),
            ("empty", ""),
        ]);
        let pod = Labels::owned_by("web-0", pod_pairs.clone());
        let expected = [
            ("app", "web"),
            ("empty", ""),
            ("statefulset.kubernetes.io/pod-name", "web-0"),
        ];
        assert_eq!(pod.pairs_of("web-0").collect::<Vec<_>>(), expected);
        // The value that repeats the owner's name is not stored.
        assert!(pod.0.len() + "web-0".len() <= Labels::new(pod_pairs).0.len());
        assert!(labels(&[("app", "web"), ("empty", "")]).selects(&pod, "web-0"));
        assert!(labels(&[("statefulset.kubernetes.io/pod-name", "web-0")]).selects(&pod, "web-0"));
        assert!(!labels(&[("app", "web"), ("tier", "x")]).selects(&pod, "web-0"));
        assert!(!labels(&[("app", "we")]).selects(&pod, "web-0"));
        assert!(Labels::default().selects(&pod, "web-0") && Labels::default().is_empty());
        let reordered = pairs(&[
            ("empty", ""),
            ("app", "web"),
            ("statefulset.kubernetes.io/pod-name", "web-0"),
        ]);
        assert_eq!(pod, Labels::owned_by("web-0", reordered));
        assert_ne!(pod, labels(&[("app", "web")]));
    }

    #[test]
    fn every_encoding_of_keys_and_values_reads_back() {
        // Keys numbered past 127 take two bytes; values of 254 bytes and more a 2-byte length.
        let many: Vec<(String, String)> = (0..200)
            .map(|i| (format!("encoding-test/k{i}"), "v".repeat(i * 2)))
            .collect();
        let labels = Labels::new(many.clone());
        let mut sorted = many;
        sorted.sort();
        let read: Vec<(String, String)> = labels
            .pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(read, sorted);
        let highest = sorted
            .iter()
            .filter_map(|(k, _)| LabelKeys::number(k))
            .max();
        assert!(highest.is_some_and(|n| n >= 0x80), "{highest:?}");
    }

    #[test]
    fn addresses_keep_one_ipv4_address_inline() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(Addresses::from(vec![v4]), Addresses::from(v4));
        assert_eq!(
            Addresses::from(v4).unpacked(),
            (Some("10.0.0.1".parse().unwrap()), &[][..])
        );
        for ips in [vec![], vec![v4], vec![v6], vec![v4, v6], vec![v6, v4]] {
            let addresses: Addresses = ips.iter().copied().collect();
            let copy = addresses.clone();
            drop(addresses);
            let addresses = copy;
            assert_eq!(addresses.iter().collect::<Vec<_>>(), ips);
            assert_eq!(format!("{addresses:?}"), format!("{ips:?}"));
            assert_eq!(addresses.len(), ips.len());
            assert_eq!(addresses.is_empty(), ips.is_empty());
            assert_eq!(addresses.contains(v4), ips.contains(&v4));
            assert_eq!(addresses.contains(v6), ips.contains(&v6));
        }
        // What 100k pods and their endpoints cost per pod depends on these.
        assert_eq!(std::mem::size_of::<Addresses>(), 8);
        assert_eq!(std::mem::size_of::<PodRecord>(), 40);
    }

    #[test]
    fn keys_past_the_table_are_written_out() {
        // What `Labels::new` writes for a key once the key table is full.
        let mut packed = vec![INLINE_KEY];
        packed.extend_from_slice(&8u16.to_be_bytes());
        packed.extend_from_slice(b"rare/key");
        packed.extend_from_slice(&[1, b'v']);
        // Its number depends on which test registered keys first: one byte or two.
        match LabelKeys::number("app").unwrap() {
            n if n < 0x80 => packed.push(n as u8),
            n => packed.extend_from_slice(&[0x80 | (n >> 8) as u8, n as u8]),
        }
        packed.extend_from_slice(&[1, b'x']);
        let labels = Labels(packed.into());
        assert_eq!(
            labels.pairs().collect::<Vec<_>>(),
            [("rare/key", "v"), ("app", "x")]
        );
        // A set cut short ends where the damage starts, without panicking.
        let cut = Labels(labels.0[..labels.0.len() - 1].into());
        assert_eq!(cut.pairs().collect::<Vec<_>>(), [("rare/key", "v")]);
    }
}
