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
use tracing::{Instrument, debug, info, warn};

use cluster::programming::ProgrammingTimes;
use config::{ClusterSource, Config, Source, Switch};
use dns::clusters::{Routes, Served};
use dns::explain::Report;
use http::HttpServer;
use http::metrics::{ClusterFigures, Scrape};
use server::clusters::Clusters;
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

/// Starts `source` and the cluster state it feeds. A manifests file is loaded before this
/// returns (its errors are returned); the API is followed in the background.
async fn follow(
    source: &Source,
    config: &Config,
    journal: Option<Arc<Zone>>,
) -> Result<Following, String> {
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
    match source {
        Source::Manifests(path) => {
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
                tasks.push(tokio::spawn(watching.in_current_span()));
            }
        }
        Source::Api(options) => {
            let client = source::kube::connect(options).await?;
            let (watchers, _) =
                source::kube::spawn_watchers(client, options, events, source_stats.clone()).await;
            tasks.extend(watchers);
        }
    }
    let view = loaded_view
        .or_else(|| state.publish())
        .unwrap_or_else(|| state.view().clone());
    let shared = SharedView::new(view);
    let programming = Arc::new(ProgrammingTimes::default());
    tasks.push(tokio::spawn(
        state
            .run(receiver, shared.clone(), programming.clone())
            .in_current_span(),
    ));
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

/// The zone and answer settings the flags ask for; for a cluster of several (`sources`), its
/// own zone `<cluster>.<zone>`.
fn zone(config: &Config, cluster: Option<&str>, sources: &[ClusterSource]) -> Result<Zone, String> {
    let ns_address = Some(config.listen.ip()).filter(|ip| !ip.is_unspecified());
    let origin = |cluster: Option<&str>| match cluster {
        Some(name) => format!("{name}.{}", config.zone),
        None => config.zone.clone(),
    };
    let zone = Zone::new(&origin(cluster), config.ttl, config.pod_records, ns_address)?
        .with_scope(config.scope())
        .with_explanations(config.explain == Switch::On);
    let Some(cluster) = cluster else {
        return zone.with_clusterset(&config.clusterset_zone);
    };
    // The clusterset zone of several clusters is served beside theirs: neither may hold the
    // other, or a name would belong to both.
    let clusterset = self::zone(config, None, &[])?;
    let set = clusterset.apex(dns::zone::Apex::Clusterset);
    if set.zone_of(&zone.origin) || zone.origin.zone_of(set) {
        return Err(format!(
            "cluster {cluster}'s zone {} and the clusterset zone {set} overlap: name the cluster \
             otherwise, or move the clusterset zone with --clusterset-zone",
            zone.origin
        ));
    }
    let siblings = sources
        .iter()
        .filter_map(|s| hickory_proto::rr::Name::from_ascii(origin(s.name.as_deref())).ok())
        .map(|mut name| {
            name.set_fqdn(true);
            name.to_lowercase()
        });
    Ok(zone.among(siblings))
}

