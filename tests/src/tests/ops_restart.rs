//! Restarts that keep the fast path (README "Operations", docs/architecture.md §3.4),
//! under a steady stream of real IKE_SA_INIT requests at 1000 a second:
//!
//! - the VIP owner of a cluster (VRRP priority 200 beside a priority-100 candidate,
//!   three reporting members) restarts with `ikelb restart`: no request is left
//!   unanswered, the candidate never changes state (its counters, and every VRRP
//!   advert captured on its link comes from the owner, priority 200, never further
//!   apart than the candidate's Active_Down_Interval), the new process resumes the
//!   Active role and keeps the cluster table, and reload and status work after it;
//! - an upgrade: the process hands over, the kept program answers alone for a second,
//!   and the next process replaces it on the same link (`--replace-program`, as a
//!   different build would): the link id stays, the program id changes, and every
//!   request before and after lands where it did (same table, same flow-hash key);
//!   and one whose maps changed layout: fresh maps, the same link, no request lost;
//! - a stop (SIGTERM) leaves nothing behind, and `ikelb detach` removes what a
//!   handover left that nobody took over.
//!
//! Configs set `rate-per-source` far above the default: the client sends every request
//! from one address.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lb_userspace::frames::RequestSpec;

use super::ops_net::{Segment, Sent, ikelb_ctl, need_root, redirect_gateway, stream};
use super::vrrp_keepalived::{RunDir, has_addr, wait_for};
use crate::capture::Capture;
use crate::daemon::Daemon;
use crate::netns::{Netns, unique_tag};

const VIP: &str = "10.81.0.100";
const KEY: &str = "restart-test-key-0123456789abcdef";

/// `ikelb run` in `ns` with `args` after the config (through nsenter: bpffs visible).
fn spawn_run(ns: &Netns, cfg: &Path, log: &Path, args: &[&str]) -> Result<Daemon> {
    let mut c = ns.nsenter(crate::lab::ikelb_bin().to_str().unwrap_or("ikelb"));
    c.arg("run").arg("--config").arg(cfg).args(args);
    Daemon::spawn("ikelb", c, log)
}

/// Waits for `d` to exit on its own; its exit code.
fn exit_code(d: &mut Daemon, timeout: Duration) -> Result<Option<i32>> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if let Some(st) = d.exited() {
            return Ok(st.code());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    bail!("{} did not exit within {timeout:?}", d.name)
}

/// The report as the JSON `ikelb status --json` prints.
fn status(sock: &Path) -> serde_json::Value {
    serde_json::to_value(lb_userspace::status::query(sock).unwrap_or_default()).unwrap_or_default()
}

