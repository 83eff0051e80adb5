//! The DNS servers under test, started as users run them against the real API server:
//! headless-dns with the ServiceAccount, ClusterRole and binding of `config/deploy/headless-dns.yaml`
//! (and that account's token), CoreDNS with its kubernetes plugin. Shared by the real-cluster
//! tier and the side-by-side benchmark (`benches/coredns.rs`).

use std::net::SocketAddr;
use std::path::Path;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::Value;

use crate::api;
use crate::control_plane::{self, ControlPlane, Process, free_port};

const BINARY: &str = env!("CARGO_BIN_EXE_headless-dns");

/// A DNS server under test: its process and where it answers.
pub struct Server {
    pub process: Process,
    pub dns: SocketAddr,
    pub http: Option<SocketAddr>,
}

/// headless-dns as deployed: `kubeconfig` names the account it reads the API with. `cpus`, if
/// given, is the CPU list it runs on from its first instruction (`taskset -c`).
pub fn start_headless_dns(
    work: &Path,
    name: &str,
    kubeconfig: &Path,
    extra: &[&str],
    cpus: Option<&str>,
) -> Result<Server, String> {
    let (dns_port, http_port) = (free_port(), free_port());
    let mut args: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{dns_port}"),
        "--http-listen".into(),
        format!("127.0.0.1:{http_port}"),
        "--log-format".into(),
        "json".into(),
        "--udp-threads".into(),
        "1".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let process = Process::start_on(work, name, cpus, Path::new(BINARY), &args)?;
    Ok(Server {
        process,
        dns: control_plane::loopback(dns_port),
        http: Some(control_plane::loopback(http_port)),
    })
}

/// Whether headless-dns's `/readyz` answers 200.
pub fn ready(server: &Server) -> bool {
    let Some(http) = server.http else {
        return false;
    };
    std::process::Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "1"])
        .arg(format!("http://{http}/readyz"))
        .status()
        .is_ok_and(|s| s.success())
}

/// CoreDNS with the kubernetes plugin alone (no cache), the zone and TTL headless-dns serves,
/// `pods verified` and `multicluster clusterset.local`, reading the API as the admin. `cpus` as for [`start_headless_dns`].
pub fn start_coredns(plane: &ControlPlane, cpus: Option<&str>) -> Result<Server, String> {
    let port = free_port();
    let corefile = plane.work.join(format!("Corefile-{port}"));
    std::fs::write(
        &corefile,
        format!(
            ".:{port} {{\n    bind 127.0.0.1\n    kubernetes cluster.local clusterset.local in-addr.arpa \
             ip6.arpa {{\n        kubeconfig {}\n        pods verified\n        ttl 5\n        \
             multicluster clusterset.local\n    }}\n}}\n",
            plane.admin.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let args = vec!["-conf".to_string(), corefile.display().to_string()];
    let process = Process::start_on(
        &plane.work,
        "coredns",
        cpus,
        &plane.bin.join("coredns"),
        &args,
    )?;
    Ok(Server {
        process,
        dns: control_plane::loopback(port),
        http: None,
    })
}

/// The objects of `config/deploy/headless-dns.yaml` that grant headless-dns its access: the Namespace,
/// ServiceAccount, ClusterRole and ClusterRoleBinding, as JSON.
pub fn deployment_rbac() -> Vec<Value> {
    let text = include_str!("../../config/deploy/headless-dns.yaml");
    yaml_documents(text)
        .into_iter()
        .filter(|doc| {
            matches!(
                doc["kind"].as_str(),
                Some("Namespace" | "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding")
            )
        })
        .collect()
}

fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(text)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// Applies `objects` (Namespaces, ServiceAccounts, ClusterRoles, ClusterRoleBindings).
pub async fn apply_rbac(client: &Client, objects: &[Value]) -> Result<(), String> {
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let result = match object["kind"].as_str() {
            Some("Namespace") => api::namespace(client, name).await,
            Some("ServiceAccount") => {
                let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
                api::create(&api, object.clone()).await.map(|_| ())
            }
            Some("ClusterRole") => {
                let api: Api<ClusterRole> = Api::all(client.clone());
                api::create(&api, object.clone()).await.map(|_| ())
            }
            Some("ClusterRoleBinding") => {
                let api: Api<ClusterRoleBinding> = Api::all(client.clone());
                api::create(&api, object.clone()).await.map(|_| ())
            }
            other => Err(format!("not an RBAC object: {other:?}")),
        };
        match result {
            Ok(()) => {}
            Err(e) if e.contains("already exists") => {}
            Err(e) => return Err(format!("{} {name}: {e}", object["kind"])),
        }
    }
    Ok(())
}

/// A token of `account` in `namespace`, from the TokenRequest API.
pub async fn token(client: &Client, namespace: &str, account: &str) -> Result<String, String> {
    requested_token(
        client,
        namespace,
        account,
        serde_json::json!({"expirationSeconds": 7200}),
    )
    .await
}

/// A token of `account` in `namespace` for the TokenRequest `spec` (its lifetime, the object it
/// is bound to).
pub async fn requested_token(
    client: &Client,
    namespace: &str,
    account: &str,
    spec: Value,
) -> Result<String, String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                     "spec": spec});
    let response: Value = api
        .create_subresource("token", account, &PostParams::default(), &request)
        .await
        .map_err(|e| e.to_string())?;
    response["status"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token in {response}"))
}

/// headless-dns reading the API as the ServiceAccount of `config/deploy/headless-dns.yaml`: applies its
/// RBAC objects and writes a kubeconfig with the account's token; returns the kubeconfig's path.
pub async fn deployed_account(
    plane: &ControlPlane,
    admin: &Client,
) -> Result<std::path::PathBuf, String> {
    apply_rbac(admin, &deployment_rbac()).await?;
    let token = token(admin, "headless-dns", "headless-dns").await?;
    let path = plane.work.join("headless-dns.kubeconfig");
    std::fs::write(
        &path,
        control_plane::kubeconfig(&plane.work, &plane.api_url(), &token),
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}
