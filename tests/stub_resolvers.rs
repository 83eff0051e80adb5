//! The built binary asked by real stub resolvers, as pods ask a cluster's DNS: musl's (a static
//! `getaddrinfo` client built with Debian's `musl-tools`) and glibc's (`getent`), each reading a
//! pod's resolv.conf (search path, `ndots:5`). Stub resolvers read `/etc/resolv.conf` and ask port
//! 53, so each test runs in a mount and network namespace of its own (`unshare`; as root, or
//! with a user namespace), where the server answers on 127.0.0.1:53.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_headless-dns");

/// A pod's resolv.conf in namespace `default`, as the kubelet writes it.
const POD_RESOLV_CONF: &str = "search default.svc.cluster.local svc.cluster.local cluster.local\n\
                               nameserver 127.0.0.1\noptions ndots:5\n";

/// The static musl client, built from `tests/clients/getaddrinfo.c` into `dir`.
fn musl_client(dir: &Path) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/getaddrinfo.c");
    let binary = dir.join("getaddrinfo-musl");
    let output = Command::new("musl-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("musl-gcc runs (Debian: apt-get install musl-tools)");
    assert!(output.status.success(), "musl-gcc failed: {output:?}");
    binary
}

/// Runs `script` (sh) in a new mount and network namespace with loopback up, the pod's
/// resolv.conf over `/etc/resolv.conf`, and headless-dns serving `manifests` on 127.0.0.1:53;
/// returns what it printed.
fn in_pod_namespace(dir: &Path, manifests: &str, script: &str) -> String {
    in_namespace_with(
        dir,
        manifests,
        POD_RESOLV_CONF,
        "--listen 127.0.0.1:53",
        script,
    )
}

/// As [`in_pod_namespace`], with `resolv_conf` and the server's listening flags given.
fn in_namespace_with(
    dir: &Path,
    manifests: &str,
    resolv_conf: &str,
    listen_flags: &str,
    script: &str,
) -> String {
    std::fs::write(dir.join("cluster.yaml"), manifests).unwrap();
    std::fs::write(dir.join("resolv.conf"), resolv_conf).unwrap();
    let setup = format!(
        r#"set -eu
ip link set lo up
mount --bind "$DIR/resolv.conf" /etc/resolv.conf
"{BINARY}" --manifests "$DIR/cluster.yaml" {listen_flags} --http-listen 127.0.0.1:0 \
  2>"$DIR/server.log" &
server=$!
trap 'kill $server' EXIT
tries=0
until dig +short +time=1 +tries=1 @127.0.0.1 dns-version.cluster.local. TXT | grep -q 1.1.0; do
  tries=$((tries + 1))
  if [ "$tries" -gt 200 ]; then
    echo "headless-dns never answered:" >&2; cat "$DIR/server.log" >&2; exit 1
  fi
  sleep 0.05
done
"#
    );
    let mut command = Command::new("unshare");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        command.args(["--user", "--map-root-user"]);
    }
    let output = command
        .args(["--mount", "--net", "--fork", "sh", "-c"])
        .arg(format!("{setup}{script}"))
        .env("DIR", dir)
        .output()
        .expect("unshare runs (util-linux)");
    assert!(
        output.status.success(),
        "the namespace's script failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A headless Service `big` of `pods` Ready pods at 10.1.0.1, 10.1.0.2, ...
fn big_service(pods: usize) -> String {
    let mut parts = vec![
        "apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\n\
         spec: {clusterIP: None, selector: {app: big}, ports: [{name: web, port: 80}]}\n"
            .to_string(),
    ];
    for i in 0..pods {
        parts.push(format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: big-{i}, namespace: default, labels: {{app: big}}}}\n\
             spec: {{containers: [{{name: app, image: app}}]}}\n\
             status: {{phase: Running, podIP: 10.1.0.{n}, podIPs: [{{ip: 10.1.0.{n}}}], \
             conditions: [{{type: Ready, status: 'True'}}]}}\n",
            n = i + 1
        ));
    }
    parts.join("---\n")
}

