//! Reading a protobuf pod list: our decoder of the fields DNS keeps against `k8s-pb`'s generated
//! messages (prost), on pods shaped as a real kube-apiserver returns them (managed fields,
//! volumes, tolerations, five conditions, a container status). Both cut the list with the same
//! splitter; ours goes on to the record DNS keeps, k8s-pb only decodes its message — the work a
//! conversion to the record would add is not counted in its favour or against it. Alternates the
//! two (A B A B) and prints time per pod and heap allocated per pod. Prints figures; not a test.
//!
//!     cargo bench --bench protobuf -- 100000

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use headless_dns::{ObjectKind, ProtobufListSplitter, read_protobuf_object};
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime;
use prost::Message;

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts bytes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: None,
    })
}

/// Pod `i` of a StatefulSet, as the API server returns it once the kubelet has reported.
fn pod(i: usize) -> core::Pod {
    let (set, ordinal) = (format!("svc-{}", i / 10), i % 10);
    let name = format!("{set}-{ordinal}");
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let managed = |manager: &str, fields: &str| meta::ManagedFieldsEntry {
        manager: s(manager),
        operation: s("Update"),
        api_version: s("v1"),
        time: time(1_700_000_000),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(fields.as_bytes().to_vec()),
        }),
        subresource: None,
    };
    let condition = |kind: &str| core::PodCondition {
        r#type: s(kind),
        status: s("True"),
        last_transition_time: time(1_700_000_010),
        ..Default::default()
    };
    core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s(&name),
            generate_name: s(&format!("{set}-")),
            namespace: s(&format!("ns-{}", i / 1000)),
            uid: s("5f0e7a2c-9b1d-4c3e-8f6a-2d4b6c8e0a1f"),
            resource_version: s(&format!("{}", 1000 + i)),
            creation_timestamp: time(1_700_000_000),
            labels: [
                ("app".to_string(), set.clone()),
                (
                    "apps.kubernetes.io/pod-index".to_string(),
                    ordinal.to_string(),
                ),
                (
                    "controller-revision-hash".to_string(),
                    format!("{set}-7d9f8c6b5"),
                ),
                (
                    "statefulset.kubernetes.io/pod-name".to_string(),
                    name.clone(),
                ),
            ]
            .into(),
            owner_references: vec![meta::OwnerReference {
                api_version: s("apps/v1"),
                kind: s("StatefulSet"),
                name: s(&set),
                uid: s("0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            managed_fields: vec![
                managed(
                    "kube-controller-manager",
                    r#"{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:apps.kubernetes.io/pod-index":{},"f:controller-revision-hash":{},"f:statefulset.kubernetes.io/pod-name":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"0a1b2c3d\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:hostname":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:subdomain":{},"f:terminationGracePeriodSeconds":{}}}"#,
                ),
                managed(
                    "kubelet",
                    r#"{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:hostIPs":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.0.0.1\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}"#,
                ),
            ],
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            volumes: vec![core::Volume {
                name: s("kube-api-access-x7k2p"),
                volume_source: Some(core::VolumeSource {
                    projected: Some(core::ProjectedVolumeSource {
                        sources: vec![core::VolumeProjection {
                            service_account_token: Some(core::ServiceAccountTokenProjection {
                                expiration_seconds: Some(3607),
                                path: s("token"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                        default_mode: Some(420),
                    }),
                    ..Default::default()
                }),
            }],
            containers: vec![core::Container {
                name: s("web"),
                image: s("registry.k8s.io/nginx-slim:0.8"),
                ports: vec![core::ContainerPort {
                    name: s("web"),
                    container_port: Some(80),
                    protocol: s("TCP"),
                    ..Default::default()
                }],
                resources: Some(core::ResourceRequirements {
                    requests: [("cpu".to_string(), Quantity { string: s("10m") })].into(),
                    ..Default::default()
                }),
                volume_mounts: vec![core::VolumeMount {
                    name: s("kube-api-access-x7k2p"),
                    read_only: Some(true),
                    mount_path: s("/var/run/secrets/kubernetes.io/serviceaccount"),
                    ..Default::default()
                }],
                termination_message_path: s("/dev/termination-log"),
                termination_message_policy: s("File"),
                image_pull_policy: s("IfNotPresent"),
                ..Default::default()
            }],
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(30),
            dns_policy: s("ClusterFirst"),
            service_account_name: s("default"),
            service_account: s("default"),
            node_name: s("node-a"),
            security_context: Some(core::PodSecurityContext::default()),
            hostname: s(&name),
            subdomain: s(&set),
            scheduler_name: s("default-scheduler"),
            tolerations: ["not-ready", "unreachable"]
                .iter()
                .map(|taint| core::Toleration {
                    key: s(&format!("node.kubernetes.io/{taint}")),
                    operator: s("Exists"),
                    effect: s("NoExecute"),
                    toleration_seconds: Some(300),
                    ..Default::default()
                })
                .collect(),
            priority: Some(0),
            enable_service_links: Some(true),
            preemption_policy: s("PreemptLowerPriority"),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            conditions: [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            ]
            .iter()
            .map(|kind| condition(kind))
            .collect(),
            host_ip: s("172.18.0.2"),
            host_ips: vec![core::HostIp {
                ip: s("172.18.0.2"),
            }],
            pod_ip: s(&ip),
            pod_ips: vec![core::PodIp { ip: s(&ip) }],
            start_time: time(1_700_000_005),
            container_statuses: vec![core::ContainerStatus {
                name: s("web"),
                state: Some(core::ContainerState {
                    running: Some(core::ContainerStateRunning {
                        started_at: time(1_700_000_008),
                    }),
                    ..Default::default()
                }),
                ready: Some(true),
                restart_count: Some(0),
                image: s("registry.k8s.io/nginx-slim:0.8"),
                image_id: s(
                    "registry.k8s.io/nginx-slim@sha256:8b4501fe0fe221df663c22e16539f399e89594552f400408303c42f3dd8d0e52",
                ),
                container_id: s(
                    "containerd://4c9f1e0b7a2d3c5e6f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e",
                ),
                started: Some(true),
                ..Default::default()
            }],
            qos_class: s("Burstable"),
            ..Default::default()
        }),
    }
}

/// A list body as the API server sends it: `k8s\0`, then the list in a `runtime.Unknown`.
fn list_body(pods: usize) -> Vec<u8> {
    let list = core::PodList {
        metadata: Some(meta::ListMeta {
            resource_version: s("123456"),
            ..Default::default()
        }),
        items: (0..pods).map(pod).collect(),
    };
    let mut body = b"k8s\0".to_vec();
    runtime::Unknown {
        type_meta: Some(runtime::TypeMeta {
            api_version: s("v1"),
            kind: s("PodList"),
        }),
        raw: Some(list.encode_to_vec()),
        content_encoding: s(""),
        content_type: s("application/vnd.kubernetes.protobuf"),
    }
    .encode(&mut body)
    .expect("encodes");
    body
}

/// Feeds `body` in 16 KiB chunks, as a response arrives; `item` handles each item.
fn split(body: &[u8], mut item: impl FnMut(&[u8])) {
    let mut splitter = ProtobufListSplitter::default();
    for chunk in body.chunks(16 << 10) {
        splitter.feed(chunk, &mut item).expect("a list");
    }
    splitter.finish().expect("a whole list");
}

fn main() {
    let pods: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let body = list_body(pods);
    println!(
        "{pods} pods: {:.1} MB of protobuf ({} bytes per pod)",
        body.len() as f64 / 1e6,
        body.len() / pods
    );
    let mut records = Vec::with_capacity(pods);
    for round in 1..=3 {
        for (name, ours) in [("ours (to records)", true), ("k8s-pb (decode only)", false)] {
            records.clear();
            let allocated = ALLOCATED.load(Ordering::Relaxed);
            let start = Instant::now();
            let mut decoded = 0usize;
            split(&body, |item| {
                if ours {
                    records.push(read_protobuf_object(ObjectKind::Pod, item).expect("a pod"));
                } else {
                    let pod = core::Pod::decode(item).expect("a pod");
                    decoded += usize::from(pod.metadata.is_some());
                }
            });
            let elapsed = start.elapsed();
            let allocated = ALLOCATED.load(Ordering::Relaxed) - allocated;
            println!(
                "round {round} {name:<22} {:7.1} ms, {:5.2} µs/pod, {:6} bytes allocated/pod",
                elapsed.as_secs_f64() * 1e3,
                elapsed.as_secs_f64() * 1e6 / pods as f64,
                allocated / pods as u64
            );
            assert!(ours || decoded == pods);
        }
    }
}
