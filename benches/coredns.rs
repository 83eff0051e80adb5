//! headless-dns and CoreDNS side by side, both following one real kube-apiserver (the
//! real-cluster tier's control plane) that holds the cluster `gen_cluster.py` generated for
//! `dnsperf.sh`. Run by `benches/coredns.sh`, which builds the control plane and the cluster:
//!
//!     cargo bench --bench coredns -- BIN_DIR CLUSTER_DIR
//!
//! Both servers run on SERVER_CPU from their first instruction (CoreDNS's Go runtime then sizes
//! itself to that one CPU, as headless-dns's UDP threads do); dnsperf, this process and the
//! control plane on CLIENT_CPU. It prints, for both: the time from start to the first complete
//! answer, RSS, queries/s per mix and the ratio (A B A B, medians), server CPU per query, p99
//! latency at a fixed rate, and watch event -> answer latency for readiness flips made through
//! the API.

#[allow(dead_code)]
#[path = "../tests/real_cluster/api.rs"]
mod api;
#[allow(dead_code)]
#[path = "../tests/real_cluster/control_plane.rs"]
mod control_plane;
#[allow(dead_code)]
#[path = "../tests/real_cluster/dns.rs"]
mod dns;
#[allow(dead_code)]
#[path = "../tests/real_cluster/servers.rs"]
mod servers;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use control_plane::ControlPlane;
use dns::{Asker, Transport};
use servers::Server;

