//! Reload while the daemon serves (README "Operations"): under a steady stream of real
//! IKE_SA_INIT requests, an invalid file is refused with nothing changed, and valid ones
//! (`ikelb reload`, SIGHUP) change the slot table as configured, with no request left
//! unanswered. And a cluster key rollover across three nodes, one reload per node and
//! step, without a single report rejected.
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
const T1: &str = "198.51.100.1";
const T2: &str = "198.51.100.2";
/// A VIP added and removed by reload.
const VIP2: &str = "10.81.0.101";

fn balancer_toml(iface: &str, sock: &str, targets: &[(&str, &str, u32)]) -> String {
    let mut t = format!(
        "[dataplane]\niface = \"{iface}\"\nrate-per-source = 1000000\nxdp-mode = \"skb\"\n\n[[vip]]\naddress = \"{VIP}\"\n\n\
         [status]\nsocket = \"{sock}\"\n"
    );
    for (name, id, w) in targets {
        t.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nidentity = \"{id}\"\nweight = {w}\n"
        ));
    }
    t
}

fn report(sock: &std::path::Path) -> lb_userspace::status::Report {
    lb_userspace::status::query(sock).unwrap_or_default()
}

/// The report as the JSON `ikelb status --json` prints.
fn status(sock: &std::path::Path) -> serde_json::Value {
    serde_json::to_value(report(sock)).unwrap_or_default()
}

#[test]
fn reload_under_traffic_refuses_invalid_and_applies_valid() {
    need_root();
    let dir = RunDir::new(&format!("ops-reload-{}", unique_tag())).unwrap();
    let seg = Segment::new(&["lb", "c"]).unwrap();
    let (lb_ns, lb_if) = &seg.nodes[0];
    let _pins = crate::lab::IkelbPinsGuard(vec![lb_if.clone()]);
    lb_ns.addr_add(lb_if, &format!("{VIP}/24")).unwrap();
    lb_ns.addr_add(lb_if, &format!("{VIP2}/24")).unwrap();
    let sock = dir.file("lb.sock");
    let cfg = dir.file("lb.toml");
    let s = sock.to_string_lossy().into_owned();
    std::fs::write(&cfg, balancer_toml(lb_if, &s, &[("t1", T1, 1)])).unwrap();
    let mut d = spawn_ikelb(lb_ns, &cfg, &dir.file("lb.log")).unwrap();
    wait_for("the control socket", Duration::from_secs(10), || {
        status(&sock)["config"]["generation"] == 1
    })
    .unwrap();

    let stop = AtomicBool::new(false);
    let client = &seg.nodes[1].0;
    let (sent, marks) = std::thread::scope(|sc| {
        let h = sc.spawn(|| stream(client, VIP, &stop));
        let mut marks = Vec::new();
        std::thread::sleep(Duration::from_millis(700));
        // An invalid file: weight 0 on line 15 of the second target.
        let bad = balancer_toml(lb_if, &s, &[("t1", T1, 1), ("t2", T2, 0)]);
        std::fs::write(&cfg, &bad).unwrap();
        let e = ikelb_ctl(&["reload"], &sock).unwrap_err().to_string();
        let line = bad.lines().position(|l| l == "weight = 0").unwrap() + 1;
        assert!(
            e.contains(&*cfg.to_string_lossy())
                && e.contains(&format!("line {line}"))
                && e.contains("target[1].weight"),
            "{e}"
        );
        marks.push(Instant::now());
        std::thread::sleep(Duration::from_millis(700));
        // The refused reload's window ends before the valid one is sent (its table
        // flips before `ikelb reload` returns).
        marks.push(Instant::now());
        // Valid: t2 joins with three times t1's weight.
        let good = balancer_toml(lb_if, &s, &[("t1", T1, 1), ("t2", T2, 3)]);
        std::fs::write(&cfg, good).unwrap();
        let out = ikelb_ctl(&["reload"], &sock).unwrap();
        assert!(
            out.contains("generation 2") && out.contains("targets 2"),
            "{out}"
        );
        marks.push(Instant::now());
        std::thread::sleep(Duration::from_millis(1000));
        // SIGHUP: t1 leaves.
        std::fs::write(&cfg, balancer_toml(lb_if, &s, &[("t2", T2, 3)])).unwrap();
        d.signal(libc::SIGHUP);
        wait_for("generation 3", Duration::from_secs(5), || {
            status(&sock)["config"]["generation"] == 3
        })
        .unwrap();
        marks.push(Instant::now());
        std::thread::sleep(Duration::from_millis(700));
        stop.store(true, Ordering::Relaxed);
        (h.join().expect("client thread").unwrap(), marks)
    });
    let t1: IpAddr = T1.parse().unwrap();
    let t2: IpAddr = T2.parse().unwrap();
    let t0 = sent[0].at;
    let (before, lost0) = tally(&sent, t0, Some(marks[0]));
    let (refused, lost1) = tally(&sent, marks[0], Some(marks[1]));
    // The table flips within a few ms of the answer: count from 50 ms after it.
    let (mixed, lost2) = tally(&sent, marks[2] + Duration::from_millis(50), Some(marks[3]));
    let (only_t2, lost3) = tally(&sent, marks[3] + Duration::from_millis(50), None);
    let (_, lost) = tally(&sent, t0, None);
    println!(
        "{} requests, {lost} unanswered; before {before:?}, after the refused reload \
         {refused:?}, after reload 2 {mixed:?}, after SIGHUP {only_t2:?}",
        sent.len()
    );
    assert_eq!(lost, 0, "unanswered: {lost0} {lost1} {lost2} {lost3}");
    assert!(before.len() == 1 && before[&t1] > 50, "{before:?}");
    assert!(
        refused.len() == 1 && refused[&t1] > 50,
        "nothing changed: {refused:?}"
    );
    let share = mixed[&t2] as f64 / (mixed[&t1] + mixed[&t2]) as f64;
    assert!((0.6..0.9).contains(&share), "t2's share {share}: {mixed:?}");
    assert!(only_t2.len() == 1 && only_t2[&t2] > 50, "{only_t2:?}");
    let st = status(&sock);
    assert_eq!(st["config"]["last"]["ok"], true, "{st}");
    assert_eq!(st["fast_path"]["targets"].as_array().map(Vec::len), Some(1));
    assert!(
        std::fs::read_to_string(&d.log)
            .unwrap()
            .contains("reload refused: nothing changed")
    );

    // VIPs: a second one added by reload is answered, and removed again it is not.
    let with_vip2 = balancer_toml(lb_if, &s, &[("t2", T2, 3)]).replace(
        "[status]",
        &format!("[[vip]]\naddress = \"{VIP2}\"\n\n[status]"),
    );
    std::fs::write(&cfg, with_vip2).unwrap();
    let out = ikelb_ctl(&["reload"], &sock).unwrap();
    assert!(out.contains("vips +1 -0"), "{out}");
    let burst = |vip: &str| {
        let stop = AtomicBool::new(false);
        std::thread::scope(|sc| {
            let h = sc.spawn(|| stream(client, vip, &stop));
            std::thread::sleep(Duration::from_millis(400));
            stop.store(true, Ordering::Relaxed);
            h.join().expect("client thread").unwrap()
        })
    };
    let sent2 = burst(VIP2);
    let (by, lost) = tally(&sent2, sent2[0].at, None);
    assert!(
        lost == 0 && by.len() == 1 && by[&t2] > 5,
        "{by:?}, {lost} lost"
    );
    std::fs::write(&cfg, balancer_toml(lb_if, &s, &[("t2", T2, 3)])).unwrap();
    let out = ikelb_ctl(&["reload"], &sock).unwrap();
    assert!(out.contains("vips +0 -1"), "{out}");
    let sent2 = burst(VIP2);
    let (by, _) = tally(&sent2, sent2[0].at, None);
    assert!(by.is_empty(), "a removed VIP still redirects: {by:?}");
    println!("VIP {VIP2} added by reload: answered; removed by reload: not answered");
    d.stop();
}