/// What is served: each cluster followed and, with several, the clusterset zone they make;
/// the clusters' figures; the tasks that keep them.
struct Serving {
    served: Vec<Served>,
    figures: Vec<ClusterFigures>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts following each cluster `sources` names (each logging in a span named after it) and,
/// with several, the clusterset zone made from their exported Services.
async fn follow_all(
    sources: &[ClusterSource],
    config: &Config,
    journal: bool,
) -> Result<Serving, String> {
    let mut serving = Serving {
        served: Vec::with_capacity(sources.len() + 1),
        figures: Vec::with_capacity(sources.len()),
        tasks: Vec::new(),
    };
    for ClusterSource { name, source } in sources {
        let zone = Arc::new(zone(config, name.as_deref(), sources)?);
        let span = match name {
            Some(name) => tracing::info_span!("cluster", cluster = %name),
            None => tracing::Span::none(),
        };
        let journal = journal.then(|| zone.clone());
        let following = follow(source, config, journal)
            .instrument(span)
            .await
            .map_err(|e| match name {
                Some(name) => format!("cluster {name}: {e}"),
                None => e,
            })?;
        let served = Served::cluster(name.as_deref().map(Arc::from), zone, following.view);
        serving.served.push(served.clone());
        serving.figures.push(ClusterFigures {
            served,
            source: following.source,
            programming: following.programming,
        });
        serving.tasks.extend(following.tasks);
    }
    let named: Vec<(Arc<str>, SharedView)> = serving
        .served
        .iter()
        .filter_map(|c| Some((c.name.clone()?, c.view.clone())))
        .collect();
    if !named.is_empty() {
        let zone = Arc::new(zone(config, None, &[])?);
        let view = SharedView::new(dns::view::View::new(initial_serial()));
        serving
            .tasks
            .push(tokio::spawn(cluster::exports::follow(named, view.clone())));
        serving.served.push(Served::clusterset(zone, view));
    }
    Ok(serving)
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
    let sources = config.sources()?;
    let several = sources.iter().any(|s| s.name.is_some());
    if several && !(config.allow_transfer.is_empty() && config.notify.is_empty()) {
        return Err(
            "--allow-transfer and --notify serve one cluster's zones: not with --cluster or \
             --cluster-manifests (yet)"
                .into(),
        );
    }
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
    let followed = follow_all(&sources, config, !config.allow_transfer.is_empty()).await?;
    let dns_metrics = Arc::new(DnsMetrics::new(config.listen, &config.zone));
    let policy = transfer::TransferPolicy {
        allowed: config.allow_transfer.clone(),
        key: key.clone(),
    };
    let Serving {
        served,
        figures,
        mut tasks,
    } = followed;
    let handlers: Vec<Handler> = served
        .iter()
        .map(|c| Handler::new(c.view.clone(), c.zone.clone()).with_transfers(policy.clone()))
        .collect();
    let dns = match &handlers[..] {
        // One cluster: its handler answers everything, as it always has.
        [handler] if !several => dns_sockets.serve(Observed::new(
            handler.clone(),
            dns_metrics.clone(),
            config.log_queries,
        )),
        _ => dns_sockets.serve(Observed::new(
            Clusters::new(handlers, Routes::new(&served)),
            dns_metrics.clone(),
            config.log_queries,
        )),
    }
    .map_err(|e| format!("cannot answer DNS on {}: {e}", config.listen))?;
    let scrape = Scrape {
        dns: dns_metrics,
        clusters: figures,
        clusterset: served
            .iter()
            .find(|c| c.answers == dns::zone::Apex::Clusterset)
            .map(|c| c.view.clone()),
        tcp_connections: dns.tcp_connections_reader(),
    };
    if let [cluster] = &served[..] {
        tasks.extend(transfer::notify::spawn(
            cluster.view.clone(),
            cluster.zone.clone(),
            config.notify.clone(),
            key,
        ));
    }
    let zones: Vec<String> = served.iter().map(|c| c.apex().to_string()).collect();
    let http = http_listener.serve(served.into(), scrape);
    let (dns_addr, http_addr) = (dns.local_addr(), http.local_addr());
    let zones = zones.join(",");
    info!(%dns_addr, %http_addr, zone = %zones, "answering DNS over UDP and TCP");
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
    let (name, qtype) = dns::explain::parse_question(name, qtype)?;
    let mut sources = config.sources()?;
    // With several clusters, only the one whose zone holds the name need be followed.
    if sources.len() > 1 {
        let lower = name.to_lowercase();
        let holding = sources.iter().position(|s| {
            zone(config, s.name.as_deref(), &[]).is_ok_and(|z| z.origin.zone_of(&lower))
        });
        if let Some(index) = holding {
            sources = vec![sources.swap_remove(index)];
        }
    }
    let Serving { served, tasks, .. } = follow_all(&sources, config, false).await?;
    let started = tokio::time::Instant::now();
    while !served.iter().all(|c| c.view.load().synced()) {
        if started.elapsed() > EXPLAIN_SYNC_TIMEOUT {
            return Err(format!(
                "no complete list of the cluster from the API within {} s",
                EXPLAIN_SYNC_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = dns::clusters::report(&served, &name, qtype);
    for task in tasks {
        task.abort();
    }
    report.ok_or_else(|| "no cluster to ask".into())
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