/// Settings from the environment, as `dnsperf.sh` takes them.
struct Settings {
    /// RELISTS=1: the two re-list scenarios (kube-apiserver restarted, etcd compacted).
    relists: bool,
    rounds: usize,
    duration: u64,
    fixed_qps: u64,
    cpu_seconds: u64,
    mixes: Vec<String>,
    p99_mixes: Vec<String>,
    flips: usize,
    start_rounds: usize,
    server_cpu: String,
    client_cpu: String,
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

impl Settings {
    fn from_env() -> Self {
        let number = |name: &str, default: &str| {
            setting(name, default)
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        };
        let words = |name: &str, default: &str| -> Vec<String> {
            setting(name, default)
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        Self {
            rounds: number("ROUNDS", "3") as usize,
            duration: number("DURATION", "10"),
            fixed_qps: number("FIXED_QPS", "10000"),
            cpu_seconds: number("CPU_SECONDS", "5"),
            mixes: words("MIXES", "pods svcs mix"),
            p99_mixes: words("P99_MIXES", "pods svcs mix"),
            flips: number("FLIPS", "100") as usize,
            relists: number("RELISTS", "0") == 1,
            start_rounds: number("START_ROUNDS", "3") as usize,
            server_cpu: setting("SERVER_CPU", "1"),
            client_cpu: setting("CLIENT_CPU", "0"),
        }
    }
}

/// The generated cluster: its objects, and one Service's complete answer to probe for.
struct Cluster {
    dir: PathBuf,
    namespaces: BTreeSet<String>,
    services: Vec<Value>,
    pods: Vec<Value>,
    /// The last headless Service's name and the addresses of its pods.
    probe: (String, BTreeSet<String>),
}

fn read_cluster(dir: &Path) -> Result<Cluster, String> {
    let path = dir.join("manifests.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let list: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let items = list["items"].as_array().ok_or("manifests.json: no items")?;
    let (mut services, mut pods, mut namespaces) = (Vec::new(), Vec::new(), BTreeSet::new());
    for item in items {
        namespaces.insert(
            item["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        );
        match item["kind"].as_str() {
            Some("Service") => services.push(item.clone()),
            Some("Pod") => pods.push(item.clone()),
            _ => {}
        }
    }
    let last = services
        .iter()
        .rev()
        .find(|s| s["spec"]["clusterIP"] == "None")
        .ok_or("no headless Service in the cluster")?;
    let (svc, ns) = (
        last["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        last["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let addresses = pods
        .iter()
        .filter(|p| p["metadata"]["namespace"] == ns && p["metadata"]["labels"]["app"] == svc)
        .filter_map(|p| p["status"]["podIP"].as_str().map(String::from))
        .collect();
    Ok(Cluster {
        dir: dir.to_path_buf(),
        namespaces,
        services,
        pods,
        probe: (format!("{svc}.{ns}.svc.cluster.local."), addresses),
    })
}

/// Writes the cluster through the API: Services (ClusterIPs left to the API server to allocate,
/// as the generated ones may be taken), then each pod created on a node and given its status, as
/// a kubelet would; `parallel` requests at a time.
async fn load(client: &Client, cluster: &Cluster, parallel: usize) -> Result<(), String> {
    for ns in &cluster.namespaces {
        api::namespace(client, ns).await?;
    }
    api::nodes(client, &["node-a", "node-b"]).await?;
    futures_util::stream::iter(cluster.services.iter().map(Ok))
        .try_for_each_concurrent(parallel, |service| async move {
            let mut service = service.clone();
            if let Some(spec) = service["spec"].as_object_mut()
                && spec.get("clusterIP") != Some(&json!("None"))
            {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            let ns = service["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let api: Api<Service> = Api::namespaced(client.clone(), &ns);
            api::create(&api, service).await.map(|_| ())
        })
        .await?;
    let started = Instant::now();
    futures_util::stream::iter(cluster.pods.iter().enumerate().map(Ok))
        .try_for_each_concurrent(parallel, |(i, pod)| async move {
            let mut object = pod.clone();
            let status = object
                .as_object_mut()
                .and_then(|o| o.remove("status"))
                .unwrap_or_default();
            object["spec"]["nodeName"] = json!(if i % 2 == 0 { "node-a" } else { "node-b" });
            let ns = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let typed: Pod = serde_json::from_value(object).map_err(|e| e.to_string())?;
            api.create(&PostParams::default(), &typed)
                .await
                .map_err(|e| format!("pod {ns}/{name}: {e}"))?;
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("pod {ns}/{name} status: {e}"))
        })
        .await?;
    eprintln!(
        "loaded {} Services and {} pods in {:.1} s",
        cluster.services.len(),
        cluster.pods.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until the EndpointSlice controller has published every pod as a ready endpoint:
/// CoreDNS answers from the slices, so before that it is not yet serving the same cluster.
async fn slices_settled(client: &Client, pods: usize) -> Result<(), String> {
    let api: Api<EndpointSlice> = Api::all(client.clone());
    let started = Instant::now();
    loop {
        let mut ready = 0;
        let mut continue_token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(500);
            if let Some(token) = &continue_token {
                params = params.continue_token(token);
            }
            let page = api.list(&params).await.map_err(|e| e.to_string())?;
            ready += page
                .items
                .iter()
                .flat_map(|s| &s.endpoints)
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
                .count();
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(token) => continue_token = Some(token),
                None => break,
            }
        }
        if ready >= pods {
            eprintln!(
                "EndpointSlices settled: {ready} ready endpoints, {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "the EndpointSlice controller published {ready} of {pods} endpoints in 10 minutes"
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Milliseconds from `started` until `server` gives the complete answer for `name`: one process
/// asking every 10 ms (a probe per attempt would take CPU from the loading server).
fn first_complete_answer(
    server: SocketAddr,
    name: &str,
    want: &BTreeSet<String>,
    started: Instant,
) -> Result<u128, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_millis(10)))
        .map_err(|e| e.to_string())?;
    let mut query = Message::query();
    query.metadata.id = 0x4844;
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(
        Name::from_ascii(name).map_err(|e| e.to_string())?,
        RecordType::A,
    ));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(300) {
        if socket.send_to(&bytes, server).is_err() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let Ok(n) = socket.recv(&mut buffer) else {
            continue;
        };
        let Ok(reply) = Message::from_vec(&buffer[..n]) else {
            continue;
        };
        let got: BTreeSet<String> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect();
        if reply.metadata.id == 0x4844 && &got == want {
            return Ok(started.elapsed().as_millis());
        }
    }
    Err(format!("{server} never answered {name} completely"))
}

fn rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmRSS:")
}

/// The most memory `pid` has held resident so far.
fn peak_rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmHWM:")
}

/// A `/proc/<pid>/status` figure in kB, as MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; count from the closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Every thread of `pid` onto `cpus`.
fn pin(pid: u32, cpus: &str) {
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output();
}

/// dnsperf on CLIENT_CPU, one thread and one client, against `server` with queries `file`.
fn dnsperf_command(settings: &Settings, server: SocketAddr, file: &Path) -> Command {
    let mut command = Command::new("taskset");
    command
        .args(["-c", &settings.client_cpu, "dnsperf", "-s", "127.0.0.1"])
        .args(["-p", &server.port().to_string(), "-d"])
        .arg(file)
        .args(["-T", "1", "-c", "1"]);
    command
}

/// One dnsperf run against `server` with queries `file`; its standard output.
fn dnsperf(settings: &Settings, server: SocketAddr, file: &Path, extra: &[&str]) -> String {
    let output = dnsperf_command(settings, server, file)
        .args(extra)
        .output()
        .expect("dnsperf runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The number after `label` in dnsperf's report.
fn reported(report: &str, label: &str) -> f64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(sorted.len() - 1) / 2]
}

/// The query file of `mix`.
fn queries(cluster: &Cluster, mix: &str) -> PathBuf {
    cluster.dir.join(format!("q-{mix}.txt"))
}

fn queries_per_second(settings: &Settings, server: SocketAddr, file: &Path) -> f64 {
    let duration = settings.duration.to_string();
    reported(
        &dnsperf(settings, server, file, &["-l", &duration, "-q", "500"]),
        "Queries per second:",
    )
}

/// Microseconds of `pid`'s CPU per query over CPU_SECONDS of full-speed queries.
fn cpu_per_query(settings: &Settings, server: &Server, file: &Path) -> f64 {
    let before = cpu_ticks(server.process.pid());
    let seconds = settings.cpu_seconds.to_string();
    let completed = reported(
        &dnsperf(settings, server.dns, file, &["-l", &seconds, "-q", "500"]),
        "Queries completed:",
    );
    let ticks = cpu_ticks(server.process.pid()) - before;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    if completed > 0.0 {
        ticks as f64 / hz * 1e6 / completed
    } else {
        0.0
    }
}

/// p99 latency in ms at FIXED_QPS over 5 s; dnsperf -v writes every latency to a file (through
/// a pipe it stalls and its latencies grow).
fn p99_at_fixed_rate(settings: &Settings, server: SocketAddr, file: &Path, work: &Path) -> f64 {
    let verbose = work.join("dnsperf-verbose.txt");
    let out = std::fs::File::create(&verbose).expect("a file for dnsperf's latencies");
    let qps = settings.fixed_qps.to_string();
    let status = dnsperf_command(settings, server, file)
        .args(["-l", "5", "-Q", &qps, "-v"])
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .status();
    if status.is_err() {
        return f64::NAN;
    }
    let text = std::fs::read_to_string(&verbose).unwrap_or_default();
    let mut latencies: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("> "))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    if latencies.is_empty() {
        return f64::NAN;
    }
    latencies.sort_by(f64::total_cmp);
    latencies[(latencies.len() as f64 * 0.99) as usize] * 1e3
}

/// Runs `measure` ROUNDS times on each server, A B A B; prints the medians and every round.
fn alternate(
    settings: &Settings,
    label: &str,
    decimals: usize,
    servers: [&Server; 2],
    mut measure: impl FnMut(&Server) -> f64,
) -> [f64; 2] {
    let mut runs = [Vec::new(), Vec::new()];
    for _ in 0..settings.rounds {
        for (i, server) in servers.iter().enumerate() {
            runs[i].push(measure(server));
        }
    }
    let medians = [median(&runs[0]), median(&runs[1])];
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.decimals$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "{label:<8} {:>14.decimals$} {:>14.decimals$} {:>8.2}   {} / {}",
        medians[0],
        medians[1],
        medians[0] / medians[1],
        show(&runs[0]),
        show(&runs[1])
    );
    medians
}

/// Readiness flips through the API, each timed from the write's return until each server's
/// answer reflects it (both asked at once, so both see the same event at the same moment).
async fn watch_latency(
    client: &Client,
    cluster: &Cluster,
    servers: [&Server; 2],
    flips: usize,
) -> Result<[Vec<Duration>; 2], String> {
    let askers = [
        Asker::new(servers[0].dns, Transport::Udp).await?,
        Asker::new(servers[1].dns, Transport::Udp).await?,
    ];
    let mut latencies = [Vec::new(), Vec::new()];
    let step = (cluster.pods.len() / flips.max(1)).max(1);
    for pod in cluster.pods.iter().step_by(step).take(flips) {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let svc = pod["spec"]["subdomain"].as_str().unwrap_or_default();
        let ip = pod["status"]["podIP"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let qname = format!(
            "{}.{svc}.{ns}.svc.cluster.local.",
            pod["spec"]["hostname"].as_str().unwrap_or(name)
        );
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        for ready in [false, true] {
            let want: BTreeSet<String> = if ready {
                BTreeSet::from([ip.clone()])
            } else {
                BTreeSet::new()
            };
            let condition = json!({"status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
            api.patch_status(name, &PatchParams::default(), &Patch::Strategic(condition))
                .await
                .map_err(|e| format!("pod {ns}/{name}: {e}"))?;
            let written = Instant::now();
            let (a, b) = tokio::join!(
                reflects(&askers[0], &qname, &want, written),
                reflects(&askers[1], &qname, &want, written)
            );
            latencies[0].push(a?);
            latencies[1].push(b?);
        }
    }
    Ok(latencies)
}

/// Time from `written` until `asker`'s server answers `qname` with `want` (asked every 1 ms).
async fn reflects(
    asker: &Asker,
    qname: &str,
    want: &BTreeSet<String>,
    written: Instant,
) -> Result<Duration, String> {
    loop {
        if &asker.addresses(qname).await? == want {
            return Ok(written.elapsed());
        }
        if written.elapsed() > Duration::from_secs(30) {
            return Err(format!("{qname} never answered {want:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What disrupts both servers' watches so that they list again.
#[derive(Clone, Copy, Debug)]
enum Disruption {
    /// kube-apiserver killed and started again: its watch cache starts empty, and a watch
    /// from a version it has not seen meets 410.
    ApiserverRestart,
    /// Both servers stopped (SIGSTOP) while kube-apiserver restarts without a watch cache and
    /// etcd compacts every revision they saw: resumed, their watches meet 410 from etcd.
    Compaction,
}

/// The re-list scenarios, each measured for both servers: peak RSS during it (VmHWM reset
/// first, through `clear_refs`) against the RSS before, answers to known names asked all
/// along (any that is not the full answer counts, a false NXDOMAIN among them), and the time
/// until a pod made after the disruption is served by both.
async fn relists(
    plane: &mut ControlPlane,
    cluster: &Cluster,
    servers: [&Server; 2],
    client_cpu: &str,
) -> Result<(), String> {
    let known: Vec<(String, BTreeSet<String>)> = cluster
        .pods
        .iter()
        .step_by((cluster.pods.len() / 50).max(1))
        .map(|pod| {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            let svc = pod["spec"]["subdomain"].as_str().unwrap_or_default();
            let host = pod["spec"]["hostname"].as_str().unwrap_or_default();
            let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
            (
                format!("{host}.{svc}.{ns}.svc.cluster.local."),
                BTreeSet::from([ip.to_string()]),
            )
        })
        .chain([cluster.probe.clone()])
        .collect();
    let (ns, svc) = {
        let pod = &cluster.pods[0];
        (
            pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            pod["spec"]["subdomain"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    println!();
    println!(
        "re-lists at {} pods: peak RSS during each against the RSS before, wrong answers to {} known names asked all along",
        cluster.pods.len(),
        known.len()
    );
    for (n, disruption) in [Disruption::ApiserverRestart, Disruption::Compaction]
        .into_iter()
        .enumerate()
    {
        let pids = servers.map(|s| s.process.pid());
        let before = pids.map(rss_mb);
        for pid in pids {
            std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
                .map_err(|e| format!("resetting the peak RSS of {pid}: {e}"))?;
        }
        let asking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let askers = [
            Asker::new(servers[0].dns, Transport::Udp).await?,
            Asker::new(servers[1].dns, Transport::Udp).await?,
        ];
        let prober = {
            let asking = asking.clone();
            let known = known.clone();
            tokio::spawn(async move {
                let (mut asked, mut wrong) = ([0u64; 2], [0u64; 2]);
                while asking.load(std::sync::atomic::Ordering::Relaxed) {
                    for (name, want) in &known {
                        for (i, asker) in askers.iter().enumerate() {
                            // A stopped server does not answer: that is not a wrong answer.
                            if let Ok(got) = asker.addresses(name).await {
                                asked[i] += 1;
                                wrong[i] += u64::from(&got != want);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (asked, wrong)
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        match disruption {
            Disruption::ApiserverRestart => {
                plane.stop_apiserver();
                plane.start_apiserver()?;
            }
            Disruption::Compaction => {
                for server in servers {
                    server.process.signal(libc::SIGSTOP);
                }
                plane.stop_apiserver();
                let restarted = plane.start_apiserver_with(&[
                    "--watch-cache=false".into(),
                    "--etcd-compaction-interval=2s".into(),
                ]);
                if restarted.is_ok() {
                    // Two compaction rounds after a write: every revision they saw is gone.
                    let admin = api::client(&plane.admin).await?;
                    api::namespace(&admin, "relist-compaction").await?;
                    tokio::time::sleep(Duration::from_secs(6)).await;
                }
                for server in servers {
                    server.process.signal(libc::SIGCONT);
                }
                restarted?;
            }
        }
        if let Some(apiserver) = &plane.apiserver {
            pin(apiserver.pid(), client_cpu);
        }
        let disrupted = Instant::now();
        let admin = api::client(&plane.admin).await?;
        let name = format!("relist-{n}");
        let ip = format!("10.254.0.{}", n + 1);
        let pod = api::PodSpec::new(&name, &svc, &[&ip]).named(&name, &svc);
        api::pod(&admin, &ns, "node-a", &pod).await?;
        let qname = format!("{name}.{svc}.{ns}.svc.cluster.local.");
        let want = BTreeSet::from([ip.clone()]);
        let askers = [
            Asker::new(servers[0].dns, Transport::Udp).await?,
            Asker::new(servers[1].dns, Transport::Udp).await?,
        ];
        let mut served = [None, None];
        while served.iter().any(Option::is_none) && disrupted.elapsed() < Duration::from_secs(600) {
            for (i, asker) in askers.iter().enumerate() {
                if served[i].is_none() && asker.addresses(&qname).await.ok().as_ref() == Some(&want)
                {
                    served[i] = Some(disrupted.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        asking.store(false, std::sync::atomic::Ordering::Relaxed);
        let (asked, wrong) = prober.await.map_err(|e| e.to_string())?;
        let peak = pids.map(peak_rss_mb);
        let seconds =
            |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()));
        println!(
            "{disruption:?}: headless-dns {:.1} MB before, peak {:.1} MB ({:.2}x), {} wrong of {} answers, new pod served after {}; CoreDNS {:.1} MB before, peak {:.1} MB ({:.2}x), {} wrong of {} answers, new pod served after {}",
            before[0],
            peak[0],
            peak[0] / before[0],
            wrong[0],
            asked[0],
            seconds(served[0]),
            before[1],
            peak[1],
            peak[1] / before[1],
            wrong[1],
            asked[1],
            seconds(served[1])
        );
    }
    Ok(())
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [bin, cluster_dir] = &args[..] else {
        eprintln!(
            "usage: cargo bench --bench coredns -- BIN_DIR CLUSTER_DIR (benches/coredns.sh runs it)"
        );
        std::process::exit(2);
    };
    if let Err(e) = run(Path::new(bin), Path::new(cluster_dir)) {
        eprintln!("coredns bench: {e}");
        std::process::exit(1);
    }
}

fn run(bin: &Path, cluster_dir: &Path) -> Result<(), String> {
    let settings = Settings::from_env();
    let cluster = read_cluster(cluster_dir)?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // This process asks and loads from the client CPU, beside dnsperf.
    pin(std::process::id(), &settings.client_cpu);
    let mut plane = ControlPlane::start(bin, work.path())?;
    // WATCH_LIST=1: kube-apiserver with streaming lists (its WatchList gate, off in 1.33), and
    // headless-dns started a fourth way, with `--initial-list stream`.
    let watch_list = std::env::var("WATCH_LIST").is_ok_and(|v| v == "1");
    if watch_list {
        plane.start_apiserver_with(&["--feature-gates=WatchList=true".to_string()])?;
    }
    for process in [&plane.etcd, &plane.apiserver, &plane.controllers]
        .into_iter()
        .flatten()
    {
        pin(process.pid(), &settings.client_cpu);
    }
    let admin = runtime.block_on(api::client(&plane.admin))?;
    let hdns_kubeconfig = runtime.block_on(async {
        load(&admin, &cluster, 16).await?;
        slices_settled(&admin, cluster.pods.len()).await?;
        servers::deployed_account(&plane, &admin).await
    })?;

    let (probe_name, probe_want) = &cluster.probe;
    let cpu = Some(settings.server_cpu.as_str());
    let (work_dir, kubeconfig) = (work.path(), &hdns_kubeconfig);
    let hdns_with = |name: &'static str, flags: &'static [&'static str]| {
        move || servers::start_headless_dns(work_dir, name, kubeconfig, flags, cpu)
    };
    let start_hdns = hdns_with("headless-dns", &[]);
    let start_coredns = || servers::start_coredns(&plane, cpu);
    // headless-dns asking for JSON only: what protobuf changes, measured in the same sitting.
    let start_hdns_json = hdns_with("headless-dns-json", &["--api-encoding", "json"]);
    let start_hdns_stream = hdns_with("headless-dns-stream", &["--initial-list", "stream"]);
    let mut starters: Vec<&dyn Fn() -> Result<Server, String>> =
        vec![&start_hdns, &start_coredns, &start_hdns_json];
    if watch_list {
        starters.push(&start_hdns_stream);
    }
    // Start-up, A B C A B C: each server started alone and timed to its first complete answer,
    // its RSS then and its peak so far read; the last start of headless-dns and CoreDNS stays
    // for the rest.
    let mut starts: Vec<Vec<[f64; 3]>> = vec![Vec::new(); starters.len()];
    let mut kept = [None, None];
    for round in 0..settings.start_rounds {
        for (i, start) in starters.iter().enumerate() {
            let started = Instant::now();
            let server = start()?;
            let ms = first_complete_answer(server.dns, probe_name, probe_want, started)
                .map_err(|e| format!("{e}\n{}", server.process.tail(10)))?;
            let pid = server.process.pid();
            starts[i].push([ms as f64, rss_mb(pid), peak_rss_mb(pid)]);
            if round + 1 == settings.start_rounds && i < 2 {
                kept[i] = Some(server);
            }
        }
    }
    let [Some(hdns), Some(coredns)] = kept else {
        return Err("START_ROUNDS must be 1 or more".into());
    };
    let both = [&hdns, &coredns];
    let column =
        |i: usize, field: usize| -> Vec<f64> { starts[i].iter().map(|s| s[field]).collect() };
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };

    println!();
    println!(
        "cluster: {} Services, {} pods in a real kube-apiserver; servers on CPU {}, dnsperf and the control plane on CPU {}; {} rounds of {} s, A B A B",
        cluster.services.len(),
        cluster.pods.len(),
        settings.server_cpu,
        settings.client_cpu,
        settings.rounds,
        settings.duration
    );
    println!(
        "start to first complete answer, median of {}: headless-dns {:.0} ms, CoreDNS {:.0} ms, headless-dns asking JSON only {:.0} ms   rounds {} / {} / {}",
        settings.start_rounds,
        median(&column(0, 0)),
        median(&column(1, 0)),
        median(&column(2, 0)),
        rounds(&column(0, 0)),
        rounds(&column(1, 0)),
        rounds(&column(2, 0))
    );
    if watch_list {
        println!(
            "headless-dns with --initial-list stream: median {:.0} ms   rounds {}; RSS then {:.1} MB, peak {:.1} MB",
            median(&column(3, 0)),
            rounds(&column(3, 0)),
            median(&column(3, 1)),
            median(&column(3, 2))
        );
    }
    println!(
        "RSS at that answer: headless-dns {:.1} MB, CoreDNS {:.1} MB, JSON only {:.1} MB; peak until then {:.1} / {:.1} / {:.1} MB",
        median(&column(0, 1)),
        median(&column(1, 1)),
        median(&column(2, 1)),
        median(&column(0, 2)),
        median(&column(1, 2)),
        median(&column(2, 2))
    );

    if !settings.mixes.is_empty() {
        println!();
        println!(
            "{:<8} {:>14} {:>14} {:>8}   rounds (headless-dns / CoreDNS)",
            "mix", "headless q/s", "CoreDNS q/s", "ratio"
        );
        for mix in &settings.mixes {
            let file = queries(&cluster, mix);
            alternate(&settings, mix, 0, both, |s| {
                queries_per_second(&settings, s.dns, &file)
            });
        }
        println!();
        println!(
            "{:<8} {:>14} {:>14} {:>8}   rounds",
            "mix", "headless µs/q", "CoreDNS µs/q", "ratio"
        );
        for mix in &settings.mixes {
            let file = queries(&cluster, mix);
            alternate(&settings, mix, 2, both, |s| {
                cpu_per_query(&settings, s, &file)
            });
        }
        println!("(server CPU per query; ratio below 1.0: headless-dns does less work)");
    }
    if !settings.p99_mixes.is_empty() {
        println!();
        println!(
            "{:<8} {:>14} {:>14} {:>8}   rounds",
            "mix", "headless p99", "CoreDNS p99", "ratio"
        );
        for mix in &settings.p99_mixes {
            let file = queries(&cluster, mix);
            alternate(&settings, mix, 3, both, |s| {
                p99_at_fixed_rate(&settings, s.dns, &file, work.path())
            });
        }
        println!(
            "(p99 latency in ms at a fixed {} q/s, 5 s per round)",
            settings.fixed_qps
        );
    }
    if settings.relists {
        let client_cpu = settings.client_cpu.clone();
        runtime.block_on(relists(&mut plane, &cluster, both, &client_cpu))?;
    }
    if settings.flips > 0 {
        let [mut a, mut b] =
            runtime.block_on(watch_latency(&admin, &cluster, both, settings.flips))?;
        a.sort();
        b.sort();
        println!();
        println!(
            "watch event -> answer, {} readiness changes through the API: headless-dns p50 {:.1} ms p99 {:.1} ms max {:.1} ms; CoreDNS p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
            a.len(),
            percentile(&a, 0.5),
            percentile(&a, 0.99),
            percentile(&a, 1.0),
            percentile(&b, 0.5),
            percentile(&b, 0.99),
            percentile(&b, 1.0)
        );
    }
    println!(
        "RSS at the end: headless-dns {:.1} MB, CoreDNS {:.1} MB",
        rss_mb(hdns.process.pid()),
        rss_mb(coredns.process.pid())
    );
    // The servers, then the control plane, stop as their handles drop.
    Ok(())
}