fn node_toml(
    iface: &str,
    id: u32,
    prio: Option<u8>,
    sock: &str,
    keys: &[u16],
    send: u16,
) -> String {
    let me = Segment::addr(id as usize - 1);
    let mut t = format!("[dataplane]\niface = \"{iface}\"\nrate-per-source = 1000000\n");
    if let Some(p) = prio {
        t.push_str(&format!(
            "xdp-mode = \"skb\"\n\n[[vip]]\naddress = \"{VIP}\"\n\n[[vrrp]]\nvrid = 81\n\
             priority = {p}\ninterval-cs = 10\nvips = [\"{VIP}\"]\n"
        ));
    }
    t.push_str(&format!(
        "\n[cluster]\nmember-id = {id}\ninterval-ms = 100\nidentities = [\"{me}\"]\nsas = 0\n\
         capacity = 1000\nsend-key = {send}\n\n[status]\nsocket = \"{sock}\"\n"
    ));
    for k in keys {
        t.push_str(&format!(
            "\n[[cluster.key]]\nid = {k}\nsecret = \"rollover-key-{k}-0123456789abcdef\"\n"
        ));
    }
    t
}

/// Reports dropped by a node, summed over the reasons.
fn dropped(st: &serde_json::Value) -> u64 {
    st["cluster"]["dropped"]
        .as_array()
        .map_or(0, |d| d.iter().filter_map(|x| x[1].as_u64()).sum())
}

