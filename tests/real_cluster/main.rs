//! The real-cluster tier: headless-dns against a real kube-apiserver, beside the real
//! EndpointSlice controller and CoreDNS, all started here from binaries that
//! `tests/real_cluster/build.sh` built at pinned versions. Run by `tests/real_cluster/run.sh`
//! (`cargo test --test real_cluster -- BIN_DIR`), not by a plain `cargo test`.
//!
//! headless-dns runs as a user deploys it: the ServiceAccount, ClusterRole and binding of
//! `config/deploy/headless-dns.yaml` are applied, and it reads the API with that account's token through
//! a kubeconfig. CoreDNS (kubernetes plugin, no cache, the same zone and TTL, `pods verified`,
//! `multicluster clusterset.local`) follows the same API server, where the Multi-Cluster Services
//! API's CRDs are installed. Each case prints one line; the run ends with `N passed, M
//! failed` and fails if any case did.

mod api;
mod cases;
mod clusters;
mod clusterset;
mod control_plane;
mod dns;
mod servers;
mod shipped;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kube::Client;

use control_plane::{ControlPlane, wait_for};
use servers::{Server, ready, start_headless_dns};

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

async fn environment(bin: &Path, work: &Path) -> Result<Env, String> {
    let plane = ControlPlane::start(bin, work)?;
    let admin = api::client(&plane.admin).await?;
    api::nodes(&admin, &["node-a", "node-b"]).await?;
    // Before headless-dns starts: it asks at start whether ServiceImports are served.
    plane.install_mcs_crds()?;
    let hdns_kubeconfig = servers::deployed_account(&plane, &admin).await?;
    let hdns = start_headless_dns(work, "headless-dns", &hdns_kubeconfig, &[], None)?;
    let coredns = servers::start_coredns(&plane, None)?;
    wait_for(Duration::from_secs(30), "headless-dns to be ready", || {
        ready(&hdns)
    })
    .map_err(|e| format!("{e}:\n{}", hdns.process.tail(20)))?;
    let version = dns::Asker::new(coredns.dns, dns::Transport::Udp).await?;
    let started = Instant::now();
    loop {
        if let Ok(reply) = version
            .reply(
                "dns-version.cluster.local.",
                hickory_proto::rr::RecordType::TXT,
            )
            .await
            && !reply.answers.is_empty()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "CoreDNS never answered:\n{}",
                coredns.process.tail(20)
            ));
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
             (tests/real_cluster/run.sh builds them and passes it)"
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
