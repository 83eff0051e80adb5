//! headless-dns: an authoritative DNS server for Kubernetes Services and Pods.
//!
//! One data flow, one module per stage:
//! `source` (manifests file) → `cluster` (state, single writer) → `dns` (view and rules) →
//! `server` (UDP/TCP).

pub mod cluster;
pub mod config;
pub mod dns;
pub mod logging;
pub mod server;
pub mod source;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::info;

use cluster::ClusterState;
use cluster::objects::ObjectKind;
use config::Config;
use dns::rules::Zone;
use dns::view::SharedView;
use server::DnsServer;
use server::handler::Handler;
use source::manifests::{self, Input};

/// Events queued between the sources and the cluster state before sources wait.
const EVENT_QUEUE: usize = 1024;

/// A started server: answering on [`Running::dns_addr`] until [`Running::shutdown`].
pub struct Running {
    pub dns_addr: SocketAddr,
    dns: DnsServer,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub async fn shutdown(self) {
        self.dns.shutdown().await;
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Loads the initial state, then starts answering and following changes. Errors are one line.
pub async fn start(config: &Config) -> Result<Running, String> {
    let ns_address = Some(config.listen.ip()).filter(|ip| !ip.is_unspecified());
    let zone = Zone::new(&config.zone, config.ttl, config.pod_records, ns_address)?;

    let input = Input::from_arg(&config.manifests);
    let seen = match &input {
        Input::File(path) => manifests::fingerprint(path),
        Input::Stdin => None,
    };
    let load_input = input.clone();
    let objects = tokio::task::spawn_blocking(move || manifests::load(&load_input))
        .await
        .map_err(|e| format!("{input}: loading failed: {e}"))??;

    let all_kinds = [ObjectKind::Namespace, ObjectKind::Service, ObjectKind::Pod];
    let mut state = ClusterState::new(&all_kinds, initial_serial());
    state.apply(manifests::resync(objects));
    let view = state.publish().unwrap_or_else(|| state.view().clone());
    info!(
        source = %input,
        services = state.service_count(),
        pods = state.pod_count(),
        "loaded manifests"
    );
    let shared = SharedView::new(view);

    let (events, receiver) = mpsc::channel(EVENT_QUEUE);
    let mut tasks = vec![tokio::spawn(state.run(receiver, shared.clone()))];
    if let Input::File(path) = input {
        tasks.push(tokio::spawn(manifests::watch(path, seen, events)));
    }

    let handler = Handler::new(shared, Arc::new(zone));
    let dns = DnsServer::bind(config.listen, handler)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let dns_addr = dns.local_addr();
    info!(%dns_addr, zone = %config.zone, "answering DNS over UDP and TCP");
    Ok(Running {
        dns_addr,
        dns,
        tasks,
    })
}

/// SOA serials start at the Unix time, so they keep increasing across restarts.
fn initial_serial() -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(now).unwrap_or(u32::MAX)
}
