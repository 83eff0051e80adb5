//! Standard name servers (Knot DNS, NSD, BIND) run as secondaries of headless-dns on loopback,
//! for the transfer tests and the secondary-latency benchmark.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A secondary server of one of the three kinds, killed when dropped.
pub struct Secondary {
    child: Child,
    pub addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing uses now, for UDP and TCP, for a server whose address must be known before
/// it starts. Taken below the kernel's ephemeral range: a port from that range can be given
/// to some test's outgoing connection before the server binds it.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = ephemeral_start.saturating_sub(12_000).max(1024);
    let span = u64::from(ephemeral_start - low);
    for attempt in 0u64..1000 {
        let pick = RandomState::new().hash_one((std::process::id(), attempt)) % span;
        let port = low + pick as u16;
        let free = std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free port below {ephemeral_start}");
}

/// A TSIG key both sides are given.
pub struct Key {
    pub name: &'static str,
    pub algorithm: &'static str,
    pub secret: &'static str,
}

/// The key of the signed-transfer tests (a test secret, 32 random bytes).
pub const TEST_KEY: Key = Key {
    name: "transfer-key",
    algorithm: "hmac-sha256",
    secret: "3Ghb0oP7sA8yNq2xv1Kj5mWcT9uRzE4dLfYiX6nHgQs=",
};

impl Key {
    /// As headless-dns's `--tsig-key` takes it.
    pub fn flag(&self) -> String {
        format!("{}:{}:{}", self.name, self.algorithm, self.secret)
    }

    /// As `dig -y` takes it.
    pub fn dig(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret)
    }

    /// Its declaration in the configuration of `kind`.
    fn declaration(&self, kind: Kind) -> String {
        let Key {
            name,
            algorithm,
            secret,
        } = self;
        match kind {
            Kind::Knot => {
                format!("key:\n  - id: {name}\n    algorithm: {algorithm}\n    secret: {secret}\n")
            }
            Kind::Nsd => {
                format!(
                    "key:\n  name: \"{name}\"\n  algorithm: {algorithm}\n  secret: \"{secret}\"\n"
                )
            }
            Kind::Bind => {
                format!("key \"{name}\" {{ algorithm {algorithm}; secret \"{secret}\"; }};\n")
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Knot,
    Nsd,
    Bind,
}

impl Secondary {
    /// `kind` on `port`, secondary for `zones` of the primary at `primary`, taking NOTIFY from
    /// it; with `key`, transfers and NOTIFYs both ways are signed with it. Each runs in the foreground, as root or not, with everything
    /// under `dir`.
    pub fn start(
        kind: Kind,
        dir: &Path,
        port: u16,
        primary: SocketAddr,
        zones: &[&str],
        key: Option<&Key>,
    ) -> Self {
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        let (ip, primary_port, dir_text) = (primary.ip(), primary.port(), dir.display());
        let path = dir.join("secondary.conf");
        let declaration = key.map(|key| key.declaration(kind)).unwrap_or_default();
        let mut command = match kind {
            Kind::Knot => {
                let use_key = key.map(|key| format!("    key: {}\n", key.name));
                let use_key = use_key.unwrap_or_default();
                let mut config = format!(
                    "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir_text}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
                     log:\n  - target: stderr\n    any: info\n\
                     database:\n    storage: {dir_text}/db\n{declaration}\
                     remote:\n  - id: primary\n    address: {ip}@{primary_port}\n{use_key}\
                     acl:\n  - id: from_primary\n    address: {ip}\n    action: notify\n{use_key}\
                     template:\n  - id: default\n    storage: {dir_text}/zones\n    master: primary\n    acl: from_primary\n    zonefile-sync: -1\n\
                     zone:\n"
                );
                for zone in zones {
                    config.push_str(&format!("  - domain: {zone}\n"));
                }
                std::fs::write(&path, config).unwrap();
                let mut command = Command::new("knotd");
                command.arg("-c").arg(&path);
                command
            }
            Kind::Nsd => {
                let mut config = format!(
                    "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n\
                     \x20 zonesdir: \"{dir_text}/zones\"\n  pidfile: \"{dir_text}/nsd.pid\"\n  xfrdfile: \"{dir_text}/xfrd.state\"\n\
                     \x20 xfrdir: \"{dir_text}\"\n  zonelistfile: \"{dir_text}/zone.list\"\n  database: \"\"\n  verbosity: 1\n  server-count: 1\n\
                     remote-control:\n  control-enable: no\n{declaration}"
                );
                let key_name = key.map_or("NOKEY", |key| key.name);
                for zone in zones {
                    config.push_str(&format!(
                        "zone:\n  name: {zone}\n  request-xfr: {ip}@{primary_port} {key_name}\n  allow-notify: {ip} {key_name}\n"
                    ));
                }
                std::fs::write(&path, config).unwrap();
                let mut command = Command::new("nsd");
                command.arg("-d").arg("-c").arg(&path);
                command
            }
            Kind::Bind => {
                let mut config = format!(
                    "options {{\n  directory \"{dir_text}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n\
                     \x20 pid-file \"{dir_text}/named.pid\";\n  session-keyfile \"{dir_text}/session.key\";\n\
                     \x20 managed-keys-directory \"{dir_text}\";\n  recursion no;\n  dnssec-validation no;\n  notify no;\n}};\n\
                     controls {{ }};\n{declaration}"
                );
                let (primary, notifier) = match key {
                    Some(key) => (
                        format!("{ip} key \"{}\"", key.name),
                        format!("key \"{}\"", key.name),
                    ),
                    None => (ip.to_string(), ip.to_string()),
                };
                for zone in zones {
                    config.push_str(&format!(
                        "zone \"{zone}\" {{\n  type secondary;\n  primaries port {primary_port} {{ {primary}; }};\n\
                         \x20 file \"zones/{zone}.db\";\n  allow-notify {{ {notifier}; }};\n}};\n"
                    ));
                }
                std::fs::write(&path, config).unwrap();
                let mut command = Command::new("named");
                command.arg("-g").arg("-c").arg(&path);
                command
            }
        };
        let log = std::fs::File::create(dir.join("secondary.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?} is installed (Debian: knot, nsd, bind9): {e}"));
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: dir.join("secondary.log"),
        }
    }

    /// The end of its log, for a failure's message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}
