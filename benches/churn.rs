//! The cost of pod churn on answering, two ways:
//! 1. the cluster state's own work per pod change (apply, rebuild the Service's answers, publish a
//!    view), timed without sockets: at 1,000 changes/s, that is the share of a core taken from
//!    answering; then the same with the journal of record changes kept for IXFR (with
//!    `--allow-transfer`), and a re-list of every object (as after a watch's 410), both ways;
//! 2. dnsperf's queries/s against headless-dns following the test API server, quiet and while
//!    1,000 pod readiness changes per second flow through the watch, alternated (quiet, churn,
//!    quiet, churn, ...). Placed as in `dnsperf.sh`: every thread of the server on CPU
//!    `SERVER_CPU` (default 1), dnsperf on `CLIENT_CPU` (default 0), and the test API server, which
//!    stands for the cluster's API server and generates the churn, with dnsperf. On two cores it
//!    can only share one, so the wall-clock figure includes what it takes from dnsperf.
//!
//! Prints figures; not a test. Needs dnsperf and taskset.
//!
//!     cargo bench --bench churn [-- PODS [ROUNDS [SECONDS]]]     (ROUNDS 0: the first part only)

#[path = "../tests/common/apiserver.rs"]
mod apiserver;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apiserver::FakeApi;
use headless_dns::manifests;
use headless_dns::{ClusterEvent, ClusterObject, ClusterState, PodRecords, Zone};

/// The allocator the server runs with (`src/main.rs`): the writer's costs are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use apiserver::BENCH_PODS_PER_SERVICE as PODS_PER_SERVICE;
const CHANGES_PER_SECOND: u64 = 1000;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pods = args.first().copied().unwrap_or(10_000);
    let rounds = args.get(1).copied().unwrap_or(3);
    let seconds = args.get(2).copied().unwrap_or(5);
    // The server and the test API server on runtimes of their own, so that each one's CPU time
    // can be read from its threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let api_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("test-api")
        .enable_all()
        .build()
        .unwrap();
    writer_cost(pods, false);
    writer_cost(pods, true);
    if rounds == 0 {
        return;
    }
    let api = Arc::new(api_runtime.block_on(FakeApi::start()));
    apiserver::populate_bench(&api, pods);
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("queries.txt");
    let mut file = std::fs::File::create(&queries).unwrap();
    for n in 0..100_000 {
        let i = (n * 7919) % pods;
        writeln!(
            file,
            "pod-{i}.svc-{}.bench.svc.cluster.local A",
            i / PODS_PER_SERVICE
        )
        .unwrap();
    }
    drop(file);
    let config = api.follower_config(dir.path(), &["--udp-threads", "1"]);
    let running = runtime
        .block_on(headless_dns::start(&config))
        .expect("starts");
    let port = running.dns_addr.port().to_string();
    let server_cpu = std::env::var("SERVER_CPU").unwrap_or_else(|_| "1".into());
    let client_cpu = std::env::var("CLIENT_CPU").unwrap_or_else(|_| "0".into());
    // Threads started later inherit their starter's CPUs.
    pin_threads(&[SERVER_THREADS, "dns-udp"], &server_cpu);
    pin_threads(&["test-api", "churn"], &client_cpu);
    // Wait for the first sync: a pod name answers.
    let first = "pod-0.svc-0.bench.svc.cluster.local";
    while !Command::new("dig")
        .args(["+short", "-p", &port, "@127.0.0.1", first])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<std::net::IpAddr>()
                .is_ok()
        })
    {
        std::thread::sleep(Duration::from_millis(20));
    }

    // (queries/s, microseconds of the UDP worker thread's CPU per query)
    let dnsperf = || -> (f64, f64) {
        let cpu_before = thread_ticks("dns-udp");
        let output = Command::new("taskset")
            .args(["-c", &client_cpu, "dnsperf"])
            .args([
                "-s",
                "127.0.0.1",
                "-p",
                &port,
                "-d",
                queries.to_str().unwrap(),
            ])
            .args([
                "-l",
                &seconds.to_string(),
                "-T",
                "1",
                "-c",
                "1",
                "-q",
                "500",
            ])
            .output()
            .expect("dnsperf is installed (Debian: apt-get install dnsperf)");
        let cpu = thread_ticks("dns-udp") - cpu_before;
        let text = String::from_utf8_lossy(&output.stdout);
        let field = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0)
        };
        let answered = field("Queries completed:");
        (
            field("Queries per second:"),
            cpu as f64 / ticks_per_second() * 1e6 / answered.max(1.0),
        )
    };
    let (mut quiet, mut churned) = (Vec::new(), Vec::new());
    let mut server_shares = Vec::new();
    let applied = Arc::new(AtomicUsize::new(0));
    for _ in 0..rounds {
        quiet.push(dnsperf());
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let (api, stop, applied) = (api.clone(), stop.clone(), applied.clone());
            api_runtime.spawn(async move {
                let mut ticks =
                    tokio::time::interval(Duration::from_micros(1_000_000 / CHANGES_PER_SECOND));
                let mut ready = vec![true; pods];
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    ticks.tick().await;
                    let i = (n * 104_729) % pods;
                    ready[i] = !ready[i];
                    api.apply(apiserver::bench_pod(i, ready[i]));
                    applied.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        };
        let started = Instant::now();
        let before = applied.load(Ordering::Relaxed);
        let server_before = thread_ticks(SERVER_THREADS);
        churned.push(dnsperf());
        let elapsed = started.elapsed().as_secs_f64();
        let rate = (applied.load(Ordering::Relaxed) - before) as f64 / elapsed;
        // The watch, decoding and state updates all run on the server's runtime threads.
        let server_share =
            (thread_ticks(SERVER_THREADS) - server_before) as f64 / ticks_per_second() / elapsed;
        server_shares.push(server_share * 100.0);
        stop.store(true, Ordering::Relaxed);
        api_runtime.block_on(churn).unwrap();
        let (q, c) = (quiet.last().unwrap(), churned.last().unwrap());
        println!(
            "round: quiet {:.0} q/s ({:.2} us CPU/query), churn {:.0} q/s ({:.2} us CPU/query) at {rate:.0} changes/s; \
             following them took {:.1}% of a core",
            q.0,
            q.1,
            c.0,
            c.1,
            server_share * 100.0
        );
    }
    let median = |v: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        let mut values: Vec<f64> = v.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (q, c) = (median(&quiet, |r| r.0), median(&churned, |r| r.0));
    let (qc, cc) = (median(&quiet, |r| r.1), median(&churned, |r| r.1));
    server_shares.sort_by(f64::total_cmp);
    println!(
        "{pods} pods, medians: quiet {q:.0} q/s, with {CHANGES_PER_SECOND} pod changes/s {c:.0} q/s ({:+.1}%); \
         UDP thread CPU per query {qc:.2} us quiet, {cc:.2} us under churn ({:+.1}%); \
         following the changes (watch, decoding, state, views) took {:.1}% of a core",
        (c / q - 1.0) * 100.0,
        (cc / qc - 1.0) * 100.0,
        server_shares[server_shares.len() / 2]
    );
    runtime.block_on(running.shutdown());
}

