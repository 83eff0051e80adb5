//! headless-dns: an authoritative DNS server for Kubernetes Services and Pods.
//!
//! One data flow, one module per stage:
//! `source` (Kubernetes API watch | manifests file) → `cluster` (state, single writer) →
//! `dns` (view and rules) → `server` (DNS over UDP/TCP) and `transfer` (AXFR/IXFR, NOTIFY),
//! with `http` (probes, `/metrics`, `/explain`) over them all.
//!
//! `records` (the few fields an object contributes) and `message` (what a DNS message may hold)
//! sit below every stage; a stage uses only the stages below it (`tests/architecture.rs` checks
//! it): `dns` knows nothing of `cluster`, which writes `dns`'s view, and `source` speaks
//! `cluster`'s events. `config`, `logging` and this file put the stages together.
//!
//! The modules are private; what the binary, the tests, the benches and the fuzz targets use is
//! re-exported below, and nothing else is public.

#![warn(unreachable_pub)]

mod cluster;
pub mod config;
mod dns;
mod http;
pub mod logging;
mod memory;
mod message;
mod records;
mod server;
mod source;
mod transfer;

pub use cluster::{ClusterEvent, ClusterState};
pub use dns::view::SharedView;
pub use dns::zone::{PodRecords, Zone};
pub use records::{ClusterObject, ObjectKind};
pub use server::accept::raise_descriptor_limit;
pub use server::handler::Handler;
pub use source::kube::{
    Fault, Line, ListMeta, ListSplitter, NotAList, ProtobufListSplitter, read_frame, read_line,
    read_protobuf_object,
};
pub use source::manifests;
pub use transfer::TransferPolicy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use cluster::programming::ProgrammingTimes;
use config::{Config, Switch};
use dns::explain::Report;
use http::HttpServer;
use http::metrics::Scrape;
use server::metrics::DnsMetrics;
use server::observe::Observed;
use server::{DnsOptions, DnsServer};
use source::manifests::Input;
use source::stats::SourceStats;

/// Events queued between the sources and the cluster state before sources wait.
const EVENT_QUEUE: usize = 1024;

/// A TCP connection that sends no query for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A started server: answering on [`Running::dns_addr`] until [`Running::shutdown`].
pub struct Running {
    pub dns_addr: SocketAddr,
    pub http_addr: SocketAddr,
    dns: DnsServer,
    http: HttpServer,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// CoreDNS's `lameduck`: `/readyz` fails at once, DNS keeps answering for `lameduck`, then
    /// the server shuts down. Kubernetes takes a pod out of its Services' endpoints when the
    /// readiness probe fails, so clients stop being sent here before the sockets close.
    pub async fn shutdown_after(self, lameduck: Duration) {
        self.http.stop_being_ready();
        if !lameduck.is_zero() {
            info!(lameduck = ?lameduck, "not ready any more; answering until the lameduck period ends");
            tokio::time::sleep(lameduck).await;
        }
        self.shutdown().await;
    }

    pub async fn shutdown(self) {
        self.http.shutdown();
        self.dns.shutdown().await;
        for task in self.tasks {
            task.abort();
        }
    }
}

/// The cluster as the configured source reports it, published for readers.
struct Following {
    view: SharedView,
    tasks: Vec<JoinHandle<()>>,
    source: Arc<SourceStats>,
    programming: Arc<ProgrammingTimes>,
}

