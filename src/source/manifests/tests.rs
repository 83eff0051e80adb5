//! The manifests source's formats, errors, limits and reloads.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::document::*;
use super::file::*;
use super::parse::*;
use super::stream::*;
use crate::records::{ClusterObject, PodHostname, PodTemplate, ServiceKind};
use crate::source::yaml;

fn error_of(text: &str) -> String {
    parse(text).expect_err("must be rejected").to_string()
}

#[test]
fn reads_the_demo_cluster() {
    let text = include_str!("../../../config/demo-cluster.yaml");
    let objects = parse(text).unwrap();
    let services = objects
        .iter()
        .filter(|o| matches!(o, ClusterObject::Service(_)))
        .count();
    let pods = objects
        .iter()
        .filter(|o| matches!(o, ClusterObject::Pod { .. }))
        .count();
    assert_eq!((services, pods), (3, 4));
}

#[test]
fn reads_kubectl_json_lists_and_skips_other_kinds() {
    let text = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"ns"},
         "spec":{"clusterIP":"None","selector":{"app":"a"}}},
        {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}},
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}"#;
    let objects = parse(text).unwrap();
    assert_eq!(objects.len(), 1);
    let ClusterObject::Service(service) = &objects[0] else {
        panic!("not a service: {objects:?}");
    };
    assert_eq!(service.kind, ServiceKind::Headless);
    assert_eq!(&*service.key.namespace, "ns");
}

#[test]
fn reads_multi_document_yaml_with_empty_documents() {
    let text = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: []\n";
    let objects = parse(text).unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0], ClusterObject::Namespace("team-a".into()));
    let ClusterObject::Pod { namespace, pod } = &objects[1] else {
        panic!()
    };
    assert_eq!(
        &**namespace, "default",
        "a manifest without namespace is in default"
    );
    assert!(pod.ips.is_empty() && !pod.ready);
}

#[test]
fn errors_name_the_document_the_object_and_the_field() {
    let bad_ip = "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {clusterIP: None}\n---\n\
                  apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: default}\n\
                  spec: {containers: []}\nstatus: {podIP: 10.0.0.300}\n";
    assert_eq!(
        error_of(bad_ip),
        "document 2 (Pod default/web-0): status.podIP: \"10.0.0.300\" is not an IP address"
    );
    let bad_port = r#"{"kind":"List","apiVersion":"v1","items":[{"apiVersion":"v1","kind":"Service",
        "metadata":{"name":"s","namespace":"n"},"spec":{"ports":[{"name":"web","port":"eighty"}]}}]}"#;
    let message = error_of(bad_port);
    assert!(
        message.starts_with("document 1, items[0] (Service n/s): spec.ports[0].port: invalid type"),
        "{message}"
    );
    let bad_name = "apiVersion: v1\nkind: Service\nmetadata: {name: My_Svc}\nspec: {}\n";
    assert!(error_of(bad_name).contains("metadata.name: \"My_Svc\" is not a DNS label"));
    assert_eq!(
        error_of("apiVersion: v1\nmetadata: {name: x}\n"),
        "document 1: kind: missing"
    );
    assert_eq!(
        error_of("kind: Pod\nmetadata: {name: x}\n"),
        "document 1: apiVersion: missing"
    );
    assert_eq!(
        error_of("- just\n- a list\n"),
        "document 1, items[0]: not a Kubernetes object (a mapping with a kind)"
    );
    let external =
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ExternalName}\n";
    assert!(error_of(external).ends_with("spec.externalName: missing for type ExternalName"));
    let protocol = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{name: a, port: 1, protocol: QUIC}]}\n";
    assert!(
        error_of(protocol).ends_with("spec.ports[0].protocol: \"QUIC\" is not TCP, UDP or SCTP")
    );
}

