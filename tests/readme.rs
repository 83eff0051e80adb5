//! The README's commands and configurations, run as written: its first command on a desktop
//! where an mDNS responder holds 5353 and a web server 8080; every command of "Asking it",
//! "Debugging a name" and "Flags" against it, their output compared with what the README shows;
//! the Knot DNS secondary recipe (plain and with TSIG) on loopback; and the systemd-resolved
//! drop-in's syntax.
//!
//! The commands name fixed ports (the defaults, Knot's 5300) and `/tmp/knot-secondary`, so they
//! run in a network and mount namespace of their own (`unshare`; as root, or in a user
//! namespace), with `headless-dns` on the `PATH` and the repository's `config/` beside them.

mod common;

use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_headless-dns");
const REPOSITORY: &str = env!("CARGO_MANIFEST_DIR");

fn readme() -> String {
    std::fs::read_to_string(Path::new(REPOSITORY).join("README.md")).unwrap()
}

/// The text of the README section under `heading` (a `## ` line), up to the next `## `.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading:?} in the README"));
    let body = &readme[start + 4 + heading.len()..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// A command the README shows, and the output it shows after it.
#[derive(Debug)]
struct Shown {
    command: String,
    output: Vec<String>,
}

/// The `$ ` commands of a section, with their outputs: in ```console blocks and in blocks
/// indented by four spaces.
fn shown_commands(text: &str) -> Vec<Shown> {
    let mut shown: Vec<Shown> = Vec::new();
    let mut in_console = false;
    let mut open = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            open = false;
            continue;
        }
        let body = if in_console {
            Some(line)
        } else {
            line.strip_prefix("    ")
        };
        match body {
            Some(body) if body.starts_with("$ ") => {
                shown.push(Shown {
                    command: body[2..].to_string(),
                    output: Vec::new(),
                });
                open = true;
            }
            Some(body) if open && !body.trim().is_empty() => {
                shown.last_mut().unwrap().output.push(body.to_string())
            }
            // A blank line inside an indented block belongs to it (dig's output has some);
            // outside one it ends the output.
            Some(_) if open && !in_console && line.is_empty() => {}
            _ if !in_console && !line.starts_with("    ") && !line.is_empty() => open = false,
            _ if in_console && line.is_empty() => open = false,
            _ => {}
        }
    }
    shown
}

/// The indented block that follows the paragraph containing `marker`.
fn block_after(text: &str, marker: &str) -> String {
    let from = text.find(marker).unwrap_or_else(|| panic!("no {marker:?}"));
    text[from..]
        .lines()
        .skip_while(|line| !line.starts_with("    "))
        .take_while(|line| line.starts_with("    ") || line.is_empty())
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
        + "\n"
}