/// Starts the source and the cluster state it feeds. A manifests file is loaded before this
/// returns (its errors are returned); the API is followed in the background.
async fn follow(config: &Config, journal: Option<Arc<Zone>>) -> Result<Following, String> {
    let serial = initial_serial();
    let endpoint_names = config.endpoint_names;
    let fresh_state = move || {
        let state = ClusterState::new(serial).with_endpoint_names(endpoint_names);
        match &journal {
            Some(zone) => state.with_journal(zone.clone()),
            None => state,
        }
    };
    let mut state = fresh_state();
    let (events, receiver) = mpsc::channel(EVENT_QUEUE);
    let mut tasks = Vec::new();
    let mut loaded_view = None;
    let source_stats = Arc::new(SourceStats::new());
    match &config.manifests {
        Some(path) => {
            let input = Input::from_arg(path);
            let seen = match &input {
                Input::File(path) => manifests::fingerprint(path),
                Input::Stdin => None,
            };
            let load_input = input.clone();
            // Parsed and applied on one thread, so that what the parser frees can be released.
            let max_size = config.manifests_max_size;
            (state, loaded_view) = tokio::task::spawn_blocking(move || {
                let mut state = load_manifests(&load_input, max_size, fresh_state)?;
                state.apply(ClusterEvent::Synced);
                // Published here too, so that what building the view frees is released with
                // the rest.
                let view = state.publish();
                memory::release_freed();
                Ok::<_, String>((state, view))
            })
            .await
            .map_err(|e| format!("{input}: loading failed: {e}"))??;
            info!(
                source = %input,
                services = state.service_count(),
                pods = state.pod_count(),
                service_imports = state.import_count(),
                "loaded manifests"
            );
            source_stats.caught_up();
            if let Input::File(path) = input {
                let watching = manifests::watch(path, seen, max_size, events, source_stats.clone());
                tasks.push(tokio::spawn(watching));
            }
        }
        None => {
            let options = config.kube_options();
            let client = source::kube::connect(&options).await?;
            let (watchers, _) =
                source::kube::spawn_watchers(client, &options, events, source_stats.clone()).await;
            tasks.extend(watchers);
        }
    }
    let view = loaded_view
        .or_else(|| state.publish())
        .unwrap_or_else(|| state.view().clone());
    let shared = SharedView::new(view);
    let programming = Arc::new(ProgrammingTimes::default());
    tasks.push(tokio::spawn(state.run(
        receiver,
        shared.clone(),
        programming.clone(),
    )));
    Ok(Following {
        view: shared,
        tasks,
        source: source_stats,
        programming,
    })
}

/// The state of a manifests input: a file in parts as it is read (see
/// [`manifests::stream`]), anything else — or a file that way refuses — read whole.
fn load_manifests(
    input: &Input,
    max_size: u64,
    fresh_state: impl Fn() -> ClusterState,
) -> Result<ClusterState, String> {
    let mut state = fresh_state();
    if let Input::File(path) = input {
        let streamed = manifests::stream(path, max_size, |objects| state.load(objects));
        state.finish_loading();
        match streamed {
            // Each object once: an object given twice would have replaced its first.
            Ok(handed) if handed == state.object_count() => return Ok(state),
            Ok(_) => debug!(source = %input, "an object is given twice; reading the file whole"),
            Err(why) => debug!(source = %input, why = %why.0, "reading the file whole"),
        }
        state = fresh_state();
    }
    let loaded = manifests::load(input, max_size)?;
    if loaded.blank {
        warn!(source = %input, "manifests file is empty: serving no objects");
    }
    state.apply(manifests::resync(loaded.objects));
    Ok(state)
}

/// The zone and answer settings the flags ask for.
fn zone(config: &Config) -> Result<Zone, String> {
    let ns_address = Some(config.listen.ip()).filter(|ip| !ip.is_unspecified());
    Ok(
        Zone::new(&config.zone, config.ttl, config.pod_records, ns_address)?
            .with_clusterset(&config.clusterset_zone)?
            .with_scope(config.scope())
            .with_explanations(config.explain == Switch::On),
    )
}