#[test]
fn reads_cluster_sized_files() {
    // Beyond serde-saphyr's default budget of 1,024 documents and 250,000 nodes.
    let labels: Vec<String> = (0..80).map(|i| format!("l{i}: v")).collect();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: ns1, labels: {{{}}}}}\n\
         spec: {{hostname: h, subdomain: s}}\nstatus: {{podIP: 10.0.0.1}}\n",
        labels.join(", ")
    );
    let text: Vec<String> = (0..1_600)
        .map(|i| pod.replace("name: p,", &format!("name: p-{i},")))
        .collect();
    let text = text.join("---\n");
    assert_eq!(parse(&text).unwrap().len(), 1_600);
}

#[test]
fn pods_of_one_template_share_their_naming_from_the_start() {
    let pod = |name: &str, subdomain: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n\
             spec: {{hostname: {name}, subdomain: {subdomain}, containers: \
             [{{name: c, ports: [{{name: web, containerPort: 80}}]}}]}}\n"
        )
    };
    let text = [
        pod("web-0", "web"),
        pod("web-1", "web"),
        pod("db-0", "db"),
        pod("web-2", "web"),
    ]
    .join("---\n");
    let templates: Vec<Arc<PodTemplate>> = parse(&text)
        .unwrap()
        .into_iter()
        .map(|object| match object {
            ClusterObject::Pod { pod, .. } => pod.template,
            other => panic!("not a pod: {other:?}"),
        })
        .collect();
    assert!(Arc::ptr_eq(&templates[0], &templates[1]) && Arc::ptr_eq(&templates[0], &templates[3]));
    assert!(!Arc::ptr_eq(&templates[0], &templates[2]));
    assert_eq!(templates[0].hostname, PodHostname::Name);
    assert_eq!(templates[0].named_ports.len(), 1);
}

#[test]
fn alias_bombs_are_still_refused() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("b{}", i - 1)
        };
        text.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    assert!(error_of(&text).starts_with("invalid YAML"));
}

fn yaml_objects(documents: Result<Documents, String>) -> Result<Vec<ClusterObject>, String> {
    let documents = documents?;
    assert!(documents.failure.is_none());
    Ok(documents.objects)
}

/// Documents and a List's items parsed in small pieces, on several threads, give what the
/// whole text gives, errors included (document, item and line numbers).
#[test]
fn yaml_parsed_in_pieces_equals_yaml_parsed_whole() {
    let pod = |i: usize, ip: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p-{i}, namespace: ns}}\n\
             spec: {{containers: []}}\nstatus: {{podIP: '{ip}', conditions: [{{type: Ready, status: 'True'}}]}}\n"
        )
    };
    let documents: String = (0..40)
        .map(|i| format!("---\n{}", pod(i, &format!("10.0.0.{i}"))))
        .collect();
    let list_of = |pods: Vec<String>| {
        let items: String = pods
            .iter()
            .map(|p| format!("- {}", p.trim_end().replace('\n', "\n  ")) + "\n")
            .collect();
        format!("apiVersion: v1\nitems:\n{items}kind: List\nmetadata: {{}}\n")
    };
    let list = list_of((0..40).map(|i| pod(i, &format!("10.0.1.{i}"))).collect());
    let both = format!("{documents}---\n{list}");
    for text in [&documents, &list, &both] {
        let pieces = yaml::pieces(text, 100);
        assert!(pieces.len() > 10, "{}", pieces.len());
        let whole =
            yaml_objects(parse_yaml_piece::<CAREFUL>(text, None).map_err(|e| e.to_string()));
        let whole = whole.unwrap();
        assert!(whole.len() >= 40);
        assert_eq!(
            yaml_objects(parse_yaml_pieces::<CAREFUL>(&pieces)).unwrap(),
            whole
        );
        assert_eq!(
            yaml_objects(parse_yaml_pieces::<STREAMING>(&pieces)).unwrap(),
            whole
        );
    }
    // An object DNS cannot use, late in the List: the same document and item.
    let mut pods: Vec<String> = (0..40).map(|i| pod(i, &format!("10.0.1.{i}"))).collect();
    pods[33] = pod(33, "10.0.1.300");
    let bad = format!("{documents}---\n{}", list_of(pods));
    let expected =
        "document 41, items[33] (Pod ns/p-33): status.podIP: \"10.0.1.300\" is not an IP address";
    assert_eq!(parse(&bad).unwrap_err().to_string(), expected);
    assert!(yaml::pieces(&bad, YAML_PIECE_BYTES).len() == 1);
    for pieces in [yaml::pieces(&bad, 100), yaml::pieces(&bad, usize::MAX)] {
        let failure = parse_yaml_pieces::<CAREFUL>(&pieces)
            .unwrap()
            .failure
            .unwrap();
        assert_eq!(failure.to_string(), expected);
    }
    // A syntax error late in the file is reported at its place in the file, not in its piece.
    for text in [&documents, &list] {
        let broken = format!("{text}---\nkind: [unclosed\n");
        let whole = parse_yaml_piece::<CAREFUL>(&broken, None)
            .err()
            .unwrap()
            .to_string();
        let expected = format!("invalid YAML: {whole}");
        let line = broken.lines().count();
        assert!(whole.contains(&format!("line {line} ")), "{whole}");
        let pieces = yaml::pieces(&broken, 100);
        assert_eq!(
            parse_yaml_pieces::<CAREFUL>(&pieces).err(),
            Some(expected.clone())
        );
        assert_eq!(
            parse_yaml_pieces::<STREAMING>(&pieces).err(),
            Some(expected)
        );
    }
}