/// What may differ between runs: query IDs, SOA serials, runs of blanks.
fn normalized(line: &str) -> String {
    let words: Vec<String> = line
        .split_whitespace()
        .map(|word| {
            let digits = word.trim_matches(|c: char| !c.is_ascii_digit());
            if digits.len() == 10 && digits.chars().all(|c| c.is_ascii_digit()) {
                word.replace(digits, "SERIAL")
            } else {
                word.to_string()
            }
        })
        .collect();
    let line = words.join(" ");
    match line.find("id: ") {
        Some(at) => {
            let end = line[at + 4..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(line.len(), |e| at + 4 + e);
            format!("{}id: N{}", &line[..at], &line[end..])
        }
        None => line,
    }
}

/// Whether every line the README shows appears in what the command printed, in order; for
/// `+short` and `+noall` digs (whose output the README shows whole), nothing else either.
fn matches(shown: &Shown, printed: &str) -> Result<(), String> {
    let printed: Vec<String> = printed
        .lines()
        .map(normalized)
        .filter(|l| !l.is_empty())
        .collect();
    let wanted: Vec<String> = shown.output.iter().map(|l| normalized(l)).collect();
    let whole = shown.command.contains("+short") || shown.command.contains("+noall");
    if whole && printed != wanted {
        return Err(format!("printed {printed:#?}\nREADME shows {wanted:#?}"));
    }
    let mut rest = printed.iter();
    for line in &wanted {
        if !rest.any(|p| p == line) {
            return Err(format!(
                "the README's line {line:?} is not in what it printed: {printed:#?}"
            ));
        }
    }
    Ok(())
}

/// A directory for the commands: `bin/headless-dns` (the built binary), `config/` (the
/// repository's), and the files the test writes.
fn workplace() -> tempfile::TempDir {
    // Not under /tmp: the namespace mounts its own /tmp (for /tmp/knot-secondary).
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::create_dir(work.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(BINARY, work.path().join("bin/headless-dns")).unwrap();
    std::os::unix::fs::symlink(
        Path::new(REPOSITORY).join("config"),
        work.path().join("config"),
    )
    .unwrap();
    work
}

/// Runs `script` (bash) in a new network and mount namespace with loopback up, a private
/// /tmp, `dir` as the working directory and `dir/bin` first on the PATH; returns its output.
/// A repository cloned under /tmp (the binary and `config/` that `dir` links to) stays
/// reachable: it is bound back into the private /tmp, through a descriptor opened before.
fn in_namespace(dir: &Path, script: &str) -> String {
    let setup = r#"set -u
ip link set lo up
exec 3<"$REPOSITORY"
mount -t tmpfs tmpfs /tmp
case $REPOSITORY in
/tmp/*) mkdir -p "$REPOSITORY" && mount --no-canonicalize --bind /proc/self/fd/3 "$REPOSITORY" ;;
esac
exec 3<&-
cd "$DIR"
export PATH="$DIR/bin:/usr/sbin:/sbin:$PATH"
"#;
    let mut command = Command::new("unshare");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        command.args(["--user", "--map-root-user"]);
    }
    let output = command
        .args(["--mount", "--net", "--fork", "bash", "-c"])
        .arg(format!("{setup}{script}"))
        .env("DIR", dir)
        .env("REPOSITORY", REPOSITORY)
        .env_remove("RUST_LOG")
        .output()
        .expect("unshare runs (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the namespace's script failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The output of the script between `==== name` markers.
fn outputs(printed: &str) -> Vec<(String, String)> {
    let mut parts: Vec<(String, String)> = Vec::new();
    for line in printed.lines() {
        match line.strip_prefix("==== ") {
            Some(name) => parts.push((name.to_string(), String::new())),
            None => {
                if let Some((_, text)) = parts.last_mut() {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    parts
}

/// Squatters as on a desktop: an mDNS responder's socket on 0.0.0.0:5353 (SO_REUSEADDR, as
/// avahi-daemon binds it) and a web server on 127.0.0.1:8080.
const SQUATTERS: &str = r#"
import socket, sys, time
mdns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
mdns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
mdns.bind(("0.0.0.0", 5353))
web = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
web.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
web.bind(("127.0.0.1", 8080))
web.listen(16)
print("squatting", flush=True)
time.sleep(3600)
"#;

/// A shell word: the value in single quotes.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Runs `shown.command` as the README writes it, its output (stdout and stderr) after a
/// marker; with `retry`, again until it prints what the README shows (a secondary still
/// transferring), for up to 15 s.
fn step(script: &mut String, name: &str, shown: &Shown, retry: bool) {
    script.push_str(&format!("echo {}\n", quoted(&format!("==== {name}"))));
    if retry {
        let wanted = shown.output.join("\n");
        script.push_str(&format!(
            "for i in $(seq 150); do out=$({} 2>&1); [ \"$out\" = {} ] && break; sleep 0.1; done\n\
             printf '%s\\n' \"$out\"\n",
            shown.command,
            quoted(&wanted)
        ));
    } else {
        script.push_str(&format!("{} 2>&1\n", shown.command));
    }
}

/// Starts the command the README runs in the background (ending in `&`), its output in a log.
fn background(script: &mut String, command: &str, log: &str) {
    let command = command.trim_end().trim_end_matches('&').trim_end();
    script.push_str(&format!("{command} >{log} 2>&1 &\n"));
}

const WAIT_FOR_DEMO: &str = r#"for i in $(seq 300); do
  dig +short +time=1 +tries=1 @127.0.0.1 -p 1053 dns-version.cluster.local TXT 2>/dev/null | grep -q 1.1.0 && break
  sleep 0.1
done
"#;

#[test]
fn the_readme_runs_as_written() {
    let readme = readme();
    let work = workplace();
    let mut script = String::new();
    let mut checks: Vec<(String, Shown, bool)> = Vec::new();

    std::fs::write(work.path().join("squatters.py"), SQUATTERS).unwrap();
    script.push_str(
        "python3 squatters.py >squatters.log 2>&1 &\n\
         for i in $(seq 100); do grep -q squatting squatters.log && break; sleep 0.05; done\n\
         echo '==== squatters'; cat squatters.log\n",
    );
    // The squatters hold the ports of the old defaults: each would stop a server, naming its flag.
    for (name, flags) in [
        (
            "dns squatted",
            "--listen 127.0.0.1:5353 --http-listen 127.0.0.1:0",
        ),
        (
            "http squatted",
            "--listen 127.0.0.1:0 --http-listen 127.0.0.1:8080",
        ),
    ] {
        script.push_str(&format!(
            "echo '==== {name}'; headless-dns --manifests config/demo-cluster.yaml {flags} 2>&1; \
             echo \"exit $?\"\n"
        ));
    }

    // The Quick start's first command, with `cargo run --release --` as the built binary.
    let quick = section(&readme, "Quick start");
    let first = quick
        .lines()
        .find_map(|l| l.strip_prefix("    cargo run --release -- "))
        .expect("the Quick start runs the demo with cargo run");
    background(&mut script, &format!("headless-dns {first}"), "demo.log");
    script.push_str("demo=$!\n");
    script.push_str(WAIT_FOR_DEMO);

    let mut count = 0;
    for heading in ["Asking it", "Debugging a name", "Flags"] {
        for shown in shown_commands(section(&readme, heading)) {
            count += 1;
            let name = format!("{heading} {count}");
            step(&mut script, &name, &shown, false);
            checks.push((name, shown, false));
        }
    }
    script.push_str("kill $demo; wait $demo 2>/dev/null\n");

    // The secondary: knot.conf as the README gives it, then its commands; then with TSIG.
    let many = section(&readme, "Serving from many machines");
    let plain = block_after(many, "This `knot.conf` runs as written");
    assert!(plain.contains("ip6.arpa"), "{plain}");
    let secret = "c2VjcmV0IGZvciB0aGUgUkVBRE1FIHRlc3Qgb2YgVFNJRw==";
    let signed = block_after(many, "and the Knot configuration above with the key")
        .replace("<secret>", secret);
    let recipe = shown_commands(many);
    assert!(
        recipe
            .iter()
            .any(|s| s.command.starts_with("knotd -c knot.conf")),
        "{recipe:?}"
    );
    for (variant, conf, environment) in [
        ("knot", &plain, String::new()),
        (
            "knot with TSIG",
            &signed,
            format!("export HEADLESS_DNS_TSIG_KEY=transfer-key:hmac-sha256:{secret}\n"),
        ),
    ] {
        std::fs::write(
            work.path()
                .join(format!("{variant}.conf").replace(' ', "-")),
            conf,
        )
        .unwrap();
        script.push_str(&format!(
            "rm -rf /tmp/knot-secondary; cp {} knot.conf\n{environment}",
            format!("{variant}.conf").replace(' ', "-")
        ));
        for (i, shown) in recipe.iter().enumerate() {
            if shown.command.ends_with('&') {
                background(
                    &mut script,
                    &shown.command,
                    &format!("{variant}-{i}.log").replace(' ', "-"),
                );
            } else {
                let name = format!("{variant}: {}", shown.command);
                step(&mut script, &name, shown, shown.command.starts_with("dig"));
                checks.push((
                    name,
                    Shown {
                        command: shown.command.clone(),
                        output: shown.output.clone(),
                    },
                    true,
                ));
            }
        }
        // Every job ends here, the squatters with the first variant's (done with by then).
        script.push_str(
            "kill $(jobs -p) 2>/dev/null; wait 2>/dev/null\nunset HEADLESS_DNS_TSIG_KEY\n",
        );
    }
    let printed = in_namespace(work.path(), &script);
    let parts = outputs(&printed);
    let part = |name: &str| -> &str {
        parts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, text)| text.as_str())
            .unwrap_or_else(|| panic!("no output for {name:?} in:\n{printed}"))
    };

    assert_eq!(part("squatters").trim(), "squatting", "{printed}");
    for (name, flag) in [
        ("dns squatted", "--listen"),
        ("http squatted", "--http-listen"),
    ] {
        let out = part(name);
        assert!(out.trim_end().ends_with("exit 1"), "{name}: {out}");
        assert!(
            out.contains("Address already in use")
                && out.contains(&format!("choose another with {flag}")),
            "{name}: {out}"
        );
        assert!(
            !out.contains("answering DNS"),
            "{name} answered before it stopped: {out}"
        );
    }
    let mut failures = Vec::new();
    for (name, shown, _) in &checks {
        if let Err(e) = matches(shown, part(name)) {
            failures.push(format!("{name}: $ {}\n{e}", shown.command));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} README commands print otherwise:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{} README commands ran as written and printed what it shows",
        checks.len()
    );
}

/// The drop-in a README section's `printf` writes, checked against resolved.conf(5): one
/// `[Resolve]` section, `DNS=` an address with a port (systemd 246+), `Domains=` routing-only
/// domains (`~`); returns the port and the domains.
fn drop_in(section: &str) -> (u16, Vec<String>) {
    let printf = section
        .lines()
        .find(|l| l.starts_with("printf '[Resolve]"))
        .expect("the drop-in's printf");
    let printf = printf.trim_end().trim_end_matches('|').trim_end();
    let output = Command::new("sh").args(["-c", printf]).output().unwrap();
    let file = String::from_utf8(output.stdout).unwrap();
    let mut lines = file.lines();
    assert_eq!(lines.next(), Some("[Resolve]"), "{file}");
    let (mut keys, mut port, mut domains) = (Vec::new(), 0, Vec::new());
    for line in lines {
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not KEY=VALUE: {line:?}"));
        keys.push(key);
        match key {
            "DNS" => {
                let address: std::net::SocketAddr = value
                    .parse()
                    .unwrap_or_else(|e| panic!("DNS={value}: not ADDRESS:PORT ({e})"));
                port = address.port();
            }
            "Domains" => {
                for domain in value.split_whitespace() {
                    let name = domain.strip_prefix('~').expect("a routing-only domain");
                    domains.push(name.to_owned());
                }
            }
            other => panic!("resolved.conf has no key {other:?} in [Resolve] here"),
        }
    }
    assert_eq!(keys, ["DNS", "Domains"]);
    assert!(file.ends_with('\n'));
    (port, domains)
}

#[test]
fn the_systemd_resolved_drop_in_is_well_formed() {
    let readme = readme();
    let (port, domains) = drop_in(section(&readme, "In a kind cluster, and as a sidecar"));
    assert_eq!(port, 30053, "the kind NodePort");
    assert_eq!(domains, ["cluster.local"]);
}

/// "Several clusters": the kind configurations (pod and Service ranges apart); the command as
/// written (its address moved by `HEADLESS_DNS_LISTEN`, the fixed port being anyone's outside a
/// namespace of its own) against two test API servers holding what the two clusters would —
/// `web.yaml`'s Service and the pods its StatefulSet makes, at addresses in each cluster's pod
/// range —, the README's questions asked of it and their output compared; and the resolver
/// routing for both zones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_clusters_run_as_written() {
    use common::apiserver::FakeApi;
    let readme = readme();
    let text = section(&readme, "Several clusters");
    let config = |file: &str| -> serde_json::Value {
        let path = Path::new(REPOSITORY).join("config/clusters").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let documents: Vec<serde_json::Value> = text
            .split("\n---\n")
            .map(|d| yaml_serde::from_str(d).unwrap_or_else(|e| panic!("{file}: {e}")))
            .collect();
        serde_json::Value::Array(documents)
    };
    let network = |cidr: &serde_json::Value| -> (u32, u32) {
        let (address, prefix) = cidr.as_str().unwrap().split_once('/').unwrap();
        let address: std::net::Ipv4Addr = address.parse().unwrap();
        let prefix: u32 = prefix.parse().unwrap();
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        (u32::from(address) & mask, mask)
    };
    let mut ranges = Vec::new();
    let mut pod_ranges = std::collections::BTreeMap::new();
    for name in ["east", "west"] {
        let kind = &config(&format!("kind-{name}.yaml"))[0];
        assert!(text.contains(&format!("config/clusters/kind-{name}.yaml")));
        assert_eq!(kind["kind"], "Cluster");
        assert_eq!(kind["apiVersion"], "kind.x-k8s.io/v1alpha4");
        // kind names the context kind-<name>, which the command names.
        assert_eq!(kind["name"], name);
        assert!(
            text.contains(&format!("--cluster {name}=kind-{name}")),
            "{name}"
        );
        let networking = &kind["networking"];
        for key in ["podSubnet", "serviceSubnet"] {
            ranges.push((format!("{name} {key}"), network(&networking[key])));
        }
        pod_ranges.insert(name, network(&networking["podSubnet"]));
    }
    for (i, (a, (net_a, mask_a))) in ranges.iter().enumerate() {
        for (b, (net_b, mask_b)) in &ranges[i + 1..] {
            let mask = mask_a & mask_b;
            assert_ne!(net_a & mask, net_b & mask, "{a} and {b} overlap");
        }
    }

    // The stand-ins: web.yaml's Service, and the pods its StatefulSet makes, in each.
    let web = config("web.yaml");
    let service = web
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Service")
        .unwrap();
    let set = web
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "StatefulSet")
        .unwrap();
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    let addresses = [
        ("east", ["10.10.0.5", "10.10.0.6"]),
        ("west", ["10.20.0.7", "10.20.0.8"]),
    ];
    let mut apis = Vec::new();
    for (cluster, ips) in addresses {
        let api = FakeApi::start().await;
        api.apply(common::apiserver::namespace("default"));
        api.apply(service.clone());
        for export in web
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "ServiceExport")
        {
            // The README installs the CRD first.
            assert!(text.contains("multicluster.x-k8s.io_serviceexports.yaml"));
            api.install_mcs_crd();
            api.apply(export.clone());
        }
        assert_eq!(replicas, ips.len() as u64);
        for (ordinal, ip) in ips.iter().enumerate() {
            let (net, mask) = pod_ranges[cluster];
            let address: std::net::Ipv4Addr = ip.parse().unwrap();
            assert_eq!(
                u32::from(address) & mask,
                net,
                "{ip} outside {cluster}'s pods"
            );
            let name = format!("{}-{ordinal}", set["metadata"]["name"].as_str().unwrap());
            let mut pod = serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default",
                             "labels": set["spec"]["template"]["metadata"]["labels"]},
                "spec": set["spec"]["template"]["spec"],
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                           "conditions": [{"type": "Ready", "status": "True"}]}
            });
            pod["spec"]["hostname"] = serde_json::json!(name);
            pod["spec"]["subdomain"] = set["spec"]["serviceName"].clone();
            api.apply(pod);
        }
        apis.push((cluster, api));
    }
    let dir = tempfile::tempdir().unwrap();
    // Named as kind names its contexts.
    let contexts: Vec<(String, &FakeApi)> = apis
        .iter()
        .map(|(cluster, api)| (format!("kind-{cluster}"), api))
        .collect();
    let contexts: Vec<(&str, &FakeApi)> = contexts.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    std::fs::write(
        dir.path().join("config"),
        common::apiserver::kubeconfig_of(&contexts),
    )
    .unwrap();

    let command = text
        .lines()
        .find_map(|l| l.strip_prefix("    headless-dns "))
        .expect("the command");
    let port = common::secondary::free_port();
    let mut server = common::process::Process::start({
        let mut server = Command::new(BINARY);
        server
            .args(command.split_whitespace())
            .env("KUBECONFIG", dir.path().join("config"))
            .env("HEADLESS_DNS_LISTEN", format!("127.0.0.1:{port}"))
            .env("HEADLESS_DNS_HTTP_LISTEN", "127.0.0.1:0");
        server
    });
    let started = std::time::Instant::now();
    let questions: Vec<Shown> = shown_commands(text)
        .into_iter()
        .filter(|s| s.command.starts_with("dig "))
        .collect();
    assert_eq!(questions.len(), 7, "{questions:?}");
    for shown in &questions {
        let command = shown.command.replace("-p 1053", &format!("-p {port}"));
        let mut result = Err(String::new());
        // The first question waits for both clusters' first lists.
        while started.elapsed() < std::time::Duration::from_secs(20) {
            let output = Command::new("sh").args(["-c", &command]).output().unwrap();
            result = matches(shown, &String::from_utf8_lossy(&output.stdout));
            if result.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if let Err(why) = result {
            server.signal(libc::SIGTERM);
            panic!("{}: {why}\n{:#?}", shown.command, server.log());
        }
    }
    server.signal(libc::SIGTERM);
    let _ = server.wait_exit(std::time::Duration::from_secs(10));

    // Both zones routed to it, on the port it listens on by default.
    let (port, domains) = drop_in(text);
    assert_eq!(port, 1053);
    assert_eq!(
        domains,
        [
            "east.cluster.local",
            "west.cluster.local",
            "clusterset.local"
        ]
    );
    let resolver = text
        .lines()
        .find(|l| l.starts_with("for zone in "))
        .expect("the /etc/resolver loop");
    assert_eq!(
        resolver,
        format!("for zone in {}; do", domains.join(" ")),
        "the same zones as the drop-in"
    );
    let printf = text
        .lines()
        .find(|l| l.trim_start().starts_with("printf 'nameserver"))
        .expect("the resolver file's printf");
    let printf = printf.trim().split(" | ").next().unwrap();
    let output = Command::new("sh").args(["-c", printf]).output().unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "nameserver 127.0.0.1\nport 1053\n",
        "resolver(5): a nameserver and a port"
    );
}
