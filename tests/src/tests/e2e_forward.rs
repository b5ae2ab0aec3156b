//! End to end: clients that do not announce REDIRECT_SUPPORTED (strongSwan with
//! `follow_redirects = no`, libreswan without `accept-redirect`) reach a member through
//! ikelb's forwarding path (docs/architecture.md §6, same L2): the member owns the VIP
//! on `lo` and answers directly, IKE and CHILD SAs come up there, strongSwan pings
//! through its kernel-libipsec tunnel (ESP in UDP after the float from 500 to 4500,
//! which must reach the same member), while a redirect-capable client is still
//! redirected.
//!
//! Root only. Uses the `ikelb` binary from `IKELB_BIN`, else
//! `<workspace>/target/release/ikelb` (`cargo xtask build`).

use std::net::IpAddr;

use crate::capture::Capture;
use crate::esp::{self, Esp};
use crate::lab::{Balancer, ClientKind, ClientSpec, Family, Lab, LabConfig, ikelb_bin, vip};

/// (source, destination, UDP destination port) of an IPv4 or IPv6 UDP frame.
fn udp_of(f: &[u8]) -> Option<(IpAddr, IpAddr, u16)> {
    let port = |at: usize| Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]));
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0800 if *f.get(23)? == 17 => {
            let s: [u8; 4] = f.get(26..30)?.try_into().ok()?;
            let d: [u8; 4] = f.get(30..34)?.try_into().ok()?;
            let ihl = usize::from(f[14] & 15) * 4;
            Some((IpAddr::from(s), IpAddr::from(d), port(14 + ihl + 2)?))
        }
        0x86dd if *f.get(20)? == 17 => {
            let s: [u8; 16] = f.get(22..38)?.try_into().ok()?;
            let d: [u8; 16] = f.get(38..54)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d), port(56)?))
        }
        _ => None,
    }
}