/// Pods read field by field give exactly what the careful reading gives, whatever the order
/// of their fields, and a pod the streaming reading cannot take is reported as carefully.
#[test]
fn streaming_and_careful_readings_agree() {
    let pods = [
        // kubectl's order, with fields DNS skips.
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: a, labels: {app: web}, \
         annotations: {x: y}, uid: '1'}\nspec: {hostname: web-0, subdomain: web, nodeName: n, \
         containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}\n\
         status: {phase: Running, podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}, {ip: 'fd00::1'}], \
         conditions: [{type: Ready, status: 'True'}]}\n",
        // kind last, status first, no namespace.
        "status: {podIP: 10.0.0.2}\nmetadata: {name: b}\napiVersion: v1\nkind: Pod\n",
        // kind before apiVersion; metadata after spec; deletion under way; null status.
        "kind: Pod\napiVersion: v1\nspec: {containers: []}\nmetadata: {name: c, namespace: a, \
         deletionTimestamp: '2026-01-01T00:00:00Z'}\nstatus: null\n",
        // Another kind, named like a Pod's fields, then other kinds around it.
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\n\
         spec: {clusterIP: None, selector: {app: web}}\n",
    ];
    let yaml = pods.join("---\n");
    let demo = include_str!("../../../config/demo-cluster.yaml");
    let json: Vec<Value> = yaml_serde::Deserializer::from_str(&yaml)
        .map(|document| Value::deserialize(document).unwrap())
        .collect();
    let json_list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": json});
    for text in [yaml.clone(), demo.to_string(), json_list.to_string()] {
        let careful = parse_in::<CAREFUL>(&text).unwrap();
        assert!(careful.len() >= 4, "{careful:?}");
        assert_eq!(parse_in::<STREAMING>(&text).unwrap(), careful);
    }
    let bad_port = "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: a}\n\
                    spec: {containers: [{ports: [{containerPort: eighty}]}]}\n";
    assert!(parse_in::<STREAMING>(bad_port).is_err());
    let message = error_of(bad_port);
    assert!(
        message.starts_with(
            "document 1 (Pod a/web-0): spec.containers[0].ports[0].containerPort: invalid type"
        ),
        "{message}"
    );
}

