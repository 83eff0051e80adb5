//! Command-line flags; each can also be set by an environment variable `HEADLESS_DNS_<FLAG>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::dns::zone::{DEFAULT_CLUSTERSET_ZONE, EndpointNames, PodRecords, Scope};
use crate::source::kube::{KubeOptions, Multicluster};
use crate::transfer::Network;
use crate::transfer::tsig::TsigKey;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    #[default]
    On,
    Off,
}

/// How lists and watches of the API's own kinds are asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ApiEncoding {
    /// Protobuf, where the API server offers it (JSON otherwise): a third of the bytes, and
    /// faster to read.
    #[default]
    Protobuf,
    Json,
}

/// How each resource's complete state is had, at start and after the API forgot a version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum InitialList {
    /// A list, then a watch from its version.
    #[default]
    List,
    /// A streaming list (WatchList: a watch whose first events are the state) where the API
    /// server offers it, a list where it does not.
    Stream,
}

#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Print what a name gets and why, from the source the same flags name, then exit.
    Explain {
        /// The name as dig asks it (`web-0.nginx-svc.default.svc.cluster.local`), or an IP address
        /// for its PTR name.
        name: String,
        /// The record type asked for.
        #[arg(default_value = "A")]
        qtype: String,
        /// Print the report as JSON, as `GET /explain` returns it.
        #[arg(long)]
        json: bool,
    },
}

/// The port the DNS listener takes by default: not 53 (it needs root, and systemd-resolved holds
/// 127.0.0.53:53) and not 5353, which mDNS responders (avahi-daemon, macOS's mDNSResponder)
/// hold on most desktops. 1053 is where unprivileged DNS servers usually go (CoreDNS's own
/// examples use it).
pub const DNS_PORT: u16 = 1053;
/// The port of the HTTP listener by default: not 8080, which local web servers and development
/// proxies hold.
pub const HTTP_PORT: u16 = 8053;
const DEFAULT_LISTEN: &str = "127.0.0.1:1053";
const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8053";

const SOURCE: &str = "Source (a manifests file, or a cluster's API)";
const ANSWERS: &str = "Answers";
const LISTENERS: &str = "Listeners";
const TRANSFERS: &str = "Zone transfers";
const LOGGING: &str = "Logging";

