//! Seeded mutation run (docs/testing.md §1.3): mutants of every seed request go to the
//! reference model and to the program, which must agree on action and counter; the
//! program must not answer what the model refuses, never answers with more bytes than it
//! got, and its answers are byte-equal to `emit_reply_frame` (all checked by
//! [`Harness::check`]).
//!
//! A mutated byte breaks the UDP checksum, so most raw mutants stop at
//! `drop_bad_checksum`; most mutants are therefore repaired afterwards (checksums, or
//! lengths and checksums, or the IKE Length too) so the IKE parser is reached.
//! Some seeds are reshaped first (VLAN tags, IPv4 options, sources that are no unicast
//! host, source ports), and every mutant also goes through the userspace IKE parser.
//! Reproducible: `IKELB_MUTATION_SEED` and `IKELB_MUTANTS` change the run, and every
//! failure names the seed frame, mutant number and operations. `cargo xtask fuzz
//! --count N` runs it without the time budget (`IKELB_FUZZ=1`).

use std::time::{Duration, Instant};

use lb_common::maps::Stat;

use super::xdp_fixtures::{GW_FQDN, fqdn, fqdn_of_len, id4, id6};
use super::xdp_fixtures_frames::{self as fr, Fix, Layout};
use super::xdp_fixtures_harness::Harness;
use super::xdp_fixtures_negative::seeds;

const DEFAULT_SEED: u64 = 0x1ce1_b5ee_d000_0001;
const DEFAULT_MUTANTS: u64 = 20_000;
/// Stop early (and say so) rather than run for minutes on a slow machine; a fuzz run
/// (`cargo xtask fuzz`, `IKELB_FUZZ=1`) runs its whole count.
const TIME_BUDGET: Duration = Duration::from_secs(40);

/// xorshift64*: tiny, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

/// A number from the environment (decimal or 0x-hex), else `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(default)
}

