//! The responder against hostile and real input: random and mutated datagrams (no
//! panic, no amplification, no answer to a forged encrypted message), the init-mode
//! slow path, noise, and IKE_AUTH replayed from two real strongSwan 5.9.8 exchanges.

use std::net::{IpAddr, SocketAddr};

use lb_common::maps::Target;
use lb_common::wire::ike as wire;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::gateway::{Gw, TARGET, client, config, gw, init, x25519_gcm};
use super::initiator::{Initiator, ike_proposal, status};
use crate::ike::crypto::prf::IkeSaKeys;
use crate::ike::crypto::sk::SkCipher;
use crate::ike::responder::sa::{IkeSa, SaState};
use crate::ike::types::config::{
    AuthMethod, AuthRedirect, PeerConfig, ResponderConfig, VipConfig, VipMode,
};
use crate::ike::types::event::{DeleteReason, Event, RedirectHow};
use crate::ike::types::identity::Identity;
use crate::ike::types::message::{Message, Payload};
use crate::ike::types::payload::Identification;
use crate::ike::types::proposal::{DhGroup, IkeSuite};

/// Most an unauthenticated request may make us send beyond its own length: our Nr (32)
/// against the shortest Ni (16), and both NAT-D notifies (2 × 28) against one.
const INIT_GROWTH: usize = 16 + 28;

fn x25519() -> Initiator {
    let p = ike_proposal((20, 256), None, 5, &[31]);
    Initiator::new(77, client(10, 500), gw(500), p, DhGroup::Curve25519)
}

