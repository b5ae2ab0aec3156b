//! Chaos soak (`cargo xtask soak`): four ikelb nodes on one segment — two VIP
//! candidates (`ikelb run`, VRRP 200 / 100 at 10 cs, both members) and two plain members
//! (`ikelb member`) — while a client sends real IKE_SA_INIT requests to the VIP every
//! 2 ms for the whole run. A seeded schedule SIGKILLs and restarts, or cuts the link of,
//! a random node other than the backup candidate B, then lets it come back.
//!
//! Asserted: no daemon panics (every log), B never exits; after each failure the
//! Active's table drops the failed member within the holdtime (plus polling slack), and
//! from then on until it is back no answer names it; answers keep coming; B's resident
//! memory at the end is within a few MiB of what it was after warm-up. Tunnels through
//! a failover are [`super::cluster_failover`]'s test with strongSwan members.
//!
//! Bounded: `IKELB_SOAK_SECS` (default 60, at most 3600), `IKELB_SOAK_SEED`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::cluster_failover::{VIP, client_stream, node_toml};
use super::vrrp_keepalived::{RunDir, has_addr, spawn_ikelb, wait_for};
use crate::daemon::Daemon;
use crate::netns::{Netns, Veth, unique_tag};

/// The load exchange's holdtime at `interval-ms = 100` (3 intervals), plus one table
/// rebuild (100 ms) and the status poll's own period.
const HOLD: Duration = Duration::from_millis(300);
const SLACK: Duration = Duration::from_millis(700);
/// Longest time from a failure until the Active's status no longer lists the member:
/// the holdtime, a rebuild, and the status polls on a busy VM.
const CONVERGE_MAX: Duration = Duration::from_secs(2);
/// B's RSS may grow this much over the run (allocator noise, not a leak).
const RSS_GROWTH_MAX_KIB: u64 = 4096;

/// xorshift64*: the same schedule for the same seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

struct Node {
    name: &'static str,
    ns: Netns,
    iface: String,
    member_id: u32,
    addr: Ipv4Addr,
    candidate: bool,
    cfg: std::path::PathBuf,
    log: std::path::PathBuf,
    sock: std::path::PathBuf,
}

impl Node {
    fn spawn(&self) -> Result<Daemon> {
        if self.candidate {
            spawn_ikelb(&self.ns, &self.cfg, &self.log)
        } else {
            let mut c = self
                .ns
                .nsenter(crate::lab::ikelb_bin().to_str().unwrap_or("ikelb"));
            c.arg("member").arg("--config").arg(&self.cfg);
            Daemon::spawn("ikelb-member", c, &self.log)
        }
    }
}

/// The gateway identity an N(REDIRECT) answer names (IPv4 identities only).
fn redirect_target(m: &[u8]) -> Option<Ipv4Addr> {
    // HDR (28), then the Notify: generic header (4), protocol, SPI size, type (2), then
    // the GW Identity Type (1 = IPv4) and its length (RFC 5685 §8).
    let n = m.get(28..28 + 10)?;
    if n[6..8] != [0x40, 0x17] || n[8] != 1 || n[9] != 4 {
        return None;
    }
    let a: [u8; 4] = m.get(38..42)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

/// The member ids in the table of the candidate that holds the VIP, other than
/// `failed` (a killed node keeps the address, a cut-off one still thinks it is Active).
fn active_table(nodes: &[Node], failed: Option<usize>) -> Option<Vec<u32>> {
    let active = nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| n.candidate && Some(*i) != failed)
        .map(|(_, n)| n)
        .find(|n| has_addr(&n.ns, &n.iface, VIP))?;
    let st = lb_userspace::status::query(&active.sock).ok()?;
    Some(st.cluster?.members.iter().map(|m| m.id).collect())
}

#[test]
fn soak_random_kills_restarts_and_link_cuts() {
    require_root!();
    soak().unwrap();
}