/// Pins this process's threads whose names start with one of `prefixes` to `cpus`.
fn pin_threads(prefixes: &[&str], cpus: &str) {
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if prefixes.iter().any(|p| comm.starts_with(p)) {
            let tid = task.file_name().to_string_lossy().into_owned();
            let pinned = Command::new("taskset")
                .args(["-p", "-c", cpus, &tid])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(pinned, "taskset -p -c {cpus} {tid} ({})", comm.trim());
        }
    }
}

/// Thread name prefix of the server's runtime.
const SERVER_THREADS: &str = "server-rt";

/// CPU ticks (user + system) so far of this process's threads whose name starts with `prefix`.
fn thread_ticks(prefix: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        total += fields
            .get(11)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
    }
    total
}

fn ticks_per_second() -> f64 {
    // Linux reports thread CPU in USER_HZ, 100 on every architecture it supports today.
    100.0
}

/// The bench cluster as objects: `pods` pods, Ready where `ready` says so.
fn bench_objects(pods: usize, ready: impl Fn(usize) -> bool) -> Vec<ClusterObject> {
    let mut items = vec![apiserver::namespace("bench")];
    for s in 0..pods.div_ceil(PODS_PER_SERVICE) {
        let name = format!("svc-{s}");
        items.push(apiserver::headless_service(
            "bench",
            &name,
            Some(("app", &name)),
        ));
    }
    items.extend((0..pods).map(|i| apiserver::bench_pod(i, ready(i))));
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    manifests::parse(&list.to_string()).expect("parses")
}

/// Times pod readiness flips applied to the cluster state one at a time, each published, then a
/// re-list of the same objects; with `journal`, the record changes worked out for IXFR too.
fn writer_cost(pods: usize, journal: bool) {
    let objects = bench_objects(pods, |_| true);
    let mut state = ClusterState::new(1);
    if journal {
        let zone = Zone::new("cluster.local", 5, PodRecords::Verified, None).expect("a zone");
        state = state.with_journal(Arc::new(zone));
    }
    state.apply(manifests::resync(objects));
    state.apply(ClusterEvent::Synced);
    let mut published = state.publish();
    let changes: Vec<ClusterObject> = (0..20_000)
        .map(|n| {
            let i = (n * 104_729) % pods;
            let text = apiserver::bench_pod(i, n % 2 == 1).to_string();
            manifests::parse(&text).expect("parses").remove(0)
        })
        .collect();
    let count = changes.len();
    let started = Instant::now();
    for change in changes {
        state.apply(ClusterEvent::Upsert(change));
        // Readers hold the previous view meanwhile, as they would.
        published = state.publish().or(published);
    }
    let per_change = started.elapsed().as_secs_f64() * 1e6 / count as f64;
    let with = if journal {
        " with the IXFR journal"
    } else {
        ""
    };
    println!(
        "{pods} pods{with}: applying one pod change and publishing the view takes \
         {per_change:.1} us: {CHANGES_PER_SECOND} changes/s use {:.1}% of one core",
        per_change * CHANGES_PER_SECOND as f64 / 1e4
    );
    // A re-list that changes nothing (the objects as they are now), then one with half the
    // pods' readiness flipped.
    let mut ready = vec![true; pods];
    for n in 0..20_000 {
        ready[(n * 104_729) % pods] = n % 2 == 1;
    }
    let now_ready = bench_objects(pods, |i| ready[i]);
    let started = Instant::now();
    state.apply(manifests::resync(now_ready));
    let unchanged = state.publish();
    println!(
        "{pods} pods{with}: a re-list that changes nothing is applied in {:.0} ms ({})",
        started.elapsed().as_secs_f64() * 1e3,
        if unchanged.is_some() {
            "published"
        } else {
            "nothing to publish"
        }
    );
    let relisted = bench_objects(pods, |i| i % 2 == 0);
    let started = Instant::now();
    state.apply(manifests::resync(relisted));
    let view = state.publish().expect("the re-list changes records");
    let took = started.elapsed();
    let journaled = view.journal().len();
    println!(
        "{pods} pods{with}: a re-list with half the pods' readiness changed is applied and \
         published in {:.0} ms (journal: {journaled} changes held)",
        took.as_secs_f64() * 1e3
    );
    drop((published, view));
}
