//! The zone being served and how its names are spelled: the settings the flags give (origin,
//! TTL, pod records, endpoint names, scope, explanations), the apexes of the zones answered, and
//! the dashed-address labels (`10-244-1-5`) the schema names pods by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// The `dns-version` TXT answer: the schema of the Kubernetes DNS spec these rules follow.
pub(crate) const SCHEMA_VERSION: &str = "1.1.0";

/// `dns-version.<clusterset>`'s TXT answer: the version of the Multi-Cluster Services DNS
/// specification (KEP-1645) the clusterset rules follow.
pub(crate) const CLUSTERSET_SCHEMA_VERSION: &str = "1.0.0";

/// The clusterset zone unless `--clusterset-zone` names another.
pub(crate) const DEFAULT_CLUSTERSET_ZONE: &str = "clusterset.local";

/// How `<a-b-c-d>.<ns>.pod.<zone>` is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PodRecords {
    /// Only when a pod in that namespace has that IP.
    #[default]
    Verified,
    /// Any well-formed address is echoed back (kube-dns's historical behaviour).
    Insecure,
    /// The pod subtree does not exist.
    Disabled,
}

/// How an endpoint without a hostname of its own is named under its Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EndpointNames {
    /// By its dashed address (`10-244-1-5`), as the Kubernetes DNS spec says.
    #[default]
    Hostname,
    /// By its pod's name when that is a DNS label, else by its dashed address (CoreDNS's
    /// `endpoint_pod_names`): Deployment pods get stable, readable names.
    PodName,
}

/// The zone being served and the answer settings; built once at startup.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Lower-case, fully qualified, e.g. `cluster.local.`.
    pub origin: Name,
    pub ttl: u32,
    pub pod_records: PodRecords,
    /// Address published for `ns.dns.<zone>`, when the server listens on a specific one.
    pub ns_address: Option<IpAddr>,
    /// What the source watches, for explanations of names it leaves out.
    pub scope: Scope,
    /// Whether negative answers carry their reason (RFC 8914 Extended DNS Errors).
    pub explain: bool,
    /// The Multi-Cluster Services zone (lower-case, fully qualified), answered while some
    /// ServiceImport exists; `None` when the zone itself has its name.
    pub clusterset: Option<Name>,
    /// With several clusters, the other clusters' zones: a refusal names them all.
    pub siblings: Box<[Name]>,
    nameserver: Name,
    hostmaster: Name,
    in_addr_arpa: Name,
    ip6_arpa: Name,
}

impl Zone {
    pub fn new(
        origin: &str,
        ttl: u32,
        pod_records: PodRecords,
        ns_address: Option<IpAddr>,
    ) -> Result<Self, String> {
        let mut origin = Name::from_ascii(origin)
            .map_err(|e| format!("invalid zone {origin:?}: {e}"))?
            .to_lowercase();
        origin.set_fqdn(true);
        if origin.is_root() {
            return Err("the zone cannot be the root".into());
        }
        let child = |label: &str| {
            Name::from_ascii(label)
                .and_then(|n| n.append_domain(&origin))
                .map_err(|e| format!("zone {origin} is too long: {e}"))
        };
        // The default, unless the zone itself has its name.
        let mut clusterset = Name::from_ascii(DEFAULT_CLUSTERSET_ZONE).expect("static name");
        clusterset.set_fqdn(true);
        let clusterset = Some(clusterset).filter(|name| *name != origin);
        Ok(Self {
            nameserver: child("ns.dns")?,
            hostmaster: child("hostmaster")?,
            in_addr_arpa: Name::from_ascii("in-addr.arpa.").expect("static name"),
            ip6_arpa: Name::from_ascii("ip6.arpa.").expect("static name"),
            origin,
            ttl,
            pod_records,
            ns_address,
            scope: Scope::default(),
            explain: true,
            clusterset,
            siblings: Box::default(),
        })
    }

    /// Names the clusterset zone `clusterset` (`--clusterset-zone`): a name, neither the root
    /// nor the zone's own.
    pub fn with_clusterset(mut self, clusterset: &str) -> Result<Self, String> {
        let mut name = Name::from_ascii(clusterset)
            .map_err(|e| format!("invalid clusterset zone {clusterset:?}: {e}"))?
            .to_lowercase();
        name.set_fqdn(true);
        if name.is_root() || name == self.origin {
            return Err(format!(
                "the clusterset zone {name} must be neither the root nor the zone"
            ));
        }
        self.clusterset = Some(name);
        Ok(self)
    }

