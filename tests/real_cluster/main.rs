//! The real-cluster tier: headless-dns against a real kube-apiserver, beside the real
//! EndpointSlice controller and CoreDNS, all started here from binaries that
//! `tests/real-cluster/build.sh` built at pinned versions. Run by `tests/real-cluster/run.sh`
//! (`cargo test --test real_cluster -- BIN_DIR`), not by a plain `cargo test`.
//!
//! headless-dns runs as a user deploys it: the ServiceAccount, ClusterRole and binding of
//! `config/deployment.yaml` are applied, and it reads the API with that account's token through
//! a kubeconfig. CoreDNS (kubernetes plugin, no cache, the same zone and TTL, `pods verified`)
//! follows the same API server. Each case prints one line; the run ends with `N passed, M
//! failed` and fails if any case did.

mod api;
mod cases;
mod control_plane;
mod dns;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::Value;

use control_plane::{ControlPlane, Process, free_port, kubeconfig, wait_for};

const BINARY: &str = env!("CARGO_BIN_EXE_headless-dns");

/// A DNS server under test: its process and where it answers.
pub struct Server {
    pub process: Process,
    pub dns: SocketAddr,
    pub http: Option<SocketAddr>,
}

/// Everything the cases share.
pub struct Env {
    pub plane: ControlPlane,
    pub admin: Client,
    pub hdns: Server,
    pub coredns: Server,
    /// The kubeconfig headless-dns reads: the ServiceAccount's token.
    pub hdns_kubeconfig: PathBuf,
}

impl Env {
    pub fn work(&self) -> &Path {
        &self.plane.work
    }
}

/// headless-dns as deployed: `kubeconfig` names the account it reads the API with.
pub fn start_headless_dns(work: &Path, name: &str, kubeconfig: &Path, extra: &[&str]) -> Result<Server, String> {
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
    let process = Process::start(work, name, Path::new(BINARY), &args)?;
    Ok(Server {
        process,
        dns: control_plane::loopback(dns_port),
        http: Some(control_plane::loopback(http_port)),
    })
}

/// Whether headless-dns's `/readyz` answers 200.
pub fn ready(server: &Server) -> bool {
    let Some(http) = server.http else { return false };
    std::process::Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "1"])
        .arg(format!("http://{http}/readyz"))
        .status()
        .is_ok_and(|s| s.success())
}

fn start_coredns(plane: &ControlPlane) -> Result<Server, String> {
    let port = free_port();
    let corefile = plane.work.join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:{port} {{\n    bind 127.0.0.1\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        \
             kubeconfig {}\n        pods verified\n        ttl 5\n    }}\n}}\n",
            plane.admin.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let args = vec!["-conf".to_string(), corefile.display().to_string()];
    let process = Process::start(&plane.work, "coredns", &plane.bin.join("coredns"), &args)?;
    Ok(Server {
        process,
        dns: control_plane::loopback(port),
        http: None,
    })
}

/// The objects of `config/deployment.yaml` that grant headless-dns its access: the Namespace,
/// ServiceAccount, ClusterRole and ClusterRoleBinding, as JSON.
pub fn deployment_rbac() -> Vec<Value> {
    let text = include_str!("../../config/deployment.yaml");
    serde_yaml_documents(text)
        .into_iter()
        .filter(|doc| {
            matches!(
                doc["kind"].as_str(),
                Some("Namespace" | "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding")
            )
        })
        .collect()
}

fn serde_yaml_documents(text: &str) -> Vec<Value> {
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
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
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
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                     "spec": {"expirationSeconds": 7200}});
    let response: Value = api
        .create_subresource("token", account, &PostParams::default(), &request)
        .await
        .map_err(|e| e.to_string())?;
    response["status"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token in {response}"))
}

async fn environment(bin: &Path, work: &Path) -> Result<Env, String> {
    let plane = ControlPlane::start(bin, work)?;
    let admin = api::client(&plane.admin).await?;
    api::nodes(&admin, &["node-a", "node-b"]).await?;
    apply_rbac(&admin, &deployment_rbac()).await?;
    let token = token(&admin, "headless-dns", "headless-dns").await?;
    let hdns_kubeconfig = work.join("headless-dns.kubeconfig");
    std::fs::write(&hdns_kubeconfig, kubeconfig(work, &plane.api_url(), &token)).map_err(|e| e.to_string())?;
    let hdns = start_headless_dns(work, "headless-dns", &hdns_kubeconfig, &[])?;
    let coredns = start_coredns(&plane)?;
    wait_for(Duration::from_secs(30), "headless-dns to be ready", || ready(&hdns))
        .map_err(|e| format!("{e}:\n{}", hdns.process.tail(20)))?;
    let version = dns::Asker::new(coredns.dns, dns::Transport::Udp).await?;
    let started = Instant::now();
    loop {
        if let Ok(reply) = version.reply("dns-version.cluster.local.", hickory_proto::rr::RecordType::TXT).await
            && !reply.answers.is_empty()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("CoreDNS never answered:\n{}", coredns.process.tail(20)));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Env {
        plane,
        admin,
        hdns,
        coredns,
        hdns_kubeconfig,
    })
}

fn main() -> ExitCode {
    // headless-dns's lists are logged at debug: the 410 case counts them. Set before any thread.
    // SAFETY: nothing else runs yet.
    unsafe {
        std::env::set_var(
            "RUST_LOG",
            "info,kube_client=off,headless_dns::source::kube::watch=debug",
        );
    }
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let Some(bin) = args.next() else {
        eprintln!(
            "real_cluster: give the directory of the control plane's binaries \
             (tests/real-cluster/run.sh builds them and passes it)"
        );
        return ExitCode::FAILURE;
    };
    let only: Vec<String> = args.collect();
    let work = tempfile::tempdir().expect("a work directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (passed, failed) = runtime.block_on(async {
        let mut env = match environment(Path::new(&bin), work.path()).await {
            Ok(env) => env,
            Err(e) => {
                println!("case control plane ... FAILED: {e}");
                return (0, 1);
            }
        };
        println!("case control plane ... ok (etcd, kube-apiserver, kube-controller-manager, CoreDNS, headless-dns)");
        cases::run_all(&mut env, &only).await
    });
    println!("{passed} passed, {failed} failed");
    if std::env::var_os("REAL_CLUSTER_KEEP").is_some() {
        let kept = work.keep();
        println!("work directory kept: {}", kept.display());
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
