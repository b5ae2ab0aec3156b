//! `ikelb drain --migrate` on the lab as a cluster: three strongSwan members with
//! kernel-libipsec (gw1 and gw2 VIP candidates, gw3 an `ikelb member`), real strongSwan
//! clients through the VIP. Four clients are steered onto gw3 (the others drained on
//! the master while they connect), two onto gw1/gw2. While the four ping through their
//! tunnels, `ikelb drain 3 --migrate --batch 2 --interval 1s` on gw3's own socket
//! drains gw3 and redirects its IKE SAs (RFC 5685 §5, over VICI). Then: gw3 holds no
//! client SA, the four are established on gw1/gw2 (their charons log the redirect
//! from gw3's address), the pings went on (loss stated and bounded), the other two
//! clients' SAs are the same SAs on the same members, and new clients reaching the
//! VIP are sent to gw1 and gw2 only. Sent to the master instead, `--migrate` is
//! refused with where to run it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::cluster_failover::tunnels;
use super::ops_net::{ikelb_ctl, need_root, stream, tally};
use crate::lab::{Balancer, Client, ClientKind, ClientSpec, Family, Lab, LabConfig, service_addr};

/// Pings per client while the migration runs: one every 100 ms, each waiting 300 ms.
const PING_EVERY: Duration = Duration::from_millis(100);
/// Lost pings a client may see while its tunnel moves (measured: see the README).
const MAX_LOST: usize = 3;

/// Echo requests through `c`'s tunnel until `stop` (at most 60 s): (sent at, answered).
fn ping_series(c: &Client, stop: &AtomicBool) -> Vec<(Instant, bool)> {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let dst = service_addr(Family::V4);
    while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(60) {
        let at = Instant::now();
        let ok = crate::ping::ping(&c.netns, c.inner(), dst, 1, Duration::from_millis(300))
            .unwrap_or(false);
        out.push((at, ok));
        std::thread::sleep(PING_EVERY.saturating_sub(at.elapsed()));
    }
    out
}

/// The gateways new requests to the VIP are sent to over `run_for`, and how many went
/// unanswered.
fn new_redirects(lab: &Lab, run_for: Duration) -> (BTreeSet<IpAddr>, usize) {
    let stop = AtomicBool::new(false);
    let vip = crate::lab::vip(Family::V4).to_string();
    let sent = std::thread::scope(|sc| {
        let h = sc.spawn(|| stream(&lab.lb, &vip, &stop));
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
        h.join().expect("request thread").unwrap()
    });
    let (by, lost) = tally(&sent, sent[0].at, None);
    (by.into_keys().collect(), lost)
}