/// Splits `output` at lines `== <label>` into the address lines under each label.
fn sections(output: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in output.lines() {
        match line.strip_prefix("== ") {
            Some(label) => sections.push((label.to_string(), Vec::new())),
            None => {
                if let Some((_, lines)) = sections.last_mut() {
                    lines.push(line.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        }
    }
    sections
}

/// musl ≤ 1.2.3 neither sends EDNS nor retries over TCP: it uses what arrives in 512 bytes. A
/// headless Service of 100 pods must still resolve for it (to the addresses that fit, a
/// different run of them per query), and glibc, which retries over TCP, must get all 100.
#[test]
fn musl_and_glibc_resolve_a_headless_service_of_100_pods() {
    let dir = tempfile::tempdir().unwrap();
    let musl = musl_client(dir.path());
    let runs = 30;
    let script = format!(
        r#"for run in $(seq {runs}); do echo "== musl $run"; "{musl}" big; done
echo "== glibc"
getent ahosts big
"#,
        musl = musl.display()
    );
    let output = in_pod_namespace(dir.path(), &big_service(100), &script);
    let all: BTreeSet<String> = (1..=100).map(|n| format!("10.1.0.{n}")).collect();
    let sections = sections(&output);
    let mut musl_seen = BTreeSet::new();
    for (label, addresses) in &sections {
        let addresses: BTreeSet<String> = addresses.iter().cloned().collect();
        assert!(addresses.is_subset(&all), "{label}: {addresses:?}");
        if label.starts_with("musl") {
            assert!(
                (20..=30).contains(&addresses.len()),
                "{label}: {} addresses",
                addresses.len()
            );
            musl_seen.extend(addresses);
        } else {
            assert_eq!(
                addresses.len(),
                100,
                "glibc retries over TCP and gets every pod"
            );
        }
    }
    assert_eq!(sections.len(), runs + 1, "{output}");
    // Each cut answer starts at a pod picked by the query's ID: the runs spread over the pods.
    assert!(
        musl_seen.len() >= 90,
        "{runs} musl lookups reached only {} of 100 pods",
        musl_seen.len()
    );
    eprintln!(
        "musl: {runs} lookups reached {} of 100 pods",
        musl_seen.len()
    );
}

/// Names that fit are unchanged for both resolvers: a short name through the search path, a pod
/// name, and a name that does not exist.
#[test]
fn stub_resolvers_follow_the_search_path() {
    let dir = tempfile::tempdir().unwrap();
    let musl = musl_client(dir.path());
    let script = format!(
        r#"echo "== musl short"; "{musl}" big
echo "== musl fqdn"; "{musl}" big.default.svc.cluster.local.
echo "== musl missing"; "{musl}" nothing-here || echo "failed"
echo "== glibc short"; getent ahosts big
echo "== glibc missing"; getent ahosts nothing-here || echo "failed"
"#,
        musl = musl.display()
    );
    let output = in_pod_namespace(dir.path(), &big_service(3), &script);
    let sections = sections(&output);
    let section = |label: &str| -> BTreeSet<String> {
        let found = sections.iter().find(|(l, _)| l == label);
        found.unwrap().1.iter().cloned().collect()
    };
    let three: BTreeSet<String> = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
        .map(String::from)
        .into();
    assert_eq!(section("musl short"), three);
    assert_eq!(section("musl fqdn"), three);
    assert_eq!(section("glibc short"), three);
    assert_eq!(
        section("musl missing"),
        BTreeSet::from(["failed".to_string()])
    );
    assert_eq!(
        section("glibc missing"),
        BTreeSet::from(["failed".to_string()])
    );
}

/// `config/sidecar-example.yaml`'s documents, as JSON.
fn sidecar_example() -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sidecar-example.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .collect()
}

/// The resolv.conf the kubelet writes for a pod with `dnsPolicy: None` and this `dnsConfig`.
fn resolv_conf_of(dns_config: &serde_json::Value) -> String {
    let words = |key: &str| -> Vec<String> {
        dns_config[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let mut conf = format!("search {}\n", words("searches").join(" "));
    for server in words("nameservers") {
        conf.push_str(&format!("nameserver {server}\n"));
    }
    let options: Vec<String> = dns_config["options"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| match o["value"].as_str() {
            Some(value) => format!("{}:{value}", o["name"].as_str().unwrap()),
            None => o["name"].as_str().unwrap().to_string(),
        })
        .collect();
    conf.push_str(&format!("options {}\n", options.join(" ")));
    conf
}

/// The sidecar example's own pod, as its app container sees DNS: the resolv.conf its
/// `dnsConfig` makes, headless-dns on the sidecar's `--listen`, serving the example's objects
/// (its pod Running and Ready at an address, as the kubelet would report it). Its Service
/// resolves by short name through the search path and by full name, for glibc and musl.
#[test]
fn the_sidecar_examples_resolv_conf_finds_its_namespace() {
    let mut objects = sidecar_example();
    let pod = objects
        .iter_mut()
        .find(|o| o["kind"] == "Pod")
        .expect("the example has a pod");
    let resolv_conf = resolv_conf_of(&pod["spec"]["dnsConfig"]);
    assert!(
        resolv_conf.contains("nameserver 127.0.0.1\n"),
        "{resolv_conf}"
    );
    let sidecar = &pod["spec"]["initContainers"][0];
    assert_eq!(sidecar["restartPolicy"], "Always", "a native sidecar");
    let args: Vec<&str> = sidecar["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let listen = args[args.iter().position(|a| *a == "--listen").unwrap() + 1].to_string();
    assert_eq!(listen, "127.0.0.1:53", "resolv.conf names no port");
    pod["status"] = serde_json::json!({
        "phase": "Running",
        "podIP": "10.244.50.7",
        "podIPs": [{"ip": "10.244.50.7"}],
        "conditions": [{"type": "Ready", "status": "True"}],
    });
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let dir = tempfile::tempdir().unwrap();
    let musl = musl_client(dir.path());
    let script = format!(
        r#"echo "== glibc short"; getent ahosts sidecar-example-dns
echo "== musl short"; "{musl}" sidecar-example-dns
echo "== glibc fqdn"; getent ahosts sidecar-example-dns.sidecar-demo.svc.cluster.local.
"#,
        musl = musl.display()
    );
    let output = in_namespace_with(
        dir.path(),
        &list.to_string(),
        &resolv_conf,
        &format!("--listen {listen}"),
        &script,
    );
    let sections = sections(&output);
    assert_eq!(sections.len(), 3, "{output}");
    for (label, addresses) in sections {
        let addresses: BTreeSet<String> = addresses.into_iter().collect();
        assert_eq!(
            addresses,
            BTreeSet::from(["10.244.50.7".to_string()]),
            "{label}: {output}"
        );
    }
}
