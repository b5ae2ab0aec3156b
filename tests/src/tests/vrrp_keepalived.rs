//! VRRPv3 interop with keepalived 2.2.7 (`vrrp_version 3`), docs/testing.md §6: ikelb
//! takes over from a keepalived Active, keepalived takes over from a killed ikelb, and a
//! lower-priority ikelb follows keepalived and takes over at once on its priority-0
//! advert; over multicast and unicast (the unicast checksum trap of docs/protocol.md
//! §3.4: ikelb never sends the 224.0.0.18 form), and with the plain checksum form,
//! which keepalived 2.2.7 rejects.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::daemon::Daemon;
use crate::netns::{Netns, Veth, unique_tag};

/// Polls `f` every 5 ms until it holds or `timeout` passes; returns the time it took.
pub(super) fn wait_for(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> bool,
) -> Result<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return Ok(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

/// True when `addr` (IPv4 or IPv6) is on `dev` in `ns`.
pub(super) fn has_addr(ns: &Netns, dev: &str, addr: &str) -> bool {
    ns.ip(&["-o", "addr", "show", "dev", dev])
        .map(|o| o.contains(&format!("inet {addr}/")) || o.contains(&format!("inet6 {addr}/")))
        .unwrap_or(false)
}

/// A run directory for configs and logs, removed on drop unless the test panicked.
pub(super) struct RunDir(pub PathBuf);

impl RunDir {
    pub(super) fn new(tag: &str) -> Result<Self> {
        let p = crate::workspace_target().join("cluster-tests").join(tag);
        std::fs::create_dir_all(&p).with_context(|| format!("mkdir {}", p.display()))?;
        Ok(RunDir(p))
    }
    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
        } else {
            if std::env::var_os("IKELB_TESTS_KEEP").is_none() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}

/// `ikelb run` in `ns` (through nsenter, so bpffs stays visible).
pub(super) fn spawn_ikelb(ns: &Netns, cfg: &Path, log: &Path) -> Result<Daemon> {
    let mut c = ns.nsenter(crate::lab::ikelb_bin().to_str().unwrap_or("ikelb"));
    c.arg("run").arg("--config").arg(cfg);
    Daemon::spawn("ikelb", c, log)
}

fn log_count(p: &Path, needle: &str) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.matches(needle).count())
        .unwrap_or(0)
}

struct Case {
    unicast: bool,
    plain: bool,
    /// IPv6: adverts from the link-local addresses to ff02::12 (multicast only here).
    v6: bool,
}

fn ikelb_toml(iface: &str, prio: u8, case: &Case, vip: &str, peer: &str, sock: &Path) -> String {
    let peers = if case.unicast {
        format!("peers = [\"{peer}\"]\n")
    } else {
        String::new()
    };
    let checksum = if case.plain { "plain" } else { "pseudo" };
    format!(
        "[dataplane]\niface = \"{iface}\"\nxdp-mode = \"skb\"\n\n[[vip]]\naddress = \"{vip}\"\n\n\
         [[target]]\nname = \"gw\"\nidentity = \"192.0.2.50\"\n\n\
         [[vrrp]]\nvrid = 51\npriority = {prio}\ninterval-cs = 10\nvips = [\"{vip}\"]\n\
         checksum = \"{checksum}\"\n{peers}\n[status]\nsocket = \"{}\"\n",
        sock.display()
    )
}

fn keepalived_conf(iface: &str, case: &Case, vip: &str, me: &str, peer: &str) -> String {
    let uni = if case.unicast {
        format!("  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n")
    } else {
        String::new()
    };
    format!(
        "global_defs {{\n  vrrp_version 3\n}}\nvrrp_instance VI4 {{\n  state BACKUP\n  \
         interface {iface}\n  virtual_router_id 51\n  priority 150\n  advert_int 0.1\n{uni}  \
         virtual_ipaddress {{\n    {vip}/{}\n  }}\n}}\n",
        if case.v6 { 128 } else { 32 }
    )
}

fn spawn_keepalived(ns: &Netns, dir: &RunDir) -> Result<Daemon> {
    let mut c = ns.exec("keepalived");
    c.args(["-n", "-l", "-D", "-G", "-P", "-R", "-f"])
        .arg(dir.file("ka.conf"))
        .arg("-p")
        .arg(dir.file("ka.pid"))
        .arg("-r")
        .arg(dir.file("ka.vrrp.pid"))
        .arg("-c")
        .arg(dir.file("ka.chk.pid"));
    Daemon::spawn("keepalived", c, &dir.file("ka.log"))
}

