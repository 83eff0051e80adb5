//! Property tests of the single writer: random clusters changed by random sequences of upserts,
//! deletes and resyncs (whole or scoped) leave the published view equal to the view built from
//! scratch from the objects that remain. Small pools of names, labels and addresses make
//! objects collide often: shared addresses, hostnames claimed twice, Services selecting the
//! same pods, slices moving between Services.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::dns::contents;
use crate::dns::zone::{EndpointNames, PodRecords};
use crate::records::{
    ImportKind, IpFamilies, Labels, PodHostname, Protocol, ServiceImportRecord, ServiceKind,
    ServicePort, SliceEndpoint, SlicePort, TargetPort,
};

pub(crate) const NAMESPACES: [&str; 2] = ["a", "b"];
pub(crate) const APPS: [&str; 3] = ["x", "y", "z"];
pub(crate) const ADDRESSES: [&str; 6] = [
    "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "fd00::1", "fd00::2",
];

pub(crate) fn namespace() -> impl Strategy<Value = Arc<str>> {
    prop::sample::select(&NAMESPACES[..]).prop_map(Arc::from)
}

pub(crate) fn addresses(max: usize) -> impl Strategy<Value = Addresses> {
    vec(prop::sample::select(&ADDRESSES[..]), 0..=max).prop_map(|ips| {
        let mut list: Vec<IpAddr> = Vec::new();
        for ip in ips {
            let ip: IpAddr = ip.parse().unwrap();
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
        list.into()
    })
}

fn labels_of(app: &str) -> Labels {
    Labels::new([("app".to_string(), app.to_string())])
}

pub(crate) fn service() -> impl Strategy<Value = ClusterObject> {
    let kind = prop_oneof![
        Just(ServiceKind::Headless),
        prop::sample::select(&["10.96.0.1", "10.96.0.2", "fd00:96::1"][..])
            .prop_map(|ip| ServiceKind::ClusterIp(Box::new([ip.parse().unwrap()]))),
        Just(ServiceKind::ExternalName(Box::new(
            Name::from_ascii("db.example.com.").unwrap()
        ))),
    ];
    (
        namespace(),
        0..4usize,
        kind,
        prop::option::of(prop::sample::select(&APPS[..])),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(
            &[
                IpFamilies::BOTH,
                IpFamilies {
                    v4: true,
                    v6: false,
                },
                IpFamilies {
                    v4: false,
                    v6: true,
                },
            ][..],
        ),
    )
        .prop_map(|(ns, n, kind, app, not_ready, named_target, families)| {
            let target = if named_target {
                TargetPort::Name("web".into())
            } else {
                TargetPort::Number(80)
            };
            ClusterObject::Service(ServiceRecord {
                key: ObjectKey::new(&ns, &format!("s{n}")),
                kind,
                selector: app.map(labels_of),
                ports: Arc::new([ServicePort {
                    name: "web".into(),
                    protocol: Protocol::Tcp,
                    port: 80,
                    target,
                }]),
                publish_not_ready_addresses: not_ready,
                families,
            })
        })
}

pub(crate) fn pod() -> impl Strategy<Value = ClusterObject> {
    (
        namespace(),
        0..6usize,
        prop::sample::select(&APPS[..]),
        addresses(2),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::option::of(prop::option::of(0..2usize)),
        prop::option::of(0..4usize),
        any::<bool>(),
    )
        .prop_map(
            |(ns, n, app, ips, (ready, terminating, finished), hostname, subdomain, port)| {
                let name = format!("p{n}");
                // A hostname: the pod's own name, or one of two shared ones.
                let hostname = hostname.map(|h| h.map_or(name.clone(), |h| format!("h{h}")));
                let named_ports: Box<[crate::records::ContainerPort]> = if port {
                    Box::new([crate::records::ContainerPort {
                        name: "web".into(),
                        protocol: Protocol::Tcp,
                        port: 8080,
                    }])
                } else {
                    Box::new([])
                };
                ClusterObject::Pod {
                    namespace: ns,
                    pod: PodRecord {
                        ips,
                        template: Arc::new(PodTemplate {
                            labels: labels_of(app),
                            hostname: PodHostname::of(&name, hostname.as_deref()),
                            subdomain: subdomain.map(|s| format!("s{s}").into()),
                            named_ports,
                            statefulset: None,
                        }),
                        name: name.into(),
                        ready,
                        terminating,
                        finished,
                    },
                }
            },
        )
}

pub(crate) fn slice() -> impl Strategy<Value = ClusterObject> {
    let endpoint = (addresses(2), prop::option::of(0..2usize), any::<bool>()).prop_map(
        |(addresses, hostname, ready)| SliceEndpoint {
            addresses,
            hostname: hostname.map(|h| format!("h{h}").into()),
            target_name: None,
            ready,
        },
    );
    (namespace(), 0..3usize, 0..4usize, vec(endpoint, 0..3)).prop_map(
        |(ns, n, service, endpoints)| {
            ClusterObject::EndpointSlice(EndpointSliceRecord {
                key: ObjectKey::new(&ns, &format!("e{n}")),
                service: format!("s{service}").into(),
                cluster: None,
                ports: Box::new([SlicePort {
                    name: "web".into(),
                    protocol: Protocol::Tcp,
                    port: 9000,
                }]),
                endpoints: endpoints.into(),
            })
        },
    )
}

/// A ServiceImport, named as the Services are (imports and Services do not meet).
pub(crate) fn import() -> impl Strategy<Value = ClusterObject> {
    let kind = prop_oneof![
        Just(ImportKind::Headless),
        prop::sample::select(&["10.100.0.1", "fd00:100::1"][..])
            .prop_map(|ip| ImportKind::ClusterSetIp(Box::new([ip.parse().unwrap()]))),
    ];
    (namespace(), 0..4usize, kind, any::<bool>()).prop_map(|(ns, n, kind, named)| {
        let ports: Arc<[ServicePort]> = match named {
            true => Arc::new([ServicePort {
                name: "web".into(),
                protocol: Protocol::Tcp,
                port: 80,
                target: TargetPort::Number(80),
            }]),
            false => Arc::new([]),
        };
        ClusterObject::ServiceImport(ServiceImportRecord {
            key: ObjectKey::new(&ns, &format!("s{n}")),
            kind,
            ports,
        })
    })
}

/// An EndpointSlice an MCS controller wrote: of cluster `c0` or `c1`, for an import `s<n>`.
pub(crate) fn import_slice() -> impl Strategy<Value = ClusterObject> {
    (slice(), 0..2usize, 0..3usize).prop_map(|(slice, cluster, n)| match slice {
        ClusterObject::EndpointSlice(mut slice) => {
            // Their own names: a slice name is one object, whichever kind of owner it has.
            slice.key = ObjectKey::new(&slice.key.namespace, &format!("m{n}"));
            slice.cluster = Some(format!("c{cluster}").into());
            ClusterObject::EndpointSlice(slice)
        }
        other => other,
    })
}

pub(crate) fn object() -> impl Strategy<Value = ClusterObject> {
    prop_oneof![
        3 => pod(),
        2 => service(),
        1 => slice(),
        1 => namespace().prop_map(ClusterObject::Namespace),
        1 => import(),
        1 => import_slice(),
    ]
}

#[derive(Clone, Debug)]
enum Change {
    Upsert(ClusterObject),
    Delete(ClusterObject),
    /// A resync of these kinds, in one namespace or all, to these objects (those of other
    /// kinds or namespaces are left out).
    Resync(Vec<ObjectKind>, Option<Arc<str>>, Vec<ClusterObject>),
}

fn change() -> impl Strategy<Value = Change> {
    let kinds = prop::sample::subsequence(ObjectKind::ALL.to_vec(), 1..=6);
    prop_oneof![
        6 => object().prop_map(Change::Upsert),
        3 => object().prop_map(Change::Delete),
        1 => (kinds, prop::option::of(namespace()), vec(object(), 0..12))
            .prop_map(|(kinds, ns, objects)| Change::Resync(kinds, ns, objects)),
    ]
}

type Identity = (ObjectKind, String, String);

fn identity(object: &ClusterObject) -> Identity {
    (
        object.kind(),
        object.namespace().to_string(),
        object.name().to_string(),
    )
}

/// Whether `object` is one a resync of `kinds` in `scope` covers.
fn covered(object: &ClusterObject, kinds: &[ObjectKind], scope: Option<&str>) -> bool {
    let namespace = match object {
        ClusterObject::Namespace(name) => &**name,
        other => other.namespace(),
    };
    kinds.contains(&object.kind()) && scope.is_none_or(|s| s == namespace)
}

fn state(names: EndpointNames) -> ClusterState {
    ClusterState::new(1).with_endpoint_names(names)
}

/// Applies `change` to `state`, and to `model`, the objects that remain.
fn apply(state: &mut ClusterState, model: &mut BTreeMap<Identity, ClusterObject>, change: Change) {
    match change {
        Change::Upsert(object) => {
            model.insert(identity(&object), object.clone());
            state.apply(ClusterEvent::Upsert(object));
        }
        Change::Delete(object) => {
            model.remove(&identity(&object));
            state.apply(ClusterEvent::Delete(object.kind(), object.key()));
        }
        Change::Resync(kinds, scope, objects) => {
            let objects: BTreeMap<Identity, ClusterObject> = objects
                .into_iter()
                .filter(|o| covered(o, &kinds, scope.as_deref()))
                .map(|o| (identity(&o), o))
                .collect();
            model.retain(|_, o| !covered(o, &kinds, scope.as_deref()));
            model.extend(objects.clone());
            state.apply(ClusterEvent::Resync {
                kinds,
                namespace: scope,
                objects: objects.into_values().collect(),
            });
        }
    }
}

/// Makes `objects` the whole of `state`'s cluster, complete.
fn load(state: &mut ClusterState, objects: Vec<ClusterObject>) {
    state.apply(ClusterEvent::Resync {
        kinds: ObjectKind::ALL.to_vec(),
        namespace: None,
        objects,
    });
    state.apply(ClusterEvent::Synced);
}

/// Every record of every zone (the SOAs aside), in `Record`'s order.
fn whole_zone(view: &View, zone: &Zone) -> std::collections::BTreeSet<hickory_proto::rr::Record> {
    let mut records = Vec::new();
    for apex in zone.apexes() {
        for part in contents::parts(zone, apex) {
            contents::records(view, zone, apex, &part, &mut records);
        }
    }
    records.into_iter().collect()
}

/// Many Services rebuilt at once have their answers worked out on every core: the view equals
/// the one published a few hundred Services at a time (each worked out in turn).
#[test]
fn many_services_rebuilt_at_once_equal_a_few_at_a_time() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut generate = |strategy: &dyn Fn() -> BoxedStrategy<ClusterObject>| {
        strategy().new_tree(&mut runner).unwrap().current()
    };
    let mut objects: BTreeMap<Identity, ClusterObject> = BTreeMap::new();
    for _ in 0..200 {
        let pod = generate(&|| pod().boxed());
        objects.insert(identity(&pod), pod);
    }
    let pods: Vec<ClusterObject> = objects.into_values().collect();
    let services: Vec<ClusterObject> = (0..PARALLEL_REFRESH + 1000)
        .map(|i| match generate(&|| service().boxed()) {
            ClusterObject::Service(mut service) => {
                service.key = ObjectKey::new(&service.key.namespace, &format!("s{i}"));
                ClusterObject::Service(service)
            }
            _ => unreachable!("a Service"),
        })
        .collect();

    let mut at_once = state(EndpointNames::Hostname);
    load(
        &mut at_once,
        pods.iter().chain(&services).cloned().collect(),
    );
    at_once.publish();
    let mut a_few = state(EndpointNames::Hostname);
    for object in &pods {
        a_few.apply(ClusterEvent::Upsert(object.clone()));
    }
    a_few.publish();
    for part in services.chunks(500) {
        for object in part {
            a_few.apply(ClusterEvent::Upsert(object.clone()));
        }
        a_few.publish();
    }
    a_few.apply(ClusterEvent::Synced);
    a_few.publish();
    assert_eq!(at_once.view().contents(), a_few.view().contents());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn a_view_kept_up_to_date_equals_one_built_from_scratch(
        initial in vec(object(), 0..20),
        changes in vec(change(), 0..40),
        by_pod_name in any::<bool>(),
    ) {
        let names = if by_pod_name { EndpointNames::PodName } else { EndpointNames::Hostname };
        let mut kept = state(names);
        let mut model: BTreeMap<Identity, ClusterObject> = BTreeMap::new();
        let initial: BTreeMap<Identity, ClusterObject> =
            initial.into_iter().map(|o| (identity(&o), o)).collect();
        load(&mut kept, initial.values().cloned().collect());
        model.extend(initial);
        // Views are published now and then, as bursts of events end.
        for (i, change) in changes.into_iter().enumerate() {
            apply(&mut kept, &mut model, change);
            if i % 3 == 0 {
                kept.publish();
            }
        }
        kept.publish();
        let mut scratch = state(names);
        load(&mut scratch, model.into_values().collect());
        scratch.publish();
        prop_assert_eq!(kept.view().contents(), scratch.view().contents());
    }

    /// A first state loaded in parts, in any order (pods before their Services, say), with
    /// the backing worked out at the end, equals the same objects applied as one list.
    #[test]
    fn a_state_loaded_in_parts_equals_one_listed_whole(
        initial in vec(object(), 0..20),
        part in 1usize..5,
        reversed in any::<bool>(),
        by_pod_name in any::<bool>(),
    ) {
        let names = if by_pod_name { EndpointNames::PodName } else { EndpointNames::Hostname };
        let mut objects: Vec<ClusterObject> = initial
            .into_iter()
            .map(|o| (identity(&o), o))
            .collect::<BTreeMap<_, _>>()
            .into_values()
            .collect();
        if reversed {
            objects.reverse();
        }
        let mut in_parts = state(names);
        for objects in objects.chunks(part) {
            in_parts.load(objects.to_vec());
        }
        in_parts.finish_loading();
        in_parts.apply(ClusterEvent::Synced);
        in_parts.publish();
        prop_assert_eq!(in_parts.object_count(), objects.len());
        let mut listed = state(names);
        load(&mut listed, objects);
        listed.publish();
        prop_assert_eq!(in_parts.view().contents(), listed.view().contents());
    }

    /// With transfers allowed, each publication's journaled change is exactly the difference
    /// between the whole zones before and after (and the serial moves only with one): the
    /// journal works out only the names a change may touch, and must miss none.
    #[test]
    fn the_journal_is_the_whole_zones_difference(
        initial in vec(object(), 0..20),
        changes in vec(change(), 1..30),
        by_pod_name in any::<bool>(),
    ) {
        let names = if by_pod_name { EndpointNames::PodName } else { EndpointNames::Hostname };
        let zone = Arc::new(Zone::new("cluster.local.", 5, PodRecords::Verified, None).unwrap());
        let mut state = state(names).with_journal(zone.clone());
        let mut model = BTreeMap::new();
        load(&mut state, initial);
        let mut published = state.publish().unwrap();
        for (i, change) in changes.into_iter().enumerate() {
            apply(&mut state, &mut model, change);
            if i % 2 == 1 {
                continue;
            }
            let Some(view) = state.publish() else { continue };
            let (before, after) = (whole_zone(&published, &zone), whole_zone(&view, &zone));
            let removed: Vec<_> = before.difference(&after).cloned().collect();
            let added: Vec<_> = after.difference(&before).cloned().collect();
            if removed.is_empty() && added.is_empty() {
                prop_assert_eq!(view.serial(), published.serial());
            } else {
                prop_assert_eq!(view.serial(), published.serial().wrapping_add(1));
                let journaled = view.journal().since(published.serial()).unwrap();
                prop_assert_eq!(journaled.len(), 1);
                prop_assert_eq!(journaled[0].removed.records(), removed);
                prop_assert_eq!(journaled[0].added.records(), added);
            }
            published = view;
        }
    }
}