/// A key given twice is refused, as kubectl does, wherever it is (the parser keeps the last).
#[test]
fn duplicate_keys_are_refused() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n, labels: {app: x}}\n\
               spec: {containers: []}\n";
    assert!(parse(pod).is_ok());
    for (text, key) in [
        (pod.replace("app: x", "app: x, app: y"), "app"),
        (pod.replace("name: a", "name: a, name: b"), "name"),
        (format!("{pod}spec: {{}}\n"), "spec"),
        (format!("{pod}kind: Pod\n"), "kind"),
        (format!("{pod}extra: 1\nextra: 2\n"), "extra"),
        (pod.replace("kind: Pod", "kind: Service\nkind: Pod"), "kind"),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {a: b, a: c}}\n".into(),
            "a",
        ),
        (
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"}}]}"#.into(),
            "name",
        ),
    ] {
        let message = error_of(&text);
        assert!(message.contains(&format!("duplicate key \"{key}\"")), "{text}: {message}");
    }
}

/// What the API server refuses, a file may not hold either: a known kind at a version this
/// server does not read, the same object twice, a single address that is not the first of
/// the list. Each is named by document (and item) and field.
#[test]
fn what_the_api_server_refuses_is_an_error() {
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: a}}\nspec: {{containers: []}}\n"
        )
    };
    assert_eq!(
        error_of("apiVersion: v2\nkind: Pod\nmetadata: {name: d}\n"),
        "document 1 (Pod d): apiVersion: \"v2\" is not a version of Pod this server reads (v1)"
    );
    assert_eq!(
        error_of(
            "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: s, namespace: a}\n"
        ),
        "document 1 (EndpointSlice a/s): apiVersion: \"discovery.k8s.io/v1beta1\" is not a \
         version of EndpointSlice this server reads (discovery.k8s.io/v1)"
    );
    // The same object twice: in documents, in a List, and across both.
    let twice = [pod("web-0"), pod("web-1"), pod("web-0")].join("---\n");
    assert_eq!(
        error_of(&twice),
        "document 3 (Pod a/web-0): metadata.name: a second Pod a/web-0 (the first is document 1)"
    );
    let list = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{}},
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"s","namespace":"a"}},
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{}}]}"#;
    assert_eq!(
        error_of(list),
        "document 1, items[2] (Service a/s): metadata.name: a second Service a/s (the first \
         is document 1, items[0])"
    );
    let namespaces = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
                      apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
    assert!(error_of(namespaces).ends_with("a second Namespace a (the first is document 1)"));
    // The same name in another namespace, or of another kind, is another object.
    let distinct = [
        pod("web-0"),
        pod("web-0").replace("namespace: a", "namespace: b"),
    ]
    .join("---\n");
    assert_eq!(parse(&distinct).unwrap().len(), 2);
    // podIP and clusterIP must be the first of their lists.
    let pod_ips = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n\
                   status: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.2}, {ip: 10.0.0.1}]}\n";
    assert_eq!(
        error_of(pod_ips),
        "document 1 (Pod a/p): status.podIP: \"10.0.0.1\" is not status.podIPs[0].ip (\"10.0.0.2\")"
    );
    let cluster_ips = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n\
                       spec: {clusterIP: 10.96.0.1, clusterIPs: [\"fd00::1\", 10.96.0.1]}\n";
    assert_eq!(
        error_of(cluster_ips),
        "document 1 (Service a/s): spec.clusterIP: \"10.96.0.1\" is not spec.clusterIPs[0] (\"fd00::1\")"
    );
    let agreeing = pod_ips.replace("podIP: 10.0.0.1", "podIP: 10.0.0.2");
    assert!(parse(&agreeing).is_ok());
    // Pods read field by field are checked the same way.
    let streamed = format!("{}---\n{}", pod("x"), pod("x"));
    assert!(parse_in::<STREAMING>(&streamed).is_err());
}

#[test]
fn loads_within_the_size_bound() {
    assert_eq!(bytes(3 << 29), "1.5 GiB");
    assert_eq!(bytes(80), "80 bytes");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, include_str!("../../../config/demo-cluster.yaml")).unwrap();
    let input = Input::File(file.clone());
    let loaded = load(&input, 1 << 20).unwrap();
    assert!(!loaded.blank && loaded.objects.len() >= 7);
    let error = load(&input, 1000).unwrap_err();
    assert!(
        error.ends_with("is larger than --manifests-max-size (1000 bytes)"),
        "{error}"
    );
    std::fs::write(&file, "# nothing yet\n\n").unwrap();
    let loaded = load(&input, 1000).unwrap();
    assert!(loaded.blank && loaded.objects.is_empty());
    std::fs::write(&file, "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
    assert!(!load(&input, 1000).unwrap().blank);
    let error = load(&Input::File(dir.path().into()), 1000).unwrap_err();
    assert!(
        error.ends_with("not a regular file (a directory); give a file, or - for standard input")
    );
}

#[test]
fn syntax_errors_are_reported_not_panicked() {
    assert!(error_of("kind: Service\n  bad: [indent\n").starts_with("invalid YAML"));
    assert!(error_of("{\"kind\": ").starts_with("invalid JSON"));
}

/// What [`stream`] hands over for `text` in a file, in a stable order.
fn streamed(text: &str, max_size: u64) -> Result<Vec<ClusterObject>, NotStreamed> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let mut objects = Vec::new();
    let handed = stream(file.path(), max_size, |part| objects.extend(part))?;
    assert_eq!(handed, objects.len());
    Ok(in_order(objects))
}