/// Starts the source, then answers DNS and the probes. A manifests file is loaded before the
/// first answer (its errors stop startup); the API is followed in the background, and names in
/// the zone answer SERVFAIL until its first complete list. Errors are one line.
pub async fn start(config: &Config) -> Result<Running, String> {
    let key = config.tsig_key()?;
    if key.is_some() && config.allow_transfer.is_empty() {
        return Err(
            "--tsig-key signs zone transfers, but no client may transfer: add --allow-transfer"
                .into(),
        );
    }
    let zone = Arc::new(zone(config)?);
    let options = DnsOptions {
        udp_threads: config.udp_threads(),
        tcp_connections: tcp_connections(config.tcp_connections),
        tcp_idle: TCP_IDLE_TIMEOUT,
    };
    // Every listener first: one that cannot be had stops the start before anything answers (or
    // before a large manifests file is read).
    let dns_sockets = DnsServer::bind(config.listen, options)
        .await
        .map_err(|e| listen_error("DNS", "--listen", config.listen, &e, config::DNS_PORT))?;
    let http_listener = HttpServer::bind(config.http_listen).await.map_err(|e| {
        listen_error(
            "HTTP",
            "--http-listen",
            config.http_listen,
            &e,
            config::HTTP_PORT,
        )
    })?;
    // Record changes are journaled for IXFR only where someone may transfer the zones.
    let journal = (!config.allow_transfer.is_empty()).then(|| zone.clone());
    let following = follow(config, journal).await?;
    let shared = following.view;
    let dns_metrics = Arc::new(DnsMetrics::new(config.listen, &config.zone));
    let policy = transfer::TransferPolicy {
        allowed: config.allow_transfer.clone(),
        key: key.clone(),
    };
    let handler = Observed::new(
        Handler::new(shared.clone(), zone.clone()).with_transfers(policy),
        dns_metrics.clone(),
        config.log_queries,
    );
    let dns = dns_sockets
        .serve(handler)
        .map_err(|e| format!("cannot answer DNS on {}: {e}", config.listen))?;
    let scrape = Scrape {
        dns: dns_metrics,
        view: shared.clone(),
        source: following.source,
        programming: following.programming,
        tcp_connections: dns.tcp_connections_reader(),
    };
    let http = http_listener.serve(shared.clone(), zone.clone(), scrape);
    let mut tasks = following.tasks;
    tasks.extend(transfer::notify::spawn(
        shared.clone(),
        zone.clone(),
        config.notify.clone(),
        key,
    ));
    let (dns_addr, http_addr) = (dns.local_addr(), http.local_addr());
    info!(%dns_addr, %http_addr, zone = %config.zone, "answering DNS over UDP and TCP");
    Ok(Running {
        dns_addr,
        http_addr,
        dns,
        http,
        tasks,
    })
}

/// Why a listener could not be bound, naming the flag that moves it and what to try.
fn listen_error(
    what: &str,
    flag: &str,
    addr: SocketAddr,
    error: &std::io::Error,
    unprivileged_port: u16,
) -> String {
    use std::io::ErrorKind;
    let next = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1).max(1024));
    let advice = match error.kind() {
        ErrorKind::AddrInUse => format!(
            "another program holds port {port} (`ss -lntup 'sport = :{port}'` shows which); \
             choose another with {flag}, e.g. {flag} {next}",
            port = addr.port()
        ),
        ErrorKind::PermissionDenied if addr.port() < 1024 => format!(
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher one with \
             {flag}, e.g. {flag} {}",
            SocketAddr::new(addr.ip(), unprivileged_port)
        ),
        ErrorKind::AddrNotAvailable => format!(
            "no interface of this machine has the address {}; give one it has with {flag}, \
             e.g. {flag} 127.0.0.1:{}",
            addr.ip(),
            addr.port()
        ),
        _ => format!("choose another address with {flag}"),
    };
    format!("cannot listen for {what} on {addr}: {error}: {advice}")
}

/// How long `explain` waits for the API's first complete list.
const EXPLAIN_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// `headless-dns explain NAME [TYPE]`: follows the source until it is complete, then reports
/// what the name gets and why.
pub async fn explain(config: &Config, name: &str, qtype: &str) -> Result<Report, String> {
    let zone = zone(config)?;
    let (name, qtype) = dns::explain::parse_question(name, qtype)?;
    let following = follow(config, None).await?;
    let started = tokio::time::Instant::now();
    while !following.view.load().synced() {
        if started.elapsed() > EXPLAIN_SYNC_TIMEOUT {
            return Err(format!(
                "no complete list of the cluster from the API within {} s",
                EXPLAIN_SYNC_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = dns::explain::report(&following.view.load(), &zone, &name, qtype);
    for task in following.tasks {
        task.abort();
    }
    Ok(report)
}

/// `--tcp-connections`, lowered to what the descriptor limit leaves for clients.
fn tcp_connections(asked: u32) -> usize {
    let limit = server::accept::descriptor_limit();
    let room = limit
        .saturating_sub(server::accept::RESERVED_DESCRIPTORS)
        .max(1);
    let allowed = u64::from(asked).min(room);
    if allowed < u64::from(asked) {
        info!(
            asked,
            allowed,
            descriptor_limit = limit,
            "fewer TCP connections than --tcp-connections asks: the descriptor limit is lower"
        );
    }
    usize::try_from(allowed).unwrap_or(usize::MAX)
}

/// SOA serials start at the Unix time, so they keep increasing across restarts.
fn initial_serial() -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(now).unwrap_or(u32::MAX)
}
