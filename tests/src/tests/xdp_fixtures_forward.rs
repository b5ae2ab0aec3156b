//! BPF_PROG_TEST_RUN fixtures of the forwarding path (docs/architecture.md §6): every
//! forwarded kind, both families, VLAN tags, on a VIP with `no-redirect = "forward"`,
//! checked against the reference model (`lb_common::forward::classify`, the Maglev
//! table of `lb_common::maglev`): XDP_TX, the frame unchanged but for the Ethernet
//! addresses, `forwarded` counted once, the per-(VIP, member, kind) packets and bytes.
//! Then the choice over time: the port float, table rebuilds (no pinned client moves)
//! and a lost member (only its clients move).
//!
//! Root only (loading BPF); the object must be embedded (`cargo xtask build`).

use std::net::IpAddr;

use aya::maps::{MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunOptions};
use lb_common::forward::{self as f, FwdCount, FwdKind, MAGLEV_SIZE, client_hash};
use lb_common::maglev::{self, Member};
use lb_common::maps::{self as m, Stat};
use lb_common::wire::request;
use lb_userspace::config::{NoRedirect, RedirectMode, Vip, VlanBinding};
use lb_userspace::dataplane::Dataplane;
use lb_userspace::frames::{RequestSpec, build_frame};
use lb_userspace::target::{Identity, Owner, Target};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const VIP4: [u8; 4] = [198, 51, 100, 1];
const VIP6: &str = "2001:db8::1";
/// A VIP that keeps passing clients without REDIRECT_SUPPORTED.
const VIP4_PASS: [u8; 4] = [198, 51, 100, 2];

struct Fwd {
    dp: Dataplane,
    targets: Vec<Target>,
    last: Vec<u64>,
}

fn mac_of(i: usize) -> [u8; 6] {
    [0x02, 0xfd, 0, 0, 0, i as u8 + 1]
}

/// Member gwN's address of each family (its targets gwN and gwN-v6, one host).
fn member_ip(i: usize, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from([
            0x20,
            1,
            0x0d,
            0xb8,
            0,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            11 + i as u8,
        ])
    } else {
        IpAddr::from([192, 0, 2, 11 + i as u8])
    }
}

/// The target owner of member `i` for clients of family `v6`.
fn target_name(i: usize, v6: bool) -> Owner {
    Owner::Static(if v6 {
        format!("gw{i}-v6")
    } else {
        format!("gw{i}")
    })
}

impl Fwd {
    fn new(weights: &[u32]) -> Self {
        let mut dp = Dataplane::load(None).unwrap_or_else(|e| panic!("load the XDP object: {e}"));
        let vip = |a: IpAddr, no_redirect| Vip {
            address: a,
            redirect: RedirectMode::Init,
            no_redirect,
            // The fixtures' frames carry QinQ tags too.
            vlans: VlanBinding::Any,
        };
        dp.set_vips(&[
            vip(IpAddr::from(VIP4), NoRedirect::Forward),
            vip(VIP6.parse().expect("literal"), NoRedirect::Forward),
            vip(IpAddr::from(VIP4_PASS), NoRedirect::Pass),
        ])
        .expect("set VIPs");
        for i in 0..8 {
            for v6 in [false, true] {
                dp.set_member_mac(member_ip(i, v6), mac_of(i));
            }
        }
        let mut h = Fwd {
            dp,
            targets: Vec::new(),
            last: Vec::new(),
        };
        h.set_weights(weights);
        h.dp.set_active(true).expect("active");
        h.last = h.stats();
        h
    }

    /// Members gw0.. with these weights (a weight of `u32::MAX` leaves that member out),
    /// each a target per family.
    fn set_weights(&mut self, weights: &[u32]) {
        self.targets = weights
            .iter()
            .enumerate()
            .filter(|(_, w)| **w != u32::MAX)
            .flat_map(|(i, &w)| {
                [false, true].map(|v6| Target {
                    owner: target_name(i, v6),
                    identity: Identity::Ip(member_ip(i, v6)),
                    weight: w,
                })
            })
            .collect();
        self.dp.set_targets(&self.targets).expect("set targets");
    }

    /// The reference Maglev table of the current targets for clients of family `v6`, by
    /// member number (gwN → N).
    fn table(&self, v6: bool) -> Vec<usize> {
        let idx = self.dp.target_names();
        let members: Vec<Member> = self
            .targets
            .iter()
            .filter(|t| matches!(t.identity, Identity::Ip(a) if a.is_ipv6() == v6))
            .map(|t| Member {
                index: idx.iter().find(|x| x.1 == t.owner).expect("installed").0,
                key: maglev::member_key(t.owner.to_string().as_bytes()),
                weight: t.weight,
            })
            .collect();
        maglev::populate(&members)
            .into_iter()
            .map(|i| self.member_no(i))
            .collect()
    }

