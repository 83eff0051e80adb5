//! The built binary as a child process: its log collected line by line, the DNS and HTTP
//! addresses it reports, its CPU time; killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_headless-dns");

pub struct Process {
    child: Child,
    pub dns: SocketAddr,
    pub http: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `binary`, from the crate's directory, on ephemeral DNS and HTTP ports on 127.0.0.1, with the
/// default log filter: what [`Process::start`] takes, to add arguments and a wrapper to.
pub fn command(wrapper: Option<&[&str]>) -> Command {
    let mut command = match wrapper {
        Some([program, args @ ..]) => {
            let mut command = Command::new(program);
            command.args(args).arg(BINARY);
            command
        }
        _ => Command::new(BINARY),
    };
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG");
    command
}

/// The value of log field `name` in a text (`name=value`) or JSON (`"name":"value"`) line.
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    if let Some(rest) = line.split(&format!("\"{name}\":")).nth(1) {
        let rest = rest.trim_start_matches('"');
        return rest.split(['"', ',', '}']).next();
    }
    let rest = line.split(&format!("{name}=")).nth(1)?;
    rest.split_whitespace().next()
}

impl Process {
    /// Starts `command` and waits until it reports the addresses it answers on.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines, collected) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(lines).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (dns, http) = loop {
            if Instant::now() >= deadline || matches!(child.try_wait(), Ok(Some(_))) {
                // Not left running behind the failed test.
                let _ = child.kill();
                let _ = child.wait();
                panic!("never listened: {:?}", log.lock().unwrap());
            }
            let found = log.lock().unwrap().iter().find_map(|line| {
                let dns = field(line, "dns_addr")?.parse().ok()?;
                let http = field(line, "http_addr")?.parse().ok()?;
                Some((dns, http))
            });
            if let Some(found) = found {
                break found;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            dns,
            http,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions; the pid is our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("waitpid works") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The log lines so far that contain `text`.
    pub fn lines(&self, text: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(text)).cloned().collect()
    }

    /// Waits up to `limit` for a log line containing `text`; returns it and how long it took.
    pub fn wait_for_line(&self, text: &str, limit: Duration) -> Option<(String, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(line) = self.lines(text).into_iter().next() {
                return Some((line, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Seconds of CPU (user + system) the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}
