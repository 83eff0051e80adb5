//! `/metrics`: every stage's figures in the Prometheus text format, read at each scrape — the
//! DNS server's counters ([`crate::server::metrics`]), what the view serves, what the source
//! has done, how long changes took to be published, and the panics contained.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::programming::{self, ProgrammingTimes};
use crate::dns::clusters::Served;
use crate::dns::view::{SharedView, ViewCounts};
use crate::server::metrics::{DnsMetrics, Exposition, OpenConnections};
use crate::server::responder::contained_panics;
use crate::source::stats::SourceStats;

/// Everything `/metrics` shows, read at each scrape.
#[derive(Clone, Debug)]
pub(crate) struct Scrape {
    pub dns: Arc<DnsMetrics>,
    /// Each cluster's figures; with several, each sample carries the cluster's name as the
    /// label `cluster`.
    pub clusters: Vec<ClusterFigures>,
    /// With several clusters, the clusterset zone they make: the ServiceImport figures are its.
    pub clusterset: Option<SharedView>,
    /// TCP connections open now.
    pub tcp_connections: OpenConnections,
}

/// What one cluster's view, source and writer show.
#[derive(Clone, Debug)]
pub(crate) struct ClusterFigures {
    /// Its name (`None` for the one source of a single-cluster server: its samples carry no
    /// `cluster`) and view.
    pub served: Served,
    pub source: Arc<SourceStats>,
    pub programming: Arc<ProgrammingTimes>,
}

impl ClusterFigures {
    /// The `cluster` label, if the cluster has a name.
    fn label(&self) -> Vec<(&str, &str)> {
        self.served
            .name
            .as_deref()
            .map(|n| ("cluster", n))
            .into_iter()
            .collect()
    }
}

/// A cluster's view as counted for one scrape.
struct Counted<'c> {
    label: Vec<(&'c str, &'c str)>,
    counts: ViewCounts,
    synced: bool,
}