fn in_order(mut objects: Vec<ClusterObject>) -> Vec<ClusterObject> {
    objects.sort_by(|a, b| {
        let identity =
            |o: &ClusterObject| (o.kind_name(), o.namespace().to_owned(), o.name().to_owned());
        identity(a).cmp(&identity(b))
    });
    objects
}

/// A JSON List of every kind, long enough to be converted in many runs, items of other kinds
/// between, and strings that hold the List's own syntax; pods before their Services.
fn large_json_list(pods: usize) -> String {
    let mut items: Vec<String> = (0..pods)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p-{i}","namespace":"ns-{ns}",
                "labels":{{"app":"a{app}","note":"}}]{{[\"items\":["}}}},
                "spec":{{"hostname":"p-{i}","subdomain":"a{app}","nodeName":"node-1"}},
                "status":{{"phase":"Running","podIP":"10.{ns}.{hi}.{lo}",
                "conditions":[{{"type":"Ready","status":"{ready}"}}]}}}}"#,
                ns = i % 3,
                app = i % 40,
                hi = i / 250,
                lo = i % 250,
                ready = if i % 7 == 0 { "False" } else { "True" },
            )
        })
        .collect();
    for app in 0..40 {
        for ns in 0..3 {
            items.push(format!(
                r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"a{app}","namespace":"ns-{ns}"}},
                "spec":{{"clusterIP":"None","selector":{{"app":"a{app}"}}}}}}"#
            ));
        }
        items.push(format!(
            r#"{{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{{"name":"a{app}"}},"spec":{{"items":[{{}}]}}}}"#
        ));
    }
    items.push(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns-0"}}"#.into());
    items.push(
        r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","addressType":"IPv4",
        "metadata":{"name":"s-1","namespace":"ns-1","labels":{"kubernetes.io/service-name":"a1"}},
        "endpoints":[{"addresses":["10.9.0.1"],"conditions":{"ready":true}}]}"#
            .into(),
    );
    format!(
        "{{\n  \"apiVersion\": \"v1\", \"kind\": \"List\",\n  \"items\": [\n{}\n  ],\n  \"metadata\": {{\"resourceVersion\": \"\"}}\n}}\n",
        items.join(",\n")
    )
}

