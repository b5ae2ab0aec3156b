//! End to end on a cluster (docs/architecture.md §6): the VRRP master forwards clients
//! without REDIRECT_SUPPORTED by the load exchange's weights, its own share passed to
//! its local stack. The tables are rebuilt at every report while clients connect, and
//! no established client moves; when a member dies and leaves the table, its clients
//! (only those) land elsewhere on reconnecting, while every other tunnel keeps
//! working through the balancer.
//!
//! Root only. Uses the `ikelb` binary from `IKELB_BIN`, else
//! `<workspace>/target/release/ikelb` (`cargo xtask build`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cmd::wait_for;
use crate::lab::{Balancer, ClientKind, ClientSpec, Family, Lab, LabConfig, ikelb_bin};

#[test]
fn ikelb_cluster_forwarding_survives_rebuilds_and_a_lost_member() {
    crate::require_root!();
    let clients: Vec<ClientSpec> = (1..=8)
        .map(|i| {
            let port = if i % 4 == 0 { 4500 } else { 500 };
            ClientSpec::new(&format!("f{i}"), ClientKind::StrongSwan, Family::V4, port)
                .without_redirect()
        })
        .collect();
    let mut lab = Lab::up(LabConfig {
        members: 3,
        clients,
        balancer: Balancer::IkelbCluster {
            bin: ikelb_bin(),
            candidates: 1,
        },
        cluster_report_ms: 200,
        ikelb_forward: true,
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));
    assert_eq!(lab.cluster_master().as_deref(), Some("gw1"));
    let mut landed: BTreeMap<String, String> = BTreeMap::new();
    for r in lab.connect_clients() {
        eprintln!("{}", r.summary());
        assert!(
            r.landed_on.is_some()
                && !r.client_followed_redirect
                && r.member_child_up
                && r.ping == Some(true),
            "{}\n{}\n{}",
            r.summary(),
            r.client_log,
            lab.cluster_logs(20)
        );
        landed.insert(r.name.clone(), r.landed_on.clone().expect("landed"));
    }
    eprintln!("landed: {landed:?}\n{}", lab.cluster_status_text());
    // Every report while they connected rebuilt the tables (the SA counts changed the
    // headroom); every tunnel still works, so none moved.
    for (name, m) in &landed {
        let c = lab.client(name).expect("client");
        assert!(lab.ping_service(c), "{name} (on {m}) lost its tunnel");
    }
    // A member other than the master with clients dies: charon and its reporter.
    let victim = landed
        .values()
        .find(|m| *m != "gw1")
        .cloned()
        .expect("a client on a member other than the master");
    if let Some(n) = lab.cluster.iter().find(|c| c.member == victim) {
        n.daemon.signal(libc::SIGKILL);
    }
    if let Some(m) = lab.members.iter_mut().find(|m| m.name == victim) {
        m.charon.stop();
    }
    wait_for(
        "the master's table without the dead member",
        Duration::from_secs(15),
        || {
            Ok(lab.cluster_status("gw1").is_ok_and(|r| {
                r["cluster"]["members"]
                    .as_array()
                    .is_some_and(|ms| ms.len() == 2)
            }))
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", lab.cluster_status_text()));
    for (name, m) in &landed {
        let c = lab.client(name).expect("client");
        if *m == victim {
            let r = lab.reconnect(name).expect("client");
            eprintln!("after the loss: {}", r.summary());
            let now = r.landed_on.clone().unwrap_or_default();
            assert!(
                now != victim && !now.is_empty() && r.member_child_up && r.ping == Some(true),
                "{name} of the dead {victim}: {}\n{}",
                r.summary(),
                lab.cluster_logs(20)
            );
        } else {
            assert!(
                lab.ping_service(c),
                "{name} on {m} lost its tunnel when {victim} died"
            );
        }
    }
    eprintln!("{}", lab.cluster_status_text());
}