impl Scrape {
    /// The Prometheus text of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = Exposition::default();
        self.dns.write(&mut out);
        out.family(
            "coredns_kubernetes_dns_programming_duration_seconds",
            "Time from a change reaching the cluster state to the published answers, by the kind \
             of Service it rebuilt.",
            "histogram",
        );
        for cluster in &self.clusters {
            for (kind, label) in programming::KINDS.iter().enumerate() {
                let (counts, sum) = cluster.programming.snapshot(kind);
                out.histogram(
                    "coredns_kubernetes_dns_programming_duration_seconds",
                    &[&cluster.label(), &[("service_kind", label)]],
                    (0..=programming::BUCKETS).map(programming::bound),
                    &counts,
                    sum,
                );
            }
        }
        let views: Vec<Counted> = self
            .clusters
            .iter()
            .map(|c| {
                let view = c.served.view.load();
                Counted {
                    label: c.label(),
                    counts: view.counts(),
                    synced: view.synced(),
                }
            })
            .collect();
        out.family(
            "headless_dns_services",
            "Services served, by kind.",
            "gauge",
        );
        for Counted { label, counts, .. } in &views {
            for (kind, count) in [
                ("headless", counts.headless_services),
                ("cluster_ip", counts.cluster_ip_services),
                ("external_name", counts.external_name_services),
            ] {
                out.sample("headless_dns_services", &[label, &[("kind", kind)]], count);
            }
        }
        out.family(
            "headless_dns_service_imports",
            "ServiceImports served under the clusterset zone, by type.",
            "gauge",
        );
        // With several clusters the clusterset zone is theirs together: its figures carry no
        // cluster.
        let clusterset = self.clusterset.as_ref().map(|view| {
            let view = view.load();
            Counted {
                label: Vec::new(),
                counts: view.counts(),
                synced: view.synced(),
            }
        });
        let imports = match &clusterset {
            Some(clusterset) => std::slice::from_ref(clusterset),
            None => &views[..],
        };
        for Counted { label, counts, .. } in imports {
            for (kind, count) in [
                ("headless", counts.headless_imports),
                ("cluster_set_ip", counts.cluster_set_ip_imports),
            ] {
                out.sample(
                    "headless_dns_service_imports",
                    &[label, &[("type", kind)]],
                    count,
                );
            }
        }
        out.family(
            "headless_dns_clusterset_endpoint_names",
            "Names below headless ServiceImports (<hostname>.<cluster>), each with its addresses.",
            "gauge",
        );
        for Counted { label, counts, .. } in imports {
            out.sample(
                "headless_dns_clusterset_endpoint_names",
                &[label],
                counts.import_endpoints,
            );
        }
        for (name, help, value) in [
            (
                "headless_dns_synced",
                "1 once the first complete state of the cluster is served.",
                (|c: &Counted| usize::from(c.synced)) as fn(&Counted) -> usize,
            ),
            ("headless_dns_namespaces", "Namespaces that exist.", |c| {
                c.counts.namespaces
            }),
            (
                "headless_dns_endpoint_names",
                "Names below Services (pods and endpoints), each with its addresses.",
                |c| c.counts.endpoints,
            ),
            (
                "headless_dns_reverse_addresses",
                "Addresses with a PTR name.",
                |c| c.counts.addresses,
            ),
        ] {
            out.family(name, help, "gauge");
            for counted in &views {
                out.sample(name, &[&counted.label], value(counted));
            }
        }
        out.single(
            "headless_dns_tcp_connections",
            "TCP connections open.",
            "gauge",
            (self.tcp_connections.0)(),
        );
        out.family(
            "headless_dns_seconds_behind_source",
            "0 while what is served is the source's state; during an API outage or after a \
             refused reload, the seconds since it began; before the first complete state, since \
             start.",
            "gauge",
        );
        for cluster in &self.clusters {
            out.sample(
                "headless_dns_seconds_behind_source",
                &[&cluster.label()],
                cluster.source.behind().as_secs_f64(),
            );
        }
        for (name, help, counter) in [
            (
                "headless_dns_kubernetes_lists_total",
                "Complete lists of a resource received from the Kubernetes API.",
                (|stats: &SourceStats| &stats.lists) as fn(&SourceStats) -> &AtomicU64,
            ),
            (
                "headless_dns_kubernetes_protobuf_lists_total",
                "Of those lists, the ones the API sent as protobuf (the others came as JSON).",
                |stats| &stats.protobuf_lists,
            ),
            (
                "headless_dns_kubernetes_streamed_lists_total",
                "Of those lists, the ones had as a streaming list (a watch's initial events).",
                |stats| &stats.streamed_lists,
            ),
            (
                "headless_dns_kubernetes_relists_total",
                "Lists after a resource's first (after 410 Gone).",
                |stats| &stats.relists,
            ),
            (
                "headless_dns_kubernetes_watch_restarts_total",
                "Watch requests that ended and were made again.",
                |stats| &stats.watch_restarts,
            ),
            (
                "headless_dns_manifests_reloads_total",
                "Manifests files read again after a change.",
                |stats| &stats.reloads,
            ),
            (
                "headless_dns_manifests_reload_failures_total",
                "Changed manifests files refused (invalid, empty, unreadable); the last state kept.",
                |stats| &stats.reload_failures,
            ),
        ] {
            out.family(name, help, "counter");
            for cluster in &self.clusters {
                let count = counter(&cluster.source).load(Ordering::Relaxed);
                out.sample(name, &[&cluster.label()], count);
            }
        }
        out.family(
            "headless_dns_kubernetes_api_errors_total",
            "Failed requests to the Kubernetes API, by cause.",
            "counter",
        );
        for cluster in &self.clusters {
            for (cause, count) in cluster.source.api_errors() {
                out.sample(
                    "headless_dns_kubernetes_api_errors_total",
                    &[&cluster.label(), &[("cause", cause)]],
                    count,
                );
            }
        }
        out.single(
            "headless_dns_panics_total",
            "Panics while answering (each lost only its message; a bug: please report it).",
            "counter",
            contained_panics(),
        );
        out.text
    }
}
