//! The decoder against `k8s-pb`'s encoder (prost, from the API's own .proto files): each kind's
//! object, encoded by it, must give the record the JSON path gives for the same object written
//! as JSON; lists fed in every way of cutting them; watch frames of every event type.

use k8s_pb::api::core::v1 as core;
use k8s_pb::api::discovery::v1 as discovery;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime;
use k8s_pb::apimachinery::pkg::util::intstr;
use prost::Message;
use serde_json::json;

use super::list::ProtobufListSplitter;
use super::*;
use crate::records::ObjectKind;
use crate::source::kube::decode::ListMeta;
use crate::source::kube::kinds::{self, Decoded};
use crate::source::kube::watch::{Line, read_frame};

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn object_meta(namespace: &str, name: &str, labels: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        namespace: s(namespace).filter(|n| !n.is_empty()),
        resource_version: s("17"),
        uid: s("0b7a5c4e-1f7e-4d7e-9d3a-3f0c1d2e4b5a"),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        // What DNS never reads, present as the API server sends it.
        managed_fields: vec![meta::ManagedFieldsEntry {
            manager: s("kube-controller-manager"),
            operation: s("Update"),
            fields_v1: Some(meta::FieldsV1 {
                raw: Some(br#"{"f:metadata":{}}"#.to_vec()),
            }),
            ..Default::default()
        }],
        creation_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: None,
        }),
        ..Default::default()
    }
}

/// A StatefulSet pod as the API server holds it: dual-stack, Ready, terminating, with named
/// and unnamed ports and much DNS does not read.
fn pod_pb() -> core::Pod {
    let mut metadata = object_meta("default", "web-0", &[("app", "nginx"), ("tier", "web")]);
    metadata.owner_references = vec![
        meta::OwnerReference {
            kind: s("ReplicaSet"),
            name: s("other"),
            controller: Some(false),
            ..Default::default()
        },
        meta::OwnerReference {
            api_version: s("apps/v1"),
            kind: s("StatefulSet"),
            name: s("web"),
            uid: s("u"),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    ];
    metadata.deletion_timestamp = Some(meta::Time {
        seconds: Some(1_700_000_100),
        nanos: None,
    });
    let port = |name: Option<&str>, number: i32, protocol: &str| core::ContainerPort {
        name: name.map(str::to_owned),
        container_port: Some(number),
        protocol: s(protocol),
        ..Default::default()
    };
    core::Pod {
        metadata: Some(metadata),
        spec: Some(core::PodSpec {
            hostname: s("web-0"),
            subdomain: s("nginx-svc"),
            node_name: s("node-1"),
            containers: vec![
                core::Container {
                    name: s("nginx"),
                    image: s("nginx:1.27"),
                    ports: vec![port(Some("web"), 80, "TCP"), port(None, 9090, "TCP")],
                    env: vec![core::EnvVar {
                        name: s("A"),
                        value: s("b"),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                core::Container {
                    name: s("dns"),
                    ports: vec![port(Some("dns"), 53, "UDP")],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            conditions: vec![
                core::PodCondition {
                    r#type: s("PodScheduled"),
                    status: s("True"),
                    ..Default::default()
                },
                core::PodCondition {
                    r#type: s("Ready"),
                    status: s("True"),
                    ..Default::default()
                },
            ],
            pod_ip: s("10.244.1.5"),
            pod_ips: vec![
                core::PodIp {
                    ip: s("10.244.1.5"),
                },
                core::PodIp { ip: s("fd00::5") },
            ],
            host_ip: s("172.18.0.2"),
            ..Default::default()
        }),
    }
}

fn pod_json() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-0", "namespace": "default", "resourceVersion": "17",
            "labels": {"app": "nginx", "tier": "web"},
            "deletionTimestamp": "2023-11-14T22:15:00Z",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "other", "uid": "r", "controller": false},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": true}
            ]
        },
        "spec": {
            "hostname": "web-0", "subdomain": "nginx-svc",
            "containers": [
                {"name": "nginx", "ports": [
                    {"name": "web", "containerPort": 80, "protocol": "TCP"},
                    {"containerPort": 9090, "protocol": "TCP"}]},
                {"name": "dns", "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]}
            ]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            "podIP": "10.244.1.5",
            "podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00::5"}]
        }
    })
}

