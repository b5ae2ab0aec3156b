//! Reload of the IKE responder's settings on the lab with an auth-mode VIP: a
//! strongSwan client authenticates with the lab PSK and is redirected; after a reload
//! that gives its peer entry another PSK, its next connection fails authentication;
//! after a reload back, it connects and lands again. XDP stays attached throughout.

use super::ops_net::{ikelb_ctl, need_root};
use crate::lab::{Balancer, ClientKind, ClientSpec, Family, Lab, LabConfig};

/// The id of the XDP program attached to the lb's interface (a re-attach changes it).
fn xdp_prog_id(lab: &Lab) -> Option<String> {
    let out = lab
        .lb
        .ip(&["-d", "link", "show", "dev", &lab.lb_iface])
        .ok()?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("prog/xdp"))?;
    (words.get(at + 1) == Some(&"id")).then(|| words.get(at + 2).map(|s| s.to_string()))?
}

#[test]
fn reload_changes_ike_psks_without_a_restart() {
    need_root();
    let esp = crate::esp::probe().unwrap();
    let lab = Lab::up(LabConfig {
        balancer: Balancer::ikelb_default(),
        clients: vec![ClientSpec::new(
            "rk1",
            ClientKind::StrongSwan,
            Family::V4,
            500,
        )],
        ikelb_auth: Some("informational".into()),
        ..LabConfig::default()
    })
    .unwrap();
    let r = lab.connect("rk1").expect("client rk1");
    assert!(r.verdict(esp).is_ok(), "{}\n{}", r.summary(), r.client_log);
    let conf = lab.run_dir.join("lb").join("ikelb.toml");
    let sock = std::path::PathBuf::from(format!("/run/ikelb/{}.sock", lab.lb_iface));
    let good = std::fs::read_to_string(&conf).unwrap();
    let psk_line = format!("psk = \"{}\"", crate::peers::PSK);
    assert!(good.contains(&psk_line), "the lab config has the PSK");
    let xdp_before = xdp_prog_id(&lab);
    assert!(xdp_before.is_some(), "an XDP program on the lb");

    std::fs::write(
        &conf,
        good.replace(&psk_line, "psk = \"another-psk-0123456789abcdef\""),
    )
    .unwrap();
    let out = ikelb_ctl(&["reload"], &sock).unwrap();
    assert!(out.contains("generation 2") && out.contains("ike"), "{out}");
    let r = lab.reconnect("rk1").expect("client rk1");
    assert!(
        r.landed_on.is_none(),
        "authenticated with the old PSK: {}",
        r.summary()
    );
    let log = std::fs::read_to_string(lab.run_dir.join("lb").join("ikelb.log")).unwrap_or_default();
    assert!(
        log.contains("authentication failed"),
        "ikelb refused the old PSK"
    );

    std::fs::write(&conf, &good).unwrap();
    let out = ikelb_ctl(&["reload"], &sock).unwrap();
    assert!(out.contains("generation 3"), "{out}");
    let r = lab.reconnect("rk1").expect("client rk1");
    assert!(r.verdict(esp).is_ok(), "{}\n{}", r.summary(), r.client_log);
    assert_eq!(
        xdp_prog_id(&lab),
        xdp_before,
        "the same XDP program stayed attached"
    );
    println!(
        "PSK reloaded away and back: refused in between, landed on {:?} after",
        r.landed_on
    );
}
