//! End to end: the built binary serving `config/demo-cluster.yaml`, asked by `dig`; and the
//! binary's exits on bad input.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_headless-dns");

/// The binary, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BINARY)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            assert!(
                Instant::now() < deadline,
                "no listening line from the server"
            );
            let line = lines.next().expect("server exited early").unwrap();
            if let Some(rest) = line.split("dns_addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }

    fn dig(&self, args: &str) -> String {
        let output = Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string(), "+time=2", "+tries=1"])
            .args(args.split_whitespace())
            .output()
            .expect("dig is installed (Debian: apt-get install bind9-dnsutils)");
        assert!(output.status.success(), "dig {args}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// `dig +short`, lines sorted.
    fn short(&self, args: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .dig(&format!("+short {args}"))
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }
}

#[test]
fn dig_against_the_demo_cluster() {
    let server = Server::start(&["--manifests", "config/demo-cluster.yaml"], &[]);
    let zone = "default.svc.cluster.local";
    assert_eq!(
        server.short(&format!("nginx-svc.{zone}")),
        ["10.244.1.10", "10.244.2.11"]
    );
    assert_eq!(
        server.short(&format!("+tcp nginx-svc.{zone}")),
        ["10.244.1.10", "10.244.2.11"]
    );
    assert_eq!(
        server.short(&format!("web-0.nginx-svc.{zone}")),
        ["10.244.1.10"]
    );
    assert_eq!(
        server.short(&format!("web-1.nginx-svc.{zone} A")),
        ["10.244.2.11"]
    );
    // web-2 is not Ready yet.
    assert!(
        server
            .dig(&format!("web-2.nginx-svc.{zone}"))
            .contains("status: NXDOMAIN")
    );
    assert_eq!(
        server.short(&format!("_web._tcp.nginx-svc.{zone} SRV")),
        [
            format!("0 50 80 web-0.nginx-svc.{zone}."),
            format!("0 50 80 web-1.nginx-svc.{zone}."),
        ]
    );
    assert_eq!(server.short(&format!("api.{zone}")), ["10.96.120.15"]);
    assert_eq!(
        server.short(&format!("api.{zone} AAAA")),
        ["fd00:10:96::7a"]
    );
    assert_eq!(
        server.short(&format!("_http._tcp.api.{zone} SRV")),
        [format!("0 100 8080 api.{zone}.")]
    );
    assert_eq!(server.short(&format!("db.{zone}")), ["db.example.com."]);
    assert_eq!(
        server.short("-x 10.244.1.10"),
        [format!("web-0.nginx-svc.{zone}.")]
    );
    assert_eq!(server.short("-x 10.96.120.15"), [format!("api.{zone}.")]);
    assert_eq!(
        server.short("10-244-2-20.default.pod.cluster.local"),
        ["10.244.2.20"]
    );
    assert_eq!(server.short("dns-version.cluster.local TXT"), ["\"1.1.0\""]);

    let full = server.dig(&format!("WEB-0.Nginx-Svc.{zone}"));
    assert!(full.contains("flags: qr aa rd;"), "{full}");
    let answer = server.dig(&format!("+noall +answer WEB-0.Nginx-Svc.{zone}"));
    let fields: Vec<&str> = answer.split_whitespace().collect();
    let owner = format!("WEB-0.Nginx-Svc.{zone}.");
    assert_eq!(
        fields,
        [owner.as_str(), "5", "IN", "A", "10.244.1.10"],
        "the question's case is kept"
    );
    let refused = server.dig("example.com");
    assert!(refused.contains("status: REFUSED"), "{refused}");
}

