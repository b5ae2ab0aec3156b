//! BPF_PROG_TEST_RUN fixture tables (docs/testing.md §1.2, §1.3): what `ikelb_xdp`
//! must do with captured strongSwan and libreswan requests and synthetic ones, under
//! targets of each identity type (IPv4, IPv6, FQDN).
//!
//! This file has the positive table: every request shape answered (VLAN tags, QinQ,
//! IPv4 options, port 4500, both families, nonce sizes, every capture) with each
//! identity type, and FQDN lengths up to where the answer would not be shorter. The
//! rest: `xdp_fixtures_harness.rs` (the table runner), `xdp_fixtures_answer.rs` (answer
//! checks, tshark), `xdp_fixtures_negative.rs` and `xdp_fixtures_lengths.rs` (negative
//! rows from loops), `xdp_fixtures_mutation.rs` (seeded mutation run),
//! `xdp_fixtures_frames.rs` (frame surgery).
//!
//! Root only (loading BPF); the object must be embedded: `cargo xtask build`, or
//! `IKELB_EBPF_OBJ=<object> cargo test -p ikelb-tests xdp_fixtures`.

use std::net::IpAddr;

use lb_common::maps::Stat;
use lb_userspace::frames::RequestSpec;
use lb_userspace::target::Identity;

use super::xdp_fixtures_frames::{self as fr, Fix};
use super::xdp_fixtures_harness::{Case, Expect, Harness};
use crate::fixtures::{self, CAPTURED};

/// The target of the IPv4 set-up (docs/protocol.md §5.2).
pub(super) const GW4: [u8; 4] = [198, 51, 100, 3];
/// The target of the IPv6 set-up.
pub(super) const GW6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
/// The target of the FQDN set-up (serves both families).
pub(super) const GW_FQDN: &str = "gw3.example.net";

pub(super) fn id4() -> Identity {
    Identity::Ip(IpAddr::from(GW4))
}
pub(super) fn id6() -> Identity {
    Identity::Ip(IpAddr::from(GW6))
}
pub(super) fn fqdn(name: &str) -> Identity {
    Identity::Fqdn(name.into())
}
/// An FQDN of exactly `len` bytes (labels of at most 63).
pub(super) fn fqdn_of_len(len: usize) -> String {
    let mut s = String::from("gw");
    while s.len() < len {
        s.push(if s.len() % 60 == 59 { '.' } else { 'x' });
    }
    s.truncate(len);
    s
}

/// The request frames the program must answer: (name, frame). VIPs are 198.51.100.1,
/// 2001:db8::1 and the captured fixtures' destinations.
pub(super) fn answerable() -> Vec<(String, Vec<u8>)> {
    let v4 = RequestSpec::default;
    let v6 = RequestSpec::v6;
    let qinq = vec![(0x88a8, 100), (0x8100, 200)];
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (fam, base) in [("v4", v4()), ("v6", v6())] {
        let mut add = |name: &str, s: RequestSpec| out.push((format!("{fam} {name}"), s.frame()));
        add("vector", base.clone());
        let tagged = |tags: &[(u16, u16)]| RequestSpec {
            vlans: tags.to_vec(),
            ..base.clone()
        };
        add("802.1Q", tagged(&[(0x8100, 100)]));
        add("QinQ 88a8+8100", tagged(&qinq));
        add("QinQ 9100+8100", tagged(&[(0x9100, 7), (0x8100, 4095)]));
        let natt = RequestSpec {
            dport: 4500,
            sport: 4500,
            ..base.clone()
        };
        add("4500 marker", natt.clone());
        add(
            "4500 marker QinQ",
            RequestSpec {
                vlans: qinq.clone(),
                ..natt
            },
        );
        add(
            "NATed source port 31337",
            RequestSpec {
                sport: 31337,
                ..base.clone()
            },
        );
        for n in [16, 17, 255, 256] {
            add(
                &format!("nonce {n}"),
                RequestSpec {
                    nonce: (0..n).map(|i| (i * 7 + 1) as u8).collect(),
                    ..base.clone()
                },
            );
        }
        add(
            "only REDIRECT_SUPPORTED after NAT-D",
            RequestSpec {
                extra_notifies: Vec::new(),
                ..base.clone()
            },
        );
        add(
            "unknown status notifies",
            RequestSpec {
                extra_notifies: vec![16431, 40000, 16406],
                ..base.clone()
            },
        );
    }
    let opts = |o: Vec<u8>| RequestSpec {
        ip_options: o,
        ..RequestSpec::default()
    };
    out.push(("v4 IPv4 options (4)".into(), opts(vec![1, 1, 1, 0]).frame()));
    out.push(("v4 IPv4 options (40)".into(), opts(vec![1; 40]).frame()));
    let mut s = opts(vec![0x94, 4, 0, 0]);
    s.vlans = qinq.clone();
    s.dport = 4500;
    out.push(("v4 options + QinQ + 4500".into(), s.frame()));
    out.push((
        "v4 UDP checksum 0".into(),
        RequestSpec {
            udp_checksum: false,
            ..RequestSpec::default()
        }
        .frame(),
    ));
    // Fields a responder ignores (docs/protocol.md §1.9): minor version, V and reserved flags.
    let vec4 = RequestSpec::default().frame();
    for (name, at, v) in [
        ("minor version 2.1", 17, 0x21),
        ("flags I|V|reserved", 19, 0x1f),
    ] {
        out.push((
            format!("v4 {name}"),
            fr::edit(&vec4, Fix::CSUM, |f, l| f[l.ike + at] = v),
        ));
    }
    for name in CAPTURED {
        let f = fixtures::fixture(name);
        out.push(((*name).into(), f.clone()));
        out.push((
            format!("{name} + 802.1Q"),
            fr::with_tags(&f, &[(0x8100, 9)]),
        ));
        out.push((format!("{name} + QinQ"), fr::with_tags(&f, &qinq)));
    }
    out
}

