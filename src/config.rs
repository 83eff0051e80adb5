//! Command-line flags; each can also be set by an environment variable `HEADLESS_DNS_<FLAG>`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::dns::rules::{EndpointNames, PodRecords};
use crate::source::kube::KubeOptions;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// An authoritative DNS server for Kubernetes Services and Pods.
#[derive(Clone, Debug, Parser)]
#[command(name = "headless-dns", version, about)]
pub struct Config {
    /// Serve the Kubernetes objects in this file (`-` for stdin) instead of a cluster:
    /// `kubectl get -o yaml|json` output or plain multi-document YAML. Reloaded when it changes.
    #[arg(long, env = "HEADLESS_DNS_MANIFESTS", value_name = "PATH",
          conflicts_with_all = ["kubeconfig", "context", "namespace", "selector"])]
    pub manifests: Option<PathBuf>,

    /// Manifests files larger than this are refused before they are read, at start and on
    /// reload: bytes, or with Ki, Mi, Gi (k, M, G). 1 GiB holds a million pods in kubectl's
    /// YAML or JSON.
    #[arg(long, env = "HEADLESS_DNS_MANIFESTS_MAX_SIZE", value_name = "SIZE", default_value = "1Gi",
          value_parser = crate::source::manifests::parse_size)]
    pub manifests_max_size: u64,

    /// Kubeconfig to reach the API with (default: KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "HEADLESS_DNS_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: its current context).
    #[arg(long, env = "HEADLESS_DNS_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// Watch only this namespace; repeat for several (default: all). The environment variable
    /// takes a comma-separated list.
    #[arg(long, env = "HEADLESS_DNS_NAMESPACE", value_name = "NS", value_delimiter = ',',
          value_parser = namespace_name)]
    pub namespace: Vec<String>,

    /// Serve only the Services matching this label selector (e.g. `dns=public,tier!=internal`).
    #[arg(long, env = "HEADLESS_DNS_SELECTOR", value_name = "EXPR", value_parser = label_selector)]
    pub selector: Option<String>,

    /// Address to answer DNS on, over both UDP and TCP.
    #[arg(
        long,
        env = "HEADLESS_DNS_LISTEN",
        default_value = "127.0.0.1:5353",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// The cluster domain.
    #[arg(
        long,
        env = "HEADLESS_DNS_ZONE",
        default_value = "cluster.local",
        value_name = "NAME"
    )]
    pub zone: String,

    /// TTL of every answer, and the SOA minimum (negative-caching TTL).
    #[arg(long, env = "HEADLESS_DNS_TTL", default_value_t = 5, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,

    /// How `<a-b-c-d>.<namespace>.pod.<zone>` is answered.
    #[arg(long, env = "HEADLESS_DNS_POD_RECORDS", value_enum, default_value_t)]
    pub pod_records: PodRecords,

    /// How an endpoint without `hostname` is named under its Service: `hostname` by its dashed
    /// IP (the Kubernetes DNS spec); `pod-name` by its pod's name when that is a DNS label
    /// (CoreDNS's `endpoint_pod_names`), else its dashed IP.
    #[arg(long, env = "HEADLESS_DNS_ENDPOINT_NAMES", value_enum, default_value_t)]
    pub endpoint_names: EndpointNames,

    /// Threads answering UDP on the fast path, each on its own SO_REUSEPORT socket (default:
    /// one per available CPU). 0: one task on the async runtime answers UDP instead, with no
    /// threads of its own.
    #[arg(long, env = "HEADLESS_DNS_UDP_THREADS", value_name = "N")]
    pub udp_threads: Option<usize>,

    /// TCP connections open at once; a new one closes the least recently active. Lowered to
    /// what the descriptor limit allows.
    #[arg(long, env = "HEADLESS_DNS_TCP_CONNECTIONS", value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tcp_connections: u32,

    /// Address for the HTTP probes `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "HEADLESS_DNS_HTTP_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub http_listen: SocketAddr,

    /// Log line format. Filter with RUST_LOG (default `info,hickory_server=warn`); per-query
    /// lines are logged at debug level by `headless_dns::server`.
    #[arg(long, env = "HEADLESS_DNS_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,
}

impl Config {
    pub fn kube_options(&self) -> KubeOptions {
        KubeOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespaces: self.namespace.clone(),
            service_selector: self.selector.clone(),
        }
    }
}

fn namespace_name(value: &str) -> Result<String, String> {
    if crate::records::is_dns_label(value) {
        Ok(value.to_owned())
    } else {
        Err("a namespace is a DNS label: lower-case letters, digits and '-', at most 63".into())
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
