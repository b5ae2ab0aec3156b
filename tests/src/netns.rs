//! Network namespaces and veth pairs as guards that undo themselves on drop.
//!
//! Names are unique per process and call: `ikt<pid>x<n>-<role>` for namespaces, and
//! [`unique_tag`] for anything that must be unique host-wide (ikelb pins its maps under
//! `/sys/fs/bpf/ikelb/<iface>/`, and bpffs is not per netns).

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

use crate::cmd::{self, command};

/// Prefix of every namespace this crate creates.
pub const NETNS_PREFIX: &str = "ikt";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A short tag unique on this host while this process lives: pid and counter in hex,
/// at most 8 characters, so `<2 letters><tag>` fits an interface name (15 bytes).
pub fn unique_tag() -> String {
    format!("{:x}{:x}", std::process::id() & 0xff_ffff, next() & 0xff)
}

/// A named network namespace, deleted on drop. Processes still running inside keep it
/// alive as an anonymous namespace, so stop daemons (by pid) before dropping this.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `ikt<pid>x<n>-<role>` with `lo` up.
    pub fn new(role: &str) -> Result<Self> {
        let name = format!("{NETNS_PREFIX}{}x{}-{role}", std::process::id(), next());
        cmd::run(&mut command("ip", ["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, for `nsenter --net=`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip netns exec <ns> prog`: a private mount namespace with a fresh /sys (so bpffs
    /// is hidden: use [`Netns::nsenter`] for ikelb and bpftool).
    pub fn exec(&self, prog: &str) -> Command {
        let mut c = command("ip", ["netns", "exec", &self.name, prog]);
        c.env_remove("STRONGSWAN_CONF");
        c
    }

    /// `nsenter --net=/run/netns/<ns> prog`: only the network namespace changes.
    pub fn nsenter(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display())).arg(prog);
        c
    }

    /// Runs `prog args` inside, failing on a non-zero exit; returns stdout.
    pub fn run(&self, prog: &str, args: &[&str]) -> Result<String> {
        cmd::run(self.exec(prog).args(args))
    }

    /// `ip -n <ns> args`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        cmd::run(command("ip", ["-n", &self.name]).args(args))
    }

    /// Sets a sysctl inside (e.g. `net.ipv4.conf.all.arp_ignore`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run("sysctl", &["-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Adds `cidr` to `dev`; IPv6 addresses get `nodad` so they are usable at once.
    pub fn addr_add(&self, dev: &str, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Runs `f` on a thread inside this namespace (setns(2) moves that thread only).
    pub fn within<R: Send>(&self, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || -> Result<R> {
                let ns = std::fs::File::open(&path)
                    .with_context(|| format!("open {}", path.display()))?;
                // SAFETY: setns on a namespace fd we opened; only this thread moves, and
                // it ends when the scope does.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    bail!(
                        "setns {}: {}",
                        path.display(),
                        std::io::Error::last_os_error()
                    );
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| bail!("thread in {} panicked", self.name))
        })
    }

    /// Turns tx checksum offload off on `dev`, so frames leave with complete UDP
    /// checksums (a veth otherwise delivers CHECKSUM_PARTIAL, which XDP sees as bad).
    pub fn tx_csum_off(&self, dev: &str) -> Result<()> {
        self.run("ethtool", &["-K", dev, "tx", "off"]).map(drop)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = command("ip", ["netns", "del", &self.name]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("warning: ip netns del {}: {e}", self.name),
        }
    }
}

/// One end of a veth pair: (namespace name, interface name).
#[derive(Clone, Debug)]
pub struct End {
    pub netns: String,
    pub iface: String,
}

/// A veth pair, deleted on drop if it still exists (deleting a namespace deletes it too).
#[derive(Debug)]
pub struct Veth {
    pub a: End,
    pub b: End,
}

impl Veth {
    /// Creates `a_if` in `a` and its peer `b_if` in `b`, both up, with optional fixed MACs.
    pub fn new(
        a: &Netns,
        a_if: &str,
        a_mac: Option<&str>,
        b: &Netns,
        b_if: &str,
        b_mac: Option<&str>,
    ) -> Result<Self> {
        if a_if.len() > 15 || b_if.len() > 15 {
            bail!("interface names longer than 15 bytes: {a_if} {b_if}");
        }
        let mut args = vec!["link", "add", a_if];
        if let Some(m) = a_mac {
            args.extend(["address", m]);
        }
        args.extend(["type", "veth", "peer", "name", b_if, "netns", b.name()]);
        if let Some(m) = b_mac {
            args.extend(["address", m]);
        }
        a.ip(&args)
            .with_context(|| format!("veth {}:{a_if} <-> {}:{b_if}", a.name(), b.name()))?;
        let veth = Veth {
            a: End {
                netns: a.name().into(),
                iface: a_if.into(),
            },
            b: End {
                netns: b.name().into(),
                iface: b_if.into(),
            },
        };
        a.ip(&["link", "set", a_if, "up"])?;
        b.ip(&["link", "set", b_if, "up"])?;
        Ok(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Ignore failures: the namespace (and with it the pair) may be gone already.
        let _ = command("ip", ["-n", &self.a.netns, "link", "del", &self.a.iface]).output();
    }
}

/// Deletes namespaces that an earlier, killed run of this crate left behind: those named
/// `ikt<pid>x…` whose `<pid>` is no longer alive. Never touches anything else.
pub fn remove_stale() {
    let Ok(list) = cmd::run(&mut command("ip", ["netns", "list"])) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = command("ip", ["netns", "del", name]).output();
        }
    }
}