fn service_pb() -> core::Service {
    let port = |name: &str, number: i32, target: intstr::IntOrString| core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        port: Some(number),
        target_port: Some(target),
        ..Default::default()
    };
    core::Service {
        metadata: Some(object_meta("default", "web", &[("team", "a")])),
        spec: Some(core::ServiceSpec {
            r#type: s("ClusterIP"),
            cluster_ip: s("10.96.0.10"),
            cluster_ips: vec!["10.96.0.10".into(), "fd00:96::10".into()],
            ip_families: vec!["IPv4".into(), "IPv6".into()],
            ip_family_policy: s("PreferDualStack"),
            selector: [("app".to_string(), "nginx".to_string())].into(),
            publish_not_ready_addresses: Some(true),
            session_affinity: s("None"),
            ports: vec![
                port(
                    "http",
                    80,
                    intstr::IntOrString {
                        r#type: Some(1),
                        int_val: None,
                        str_val: s("web"),
                    },
                ),
                port(
                    "metrics",
                    9090,
                    intstr::IntOrString {
                        r#type: Some(0),
                        int_val: Some(9091),
                        str_val: None,
                    },
                ),
            ],
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    }
}

fn service_json() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "17", "labels": {"team": "a"}},
        "spec": {
            "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00:96::10"],
            "ipFamilies": ["IPv4", "IPv6"], "selector": {"app": "nginx"},
            "publishNotReadyAddresses": true,
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web"},
                {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9091}
            ]
        }
    })
}

fn external_service_pb() -> core::Service {
    core::Service {
        metadata: Some(object_meta("team-a", "db", &[])),
        spec: Some(core::ServiceSpec {
            r#type: s("ExternalName"),
            external_name: s("db.example.com"),
            ..Default::default()
        }),
        status: None,
    }
}

fn external_service_json() -> serde_json::Value {
    json!({
        "metadata": {"name": "db", "namespace": "team-a", "resourceVersion": "17"},
        "spec": {"type": "ExternalName", "externalName": "db.example.com"}
    })
}

fn slice_pb() -> discovery::EndpointSlice {
    let endpoint = |ip: &str, ready: Option<bool>, hostname: Option<&str>| discovery::Endpoint {
        addresses: vec![ip.into()],
        conditions: Some(discovery::EndpointConditions {
            ready,
            serving: Some(true),
            terminating: Some(false),
        }),
        hostname: hostname.map(str::to_owned),
        target_ref: Some(core::ObjectReference {
            kind: s("Pod"),
            namespace: s("default"),
            name: s(&format!("pod-{}", ip.replace('.', "-"))),
            ..Default::default()
        }),
        node_name: s("node-1"),
        ..Default::default()
    };
    discovery::EndpointSlice {
        metadata: Some(object_meta(
            "default",
            "web-abc12",
            &[("kubernetes.io/service-name", "web")],
        )),
        address_type: s("IPv4"),
        endpoints: vec![
            endpoint("10.0.0.1", Some(true), Some("a")),
            endpoint("10.0.0.2", Some(false), None),
            endpoint("10.0.0.3", None, None),
        ],
        ports: vec![
            discovery::EndpointPort {
                name: s("http"),
                protocol: s("TCP"),
                port: Some(8080),
                app_protocol: None,
            },
            discovery::EndpointPort {
                name: s("all"),
                protocol: s("TCP"),
                port: None,
                app_protocol: None,
            },
        ],
    }
}

fn slice_json() -> serde_json::Value {
    let endpoint = |ip: &str, ready: Option<bool>, hostname: Option<&str>| {
        let mut conditions = json!({"serving": true, "terminating": false});
        if let Some(ready) = ready {
            conditions["ready"] = json!(ready);
        }
        let mut endpoint = json!({
            "addresses": [ip], "conditions": conditions,
            "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("pod-{}", ip.replace('.', "-"))}
        });
        if let Some(hostname) = hostname {
            endpoint["hostname"] = json!(hostname);
        }
        endpoint
    };
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc12", "namespace": "default", "resourceVersion": "17",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [
            endpoint("10.0.0.1", Some(true), Some("a")),
            endpoint("10.0.0.2", Some(false), None),
            endpoint("10.0.0.3", None, None)
        ],
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}, {"name": "all", "protocol": "TCP"}]
    })
}

