//! The lab and the peers on their own, with libreswan's `global-redirect` answering at
//! the VIP: proves the topology, the clients and the result checks without ikelb.

use crate::esp;
use crate::lab::{Balancer, ClientSpec, Lab, LabConfig};

#[test]
fn esp_probe_answers() {
    crate::require_root!();
    let e = esp::probe().expect("probe");
    eprintln!("kernel ESP: {e:?}");
}

#[test]
fn lab_with_libreswan_global_redirect() {
    crate::require_root!();
    let esp = esp::probe().expect("probe");
    let lab = Lab::up(LabConfig {
        balancer: Balancer::LibreswanGlobalRedirect,
        clients: ClientSpec::standard_set(),
        ..LabConfig::default()
    })
    .expect("lab up");
    let results = lab.connect_clients();
    let mut failures = Vec::new();
    for r in &results {
        eprintln!("{}", r.summary());
        if let Err(e) = r.verdict(esp) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        failures.join("\n"),
        lab.logs(25)
    );
}
