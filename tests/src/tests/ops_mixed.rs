//! A mixed pool: an `ikelb run` node and an `ikelb member` reporting their load beside
//! a static `[[target]]` (a gateway that cannot run ikelb, e.g. the LANCOM being
//! replaced), all served from one slot table. With equal numerators (members' headroom
//! 100 × 1000 % = 1000, their system load not weighed, the static target's capacity
//! 1000 × weight 1) each gets about a third of a steady stream of real IKE_SA_INIT
//! requests; after a reload that gives the static target weight 4, about two thirds.
//!
//! Node configs set `rate-per-source` far above the default: the test clients send
//! every request from one address, faster than one real client ever would.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::ops_net::{Segment, ikelb_ctl, need_root, stream, tally};
use super::vrrp_keepalived::{RunDir, spawn_ikelb, wait_for};
use crate::daemon::Daemon;
use crate::netns::unique_tag;

const VIP: &str = "10.81.0.100";
const LEGACY: &str = "198.51.100.50";

fn node_toml(iface: &str, id: u32, sock: &str, legacy_weight: Option<u32>) -> String {
    let me = Segment::addr(id as usize - 1);
    let mut t = format!("[dataplane]\niface = \"{iface}\"\nrate-per-source = 1000000\n");
    if let Some(w) = legacy_weight {
        t.push_str(&format!(
            "xdp-mode = \"skb\"\n\n[[vip]]\naddress = \"{VIP}\"\n\n[[target]]\nname = \"legacy\"\n\
             identity = \"{LEGACY}\"\ncapacity = 1000\nweight = {w}\n"
        ));
    }
    t.push_str(&format!(
        "\n[cluster]\nmember-id = {id}\ninterval-ms = 100\nidentities = [\"{me}\"]\nsas = 0\n\
         capacity = 100\ncrypto-overload-pct = 1000\nsystem-load-weight = 0\n\n[[cluster.key]]\nid = 1\n\
         secret = \"mixed-pool-key-0123456789abcdef\"\n\n[status]\nsocket = \"{sock}\"\n"
    ));
    t
}

fn shares(sent: &[super::ops_net::Sent], from: Instant, until: Option<Instant>) -> Vec<f64> {
    let (by, lost) = tally(sent, from, until);
    assert_eq!(lost, 0, "unanswered requests");
    let total: usize = by.values().sum();
    [Segment::addr(0), Segment::addr(1), LEGACY.to_string()]
        .iter()
        .map(|a| {
            let a: IpAddr = a.parse().unwrap();
            by.get(&a).copied().unwrap_or(0) as f64 / total as f64
        })
        .collect()
}

#[test]
fn mixed_pool_of_members_and_a_static_target() {
    need_root();
    let dir = RunDir::new(&format!("ops-mixed-{}", unique_tag())).unwrap();
    let seg = Segment::new(&["a", "m", "c"]).unwrap();
    let _pins = crate::lab::IkelbPinsGuard(vec![seg.nodes[0].1.clone()]);
    let (a_ns, a_if) = &seg.nodes[0];
    a_ns.addr_add(a_if, &format!("{VIP}/24")).unwrap();
    let (m_ns, m_if) = &seg.nodes[1];
    let (a_sock, m_sock) = (dir.file("a.sock"), dir.file("m.sock"));
    let a_cfg = dir.file("a.toml");
    let a_s = a_sock.to_string_lossy().into_owned();
    std::fs::write(&a_cfg, node_toml(a_if, 1, &a_s, Some(1))).unwrap();
    let m_cfg = dir.file("m.toml");
    std::fs::write(&m_cfg, node_toml(m_if, 2, &m_sock.to_string_lossy(), None)).unwrap();
    let mut a = spawn_ikelb(a_ns, &a_cfg, &dir.file("a.log")).unwrap();
    let mut c = m_ns.nsenter(crate::lab::ikelb_bin().to_str().unwrap_or("ikelb"));
    c.arg("member").arg("--config").arg(&m_cfg);
    let mut m = Daemon::spawn("ikelb-member", c, &dir.file("m.log")).unwrap();
    let status = || lb_userspace::status::query(&a_sock).unwrap_or_default();
    // Both members past their slow start (5 reports), beside the static target.
    wait_for(
        "both members at full share",
        Duration::from_secs(15),
        || {
            status().cluster.is_some_and(|c| {
                c.members.len() == 2
                    && c.members.iter().all(|m| m.share_pct > 30.0)
                    && c.statics.first().is_some_and(|t| t.name == "legacy")
            })
        },
    )
    .unwrap();
    println!("{}", lb_userspace::status::render(&status()));

    let stop = AtomicBool::new(false);
    let client = &seg.nodes[2].0;
    let (sent, at) = std::thread::scope(|sc| {
        let h = sc.spawn(|| stream(client, VIP, &stop));
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::write(&a_cfg, node_toml(a_if, 1, &a_s, Some(4))).unwrap();
        let out = ikelb_ctl(&["reload"], &a_sock).unwrap();
        assert!(out.contains("targets 1"), "{out}");
        let at = Instant::now();
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        (h.join().expect("client thread").unwrap(), at)
    });
    let equal = shares(&sent, sent[0].at, Some(at));
    let heavy = shares(&sent, at + Duration::from_millis(50), None);
    println!(
        "shares of a, m and the static target: {equal:.2?} at weight 1, {heavy:.2?} at weight 4 \
         ({} requests)",
        sent.len()
    );
    for s in &equal {
        assert!((0.2..0.47).contains(s), "about a third each: {equal:?}");
    }
    assert!(
        (0.55..0.8).contains(&heavy[2]),
        "about two thirds: {heavy:?}"
    );
    println!("{}", lb_userspace::status::render(&status()));
    m.stop();
    a.stop();
}