/// Feeds one datagram; returns the lengths of all answers.
fn feed(g: &mut Gw, from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<usize> {
    g.r.handle_datagram(g.now, to, from, payload);
    std::iter::from_fn(|| g.r.poll_transmit())
        .map(|t| t.payload.len())
        .collect()
}

fn mutate(base: &[u8], edits: &[(usize, u8)], cut: Option<usize>, extra: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    for &(i, b) in edits {
        if !m.is_empty() {
            let i = i % m.len();
            m[i] = b;
        }
    }
    if let Some(c) = cut {
        m.truncate(c % (m.len() + 1));
    }
    m.extend_from_slice(extra);
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_datagrams_never_panic_or_amplify(
        data in proptest::collection::vec(any::<u8>(), 0..700),
        natt in any::<bool>(),
    ) {
        let mut g = Gw::new(config(AuthRedirect::Informational));
        let to = gw(if natt { 4500 } else { 500 });
        for len in feed(&mut g, client(10, 500), to, &data) {
            prop_assert!(len <= data.len() + INIT_GROWTH);
        }
        g.step();
    }

    #[test]
    fn mutated_sa_init_never_panics_or_amplifies(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
        extra in proptest::collection::vec(any::<u8>(), 0..8),
        cookie in any::<bool>(),
    ) {
        let mut cfg = config(AuthRedirect::IkeAuth);
        if cookie {
            cfg.cookie_threshold = 0;
        }
        let mut g = Gw::new(cfg);
        let mut c = x25519();
        let m = mutate(&c.sa_init(), &edits, cut, &extra);
        for len in feed(&mut g, c.addr, c.gw, &m) {
            prop_assert!(len <= m.len() + INIT_GROWTH, "{len} for {}", m.len());
        }
        while g.step().is_some() {}
        prop_assert_eq!(g.r.sa_count(), 0);
        prop_assert_eq!(g.r.half_open_count(), 0);
        prop_assert_eq!(g.r.state_bytes(), 0);
    }

    /// Whatever fragments arrive, in any order, repeated or missing, from two clients,
    /// every byte charged against the state bound comes back when the SAs end.
    #[test]
    fn state_bytes_always_come_back(
        arrivals in proptest::collection::vec((0usize..8, 0usize..2), 0..24),
        n in 1u16..5,
        more in 0u16..2,
    ) {
        let mut g = Gw::new(config(AuthRedirect::IkeAuth));
        let mut clients: Vec<Initiator> =
            (0..2).map(|i| fragmenting_client(&mut g, 60 + i, true)).collect();
        let frags: Vec<Vec<Vec<u8>>> = clients
            .iter_mut()
            .map(|c| c.ike_auth_fragments(n, n + more))
            .collect();
        for (i, who) in arrivals {
            let (c, f) = (&clients[who], &frags[who]);
            feed(&mut g, c.addr, c.gw, &f[i % f.len()]);
        }
        while g.step().is_some() {}
        prop_assert_eq!(g.r.sa_count(), 0);
        prop_assert_eq!(g.r.state_bytes(), 0);
    }

    /// Every byte of an SK message is covered by the ICV: a changed IKE_AUTH gets no
    /// answer at all, and the SA still takes the real one afterwards.
    #[test]
    fn mutated_ike_auth_is_never_answered(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
        extra in proptest::collection::vec(any::<u8>(), 0..4),
        natt in any::<bool>(),
    ) {
        let mut g = Gw::new(config(AuthRedirect::Informational));
        let mut c = x25519();
        init(&mut g, &mut c);
        if natt {
            c.addr.set_port(4500);
            c.gw.set_port(4500);
        }
        let real = c.ike_auth();
        let m = mutate(&real, &edits, cut, &extra);
        let mut framed = if natt { vec![0; 4] } else { Vec::new() };
        framed.extend_from_slice(&m);
        let out = feed(&mut g, c.addr, c.gw, &framed);
        if m != real {
            prop_assert!(out.is_empty());
            prop_assert_eq!(g.r.half_open_count(), 1);
        }
        let mut framed = if natt { vec![0; 4] } else { Vec::new() };
        framed.extend_from_slice(&real);
        let again = feed(&mut g, c.addr, c.gw, &framed);
        prop_assert!(!again.is_empty());
    }
}

#[test]
fn init_mode_vip_answers_like_the_fast_path() {
    let mut cfg = config(AuthRedirect::Informational);
    cfg.vips[0].mode = VipMode::Init;
    let mut g = Gw::new(cfg);
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(16, client(10, 500), gw(4500), p.clone(), dh);
    let req = c.sa_init();
    let out = g.deliver(c.addr, c.gw, &req);
    let mut want = vec![0; 200];
    let n = lb_common::wire::redirect::emit_ike(&c.spi_i, &Target::ipv4(TARGET), &c.ni, &mut want)
        .unwrap();
    assert_eq!(out, vec![want[..n].to_vec()]);
    assert!(matches!(
        g.events().as_slice(),
        [Event::Redirected {
            how: RedirectHow::Init,
            ..
        }]
    ));
    // Already redirected once: never again; no state either way.
    let mut c = Initiator::new(17, client(10, 500), gw(500), p.clone(), dh);
    c.notifies = vec![status(
        wire::NOTIFY_REDIRECTED_FROM,
        vec![1, 4, 203, 0, 113, 9],
    )];
    assert!(g.deliver(c.addr, c.gw, &c.sa_init()).is_empty());
    assert_eq!(g.r.sa_count(), 0);
    // REDIRECT_SUPPORTED with a Protocol ID, an SPI or data: malformed, dropped as by the
    // fast path (RFC 5685 §4).
    let odd = |protocol, spi: &[u8], data: &[u8]| {
        Payload::Notify(crate::ike::types::payload::Notify {
            protocol,
            spi: spi.to_vec(),
            kind: wire::NOTIFY_REDIRECT_SUPPORTED,
            data: data.to_vec(),
        })
    };
    for rs in [odd(1, &[], &[]), odd(0, &[1; 4], &[]), odd(0, &[], &[0])] {
        let mut c = Initiator::new(18, client(10, 500), gw(500), p.clone(), dh);
        c.notifies = vec![rs];
        assert!(g.deliver(c.addr, c.gw, &c.sa_init()).is_empty());
    }
    assert_eq!(g.r.sa_count(), 0);
}

#[test]
fn other_local_addresses_and_noise_are_dropped() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(18, client(10, 500), gw(500), p, dh);
    let req = c.sa_init();
    let elsewhere = SocketAddr::from(([198, 51, 100, 99], 500));
    assert!(g.deliver(c.addr, elsewhere, &req).is_empty());
    for junk in [&[0xffu8][..], &[1, 2, 3, 4, 5], &[]] {
        g.r.handle_datagram(g.now, gw(4500), c.addr, junk);
        g.r.handle_datagram(g.now, gw(500), c.addr, junk);
    }
    assert!(g.r.poll_transmit().is_none());
    // A future major version gets INVALID_MAJOR_VERSION with ours, no larger than it.
    let mut v3 = req.clone();
    v3[17] = 0x30;
    let out = g.deliver(c.addr, c.gw, &v3);
    let m = Message::parse(&out[0]).unwrap();
    assert_eq!(
        m.payloads,
        vec![status(wire::NOTIFY_INVALID_MAJOR_VERSION, vec![])]
    );
    // IKEv1 is not answered.
    v3[17] = 0x10;
    assert!(g.deliver(c.addr, c.gw, &v3).is_empty());
}