#[test]
fn migrate_moves_a_members_sas_and_keeps_the_tunnels_up() {
    need_root();
    let names = ["m1", "m2", "m3", "m4", "o1", "o2"];
    let clients: Vec<ClientSpec> = names
        .iter()
        .map(|n| ClientSpec::new(n, ClientKind::StrongSwan, Family::V4, 500))
        .collect();
    let esp = crate::esp::probe().unwrap();
    let lab = Lab::up(LabConfig {
        members: 3,
        clients,
        balancer: Balancer::IkelbCluster {
            bin: crate::lab::ikelb_bin(),
            candidates: 2,
        },
        cluster_report_ms: 200,
        ..LabConfig::default()
    })
    .unwrap();
    assert_eq!(lab.cluster_master().as_deref(), Some("gw1"));
    let sock = |name: &str| {
        lab.cluster
            .iter()
            .find(|c| c.member == name)
            .expect("member's ikelb")
            .socket
            .clone()
    };
    let gw: Vec<IpAddr> = lab.members.iter().map(|m| m.v4()).collect();
    let ctl = |args: &[&str], on: &str| ikelb_ctl(args, &sock(on)).unwrap();
    let connect = |name: &str, want: &[&str]| {
        let r = lab.connect(name).unwrap();
        assert!(
            r.verdict(esp).is_ok()
                && r.ping == Some(true)
                && r.landed_on.as_deref().is_some_and(|l| want.contains(&l)),
            "{name} should land on {want:?}: {}\n{}",
            r.summary(),
            lab.cluster_logs(20)
        );
    };
    // Steer m1..m4 onto gw3, o1 and o2 onto the others.
    ctl(&["drain", "1"], "gw1");
    ctl(&["drain", "2"], "gw1");
    std::thread::sleep(Duration::from_millis(300));
    for n in &names[..4] {
        connect(n, &["gw3"]);
    }
    ctl(&["undrain", "1"], "gw1");
    ctl(&["undrain", "2"], "gw1");
    ctl(&["drain", "3"], "gw1");
    std::thread::sleep(Duration::from_millis(300));
    for n in &names[4..] {
        connect(n, &["gw1", "gw2"]);
    }
    ctl(&["undrain", "3"], "gw1");
    let before = tunnels(&lab).unwrap();
    println!("tunnels before the migration: {before:?}");

    // Sent to the VIP owner, --migrate is refused and changes nothing.
    let e = ikelb_ctl(&["drain", "3", "--migrate"], &sock("gw1")).unwrap_err();
    assert!(
        format!("{e:#}").contains("runs on the member itself"),
        "{e:#}"
    );
    let st = lab.cluster_status("gw1").unwrap();
    assert_eq!(st["cluster"]["drained"], serde_json::json!([]), "{st}");

    let movers: Vec<&Client> = lab.clients.iter().take(4).collect();
    let stop = AtomicBool::new(false);
    let (out, took, series) = std::thread::scope(|sc| {
        let pingers: Vec<_> = movers
            .iter()
            .map(|c| sc.spawn(|| ping_series(c, &stop)))
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let t = Instant::now();
        let out = ikelb_ctl(
            &[
                "drain",
                "3",
                "--migrate",
                "--batch",
                "2",
                "--interval",
                "1s",
            ],
            &sock("gw3"),
        );
        let took = t.elapsed();
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        let series: Vec<Vec<(Instant, bool)>> = pingers
            .into_iter()
            .map(|h| h.join().expect("ping thread"))
            .collect();
        (out, took, series)
    });
    let out = out.unwrap_or_else(|e| panic!("{e:#}\n{}", lab.cluster_logs(30)));
    println!("ikelb drain 3 --migrate ({took:?}):\n{out}");
    assert!(out.contains("member 3: draining"), "{out}");
    assert!(
        out.contains("migration done: 4 of 4 migrated, 0 failed, 0 ended, 0 remaining"),
        "{out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.contains("redirected to member"))
            .count()
            >= 2,
        "progress per batch: {out}"
    );

    // The pings went on.
    for (c, s) in movers.iter().zip(&series) {
        let lost = s.iter().filter(|(_, ok)| !ok).count();
        println!(
            "{}: {lost} of {} pings lost (one every {PING_EVERY:?}, 300 ms to answer)",
            c.spec.name,
            s.len()
        );
        assert!(s.len() >= 20, "{}: too few pings", c.spec.name);
        assert!(lost <= MAX_LOST, "{}: {lost} pings lost", c.spec.name);
        assert!(lab.ping_service(c), "{}: ping after the move", c.spec.name);
    }

    // Where everything is now.
    let after = tunnels(&lab).unwrap();
    println!("tunnels after the migration: {after:?}");
    for c in &movers {
        let (m, _, state, children) = &after[&c.spec.id()];
        assert!(m == "gw1" || m == "gw2", "{}: on {m}", c.spec.name);
        assert_eq!(state, "ESTABLISHED");
        assert!(children.iter().any(|s| s == "INSTALLED"), "{children:?}");
    }
    assert!(
        after.values().all(|(m, ..)| m != "gw3"),
        "gw3 still holds client SAs: {after:?}"
    );
    for n in &names[4..] {
        let id = format!("{n}.client.ikelb.test");
        assert_eq!(after[&id], before[&id], "{n}: its SA was touched");
    }
    // The redirects, as the charons logged them (the INFORMATIONAL is encrypted).
    let gw3_log = lab.members[2].charon.log();
    assert_eq!(
        gw3_log.matches("redirecting peer to").count(),
        4,
        "gw3's charon"
    );
    let from_gw3 = format!("client got redirected from {}", gw[2]);
    let arrived: usize = lab.members[..2]
        .iter()
        .map(|m| m.charon.log().matches(&from_gw3).count())
        .sum();
    assert_eq!(arrived, 4, "gw1 and gw2 saw the redirected clients");
    let st = lab.cluster_status("gw3").unwrap();
    let mig = &st["cluster"]["migration"];
    assert_eq!(
        (&mig["state"], &mig["migrated"]),
        (&"done".into(), &4.into()),
        "{st}"
    );

    // gw3 drains: new clients go to gw1 and gw2 only.
    let (seen, lost) = new_redirects(&lab, Duration::from_millis(1000));
    println!("new clients after the migration went to {seen:?}, {lost} unanswered");
    assert_eq!(seen, BTreeSet::from([gw[0], gw[1]]));
    assert_eq!(lost, 0);
}
