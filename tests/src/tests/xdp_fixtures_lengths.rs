//! Length rows of the XDP fixture table, from loops over every seed request: every
//! truncation (cut raw, cut with IP/UDP lengths and checksums repaired, and cut with the
//! IKE Length repaired too), Ethernet padding, IP/UDP/IKE length fields, and every
//! payload's length set to 0..3, past the message, one off, and to the end.
//!
//! Truncations take their expected counter from the reference model, which must refuse
//! every one of them; the program must agree on action and counter.

use lb_common::maps::Stat;

use super::xdp_fixtures::{id4, id6};
use super::xdp_fixtures_frames::{self as fr, Fix};
use super::xdp_fixtures_harness::{Case, Expect, Harness};
use super::xdp_fixtures_negative::seeds;

/// test_run refuses XDP input shorter than an Ethernet header.
const ETH_HLEN: usize = 14;

fn truncations(h: &mut Harness, name: &str, f: &[u8]) -> Vec<Case> {
    let lay = fr::layout(f).expect("layout");
    let mut c = Vec::new();
    for cut in ETH_HLEN..f.len() {
        for (how, fix) in [
            ("raw", Fix::NONE),
            ("IP/UDP fixed", Fix::L3L4),
            ("IP/UDP/IKE fixed", Fix::ALL),
        ] {
            let mut t = f[..cut].to_vec();
            fr::fix(&mut t, &lay, fix);
            c.push(h.derived(format!("{name}: cut at {cut}, {how}"), t, false));
        }
    }
    c
}

fn length_fields(h: &mut Harness, name: &str, f: &[u8]) -> Vec<Case> {
    let ok = h.answer(f);
    let l = fr::layout(f).expect("layout");
    let ip = l.l2;
    let mut c = Vec::new();
    // Ethernet padding after the IP datagram is not part of it.
    for pad in [1usize, 2, 4, 18, 60] {
        let mut p = f.to_vec();
        p.extend(std::iter::repeat_n(0xee, pad));
        c.push(Case::new(format!("{name}: {pad} bytes of padding"), p, ok));
    }
    let ike_len = fr::be32(f, l.ike + 24).expect("IKE length");
    for v in [0, 1, 27, 28, ike_len - 1, ike_len + 1, 0xffff_ffff] {
        let fl = fr::edit(f, Fix::CSUM, |f, l| fr::set32(f, l.ike + 24, v));
        let e = Expect::Drop(Stat::DropBadLength);
        c.push(Case::new(format!("{name}: IKE length {v}"), fl, e));
    }
    let udp_len = fr::be16(f, l.udp + 4).expect("UDP length");
    for v in [0, 7, 8, udp_len - 1, udp_len + 1, 0xffff] {
        let fl = fr::edit(f, Fix::CSUM, |f, l| fr::set16(f, l.udp + 4, v));
        let e = Expect::Drop(Stat::DropBadLength);
        c.push(Case::new(format!("{name}: UDP length {v}"), fl, e));
    }
    let (at, len) = if l.v6 {
        (ip + 4, fr::be16(f, ip + 4).expect("len"))
    } else {
        (ip + 2, fr::be16(f, ip + 2).expect("len"))
    };
    for v in [0, 1, 20, 27, 28, len - 1, len + 1, 0xffff] {
        let fl = fr::edit(f, Fix::CSUM, |f, _| fr::set16(f, at, v));
        c.push(h.derived(format!("{name}: IP length field {v}"), fl, false));
    }
    for p in fr::payloads(f, &l) {
        let what = format!("{name}: payload at {} (type {})", p.at, p.ty);
        let end = l.ike + ike_len as usize;
        for v in [0, 1, 2, 3] {
            let fl = fr::edit(f, Fix::CSUM, |f, _| fr::set16(f, p.at + 2, v));
            c.push(Case::new(
                format!("{what} length {v}"),
                fl,
                Expect::Drop(Stat::DropBadPayload),
            ));
        }
        for v in [end - p.at + 1, 0xffff] {
            let fl = fr::edit(f, Fix::CSUM, |f, _| fr::set16(f, p.at + 2, v as u16));
            let e = Expect::Drop(Stat::DropBadPayload);
            c.push(Case::new(format!("{what} length {v} (overrun)"), fl, e));
        }
        if p.ty == 41 {
            for v in 4..8 {
                let fl = fr::edit(f, Fix::CSUM, |f, _| fr::set16(f, p.at + 2, v));
                let e = Expect::Drop(Stat::DropBadPayload);
                c.push(Case::new(format!("{what} notify length {v}"), fl, e));
            }
        }
        for (v, may) in [(p.len - 1, false), (p.len + 1, false), (end - p.at, true)] {
            let fl = fr::edit(f, Fix::CSUM, |f, _| fr::set16(f, p.at + 2, v as u16));
            c.push(h.derived(format!("{what} length {v}"), fl, may));
        }
        // Grow or shrink the payload itself, lengths and checksums repaired: the Ni
        // around its 16..256 limits, the others by a few bytes.
        let deltas: Vec<isize> = if p.ty == 40 {
            let n = p.len as isize - 4;
            vec![15 - n, 16 - n, 256 - n, 257 - n]
        } else {
            vec![-4, -1, 1, 4]
        };
        for d in deltas {
            let mut g = f.to_vec();
            fr::resize_payload(&mut g, &p, d, 0x5a);
            fr::fix(&mut g, &l, Fix::ALL);
            c.push(h.derived(format!("{what} resized by {d}"), g, true));
        }
    }
    c
}

#[test]
fn xdp_fixtures_lengths() {
    crate::require_root!();
    let mut h = Harness::new(&[id4(), id6()]);
    h.keep_answers = false;
    let mut n = 0;
    for (name, f) in seeds() {
        let mut cases = truncations(&mut h, &name, &f);
        cases.extend(length_fields(&mut h, &name, &f));
        n += cases.len();
        h.check_all(&cases);
    }
    eprintln!("length table: {n} cases");
    h.finish("length table");
}
