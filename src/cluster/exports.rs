//! With several clusters, the clusterset zone's own writer: a view made from every cluster's
//! exported Services (ServiceExports), as an MCS controller would make ServiceImports of them,
//! rebuilt when a cluster publishes. Each cluster keeps its own writer and view; this one only
//! reads theirs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::dns::clusterset::exported_view;
use crate::dns::view::{ServiceView, SharedView, View};
use crate::records::ObjectKey;

/// How often the clusters' views are looked at: a change shows in the clusterset zone at most
/// this much after its cluster published it.
const LOOK: Duration = Duration::from_millis(100);

/// The clusterset view of `clusters` (name, published view), in their order: every namespace of
/// any cluster (namespace sameness), and an import for each Service some cluster exports;
/// complete once every cluster is.
pub(crate) fn clusterset_view(clusters: &[(Arc<str>, Arc<View>)], serial: u32) -> View {
    let mut view = View::new(serial);
    for (_, cluster) in clusters {
        for namespace in cluster.namespace_names() {
            view.retain_namespace(&Arc::from(namespace));
        }
    }
    let mut exported: BTreeMap<&ObjectKey, Vec<(&Arc<str>, &ServiceView)>> = BTreeMap::new();
    for (name, cluster) in clusters {
        for key in cluster.exports() {
            if let Some(service) = cluster.service(&key.namespace, &key.name) {
                exported.entry(key).or_default().push((name, service));
            }
        }
    }
    for (key, exports) in exported {
        if let Some(import) = exported_view(&exports) {
            view.set_import(key, Some(import));
        }
    }
    if clusters.iter().all(|(_, cluster)| cluster.synced()) {
        view.set_synced();
    }
    view
}