/// An authoritative DNS server for Kubernetes Services and Pods.
///
/// The flags of the source and of the answers are shared with `explain`; each flag can also be
/// set by an environment variable HEADLESS_DNS_<FLAG>.
#[derive(Clone, Debug, Parser)]
#[command(name = "headless-dns", version, about)]
pub struct Config {
    /// Serve the Kubernetes objects in this file (`-` for stdin) instead of a cluster:
    /// `kubectl get -o yaml|json` output or plain multi-document YAML. Reloaded when it changes.
    /// Not with --kubeconfig, --context, --namespace or --selector.
    #[arg(long, global = true, env = "HEADLESS_DNS_MANIFESTS", value_name = "PATH",
          help_heading = SOURCE, conflicts_with_all = ["kubeconfig", "context", "namespace", "selector"])]
    pub manifests: Option<PathBuf>,

    /// Follow the cluster of kubeconfig context CONTEXT as NAME, answering its names under
    /// `<NAME>.<zone>` (`<service>.<namespace>.svc.<NAME>.cluster.local`); repeat for each
    /// cluster, mixed with --cluster-manifests if need be. NAME is a DNS label. The environment
    /// variable takes a comma-separated list. Not with --manifests or --context.
    #[arg(long = "cluster", global = true, env = "HEADLESS_DNS_CLUSTER", value_name = "NAME=CONTEXT",
          value_delimiter = ',', help_heading = SOURCE, value_parser = named_cluster,
          conflicts_with_all = ["manifests", "context"])]
    pub clusters: Vec<NamedCluster>,

    /// Serve the objects in the manifests file PATH as cluster NAME, under `<NAME>.<zone>`, as
    /// --cluster does a cluster's API; repeat for each. The environment variable takes a
    /// comma-separated list. Not with --manifests.
    #[arg(long = "cluster-manifests", global = true, env = "HEADLESS_DNS_CLUSTER_MANIFESTS",
          value_name = "NAME=PATH", value_delimiter = ',', help_heading = SOURCE,
          value_parser = named_cluster, conflicts_with_all = ["manifests"])]
    pub cluster_manifests: Vec<NamedCluster>,

    /// Manifests files larger than this are refused before they are read, at start and on
    /// reload: bytes, or with Ki, Mi, Gi (k, M, G). 1 GiB holds a million pods in kubectl's
    /// YAML or JSON.
    #[arg(long, global = true, env = "HEADLESS_DNS_MANIFESTS_MAX_SIZE", value_name = "SIZE", default_value = "1Gi",
          help_heading = SOURCE, value_parser = parse_size)]
    pub manifests_max_size: u64,

    /// Kubeconfig to reach the API with (default: KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, global = true, env = "HEADLESS_DNS_KUBECONFIG", value_name = "PATH",
          help_heading = SOURCE)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: its current context); one it lacks is an error.
    #[arg(long, global = true, env = "HEADLESS_DNS_CONTEXT", value_name = "NAME",
          help_heading = SOURCE)]
    pub context: Option<String>,

    /// Watch only this namespace; repeat for several (default: all). The environment variable
    /// takes a comma-separated list.
    #[arg(long, global = true, env = "HEADLESS_DNS_NAMESPACE", value_name = "NS", value_delimiter = ',',
          help_heading = SOURCE, value_parser = namespace_name)]
    pub namespace: Vec<String>,

    /// Serve only the Services matching this label selector (e.g. `dns=public,tier!=internal`).
    #[arg(long, global = true, env = "HEADLESS_DNS_SELECTOR", value_name = "EXPR",
          help_heading = SOURCE, value_parser = label_selector)]
    pub selector: Option<String>,

    /// How to ask the API for Namespaces, Services, Pods and EndpointSlices: protobuf (JSON
    /// where the API server does not offer it) or JSON only.
    #[arg(long, global = true, env = "HEADLESS_DNS_API_ENCODING", value_name = "ENCODING",
          default_value = "protobuf", help_heading = SOURCE)]
    pub api_encoding: ApiEncoding,

    /// How to have each resource's state at start and after the API forgot the version
    /// watched: a list, or a streaming list (WatchList) where the API server offers it.
    #[arg(long, global = true, env = "HEADLESS_DNS_INITIAL_LIST", value_name = "HOW",
          default_value = "list", help_heading = SOURCE)]
    pub initial_list: InitialList,

    /// The cluster domain: labels of letters, digits, `-` and `_`.
    #[arg(long, global = true, env = "HEADLESS_DNS_ZONE", default_value = "cluster.local", value_name = "NAME",
          help_heading = ANSWERS, value_parser = zone_name)]
    pub zone: String,

    /// The Multi-Cluster Services zone, answered (`<service>.<namespace>.svc.<NAME>`) while the
    /// source holds a ServiceImport.
    #[arg(long, global = true, env = "HEADLESS_DNS_CLUSTERSET_ZONE", default_value = DEFAULT_CLUSTERSET_ZONE,
          value_name = "NAME", help_heading = ANSWERS, value_parser = zone_name)]
    pub clusterset_zone: String,

    /// TTL of every answer, and the SOA minimum (negative-caching TTL): 0 to 3600.
    #[arg(long, global = true, env = "HEADLESS_DNS_TTL", default_value_t = 5, value_name = "SECONDS",
          help_heading = ANSWERS, value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,

    /// How `<a-b-c-d>.<namespace>.pod.<zone>` is answered.
    #[arg(long, global = true, env = "HEADLESS_DNS_POD_RECORDS", value_enum, default_value_t,
          value_name = "MODE", help_heading = ANSWERS)]
    pub pod_records: PodRecords,

    /// How an endpoint without `hostname` is named under its Service: `hostname` by its dashed
    /// IP (the Kubernetes DNS spec); `pod-name` by its pod's name when that is a DNS label
    /// (CoreDNS's `endpoint_pod_names`), else its dashed IP.
    #[arg(long, global = true, env = "HEADLESS_DNS_ENDPOINT_NAMES", value_enum, default_value_t,
          value_name = "MODE", help_heading = ANSWERS)]
    pub endpoint_names: EndpointNames,

    /// Negative and refused answers to EDNS queries carry their reason as an Extended DNS Error
    /// (RFC 8914), which `dig` prints, and GET /explain answers. `off` for clusters where names
    /// of pods that are not Ready must not be told to whoever asks.
    #[arg(long, env = "HEADLESS_DNS_EXPLAIN", value_enum, default_value_t, value_name = "SWITCH",
          help_heading = ANSWERS)]
    pub explain: Switch,

    /// Address to answer DNS on, over both UDP and TCP: IP and port (`0.0.0.0:1053` for every
    /// IPv4 interface).
    #[arg(long, env = "HEADLESS_DNS_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR",
          help_heading = LISTENERS, value_parser = dns_address)]
    pub listen: SocketAddr,

    /// Address for the HTTP probes `/healthz` and `/readyz`, `/metrics`, and `/explain`.
    #[arg(long, env = "HEADLESS_DNS_HTTP_LISTEN", default_value = DEFAULT_HTTP_LISTEN,
          value_name = "ADDR", help_heading = LISTENERS, value_parser = http_address)]
    pub http_listen: SocketAddr,

    /// Threads answering UDP, each on its own SO_REUSEPORT socket, taking datagrams in batches
    /// (default: one per available CPU). 0: one task on the async runtime answers UDP instead,
    /// with no threads of its own.
    #[arg(long, env = "HEADLESS_DNS_UDP_THREADS", value_name = "N", help_heading = LISTENERS)]
    pub udp_threads: Option<usize>,

    /// TCP connections open at once, 1 or more; a new one closes the least recently active.
    /// Lowered to the descriptor limit less 64.
    #[arg(long, env = "HEADLESS_DNS_TCP_CONNECTIONS", value_name = "N", default_value_t = 1024,
          help_heading = LISTENERS, value_parser = clap::value_parser!(u32).range(1..))]
    pub tcp_connections: u32,

    /// On SIGTERM or SIGINT, `/readyz` fails at once while DNS keeps answering this long, then
    /// the server stops (CoreDNS's `lameduck`): `5s`, `500ms`, `1m`, or plain seconds, up to
    /// 10 minutes; `0` stops at once.
    #[arg(long, env = "HEADLESS_DNS_LAMEDUCK", value_name = "DURATION", default_value = "5s",
          help_heading = LISTENERS, value_parser = duration)]
    pub lameduck: Duration,

    /// Clients allowed zone transfers (AXFR, IXFR over TCP) of the zone and the reverse zones:
    /// a network (`10.0.0.0/8`, `fd00::/8`) or an address; repeat for several (default: none,
    /// transfers are refused). The environment variable takes a comma-separated list.
    #[arg(long, env = "HEADLESS_DNS_ALLOW_TRANSFER", value_name = "CIDR", value_delimiter = ',',
          help_heading = TRANSFERS)]
    pub allow_transfer: Vec<Network>,

    /// Secondaries to send NOTIFY to when the zones change: an address, port 53 unless given
    /// (`192.0.2.1`, `192.0.2.1:5300`, `[fd00::1]:53`); repeat for several.
    #[arg(long, env = "HEADLESS_DNS_NOTIFY", value_name = "ADDR[:PORT]", value_delimiter = ',',
          help_heading = TRANSFERS, value_parser = notify_target)]
    pub notify: Vec<SocketAddr>,

    /// A TSIG key (RFC 8945) as `NAME:ALGORITHM:BASE64`, algorithm hmac-sha256, hmac-sha384 or
    /// hmac-sha512: transfer requests must then be signed with it (unsigned ones are refused),
    /// and their answers and our NOTIFYs are signed. Prefer the environment variable: a flag is
    /// visible to every user of the machine in the process list.
    #[arg(long, env = "HEADLESS_DNS_TSIG_KEY", hide_env_values = true,
          value_name = "NAME:ALGORITHM:BASE64", help_heading = TRANSFERS)]
    pub tsig_key: Option<String>,

    /// Log line format, also of an error that stops the process. Filter with RUST_LOG (default
    /// `info,hickory_server=warn,kube_client=off`).
    #[arg(long, global = true, env = "HEADLESS_DNS_LOG_FORMAT", value_enum, default_value_t,
          value_name = "FORMAT", help_heading = LOGGING)]
    pub log_format: LogFormat,

    /// Log one line per query (client, transport, name, type, rcode, answers, size, TC,
    /// duration) in the --log-format, whatever RUST_LOG says about other lines.
    #[arg(long, env = "HEADLESS_DNS_LOG_QUERIES", help_heading = LOGGING)]
    pub log_queries: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One cluster of several: `NAME=CONTEXT` (`--cluster`) or `NAME=PATH`
