//! The shipped manifests (`config/deploy`, `config/kind`, `config/sidecar-example.yaml`) against
//! the real API server, as an admin applies them with kubectl: Pod Security "restricted"
//! enforced and the pods admitted, the sidecar's namespaced Role enough for what it reads, and
//! the way the shipped pods reach the API — in-cluster configuration, with no kubeconfig —
//! through a token rotated on disk while headless-dns runs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::Env;
use crate::api::{self, PodSpec, ServiceSpec};
use crate::control_plane::{self, Process, free_port, wait_for};
use crate::dns::{Asker, Transport};
use crate::servers::{self, Server, ready};

const REPOSITORY: &str = env!("CARGO_MANIFEST_DIR");
/// The sidecar example's header says to apply it so.
const SIDECAR_APPLY: [&str; 4] = [
    "apply",
    "--server-side",
    "-f",
    "config/sidecar-example.yaml",
];
const BINARY: &str = env!("CARGO_BIN_EXE_headless-dns");

/// The control plane's kubectl as the admin, run from the repository (paths as the README gives
/// them); its output, or why it failed.
fn kubectl(env: &Env, args: &[&str]) -> Result<String, String> {
    let output = Command::new(env.plane.bin.join("kubectl"))
        .arg("--kubeconfig")
        .arg(&env.plane.admin)
        .args(args)
        .current_dir(REPOSITORY)
        .output()
        .map_err(|e| format!("kubectl: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "kubectl {}: {}{text}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `kubectl apply --server-side -k config/deploy`, `-k config/kind` and `-f
/// config/sidecar-example.yaml`, as
/// written in their headers: each accepted; the namespaces enforce Pod Security "restricted"
/// (a non-compliant pod is refused), and the Deployment's pods, which the deployment and
/// replicaset controllers create, are admitted.
pub async fn apply_the_shipped_manifests(env: &mut Env) -> Result<String, String> {
    kubectl(env, &["apply", "--server-side", "-k", "config/deploy"])?;
    let enforced = kubectl(
        env,
        &[
            "get",
            "namespace",
            "headless-dns",
            "-o",
            "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
        ],
    )?;
    if enforced != "restricted" {
        return Err(format!("namespace headless-dns enforces {enforced:?}"));
    }
    // The control: a pod that "restricted" refuses is refused there.
    let refused = kubectl(
        env,
        &[
            "-n",
            "headless-dns",
            "run",
            "psa-control",
            "--image=busybox:1.36",
            "--restart=Never",
        ],
    );
    match refused {
        Err(e) if e.contains("violates PodSecurity \"restricted:latest\"") => {}
        other => return Err(format!("a non-compliant pod was not refused: {other:?}")),
    }
    let pods = || {
        kubectl(
            env,
            &[
                "-n",
                "headless-dns",
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=headless-dns",
                "-o",
                "name",
            ],
        )
        .map(|out| out.lines().count())
        .unwrap_or(0)
    };
    let started = Instant::now();
    wait_for(Duration::from_secs(60), "the Deployment's 2 pods", || {
        pods() == 2
    })
    .map_err(|e| {
        let events = kubectl(env, &["-n", "headless-dns", "get", "events"]).unwrap_or_default();
        format!("{e}; events:\n{events}")
    })?;
    let admitted = started.elapsed();
    for (kind, name) in [
        ("poddisruptionbudget", "headless-dns"),
        ("networkpolicy", "headless-dns"),
    ] {
        kubectl(env, &["-n", "headless-dns", "get", kind, name])?;
    }
    let service_type = |env: &Env| {
        kubectl(
            env,
            &[
                "-n",
                "headless-dns",
                "get",
                "service",
                "headless-dns",
                "-o",
                "jsonpath={.spec.type} {.spec.ports[*].nodePort}",
            ],
        )
    };
    let base = service_type(env)?;
    if base.trim() != "ClusterIP" {
        return Err(format!(
            "config/deploy's Service is {base:?}, not ClusterIP"
        ));
    }
    kubectl(env, &["apply", "--server-side", "-k", "config/kind"])?;
    let kind = service_type(env)?;
    if kind != "NodePort 30053 30053" {
        return Err(format!("config/kind's Service is {kind:?}"));
    }
    kubectl(env, &SIDECAR_APPLY)?;
    kubectl(
        env,
        &["-n", "sidecar-demo", "get", "pod", "sidecar-example"],
    )?;
    Ok(format!(
        "applied config/deploy, config/kind, config/sidecar-example.yaml; restricted enforced \
         (control refused); the Deployment's 2 pods admitted in {:.1} s; ClusterIP, then \
         NodePort 30053",
        admitted.as_secs_f64()
    ))
}

/// headless-dns as the sidecar example runs it: its ServiceAccount's token, its namespaced
/// Role, `--namespace sidecar-demo`. The example's Service answers with the example pod's
/// address, and no permission is found missing.
pub async fn sidecar_role_is_enough(env: &mut Env) -> Result<String, String> {
    kubectl(env, &SIDECAR_APPLY)?;
    // Play the kubelet: the example pod runs, Ready, at an address.
    let mut pod = PodSpec::new("sidecar-example", "sidecar-example", &["10.244.50.7"]);
    pod.ports.clear();
    api::set_status(&env.admin, "sidecar-demo", &pod).await?;
    let token = servers::token(&env.admin, "sidecar-demo", "headless-dns").await?;
    let kubeconfig = env.work().join("sidecar.kubeconfig");
    std::fs::write(
        &kubeconfig,
        control_plane::kubeconfig(env.work(), &env.plane.api_url(), &token),
    )
    .map_err(|e| e.to_string())?;
    let server = servers::start_headless_dns(
        env.work(),
        "headless-dns-sidecar",
        &kubeconfig,
        &["--namespace", "sidecar-demo"],
        None,
    )?;
    wait_for(Duration::from_secs(30), "the sidecar to be ready", || {
        ready(&server)
    })
    .map_err(|e| format!("{e}: {}", server.process.tail(10)))?;
    let asker = Asker::new(server.dns, Transport::Udp).await?;
    let name = "sidecar-example-dns.sidecar-demo.svc.cluster.local.";
    let reply = asker.reply(name, RecordType::A).await?;
    let want = format!("{name} A 10.244.50.7");
    if reply.rcode != ResponseCode::NoError || !reply.answers.contains(&want) {
        return Err(format!("{name}: {reply}"));
    }
    let log = std::fs::read_to_string(&server.process.log).unwrap_or_default();
    if let Some(line) = log.lines().find(|l| l.contains("\"WARN\"")) {
        return Err(format!("a warning with the sidecar's Role: {line}"));
    }
    Ok(format!(
        "{name} answered from the namespaced Role alone, no warning"
    ))
}

/// The files in-cluster configuration reads, in a directory that stands in for
/// `/var/run/secrets/kubernetes.io/serviceaccount` (bind-mounted there).
struct AccountFiles {
    dir: PathBuf,
}

impl AccountFiles {
    fn new(env: &Env, token: &str) -> Result<Self, String> {
        let dir = env.work().join("serviceaccount");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::copy(env.work().join("ca.crt"), dir.join("ca.crt")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("namespace"), "headless-dns").map_err(|e| e.to_string())?;
        let files = Self { dir };
        files.rotate(token)?;
        Ok(files)
    }

    /// Replaces the token in one step, as the kubelet does.
    fn rotate(&self, token: &str) -> Result<(), String> {
        let next = self.dir.join(".token.next");
        std::fs::write(&next, token).map_err(|e| e.to_string())?;
        std::fs::rename(&next, self.dir.join("token")).map_err(|e| e.to_string())
    }
}

/// A token of the shipped ServiceAccount bound to the Secret `secret`: deleting the Secret
/// revokes it (as deleting a pod revokes the kubelet's tokens for it).
async fn bound_token(env: &Env, secret: &str) -> Result<String, String> {
    let secrets: Api<Secret> = Api::namespaced(env.admin.clone(), "headless-dns");
    let created = api::create(&secrets, json!({"metadata": {"name": secret}})).await?;
    let uid = created.metadata.uid.unwrap_or_default();
    let spec = json!({"expirationSeconds": 3600,
                      "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": secret, "uid": uid}});
    servers::requested_token(&env.admin, "headless-dns", "headless-dns", spec).await
}

/// headless-dns in a private mount namespace where the account's files are at the in-cluster
/// path, with `KUBERNETES_SERVICE_HOST`/`_PORT` set and no kubeconfig anywhere (an empty home,
/// no `KUBECONFIG`): the shipped Deployment's way to the API.
fn start_in_cluster(env: &Env, files: &AccountFiles) -> Result<Server, String> {
    let (dns_port, http_port) = (free_port(), free_port());
    let home = env.work().join("empty-home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let script = format!(
        r#"set -eu
run=$(readlink -f /var/run)
mount -t tmpfs tmpfs "$run"
mkdir -p "$run/secrets/kubernetes.io/serviceaccount"
mount --bind "{files}" "$run/secrets/kubernetes.io/serviceaccount"
exec "{BINARY}" --listen 127.0.0.1:{dns_port} --http-listen 127.0.0.1:{http_port} \
  --log-format json --udp-threads 1
"#,
        files = files.dir.display()
    );
    let mut command = Command::new("unshare");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        command.args(["--user", "--map-root-user"]);
    }
    // No --fork: unshare and then sh exec, so the process handle is headless-dns's own.
    command
        .args(["--mount", "sh", "-c", &script])
        .env_remove("KUBECONFIG")
        .env("HOME", &home)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", env.plane.api_port.to_string());
    let process = Process::spawn(env.work(), "headless-dns-in-cluster", command)?;
    Ok(Server {
        process,
        dns: control_plane::loopback(dns_port),
        http: Some(control_plane::loopback(http_port)),
    })
}

/// A value of the server's `/metrics`: the sample whose name (with labels) is `series`.
pub fn metric(server: &Server, series: &str) -> Option<f64> {
    let http = server.http?;
    let output = Command::new("curl")
        .args(["-sf", "--max-time", "2"])
        .arg(format!("http://{http}/metrics"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// In-cluster configuration through a rotated token: headless-dns starts with a token; the
/// file is replaced by a new token and the old one revoked. Once the client has had time to
/// read the file again (kube's client does so about once a minute), every watch is made again
/// without a credential being refused, nothing is behind, and a change is served.
pub async fn in_cluster_token_rotated(env: &mut Env) -> Result<String, String> {
    let first = bound_token(env, "rotation-1").await?;
    let second = bound_token(env, "rotation-2").await?;
    let files = AccountFiles::new(env, &first)?;
    let server = start_in_cluster(env, &files)?;
    wait_for(
        Duration::from_secs(30),
        "headless-dns in-cluster to be ready",
        || ready(&server),
    )
    .map_err(|e| format!("{e}: {}", server.process.tail(10)))?;
    let url = env.plane.api_url();
    let log = std::fs::read_to_string(&server.process.log).unwrap_or_default();
    if !log.contains(&url) {
        return Err(format!(
            "no line naming the in-cluster API URL {url}: {}",
            server.process.tail(5)
        ));
    }
    let ns = "rotation";
    api::namespace(&env.admin, ns).await?;
    api::service(&env.admin, ns, &ServiceSpec::headless("web", "web")).await?;
    let asker = Asker::new(server.dns, Transport::Udp).await?;
    let served = |ip: &'static str| {
        let asker = &asker;
        async move {
            let reply = asker
                .reply("web.rotation.svc.cluster.local.", RecordType::A)
                .await?;
            let want = format!("web.rotation.svc.cluster.local. A {ip}");
            if reply.answers.contains(&want) {
                Ok(())
            } else {
                Err(format!("{reply}"))
            }
        }
    };
    api::pod(
        &env.admin,
        ns,
        "node-a",
        &PodSpec::new("web-1", "web", &["10.244.60.1"]),
    )
    .await?;
    crate::cases::eventually(Duration::from_secs(10), || served("10.244.60.1")).await?;

    files.rotate(&second)?;
    let secrets: Api<Secret> = Api::namespaced(env.admin.clone(), "headless-dns");
    secrets
        .delete("rotation-1", &DeleteParams::default())
        .await
        .map_err(|e| e.to_string())?;
    // Past the client's next read of the file (at most 60 s after the last one).
    tokio::time::sleep(Duration::from_secs(65)).await;
    const REFUSED: &str = "headless_dns_kubernetes_api_errors_total{cause=\"unauthorized\"}";
    const RESTARTS: &str = "headless_dns_kubernetes_watch_restarts_total";
    // An outage the revoked token caused before the re-read ends once every watch that failed
    // is answered again (they back off up to 30 s).
    wait_for(Duration::from_secs(90), "the source to catch up", || {
        metric(&server, "headless_dns_seconds_behind_source") == Some(0.0)
    })
    .map_err(|e| format!("{e}: {}", server.process.tail(5)))?;
    let refused_before = metric(&server, REFUSED).unwrap_or(0.0);
    let restarts_before = metric(&server, RESTARTS).ok_or("no watch restarts in /metrics")?;
    // Every watch (4 kinds) made again after that, each with the token now in the file.
    wait_for(
        Duration::from_secs(60),
        "every watch to be made again",
        || metric(&server, RESTARTS).is_some_and(|n| n >= restarts_before + 4.0),
    )
    .map_err(|e| format!("{e}: {}", server.process.tail(5)))?;
    let refused_after = metric(&server, REFUSED).unwrap_or(0.0);
    if refused_after != refused_before {
        return Err(format!(
            "the revoked token was used again after the client re-read the file: {} refusal(s); {}",
            refused_after - refused_before,
            server.process.tail(5)
        ));
    }
    let behind = metric(&server, "headless_dns_seconds_behind_source");
    if behind != Some(0.0) {
        return Err(format!("behind the API after the rotation: {behind:?} s"));
    }
    api::pod(
        &env.admin,
        ns,
        "node-a",
        &PodSpec::new("web-2", "web", &["10.244.60.2"]),
    )
    .await?;
    let next = crate::cases::eventually(Duration::from_secs(30), || served("10.244.60.2")).await?;
    Ok(format!(
        "in-cluster configuration (no kubeconfig); token replaced on disk and the old one \
         revoked: {refused_before} refusal(s) of the old token before the client re-read the \
         file, then every watch made again with the new one, nothing behind, a change served \
         in {:.0} ms",
        next.as_secs_f64() * 1000.0
    ))
}