/// Keeps `clusterset` the clusterset view of `clusters`, publishing it when it changes (its
/// serial moving then); runs until aborted.
pub(crate) async fn follow(clusters: Vec<(Arc<str>, SharedView)>, clusterset: SharedView) {
    let mut seen: Vec<(u32, bool)> = Vec::new();
    loop {
        let views: Vec<(Arc<str>, Arc<View>)> = clusters
            .iter()
            .map(|(name, view)| (name.clone(), view.load_full()))
            .collect();
        let stamps: Vec<(u32, bool)> = views
            .iter()
            .map(|(_, view)| (view.serial(), view.synced()))
            .collect();
        if stamps != seen {
            seen = stamps;
            let published = clusterset.load_full();
            let mut next = clusterset_view(&views, published.serial());
            if !next.same_clusterset(&published) {
                next.bump_serial();
                clusterset.publish(next);
            }
        }
        tokio::time::sleep(LOOK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ClusterEvent, ClusterState};
    use crate::source::manifests;

    /// A cluster's published view of the manifests `text`.
    fn cluster(text: &str) -> Arc<View> {
        let mut state = ClusterState::new(1);
        state.apply(manifests::resync(manifests::parse(text).unwrap()));
        state.apply(ClusterEvent::Synced);
        Arc::new(state.publish().unwrap())
    }

    const EXPORT: &str = "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\n";

    fn headless(pods: &[(&str, &str)], exported: bool) -> String {
        let mut text = String::from(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n\
             spec: {clusterIP: None, selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}\n",
        );
        for (name, ip) in pods {
            text += &format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: shop, labels: {{app: web}}}}\n\
                 spec: {{hostname: {name}, subdomain: web, containers: [{{name: a, image: a}}]}}\n\
                 status: {{phase: Running, podIP: \"{ip}\", conditions: [{{type: Ready, status: \"True\"}}]}}\n"
            );
        }
        if exported {
            text += &format!("---\n{EXPORT}metadata: {{name: web, namespace: shop}}\n");
        }
        text
    }

    fn cluster_ip(ip: &str, exported: bool) -> String {
        let mut text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: shop}}\n\
             spec: {{clusterIP: {ip}, clusterIPs: [{ip}], ports: [{{name: http, port: 80}}]}}\n"
        );
        if exported {
            text += &format!("---\n{EXPORT}metadata: {{name: web, namespace: shop}}\n");
        }
        text
    }

    /// `(kind, ips or endpoint names)` of the import of shop/web, if any.
    fn import(clusters: &[(&str, String)]) -> Option<String> {
        let views: Vec<(Arc<str>, Arc<View>)> = clusters
            .iter()
            .map(|(name, text)| (Arc::from(*name), cluster(text)))
            .collect();
        let view = clusterset_view(&views, 1);
        assert!(view.synced() && view.namespace_exists("shop"));
        let import = view.import("shop", "web")?;
        let endpoints: Vec<String> = import
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let ips: Vec<String> = e.ips.iter().map(|ip| ip.to_string()).collect();
                let port = import.endpoint_port(0, i).unwrap_or(0);
                format!("{}.{} {} :{port}", e.label, e.cluster, ips.join(","))
            })
            .collect();
        Some(format!("{:?} {}", import.kind, endpoints.join(" ")))
    }

    #[test]
    fn exported_services_become_imports_of_the_clusterset() {
        type Clusters<'a> = &'a [(&'a str, String)];
        let table: &[(Clusters, Option<&str>)] = &[
            // Exported from both: one name, every cluster's endpoints, each under its cluster,
            // the SRV port the target port, as in the cluster's own zone.
            (
                &[
                    ("east", headless(&[("web-0", "10.10.0.5")], true)),
                    (
                        "west",
                        headless(&[("web-0", "10.20.0.7"), ("web-1", "10.20.0.8")], true),
                    ),
                ],
                Some(
                    "Headless web-0.east 10.10.0.5 :8080 web-0.west 10.20.0.7 :8080 \
                     web-1.west 10.20.0.8 :8080",
                ),
            ),
            // Exported from one: that one's endpoints only.
            (
                &[
                    ("east", headless(&[("web-0", "10.10.0.5")], false)),
                    ("west", headless(&[("web-0", "10.20.0.7")], true)),
                ],
                Some("Headless web-0.west 10.20.0.7 :8080"),
            ),
            // Exported from none, or exported where no Service of the name exists: no import.
            (
                &[
                    ("east", headless(&[("web-0", "10.10.0.5")], false)),
                    (
                        "west",
                        format!(
                            "{EXPORT}metadata: {{name: web, namespace: shop}}\n---\n\
                                      apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n"
                        ),
                    ),
                ],
                None,
            ),
            // ClusterIP: no ClusterSetIP without a controller; the clusters' cluster IPs.
            (
                &[
                    ("east", cluster_ip("10.110.0.9", true)),
                    ("west", cluster_ip("10.120.0.9", true)),
                ],
                Some("ClusterSetIp([10.110.0.9, 10.120.0.9]) "),
            ),
            // Types in conflict: the first cluster's type stands, the other is left out.
            (
                &[
                    ("east", cluster_ip("10.110.0.9", true)),
                    ("west", headless(&[("web-0", "10.20.0.7")], true)),
                ],
                Some("ClusterSetIp([10.110.0.9]) "),
            ),
            (
                &[
                    ("west", headless(&[("web-0", "10.20.0.7")], true)),
                    ("east", cluster_ip("10.110.0.9", true)),
                ],
                Some("Headless web-0.west 10.20.0.7 :8080"),
            ),
        ];
        for (clusters, want) in table {
            assert_eq!(import(clusters).as_deref(), *want, "{clusters:?}");
        }
    }

    /// The view is complete only once every cluster is; the writer publishes a new serial only
    /// when what the clusterset answers changed.
    #[tokio::test]
    async fn the_clusterset_follows_its_clusters() {
        let east = SharedView::new(View::new(1));
        let west = SharedView::new((*cluster(&headless(&[("web-0", "10.20.0.7")], true))).clone());
        let clusterset = SharedView::new(View::new(40));
        let task = tokio::spawn(follow(
            vec![
                (Arc::from("east"), east.clone()),
                (Arc::from("west"), west.clone()),
            ],
            clusterset.clone(),
        ));
        let settle = || tokio::time::sleep(LOOK * 3);
        settle().await;
        let first = clusterset.load_full();
        assert!(!first.synced(), "east has no complete state yet");
        assert!(first.import("shop", "web").is_some());
        east.publish((*cluster(&headless(&[("web-0", "10.10.0.5")], true))).clone());
        settle().await;
        let both = clusterset.load_full();
        assert!(both.synced());
        assert_eq!(both.import("shop", "web").unwrap().endpoints.len(), 2);
        assert_eq!(both.serial(), first.serial() + 1);
        // A change in a cluster that leaves the clusterset as it is: no new serial.
        let mut unexported = (*cluster(&headless(&[("web-0", "10.20.0.7")], true))).clone();
        unexported.bump_serial();
        west.publish(unexported);
        settle().await;
        assert_eq!(clusterset.load_full().serial(), both.serial());
        task.abort();
    }
}