/// A `kubectl get -o yaml` List of every kind, long enough for many runs, with comments and
/// blank lines between and inside items, then many more documents: Services one per document,
/// and a List whose items are indented (parsed with its document).
fn large_yaml(pods: usize) -> String {
    let mut text = String::from("# kubectl get svc,pods -A -o yaml\napiVersion: v1\nitems:\n");
    for i in 0..pods {
        let (ns, app) = (i % 3, i % 40);
        let ready = if i % 7 == 0 { "False" } else { "True" };
        text += &format!(
            "- apiVersion: v1\n  kind: Pod\n  metadata: {{name: p-{i}, namespace: ns-{ns}, \
             labels: {{app: a{app}, note: \"- ]}}{{[ items:\"}}}}\n\n  # inside an item\n  \
             spec: {{hostname: p-{i}, subdomain: a{app}, nodeName: node-1}}\n  status:\n    \
             phase: Running\n    podIP: 10.{ns}.{}.{}\n    conditions:\n    \
             - {{type: Ready, status: \"{ready}\"}}\n",
            i / 250,
            i % 250
        );
    }
    for app in 0..40 {
        text += &format!(
            "# between items\n- apiVersion: v1\n  kind: Service\n  metadata: {{name: a{app}, \
             namespace: ns-0}}\n  spec: {{clusterIP: None, selector: {{app: a{app}}}}}\n"
        );
    }
    text += "kind: List\nmetadata:\n  resourceVersion: \"\"\n";
    for i in 0..2_000 {
        text += &format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s-{i}, namespace: ns-1}}\n\
             spec: {{clusterIP: None, selector: {{app: a{}}}}}\n",
            i % 40
        );
    }
    text += "--- # a List indented under items:\napiVersion: v1\nkind: List\nitems:\n  \
             - {apiVersion: v1, kind: Namespace, metadata: {name: ns-2}}\n";
    text
}

#[test]
fn a_file_streamed_gives_what_it_gives_read_whole() {
    let yaml = large_yaml(3_000);
    assert!(yaml.len() > 1 << 20, "{} bytes: not many runs", yaml.len());
    for text in [
        yaml.as_str(),
        include_str!("../../../config/demo-cluster.yaml"),
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n",
        "apiVersion: v1\nkind: List\nitems:\n",
        "[]",
    ] {
        let whole = in_order(parse(text).unwrap());
        assert_eq!(streamed(text, 1 << 30).unwrap(), whole, "{:.200}", text);
    }
    assert_eq!(
        streamed(&yaml, 1 << 30).unwrap().len(),
        3_000 + 40 + 2_000 + 1
    );
}

#[test]
fn a_json_file_streamed_gives_what_it_gives_read_whole() {
    let large = large_json_list(6_000);
    assert!(
        large.len() > 1 << 20,
        "{} bytes: not many runs",
        large.len()
    );
    let single = r#" {"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"ns"},
        "spec":{"clusterIP":"None"}} "#;
    for text in [
        large.as_str(),
        single,
        r#"{"apiVersion":"v1","kind":"List","items":[]}"#,
        r#"{"kind":"List","items":null}"#,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"items":"[{"}}"#,
    ] {
        let whole = in_order(parse(text).unwrap());
        assert_eq!(streamed(text, 1 << 30).unwrap(), whole, "{:.200}", text);
    }
    assert_eq!(streamed(&large, 1 << 30).unwrap().len(), 6_000 + 120 + 2);
}

#[test]
fn what_cannot_be_streamed_is_left_to_the_whole_reading() {
    let large = large_json_list(2_000);
    let bad_ip = large.replacen("10.1.0.1\"", "10.1.0.x\"", 1);
    let bad_json = large.replacen("\"kind\":\"Pod\"", "\"kind\" \"Pod\"", 1);
    let cut = &large[..large.len() / 2];
    let two = format!("{large}\n{large}");
    for (text, why) in [
        ("# nothing yet\n\n", "a blank file"),
        (bad_ip.as_str(), "a pod DNS cannot use"),
        (bad_json.as_str(), "a syntax error"),
        (cut, "a file cut short"),
        (two.as_str(), "two documents"),
        ("", "nothing"),
    ] {
        assert!(streamed(text, 1 << 30).is_err(), "{why} was streamed");
    }
    assert!(streamed(&large, large.len() as u64 - 1).is_err());
    // Not UTF-8, in a field nothing reads: the whole reading refuses it, so must this.
    let mut latin1 = large.clone().into_bytes();
    let at = large.find("node-1").unwrap() + 1;
    latin1[at] = 0xE9;
    assert!(std::str::from_utf8(&latin1).is_err());
    assert!(stream_from(&latin1[..], 1 << 30, |_| {}).is_err());
    assert!(stream(std::path::Path::new("/dev/zero"), 1 << 30, |_| {}).is_err());
}

