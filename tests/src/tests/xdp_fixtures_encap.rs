//! BPF_PROG_TEST_RUN fixtures of IP-in-IP to routed members (docs/architecture.md
//! §6.4): with `forward-encap`, a forwarded frame leaves with an outer IPv4 header from
//! the balancer's address on the route to the member, to the member, addressed to the
//! next hop's MAC (the gateway's for a routed member, the member's own when on-link),
//! byte-equal to `lb_common::encap::encap`; the member's `ikelb_decap` turns it back
//! into the client's packet (`lb_common::encap::decap`) and passes everything else.
//!
//! Root only; the routes live in a namespace of their own.

use std::net::IpAddr;
use std::os::fd::AsRawFd;

use aya::programs::{TestRun, TestRunOptions};
use lb_common::encap;
use lb_common::maps::{self as m, Stat};
use lb_userspace::config::{NoRedirect, RedirectMode, Vip, VlanBinding};
use lb_userspace::dataplane::Dataplane;
use lb_userspace::frames::{RequestSpec, build_frame};
use lb_userspace::target::{Identity, Owner, Target};

use crate::netns::{Netns, Veth};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const GW_MAC: [u8; 6] = [2, 0xee, 0, 0, 0, 0xfe];
const ONLINK_MAC: [u8; 6] = [2, 0xee, 0, 0, 0, 0x0b];

/// Runs `f` with this thread in `ns` (route lookups and binds are per namespace).
fn inside<R>(ns: &Netns, f: impl FnOnce() -> R) -> R {
    let open = |p: &std::path::Path| std::fs::File::open(p).expect("namespace file");
    let back = open(std::path::Path::new("/proc/thread-self/ns/net"));
    let into = open(&ns.path());
    // SAFETY: setns(2) on namespace descriptors, for this thread only.
    assert_eq!(
        unsafe { libc::setns(into.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
    let r = f();
    // SAFETY: as above, back to where the thread was.
    assert_eq!(
        unsafe { libc::setns(back.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
    r
}

fn run(dp: &mut Dataplane, prog: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; 4096];
    let r = dp
        .program(prog)
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

#[test]
fn xdp_forward_encapsulates_and_the_member_unwraps() {
    crate::require_root!();
    // lb: 10.9.0.1/24 on e0; members 10.9.0.11 (on-link) and 10.10.0.5 (via 10.9.0.254).
    let lb = Netns::new("enc").expect("netns");
    let peer = Netns::new("encp").expect("netns");
    let _veth = Veth::new(&lb, "e0", None, &peer, "e1", None).expect("veth");
    lb.addr_add("e0", "10.9.0.1/24").expect("address");
    lb.ip(&["route", "add", "10.10.0.0/24", "via", "10.9.0.254"])
        .expect("route");
    let mut dp = Dataplane::load(None).unwrap_or_else(|e| panic!("load the XDP object: {e}"));
    dp.set_member_mac("10.9.0.254".parse().expect("literal"), GW_MAC);
    dp.set_member_mac("10.9.0.11".parse().expect("literal"), ONLINK_MAC);
    dp.set_forward_encap(true);
    let vip: IpAddr = "198.51.100.1".parse().expect("literal");
    dp.set_vips(&[Vip {
        address: vip,
        redirect: RedirectMode::Init,
        no_redirect: NoRedirect::Forward,
        vlans: VlanBinding::Any,
    }])
    .expect("VIPs");
    dp.set_active(true).expect("active");
    for (member, hop_mac) in [("10.10.0.5", GW_MAC), ("10.9.0.11", ONLINK_MAC)] {
        let t = Target {
            owner: Owner::Static("gw".into()),
            identity: Identity::Ip(member.parse().expect("literal")),
            weight: 1,
        };
        inside(&lb, || dp.set_targets(&[t])).expect("targets");
        let dst: [u8; 4] = member
            .parse::<std::net::Ipv4Addr>()
            .expect("literal")
            .octets();
        let base = RequestSpec {
            src: "192.0.2.77".parse().expect("literal"),
            redirect_supported: false,
            ..RequestSpec::default()
        };
        let tagged = RequestSpec {
            vlans: vec![(0x88a8, 100), (0x8100, 200)],
            ..base.clone()
        };
        let esp = build_frame(
            &RequestSpec {
                sport: 4500,
                dport: 4500,
                ..base.clone()
            },
            &[0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1, 7, 7],
        );
        for (name, frame) in [
            ("request", base.frame()),
            ("QinQ request", tagged.frame()),
            ("ESP in UDP", esp),
        ] {
            let (act, out) = run(&mut dp, m::PROG_NAME, &frame);
            assert_eq!(act, XDP_TX, "{member} {name}");
            let want = encap::encap(&frame, hop_mac, [10, 9, 0, 1], dst).expect("model");
            assert_eq!(out, want, "{member} {name}: the encapsulated frame");
            // The member side: only its own address is unwrapped.
            let mut member_dp = Dataplane::load(None).expect("load");
            let back = encap::decap(&out, |a| a == dst).expect("model decap");
            inside(&peer, || {
                peer.addr_add("e1", &format!("{member}/32"))
                    .expect("member address");
                let got = member_dp.attach_decap("e1");
                peer.ip(&["addr", "del", &format!("{member}/32"), "dev", "e1"])
                    .expect("address removal");
                got
            })
            .expect("attach decap");
            let (act, got) = run(&mut member_dp, encap::PROG_DECAP, &out);
            assert_eq!((act, &got), (XDP_PASS, &back), "{member} {name}: unwrapped");
            assert_eq!(
                &got[12..],
                &frame[12..],
                "{member} {name}: the client's packet"
            );
            let (act, same) = run(&mut member_dp, encap::PROG_DECAP, &frame);
            assert_eq!((act, &same), (XDP_PASS, &frame), "{name}: not IP-in-IP");
        }
    }
    let stats = dp.counters().expect("counters");
    assert_eq!(stats.get(Stat::Forwarded), 6, "{stats:?}");
}