    /// gwN's N for a target index.
    fn member_no(&self, index: u16) -> usize {
        let names = self.dp.target_names();
        let n = names
            .iter()
            .find(|x| x.0 == index)
            .expect("index")
            .1
            .to_string();
        n[2..].trim_end_matches("-v6").parse().expect("gwN")
    }

    fn stats(&mut self) -> Vec<u64> {
        let map = self.dp.ebpf_mut().map(m::MAP_STATS).expect("stats");
        let a: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).expect("per-CPU");
        (0..Stat::COUNT)
            .map(|i| a.get(&i, 0).expect("counter").iter().sum())
            .collect()
    }

    /// Counters of (VIP slot, target of member `member` for family `slot`, kind): the
    /// fixtures' forward VIP of each family has the slot of the family's number.
    fn fwd_count(&mut self, slot: u32, member: usize, kind: FwdKind) -> (u64, u64) {
        let idx = self
            .dp
            .target_names()
            .into_iter()
            .find(|x| x.1 == target_name(member, slot == 1))
            .expect("member")
            .0;
        let map = self.dp.ebpf_mut().map(f::MAP_FWD_STATS).expect("fwd stats");
        let a: PerCpuArray<&MapData, FwdCount> = PerCpuArray::try_from(map).expect("per-CPU");
        a.get(&f::stat_index(slot, u32::from(idx), kind), 0)
            .expect("counter")
            .iter()
            .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
    }

    /// Runs the program on `frame`: action, output, the one outcome counted.
    fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>, Stat) {
        let mut out = vec![0u8; 4096];
        let r = self
            .dp
            .program(m::PROG_NAME)
            .expect("program")
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::new()
            })
            .expect("test_run");
        out.truncate(r.data_size_out as usize);
        let now = self.stats();
        let delta: Vec<u64> = now.iter().zip(&self.last).map(|(a, b)| a - b).collect();
        self.last = now;
        assert_eq!(delta[Stat::Seen as usize], 1, "seen once");
        let outcomes: Vec<Stat> = Stat::ALL[1..]
            .iter()
            .filter(|s| delta[**s as usize] > 0)
            .copied()
            .collect();
        assert_eq!(outcomes.len(), 1, "one outcome: {outcomes:?}");
        (r.return_value, out, outcomes[0])
    }

    /// Checks that `frame` is forwarded as `kind` to the model's member; returns it.
    fn forwarded(&mut self, name: &str, frame: &[u8], kind: FwdKind) -> usize {
        let vip = |v6: bool, a: &[u8; 16]| {
            let hit = if v6 {
                a[..]
                    == VIP6
                        .parse::<std::net::Ipv6Addr>()
                        .expect("literal")
                        .octets()
            } else {
                a[..4] == VIP4
            };
            hit.then_some(lb_common::maps::Vip::ANY)
        };
        let outcome = request::parse(frame, true, vip).expect_err("the parser passes it");
        let model = f::classify(frame, outcome).unwrap_or_else(|| panic!("{name}: model"));
        assert_eq!(model.kind, kind, "{name}: kind");
        let (act, out, stat) = self.run(frame);
        assert_eq!((act, stat), (XDP_TX, Stat::Forwarded), "{name}");
        let mac: [u8; 6] = out[..6].try_into().expect("6");
        let member = (0..8).find(|i| mac_of(*i) == mac).expect("a member's MAC");
        let mut want = frame.to_vec();
        f::rewrite_l2(&mut want, &mac);
        assert_eq!(out, want, "{name}: only the MACs change");
        let slot = model.key.v6;
        let (p, b) = self.fwd_count(slot, member, kind);
        assert!(p >= 1 && b >= frame.len() as u64, "{name}: counted");
        member
    }

    /// The member the live table gives client `a` (not yet pinned).
    fn model_member(&self, a: IpAddr) -> usize {
        self.table(a.is_ipv6())[(client_hash(&words(a)) % MAGLEV_SIZE) as usize]
    }
}

fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(x) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&x.octets());
            f::addr_words(false, &b)
        }
        IpAddr::V6(x) => f::addr_words(true, &x.octets()),
    }
}

fn spec(src: IpAddr, dport: u16) -> RequestSpec {
    let base = if src.is_ipv6() {
        RequestSpec::v6()
    } else {
        RequestSpec::default()
    };
    RequestSpec {
        src,
        dport,
        sport: dport,
        redirect_supported: false,
        ..base
    }
}