/// Applies one random operation to `f`; returns its description.
fn mutate_once(r: &mut Rng, f: &mut Vec<u8>, l: &Layout) -> String {
    let len = f.len();
    let ike_at = |r: &mut Rng| l.ike + r.below(len.saturating_sub(l.ike));
    let payloads = fr::payloads(f, l);
    match r.below(15) {
        0 => {
            let at = r.below(len);
            let v = r.byte();
            f[at] = v;
            format!("byte {at}={v:#04x}")
        }
        1 => {
            let at = r.below(len);
            let bit = r.below(8);
            f[at] ^= 1 << bit;
            format!("flip {at}.{bit}")
        }
        2 => {
            let at = ike_at(r);
            let v = r.pick(&[
                0, 0xff, 1, 0x20, 0x21, 0x22, 0x28, 0x29, 0x08, 0x80, 0x40, 0x16,
            ]);
            if let Some(b) = f.get_mut(at) {
                *b = v;
            }
            format!("IKE byte {at}={v:#04x}")
        }
        3 if !payloads.is_empty() => {
            let p = payloads[r.below(payloads.len())];
            let to_end = f.len().saturating_sub(p.at);
            let any = r.below(0x10000);
            let v = r.pick(&[
                0,
                1,
                3,
                4,
                5,
                7,
                8,
                p.len - 1,
                p.len + 1,
                to_end,
                to_end + 1,
                0xffff,
                any,
            ]);
            fr::set16(f, p.at + 2, v as u16);
            format!("payload@{} length {v}", p.at)
        }
        4 if !payloads.is_empty() => {
            let p = payloads[r.below(payloads.len())];
            let any = r.byte();
            let v = r.pick(&[0u8, 33, 34, 40, 41, 43, 46, 49, 53, 200, any]);
            f[p.np_at] = v;
            let crit = r.below(4) == 0;
            if crit {
                f[p.at + 1] ^= 0x80;
            }
            format!("payload@{} type {v} crit^{crit}", p.at)
        }
        5 if !payloads.is_empty() => {
            let p = payloads[r.below(payloads.len())];
            let any = r.below(0x10000) as u16;
            let v = r.pick(&[16406u16, 16407, 16408, 16405, 16388, any]);
            fr::set16(f, p.at + 6, v);
            format!("payload@{} notify type {v}", p.at)
        }
        6 => {
            let cut = 14 + r.below(len.saturating_sub(14));
            f.truncate(cut);
            format!("cut {cut}")
        }
        7 => {
            let n = 1 + r.below(64);
            f.extend((0..n).map(|_| r.byte()));
            format!("append {n}")
        }
        8 => {
            let at = 12 + r.below(len - 11);
            let n = 1 + r.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| r.byte()).collect();
            f.splice(at..at, bytes);
            format!("insert {n}@{at}")
        }
        9 => {
            let at = 12 + r.below(len - 12);
            let n = (1 + r.below(8)).min(len - at);
            f.drain(at..at + n);
            format!("delete {n}@{at}")
        }
        10 => {
            let (off, vals): (usize, &[u8]) = r.pick(&[
                (16, &[0, 33, 40, 41, 46][..]),
                (17, &[0x10, 0x20, 0x21, 0x2f, 0x30]),
                (18, &[33, 34, 35, 37, 0]),
                (19, &[0, 0x08, 0x18, 0x20, 0x28, 0xff]),
                (20, &[0, 1]),
                (23, &[0, 1]),
                (8, &[0, 1]),
                (15, &[0, 1]),
                (0, &[0, 1]),
            ]);
            let v = r.pick(vals);
            if let Some(b) = f.get_mut(l.ike + off) {
                *b = v;
            }
            format!("IKE header +{off}={v:#04x}")
        }
        11 => {
            let ip = l.l2;
            let (a, b, c) = (r.byte(), r.byte(), r.byte());
            let (at, v) = r.pick(&[
                (ip - 2, 0x81),
                (ip - 1, 0xdd),
                (ip, 0x46),
                (ip, 0x60),
                (ip + 6, if l.v6 { 0 } else { 0x20 }),
                (ip + 6, 6),
                (ip + 9, 6),
                (ip + 3, a),
                (ip + 5, b),
                (ip + if l.v6 { 39 } else { 19 }, c),
            ]);
            if let Some(b) = f.get_mut(at) {
                *b = v;
            }
            format!("L2/IP byte {at}={v:#04x}")
        }
        12 => {
            let (at, v) = r.pick(&[
                (l.udp + 2, 500u16),
                (l.udp + 2, 4500),
                (l.udp + 2, 501),
                (l.udp, 0),
                (l.udp + 4, 8),
                (l.udp + 4, 0xffff),
                (l.udp + 6, 0),
            ]);
            fr::set16(f, at, v);
            format!("UDP +{} = {v}", at - l.udp)
        }
        13 if !payloads.is_empty() => {
            let p = payloads[r.below(payloads.len())];
            let d = r.pick(&[-17isize, -16, -1, 1, 4, 200, 225, 226]);
            let fill = r.byte();
            fr::resize_payload(f, &p, d, fill);
            format!("payload@{} resized {d}", p.at)
        }
        _ => {
            // Ni to a random size around and between its limits.
            let Some(p) = payloads.iter().find(|p| p.ty == 40).copied() else {
                return "no Ni".into();
            };
            let any = r.below(300);
            let n = r.pick(&[0, 1, 15, 16, 17, 255, 256, 257, 300, any]);
            fr::resize_payload(f, &p, n as isize - (p.len as isize - 4), 0xa5);
            format!("Ni size {n}")
        }
    }
}

/// A seed changed where its shape moves offsets or its addressing changes: a VLAN tag
/// added or removed, IPv4 options added, a source that is no unicast host, another
/// source port. Lengths and checksums are repaired for the new shape, so the deep
/// checks are reached; `None` when the change does not apply to this seed.
fn reshape(r: &mut Rng, seed: &[u8], l: &Layout) -> Option<(Vec<u8>, Layout, String)> {
    let mut f = seed.to_vec();
    let ip = l.l2;
    let what = match r.below(5) {
        0 => {
            let tpid = r.pick(&[0x8100u16, 0x88a8, 0x9100]);
            let tci = r.below(4096) as u16;
            f = fr::with_tags(&f, &[(tpid, tci)]);
            format!("tag {tpid:#06x}/{tci}")
        }
        1 if l.l2 > 14 => {
            f.drain(12..16);
            "untag".into()
        }
        2 if !l.v6 && l.iph < 60 => {
            let n = 4 * (1 + r.below((60 - l.iph) / 4));
            let opt = r.pick(&[1u8, 0, 7, 0x44]);
            f.splice(ip + l.iph..ip + l.iph, std::iter::repeat_n(opt, n));
            f[ip] = 0x40 | ((l.iph + n) / 4) as u8;
            format!("IPv4 options {n}x{opt:#04x}")
        }
        3 => {
            let src: Vec<u8> = if l.v6 {
                let dst = f[ip + 24..ip + 40].to_vec();
                let mut a = [0u8; 16];
                match r.below(6) {
                    0 => {}
                    1 => a[15] = 1,
                    2 => a[..2].copy_from_slice(&[0xff, 0x02]),
                    3 => a[..2].copy_from_slice(&[0xfe, 0x80]),
                    4 => a.copy_from_slice(&dst),
                    _ => a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]),
                }
                a.to_vec()
            } else {
                let dst = f[ip + 16..ip + 20].to_vec();
                r.pick(&[
                    &[0u8, 0, 0, 0][..],
                    &[255, 255, 255, 255],
                    &[224, 0, 0, 1],
                    &[127, 0, 0, 1],
                    &[169, 254, 1, 1],
                    &[0, 1, 2, 3],
                    &dst,
                    &[10, 1, 2, 3],
                ])
                .to_vec()
            };
            let at = ip + if l.v6 { 8 } else { 12 };
            f[at..at + src.len()].copy_from_slice(&src);
            format!("source {src:?}")
        }
        _ => {
            let port = r.pick(&[0u16, 500, 4500, 65535, 1]);
            fr::set16(&mut f, l.udp, port);
            format!("source port {port}")
        }
    };
    let nl = fr::layout(&f)?;
    fr::fix(&mut f, &nl, Fix::L3L4);
    Some((f, nl, what))
}