/// (`--cluster-manifests`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedCluster {
    /// A DNS label: the cluster's zone is `<name>.<zone>`.
    pub name: String,
    /// The kubeconfig context, or the manifests file.
    pub from: String,
}

fn named_cluster(value: &str) -> Result<NamedCluster, String> {
    let Some((name, from)) = value.split_once('=') else {
        return Err(format!(
            "{value:?} names no cluster: give NAME=CONTEXT (--cluster) or NAME=PATH \
             (--cluster-manifests), e.g. east=kind-east"
        ));
    };
    if !crate::records::is_dns_label(name) {
        return Err(format!(
            "the cluster name {name:?} is not a DNS label (lower-case letters, digits and '-', \
             at most 63): it names the cluster's zone, <NAME>.<zone>"
        ));
    }
    if from.is_empty() {
        return Err(format!("cluster {name:?}: nothing after '='"));
    }
    Ok(NamedCluster {
        name: name.to_owned(),
        from: from.to_owned(),
    })
}

/// Where one cluster's objects come from.
#[derive(Clone, Debug)]
pub enum Source {
    Manifests(PathBuf),
    Api(KubeOptions),
}

/// One cluster to follow: its name (`None` for the one source of a single-cluster server) and
/// its source.
#[derive(Clone, Debug)]
pub struct ClusterSource {
    pub name: Option<String>,
    pub source: Source,
}

