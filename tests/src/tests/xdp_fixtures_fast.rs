//! The fast path's own limits under BPF_PROG_TEST_RUN: each VIP answers only behind its
//! VLAN tag stack, the flow hash is keyed (the program's choice is the model's under
//! the key, and the key moves it), and the per-source rate limit caps a flooding
//! source while another source's requests are all answered. Sources that are no
//! unicast host and the form of N(REDIRECT_SUPPORTED) are rows of the negative table.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use aya::programs::{TestRun, TestRunOptions};
use lb_common::maps::{self as m, Stat};
use lb_common::wire::request;
use lb_userspace::config::{NoRedirect, RateLimit, RedirectMode, Vip, VlanBinding};
use lb_userspace::dataplane::Dataplane;
use lb_userspace::frames::RequestSpec;
use lb_userspace::target::{Identity, Owner, Target, choice, tables};

use super::xdp_fixtures::{id4, id6};
use super::xdp_fixtures_harness::{Case, Expect, HASH_KEY, Harness, XDP_DROP, XDP_TX};

/// Tag stacks (VLAN IDs, outer first) the frames come with and the VIPs are bound to.
const STACKS: [&[u16]; 5] = [&[], &[100], &[200], &[100, 200], &[200, 100]];

/// (TPID, TCI) tags for a stack; the priority bits set, which the binding ignores.
fn tags(stack: &[u16], tpid_outer: u16) -> Vec<(u16, u16)> {
    stack
        .iter()
        .enumerate()
        .map(|(i, &vid)| {
            let tpid = if i + 1 < stack.len() {
                tpid_outer
            } else {
                0x8100
            };
            (tpid, (5 << 13) | vid)
        })
        .collect()
}

#[test]
fn xdp_fixtures_vlan_binding() {
    crate::require_root!();
    let mut h = Harness::new(&[id4(), id6()]);
    h.keep_answers = false;
    let bindings = STACKS
        .iter()
        .map(|s| VlanBinding::Stack(s.to_vec()))
        .chain([VlanBinding::Any]);
    for binding in bindings {
        let vips: Vec<Vip> = [RequestSpec::default().dst, RequestSpec::v6().dst]
            .into_iter()
            .map(|address| Vip {
                address,
                redirect: RedirectMode::Init,
                vlans: binding.clone(),
                no_redirect: NoRedirect::Pass,
            })
            .collect();
        h.set_vips_bound(&vips);
        for stack in STACKS {
            for tpid in [0x88a8, 0x9100, 0x8100] {
                for base in [RequestSpec::default(), RequestSpec::v6()] {
                    let f = RequestSpec {
                        vlans: tags(stack, tpid),
                        ..base
                    }
                    .frame();
                    let e = match &binding {
                        VlanBinding::Stack(s) if s != stack => Expect::Pass(Stat::PassOtherVlan),
                        _ => h.answer(&f),
                    };
                    let name = format!("VIP on {binding:?}, frame on {stack:?} ({tpid:#x})");
                    h.check(&Case::new(name, f, e));
                }
            }
        }
    }
    h.finish("VLAN binding table");
}

/// One request to the program: its action and output.
fn run(dp: &mut Dataplane, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; 4096];
    let r = dp
        .program(m::PROG_NAME)
        .expect("program")
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::new()
        })
        .expect("test_run");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

fn vector_vips(dp: &mut Dataplane) {
    let vips: Vec<Vip> = [RequestSpec::default().dst, RequestSpec::v6().dst]
        .into_iter()
        .map(|address| Vip {
            address,
            redirect: RedirectMode::Init,
            vlans: VlanBinding::default(),
            no_redirect: NoRedirect::Pass,
        })
        .collect();
    dp.set_vips(&vips).expect("VIPs");
}

