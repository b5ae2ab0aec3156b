//! Seeded mutation run over [`Responder::handle_datagram`] from a corpus of real
//! datagrams (`src/ike/tests/corpus/*.hex`: every UDP payload of a strongSwan 5.9.8 and a
//! libreswan 4.10 client, IPv4 and IPv6, redirected after authentication by ikelb in
//! the lab of `tests/src/tests/e2e_auth.rs`).
//!
//! Each client's IKE_SA_INIT request is first replayed as it is (it must be accepted:
//! the corpus is live input), and the responder's SPIr is patched into that client's
//! later messages so their mutations reach the SA lookup and the integrity check, not
//! just the unknown-SPI drop. Then every seed is mutated (byte edits, bit flips, cuts,
//! extensions, splices with another seed) and fed to auth-mode and init-mode VIPs. The
//! properties: nothing panics; nothing but an IKE_SA_INIT request is ever answered
//! (the captured keys are not ours, so no encrypted message may pass); an answer to an
//! IKE_SA_INIT request grows it by at most [`INIT_GROWTH`], and the init-mode answer is
//! shorter than the request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use lb_common::wire::ike as wire;
use rand_core::RngCore;

use super::gateway::{Gw, VIP, client, config};
use super::initiator::TestRng;
use crate::ike::types::config::{AuthRedirect, VipConfig, VipMode};

/// Most an unauthenticated request may make us send beyond its own length (as in
/// `tests/robust.rs`): our Nr (32) against the shortest Ni (16), and two NAT-D (2 × 28)
/// against one.
const INIT_GROWTH: usize = 16 + 28;
/// Mutations per seed and VIP mode.
const ROUNDS: usize = 400;

struct Seed {
    name: String,
    port: u16,
    payload: Vec<u8>,
}