impl Config {
    /// The clusters to follow: each --cluster and --cluster-manifests in the order given
    /// (all the --cluster first), else the one source --manifests or the API flags name. Two
    /// clusters of one name are an error.
    pub fn sources(&self) -> Result<Vec<ClusterSource>, String> {
        if self.clusters.is_empty() && self.cluster_manifests.is_empty() {
            let source = match &self.manifests {
                Some(path) => Source::Manifests(path.clone()),
                None => Source::Api(self.kube_options()),
            };
            return Ok(vec![ClusterSource { name: None, source }]);
        }
        let mut sources: Vec<ClusterSource> = Vec::new();
        let api = self.clusters.iter().map(|c| {
            let mut options = self.kube_options();
            options.context = Some(c.from.clone());
            options.multicluster = Multicluster::Exports;
            (c, Source::Api(options))
        });
        let files = self
            .cluster_manifests
            .iter()
            .map(|c| (c, Source::Manifests(PathBuf::from(&c.from))));
        for (cluster, source) in api.chain(files) {
            if sources
                .iter()
                .any(|s| s.name.as_deref() == Some(&cluster.name))
            {
                return Err(format!(
                    "two clusters are named {:?}: each needs a name of its own (its zone is \
                     <NAME>.{})",
                    cluster.name, self.zone
                ));
            }
            sources.push(ClusterSource {
                name: Some(cluster.name.clone()),
                source,
            });
        }
        Ok(sources)
    }

    /// The `--tsig-key`, parsed. (Parsed here rather than by clap, whose errors repeat the
    /// value: the secret would end up in logs.)
    pub fn tsig_key(&self) -> Result<Option<TsigKey>, String> {
        self.tsig_key
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| format!("--tsig-key: {e}"))
    }

    /// What the source watches, for explanations.
    pub fn scope(&self) -> Scope {
        Scope {
            namespaces: self.namespace.clone(),
            selector: self.selector.clone(),
        }
    }

    pub fn kube_options(&self) -> KubeOptions {
        KubeOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespaces: self.namespace.clone(),
            service_selector: self.selector.clone(),
            protobuf: self.api_encoding == ApiEncoding::Protobuf,
            stream_lists: self.initial_list == InitialList::Stream,
            multicluster: Multicluster::Imports,
        }
    }
}