fn namespace_pb() -> core::Namespace {
    core::Namespace {
        metadata: Some(object_meta(
            "",
            "team-a",
            &[("kubernetes.io/metadata.name", "team-a")],
        )),
        spec: Some(core::NamespaceSpec {
            finalizers: vec!["kubernetes".into()],
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Active"),
            ..Default::default()
        }),
    }
}

fn namespace_json() -> serde_json::Value {
    json!({"metadata": {"name": "team-a", "resourceVersion": "17"}})
}

/// Every kind's object, encoded, beside the same object as JSON.
fn samples() -> Vec<(ObjectKind, Vec<u8>, serde_json::Value)> {
    use ObjectKind::*;
    vec![
        (Pod, pod_pb().encode_to_vec(), pod_json()),
        (Service, service_pb().encode_to_vec(), service_json()),
        (
            Service,
            external_service_pb().encode_to_vec(),
            external_service_json(),
        ),
        (EndpointSlice, slice_pb().encode_to_vec(), slice_json()),
        (Namespace, namespace_pb().encode_to_vec(), namespace_json()),
    ]
}

/// `bytes` and `json` read as an object of `kind`, both ways; the records must be the same.
fn both_ways(kind: ObjectKind, bytes: &[u8], json: &serde_json::Value) -> (Decoded, Decoded) {
    let from_protobuf = kinds::decode_protobuf(kind, bytes).expect("decodes");
    let from_json =
        kinds::decode_bytes(kind, json.to_string().as_bytes()).expect("the JSON decodes");
    assert_eq!(
        format!("{:?}", from_protobuf.record),
        format!("{:?}", from_json.record),
        "{kind:?}"
    );
    (from_protobuf, from_json)
}

#[test]
fn each_kind_decodes_to_the_record_its_json_gives() {
    for (kind, bytes, json) in samples() {
        let (from_protobuf, from_json) = both_ways(kind, &bytes, &json);
        assert!(matches!(from_protobuf.record, Ok(Some(_))), "{kind:?}");
        assert_eq!(from_protobuf.key, from_json.key);
        assert_eq!(from_protobuf.version.as_deref(), Some("17"));
    }
}

#[test]
fn what_dns_refuses_it_refuses_alike() {
    // A hostname that is not a DNS label, a cluster IP that is not an address, a slice of no
    // Service: the same verdict both ways.
    let mut pod = pod_pb();
    pod.spec.as_mut().unwrap().hostname = s("Web_0");
    let mut pod_json = pod_json();
    pod_json["spec"]["hostname"] = json!("Web_0");
    let mut service = service_pb();
    service.spec.as_mut().unwrap().cluster_ips = vec!["10.96.0.300".into()];
    service.spec.as_mut().unwrap().cluster_ip = s("10.96.0.300");
    let mut service_json = service_json();
    service_json["spec"]["clusterIPs"] = json!(["10.96.0.300"]);
    service_json["spec"]["clusterIP"] = json!("10.96.0.300");
    let mut slice = slice_pb();
    slice.metadata.as_mut().unwrap().labels.clear();
    let mut slice_json = slice_json();
    slice_json["metadata"]["labels"] = json!({});
    for (kind, bytes, json) in [
        (ObjectKind::Pod, pod.encode_to_vec(), pod_json),
        (ObjectKind::Service, service.encode_to_vec(), service_json),
        (ObjectKind::EndpointSlice, slice.encode_to_vec(), slice_json),
    ] {
        let (from_protobuf, _) = both_ways(kind, &bytes, &json);
        assert!(!matches!(from_protobuf.record, Ok(Some(_))), "{kind:?}");
    }
}

