//! Command-line flags; each can also be set by an environment variable `HEADLESS_DNS_<FLAG>`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::dns::rules::PodRecords;

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
    /// Serve the Kubernetes objects in this file (`-` for stdin): `kubectl get -o yaml|json`
    /// output or plain multi-document YAML. The file is reloaded when it changes.
    #[arg(long, env = "HEADLESS_DNS_MANIFESTS", value_name = "PATH")]
    pub manifests: PathBuf,

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

    /// Log line format. Filter with RUST_LOG (default `info,hickory_server=warn`); per-query
    /// lines are logged at debug level by `headless_dns::server`.
    #[arg(long, env = "HEADLESS_DNS_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,
}