/// A listener's address: an IP and a port. What people type instead (a bare port, `:1053`, a
/// host name) gets an error that shows the form wanted.
fn dns_address(value: &str) -> Result<SocketAddr, String> {
    socket_address(value, DNS_PORT)
}

fn http_address(value: &str) -> Result<SocketAddr, String> {
    socket_address(value, HTTP_PORT)
}

fn socket_address(value: &str, usual_port: u16) -> Result<SocketAddr, String> {
    if let Ok(address) = value.parse() {
        return Ok(address);
    }
    let example = |port: &str| {
        format!(
            "127.0.0.1:{port} (this machine only), 0.0.0.0:{port} (every IPv4 interface) or [::1]:{port}"
        )
    };
    match value.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip @ std::net::IpAddr::V4(_)) => {
            return Err(format!("{value:?} has no port: e.g. {ip}:{usual_port}"));
        }
        Ok(ip) => return Err(format!("{value:?} has no port: e.g. [{ip}]:{usual_port}")),
        Err(_) => {}
    }
    if value.parse::<u16>().is_ok() {
        return Err(format!(
            "{value:?} is a port alone: give an IP and the port, e.g. {}",
            example(value)
        ));
    }
    if let Some(port) = value.strip_prefix(':').filter(|p| p.parse::<u16>().is_ok()) {
        return Err(format!(
            "{value:?} has no IP: give one with the port, e.g. {}",
            example(port)
        ));
    }
    if let Some((host, port)) = value.rsplit_once(':')
        && port.parse::<u16>().is_ok()
        && host.parse::<std::net::IpAddr>().is_err()
    {
        return Err(format!(
            "{value:?}: {host:?} is not an IP address (host names are not looked up): e.g. {}",
            example(port)
        ));
    }
    Err(format!(
        "{value:?} is not an IP address and port: e.g. {}",
        example(&usual_port.to_string())
    ))
}

/// An address, with port 53 unless one is given.
fn notify_target(value: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = value.parse::<SocketAddr>() {
        return Ok(address);
    }
    let bare = value.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("{value:?} is not an address: 192.0.2.1, 192.0.2.1:5300 or [fd00::1]:53")
        })
}

fn namespace_name(value: &str) -> Result<String, String> {
    if crate::records::is_dns_label(value) {
        Ok(value.to_owned())
    } else {
        Err("a namespace is a DNS label: lower-case letters, digits and '-', at most 63".into())
    }
}

/// A domain name of letters, digits, `-` and `_`; an error points at what is wrong, since a
/// stray space or a non-ASCII letter is easy to miss in a message.
fn zone_name(value: &str) -> Result<String, String> {
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.is_empty() {
        return Err("the zone cannot be the root: give a domain such as cluster.local".into());
    }
    if name.len() > 253 {
        return Err(format!("{} characters, at most 253", name.len()));
    }
    let mut position = 0;
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("an empty label at character {}", position + 1));
        }
        if label.len() > 63 {
            return Err(format!(
                "the label {label:?} has {} characters, at most 63",
                label.len()
            ));
        }
        if let Some((at, c)) = label
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            let shown = c.escape_debug();
            return Err(format!(
                "'{shown}' (U+{:04X}) at character {} is not allowed: a zone is labels of \
                 letters, digits, '-' and '_' separated by dots",
                u32::from(c),
                name[..position + at].chars().count() + 1
            ));
        }
        position += label.len() + 1;
    }
    Ok(value.to_owned())
}