/// One mutant of `seed`: sometimes reshaped first, then 1..=3 operations, then a repair.
fn mutant(r: &mut Rng, seed: &[u8], l: &Layout) -> (Vec<u8>, String) {
    let mut ops = Vec::new();
    let reshaped = if r.below(4) == 0 {
        reshape(r, seed, l)
    } else {
        None
    };
    let (mut f, l) = match reshaped {
        Some((f, nl, what)) => {
            ops.push(what);
            (f, nl)
        }
        None => (seed.to_vec(), *l),
    };
    let l = &l;
    for _ in 0..=r.below(3) {
        ops.push(mutate_once(r, &mut f, l));
    }
    let fix = r.pick(&[
        Fix::NONE,
        Fix::CSUM,
        Fix::CSUM,
        Fix::L3L4,
        Fix::ALL,
        Fix::ALL,
    ]);
    fr::fix(&mut f, l, fix);
    ops.push(format!("{fix:?}"));
    (f, ops.join(", "))
}

#[test]
fn xdp_fixtures_mutation() {
    crate::require_root!();
    let seed = env_u64("IKELB_MUTATION_SEED", DEFAULT_SEED);
    let total = env_u64("IKELB_MUTANTS", DEFAULT_MUTANTS) as usize;
    let fuzz = env_u64("IKELB_FUZZ", 0) != 0;
    let mut r = Rng::new(seed);
    let seeds: Vec<(String, Vec<u8>, Layout)> = seeds()
        .into_iter()
        .map(|(n, f)| {
            let l = fr::layout(&f).expect("layout");
            (n, f, l)
        })
        .collect();
    let mut h = Harness::new(&[id4(), id6()]);
    h.keep_answers = false;
    let long = fqdn_of_len(200);
    let phases = [vec![id4(), id6()], vec![fqdn(GW_FQDN)], vec![fqdn(&long)]];
    let start = Instant::now();
    let mut done = 0;
    'run: for (pi, targets) in phases.iter().enumerate() {
        h.set_targets(targets);
        let end = total * (pi + 1) / phases.len();
        while done < end {
            if !fuzz && start.elapsed() > TIME_BUDGET {
                eprintln!("mutation run: time budget spent after {done} of {total} mutants");
                break 'run;
            }
            let (name, f, l) = &seeds[r.below(seeds.len())];
            let (m, ops) = mutant(&mut r, f, l);
            if m.len() < 14 {
                continue;
            }
            // The userspace parser (auth mode, `--xdp-mode off`) takes the same bytes:
            // it may refuse them, never panic.
            if let Some(ike) = fr::layout(&m).and_then(|ml| m.get(ml.ike..)) {
                let _ = lb_userspace::ike::types::message::Message::parse(ike);
            }
            let case = h.derived(
                format!("seed {seed:#x} mutant {done} of {name}: {ops}"),
                m,
                true,
            );
            h.check(&case);
            done += 1;
        }
    }
    // `cargo xtask fuzz` reads this line.
    println!(
        "mutation run, seed {seed:#x}: {done} mutants in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    if fuzz {
        for (i, n) in h.outcomes.iter().enumerate().filter(|(_, n)| **n > 0) {
            println!("  {:<28} {n}", Stat::ALL[i].name());
        }
    }
    // The repair must let mutants reach the deep checks, not only the checksum.
    for s in [
        Stat::Redirected,
        Stat::DropBadChecksum,
        Stat::DropBadLength,
        Stat::DropBadPayload,
        Stat::DropBadNonce,
        Stat::DropBadHeader,
        Stat::PassNoRedirectSupported,
    ] {
        assert!(
            done < 1000 || h.outcomes[s as usize] > 0,
            "no mutant reached {}",
            s.name()
        );
    }
    h.finish("mutation run");
}