#[test]
fn flags_come_from_the_environment_too() {
    let server = Server::start(
        &["--manifests", "config/demo-cluster.yaml"],
        &[
            ("HEADLESS_DNS_TTL", "30"),
            ("HEADLESS_DNS_ZONE", "kube.test"),
        ],
    );
    let answer = server.dig("+noall +answer web-0.nginx-svc.default.svc.kube.test");
    let fields: Vec<&str> = answer.split_whitespace().collect();
    assert_eq!(
        fields,
        [
            "web-0.nginx-svc.default.svc.kube.test.",
            "30",
            "IN",
            "A",
            "10.244.1.10"
        ]
    );
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(BINARY)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_input_exits_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {clusterIP: None}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: team}\n\
         spec: {clusterIP: 10.0.0.999}\n",
    )
    .unwrap();
    let output = run(&["--manifests", broken.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    let last = stderr.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "headless-dns: {}: document 2 (Service team/bad): spec.clusterIP: \"10.0.0.999\" is not an IP address",
            broken.display()
        )
    );

    let output = run(&["--manifests", "/nonexistent/cluster.yaml"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("/nonexistent/cluster.yaml: cannot read"));

    let output = run(&["--manifests", "-"], Some("kind: [unclosed\n"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("<stdin>: invalid YAML"),
        "{}",
        stderr_of(&output)
    );

    // No --manifests and no way to reach an API: one line saying what was tried.
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", dir.path().join("no-home"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("tried KUBECONFIG or ~/.kube/config, then the in-cluster service account"),
        "{stderr}"
    );

    let output = run(&["--kubeconfig", "/nonexistent/kubeconfig"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).starts_with("headless-dns: --kubeconfig /nonexistent/kubeconfig: "));

    // A context the kubeconfig does not have is named, with the ones it has.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: kind-a, context: {cluster: c, user: u}}, {name: kind-b, context: {cluster: c, user: u}}]\n\
         current-context: kind-a\n",
    )
    .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let output = run(&["--kubeconfig", kubeconfig, "--context", "kind-c"], None);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr_of(&output).trim_end(),
        format!(
            "headless-dns: --context kind-c: no such context in {kubeconfig} (it has kind-a, kind-b)"
        )
    );
    let output = Command::new(BINARY)
        .args([
            "--context",
            "kind-c",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("--context kind-c: no such context in KUBECONFIG or ~/.kube/config (it has kind-a, kind-b)"),
        "{}",
        stderr_of(&output)
    );

    // With JSON logs, a fatal error is one JSON line too: from the flags, and from the start.
    for (flags, says) in [
        (&["--log-format", "json", "--zone", "a b"][..], "--zone"),
        (
            &[
                "--log-format=json",
                "--manifests",
                "/nonexistent/cluster.yaml",
            ],
            "cannot read",
        ),
        (
            &["--log-format", "json", "--lameduck", "soon"],
            "--lameduck",
        ),
    ] {
        let output = run(flags, None);
        assert_ne!(output.status.code(), Some(0), "{flags:?}");
        let stderr = stderr_of(&output);
        let last = stderr.lines().last().unwrap_or_default();
        let line: serde_json::Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("{flags:?}: not JSON ({e}): {stderr}"));
        assert_eq!(line["level"], "ERROR", "{last}");
        assert!(
            line["fields"]["message"].as_str().unwrap().contains(says),
            "{last}"
        );
        assert!(
            line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{last}"
        );
    }

    // A bad flag is one line too, clap's tip included, without the usage.
    let output = run(&["--listn", "x"], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr_of(&output),
        "headless-dns: unexpected argument '--listn' found; tip: a similar argument exists: \
         '--listen' (headless-dns --help lists the flags)\n"
    );

    // A bad zone's offending character is shown, escaped, with its position.
    let output = run(
        &[
            "--manifests",
            "config/demo-cluster.yaml",
            "--zone",
            "clu ster.local",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("' ' (U+0020) at character 4 is not allowed"),
        "{}",
        stderr_of(&output)
    );

    for flags in [
        &[
            "--manifests",
            "config/demo-cluster.yaml",
            "--namespace",
            "team-a",
        ][..],
        &["--namespace", "Not_A_Namespace"],
        &["--selector", ""],
        &["--manifests", "config/demo-cluster.yaml", "--ttl", "3601"],
        &[
            "--manifests",
            "config/demo-cluster.yaml",
            "--pod-records",
            "sometimes",
        ],
        &[
            "--manifests",
            "config/demo-cluster.yaml",
            "--zone",
            "bad..zone",
        ],
        &[
            "--manifests",
            "config/demo-cluster.yaml",
            "--listen-on",
            "x",
        ],
    ] {
        let output = run(flags, None);
        assert_ne!(output.status.code(), Some(0), "{flags:?}");
        assert!(
            !stderr_of(&output).contains("panicked"),
            "{flags:?}: {}",
            stderr_of(&output)
        );
        assert!(!stderr_of(&output).is_empty(), "{flags:?}");
    }
}

/// `--help` and the README's flag table name the same flags, with the same value names and
/// the same defaults where the README gives a literal one.
#[test]
fn help_and_the_readme_agree_on_flags() {
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let mut from_help = Vec::new();
    let mut defaults = std::collections::HashMap::new();
    let mut current = None;
    for line in help.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("--") {
            let (flag, value) = rest.split_once(" <").unwrap_or((rest, ""));
            if flag == "help" || flag == "version" {
                current = None;
                continue;
            }
            let flag_and_value = format!("--{flag} {}", value.trim_end_matches('>'));
            from_help.push(flag_and_value.trim_end().to_owned());
            current = Some(format!("--{flag}"));
        } else if let (Some(flag), Some(default)) = (&current, line.strip_prefix("[default: ")) {
            defaults.insert(flag.clone(), default.trim_end_matches(']').to_owned());
        }
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("## Flags")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("| `--"));
    let mut from_readme = Vec::new();
    for row in table {
        let cells: Vec<&str> = row.split(" | ").collect();
        let flag = cells[0].trim_start_matches("| ").trim_matches('`');
        from_readme.push(flag.to_owned());
        let name = flag.split(' ').next().unwrap();
        let default = cells[1].trim();
        if default.starts_with('`') && default.ends_with('`') && !default.contains(", ") {
            assert_eq!(
                defaults.get(name).map(String::as_str),
                Some(default.trim_matches('`')),
                "default of {name}"
            );
        }
    }
    from_help.sort();
    from_readme.sort();
    assert_eq!(from_help, from_readme);
}
