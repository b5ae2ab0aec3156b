//! Drain on the lab as a cluster: three strongSwan members (gw1 and gw2 VIP candidates,
//! gw3 an `ikelb member`), tunnels of real strongSwan clients through the VIP. gw2 is
//! drained on the master (`ikelb drain 2 --deadline 1`) and gw3 drains itself through
//! its own control socket; from 100 ms after the commands, a stream of real
//! IKE_SA_INIT requests is redirected only to gw1, every tunnel stays (same SA, CHILD
//! installed, ping passing), and after `undrain` both get clients again.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::cluster_failover::tunnels;
use super::ops_net::{ikelb_ctl, need_root, stream, tally};
use crate::lab::{Balancer, ClientKind, ClientSpec, Family, Lab, LabConfig};

/// What a request stream around `act` saw: the gateways named before it and from 100 ms
/// after it, the requests left unanswered, and how long after `act` the last request
/// was sent whose answer named a gateway other than `keep`.
struct Seen {
    before: BTreeSet<IpAddr>,
    after: BTreeSet<IpAddr>,
    lost: usize,
    last_other: Option<Duration>,
}

fn gateways(
    lab: &Lab,
    vip: &str,
    keep: IpAddr,
    run_for: Duration,
    act: impl FnOnce() -> Instant,
) -> Seen {
    let stop = AtomicBool::new(false);
    let probe = &lab.lb;
    std::thread::scope(|sc| {
        let h = sc.spawn(|| stream(probe, vip, &stop));
        std::thread::sleep(Duration::from_millis(500));
        let at = act();
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
        let sent = h.join().expect("client thread").unwrap();
        let (before, _) = tally(&sent, sent[0].at, Some(at));
        let (after, _) = tally(&sent, at + Duration::from_millis(100), None);
        let (_, lost) = tally(&sent, sent[0].at, None);
        let last_other = sent
            .iter()
            .filter(|s| s.at >= at && s.gateway.is_some_and(|g| g != keep))
            .map(|s| s.at - at)
            .max();
        Seen {
            before: before.into_keys().collect(),
            after: after.into_keys().collect(),
            lost,
            last_other,
        }
    })
}

#[test]
fn drain_stops_new_redirects_and_keeps_tunnels() {
    need_root();
    let clients: Vec<ClientSpec> = (1..=4)
        .map(|i| ClientSpec::new(&format!("d{i}"), ClientKind::StrongSwan, Family::V4, 500))
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
    for r in &lab.connect_clients() {
        assert!(
            r.verdict(esp).is_ok() && r.ping == Some(true),
            "{}\n{}",
            r.summary(),
            lab.cluster_logs(20)
        );
    }
    let before = tunnels(&lab).unwrap();
    println!("tunnels before the drain: {before:?}");
    let sock = |name: &str| {
        lab.cluster
            .iter()
            .find(|c| c.member == name)
            .expect("member's ikelb")
            .socket
            .clone()
    };
    let gw: Vec<IpAddr> = lab.members.iter().map(|m| m.v4()).collect();
    let vip = crate::lab::vip(Family::V4).to_string();

    // Timed from before the first command: "≤ 100 ms" includes the CLI round trips
    // and, for gw3, its report reaching the master.
    let seen = gateways(&lab, &vip, gw[0], Duration::from_millis(1500), || {
        let at = Instant::now();
        let out = ikelb_ctl(&["drain", "2", "--deadline", "1"], &sock("gw1")).unwrap();
        assert!(out.contains("member 2: draining"), "{out}");
        // gw3 drains itself: its reports carry the flag to both candidates.
        let out = ikelb_ctl(&["drain", "3"], &sock("gw3")).unwrap();
        assert!(out.contains("member 3: draining"), "{out}");
        at
    });
    println!(
        "gateways before the drain {:?}, from 100 ms after it {:?}, {} unanswered; last \
         redirect to a drained member sent {:?} after the first command was issued",
        seen.before, seen.after, seen.lost, seen.last_other
    );
    assert_eq!(
        seen.before,
        gw.iter().copied().collect(),
        "every member had clients"
    );
    assert_eq!(
        seen.after,
        BTreeSet::from([gw[0]]),
        "only gw1 gets new clients"
    );
    assert_eq!(seen.lost, 0);
    let st = lab.cluster_status("gw1").unwrap();
    let drain_flag = |id: u64| {
        st["cluster"]["members"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["id"] == id))
            .map(|m| m["drain"].clone())
    };
    assert_eq!(drain_flag(3), Some(serde_json::json!(true)), "{st}");
    assert_eq!(st["cluster"]["drained"][0][0], 2, "{st}");
    // The 1 s deadline has passed during the stream.
    let log = std::fs::read_to_string(&lab.cluster[0].daemon.log).unwrap();
    assert!(log.contains("drain deadline passed"), "gw1's log");

    // The tunnels did not notice.
    assert_eq!(
        tunnels(&lab).unwrap(),
        before,
        "tunnels changed by the drain"
    );
    for c in &lab.clients {
        assert!(lab.ping_service(c), "{}: ping after the drain", c.spec.name);
    }

    let back = gateways(&lab, &vip, gw[0], Duration::from_millis(1500), || {
        ikelb_ctl(&["undrain", "2"], &sock("gw1")).unwrap();
        ikelb_ctl(&["undrain", "3"], &sock("gw3")).unwrap();
        Instant::now()
    });
    println!("gateways after undrain: {:?}", back.after);
    assert_eq!(
        back.after,
        gw.iter().copied().collect(),
        "all get clients again"
    );
    assert_eq!(back.lost, 0);
}
