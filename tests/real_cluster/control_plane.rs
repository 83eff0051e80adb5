//! A real control plane on loopback, as controller-runtime's envtest starts one: etcd,
//! kube-apiserver (generated certificates, static tokens, RBAC, dual-stack service ranges) and
//! kube-controller-manager running the EndpointSlice controller (and the service-account and
//! namespace controllers pods and namespaces need). No kubelet and no scheduler: the cases play
//! the kubelet. Every process is killed when its handle drops, also on failure.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// The admin's static token (group system:masters).
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
/// The service ranges: the first family is the cluster's primary.
pub const SERVICE_RANGES: &str = "10.96.0.0/16,fd00:10:96::/112";

/// A child process, killed when dropped; its output goes to `<work>/<name>.log`.
pub struct Process {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn start(work: &Path, name: &str, program: &Path, args: &[String]) -> Result<Self, String> {
        Self::start_on(work, name, None, program, args)
    }

    /// Starts `program` on the CPUs `cpus` (a `taskset -c` list) from its first instruction, so
    /// that runtimes sizing themselves by the CPUs they may use (Go's GOMAXPROCS, headless-dns's
    /// threads) see only those; `None`: every CPU.
    pub fn start_on(
        work: &Path,
        name: &str,
        cpus: Option<&str>,
        program: &Path,
        args: &[String],
    ) -> Result<Self, String> {
        let mut command = match cpus {
            // taskset execs the program: the pid stays the program's.
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpus]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.args(args);
        Self::spawn(work, name, command)
    }

    /// Starts `command` (its program, arguments and environment as given).
    pub fn spawn(work: &Path, name: &str, mut command: Command) -> Result<Self, String> {
        let log = work.join(format!("{name}.log"));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        // Killed with this process however it ends (Ctrl-C or a kill included, where no Drop
        // runs): nothing is left listening after a run.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// The last `lines` lines of its output.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill with a pid we own and a valid signal number.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free TCP port on loopback (free when asked; nothing reserves it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(program: &str, args: &[&str], work: &Path) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(work)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A CA, the API server's serving certificate, and the service-account signing key pair, made
/// with openssl in `work`.
fn certificates(work: &Path) -> Result<(), String> {
    let ec = [
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
    ];
    run("openssl", &[&ec[..], &["ca.key"]].concat(), work)?;
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=headless-dns-test-ca",
        ],
        work,
    )?;
    run("openssl", &[&ec[..], &["apiserver.key"]].concat(), work)?;
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            "apiserver.key",
            "-out",
            "apiserver.csr",
            "-subj",
            "/CN=kube-apiserver",
        ],
        work,
    )?;
    std::fs::write(
        work.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes,\
         DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1\n",
    )
    .map_err(|e| e.to_string())?;
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "apiserver.crt",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
        work,
    )?;
    run("openssl", &[&ec[..], &["sa.key"]].concat(), work)?;
    run(
        "openssl",
        &["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        work,
    )?;
    std::fs::write(
        work.join("tokens.csv"),
        format!("{ADMIN_TOKEN},admin,admin-uid,system:masters\n"),
    )
    .map_err(|e| e.to_string())
}

/// A kubeconfig for `server` that authenticates with `token`.
pub fn kubeconfig(work: &Path, server: &str, token: &str) -> String {
    kubeconfig_of(&[("test", work, server, token)])
}

/// A kubeconfig with one context per `(name, work, server, token)`: the API server at `server`,
/// whose CA is in `work`, reached with `token`; the first is the current context.
pub fn kubeconfig_of(contexts: &[(&str, &Path, &str, &str)]) -> String {
    let current = contexts.first().map_or("test", |c| c.0);
    let mut clusters = String::new();
    let mut named = String::new();
    let mut users = String::new();
    for (name, work, server, token) in contexts {
        let ca = std::fs::read(work.join("ca.crt")).unwrap_or_default();
        let ca = base64::engine::general_purpose::STANDARD.encode(ca);
        clusters += &format!(
            "- name: {name}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n"
        );
        named += &format!("- name: {name}\n  context: {{cluster: {name}, user: {name}}}\n");
        users += &format!("- name: {name}\n  user: {{token: {token}}}\n");
    }
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {current}\nclusters:\n{clusters}\
         contexts:\n{named}users:\n{users}"
    )
}

pub struct ControlPlane {
    pub work: PathBuf,
    pub bin: PathBuf,
    pub etcd: Option<Process>,
    pub apiserver: Option<Process>,
    pub controllers: Option<Process>,
    pub api_port: u16,
    etcd_port: u16,
    /// The admin's kubeconfig.
    pub admin: PathBuf,
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager from `bin` in `work`, and waits
    /// for the API server to be ready.
    pub fn start(bin: &Path, work: &Path) -> Result<Self, String> {
        certificates(work)?;
        let api_port = free_port();
        let admin = work.join("admin.kubeconfig");
        std::fs::write(
            &admin,
            kubeconfig(work, &format!("https://127.0.0.1:{api_port}"), ADMIN_TOKEN),
        )
        .map_err(|e| e.to_string())?;
        let mut plane = Self {
            work: work.to_path_buf(),
            bin: bin.to_path_buf(),
            etcd: None,
            apiserver: None,
            controllers: None,
            api_port,
            etcd_port: free_port(),
            admin,
        };
        plane.start_etcd()?;
        plane.start_apiserver()?;
        plane.start_controllers()?;
        Ok(plane)
    }