/// IKE_SA_INIT requests to `vip`:500 from `ns`, `per_s` a second for `run_for`, each
/// with its own SPIi; answers are matched to requests by SPIi, up to 300 ms after the
/// last one left. Each request: when it was sent, the gateway its answer named.
fn paced(ns: &Netns, vip: &str, per_s: u32, run_for: Duration) -> Result<Vec<Sent>> {
    let f = std::fs::File::open(ns.path()).context("open client netns")?;
    // SAFETY: setns on this thread only (a netns is per thread), with a valid fd.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setns");
    }
    let sock = UdpSocket::bind("0.0.0.0:500").context("bind client :500")?;
    sock.set_nonblocking(true)?;
    let dst = format!("{vip}:500");
    let gap = Duration::from_secs(1) / per_s;
    let total = (run_for.as_nanos() / gap.as_nanos()) as usize;
    let mut spec = RequestSpec::default();
    let mut sent: Vec<Sent> = Vec::with_capacity(total);
    let mut by_spi: HashMap<[u8; 8], usize> = HashMap::new();
    let mut buf = [0u8; 2048];
    let t0 = Instant::now();
    loop {
        let now = Instant::now();
        if sent.len() < total && now >= t0 + gap * sent.len() as u32 {
            spec.spi_i = (0x7e57_0000_0000_0000u64 | sent.len() as u64).to_be_bytes();
            sock.send_to(&spec.ike(), &dst).context("send")?;
            by_spi.insert(spec.spi_i, sent.len());
            sent.push(Sent {
                at: now,
                gateway: None,
            });
            continue;
        }
        if sent.len() == total && now >= t0 + gap * total as u32 + Duration::from_millis(300) {
            return Ok(sent);
        }
        loop {
            match sock.recv_from(&mut buf) {
                Ok((len, _)) => {
                    let m = &buf[..len];
                    let spi: Option<[u8; 8]> = m.get(..8).and_then(|s| s.try_into().ok());
                    if let Some(&i) = spi.and_then(|s| by_spi.get(&s)) {
                        sent[i].gateway = sent[i].gateway.or(redirect_gateway(m));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("receive"),
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The VRRP adverts of a pcap, decoded by tshark: (seconds from the first, source,
/// priority).
fn adverts(pcap: &Path) -> Result<Vec<(f64, String, u8)>> {
    let mut c = crate::cmd::command("tshark", ["-n", "-r"]);
    c.arg(pcap).args([
        "-Y",
        "vrrp",
        "-T",
        "fields",
        "-e",
        "frame.time_relative",
        "-e",
        "ip.src",
        "-e",
        "vrrp.prio",
    ]);
    let out = crate::cmd::run(&mut c)?;
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f[..] {
                [t, src, prio] => Ok((t.parse()?, src.to_string(), prio.parse()?)),
                _ => bail!("tshark line {l:?}"),
            }
        })
        .collect()
}

fn node_toml(iface: &str, id: u32, prio: Option<u8>, sock: &str) -> String {
    let me = Segment::addr(id as usize - 1);
    let mut t = format!("[dataplane]\niface = \"{iface}\"\nrate-per-source = 1000000\n");
    if let Some(p) = prio {
        t.push_str(&format!(
            "xdp-mode = \"skb\"\n\n[[vip]]\naddress = \"{VIP}\"\n\n[[vrrp]]\nvrid = 83\n\
             priority = {p}\ninterval-cs = 10\nvips = [\"{VIP}\"]\n"
        ));
    }
    t.push_str(&format!(
        "\n[cluster]\nmember-id = {id}\ninterval-ms = 100\nidentities = [\"{me}\"]\nsas = 0\n\
         capacity = 1000\ncrypto-overload-pct = 1000\n\n[[cluster.key]]\nid = 1\nsecret = \"{KEY}\"\n\n\
         [status]\nsocket = \"{sock}\"\n"
    ));
    t
}

/// No pins, no handover record, no target names and no XDP program left for `iface`.
fn assert_nothing_left(ns: &Netns, iface: &str) {
    let pins = lb_userspace::dataplane::pin_dir_for(iface);
    assert!(!pins.exists(), "{} is left", pins.display());
    for ext in ["handover", "targets"] {
        let p = Path::new("/run/ikelb").join(format!("{iface}.{ext}"));
        assert!(!p.exists(), "{} is left", p.display());
    }
    let link = ns.ip(&["link", "show", "dev", iface]).unwrap();
    assert!(!link.contains("prog/xdp"), "XDP still attached: {link}");
}

#[test]
fn restart_of_the_vip_owner_loses_no_request_and_changes_no_role() {
    need_root();
    let dir = RunDir::new(&format!("ops-restart-{}", unique_tag())).unwrap();
    let names = ["a", "b", "m", "c"];
    let seg = Segment::new(&names).unwrap();
    let _pins = crate::lab::IkelbPinsGuard(seg.nodes.iter().map(|(_, i)| i.clone()).collect());
    let prios = [Some(200), Some(100), None];
    let mut daemons: Vec<Daemon> = Vec::new();
    let mut socks = Vec::new();
    for (i, (ns, iface)) in seg.nodes.iter().take(3).enumerate() {
        let sock = dir.file(&format!("{}.sock", names[i]));
        let cfg = dir.file(&format!("{}.toml", names[i]));
        let s = sock.to_string_lossy().into_owned();
        std::fs::write(&cfg, node_toml(iface, i as u32 + 1, prios[i], &s)).unwrap();
        let log = dir.file(&format!("{}.log", names[i]));
        daemons.push(if prios[i].is_some() {
            spawn_run(ns, &cfg, &log, &[]).unwrap()
        } else {
            let mut c = ns.nsenter(crate::lab::ikelb_bin().to_str().unwrap_or("ikelb"));
            c.arg("member").arg("--config").arg(&cfg);
            Daemon::spawn("ikelb-member", c, &log).unwrap()
        });
        socks.push(sock);
    }
    let (a_ns, a_if) = &seg.nodes[0];
    let (b_ns, b_if) = &seg.nodes[1];
    wait_for("a active with the VIP", Duration::from_secs(15), || {
        has_addr(a_ns, a_if, VIP)
    })
    .unwrap();
    wait_for(
        "three members in a's table",
        Duration::from_secs(15),
        || {
            status(&socks[0])["cluster"]["members"]
                .as_array()
                .map(Vec::len)
                == Some(3)
        },
    )
    .unwrap();
    let members: BTreeSet<IpAddr> = (0..3).map(|i| Segment::addr(i).parse().unwrap()).collect();
    // Whatever the start-up election did (the candidate may have been Active for a
    // moment if its program loaded first), from here on nothing may change.
    let b_active = status(&socks[1])["vrrp"][0]["became_active"].clone();
    let b_log_len = std::fs::read_to_string(&daemons[1].log).unwrap().len();
    let cap = Capture::start(b_ns, b_if, "ip proto 112", None, &dir.0, "vrrp").unwrap();

    let client = &seg.nodes[3].0;
    let a_cfg = dir.file("a.toml");
    let (sent, at, ready) = std::thread::scope(|sc| {
        let h = sc.spawn(|| paced(client, VIP, 1000, Duration::from_millis(4000)));
        std::thread::sleep(Duration::from_millis(1200));
        let at = Instant::now();
        let out = ikelb_ctl(&["restart"], &socks[0]).unwrap();
        assert!(out.contains("handing over"), "{out}");
        let code = exit_code(&mut daemons[0], Duration::from_secs(5)).unwrap();
        assert_eq!(code, Some(75), "the handover's exit status");
        let exited = at.elapsed();
        // As systemd with RestartForceExitStatus=75 and RestartSec=0 would.
        daemons[0] = spawn_run(a_ns, &a_cfg, &dir.file("a2.log"), &[]).unwrap();
        daemons[0]
            .wait_log("ready", Duration::from_secs(30))
            .unwrap();
        let ready = at.elapsed();
        (
            h.join().expect("client thread").unwrap(),
            at,
            (exited, ready),
        )
    });
    let lost: Vec<Duration> = sent
        .iter()
        .filter(|s| s.gateway.is_none())
        .map(|s| s.at.saturating_duration_since(at))
        .collect();
    let by = |from: Instant, to: Instant| -> BTreeMap<IpAddr, usize> {
        let mut m = BTreeMap::new();
        for s in sent.iter().filter(|s| s.at >= from && s.at < to) {
            if let Some(g) = s.gateway {
                *m.entry(g).or_insert(0) += 1;
            }
        }
        m
    };
    let before = by(sent[0].at, at);
    let after = by(at + ready.1, Instant::now());
    let path = cap.pcap_path().to_path_buf();
    cap.finish().unwrap();
    let ads = adverts(&path).unwrap();
    let b_st = status(&socks[1]);
    let a_st = status(&socks[0]);
    let max_gap = ads
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0f64, f64::max);
    println!(
        "restart of the VIP owner: {} requests at 1000/s, {} unanswered {lost:?}; old process \
         gone {:?} after `ikelb restart`, new one ready {:?} after it; {} VRRP adverts on the \
         backup's link, longest gap {:.1} ms; backup became_active {} (before: {b_active}); \
         gateways before {before:?}, after {after:?}; the new owner's fast path: {}",
        sent.len(),
        lost.len(),
        ready.0,
        ready.1,
        ads.len(),
        max_gap * 1000.0,
        b_st["vrrp"][0]["became_active"],
        a_st["fast_path"]["stats"]
    );
    assert_eq!(lost.len(), 0, "requests unanswered across the restart");
    // No VRRP transition: the backup stayed backup, and only the owner advertised,
    // always at priority 200, never as far apart as the backup's down interval
    // (3 × 100 ms + (256 − 100) × 100 ms / 256 = 360.9 ms).
    assert_eq!(b_st["vrrp"][0]["state"], "backup", "{b_st}");
    assert_eq!(b_st["vrrp"][0]["became_active"], b_active, "{b_st}");
    assert!(ads.len() > 30, "{ads:?}");
    let a_addr = Segment::addr(0);
    assert!(
        ads.iter()
            .all(|(_, src, prio)| *src == a_addr && *prio == 200),
        "an advert not from the owner at 200: {ads:?}"
    );
    assert!(max_gap < 0.3609, "adverts {max_gap} s apart");
    let b_log = std::fs::read_to_string(&daemons[1].log).unwrap();
    assert!(
        !b_log[b_log_len..].contains("became"),
        "the backup's log: {}",
        &b_log[b_log_len..]
    );
    // The new process resumed the role and took the cluster table over.
    assert_eq!(a_st["vrrp"][0]["state"], "active", "{a_st}");
    let a2_log = std::fs::read_to_string(dir.file("a2.log")).unwrap();
    assert!(
        a2_log.contains("resuming as active after a handover"),
        "{a2_log}"
    );
    assert!(
        a2_log.contains("the kept cluster table answers until its members reported again"),
        "{a2_log}"
    );
    assert!(a2_log.contains("the kept program runs on"), "{a2_log}");
    assert!(!a2_log.contains("became backup"), "{a2_log}");
    assert_eq!(before.keys().copied().collect::<BTreeSet<_>>(), members);
    assert_eq!(after.keys().copied().collect::<BTreeSet<_>>(), members);
    let targets: BTreeSet<String> = a_st["fast_path"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        targets,
        ["member-1", "member-2", "member-3"]
            .map(String::from)
            .into()
    );
    // Reload and status work on the new process.
    let out = ikelb_ctl(&["reload"], &socks[0]).unwrap();
    assert!(out.contains("generation 2"), "{out}");
    assert_eq!(status(&socks[0])["config"]["generation"], 2);
    // A stop in normal mode: the backup takes over, nothing is left.
    daemons[0].stop();
    assert_nothing_left(a_ns, a_if);
    assert!(!has_addr(a_ns, a_if, VIP), "the VIP is left on a");
    wait_for("b active", Duration::from_secs(2), || {
        status(&socks[1])["vrrp"][0]["state"] == "active"
    })
    .unwrap();
    for d in daemons.iter_mut().rev() {
        d.stop();
    }
}

fn static_toml(iface: &str, sock: &str) -> String {
    format!(
        "[dataplane]\niface = \"{iface}\"\nrate-per-source = 1000000\nxdp-mode = \"skb\"\n\n\
         [[vip]]\naddress = \"{VIP}\"\n\n[[target]]\nname = \"t1\"\nidentity = \"198.51.100.1\"\n\n\
         [[target]]\nname = \"t2\"\nidentity = \"198.51.100.2\"\nweight = 3\n\n\
         [status]\nsocket = \"{sock}\"\n"
    )
}

/// (link id, program id) of the XDP link on `iface`: the program from `ip link`, the
/// link from `bpftool link`, which names it by program.
fn xdp_link(ns: &Netns, iface: &str) -> Result<(u64, u64)> {
    let show = ns.ip(&["-d", "link", "show", "dev", iface])?;
    let prog: u64 = show
        .split("prog/xdp id ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no XDP program on {iface}: {show}"))?;
    let links: serde_json::Value = serde_json::from_str(&crate::cmd::run(
        &mut crate::cmd::command("bpftool", ["link", "show", "-j"]),
    )?)?;
    let link = links
        .as_array()
        .and_then(|ls| {
            ls.iter()
                .find(|l| l["type"] == "xdp" && l["prog_id"] == prog)
        })
        .and_then(|l| l["id"].as_u64())
        .with_context(|| format!("no XDP link runs program {prog}: {links}"))?;
    Ok((link, prog))
}

/// Lock-step requests from `ns` for `ms` milliseconds (the same SPIi sequence every
/// call, so two calls compare request by request).
fn burst(ns: &Netns, ms: u64) -> Vec<Sent> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let h = sc.spawn(|| stream(ns, VIP, &stop));
        std::thread::sleep(Duration::from_millis(ms));
        stop.store(true, Ordering::Relaxed);
        h.join().expect("client thread").unwrap()
    })
}

