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

/// A port nothing listens on now (for a server whose address must be known before it starts).
pub fn free_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Knot,
    Nsd,
    Bind,
}

impl Secondary {
    /// `kind` on `port`, secondary for `zones` of the primary at `primary`, taking NOTIFY from
    /// it. Each runs in the foreground, as root or not, with everything under `dir`.
    pub fn start(kind: Kind, dir: &Path, port: u16, primary: SocketAddr, zones: &[&str]) -> Self {
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        let (ip, primary_port, dir_text) = (primary.ip(), primary.port(), dir.display());
        let path = dir.join("secondary.conf");
        let mut command = match kind {
            Kind::Knot => {
                let mut config = format!(
                    "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir_text}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
                     log:\n  - target: stderr\n    any: info\n\
                     database:\n    storage: {dir_text}/db\n\
                     remote:\n  - id: primary\n    address: {ip}@{primary_port}\n\
                     acl:\n  - id: from_primary\n    address: {ip}\n    action: notify\n\
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
                     remote-control:\n  control-enable: no\n"
                );
                for zone in zones {
                    config.push_str(&format!(
                        "zone:\n  name: {zone}\n  request-xfr: {ip}@{primary_port} NOKEY\n  allow-notify: {ip} NOKEY\n"
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
                     controls {{ }};\n"
                );
                for zone in zones {
                    config.push_str(&format!(
                        "zone \"{zone}\" {{\n  type secondary;\n  primaries port {primary_port} {{ {ip}; }};\n\
                         \x20 file \"zones/{zone}.db\";\n  allow-notify {{ {ip}; }};\n}};\n"
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