#[test]
fn bytes_that_are_not_an_object_are_named_not_panicked_on() {
    let pod = pod_pb().encode_to_vec();
    // Cut inside the status: the metadata still names it.
    let cut = kinds::decode_protobuf(ObjectKind::Pod, &pod[..pod.len() - 3]).unwrap_err();
    assert_eq!(cut.object, "default/web-0");
    assert!(cut.error.contains("cut short"), "{}", cut.error);
    // A name that is not UTF-8: a second metadata field (1) whose name (1) is the byte 0xff.
    let mut bad = pod_pb();
    bad.metadata.as_mut().unwrap().name = None;
    let mut bytes = bad.encode_to_vec();
    bytes.extend_from_slice(&[0x0a, 0x03, 0x0a, 0x01, 0xff]);
    let error = kinds::decode_protobuf(ObjectKind::Pod, &bytes).unwrap_err();
    assert!(error.error.contains("not UTF-8"), "{}", error.error);
    // Wire types the API never sends, and a varint that does not end.
    for junk in [
        &[0x0b][..],
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    ] {
        assert!(kinds::decode_protobuf(ObjectKind::Service, junk).is_err());
    }
}

/// `bytes` in the envelope the API server puts around a whole object.
fn envelope(kind: &str, bytes: Vec<u8>) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    runtime::Unknown {
        type_meta: Some(runtime::TypeMeta {
            api_version: s("v1"),
            kind: s(kind),
        }),
        raw: Some(bytes),
        content_encoding: s(""),
        content_type: s(""),
    }
    .encode(&mut out)
    .unwrap();
    out
}

fn pod_list(count: usize, meta: meta::ListMeta) -> (Vec<u8>, Vec<Vec<u8>>) {
    let items: Vec<core::Pod> = (0..count)
        .map(|i| {
            let mut pod = pod_pb();
            pod.metadata.as_mut().unwrap().name = Some(format!("web-{i}"));
            pod
        })
        .collect();
    let encoded = items.iter().map(Message::encode_to_vec).collect();
    let list = core::PodList {
        metadata: Some(meta),
        items,
    };
    (envelope("PodList", list.encode_to_vec()), encoded)
}

/// Items and metadata of `body`, fed in pieces cut at `cuts`.
fn split_at(body: &[u8], cuts: &[usize]) -> Result<(Vec<Vec<u8>>, ListMeta), Malformed> {
    let mut splitter = ProtobufListSplitter::default();
    let mut items = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&body.len()]) {
        splitter.feed(&body[start..end], |item| items.push(item.to_vec()))?;
        start = end;
    }
    Ok((items, splitter.finish()?))
}

#[test]
fn a_list_is_cut_into_its_items_however_it_arrives() {
    let (body, items) = pod_list(
        3,
        meta::ListMeta {
            resource_version: s("4242"),
            r#continue: s("next-page"),
            ..Default::default()
        },
    );
    let want_meta = ListMeta {
        resource_version: s("4242"),
        continue_token: s("next-page"),
    };
    // Whole, byte by byte, and in two pieces cut at every place.
    assert_eq!(
        split_at(&body, &[]).unwrap(),
        (items.clone(), want_meta.clone())
    );
    let every: Vec<usize> = (1..body.len()).collect();
    assert_eq!(
        split_at(&body, &every).unwrap(),
        (items.clone(), want_meta.clone())
    );
    for cut in 0..=body.len() {
        assert_eq!(
            split_at(&body, &[cut]).unwrap(),
            (items.clone(), want_meta.clone()),
            "cut at {cut}"
        );
    }
    // An empty list still has its metadata.
    let (empty, none) = pod_list(0, meta::ListMeta::default());
    assert_eq!(split_at(&empty, &[]).unwrap(), (none, ListMeta::default()));
}