#[test]
fn xdp_fixtures_keyed_flow_hash() {
    crate::require_root!();
    let mut dp = Dataplane::load(None).expect("load");
    vector_vips(&mut dp);
    let ids: Vec<Identity> = (11..15u8)
        .map(|i| Identity::Ip(IpAddr::from([198, 51, 100, i])))
        .collect();
    let entries: Vec<Target> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Target {
            owner: Owner::Static(format!("t{i}")),
            identity: id.clone(),
            weight: 1,
        })
        .collect();
    dp.set_targets(&entries).expect("targets");
    dp.set_active(true).expect("active");
    // The table the program got: members by map index, in configuration order.
    let names = dp.target_names();
    let members: Vec<(u16, u32)> = names.iter().map(|t| (t.0, 1)).collect();
    let table = tables::build(&members);
    let by_index = |i: u16| {
        let t = names.iter().find(|t| t.0 == i).expect("index");
        t.2.to_target()
    };
    let other = [HASH_KEY[1], HASH_KEY[0]];
    let mut chosen = Vec::new();
    for key in [HASH_KEY, other] {
        dp.set_hash_key(key).expect("key");
        let mut picks = Vec::new();
        for i in 0..64u8 {
            let spec = RequestSpec {
                spi_i: [i, 1, 2, 3, 4, 5, 6, i],
                ..RequestSpec::default()
            };
            let f = spec.frame();
            let client = SocketAddr::new(spec.src, spec.sport);
            let idx = choice::pick(&table, &key, client, &spec.spi_i).expect("slot");
            let want_target = by_index(idx);
            let req = request::parse(&f, true, |_, _| Some(m::Vip::ANY)).expect("model");
            let mut want = vec![0u8; 4096];
            let n = request::emit_reply_frame(&f, &req, &want_target, &mut want).expect("answer");
            let (action, out) = run(&mut dp, &f);
            assert_eq!(action, XDP_TX, "SPIi {i}, key {key:x?}");
            assert_eq!(
                out,
                want[..n],
                "SPIi {i}, key {key:x?}: not the model's target"
            );
            picks.push(idx);
        }
        chosen.push(picks);
    }
    let moved = chosen[0]
        .iter()
        .zip(&chosen[1])
        .filter(|(a, b)| a != b)
        .count();
    // With 4 targets about 3 in 4 choices move; none would without the key.
    assert!(moved >= 24, "{moved} of 64 choices moved with the key");
}

#[test]
fn xdp_fixtures_rate_per_source() {
    crate::require_root!();
    let mut dp = Dataplane::load(None).expect("load");
    vector_vips(&mut dp);
    let entries = [id4(), id6()].map(|identity| Target {
        owner: Owner::Static(identity.to_string()),
        identity,
        weight: 1,
    });
    dp.set_targets(&entries).expect("targets");
    dp.set_active(true).expect("active");
    let limit = RateLimit {
        per_second: 10,
        burst: 8,
    };
    dp.set_rate_limit(limit).expect("rate");
    let ip = |s: &str| s.parse::<IpAddr>().expect("literal");
    // (family, flooding sources sharing one allowance, the other source).
    let cases = [
        (
            "v4",
            RequestSpec::default(),
            vec![ip("192.0.2.66")],
            ip("192.0.2.77"),
        ),
        (
            "v6",
            RequestSpec::v6(),
            // One /64: one allowance.
            vec![ip("2001:db8:1::66"), ip("2001:db8:1::99")],
            ip("2001:db8:2::77"),
        ),
    ];
    for (fam, base, flood, other) in cases {
        let frame = |src| {
            RequestSpec {
                src,
                ..base.clone()
            }
            .frame()
        };
        let flood: Vec<Vec<u8>> = flood.into_iter().map(frame).collect();
        let other = frame(other);
        let before = dp.counters().expect("counters");
        let start = Instant::now();
        let (mut flood_ok, mut flood_dropped, mut other_ok) = (0u64, 0u64, 0u64);
        for i in 0..2000 {
            let (a, _) = run(&mut dp, &flood[i % flood.len()]);
            match a {
                XDP_TX => flood_ok += 1,
                XDP_DROP => flood_dropped += 1,
                a => panic!("{fam}: flood request got action {a}"),
            }
            // As many as the burst, spread over the flood: every one is answered.
            if i % 250 == 0 && run(&mut dp, &other).0 == XDP_TX {
                other_ok += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let cap = u64::from(limit.burst) + (secs * f64::from(limit.per_second)) as u64 + 1;
        assert!(
            (u64::from(limit.burst)..=cap).contains(&flood_ok),
            "{fam}: {flood_ok} of 2000 flood requests answered in {secs:.3} s, cap {cap}"
        );
        assert_eq!(
            other_ok, 8,
            "{fam}: the other source was not answered every time"
        );
        let after = dp.counters().expect("counters");
        let d = |s| after.get(s) - before.get(s);
        assert_eq!(d(Stat::DropRateLimited), flood_dropped, "{fam}");
        assert_eq!(d(Stat::Redirected), flood_ok + other_ok, "{fam}");
    }
    // Off: the same source is answered every time.
    dp.set_rate_limit(RateLimit {
        per_second: 0,
        burst: 1,
    })
    .expect("rate off");
    let f = RequestSpec::default().frame();
    assert!((0..100).all(|_| run(&mut dp, &f).0 == XDP_TX));
}