#[test]
fn reads_service_imports_and_the_slices_of_their_clusters() {
    let text = "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\n\
                metadata: {name: db, namespace: shop}\n\
                spec: {type: ClusterSetIP, ips: [10.100.0.1], ports: [{name: pg, port: 5432}]}\n---\n\
                apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
                metadata: {name: db-east, namespace: shop, labels: \
                {multicluster.kubernetes.io/service-name: db, \
                multicluster.kubernetes.io/source-cluster: east}}\n\
                addressType: IPv4\nendpoints: [{addresses: [10.1.0.1]}]\n---\n\
                apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
                metadata: {name: plain, namespace: shop, labels: {kubernetes.io/service-name: db}}\n\
                addressType: IPv4\nendpoints: []\n";
    let objects = parse(text).unwrap();
    let ClusterObject::ServiceImport(import) = &objects[0] else {
        panic!("not an import: {objects:?}");
    };
    assert_eq!(
        import.kind,
        crate::records::ImportKind::ClusterSetIp(Box::new(["10.100.0.1".parse().unwrap()]))
    );
    assert_eq!((&*import.ports[0].name, import.ports[0].port), ("pg", 5432));
    let kinds: Vec<_> = objects.iter().map(ClusterObject::kind).collect();
    use crate::records::ObjectKind;
    assert_eq!(
        kinds,
        [
            ObjectKind::ServiceImport,
            ObjectKind::ImportSlice,
            ObjectKind::EndpointSlice
        ]
    );
    let ClusterObject::EndpointSlice(slice) = &objects[1] else {
        panic!()
    };
    assert_eq!(
        (&*slice.service, slice.cluster.as_deref()),
        ("db", Some("east"))
    );
}

#[test]
fn service_import_errors_name_the_field() {
    let import = |api: &str, spec: &str| {
        format!(
            "apiVersion: {api}\nkind: ServiceImport\nmetadata: {{name: db, namespace: shop}}\n\
             spec: {spec}\n"
        )
    };
    let v1alpha1 = "multicluster.x-k8s.io/v1alpha1";
    for (text, expected) in [
        (
            import(v1alpha1, "{type: LoadBalancer}"),
            "document 1 (ServiceImport shop/db): spec.type: \"LoadBalancer\" is not ClusterSetIP \
             or Headless",
        ),
        (
            import(v1alpha1, "{ports: []}"),
            "document 1 (ServiceImport shop/db): spec.type: missing",
        ),
        (
            import(v1alpha1, "{type: ClusterSetIP, ips: [10.100.0.300]}"),
            "document 1 (ServiceImport shop/db): spec.ips[0]: \"10.100.0.300\" is not an IP \
             address",
        ),
        (
            import(v1alpha1, "{type: Headless, ports: [{name: Web, port: 80}]}"),
            "document 1 (ServiceImport shop/db): spec.ports[0].name: \"Web\" is not a DNS label \
             (lower-case letters, digits and '-', at most 63)",
        ),
        (
            import("multicluster.x-k8s.io/v2", "{type: Headless}"),
            "document 1 (ServiceImport shop/db): apiVersion: \"multicluster.x-k8s.io/v2\" is not a \
             version of ServiceImport this server reads (multicluster.x-k8s.io/v1alpha1 or v1beta1)",
        ),
        (
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e, namespace: \
             shop, labels: {multicluster.kubernetes.io/service-name: db, \
             multicluster.kubernetes.io/source-cluster: East_1}}\naddressType: IPv4\nendpoints: []\n"
                .to_string(),
            "document 1 (EndpointSlice shop/e): metadata.labels[\"multicluster.kubernetes.io/\
             source-cluster\"]: \"East_1\" is not a DNS label (lower-case letters, digits and '-', \
             at most 63)",
        ),
    ] {
        assert_eq!(error_of(&text), expected);
    }
}