#[test]
fn upgrade_replaces_the_program_on_the_kept_link() {
    need_root();
    let dir = RunDir::new(&format!("ops-upgrade-{}", unique_tag())).unwrap();
    let seg = Segment::new(&["lb", "c"]).unwrap();
    let (lb_ns, lb_if) = &seg.nodes[0];
    let _pins = crate::lab::IkelbPinsGuard(vec![lb_if.clone()]);
    lb_ns.addr_add(lb_if, &format!("{VIP}/24")).unwrap();
    let sock = dir.file("lb.sock");
    let cfg = dir.file("lb.toml");
    std::fs::write(&cfg, static_toml(lb_if, &sock.to_string_lossy())).unwrap();
    let mut d = spawn_run(lb_ns, &cfg, &dir.file("lb.log"), &[]).unwrap();
    wait_for("the control socket", Duration::from_secs(15), || {
        status(&sock)["config"]["generation"] == 1
    })
    .unwrap();
    let client = &seg.nodes[1].0;
    let first = burst(client, 400);
    let (link0, prog0) = xdp_link(lb_ns, lb_if).unwrap();

    // Handed over, no process runs: the kept program answers alone with the last table.
    let (sent, at, down, up) = std::thread::scope(|sc| {
        let h = sc.spawn(|| paced(client, VIP, 1000, Duration::from_millis(3000)));
        std::thread::sleep(Duration::from_millis(500));
        let at = Instant::now();
        d.signal(libc::SIGUSR2);
        assert_eq!(exit_code(&mut d, Duration::from_secs(5)).unwrap(), Some(75));
        let down = at.elapsed();
        std::thread::sleep(Duration::from_millis(1000));
        d = spawn_run(lb_ns, &cfg, &dir.file("lb2.log"), &["--replace-program"]).unwrap();
        d.wait_log("ready", Duration::from_secs(30)).unwrap();
        (
            h.join().expect("client thread").unwrap(),
            at,
            down,
            at.elapsed(),
        )
    });
    let lost = sent.iter().filter(|s| s.gateway.is_none()).count();
    let alone = sent
        .iter()
        .filter(|s| s.at >= at + down && s.at < at + down + Duration::from_millis(1000))
        .filter(|s| s.gateway.is_some())
        .count();
    let (link1, prog1) = xdp_link(lb_ns, lb_if).unwrap();
    let log = std::fs::read_to_string(dir.file("lb2.log")).unwrap();
    println!(
        "upgrade: {} requests at 1000/s, {lost} unanswered; {alone} answered by the kept \
         program alone in the second without a process; link {link0} -> {link1}, program \
         {prog0} -> {prog1}; the new process ready {up:?} after SIGUSR2",
        sent.len()
    );
    assert_eq!(lost, 0);
    assert!(alone > 900, "{alone} answered without a process");
    assert_eq!(link1, link0, "the link was re-created");
    assert_ne!(prog1, prog0, "the program was not replaced");
    assert!(log.contains("program replaced on the same link"), "{log}");
    // The configured table, the same flow-hash key: every request lands where it did.
    let second = burst(client, 400);
    let n = first.len().min(second.len());
    assert!(n > 20, "{n} requests compared");
    let moved = (0..n)
        .filter(|&i| first[i].gateway != second[i].gateway)
        .count();
    assert_eq!(moved, 0, "requests that changed gateway");
    assert!(first[..n].iter().all(|s| s.gateway.is_some()));
    let st = status(&sock);
    assert_eq!(st["fast_path"]["targets"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        ikelb_ctl(&["reload"], &sock)
            .map(|o| o.contains("generation 2"))
            .ok(),
        Some(true)
    );

    // An upgrade whose maps changed layout (here one pin swapped for a map of another
    // shape): fresh maps are filled from the configuration, then the link switches.
    d.signal(libc::SIGUSR2);
    assert_eq!(exit_code(&mut d, Duration::from_secs(5)).unwrap(), Some(75));
    let tgt = lb_userspace::dataplane::pin_dir_for(lb_if).join("IKELB_TGT_STATS");
    std::fs::remove_file(&tgt).unwrap();
    crate::cmd::run(
        crate::cmd::command("bpftool", ["map", "create"])
            .arg(&tgt)
            .args([
                "type",
                "array",
                "key",
                "4",
                "value",
                "4",
                "entries",
                "1",
                "name",
                "ikelb_other",
            ]),
    )
    .unwrap();
    let sent = std::thread::scope(|sc| {
        let h = sc.spawn(|| paced(client, VIP, 1000, Duration::from_millis(2500)));
        std::thread::sleep(Duration::from_millis(200));
        d = spawn_run(lb_ns, &cfg, &dir.file("lb3.log"), &[]).unwrap();
        d.wait_log("ready", Duration::from_secs(30)).unwrap();
        h.join().expect("client thread").unwrap()
    });
    let lost = sent.iter().filter(|s| s.gateway.is_none()).count();
    let log = std::fs::read_to_string(dir.file("lb3.log")).unwrap();
    println!(
        "upgrade with other map layouts: {} requests, {lost} unanswered",
        sent.len()
    );
    assert!(
        log.contains("the kept maps do not fit this program"),
        "{log}"
    );
    assert!(log.contains("program replaced on the same link"), "{log}");
    assert_eq!(xdp_link(lb_ns, lb_if).unwrap().0, link0);
    assert_eq!(lost, 0);

    // Handed over again and nobody takes over: `ikelb detach` removes it all.
    d.signal(libc::SIGUSR2);
    assert_eq!(exit_code(&mut d, Duration::from_secs(5)).unwrap(), Some(75));
    assert!(xdp_link(lb_ns, lb_if).is_ok(), "kept after the handover");
    let out = std::process::Command::new(crate::lab::ikelb_bin())
        .args(["detach", "--iface", lb_if])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("XDP detached"),
        "{text}"
    );
    assert_nothing_left(lb_ns, lb_if);
    let gone = burst(client, 300);
    assert!(
        gone.iter().all(|s| s.gateway.is_none()),
        "answers after detach"
    );

    // And a stop in normal mode leaves nothing either.
    let mut d = spawn_run(lb_ns, &cfg, &dir.file("lb4.log"), &[]).unwrap();
    d.wait_log("ready", Duration::from_secs(30)).unwrap();
    let log = std::fs::read_to_string(dir.file("lb4.log")).unwrap();
    assert!(!log.contains("took over"), "nothing was kept: {log}");
    d.stop();
    assert_nothing_left(lb_ns, lb_if);
}
