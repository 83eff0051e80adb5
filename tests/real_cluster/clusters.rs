//! Several clusters in one headless-dns (`--cluster`), against two real API servers: the
//! tier's own control plane as `east`, and a second one (etcd, kube-apiserver,
//! kube-controller-manager) started here as `west`, both with the MCS CRDs and the Service
//! exported from both (clusterset.local made from the ServiceExports). West's kube-apiserver is
//! killed and restarted while east's names keep answering and following.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::Env;
use crate::api::{self, PodSpec, ServiceSpec};
use crate::cases::eventually;
use crate::control_plane::{ADMIN_TOKEN, ControlPlane, kubeconfig_of, wait_for};
use crate::dns::{Asker, Transport};
use crate::servers::{ready, start_headless_dns};

const NAMESPACE: &str = "several";

fn name(host: &str, cluster: &str) -> String {
    format!("{host}.nginx-svc.{NAMESPACE}.svc.{cluster}.cluster.local.")
}

/// The seeds' headless Service and `pods` (name, address) in `client`'s cluster.
async fn seed(client: &kube::Client, pods: &[(&str, &str)]) -> Result<(), String> {
    api::namespace(client, NAMESPACE).await?;
    api::service(
        client,
        NAMESPACE,
        &ServiceSpec::headless("nginx-svc", "nginx"),
    )
    .await?;
    for (pod, ip) in pods {
        add(client, pod, ip).await?;
    }
    Ok(())
}

async fn add(client: &kube::Client, pod: &str, ip: &str) -> Result<(), String> {
    let spec = PodSpec::new(pod, "nginx", &[ip]).named(pod, "nginx-svc");
    api::pod(client, NAMESPACE, "node-a", &spec).await
}

/// Waits until `name` answers exactly `ip`.
async fn serves(asker: &Asker, name: &str, ip: &str) -> Result<Duration, String> {
    serves_all(asker, name, &[ip]).await
}

/// Waits until `name` answers exactly `ips`.
async fn serves_all(asker: &Asker, name: &str, ips: &[&str]) -> Result<Duration, String> {
    let want: BTreeSet<String> = ips.iter().map(|ip| ip.to_string()).collect();
    eventually(Duration::from_secs(60), || async {
        let got = asker.addresses(name).await?;
        if got == want {
            Ok(())
        } else {
            Err(format!("{name}: {got:?}, not {want:?}"))
        }
    })
    .await
}

pub async fn two_api_servers(env: &mut Env) -> Result<String, String> {
    let west_work = env.work().join("west");
    std::fs::create_dir_all(&west_work).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut west = ControlPlane::start(&env.plane.bin, &west_work)?;
    let second_plane = started.elapsed();
    let mut west_admin = api::client(&west.admin).await?;
    api::nodes(&west_admin, &["node-a"]).await?;
    west.install_mcs_crds()?;
    seed(&env.admin, &[("web-0", "10.10.0.5")]).await?;
    seed(&west_admin, &[("web-0", "10.20.0.7")]).await?;
    let export = format!(
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\n\
         metadata: {{name: nginx-svc, namespace: {NAMESPACE}}}\n"
    );
    env.plane.apply(&export)?;
    west.apply(&export)?;

    let (east_url, west_url) = (env.plane.api_url(), west.api_url());
    let kubeconfig = env.work().join("clusters.kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubeconfig_of(&[
            ("kind-east", &env.plane.work, &east_url, ADMIN_TOKEN),
            ("kind-west", &west.work, &west_url, ADMIN_TOKEN),
        ]),
    )
    .map_err(|e| e.to_string())?;
    let hdns = start_headless_dns(
        env.work(),
        "headless-dns-clusters",
        &kubeconfig,
        &["--cluster", "east=kind-east", "--cluster", "west=kind-west"],
        None,
    )?;
    wait_for(
        Duration::from_secs(30),
        "headless-dns (two clusters) to be ready",
        || ready(&hdns),
    )
    .map_err(|e| format!("{e}:\n{}", hdns.process.tail(20)))?;
    let asker = Asker::new(hdns.dns, Transport::Udp).await?;
    let tcp = Asker::new(hdns.dns, Transport::Tcp).await?;
    serves(&asker, &name("web-0", "east"), "10.10.0.5").await?;
    serves(&tcp, &name("web-0", "west"), "10.20.0.7").await?;
    let set = format!("nginx-svc.{NAMESPACE}.svc.clusterset.local.");
    serves_all(&asker, &set, &["10.10.0.5", "10.20.0.7"]).await?;
    serves(&tcp, &format!("web-0.west.{set}"), "10.20.0.7").await?;

    // West's API server killed: its names answer from the last state, east's follow a change.
    west.stop_apiserver();
    let down = Instant::now();
    add(&env.admin, "web-1", "10.10.0.6").await?;
    let east_followed = serves(&asker, &name("web-1", "east"), "10.10.0.6").await?;
    serves_all(&asker, &set, &["10.10.0.5", "10.10.0.6", "10.20.0.7"]).await?;
    let mut rounds = 0;
    while down.elapsed() < Duration::from_secs(5) {
        serves(&asker, &name("web-0", "west"), "10.20.0.7")
            .await
            .map_err(|e| format!("while west's API server was down: {e}"))?;
        let missing = asker.reply(&name("nope", "west"), RecordType::A).await?;
        if missing.rcode != ResponseCode::NXDomain {
            return Err(format!(
                "west's missing name answered {missing} while its API server was down"
            ));
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Restarted (a new watch cache, etcd as it was): west follows again.
    west.start_apiserver()?;
    let restarted = Instant::now();
    west_admin = api::client(&west.admin).await?;
    add(&west_admin, "web-1", "10.20.0.8").await?;
    serves(&asker, &name("web-1", "west"), "10.20.0.8").await?;
    let west_followed = restarted.elapsed();
    serves_all(
        &asker,
        &set,
        &["10.10.0.5", "10.10.0.6", "10.20.0.7", "10.20.0.8"],
    )
    .await?;
    serves(&asker, &name("web-0", "east"), "10.10.0.5").await?;
    let reverse = asker
        .reply("8.0.20.10.in-addr.arpa.", RecordType::PTR)
        .await?;
    let west1 = name("web-1", "west");
    if !format!("{reverse}").contains(&west1) {
        return Err(format!("PTR of 10.20.0.8: {reverse}"));
    }
    drop(hdns);
    drop(west);
    Ok(format!(
        "second control plane up in {:.1} s; with west's kube-apiserver down, east followed a new pod in \
         {:.1} s and west answered {rounds} rounds from its last state (no false NXDOMAIN); after \
         the restart a new west pod served in {:.1} s",
        second_plane.as_secs_f64(),
        east_followed.as_secs_f64(),
        west_followed.as_secs_f64()
    ))
}