fn run_case(case: &Case) -> Result<()> {
    let tag = unique_tag();
    let dir = RunDir::new(&format!("vrrp-{tag}"))?;
    let a = Netns::new("vka")?;
    let b = Netns::new("vkb")?;
    let (ia, ib) = (format!("va{tag}"), format!("vb{tag}"));
    if case.v6 {
        // Link-local addresses usable at once: VRRP sends from them.
        for ns in [&a, &b] {
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
        }
    }
    let _veth = Veth::new(&a, &ia, None, &b, &ib, None)?;
    // Declared before the daemons so it runs after they are stopped.
    let _pins = crate::lab::IkelbPinsGuard(vec![ia.clone(), ib.clone()]);
    let (me_a, me_b, vip) = if case.v6 {
        ("", "", "2001:db8:79::100")
    } else {
        ("10.79.0.2", "10.79.0.3", "10.79.0.100")
    };
    if !case.v6 {
        a.addr_add(&ia, &format!("{me_a}/24"))?;
        b.addr_add(&ib, &format!("{me_b}/24"))?;
    }
    std::fs::write(
        dir.file("ka.conf"),
        keepalived_conf(&ib, case, vip, me_b, me_a),
    )?;
    let ka_log = dir.file("ka.log");
    let mut ka = spawn_keepalived(&b, &dir)?;
    wait_for("keepalived MASTER", Duration::from_secs(5), || {
        log_count(&ka_log, "Entering MASTER STATE") >= 1
    })?;

    // 1. ikelb (priority 200) preempts keepalived (150).
    let sock = dir.file("ikelb.sock");
    std::fs::write(
        dir.file("hi.toml"),
        ikelb_toml(&ia, 200, case, vip, me_b, &sock),
    )?;
    let log = dir.file("ikelb-hi.log");
    let mut hi = spawn_ikelb(&a, &dir.file("hi.toml"), &log)?;
    wait_for("ikelb active with the VIP", Duration::from_secs(10), || {
        has_addr(&a, &ia, vip)
    })?;
    if case.plain {
        // keepalived 2.2.7 rejects the plain form: it never sees ikelb as Active.
        wait_for(
            "keepalived rejecting the plain checksum",
            Duration::from_secs(3),
            || log_count(&ka_log, "Invalid VRRPv3 checksum") >= 1,
        )?;
        assert_eq!(
            log_count(&ka_log, "Entering BACKUP STATE"),
            1,
            "only the initial one"
        );
    } else {
        wait_for("keepalived BACKUP", Duration::from_secs(3), || {
            log_count(&ka_log, "Entering BACKUP STATE") >= 2
        })?;
        wait_for(
            "keepalived releasing the VIP",
            Duration::from_secs(3),
            || !has_addr(&b, &ib, vip),
        )?;
        assert_eq!(log_count(&ka_log, "Invalid VRRPv3 checksum"), 0);
        assert_eq!(
            log_count(&ka_log, "Setting unicast VRRPv3 checksum to old version"),
            0
        );

        // 2. keepalived takes over from a crashed ikelb.
        hi.signal(libc::SIGKILL);
        let took = wait_for("keepalived MASTER again", Duration::from_secs(3), || {
            log_count(&ka_log, "Entering MASTER STATE") >= 2
        })?;
        println!("keepalived took over from a killed ikelb after {took:?}");
    }
    hi.stop();

    // 3. A lower-priority ikelb follows keepalived (it accepts its pseudo-header
    //    adverts), then takes over on keepalived's priority-0 advert.
    std::fs::write(
        dir.file("lo.toml"),
        ikelb_toml(&ia, 100, case, vip, me_b, &sock),
    )?;
    let log = dir.file("ikelb-lo.log");
    let mut lo = spawn_ikelb(&a, &dir.file("lo.toml"), &log)?;
    wait_for("ikelb backup", Duration::from_secs(10), || {
        log_count(&log, "became backup") >= 1
    })?;
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        log_count(&log, "became active"),
        0,
        "ikelb must follow keepalived"
    );
    if !case.plain {
        assert_eq!(log_count(&ka_log, "Invalid VRRPv3 checksum"), 0);
    }
    ka.signal(libc::SIGTERM);
    let took = wait_for(
        "ikelb active after keepalived's stop",
        Duration::from_secs(3),
        || log_count(&log, "became active") >= 1,
    )?;
    println!("ikelb took over from a stopping keepalived after {took:?}");
    wait_for("the VIP on ikelb", Duration::from_secs(2), || {
        has_addr(&a, &ia, vip)
    })?;
    lo.stop();
    ka.stop();
    assert!(!has_addr(&a, &ia, vip), "a stopped ikelb releases the VIP");
    Ok(())
}

#[test]
fn keepalived_multicast_pseudo_checksum() {
    require_root!();
    run_case(&Case {
        unicast: false,
        plain: false,
        v6: false,
    })
    .unwrap();
}

/// IPv6 both ways: keepalived's adverts must arrive with hop limit 255 and on our
/// interface (`IPV6_HOPLIMIT`, `IPV6_PKTINFO`) for ikelb to follow it, and ikelb's must
/// leave from its link-local address for keepalived to yield.
#[test]
fn keepalived_ipv6_multicast_pseudo_checksum() {
    require_root!();
    run_case(&Case {
        unicast: false,
        plain: false,
        v6: true,
    })
    .unwrap();
}

#[test]
fn keepalived_unicast_pseudo_checksum() {
    require_root!();
    run_case(&Case {
        unicast: true,
        plain: false,
        v6: false,
    })
    .unwrap();
}

#[test]
fn keepalived_multicast_plain_checksum_is_rejected_by_2_2_7() {
    require_root!();
    run_case(&Case {
        unicast: false,
        plain: true,
        v6: false,
    })
    .unwrap();
}