/// IKE_AUTH from the client (exchange 35, SPIr set), behind the marker on 4500.
fn ike_auth(src: IpAddr, dport: u16) -> Vec<u8> {
    let s = spec(src, dport);
    let mut ike = s.ike();
    ike[8..16].copy_from_slice(&[7; 8]);
    ike[18] = 35;
    ike[20..24].copy_from_slice(&1u32.to_be_bytes());
    let mut p = if dport == 4500 {
        vec![0; 4]
    } else {
        Vec::new()
    };
    p.extend_from_slice(&ike);
    build_frame(&s, &p)
}

/// ESP (IP protocol 50): the UDP frame's IP payload relabelled.
fn esp(src: IpAddr) -> Vec<u8> {
    let s = spec(src, 4500);
    let mut fr = build_frame(&s, &[0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1, 9, 9, 9, 9]);
    if src.is_ipv6() {
        fr[14 + 6] = 50;
    } else {
        fr[14 + 9] = 50;
        refresh_ipv4_checksum(&mut fr);
    }
    fr
}

fn refresh_ipv4_checksum(fr: &mut [u8]) {
    fr[24..26].fill(0);
    let c = lb_common::checksum::finish(lb_common::checksum::sum_bytes(0, &fr[14..34]));
    fr[24..26].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn xdp_forward_every_kind() {
    crate::require_root!();
    let mut h = Fwd::new(&[1, 2, 3, 4]);
    let c4: IpAddr = "192.0.2.10".parse().expect("literal");
    let c6: IpAddr = "2001:db8:1::10".parse().expect("literal");
    for c in [c4, c6] {
        let want = h.model_member(c);
        let fam = if c.is_ipv6() { "v6" } else { "v4" };
        let init = spec(c, 500).frame();
        let tagged = RequestSpec {
            vlans: vec![(0x88a8, 100), (0x8100, 200)],
            ..spec(c, 500)
        }
        .frame();
        let natt = spec(c, 4500).frame();
        let espudp = build_frame(&spec(c, 4500), &[0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1, 5, 5]);
        let keepalive = build_frame(&spec(c, 4500), &[0xff]);
        let cases: Vec<(&str, Vec<u8>, FwdKind)> = vec![
            (
                "IKE_SA_INIT without REDIRECT_SUPPORTED",
                init,
                FwdKind::IkeInit,
            ),
            ("the same, QinQ", tagged, FwdKind::IkeInit),
            ("the same on 4500", natt, FwdKind::IkeInit),
            ("IKE_AUTH on 500", ike_auth(c, 500), FwdKind::Ike),
            ("IKE_AUTH on 4500", ike_auth(c, 4500), FwdKind::Ike),
            ("ESP in UDP", espudp, FwdKind::EspInUdp),
            ("NAT-T keepalive", keepalive, FwdKind::Keepalive),
            ("ESP", esp(c), FwdKind::Esp),
        ];
        for (name, frame, kind) in cases {
            let got = h.forwarded(&format!("{fam} {name}"), &frame, kind);
            assert_eq!(got, want, "{fam} {name}: the client's member");
        }
    }
    // An IPv4 fragment (MF set).
    let mut frag = ike_auth(c4, 4500);
    frag[20] |= 0x20;
    refresh_ipv4_checksum(&mut frag);
    h.forwarded("v4 fragment", &frag, FwdKind::Fragment);
    // Redirect-capable clients are still redirected; a pass-mode VIP still passes.
    let rs = RequestSpec {
        src: c4,
        ..RequestSpec::default()
    };
    let (act, _, stat) = h.run(&rs.frame());
    assert_eq!((act, stat), (XDP_TX, Stat::Redirected));
    let pass = RequestSpec {
        dst: IpAddr::from(VIP4_PASS),
        ..spec(c4, 500)
    };
    let (act, out, stat) = h.run(&pass.frame());
    assert_eq!((act, stat), (XDP_PASS, Stat::PassNoRedirectSupported));
    assert_eq!(out, pass.frame());
}

/// The choice over time: distribution, pins across rebuilds, a lost member.
#[test]
fn xdp_forward_pins_and_moves() {
    crate::require_root!();
    let mut h = Fwd::new(&[1, 1, 1, 1]);
    let client = |i: u32| IpAddr::from([10, 7, (i >> 8) as u8, i as u8]);
    // 400 clients, each on the model's member; its 4500 float stays there.
    let mut on = Vec::new();
    for i in 0..400 {
        let c = client(i);
        let want = h.model_member(c);
        let got = h.forwarded("first request", &spec(c, 500).frame(), FwdKind::IkeInit);
        assert_eq!(got, want, "client {c}");
        let float = h.forwarded("float to 4500", &ike_auth(c, 4500), FwdKind::Ike);
        assert_eq!(float, got, "client {c} after the port float");
        on.push(got);
    }
    // A rebuild with other weights: the table changes, no pinned client moves.
    h.set_weights(&[1, 5, 1, 3]);
    let mut changed = 0;
    for i in 0..400 {
        let c = client(i);
        changed += usize::from(h.model_member(c) != on[i as usize]);
        let got = h.forwarded("after a rebuild", &esp(c), FwdKind::Esp);
        assert_eq!(got, on[i as usize], "client {c} moved on a rebuild");
    }
    assert!(
        changed > 20,
        "the rebuild changed only {changed} clients' entries"
    );
    // gw2 is lost: its clients move to the live table's member, the others stay.
    h.set_weights(&[1, 5, u32::MAX, 3]);
    let mut moved = 0;
    for i in 0..400 {
        let c = client(i);
        let got = h.forwarded("after a loss", &ike_auth(c, 500), FwdKind::Ike);
        if on[i as usize] == 2 {
            assert_eq!(got, h.model_member(c), "client {c} of the lost member");
            assert_ne!(got, 2);
            moved += 1;
        } else {
            assert_eq!(
                got, on[i as usize],
                "client {c} of a surviving member moved"
            );
        }
    }
    assert!(moved > 50, "{moved} clients were on gw2");
    // A new member takes new clients only.
    h.set_weights(&[1, 5, u32::MAX, 3, 3]);
    let mut new_on_4 = 0;
    for i in 400..800 {
        new_on_4 += usize::from(
            h.forwarded(
                "new client",
                &spec(client(i), 500).frame(),
                FwdKind::IkeInit,
            ) == 4,
        );
    }
    for i in 0..400 {
        let got = h.forwarded("old client", &esp(client(i)), FwdKind::Esp);
        assert_ne!(got, 4, "an established client moved to the new member");
    }
    assert!(
        (50..=200).contains(&new_on_4),
        "{new_on_4} of 400 new clients on the new member"
    );
}

/// A member whose address is this host's (a cluster's VRRP master is also a member):
/// its clients' frames are passed up unchanged, counted as forwarded.
#[test]
fn xdp_forward_to_the_local_member_passes() {
    crate::require_root!();
    let mut h = Fwd::new(&[]);
    h.targets = vec![Target {
        owner: Owner::Static("gw0".into()),
        identity: Identity::Ip(IpAddr::from([127, 0, 0, 1])),
        weight: 1,
    }];
    h.dp.set_targets(&h.targets).expect("set targets");
    let c: IpAddr = "192.0.2.10".parse().expect("literal");
    for (name, frame, kind) in [
        ("request without RS", spec(c, 500).frame(), FwdKind::IkeInit),
        ("ESP", esp(c), FwdKind::Esp),
    ] {
        let (act, out, stat) = h.run(&frame);
        assert_eq!((act, stat), (XDP_PASS, Stat::Forwarded), "{name}");
        assert_eq!(out, frame, "{name}: unchanged");
        assert_eq!(h.fwd_count(0, 0, kind).0, 1, "{name}: counted");
    }
}

/// Forwarding switched off and on again by `set_vips` alone (a reload): off, the
/// request passes; on again, the tables are built from the targets already installed
/// and the VIP's counters start from zero.
#[test]
fn xdp_forward_switched_on_after_the_targets() {
    crate::require_root!();
    let mut h = Fwd::new(&[1, 1, 1]);
    let c: IpAddr = "192.0.2.10".parse().expect("literal");
    let first = h.forwarded("before", &spec(c, 500).frame(), FwdKind::IkeInit);
    let vip = |no_redirect| Vip {
        address: IpAddr::from(VIP4),
        redirect: RedirectMode::Init,
        no_redirect,
        vlans: VlanBinding::Any,
    };
    h.dp.set_vips(&[vip(NoRedirect::Pass)]).expect("set VIPs");
    let (act, _, stat) = h.run(&spec(c, 500).frame());
    assert_eq!((act, stat), (XDP_PASS, Stat::PassNoRedirectSupported));
    h.dp.set_vips(&[vip(NoRedirect::Forward)])
        .expect("set VIPs");
    let (act, _, stat) = h.run(&spec(c, 500).frame());
    assert_eq!((act, stat), (XDP_TX, Stat::Forwarded));
    assert_eq!(h.fwd_count(0, first, FwdKind::IkeInit).0, 1, "a fresh slot");
}