    /// One of several clusters' zones, beside `siblings` (the others'): no clusterset zone,
    /// which is no one cluster's.
    pub fn among(mut self, siblings: impl IntoIterator<Item = Name>) -> Self {
        self.clusterset = None;
        self.siblings = siblings.into_iter().filter(|s| *s != self.origin).collect();
        self
    }

    /// Explanations name the `--namespace` and `--selector` the source is limited to.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// `false`: negative answers carry no reason (`--explain off`).
    pub fn with_explanations(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// The name of a zone we answer for, as a negative answer's SOA owner.
    pub fn apex(&self, apex: Apex) -> &Name {
        match apex {
            Apex::Zone => &self.origin,
            Apex::InAddrArpa => &self.in_addr_arpa,
            Apex::Ip6Arpa => &self.ip6_arpa,
            Apex::Clusterset => self.clusterset.as_ref().unwrap_or(&self.origin),
        }
    }

    /// The zones answered: the cluster's, the reverse zones, and the clusterset zone when it
    /// has a name of its own.
    pub fn apexes(&self) -> impl Iterator<Item = Apex> + '_ {
        [Apex::Zone, Apex::InAddrArpa, Apex::Ip6Arpa]
            .into_iter()
            .chain(self.clusterset.as_ref().map(|_| Apex::Clusterset))
    }

    /// The zone `name` (lower case) is in: the deepest apex above it, as one zone may hold the
    /// other (`--clusterset-zone set.cluster.local`); `None` outside them all.
    pub fn zone_holding(&self, name: &Name) -> Option<Apex> {
        self.apexes()
            .filter(|&apex| self.apex(apex).zone_of(name))
            .max_by_key(|&apex| self.apex(apex).num_labels())
    }

    /// The SOA's and NS record's name server, `ns.dns.<zone>`.
    pub fn nameserver(&self) -> &Name {
        &self.nameserver
    }

    /// The SOA's mailbox, `hostmaster.<zone>`.
    pub fn hostmaster(&self) -> &Name {
        &self.hostmaster
    }

    /// The SOA record data `(refresh, retry, expire, minimum)` after the serial.
    pub fn soa_timers(&self) -> [u32; 4] {
        [7200, 1800, 86400, self.ttl]
    }
}

/// The part of the cluster the source watches: some namespaces (none listed: all), and the
/// Services matching a label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub namespaces: Vec<String>,
    pub selector: Option<String>,
}

/// One of the zones we are authoritative for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apex {
    Zone,
    InAddrArpa,
    Ip6Arpa,
    /// The Multi-Cluster Services zone.
    Clusterset,
}

/// `10.0.0.1` → `10-0-0-1`; `fd00::1` → `fd00--1`. A label may not begin or end with `-`, so
/// an IPv6 address that begins or ends with `::` gets a `0` there (`2001:db8::` →
/// `2001-db8--0`, as CoreDNS names it; `::1` → `0--1`): each still reads back as the address.
pub(crate) fn dashed(ip: IpAddr) -> String {
    let mut label = ip.to_string().replace(['.', ':'], "-");
    if label.starts_with('-') {
        label.insert(0, '0');
    }
    if label.ends_with('-') {
        label.push('0');
    }
    label
}

/// The inverse of [`dashed`]; `None` for anything that is not an address.
pub(crate) fn parse_dashed(label: &str) -> Option<IpAddr> {
    if label.len() > 45 {
        return None;
    }
    if label.bytes().filter(|&b| b == b'-').count() == 3
        && label.bytes().all(|b| b.is_ascii_digit() || b == b'-')
    {
        let mut buf = [0u8; 15];
        let v4 = fill(&mut buf, label, b'.')?;
        return v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
    }
    let mut buf = [0u8; 45];
    let v6 = fill(&mut buf, label, b':')?;
    v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Copies `label` into `buf` with dashes replaced by `separator`, without allocating.
fn fill<'b>(buf: &'b mut [u8], label: &str, separator: u8) -> Option<&'b str> {
    let out = buf.get_mut(..label.len())?;
    for (o, b) in out.iter_mut().zip(label.bytes()) {
        *o = if b == b'-' { separator } else { b };
    }
    std::str::from_utf8(out).ok()
}