fn soak() -> Result<()> {
    let secs = env_u64("IKELB_SOAK_SECS", 60).clamp(10, 3600);
    let seed = env_u64("IKELB_SOAK_SEED", 0x50a6_0001);
    let mut rng = Rng(seed.max(1));
    let tag = unique_tag();
    let dir = RunDir::new(&format!("soak-{tag}"))?;
    let sw = Netns::new("ssw")?;
    sw.ip(&["link", "add", "br0", "type", "bridge"])?;
    sw.ip(&["link", "set", "br0", "up"])?;
    let names = ["a", "b", "m", "n", "c"];
    let mut nodes: Vec<Node> = Vec::new();
    let mut veths = Vec::new();
    let mut client = None;
    for (i, name) in names.iter().enumerate() {
        let ns = Netns::new(&format!("s{name}"))?;
        let inner = format!("k{name}{tag}");
        let outer = format!("o{name}{tag}");
        veths.push(Veth::new(&ns, &inner, None, &sw, &outer, None)?);
        sw.ip(&["link", "set", &outer, "master", "br0"])?;
        let host = if *name == "c" { 10 } else { 2 + i as u8 };
        let addr = Ipv4Addr::new(10, 80, 0, host);
        ns.addr_add(&inner, &format!("{addr}/24"))?;
        ns.tx_csum_off(&inner)?;
        if *name == "c" {
            client = Some(ns);
            continue;
        }
        let member_id = i as u32 + 1;
        let candidate = i < 2;
        let sock = dir.file(&format!("{name}.sock"));
        let cfg = dir.file(&format!("{name}.toml"));
        let prio = candidate.then(|| [200, 100][i]);
        std::fs::write(
            &cfg,
            node_toml(
                &inner,
                member_id,
                &addr.to_string(),
                prio,
                &sock.to_string_lossy(),
            ),
        )?;
        nodes.push(Node {
            name,
            ns,
            iface: inner,
            member_id,
            addr,
            candidate,
            cfg,
            log: dir.file(&format!("{name}.log")),
            sock,
        });
    }
    let client = client.context("client namespace")?;
    let _pins = crate::lab::IkelbPinsGuard(nodes.iter().map(|n| n.iface.clone()).collect());
    let mut daemons: Vec<Option<Daemon>> = nodes
        .iter()
        .map(|n| n.spawn().map(Some))
        .collect::<Result<_>>()?;
    wait_for(
        "four members in the Active's table",
        Duration::from_secs(15),
        || active_table(&nodes, None).map(|t| t.len()) == Some(4),
    )?;
    let b = 1;
    let b_pid = daemons[b].as_ref().map(Daemon::pid).context("B")?;

    // (member identity, down from, back at): answers naming it in between are wrong.
    let mut outages: Vec<(Ipv4Addr, Instant, Instant)> = Vec::new();
    let mut converge: Vec<Duration> = Vec::new();
    let mut events: Vec<String> = Vec::new();
    let run_for = Duration::from_secs(secs);
    let (answers, rss, ended) = std::thread::scope(|s| -> Result<_> {
        let h = s.spawn(|| client_stream(&client, VIP, run_for));
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let rss0 = rss_kib(b_pid)?;
        // The last seconds stay quiet: everything back, answers flowing.
        while start.elapsed() + Duration::from_secs(10) < run_for {
            let victim = [0usize, 2, 3][rng.below(3) as usize];
            let node = &nodes[victim];
            let kill = rng.below(2) == 0;
            let down = Instant::now();
            if kill {
                daemons[victim]
                    .as_ref()
                    .context("victim running")?
                    .signal(libc::SIGKILL);
                if let Some(mut d) = daemons[victim].take() {
                    d.stop();
                }
            } else {
                node.ns.ip(&["link", "set", &node.iface, "down"])?;
            }
            // The Active (B, if the victim was A) drops it from its table.
            // Generous here (a status query on a loaded 2-CPU VM can stall); the
            // time it took is asserted below, and the answers themselves are checked
            // against HOLD + SLACK.
            let gone = wait_for(
                &format!("member {} out of the table", node.member_id),
                Duration::from_secs(5),
                || active_table(&nodes, Some(victim)).is_some_and(|t| !t.contains(&node.member_id)),
            );
            converge.push(down.elapsed());
            gone?;
            std::thread::sleep(rng.millis(500, 1500));
            if kill {
                daemons[victim] = Some(node.spawn()?);
            } else {
                node.ns.ip(&["link", "set", &node.iface, "up"])?;
            }
            let back = Instant::now();
            outages.push((node.addr, down, back));
            let e = format!(
                "{:>6.1} s {} {} for {} ms (out of the table after {} ms)",
                (down - start).as_secs_f64(),
                if kill { "SIGKILL+restart" } else { "link cut" },
                node.name,
                (back - down).as_millis(),
                converge.last().map_or(0, Duration::as_millis),
            );
            println!("soak: {e}");
            events.push(e);
            std::thread::sleep(rng.millis(1500, 3000));
        }
        let answers = h.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
        Ok((answers, (rss0, rss_kib(b_pid)?), Instant::now()))
    })?;

    // No answer named a member from one holdtime (plus slack) after it failed until
    // it was back.
    let mut wrong = Vec::new();
    let mut named: BTreeMap<Ipv4Addr, u64> = BTreeMap::new();
    for (t, m) in &answers {
        let Some(gw) = redirect_target(m) else {
            continue;
        };
        *named.entry(gw).or_default() += 1;
        for (addr, down, back) in &outages {
            if gw == *addr && *t > *down + HOLD + SLACK && *t < *back {
                wrong.push(format!("{gw} at +{:?} (down at {down:?})", *t - *down));
            }
        }
    }
    let last = answers.last().map(|(t, _)| *t);
    println!(
        "soak: seed {seed:#x}, {secs} s, {} failures, {} answers {named:?}; table converged in \
         {:?} at most; B's RSS {} KiB after warm-up, {} KiB at the end",
        events.len(),
        answers.len(),
        converge.iter().max(),
        rss.0,
        rss.1
    );
    let mut panics = Vec::new();
    for n in &nodes {
        let log = std::fs::read_to_string(&n.log).unwrap_or_default();
        if log.contains("panicked") {
            panics.push(n.name);
        }
    }
    let b_exit = daemons[b].as_mut().and_then(Daemon::exited);
    for d in daemons.iter_mut().rev().flatten() {
        d.stop();
    }
    if !panics.is_empty() {
        bail!(
            "panic in the logs of {panics:?} (under {})",
            dir.file("").display()
        );
    }
    if let Some(st) = b_exit {
        bail!("B exited: {st}");
    }
    let slowest = converge.iter().max().copied().unwrap_or_default();
    if slowest > CONVERGE_MAX {
        bail!("a failed member stayed in the Active's table for {slowest:?}");
    }
    if !wrong.is_empty() {
        bail!("answers named failed members: {wrong:?}");
    }
    if events.len() < (secs as usize / 10).max(1) {
        bail!("only {} failures in {secs} s", events.len());
    }
    // Everything is back: answers reached the end, and every node was named.
    let end = last.context("no answers at all")?;
    if ended - end > Duration::from_secs(2) {
        bail!("no answer in the last {:?}", ended - end);
    }
    if named.len() < nodes.len() {
        bail!("not every member was named: {named:?}");
    }
    if rss.1 > rss.0 + RSS_GROWTH_MAX_KIB {
        bail!("B's RSS grew from {} to {} KiB", rss.0, rss.1);
    }
    Ok(())
}