    /// Installs the Multi-Cluster Services API's CRDs (from `mcs-api-<version>/` beside the
    /// binaries, as build.sh puts them) with kubectl, and waits until ServiceImports are served.
    pub fn install_mcs_crds(&self) -> Result<(), String> {
        let crds = std::fs::read_dir(&self.bin)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("mcs-api-"))
            })
            .ok_or("no mcs-api-<version> directory beside the binaries (run build.sh)")?;
        self.kubectl(&["apply", "--server-side", "-f", &crds.display().to_string()])?;
        for crd in ["serviceimports", "serviceexports"] {
            self.kubectl(&[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{crd}.multicluster.x-k8s.io"),
            ])?;
        }
        Ok(())
    }

    /// Runs the tier's kubectl with `args` as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Result<(), String> {
        let kubectl = self.bin.join("kubectl").display().to_string();
        let admin = self.admin.display().to_string();
        let mut all = vec!["--kubeconfig", admin.as_str()];
        all.extend_from_slice(args);
        run(&kubectl, &all, &self.work)
    }

    /// `kubectl apply` of the manifests `text`, as the admin.
    pub fn apply(&self, text: &str) -> Result<(), String> {
        let file = self.work.join("applied.yaml");
        std::fs::write(&file, text).map_err(|e| e.to_string())?;
        self.kubectl(&["apply", "-f", &file.display().to_string()])
    }

    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }

    fn start_etcd(&mut self) -> Result<(), String> {
        let peer = free_port();
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{peer}");
        let args: Vec<String> = [
            "--name=test",
            &format!("--data-dir={}", self.work.join("etcd").display()),
            &format!("--listen-client-urls={client}"),
            &format!("--advertise-client-urls={client}"),
            &format!("--listen-peer-urls={peer}"),
            &format!("--initial-advertise-peer-urls={peer}"),
            &format!("--initial-cluster=test={peer}"),
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
        .map(String::from)
        .to_vec();
        self.etcd = Some(Process::start(
            &self.work,
            "etcd",
            &self.bin.join("etcd"),
            &args,
        )?);
        wait_for(Duration::from_secs(30), "etcd to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", self.etcd_port)).is_ok()
        })
    }

    /// Starts (or restarts) kube-apiserver and waits until it is ready.
    pub fn start_apiserver(&mut self) -> Result<(), String> {
        self.start_apiserver_with(&[])
    }

    /// Starts (or restarts) kube-apiserver with `extra` flags and waits until it is ready.
    pub fn start_apiserver_with(&mut self, extra: &[String]) -> Result<(), String> {
        let w = |file: &str| self.work.join(file).display().to_string();
        let mut args: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_port),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", self.api_port),
            format!("--tls-cert-file={}", w("apiserver.crt")),
            format!("--tls-private-key-file={}", w("apiserver.key")),
            format!("--client-ca-file={}", w("ca.crt")),
            format!("--token-auth-file={}", w("tokens.csv")),
            "--authorization-mode=RBAC".into(),
            format!("--service-cluster-ip-range={SERVICE_RANGES}"),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", w("sa.pub")),
            format!("--service-account-signing-key-file={}", w("sa.key")),
            "--allow-privileged=true".into(),
            "--enable-priority-and-fairness=false".into(),
            format!("--cert-dir={}", w("apiserver-certs")),
            "--v=0".into(),
        ];
        args.extend_from_slice(extra);
        let log_name = match &self.apiserver {
            Some(_) => "kube-apiserver-restarted",
            None => "kube-apiserver",
        };
        self.apiserver = None;
        let mut process = Process::start(
            &self.work,
            log_name,
            &self.bin.join("kube-apiserver"),
            &args,
        )?;
        let url = format!("https://127.0.0.1:{}/readyz", self.api_port);
        let ready = wait_for(
            Duration::from_secs(90),
            "kube-apiserver to be ready",
            || curl_ok(&self.work, &url) || process.exited().is_some(),
        );
        if let Some(status) = process.exited() {
            return Err(format!(
                "kube-apiserver exited ({status}):\n{}",
                process.tail(20)
            ));
        }
        ready.map_err(|e| format!("{e}:\n{}", process.tail(20)))?;
        self.apiserver = Some(process);
        Ok(())
    }

    pub fn stop_apiserver(&mut self) {
        if let Some(process) = self.apiserver.take() {
            process.stop();
        }
    }

    fn start_controllers(&mut self) -> Result<(), String> {
        let args: Vec<String> = vec![
            format!("--kubeconfig={}", self.admin.display()),
            "--controllers=endpointslice,serviceaccount,namespace,deployment,replicaset".into(),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
            "--use-service-account-credentials=false".into(),
            format!("--service-cluster-ip-range={SERVICE_RANGES}"),
            "--v=0".into(),
        ];
        let mut process = Process::start(
            &self.work,
            "kube-controller-manager",
            &self.bin.join("kube-controller-manager"),
            &args,
        )?;
        std::thread::sleep(Duration::from_secs(1));
        if let Some(status) = process.exited() {
            return Err(format!(
                "kube-controller-manager exited ({status}):\n{}",
                process.tail(20)
            ));
        }
        self.controllers = Some(process);
        Ok(())
    }
}

/// Whether an HTTPS GET of `url` with the admin token answers 200 (curl, trusting our CA).
fn curl_ok(work: &Path, url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "2", "--cacert"])
        .arg(work.join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}"), url])
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
pub fn wait_for(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("timed out after {limit:?} waiting for {what}"))
}

/// An address the DNS servers under test listen on.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