#[test]
fn a_list_cut_short_or_not_protobuf_is_an_error() {
    let (body, _) = pod_list(2, meta::ListMeta::default());
    for end in [0, 3, 10, body.len() - 1] {
        assert!(split_at(&body[..end], &[]).is_err(), "ends at {end}");
    }
    assert!(split_at(br#"{"kind":"PodList","items":[]}"#, &[]).is_err());
    // An item claiming more bytes than its list holds.
    let mut lying = b"k8s\0".to_vec();
    lying.extend_from_slice(&[0x12, 0x04, 0x12, 0x7f, 0x00, 0x00]);
    assert!(split_at(&lying, &[]).is_err());
    // A field beside the list claiming a gigabyte: refused before it is waited for.
    let mut huge = b"k8s\0".to_vec();
    huge.extend_from_slice(&[0x0a, 0x80, 0x80, 0x80, 0x80, 0x04]);
    let mut splitter = ProtobufListSplitter::default();
    assert!(splitter.feed(&huge, |_| {}).is_err());
}

/// One frame of a protobuf watch stream.
fn frame(kind: &str, object_kind: &str, object: Vec<u8>) -> Vec<u8> {
    let event = meta::WatchEvent {
        r#type: s(kind),
        object: Some(runtime::RawExtension {
            raw: Some(envelope(object_kind, object)),
        }),
    }
    .encode_to_vec();
    let mut out = (event.len() as u32).to_be_bytes().to_vec();
    out.extend(event);
    out
}

fn frames_of(stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut splitter = frames::FrameSplitter::default();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        splitter.push(piece);
        while let Some(frame) = splitter.next_frame(1 << 20).unwrap() {
            out.push(frame);
        }
    }
    assert_eq!(splitter.unfinished(), 0);
    out
}

#[test]
fn watch_frames_mean_what_their_json_lines_mean() {
    let bookmark = core::Pod {
        metadata: Some(meta::ObjectMeta {
            resource_version: s("99"),
            annotations: [("k8s.io/initial-events-end".to_string(), "true".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let expired = meta::Status {
        status: s("Failure"),
        message: s("too old resource version: 1 (99)"),
        reason: s("Expired"),
        code: Some(410),
        ..Default::default()
    };
    let failed = meta::Status {
        message: s("etcdserver: request timed out"),
        code: Some(500),
        ..Default::default()
    };
    let mut stream = Vec::new();
    stream.extend(frame("ADDED", "Pod", pod_pb().encode_to_vec()));
    stream.extend(frame("DELETED", "Pod", pod_pb().encode_to_vec()));
    stream.extend(frame("BOOKMARK", "Pod", bookmark.encode_to_vec()));
    let mut plain = bookmark.clone();
    plain.metadata.as_mut().unwrap().annotations.clear();
    stream.extend(frame("BOOKMARK", "Pod", plain.encode_to_vec()));
    stream.extend(frame("ERROR", "Status", expired.encode_to_vec()));
    stream.extend(frame("ERROR", "Status", failed.encode_to_vec()));
    stream.extend(frame("ADDED", "Pod", vec![0x0a, 0x05]));
    for chunk in [1, 7, stream.len()] {
        let lines: Vec<Line> = frames_of(&stream, chunk)
            .iter()
            .map(|frame| read_frame(ObjectKind::Pod, frame, "watch pods"))
            .collect();
        let text = pod_json().to_string();
        let added = read_line_of("ADDED", &text);
        let deleted = read_line_of("DELETED", &text);
        assert_eq!(format!("{:?}", lines[0]), format!("{added:?}"));
        assert_eq!(format!("{:?}", lines[1]), format!("{deleted:?}"));
        assert!(
            matches!(&lines[2], Line::InitialEventsEnd(Some(v)) if v == "99"),
            "{:?}",
            lines[2]
        );
        assert!(
            matches!(&lines[3], Line::Bookmark(Some(v)) if v == "99"),
            "{:?}",
            lines[3]
        );
        assert!(matches!(lines[4], Line::Expired), "{:?}", lines[4]);
        let failure = format!("{:?}", lines[5]);
        assert!(
            failure.contains("500") && failure.contains("request timed out"),
            "{failure}"
        );
        assert!(
            matches!(&lines[6], Line::Skipped { remove: None, .. }),
            "{:?}",
            lines[6]
        );
    }
    // A frame that is not a watch event is a failed watch, not a panic.
    assert!(matches!(
        read_frame(ObjectKind::Pod, &[0xff, 0xff], "watch pods"),
        Line::Failed(_)
    ));
}

fn read_line_of(kind: &str, object: &str) -> Line {
    let line = format!(r#"{{"type":"{kind}","object":{object}}}"#);
    crate::source::kube::watch::read_line(ObjectKind::Pod, &line, "watch pods")
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_read() {
    let mut splitter = frames::FrameSplitter::default();
    splitter.push(&u32::MAX.to_be_bytes());
    assert!(splitter.next_frame(1 << 20).is_err());
}
