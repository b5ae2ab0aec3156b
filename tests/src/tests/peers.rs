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
    lab.connect_clients_expect_landed(esp);
}

#[test]
fn lab_comes_up_and_goes_down_cleanly() {
    crate::require_root!();
    let lab = Lab::up(LabConfig {
        clients: ClientSpec::standard_set(),
        ..LabConfig::default()
    })
    .expect("lab up");
    eprintln!("{}", lab.describe());
    let names: Vec<String> = [lab.lb.name(), lab.bridge.name()]
        .into_iter()
        .map(str::to_string)
        .chain(lab.members.iter().map(|m| m.netns.name().to_string()))
        .chain(lab.clients.iter().map(|c| c.netns.name().to_string()))
        .collect();
    let pids: Vec<u32> = lab.members.iter().map(|m| m.charon.pid()).collect();
    let dir = lab.run_dir.clone();
    lab.down();
    let list = crate::cmd::run(&mut crate::cmd::command("ip", ["netns", "list"])).expect("list");
    for n in &names {
        assert!(
            !list.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "{n} left"
        );
    }
    for p in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{p}")).exists(),
            "charon {p} left"
        );
    }
    assert!(!dir.exists(), "{} left", dir.display());
}

#[test]
fn lab_is_torn_down_when_a_test_panics() {
    crate::require_root!();
    let seen = std::sync::Mutex::new(None);
    let res = std::panic::catch_unwind(|| {
        let lab = Lab::up(LabConfig {
            members: 1,
            ..LabConfig::default()
        })
        .expect("lab up");
        let names = vec![
            lab.lb.name().to_string(),
            lab.bridge.name().to_string(),
            lab.members[0].netns.name().to_string(),
        ];
        *seen.lock().unwrap() = Some((names, lab.members[0].charon.pid(), lab.run_dir.clone()));
        panic!("deliberate");
    });
    assert!(res.is_err());
    let (names, pid, dir) = seen.lock().unwrap().take().expect("lab was up");
    let list = crate::cmd::run(&mut crate::cmd::command("ip", ["netns", "list"])).expect("list");
    for n in &names {
        assert!(
            !list.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "{n} left"
        );
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "charon left"
    );
    // Logs are kept on panic, for the failure message; remove them here.
    assert!(dir.exists());
    let _ = std::fs::remove_dir_all(dir);
}
