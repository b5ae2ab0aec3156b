//! End to end: ikelb's XDP program on the VIP redirects real strongSwan and libreswan
//! clients (IPv4, IPv6, port 4500 with the non-ESP marker) to strongSwan members, and
//! the tunnels come up there (docs/testing.md §1.4 and §3.1 for what "up" means without
//! kernel ESP), in native and in generic (skb) XDP mode; clients that do not announce
//! REDIRECT_SUPPORTED get no answer from the fast path.
//!
//! Root only. Uses the `ikelb` binary from `IKELB_BIN`, else
//! `<workspace>/target/release/ikelb` (`cargo xtask build`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lb_common::maps::{Target, Vip};
use lb_common::wire::request;

use crate::capture::Capture;
use crate::cmd;
use crate::esp;
use crate::lab::{
    Balancer, ClientDaemon, ClientKind, ClientSpec, Family, Lab, LabConfig, ikelb_bin, vip,
};
use crate::peers::strongswan::CharonOptions;

fn target_for(a: IpAddr) -> Target {
    match a {
        IpAddr::V4(v4) => Target::ipv4(v4.octets()),
        IpAddr::V6(v6) => Target::ipv6(v6.octets()),
    }
}

fn ip_of(frame: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        0x0800 => {
            let s: [u8; 4] = frame.get(26..30)?.try_into().ok()?;
            let d: [u8; 4] = frame.get(30..34)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        0x86dd => {
            let s: [u8; 16] = frame.get(22..38)?.try_into().ok()?;
            let d: [u8; 16] = frame.get(38..54)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first request the client sent to the VIP and the first answer from it must be
/// exactly `emit_reply_frame(request, landed member)`, and tshark must read a REDIRECT.
fn check_wire(lab: &Lab, client: &str, frames: &[Vec<u8>], landed: &str, fam: Family) {
    let vip = vip(fam);
    let c = lab.client(client).expect("client");
    let req = frames
        .iter()
        .find(|f| ip_of(f) == Some((c.addr(), vip)))
        .unwrap_or_else(|| panic!("{client}: no request to the VIP captured"));
    let reply = frames
        .iter()
        .find(|f| ip_of(f) == Some((vip, c.addr())))
        .unwrap_or_else(|| panic!("{client}: no answer from the VIP captured"));
    let mut want = [0u8; 16];
    match vip {
        IpAddr::V4(a) => want[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => want.copy_from_slice(&a.octets()),
    }
    let parsed = request::parse(req, true, |_, d| (*d == want).then_some(Vip::ANY))
        .unwrap_or_else(|s| panic!("{client}: captured request not answerable: {s:?}"));
    let m = lab.member(landed).expect("member");
    let t = target_for(match fam {
        Family::V4 => m.v4(),
        Family::V6 => m.v6(),
    });
    let mut out = vec![0u8; req.len()];
    let n = request::emit_reply_frame(req, &parsed, &t, &mut out).expect("reference answer");
    assert_eq!(
        hex(reply),
        hex(&out[..n]),
        "{client}: the answer on the wire differs from lb-common's emit_reply_frame"
    );
    let text = crate::tshark::decode_one(reply).expect("tshark");
    assert!(
        text.contains("Notify Message Type: REDIRECT (16407)"),
        "{client}: tshark sees no REDIRECT:\n{text}"
    );
}

#[test]
fn ikelb_redirects_real_clients_to_members() {
    crate::require_root!();
    let bin = ikelb_bin();
    assert!(
        bin.exists(),
        "ikelb binary {} not found: run `cargo xtask build` or set IKELB_BIN",
        bin.display()
    );
    let esp = esp::probe().expect("ESP probe");
    let lab = Lab::up(LabConfig {
        balancer: Balancer::ikelb_default(),
        clients: ClientSpec::standard_set(),
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));

    // Watch the IPv4 and IPv6 strongSwan clients' wire.
    let caps: Vec<(String, Family, Capture)> = [("sw4", Family::V4), ("sw6", Family::V6)]
        .into_iter()
        .map(|(name, fam)| {
            let c = lab.client(name).expect("client");
            let filter = format!("udp and host {}", vip(fam));
            let cap = Capture::start(&c.netns, "eth0", &filter, None, &lab.run_dir, name)
                .unwrap_or_else(|e| panic!("{e:#}"));
            (name.to_string(), fam, cap)
        })
        .collect();

    let results = lab.connect_clients_expect_landed(esp);

    for (name, fam, cap) in caps {
        let frames = cap.finish().unwrap_or_else(|e| panic!("{e:#}"));
        let landed = results
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.landed_on.clone())
            .expect("landed");
        check_wire(&lab, &name, &frames, &landed, fam);
    }

    let stats = lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("ikelb stats: {stats}");
    let redirected = stats["redirected"].as_u64().expect("stats.redirected");
    assert!(
        redirected >= results.len() as u64,
        "ikelb counted {redirected} redirects for {} clients: {stats}",
        results.len()
    );
}

fn require_ikelb() {
    let bin = ikelb_bin();
    assert!(
        bin.exists(),
        "ikelb binary {} not found: run `cargo xtask build` or set IKELB_BIN",
        bin.display()
    );
}

/// Generic (skb) XDP: the same redirects, with XDP_TX going through the generic path.
#[test]
fn ikelb_redirects_in_skb_mode() {
    crate::require_root!();
    require_ikelb();
    let esp = esp::probe().expect("ESP probe");
    let clients = ClientSpec::standard_set();
    let n = clients.len() as u64;
    let lab = Lab::up(LabConfig {
        balancer: Balancer::Ikelb {
            bin: ikelb_bin(),
            xdp_mode: "skb".into(),
        },
        clients,
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));
    let attached = lab.lb_xdp_attachment().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        attached.as_deref(),
        Some("xdpgeneric"),
        "ikelb --xdp-mode skb should attach in generic mode"
    );
    lab.connect_clients_expect_landed(esp);
    let stats = lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("ikelb stats (skb): {stats}");
    assert!(
        stats["redirected"].as_u64().expect("stats.redirected") >= n,
        "{stats}"
    );
    assert_eq!(stats["drop_tx_error"].as_u64(), Some(0), "{stats}");
}

/// A machine without XDP (`--xdp-mode off`): no program is attached and the userspace
/// responder answers the real clients' IKE_SA_INIT with the fast path's REDIRECT.
#[test]
fn ikelb_redirects_without_xdp_from_userspace() {
    crate::require_root!();
    require_ikelb();
    let esp = esp::probe().expect("ESP probe");
    let lab = Lab::up(LabConfig {
        balancer: Balancer::Ikelb {
            bin: ikelb_bin(),
            xdp_mode: "off".into(),
        },
        clients: ClientSpec::standard_set(),
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));
    let attached = lab.lb_xdp_attachment().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(attached, None, "--xdp-mode off must attach nothing");
    lab.connect_clients_expect_landed(esp);
}

/// Clients that do not announce REDIRECT_SUPPORTED (libreswan without
/// `accept-redirect=yes`, strongSwan with `follow_redirects = no`) are left to the kernel:
/// ikelb counts `pass_no_redirect_supported`, and the client receives nothing from the
/// VIP (no IKE responder there) and gives up after its few short retransmissions.
#[test]
fn ikelb_ignores_clients_without_redirect_supported() {
    crate::require_root!();
    require_ikelb();
    let t0 = Instant::now();
    let lab = Lab::up(LabConfig {
        members: 1,
        balancer: Balancer::ikelb_default(),
        clients: vec![
            ClientSpec::new("ls4nr", ClientKind::Libreswan, Family::V4, 500).without_redirect(),
            ClientSpec::new("sw6nr", ClientKind::StrongSwan, Family::V6, 500).without_redirect(),
            ClientSpec::new("sw4nrn", ClientKind::StrongSwan, Family::V4, 4500).without_redirect(),
        ],
        // Give up fast: one try, half a second.
        charon: CharonOptions {
            retransmit_tries: 0,
            retransmit_timeout: 0.5,
            retransmit_base: 1.0,
            ..CharonOptions::default()
        },
        ..LabConfig::default()
    })
    .unwrap_or_else(|e| panic!("lab up: {e:#}"));

    let caps: Vec<(String, IpAddr, IpAddr, Capture)> = lab
        .clients
        .iter()
        .map(|c| {
            let vip = vip(c.spec.family);
            let filter = format!("udp and host {vip}");
            let cap = Capture::start(&c.netns, "eth0", &filter, None, &lab.run_dir, &c.spec.name)
                .unwrap_or_else(|e| panic!("{e:#}"));
            (c.spec.name.clone(), c.addr(), vip, cap)
        })
        .collect();

    // Start every initiation without waiting for it (libreswan would retry for a minute).
    let marks: Vec<usize> = lab.members.iter().map(|m| m.charon.log_mark()).collect();
    let mut swanctl = Vec::new();
    for c in &lab.clients {
        match &c.daemon {
            ClientDaemon::StrongSwan(ch) => {
                let child = ch
                    .swanctl(&["--initiate", "--child", "svc", "--timeout", "5"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn swanctl --initiate");
                swanctl.push((c.spec.name.clone(), child));
            }
            ClientDaemon::Libreswan(p) => {
                cmd::run(&mut p.whack(&["--name", "vip", "--initiate", "--asynchronous"]))
                    .unwrap_or_else(|e| panic!("{e:#}"));
            }
        }
    }
    let want = lab.clients.len() as u64;
    let mut stats = serde_json::Value::Null;
    cmd::wait_for(
        "ikelb to count every client's request as pass_no_redirect_supported",
        Duration::from_secs(5),
        || {
            stats = lab.ikelb_stats()?;
            Ok(stats["pass_no_redirect_supported"].as_u64().unwrap_or(0) >= want)
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\nlast stats: {stats}\n{}", lab.logs(20)));
    // strongSwan gives up after its one half-second try; anything the VIP would send
    // back would be on the wire by then.
    for (name, child) in swanctl {
        let out = child.wait_with_output().expect("swanctl --initiate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "{name}: swanctl --initiate succeeded with nobody answering at the VIP:\n{text}"
        );
        assert!(
            !text.contains("redirected to"),
            "{name}: strongSwan followed a redirect:\n{text}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let stats = lab.ikelb_stats().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("ikelb stats: {stats}");
    assert_eq!(stats["redirected"].as_u64(), Some(0), "{stats}");
    for (name, client, vip, cap) in caps {
        let frames = cap.finish().unwrap_or_else(|e| panic!("{e:#}"));
        let sent: Vec<&[u8]> = frames
            .iter()
            .filter(|f| ip_of(f) == Some((client, vip)))
            .map(Vec::as_slice)
            .collect();
        let answers = frames
            .iter()
            .filter(|f| ip_of(f) == Some((vip, client)))
            .count();
        assert!(!sent.is_empty(), "{name}: no request to the VIP captured");
        assert_eq!(answers, 0, "{name}: the VIP answered over UDP");
        let text = crate::tshark::decode(&sent).expect("tshark");
        assert!(
            text.contains("IKE_SA_INIT") && !text.contains("REDIRECT_SUPPORTED"),
            "{name}: expected IKE_SA_INIT requests without REDIRECT_SUPPORTED:\n{text}"
        );
    }
    for (m, mark) in lab.members.iter().zip(marks) {
        let log = m.charon.log_since(mark);
        assert!(
            !log.contains("IKE_SA_INIT"),
            "{}: a member heard from a client that was never redirected:\n{log}",
            m.name
        );
    }
    eprintln!(
        "no-REDIRECT_SUPPORTED case done in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// The lab's generated config is one the daemon accepts (no root needed).
#[test]
fn lab_config_passes_ikelb_check_config() {
    let bin = ikelb_bin();
    if !bin.exists() {
        eprintln!("SKIPPED: {} not built", bin.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("ikelb-cfg-{}", crate::netns::unique_tag()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("ikelb.toml");
    std::fs::write(&path, LabConfig::default().ikelb_toml("native")).expect("write");
    let out = std::process::Command::new(&bin)
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run ikelb check-config");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "ikelb check-config rejects the lab config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