#[test]
fn ikelb_forwards_clients_without_redirect_support() {
    crate::require_root!();
    let bin = ikelb_bin();
    assert!(
        bin.exists(),
        "ikelb binary {} not found: run `cargo xtask build` or set IKELB_BIN",
        bin.display()
    );
    let esp = esp::probe().expect("ESP probe");
    use ClientKind::{Libreswan, StrongSwan};
    let clients = vec![
        ClientSpec::new("fw4", StrongSwan, Family::V4, 500).without_redirect(),
        ClientSpec::new("fw6", StrongSwan, Family::V6, 500).without_redirect(),
        ClientSpec::new("fw4n", StrongSwan, Family::V4, 4500).without_redirect(),
        ClientSpec::new("fls4", Libreswan, Family::V4, 500).without_redirect(),
        ClientSpec::new("rs4", StrongSwan, Family::V4, 500),
    ];
    let lab = Lab::up(LabConfig {
        members: 3,
        balancer: Balancer::ikelb_default(),
        clients,
        ikelb_forward: true,
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));
    let caps: Vec<(String, Capture)> = ["fw4", "fls4"]
        .into_iter()
        .map(|name| {
            let c = lab.client(name).expect("client");
            let filter = format!("udp and host {}", vip(c.spec.family));
            let cap = Capture::start(&c.netns, "eth0", &filter, None, &lab.run_dir, name)
                .unwrap_or_else(|e| panic!("{e:#}"));
            (name.to_string(), cap)
        })
        .collect();

    let results = lab.connect_clients();
    let mut failures = Vec::new();
    for r in &results {
        eprintln!("{}", r.summary());
        if r.name == "rs4" {
            if let Err(e) = r.verdict(esp) {
                failures.push(format!("redirect-capable client: {e}"));
            }
            continue;
        }
        let mut missing = Vec::new();
        if r.landed_on.is_none() {
            missing.push("established on no member");
        }
        if r.client_followed_redirect || r.member_saw_redirect {
            missing.push("a redirect happened");
        }
        if !r.member_child_up {
            missing.push("no CHILD_SA on the member");
        }
        match (r.kind, esp) {
            (StrongSwan, _) => {
                if !r.initiate_ok || r.ping != Some(true) {
                    missing.push("no initiation or no ping through the tunnel");
                }
            }
            (Libreswan, Esp::Missing) if !r.esp_install_failed => {
                missing.push("libreswan did not fail its ESP install on a kernel without ESP");
            }
            (Libreswan, Esp::Available) if !r.initiate_ok => missing.push("whack failed"),
            (Libreswan, _) => {}
        }
        if !missing.is_empty() {
            failures.push(format!("{}: {}", r.name, missing.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        failures.join("\n"),
        lab.logs(40)
    );

    // On the wire: the client's IKE_SA_INIT carries no REDIRECT_SUPPORTED, nothing from
    // the VIP is a REDIRECT, and fw4 (kernel-libipsec: UDP encapsulation forced) floats
    // from 500 to 4500 and still gets its tunnel: the float reached the same member.
    for (name, cap) in caps {
        let frames = cap.finish().unwrap_or_else(|e| panic!("{e:#}"));
        let c = lab.client(&name).expect("client");
        let (me, v) = (c.addr(), vip(c.spec.family));
        let init = frames
            .iter()
            .find(|f| udp_of(f) == Some((me, v, 500)))
            .unwrap_or_else(|| panic!("{name}: no request to the VIP captured"));
        let text = crate::tshark::decode_one(init).expect("tshark");
        assert!(text.contains("IKE_SA_INIT"), "{name}: first frame:\n{text}");
        assert!(
            !text.contains("REDIRECT_SUPPORTED"),
            "{name}: the client announced REDIRECT_SUPPORTED:\n{text}"
        );
        for f in frames
            .iter()
            .filter(|f| udp_of(f).is_some_and(|u| u.0 == v))
        {
            let t = crate::tshark::decode_one(f).expect("tshark");
            assert!(
                !t.contains("REDIRECT (16407)"),
                "{name}: a REDIRECT came back:\n{t}"
            );
        }
        if name == "fw4" {
            assert!(
                frames.iter().any(|f| udp_of(f) == Some((me, v, 4500))),
                "{name}: no float to 4500 on the wire"
            );
        }
    }

    let stats = lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("ikelb stats: {stats}");
    assert!(stats["redirected"].as_u64().unwrap_or(0) >= 1, "{stats}");
    // Every later packet went through the balancer too (a member that announced the VIP
    // in ARP would have let clients bypass it): IKE after the first exchange and the
    // ping's ESP in UDP are counted for each VIP, on members of the VIP's family.
    let fwd = stats["forwarded"].as_array().expect("stats.forwarded");
    for fam in [Family::V4, Family::V6] {
        let v = vip(fam).to_string();
        for kind in ["ike_sa_init", "ike", "esp_in_udp"] {
            assert!(
                fwd.iter()
                    .any(|r| r["kind"] == kind && r["vip"] == v.as_str()),
                "no {kind} forwarded for {v}: {stats}"
            );
        }
        let v6_member =
            |r: &serde_json::Value| r["member"].as_str().is_some_and(|m| m.ends_with("-v6"));
        assert!(
            fwd.iter()
                .filter(|r| r["vip"] == v.as_str())
                .all(|r| v6_member(r) == (fam == Family::V6)),
            "{v}: forwarded to a member of the other family: {stats}"
        );
    }
    let text = lab.ikelb_stats_text().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{text}");
    assert!(text.contains("forwarded"), "{text}");
    // The running daemon's `ikelb status` shows the same rows (read at least as late
    // as `ikelb stats`, so every row there is in it with at least its packets).
    let status = lab.ikelb_status().unwrap_or_else(|e| panic!("{e:#}"));
    let live = status["fast_path"]["forwarded"]
        .as_array()
        .unwrap_or_else(|| panic!("status.fast_path.forwarded: {status}"));
    for r in fwd {
        assert!(
            live.iter().any(|l| l["vip"] == r["vip"]
                && l["member"] == r["member"]
                && l["kind"] == r["kind"]
                && l["packets"].as_u64() >= r["packets"].as_u64()),
            "ikelb status lacks {r}: {status}"
        );
    }
}

/// The same through IP-in-IP (`forward-encap = "ipip"`): every member unwraps with
/// `ikelb member --decap`, since this kernel has no tunnel modules. IPv4 clients (the
/// outer header is IPv4, so only members with an IPv4 address are reached).
#[test]
fn ikelb_forwards_inside_ip_in_ip() {
    crate::require_root!();
    let esp = esp::probe().expect("ESP probe");
    use ClientKind::{Libreswan, StrongSwan};
    let lab = Lab::up(LabConfig {
        members: 3,
        balancer: Balancer::ikelb_default(),
        clients: vec![
            ClientSpec::new("ip4", StrongSwan, Family::V4, 500).without_redirect(),
            ClientSpec::new("ip4n", StrongSwan, Family::V4, 4500).without_redirect(),
            ClientSpec::new("ipls", Libreswan, Family::V4, 500).without_redirect(),
        ],
        ikelb_forward: true,
        ikelb_forward_encap: true,
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));
    // What reaches a member from the balancer is IP-in-IP: seen on the bridge's port to
    // gw1 (on gw1 itself XDP unwraps it before any capture).
    let cap = Capture::start(
        &lab.bridge,
        "vgw1",
        "ip proto 4",
        None,
        &lab.run_dir,
        "gw1-ipip",
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    for r in lab.connect_clients() {
        eprintln!("{}", r.summary());
        let ok = r.landed_on.is_some()
            && !r.client_followed_redirect
            && r.member_child_up
            && match (r.kind, esp) {
                (StrongSwan, _) => r.initiate_ok && r.ping == Some(true),
                (Libreswan, Esp::Missing) => r.esp_install_failed,
                (Libreswan, Esp::Available) => r.initiate_ok,
            };
        assert!(ok, "{}\n{}", r.summary(), lab.logs(40));
    }
    let frames = cap.finish().unwrap_or_else(|e| panic!("{e:#}"));
    let stats = lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "ikelb stats: {stats}\n{} IP-in-IP frames at gw1",
        frames.len()
    );
    let fwd = stats["forwarded"].as_array().expect("stats.forwarded");
    for kind in ["ike_sa_init", "ike", "esp_in_udp"] {
        assert!(fwd.iter().any(|r| r["kind"] == kind), "no {kind}: {stats}");
    }
    // Every frame forwarded to gw1 went out wrapped, and nothing else did.
    let to_gw1: u64 = fwd
        .iter()
        .filter(|r| r["member"] == "gw1")
        .filter_map(|r| r["packets"].as_u64())
        .sum();
    assert_eq!(
        frames.len() as u64,
        to_gw1,
        "IP-in-IP frames to gw1 against forwarded packets: {stats}"
    );
}