/// The answerable frames under one target set-up: answered where a target serves the
/// family, else passed as `pass_no_target`.
fn positive_table(h: &Harness) -> Vec<Case> {
    answerable()
        .into_iter()
        .map(|(name, frame)| {
            let expect = h.answer(&frame);
            Case::new(name, frame, expect)
        })
        .collect()
}

#[test]
fn xdp_fixtures_ipv4_target() {
    crate::require_root!();
    let mut h = Harness::new(&[id4()]);
    let cases = positive_table(&h);
    assert!(cases.iter().filter(|c| c.expect.is_redirect()).count() >= 15);
    h.check_all(&cases);
    h.finish("IPv4 target");
}

#[test]
fn xdp_fixtures_ipv6_target() {
    crate::require_root!();
    let mut h = Harness::new(&[id6()]);
    let cases = positive_table(&h);
    assert!(cases.iter().filter(|c| c.expect.is_redirect()).count() >= 15);
    h.check_all(&cases);
    h.finish("IPv6 target");
}

#[test]
fn xdp_fixtures_fqdn_target() {
    crate::require_root!();
    let mut h = Harness::new(&[fqdn(GW_FQDN)]);
    let cases = positive_table(&h);
    h.check_all(&cases);
    // Long names: answered while the answer stays shorter than the request
    // (docs/protocol.md §4.6), `pass_answer_too_large` from the first length where it
    // would not.
    let v4 = RequestSpec::default().frame();
    let v6 = RequestSpec::v6().frame();
    // IKE 216 with a 32-byte nonce: 38 + L + 32 < 216 up to L = 145.
    for (len, ok) in [
        (1, true),
        (77, true),
        (78, true),
        (145, true),
        (146, false),
        (255, false),
    ] {
        let name = fqdn_of_len(len);
        h.set_targets(&[fqdn(&name)]);
        let t = Identity::Fqdn(name).to_target();
        for (fam, f) in [("v4", &v4), ("v6", &v6)] {
            let expect = if ok {
                Expect::Redirect(t)
            } else {
                Expect::Pass(Stat::PassTooLarge)
            };
            h.check(&Case::new(
                format!("{fam} vector, FQDN of {len}"),
                f.clone(),
                expect,
            ));
        }
        // The captured requests are long enough for any FQDN.
        for n in CAPTURED {
            let f = fixtures::fixture(n);
            h.check(&Case::new(
                format!("{n}, FQDN of {len}"),
                f,
                Expect::Redirect(t),
            ));
        }
    }
    h.finish("FQDN target");
}