/// Gives a responder (`gw.example`, PSK `psk`, VIP 10.77.0.2) the half-open SA of a
/// recorded exchange (the DH private value is unknown, so the SA is built from the
/// logged `g^ir`), feeds it the recorded IKE_AUTH (on 4500, marker included) from
/// 10.77.0.1, and returns our IKE_AUTH response, decrypted.
pub(super) fn replay_ike_auth(
    init_req: &[u8],
    init_resp: &[u8],
    auth_req: &[u8],
    g_ir: &[u8],
    suite: IkeSuite,
    psk: &[u8],
) -> Message {
    let nonce = |m: &[u8]| {
        Message::parse(m)
            .unwrap()
            .payloads
            .into_iter()
            .find_map(|p| match p {
                Payload::Nonce(n) => Some(n),
                _ => None,
            })
            .unwrap()
    };
    let (ni, nr) = (nonce(init_req), nonce(init_resp));
    let resp = Message::parse(init_resp).unwrap().header;
    let keys = IkeSaKeys::derive(&suite, &ni, &nr, g_ir, &resp.spi_i, &resp.spi_r).unwrap();
    let (vip, peer) = ([10, 77, 0, 2], [10, 77, 0, 1]);
    let chooser = Box::new(|_: IpAddr| Some(Target::ipv4(TARGET)));
    let mut cfg = ResponderConfig::new(Identity::Fqdn("gw.example".into()), chooser);
    cfg.peers.push(PeerConfig {
        id: Identity::Fqdn("client.example".into()),
        auth: AuthMethod::Psk(Zeroizing::new(psk.to_vec())),
    });
    cfg.vips.push(VipConfig {
        addr: IpAddr::from(vip),
        mode: VipMode::Auth(AuthRedirect::Informational),
    });
    let mut g = Gw::new(cfg);
    let (local, remote) = (SocketAddr::from((vip, 500)), SocketAddr::from((peer, 500)));
    let sa = IkeSa {
        spi_i: resp.spi_i,
        spi_r: resp.spi_r,
        init_remote: remote,
        local,
        remote,
        nat: false,
        method: AuthRedirect::Informational,
        suite,
        open: SkCipher::initiator(&keys, &suite),
        seal: SkCipher::responder(&keys, &suite),
        keys,
        init_req: init_req.to_vec(),
        init_resp: init_resp.to_vec(),
        ni,
        nr,
        state: SaState::HalfOpen,
        deadline: g.now + std::time::Duration::from_secs(30),
        peer_next: 1,
        cached: None,
        our_next: 0,
        outstanding: None,
        peer_id: None,
        child: None,
        fragmentation: false,
        reassembly: None,
        eap: None,
        scheduled: None,
    };
    let open = SkCipher::responder(&sa.keys, &suite);
    g.r.table.insert_half_open(&mut g.r.core, sa);
    let (local, remote) = (
        SocketAddr::from((vip, 4500)),
        SocketAddr::from((peer, 4500)),
    );
    let out = g.deliver(remote, local, auth_req.strip_prefix(&[0; 4][..]).unwrap());
    assert_eq!(
        out.len(),
        2,
        "IKE_AUTH response and the INFORMATIONAL redirect"
    );
    let ev = g.events();
    assert!(
        matches!(&ev[0], Event::Established { peer, .. } if *peer == Identification {
            kind: 2,
            data: b"client.example".to_vec()
        }),
        "{ev:?}"
    );
    open.open(&out[0]).unwrap()
}

/// An X25519 client that advertises IKE fragmentation, past IKE_SA_INIT.
fn fragmenting_client(g: &mut Gw, seed: u64, advertise: bool) -> Initiator {
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(seed, client(10, 500), gw(500), p, dh);
    if advertise {
        c.notifies
            .push(status(wire::NOTIFY_FRAGMENTATION_SUPPORTED, Vec::new()));
    }
    let out = g.deliver(c.addr, c.gw, &c.sa_init());
    let m = Message::parse(&out[0]).unwrap();
    assert_eq!(
        m.find_notify(wire::NOTIFY_FRAGMENTATION_SUPPORTED)
            .is_some(),
        advertise,
        "answered in kind (RFC 7383 §2.3)"
    );
    c.on_sa_init_response(&out[0]);
    c
}

#[test]
fn fragmented_ike_auth_is_reassembled() {
    let mut g = Gw::new(config(AuthRedirect::IkeAuth));
    let mut c = fragmenting_client(&mut g, 40, true);
    let f = c.ike_auth_fragments(3, 3);
    assert_eq!(f.len(), 3);
    // Out of order, with a duplicate: nothing until the last one arrives.
    for i in [2, 0, 0] {
        assert!(g.deliver(c.addr, c.gw, &f[i]).is_empty());
    }
    let out = g.deliver(c.addr, c.gw, &f[1]);
    assert_eq!(out.len(), 1);
    let resp = c.open(&out[0]);
    assert_eq!(resp.header.message_id, 1);
    assert!(c.responder_auth_ok(&resp, b"ikelb test psk"));
    // A retransmission repeats fragment 1 and gets the cached answer; the other
    // fragments are ignored.
    assert_eq!(g.deliver(c.addr, c.gw, &f[0]), out);
    assert!(g.deliver(c.addr, c.gw, &f[2]).is_empty());
}