#[test]
fn key_rollover_across_three_nodes_rejects_no_report() {
    need_root();
    let dir = RunDir::new(&format!("ops-rollover-{}", unique_tag())).unwrap();
    let names = ["a", "b", "m"];
    let seg = Segment::new(&names).unwrap();
    let _pins = crate::lab::IkelbPinsGuard(seg.nodes.iter().map(|(_, i)| i.clone()).collect());
    let prios = [Some(200), Some(100), None];
    let mut daemons: Vec<Daemon> = Vec::new();
    let mut socks = Vec::new();
    let mut cfgs = Vec::new();
    for (i, (ns, iface)) in seg.nodes.iter().enumerate() {
        let sock = dir.file(&format!("{}.sock", names[i]));
        let cfg = dir.file(&format!("{}.toml", names[i]));
        let s = sock.to_string_lossy().into_owned();
        std::fs::write(&cfg, node_toml(iface, i as u32 + 1, prios[i], &s, &[1], 1)).unwrap();
        let log = dir.file(&format!("{}.log", names[i]));
        daemons.push(if prios[i].is_some() {
            spawn_ikelb(ns, &cfg, &log).unwrap()
        } else {
            let mut c = ns.nsenter(crate::lab::ikelb_bin().to_str().unwrap_or("ikelb"));
            c.arg("member").arg("--config").arg(&cfg);
            Daemon::spawn("ikelb-member", c, &log).unwrap()
        });
        socks.push(sock);
        cfgs.push(cfg);
    }
    let all_see_all = |socks: &[std::path::PathBuf]| {
        socks
            .iter()
            .all(|s| status(s)["cluster"]["members"].as_array().map(Vec::len) == Some(3))
    };
    wait_for("three members everywhere", Duration::from_secs(15), || {
        all_see_all(&socks)
    })
    .unwrap();
    // Startup may drop a report or two (a member heard before it is known); from here
    // on nothing may be.
    let base: Vec<u64> = socks.iter().map(|s| dropped(&status(s))).collect();
    let accepted = |s: &std::path::Path| status(s)["cluster"]["accepted"].as_u64().unwrap_or(0);
    let steps: [(&[u16], u16); 3] = [(&[1, 2], 1), (&[1, 2], 2), (&[2], 2)];
    for (step, (keys, send)) in steps.iter().enumerate() {
        for (i, (_, iface)) in seg.nodes.iter().enumerate() {
            let s = socks[i].to_string_lossy().into_owned();
            std::fs::write(
                &cfgs[i],
                node_toml(iface, i as u32 + 1, prios[i], &s, keys, *send),
            )
            .unwrap();
            let out = ikelb_ctl(&["reload"], &socks[i]).unwrap();
            assert!(
                out.contains("cluster"),
                "step {step}, node {}: {out}",
                names[i]
            );
            // Nodes reload one after the other, as an operator would.
            std::thread::sleep(Duration::from_millis(150));
        }
        let before: Vec<u64> = socks.iter().map(|s| accepted(s)).collect();
        // Several report intervals under the new keys.
        std::thread::sleep(Duration::from_millis(600));
        for (i, s) in socks.iter().enumerate() {
            let st = status(s);
            assert_eq!(
                dropped(&st),
                base[i],
                "step {step}, node {}: {st}",
                names[i]
            );
            assert!(
                accepted(s) > before[i] + 5,
                "step {step}: {} hears reports",
                names[i]
            );
        }
        assert!(all_see_all(&socks), "step {step}: a member left a table");
        println!(
            "rollover step {}: keys {keys:?}, send key {send}: no report dropped",
            step + 1
        );
    }
    let st = status(&socks[0]);
    assert_eq!(st["config"]["generation"], 4, "{st}");
    // The counter this test relies on does count: a send key the others lack is
    // rejected at once.
    let s = socks[2].to_string_lossy().into_owned();
    std::fs::write(
        &cfgs[2],
        node_toml(&seg.nodes[2].1, 3, None, &s, &[2, 3], 3),
    )
    .unwrap();
    ikelb_ctl(&["reload"], &socks[2]).unwrap();
    wait_for(
        "a's drop of m's report under key 3",
        Duration::from_secs(2),
        || dropped(&status(&socks[0])) > base[0],
    )
    .unwrap();
    println!("{}", lb_userspace::status::render(&report(&socks[0])));
    // A VRRP priority reload: b rises above a and, preempting, takes the VIP over.
    let s = socks[1].to_string_lossy().into_owned();
    std::fs::write(
        &cfgs[1],
        node_toml(&seg.nodes[1].1, 2, Some(250), &s, &[2], 2),
    )
    .unwrap();
    let out = ikelb_ctl(&["reload"], &socks[1]).unwrap();
    assert!(out.contains("vrrp[0] priority 100 -> 250"), "{out}");
    wait_for("b active, a backup", Duration::from_secs(3), || {
        status(&socks[1])["vrrp"][0]["state"] == "active"
            && status(&socks[0])["vrrp"][0]["state"] == "backup"
    })
    .unwrap();
    assert_eq!(status(&socks[1])["vrrp"][0]["priority"], 250);
    for d in daemons.iter_mut().rev() {
        d.stop();
    }
}