/// `--manifests-max-size`: bytes, or with a suffix `Ki`, `Mi`, `Gi` (1024-based) or `k`, `M`,
/// `G` (1000-based), each optionally followed by `B`.
pub fn parse_size(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let (number, suffix) = number_and_unit(value)
        .ok_or_else(|| format!("{value:?} is not a size: a number of bytes, e.g. 512Mi or 1Gi"))?;
    let multiplier: u64 = match suffix.trim().trim_end_matches('B') {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size suffix {other:?} in {value:?}: use Ki, Mi, Gi (or k, M, G)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{value:?} is not a size between 1 byte and 16 EiB"))
}

/// The whole number a flag's value starts with, and what follows it (its unit).
fn number_and_unit(value: &str) -> Option<(u64, &str)> {
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    Some((number.parse().ok()?, unit))
}

/// A duration as CoreDNS writes one (`5s`, `500ms`, `1m`), or plain seconds.
fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let (number, unit) = number_and_unit(value)
        .ok_or_else(|| format!("{value:?}: expected a whole number with ms, s or m, like 5s"))?;
    let millis = match unit {
        "ms" => Some(number),
        "" | "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        _ => {
            return Err(format!(
                "{value:?}: the unit {unit:?} is not one of ms, s, m"
            ));
        }
    };
    match millis {
        Some(millis) if millis <= 600_000 => Ok(Duration::from_millis(millis)),
        _ => Err(format!("{value:?}: at most 10 minutes")),
    }
}

/// Catches the obvious mistakes; the API server has the final word on selector syntax.
fn label_selector(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty()
        || value.split(',').any(|term| term.trim().is_empty()) && !value.contains('(')
    {
        return Err("an empty selector or selector term".into());
    }
    Ok(value.to_owned())
}

impl Config {
    /// `--udp-threads`, defaulting to the CPUs this process may run on.
    pub fn udp_threads(&self) -> usize {
        self.udp_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        for good in ["cluster.local", "cluster.local.", "my_zone.example", "k8s"] {
            assert_eq!(zone_name(good).as_deref(), Ok(good));
        }
        for (bad, says) in [
            ("clu ster.local", "' ' (U+0020) at character 4"),
            ("clu\tster.local", "'\\t' (U+0009) at character 4"),
            ("clüster.local", "'ü' (U+00FC) at character 3"),
            ("cluster..local", "an empty label at character 9"),
            (".", "cannot be the root"),
            ("a.b\\c", "'\\\\' (U+005C) at character 4"),
        ] {
            let error = zone_name(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn listener_addresses_say_what_is_wanted() {
        assert_eq!(
            dns_address("127.0.0.1:1053"),
            Ok(([127, 0, 0, 1], 1053).into())
        );
        assert!(dns_address("[::1]:53").is_ok());
        for (typed, says) in [
            (
                "5353",
                "is a port alone: give an IP and the port, e.g. 127.0.0.1:5353",
            ),
            (
                ":5353",
                "has no IP: give one with the port, e.g. 127.0.0.1:5353",
            ),
            (
                "localhost:5353",
                "\"localhost\" is not an IP address (host names are not looked up): e.g. 127.0.0.1:5353",
            ),
            ("10.0.0.1", "has no port: e.g. 10.0.0.1:1053"),
            ("::1", "has no port: e.g. [::1]:1053"),
            (
                "nonsense",
                "is not an IP address and port: e.g. 127.0.0.1:1053",
            ),
        ] {
            let error = dns_address(typed).unwrap_err();
            assert!(error.contains(says), "{typed}: {error}");
        }
        assert!(
            http_address("10.0.0.1")
                .unwrap_err()
                .contains("10.0.0.1:8053")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1Gi"), Ok(1 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("100M"), Ok(100_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(
            parse_size("0").is_err() && parse_size("1Ti").is_err() && parse_size("big").is_err()
        );
    }

    #[test]
    fn durations() {
        for (text, millis) in [
            ("5s", 5_000),
            ("500ms", 500),
            ("1m", 60_000),
            ("7", 7_000),
            ("0", 0),
        ] {
            assert_eq!(duration(text), Ok(Duration::from_millis(millis)), "{text}");
        }
        for text in ["", "s", "5h", "-1s", "1.5s", "11m", "99999999999999999999s"] {
            assert!(duration(text).is_err(), "{text} accepted");
        }
    }
}