#[test]
fn reassembly_counts_against_the_state_bound() {
    let mut g = Gw::new(config(AuthRedirect::IkeAuth));
    let mut c = fragmenting_client(&mut g, 44, true);
    let half_open = g.r.state_bytes();
    let f = c.ike_auth_fragments(3, 3);
    assert!(g.deliver(c.addr, c.gw, &f[0]).is_empty());
    assert!(g.r.state_bytes() > half_open, "fragment 1 is held");
    // No room left: the partial message is dropped and its bytes given back.
    g.r.core.config.state_memory_max = half_open;
    assert!(g.deliver(c.addr, c.gw, &f[1]).is_empty());
    assert_eq!(g.r.state_bytes(), half_open);
    assert!(g.deliver(c.addr, c.gw, &f[2]).is_empty());
    // With room again, the client's retransmission goes through, and authenticating
    // frees everything.
    g.r.core.config.state_memory_max = usize::MAX;
    assert!(g.deliver(c.addr, c.gw, &f[0]).is_empty());
    assert!(g.deliver(c.addr, c.gw, &f[1]).is_empty());
    assert_eq!(g.deliver(c.addr, c.gw, &f[2]).len(), 1);
    assert_eq!(g.r.state_bytes(), 0);
}

#[test]
fn fragments_restart_on_a_larger_total_and_need_negotiation() {
    let mut g = Gw::new(config(AuthRedirect::IkeAuth));
    let mut c = fragmenting_client(&mut g, 41, true);
    let two = c.ike_auth_fragments(2, 2);
    assert!(g.deliver(c.addr, c.gw, &two[0]).is_empty());
    // Re-fragmented smaller (§2.6.1): the old pieces are discarded.
    let four = c.ike_auth_fragments(4, 4);
    for f in &four[..3] {
        assert!(g.deliver(c.addr, c.gw, f).is_empty());
    }
    // A stale piece of the 2-fragment version is not mixed in.
    assert!(g.deliver(c.addr, c.gw, &two[1]).is_empty());
    assert_eq!(g.deliver(c.addr, c.gw, &four[3]).len(), 1);
    // More fragments than we hold: dropped.
    let mut c = fragmenting_client(&mut g, 42, true);
    let many = c.ike_auth_fragments(2, crate::ike::responder::frag::MAX_FRAGMENTS + 1);
    for f in &many {
        assert!(g.deliver(c.addr, c.gw, f).is_empty());
    }
    // Not negotiated: SKF is dropped.
    let mut c = fragmenting_client(&mut g, 43, false);
    for f in &c.ike_auth_fragments(1, 1) {
        assert!(g.deliver(c.addr, c.gw, f).is_empty());
    }
    assert_eq!(g.deliver(c.addr, c.gw, &c.ike_auth()).len(), 1);
}

#[test]
fn authentic_but_malformed_ike_auth_gets_invalid_syntax() {
    let (p, dh) = x25519_gcm();
    for (seed, payloads) in [
        // A 3-byte nonce does not parse (§3.9) ...
        (50, vec![Payload::Nonce(vec![0; 3])]),
        // ... and an IKE_AUTH without IDi is incomplete.
        (
            51,
            vec![status(wire::NOTIFY_REDIRECT_SUPPORTED, Vec::new())],
        ),
    ] {
        let mut g = Gw::new(config(AuthRedirect::Informational));
        let mut c = Initiator::new(seed, client(10, 500), gw(500), p.clone(), dh);
        init(&mut g, &mut c);
        let req = c.request(wire::EXCHANGE_IKE_AUTH, &payloads);
        let out = g.deliver(c.addr, c.gw, &req);
        assert_eq!(
            c.open(&out[0]).payloads,
            vec![status(wire::NOTIFY_INVALID_SYNTAX, vec![])]
        );
        assert!(g.events().iter().any(|e| matches!(
            e,
            Event::SaDeleted {
                reason: DeleteReason::InvalidSyntax,
                ..
            }
        )));
        assert_eq!(g.r.half_open_count(), 0);
        assert_eq!(g.deliver(c.addr, c.gw, &req), out, "answer repeated");
    }
}