fn corpus() -> Vec<Seed> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ike/tests/corpus");
    let mut out: Vec<Seed> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let hex: String = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .flat_map(|l| l.split_whitespace())
                .collect();
            let payload = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let port = if name.ends_with("_4500") { 4500 } else { 500 };
            Seed {
                name,
                port,
                payload,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The IKE message inside a datagram to `port`.
fn ike(port: u16, d: &[u8]) -> &[u8] {
    if port == wire::PORT_NATT {
        d.get(4..).unwrap_or(&[])
    } else {
        d
    }
}

fn is_init_request(port: u16, d: &[u8]) -> bool {
    let m = ike(port, d);
    m.len() >= 28 && m[18] == wire::EXCHANGE_IKE_SA_INIT && m[19] & 0x20 == 0
}

fn mutate(rng: &mut TestRng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    let r = |rng: &mut TestRng, n: usize| (rng.next_u32() as usize) % n.max(1);
    for _ in 0..=r(rng, 4) {
        match r(rng, 6) {
            0 if !m.is_empty() => {
                let i = r(rng, m.len());
                m[i] = rng.next_u32() as u8;
            }
            1 if !m.is_empty() => {
                let i = r(rng, m.len());
                m[i] ^= 1 << r(rng, 8);
            }
            2 => {
                let n = r(rng, m.len() + 1);
                m.truncate(n);
            }
            3 => {
                let n = r(rng, 64);
                m.extend((0..n).map(|_| rng.next_u32() as u8));
            }
            4 if !other.is_empty() => {
                // Splice: our head, the other seed's tail.
                let a = r(rng, m.len() + 1);
                let b = r(rng, other.len());
                m.truncate(a);
                m.extend_from_slice(&other[b..]);
            }
            // Length and payload-chain fields, where parsers go wrong.
            _ if m.len() >= 32 => {
                let i = [17, 18, 19, 24, 25, 26, 27, 28, 30, 31][r(rng, 10)];
                m[i] = rng.next_u32() as u8;
            }
            _ => {}
        }
    }
    m
}

fn run(mode: VipMode, seed: u64) -> usize {
    let method = match mode {
        VipMode::Auth(m) => m,
        VipMode::Init => AuthRedirect::Informational,
    };
    let mut cfg = config(method);
    cfg.vips = vec![VipConfig {
        addr: VIP.into(),
        mode,
    }];
    // Enough room that the limits do not hide the deeper paths.
    cfg.half_open_per_source = 1_000_000;
    cfg.half_open_max = 1_000_000;
    cfg.cookie_threshold = 1_000_000;
    let mut g = Gw::new(cfg);
    let seeds = corpus();
    assert!(seeds.len() >= 8, "corpus too small: {}", seeds.len());
    let from = |s: &Seed| client(if s.name.contains("_v6_") { 6 } else { 4 }, s.port);
    let to = |s: &Seed| SocketAddr::from((VIP, s.port));

    // Replay each client's IKE_SA_INIT; learn our SPIr for its SPIi.
    let mut spi_r: HashMap<[u8; 8], [u8; 8]> = HashMap::new();
    for s in seeds.iter().filter(|s| is_init_request(s.port, &s.payload)) {
        g.r.handle_datagram(g.now, to(s), from(s), &s.payload);
        let answers: Vec<_> = std::iter::from_fn(|| g.r.poll_transmit()).collect();
        assert_eq!(answers.len(), 1, "{}: one answer", s.name);
        let a = ike(s.port, &answers[0].payload);
        if matches!(mode, VipMode::Auth(_)) {
            assert!(
                a.len() > 100 && a[16] == 33,
                "{}: accepted with SA first",
                s.name
            );
            spi_r.insert(a[..8].try_into().unwrap(), a[8..16].try_into().unwrap());
        } else {
            assert!(a.len() < ike(s.port, &s.payload).len(), "{}", s.name);
        }
    }
    let patched: Vec<Seed> = seeds
        .iter()
        .map(|s| {
            let mut p = s.payload.clone();
            let off = if s.port == wire::PORT_NATT { 4 } else { 0 };
            if let Some(spi_i) = p.get(off..off + 8).map(|x| <[u8; 8]>::try_from(x).unwrap())
                && let Some(r) = spi_r.get(&spi_i)
                && !is_init_request(s.port, &p)
            {
                p[off + 8..off + 16].copy_from_slice(r);
            }
            Seed {
                name: s.name.clone(),
                port: s.port,
                payload: p,
            }
        })
        .collect();

    let mut rng = TestRng::new(seed);
    let mut fed = 0;
    for (i, s) in patched.iter().enumerate() {
        let other = &patched[(i + 7) % patched.len()].payload;
        for _ in 0..ROUNDS {
            let m = mutate(&mut rng, &s.payload, other);
            g.r.handle_datagram(g.now, to(s), from(s), &m);
            fed += 1;
            let init = is_init_request(s.port, &m);
            while let Some(t) = g.r.poll_transmit() {
                assert!(
                    init,
                    "{}: answered a mutated non-IKE_SA_INIT message:\n{m:02x?}",
                    s.name
                );
                let limit = match mode {
                    VipMode::Init => m.len() - 1,
                    VipMode::Auth(_) => m.len() + INIT_GROWTH,
                };
                assert!(
                    t.payload.len() <= limit,
                    "{}: {} bytes answer {} bytes",
                    s.name,
                    t.payload.len(),
                    m.len()
                );
            }
            while g.r.poll_event().is_some() {}
        }
        // Now and then let the timers run (expiry, retransmissions of nothing).
        g.now += Duration::from_secs(3);
        g.r.handle_timeout(g.now);
        while g.r.poll_transmit().is_some() {}
    }
    g.now += Duration::from_secs(120);
    g.r.handle_timeout(g.now);
    assert_eq!(g.r.sa_count(), 0, "everything expires");
    fed
}

#[test]
fn corpus_mutations_informational() {
    assert!(run(VipMode::Auth(AuthRedirect::Informational), 0xc0) > 1000);
}

#[test]
fn corpus_mutations_ike_auth() {
    assert!(run(VipMode::Auth(AuthRedirect::IkeAuth), 0xc1) > 1000);
}

#[test]
fn corpus_mutations_init_mode() {
    assert!(run(VipMode::Init, 0xc2) > 1000);
}
