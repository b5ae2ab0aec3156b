//! libreswan's `global-redirect` as the baseline responder (docs/testing.md §5.3): one pluto
//! in the responder namespace with its own config, run, NSS and log directories; one
//! per address family (it hands IPv6 clients IPv4 gateways when given both).

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netlink::Netns;

const PLUTO: &str = "/usr/libexec/ipsec/pluto";

/// Why pluto cannot run here, or `None` when it can.
pub fn missing() -> Option<String> {
    if !Path::new(PLUTO).exists() {
        return Some(format!("{PLUTO} not installed (apt-get install libreswan)"));
    }
    let certutil = Command::new("certutil")
        .arg("-H")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if certutil.is_err() {
        return Some("certutil not installed (apt-get install libnss3-tools)".into());
    }
    None
}

/// A running pluto; killed (by its pid) and its directory removed on drop.
pub struct Pluto {
    child: Child,
    /// Private (mode 0700, random name, mkdtemp): a fixed /tmp path could be created
    /// first, or linked elsewhere, by any local user. Removed when dropped, after the
    /// child is gone (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl Pluto {
    pub fn start(ns: &Netns, listen: IpAddr, target: IpAddr) -> Result<Self, String> {
        let tmp = tempfile::Builder::new()
            .prefix("ikelb-flood-pluto-")
            .tempdir()
            .map_err(|e| format!("private temporary directory: {e}"))?;
        let dir = tmp.path().to_path_buf();
        let io = |what: &str, e: std::io::Error| format!("{what} in {}: {e}", dir.display());
        std::fs::create_dir_all(dir.join("ipsec.d")).map_err(|e| io("mkdir", e))?;
        std::fs::create_dir_all(dir.join("nss")).map_err(|e| io("mkdir", e))?;
        let st = Command::new("certutil")
            .arg("-N")
            .arg("-d")
            .arg(format!("sql:{}", dir.join("nss").display()))
            .arg("--empty-password")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| io("certutil", e))?;
        if !st.success() {
            return Err(format!("certutil -N failed: {st}"));
        }
        std::fs::write(
            dir.join("ipsec.conf"),
            format!(
                "config setup\n  listen={listen}\n  global-redirect=yes\n  global-redirect-to={target}\n"
            ),
        )
        .map_err(|e| io("write ipsec.conf", e))?;
        std::fs::write(dir.join("ipsec.secrets"), "").map_err(|e| io("write secrets", e))?;
        let mut cmd = Command::new(PLUTO);
        cmd.arg("--nofork")
            .arg("--config")
            .arg(dir.join("ipsec.conf"))
            .arg("--rundir")
            .arg(&dir)
            .arg("--nssdir")
            .arg(dir.join("nss"))
            .arg("--ipsecdir")
            .arg(dir.join("ipsec.d"))
            .arg("--secretsfile")
            .arg(dir.join("ipsec.secrets"))
            .arg("--logfile")
            .arg(dir.join("pluto.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A child starts in the namespace of the thread that forks it.
        let child = ns
            .enter(|| cmd.spawn())
            .and_then(|r| r)
            .map_err(|e| io("spawn pluto", e))?;
        let mut p = Pluto { child, dir: tmp };
        p.wait_listening(ns, listen)?;
        Ok(p)
    }

    /// Waits until pluto has its IKE socket on `listen`:500 (at most 10 s).
    fn wait_listening(&mut self, ns: &Netns, listen: IpAddr) -> Result<(), String> {
        // /proc/net/udp{,6} print each 32-bit word of the address in host order.
        let (table, octets) = match listen {
            IpAddr::V4(a) => ("udp", a.octets().to_vec()),
            IpAddr::V6(a) => ("udp6", a.octets().to_vec()),
        };
        let mut want: String = octets
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
            .collect();
        want.push_str(":01F4");
        let path = format!("/proc/thread-self/net/{table}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "pluto exited ({st}); see {}",
                    self.dir.path().join("pluto.log").display()
                ));
            }
            let udp = ns
                .enter(|| std::fs::read_to_string(&path))
                .and_then(|r| r)
                .unwrap_or_default();
            if udp.contains(&want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("pluto did not open its IKE socket within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pluto {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
