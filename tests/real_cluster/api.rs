//! The cases' hands on the real API: objects built as JSON and written through the kube client;
//! the kubelet's part played through the status subresource (phase, podIP/podIPs, Ready).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::{Value, json};

pub async fn client(kubeconfig: &std::path::Path) -> Result<Client, String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

fn from<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a well-formed object")
}

/// Creates `object` (of the type `K` its kind names), or replaces its spec and labels if it
/// exists.
pub async fn create<K>(api: &Api<K>, object: Value) -> Result<K, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let typed: K = from(object);
    api.create(&PostParams::default(), &typed)
        .await
        .map_err(|e| e.to_string())
}

/// Creates namespace `name` (if it is not there) and waits for its `default` ServiceAccount:
/// until the ServiceAccount controller has made it, the API server refuses pods there ("error
/// looking up service account"), as the e2e framework's namespaces wait for it too.
pub async fn namespace(client: &Client, name: &str) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    match create(&api, json!({"metadata": {"name": name}})).await {
        Ok(_) => {}
        Err(e) if e.contains("already exists") => {}
        Err(e) => return Err(e),
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let started = std::time::Instant::now();
    loop {
        match accounts.get_opt("default").await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if started.elapsed() < std::time::Duration::from_secs(30) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(None) => return Err(format!("no default ServiceAccount in {name} after 30 s")),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Nodes for pods to name in `spec.nodeName`, as real pods do (the EndpointSlice controller
/// reads their zones).
pub async fn nodes(client: &Client, names: &[&str]) -> Result<(), String> {
    let api: Api<Node> = Api::all(client.clone());
    for name in names {
        let node = json!({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "zone-a"}}});
        match create(&api, node).await {
            Ok(_) => {}
            Err(e) if e.contains("already exists") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What a test pod is: its labels, addresses, state and DNS naming.
#[derive(Clone, Debug)]
pub struct PodSpec {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub ips: Vec<String>,
    pub ready: bool,
    /// `Running`, `Pending`, `Succeeded`, `Failed`.
    pub phase: &'static str,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    /// Named container ports: (name, number).
    pub ports: Vec<(String, u16)>,
    /// Kept from deletion by a finalizer, then deleted: terminating.
    pub terminating: bool,
}

impl PodSpec {
    pub fn new(name: &str, app: &str, ips: &[&str]) -> Self {
        Self {
            name: name.into(),
            labels: vec![("app".into(), app.into())],
            ips: ips.iter().map(|s| s.to_string()).collect(),
            ready: true,
            phase: "Running",
            hostname: None,
            subdomain: None,
            ports: vec![("web".into(), 8080)],
            terminating: false,
        }
    }

    pub fn named(mut self, hostname: &str, subdomain: &str) -> Self {
        self.hostname = Some(hostname.into());
        self.subdomain = Some(subdomain.into());
        self
    }

    pub fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }
}

const FINALIZER: &str = "headless-dns.test/hold";

/// Creates the pod on `node`, then sets its status as a kubelet would; a terminating one is
/// held by a finalizer and deleted.
pub async fn pod(client: &Client, ns: &str, node: &str, spec: &PodSpec) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let labels: serde_json::Map<String, Value> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .map(|(name, port)| json!({"name": name, "containerPort": port}))
        .collect();
    let mut object = json!({
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1", "ports": ports}]}
    });
    if spec.terminating {
        object["metadata"]["finalizers"] = json!([FINALIZER]);
    }
    if let Some(hostname) = &spec.hostname {
        object["spec"]["hostname"] = json!(hostname);
    }
    if let Some(subdomain) = &spec.subdomain {
        object["spec"]["subdomain"] = json!(subdomain);
    }
    create(&api, object).await?;
    set_status(client, ns, spec).await?;
    if spec.terminating {
        // Bound to a node and held by a finalizer: it stays, terminating.
        api.delete(&spec.name, &DeleteParams::default())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes the pod's status: phase, addresses, and the Ready condition.
pub async fn set_status(client: &Client, ns: &str, spec: &PodSpec) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut status = json!({
        "phase": spec.phase,
        "conditions": [{"type": "Ready", "status": if spec.ready { "True" } else { "False" }}],
    });
    if let Some(first) = spec.ips.first() {
        status["podIP"] = json!(first);
        status["podIPs"] = json!(
            spec.ips
                .iter()
                .map(|ip| json!({"ip": ip}))
                .collect::<Vec<_>>()
        );
    }
    api.patch_status(
        &spec.name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Deletes the pod at once (no kubelet will confirm a graceful deletion).
pub async fn delete_pod(client: &Client, ns: &str, name: &str) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    // A held pod lets go first.
    let _ = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await;
    match api
        .delete(name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("not found") => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// A Service: `clusterIP: None` for a headless one; `families` and `policy` as the API takes them.
pub struct ServiceSpec {
    pub name: String,
    pub headless: bool,
    pub selector: Option<(String, String)>,
    pub publish_not_ready: bool,
    pub families: Option<Vec<&'static str>>,
    pub policy: Option<&'static str>,
    /// (name, port, targetPort: a number or a container port's name)
    pub ports: Vec<(String, u16, Value)>,
}

impl ServiceSpec {
    pub fn headless(name: &str, app: &str) -> Self {
        Self {
            name: name.into(),
            headless: true,
            selector: Some(("app".into(), app.into())),
            publish_not_ready: false,
            families: None,
            policy: None,
            ports: vec![("web".into(), 80, json!("web"))],
        }
    }

    pub fn cluster_ip(name: &str, app: &str) -> Self {
        Self {
            headless: false,
            ..Self::headless(name, app)
        }
    }
}

pub async fn service(client: &Client, ns: &str, spec: &ServiceSpec) -> Result<Service, String> {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .map(|(name, port, target)| json!({"name": name, "port": port, "targetPort": target, "protocol": "TCP"}))
        .collect();
    let mut object = json!({"metadata": {"name": spec.name}, "spec": {"ports": ports}});
    if spec.headless {
        object["spec"]["clusterIP"] = json!("None");
    }
    if let Some((k, v)) = &spec.selector {
        object["spec"]["selector"] = json!({k: v});
    }
    if spec.publish_not_ready {
        object["spec"]["publishNotReadyAddresses"] = json!(true);
    }
    if let Some(families) = &spec.families {
        object["spec"]["ipFamilies"] = json!(families);
    }
    if let Some(policy) = spec.policy {
        object["spec"]["ipFamilyPolicy"] = json!(policy);
    }
    create(&api, object).await
}

pub async fn external_name(
    client: &Client,
    ns: &str,
    name: &str,
    target: &str,
) -> Result<(), String> {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let object = json!({"metadata": {"name": name}, "spec": {"type": "ExternalName", "externalName": target}});
    create(&api, object).await.map(|_| ())
}

pub async fn delete_service(client: &Client, ns: &str, name: &str) -> Result<(), String> {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    api.delete(name, &DeleteParams::default())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A hand-made EndpointSlice of `service`: (address, hostname, ready) per endpoint.
pub async fn slice(
    client: &Client,
    ns: &str,
    name: &str,
    service: &str,
    family: &str,
    endpoints: &[(&str, Option<&str>, bool)],
) -> Result<(), String> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, hostname, ready)| {
            let mut endpoint = json!({"addresses": [ip], "conditions": {"ready": ready}});
            if let Some(hostname) = hostname {
                endpoint["hostname"] = json!(hostname);
            }
            endpoint
        })
        .collect();
    let object = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{"name": "db", "port": 5432, "protocol": "TCP"}],
    });
    create(&api, object).await.map(|_| ())
}

/// What the EndpointSlice controller publishes for `service`: its ready endpoints, as
/// (address, hostname) pairs.
pub async fn ready_endpoints(
    client: &Client,
    ns: &str,
    service: &str,
) -> Result<BTreeSet<(String, Option<String>)>, String> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let slices = api
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .map_err(|e| e.to_string())?;
    let mut ready = BTreeSet::new();
    for slice in slices.items {
        for endpoint in &slice.endpoints {
            let is_ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !is_ready {
                continue;
            }
            for address in &endpoint.addresses {
                ready.insert((address.clone(), endpoint.hostname.clone()));
            }
        }
    }
    Ok(ready)
}
