//! The responder driven by the test initiator on a virtual clock: full PSK exchanges for
//! both redirect methods and several suites, the stateless answers, retransmissions,
//! deletes, failures and limits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use lb_common::maps::Target;
use lb_common::wire::ike::{self as wire, PROTO_ESP};
use zeroize::Zeroizing;

use super::initiator::{InitAnswer, Initiator, TestRng, ike_proposal, status};
use crate::ike::responder::Responder;
use crate::ike::types::config::{
    AuthMethod, AuthRedirect, PeerConfig, ResponderConfig, VipConfig, VipMode,
};
use crate::ike::types::event::{DeleteReason, Event, RedirectHow};
use crate::ike::types::identity::Identity;
use crate::ike::types::message::{Header, Message, Payload};
use crate::ike::types::payload::{Delete, Identification};
use crate::ike::types::proposal::DhGroup;

pub(super) const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub(super) const TARGET: [u8; 4] = [198, 51, 100, 3];
const VIP6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
const PSK: &[u8] = b"ikelb test psk";

pub(super) fn client(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), port))
}

pub(super) fn gw(port: u16) -> SocketAddr {
    SocketAddr::from((VIP, port))
}

/// A gateway `gw.example` that accepts `client.example` with [`PSK`] and redirects
/// everyone to [`TARGET`].
pub(super) fn config(method: AuthRedirect) -> ResponderConfig {
    let chooser = Box::new(|_: IpAddr| Some(Target::ipv4(TARGET)));
    let mut c = ResponderConfig::new(Identity::Fqdn("gw.example".into()), chooser);
    c.peers.push(PeerConfig {
        id: Identity::Fqdn("client.example".into()),
        auth: AuthMethod::Psk(Zeroizing::new(PSK.to_vec())),
    });
    c.vips.push(VipConfig {
        addr: IpAddr::V4(VIP),
        mode: VipMode::Auth(method),
    });
    c.log_keys = true;
    c
}

/// The responder on a virtual clock.
pub(super) struct Gw {
    pub(super) r: Responder,
    pub(super) now: Instant,
}

impl Gw {
    pub(super) fn new(cfg: ResponderConfig) -> Self {
        Gw {
            r: Responder::with_rng(cfg, Box::new(TestRng::new(0x9a7e))),
            now: Instant::now(),
        }
    }

    /// Sends `ike` from `from` to `to` (with the marker on 4500) and returns every IKE
    /// message the responder sent, checking each goes back from `to` to `from`.
    pub(super) fn deliver(&mut self, from: SocketAddr, to: SocketAddr, ike: &[u8]) -> Vec<Vec<u8>> {
        let mut payload = Vec::new();
        if to.port() == wire::PORT_NATT {
            payload.extend_from_slice(&[0; 4]);
        }
        payload.extend_from_slice(ike);
        self.r.handle_datagram(self.now, to, from, &payload);
        self.drain(to, from)
    }

    /// Every transmit queued, as IKE messages; each must go from `local` to `remote`.
    pub(super) fn drain(&mut self, local: SocketAddr, remote: SocketAddr) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.r.poll_transmit() {
            assert_eq!((t.local, t.remote), (local, remote));
            let ike = if local.port() == wire::PORT_NATT {
                assert_eq!(&t.payload[..4], &[0; 4], "non-ESP marker");
                t.payload[4..].to_vec()
            } else {
                t.payload
            };
            out.push(ike);
        }
        out
    }

    pub(super) fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.r.poll_event()).collect()
    }

    /// Jumps to the next timer and runs it.
    pub(super) fn step(&mut self) -> Option<Instant> {
        let t = self.r.poll_timeout()?;
        self.now = self.now.max(t);
        self.r.handle_timeout(self.now);
        Some(t)
    }
}

pub(super) fn x25519_gcm() -> (crate::ike::types::payload::Proposal, DhGroup) {
    (ike_proposal((20, 256), None, 5, &[31]), DhGroup::Curve25519)
}

/// IKE_SA_INIT from `c`, which must be accepted.
pub(super) fn init(g: &mut Gw, c: &mut Initiator) {
    let out = g.deliver(c.addr, c.gw, &c.sa_init());
    assert_eq!(out.len(), 1);
    assert_eq!(c.on_sa_init_response(&out[0]), InitAnswer::Accepted);
}

/// The client floats to 4500 for IKE_AUTH, as strongSwan does with NAT-T support.
fn float(c: &mut Initiator) {
    c.addr.set_port(4500);
    c.gw.set_port(4500);
}

fn redirect_data() -> Vec<u8> {
    let mut d = vec![1, 4];
    d.extend_from_slice(&TARGET);
    d
}

fn has<F: Fn(&Payload) -> bool>(m: &Message, f: F) -> bool {
    m.payloads.iter().any(f)
}

/// A whole exchange with one suite and method, ending with the client's DELETE.
fn full_exchange(
    method: AuthRedirect,
    proposal: crate::ike::types::payload::Proposal,
    group: DhGroup,
) {
    let mut g = Gw::new(config(method));
    let mut c = Initiator::new(1, client(10, 500), gw(500), proposal, group);
    init(&mut g, &mut c);
    assert_eq!(g.r.half_open_count(), 1);
    float(&mut c);
    let out = g.deliver(c.addr, c.gw, &c.ike_auth());
    assert_eq!(g.r.half_open_count(), 0);

    let resp = c.open(&out[0]);
    assert_eq!(
        (resp.header.exchange, resp.header.message_id),
        (wire::EXCHANGE_IKE_AUTH, 1)
    );
    assert!(resp.header.response && !resp.header.initiator);
    assert!(c.responder_auth_ok(&resp, PSK), "gateway AUTH");
    let redirect = |m: &Message| m.find_notify(wire::NOTIFY_REDIRECT).map(|n| n.data.clone());
    let events = g.events();
    assert!(matches!(events[0], Event::Keys(_)));
    assert!(matches!(&events[1], Event::Established { peer, spi_r, .. }
            if peer.data == b"client.example" && *spi_r == c.spi_r));
    let Event::Redirected {
        how,
        target,
        client,
        ..
    } = &events[2]
    else {
        panic!("{events:?}")
    };
    assert_eq!((target.ident(), *client), (&TARGET[..], c.addr));

    match method {
        AuthRedirect::Informational => {
            assert_eq!(*how, RedirectHow::Informational);
            assert_eq!(out.len(), 2, "IKE_AUTH response and INFORMATIONAL request");
            // The CHILD SA is answered normally.
            assert_eq!(redirect(&resp), None);
            assert!(has(
                &resp,
                |p| matches!(p, Payload::Sa(s) if s[0].protocol == PROTO_ESP)
            ));
            assert!(has(&resp, |p| matches!(p, Payload::TsI(_))));
            assert!(has(&resp, |p| matches!(p, Payload::TsR(_))));
            let req = c.open(&out[1]);
            assert_eq!(
                req.header,
                Header {
                    spi_i: c.spi_i,
                    spi_r: c.spi_r,
                    exchange: wire::EXCHANGE_INFORMATIONAL,
                    initiator: false,
                    response: false,
                    message_id: 0,
                }
            );
            // N(REDIRECT) without nonce data (RFC 5685 §9.2), nothing else.
            assert_eq!(
                req.payloads,
                vec![status(wire::NOTIFY_REDIRECT, redirect_data())]
            );
            let ack = c.respond(&req.header, &[]);
            assert!(g.deliver(c.addr, c.gw, &ack).is_empty());
            // Answered: no retransmission; the next timer is the linger deadline.
            assert_eq!(g.r.poll_timeout(), Some(g.now + Duration::from_secs(30)));
        }
        AuthRedirect::IkeAuth => {
            assert_eq!(*how, RedirectHow::IkeAuth);
            assert_eq!(out.len(), 1);
            assert_eq!(redirect(&resp), Some(redirect_data()));
            assert!(!has(&resp, |p| matches!(
                p,
                Payload::Sa(_) | Payload::TsI(_) | Payload::TsR(_)
            )));
        }
    }

    // The client deletes the SA: an empty answer, and the SA ends.
    let del = c.request(
        wire::EXCHANGE_INFORMATIONAL,
        &[Payload::Delete(Delete::Ike)],
    );
    let out = g.deliver(c.addr, c.gw, &del);
    assert_eq!(out.len(), 1);
    let ans = c.open(&out[0]);
    assert_eq!((ans.header.message_id, ans.header.response), (2, true));
    assert!(ans.payloads.is_empty());
    assert!(matches!(
        g.events().as_slice(),
        [Event::SaDeleted {
            reason: DeleteReason::PeerDelete,
            ..
        }]
    ));
    // A retransmitted DELETE still gets its answer until the SA is forgotten.
    assert_eq!(g.deliver(c.addr, c.gw, &del), out);
    g.step();
    assert_eq!(g.r.sa_count(), 0);
    assert!(g.deliver(c.addr, c.gw, &del).is_empty());
}

#[test]
fn informational_redirect_gcm256_x25519() {
    let (p, dh) = x25519_gcm();
    full_exchange(AuthRedirect::Informational, p, dh);
}

#[test]
fn informational_redirect_cbc128_sha256_modp2048() {
    let p = ike_proposal((12, 128), Some(12), 7, &[14]);
    full_exchange(AuthRedirect::Informational, p, DhGroup::Modp2048);
}

#[test]
fn informational_redirect_gcm128_ecp256() {
    let p = ike_proposal((20, 128), None, 6, &[19]);
    full_exchange(AuthRedirect::Informational, p, DhGroup::Ecp256);
}

#[test]
fn ike_auth_redirect_gcm256_x25519() {
    let (p, dh) = x25519_gcm();
    full_exchange(AuthRedirect::IkeAuth, p, dh);
}

#[test]
fn ike_auth_redirect_cbc256_sha512_ecp256() {
    let p = ike_proposal((12, 256), Some(14), 7, &[19]);
    full_exchange(AuthRedirect::IkeAuth, p, DhGroup::Ecp256);
}

#[test]
fn ike_auth_redirect_cbc128_modp2048() {
    let p = ike_proposal((12, 128), Some(12), 5, &[14]);
    full_exchange(AuthRedirect::IkeAuth, p, DhGroup::Modp2048);
}

#[test]
fn invalid_ke_round_then_success() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    // The client offers 19 and 31 but guesses 14 for its KE.
    let p = ike_proposal((20, 256), None, 5, &[19, 31]);
    let mut c = Initiator::new(2, client(10, 500), gw(500), p, DhGroup::Modp2048);
    let out = g.deliver(c.addr, c.gw, &c.sa_init());
    assert_eq!(
        c.on_sa_init_response(&out[0]),
        InitAnswer::Error(wire::NOTIFY_INVALID_KE_PAYLOAD, vec![0, 19])
    );
    assert_eq!(g.r.sa_count(), 0, "no state for a stateless answer");
    c.dh = crate::ike::crypto::dh::DhSecret::generate(DhGroup::Ecp256, &mut c.rng);
    init(&mut g, &mut c);
    assert_eq!(g.r.half_open_count(), 1);
}

#[test]
fn no_proposal_chosen() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    // 3DES and MODP-1024: nothing we speak.
    let p = ike_proposal((3, 192), Some(2), 2, &[2]);
    let mut c = Initiator::new(3, client(10, 500), gw(500), p, DhGroup::Curve25519);
    let req = c.sa_init();
    let out = g.deliver(c.addr, c.gw, &req);
    assert_eq!(
        c.on_sa_init_response(&out[0]),
        InitAnswer::Error(wire::NOTIFY_NO_PROPOSAL_CHOSEN, vec![])
    );
    assert!(out[0].len() <= req.len());
    assert_eq!(g.r.sa_count(), 0);
}

#[test]
fn client_without_redirect_support_is_refused() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(4, client(10, 500), gw(500), p.clone(), dh);
    c.notifies.clear();
    let out = g.deliver(c.addr, c.gw, &c.sa_init());
    assert_eq!(
        c.on_sa_init_response(&out[0]),
        InitAnswer::Error(wire::NOTIFY_NO_PROPOSAL_CHOSEN, vec![])
    );
    assert!(matches!(
        g.events().as_slice(),
        [Event::RedirectUnsupported {
            redirected_from: false,
            ..
        }]
    ));
    assert_eq!(g.r.sa_count(), 0);
}

#[test]
fn redirected_client_is_never_redirected_again() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    // REDIRECTED_FROM, alone (as real clients send it after a redirect) or with
    // REDIRECT_SUPPORTED: refused like a client that cannot be redirected, as the fast
    // path never redirects it either (RFC 5685 §10: no loops).
    let from = status(wire::NOTIFY_REDIRECTED_FROM, vec![1, 4, 203, 0, 113, 9]);
    let supported = status(wire::NOTIFY_REDIRECT_SUPPORTED, Vec::new());
    for (seed, notifies) in [(5, vec![from.clone()]), (6, vec![supported, from])] {
        let mut c = Initiator::new(seed, client(10, 500), gw(500), p.clone(), dh);
        c.notifies = notifies;
        let req = c.sa_init();
        let out = g.deliver(c.addr, c.gw, &req);
        assert_eq!(
            c.on_sa_init_response(&out[0]),
            InitAnswer::Error(wire::NOTIFY_NO_PROPOSAL_CHOSEN, vec![])
        );
        assert!(out[0].len() <= req.len());
        assert!(matches!(
            g.events().as_slice(),
            [Event::RedirectUnsupported {
                redirected_from: true,
                ..
            }]
        ));
        assert_eq!(g.r.sa_count(), 0);
    }
}

#[test]
fn cookie_round_under_load() {
    let mut cfg = config(AuthRedirect::Informational);
    cfg.cookie_threshold = 0;
    let mut g = Gw::new(cfg);
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(6, client(10, 500), gw(500), p, dh);
    let req = c.sa_init();
    let out = g.deliver(c.addr, c.gw, &req);
    let InitAnswer::Cookie(cookie) = c.on_sa_init_response(&out[0]) else {
        panic!("no cookie")
    };
    assert!(out[0].len() < req.len());
    assert!((1..=64).contains(&cookie.len()));
    assert_eq!(g.r.sa_count(), 0);
    // A forged cookie gets a fresh challenge, not state.
    c.cookie = Some(vec![0; cookie.len()]);
    let out = g.deliver(c.addr, c.gw, &c.sa_init());
    assert_eq!(
        c.on_sa_init_response(&out[0]),
        InitAnswer::Cookie(cookie.clone())
    );
    // The real cookie from another address is worth nothing either.
    c.cookie = Some(cookie.clone());
    let out = g.deliver(client(11, 500), c.gw, &c.sa_init());
    assert!(matches!(
        Message::parse(&out[0]).unwrap().payloads.as_slice(),
        [Payload::Notify(n)] if n.kind == wire::NOTIFY_COOKIE && n.data != cookie
    ));
    assert_eq!(g.r.sa_count(), 0);
    // The retry with the cookie first is accepted.
    c.cookie = Some(cookie);
    init(&mut g, &mut c);
    assert_eq!(g.r.half_open_count(), 1);
}

#[test]
fn informational_redirect_is_retransmitted_then_given_up() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(7, client(10, 500), gw(500), p, dh);
    init(&mut g, &mut c);
    float(&mut c);
    let out = g.deliver(c.addr, c.gw, &c.ike_auth());
    let first = out[1].clone();
    let t0 = g.now;
    let mut at = Vec::new();
    for _ in 0..5 {
        let t = g.step().unwrap();
        let again = g.drain(c.gw, c.addr);
        assert_eq!(again, vec![first.clone()], "same bytes (§2.1)");
        at.push(t - t0);
    }
    let ms = |v: u64| Duration::from_millis(v);
    assert_eq!(at, [ms(500), ms(1500), ms(3500), ms(7500), ms(15500)]);
    g.events();
    assert_eq!(g.step().unwrap() - t0, ms(31500));
    assert!(g.drain(c.gw, c.addr).is_empty());
    assert!(matches!(
        g.events().as_slice(),
        [Event::SaDeleted {
            reason: DeleteReason::RetransmitTimeout,
            ..
        }]
    ));
    g.step();
    assert_eq!(g.r.sa_count(), 0);
    assert_eq!(g.r.poll_timeout(), None);
}

#[test]
fn bad_auth_is_refused_and_the_answer_repeated() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(8, client(10, 500), gw(500), p, dh);
    init(&mut g, &mut c);
    c.psk = b"wrong".to_vec();
    let req = c.ike_auth();
    let out = g.deliver(c.addr, c.gw, &req);
    assert_eq!(out.len(), 1);
    let ans = c.open(&out[0]);
    assert_eq!(
        ans.payloads,
        vec![status(wire::NOTIFY_AUTHENTICATION_FAILED, vec![])]
    );
    let ev = g.events();
    assert!(matches!(ev[1], Event::AuthFailed { .. }), "{ev:?}");
    assert!(matches!(
        ev[2],
        Event::SaDeleted {
            reason: DeleteReason::AuthFailed,
            ..
        }
    ));
    assert_eq!(g.r.half_open_count(), 0);
    // The retransmitted request gets the same answer, nothing else happens.
    assert_eq!(g.deliver(c.addr, c.gw, &req), out);
    assert!(g.events().is_empty());
}

#[test]
fn unknown_identity_fails_like_a_bad_key() {
    let mut g = Gw::new(config(AuthRedirect::IkeAuth));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(9, client(10, 500), gw(500), p, dh);
    c.id = Identification {
        kind: 2,
        data: b"mallory.example".to_vec(),
    };
    init(&mut g, &mut c);
    let out = g.deliver(c.addr, c.gw, &c.ike_auth());
    assert_eq!(
        c.open(&out[0]).payloads,
        vec![status(wire::NOTIFY_AUTHENTICATION_FAILED, vec![])]
    );
}

#[test]
fn retransmitted_requests_get_the_cached_response() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(10, client(10, 500), gw(500), p, dh);
    let sa_init = c.sa_init();
    let first = g.deliver(c.addr, c.gw, &sa_init);
    c.on_sa_init_response(&first[0]);
    assert_eq!(g.deliver(c.addr, c.gw, &sa_init), first);
    assert_eq!(g.r.sa_count(), 1);
    let auth = c.ike_auth();
    let out = g.deliver(c.addr, c.gw, &auth);
    g.events();
    // Only the response is repeated, not the INFORMATIONAL request, and no new events.
    assert_eq!(g.deliver(c.addr, c.gw, &auth), vec![out[0].clone()]);
    assert!(g.events().is_empty());
    // A retransmitted IKE_SA_INIT after IKE_AUTH is ignored.
    assert!(g.deliver(c.addr, c.gw, &sa_init).is_empty());
}

#[test]
fn out_of_window_and_unknown_spi_are_ignored() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(11, client(10, 500), gw(500), p, dh);
    init(&mut g, &mut c);
    c.next_mid = 5;
    assert!(g.deliver(c.addr, c.gw, &c.ike_auth()).is_empty());
    c.next_mid = 1;
    let real_spi = c.spi_r;
    c.spi_r = [0x42; 8];
    assert!(g.deliver(c.addr, c.gw, &c.ike_auth()).is_empty());
    c.spi_r = real_spi;
    // An INFORMATIONAL before IKE_AUTH is not allowed on a half-open SA.
    c.next_mid = 1;
    let info = c.request(wire::EXCHANGE_INFORMATIONAL, &[]);
    assert!(g.deliver(c.addr, c.gw, &info).is_empty());
    // The window did not move: the real IKE_AUTH (Message ID 1) still works.
    c.next_mid = 1;
    assert_eq!(g.deliver(c.addr, c.gw, &c.ike_auth()).len(), 2);
    assert!(
        g.events()
            .iter()
            .all(|e| !matches!(e, Event::AuthFailed { .. }))
    );
}

#[test]
fn half_open_limits_and_expiry() {
    let mut cfg = config(AuthRedirect::Informational);
    cfg.half_open_per_source = 2;
    cfg.half_open_max = 3;
    let mut g = Gw::new(cfg);
    let (p, dh) = x25519_gcm();
    let mut seed = 100;
    let mut try_init = |g: &mut Gw, from: SocketAddr| {
        seed += 1;
        let mut c = Initiator::new(seed, from, gw(500), p.clone(), dh);
        g.deliver(c.addr, c.gw, &c.sa_init()).len()
    };
    assert_eq!(try_init(&mut g, client(10, 500)), 1);
    assert_eq!(try_init(&mut g, client(10, 501)), 1);
    assert_eq!(try_init(&mut g, client(10, 502)), 0, "per source");
    assert_eq!(try_init(&mut g, client(11, 500)), 1);
    assert_eq!(try_init(&mut g, client(12, 500)), 0, "in all");
    assert_eq!(g.r.half_open_count(), 3);
    g.events();
    let t0 = g.now;
    assert_eq!(g.step(), Some(t0 + Duration::from_secs(30)));
    assert_eq!(g.r.half_open_count(), 0);
    assert_eq!(g.r.sa_count(), 0);
    let expired = g.events();
    assert_eq!(expired.len(), 3);
    assert!(expired.iter().all(|e| matches!(
        e,
        Event::SaDeleted {
            reason: DeleteReason::HalfOpenExpired,
            ..
        }
    )));
    assert_eq!(try_init(&mut g, client(12, 500)), 1);
}

#[test]
fn ipv6_sources_count_per_64() {
    let mut cfg = config(AuthRedirect::Informational);
    cfg.half_open_per_source = 2;
    cfg.vips.push(VipConfig {
        addr: IpAddr::V6(VIP6),
        mode: VipMode::Auth(AuthRedirect::Informational),
    });
    let mut g = Gw::new(cfg);
    let (p, dh) = x25519_gcm();
    let gw6 = SocketAddr::from((VIP6, 500));
    let mut seed = 200;
    let mut try_init = |g: &mut Gw, from: &str| {
        seed += 1;
        let from = SocketAddr::new(from.parse().unwrap(), 500);
        let mut c = Initiator::new(seed, from, gw6, p.clone(), dh);
        g.deliver(c.addr, c.gw, &c.sa_init()).len()
    };
    // Three addresses of one /64 are one source ...
    assert_eq!(try_init(&mut g, "2001:db8:1:2::a"), 1);
    assert_eq!(try_init(&mut g, "2001:db8:1:2:ffff::b"), 1);
    assert_eq!(try_init(&mut g, "2001:db8:1:2::c"), 0, "same /64");
    // ... the next /64 is another.
    assert_eq!(try_init(&mut g, "2001:db8:1:3::a"), 1);
    assert_eq!(g.r.half_open_count(), 3);
    assert_eq!(
        crate::ike::responder::sa::source_key("::ffff:192.0.2.7".parse().unwrap()),
        "192.0.2.7".parse::<IpAddr>().unwrap(),
        "an IPv4-mapped address counts as its IPv4 address"
    );
}

#[test]
fn half_open_state_has_a_byte_bound() {
    let (p, dh) = x25519_gcm();
    // What one half-open SA of this suite is charged.
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let mut c = Initiator::new(300, client(10, 500), gw(500), p.clone(), dh);
    init(&mut g, &mut c);
    let one = g.r.state_bytes();
    assert!(one > crate::ike::responder::sa::HALF_OPEN_OVERHEAD);
    // IKE_AUTH frees it: an authenticated SA keeps no copy of IKE_SA_INIT.
    let auth = c.ike_auth();
    assert_eq!(g.deliver(c.addr, c.gw, &auth).len(), 2);
    assert_eq!(g.r.state_bytes(), 0);

    let mut cfg = config(AuthRedirect::Informational);
    cfg.state_memory_max = 2 * one + one / 2;
    let mut g = Gw::new(cfg);
    for (seed, last, answers) in [(301, 10, 1), (302, 11, 1), (303, 12, 0)] {
        let mut c = Initiator::new(seed, client(last, 500), gw(500), p.clone(), dh);
        assert_eq!(g.deliver(c.addr, c.gw, &c.sa_init()).len(), answers);
    }
    assert_eq!(g.r.half_open_count(), 2);
    assert_eq!(g.r.state_bytes(), 2 * one);
    // Expiry gives the bytes back.
    g.step();
    assert_eq!(g.r.state_bytes(), 0);
    let mut c = Initiator::new(304, client(12, 500), gw(500), p, dh);
    assert_eq!(g.deliver(c.addr, c.gw, &c.sa_init()).len(), 1);
}

#[test]
fn redirect_follows_the_client_to_4500_behind_nat() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    // The client thinks it is 10.0.0.2:500; the NAT shows it as 192.0.2.10:500.
    let mut c = Initiator::new(12, SocketAddr::from(([10, 0, 0, 2], 500)), gw(500), p, dh);
    let req = c.sa_init();
    let out = g.deliver(client(10, 500), c.gw, &req);
    // The answer's NAT_DETECTION_DESTINATION_IP hashes the address we saw.
    let m = Message::parse(&out[0]).unwrap();
    let spi_r = m.header.spi_r;
    assert_eq!(
        m.find_notify(wire::NOTIFY_NAT_DETECTION_DESTINATION_IP)
            .unwrap()
            .data,
        crate::ike::crypto::prf::nat_detection_hash(&c.spi_i, &spi_r, client(10, 500))
    );
    c.addr = client(10, 500);
    c.on_sa_init_response(&out[0]);
    // The NAT maps the floated flow to another port.
    let natted = client(10, 34567);
    c.gw.set_port(4500);
    let out = g.deliver(natted, c.gw, &c.ike_auth());
    assert_eq!(out.len(), 2, "both to the new mapping, marker included");
}

#[test]
fn no_target_completes_auth_then_deletes() {
    let mut cfg = config(AuthRedirect::Informational);
    cfg.chooser = Box::new(|_: IpAddr| None);
    let mut g = Gw::new(cfg);
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(13, client(10, 500), gw(500), p, dh);
    init(&mut g, &mut c);
    let out = g.deliver(c.addr, c.gw, &c.ike_auth());
    let resp = c.open(&out[0]);
    assert!(c.responder_auth_ok(&resp, PSK));
    assert!(resp.find_notify(wire::NOTIFY_NO_PROPOSAL_CHOSEN).is_some());
    let del = c.open(&out[1]);
    assert_eq!(del.payloads, vec![Payload::Delete(Delete::Ike)]);
    let ack = c.respond(&del.header, &[]);
    assert!(g.deliver(c.addr, c.gw, &ack).is_empty());
    let ev = g.events();
    assert!(ev.iter().any(|e| matches!(e, Event::NoTarget { .. })));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::SaDeleted {
            reason: DeleteReason::NoTarget,
            ..
        }
    )));
}

#[test]
fn client_child_delete_is_answered_with_ours() {
    let mut g = Gw::new(config(AuthRedirect::Informational));
    let (p, dh) = x25519_gcm();
    let mut c = Initiator::new(14, client(10, 500), gw(500), p, dh);
    init(&mut g, &mut c);
    let out = g.deliver(c.addr, c.gw, &c.ike_auth());
    let resp = c.open(&out[0]);
    let Some(Payload::Sa(sa)) = resp.payloads.iter().find(|p| matches!(p, Payload::Sa(_))) else {
        panic!()
    };
    let ours: [u8; 4] = sa[0].spi.as_slice().try_into().unwrap();
    let del = c.request(
        wire::EXCHANGE_INFORMATIONAL,
        &[Payload::Delete(Delete::Child {
            protocol: PROTO_ESP,
            spis: vec![[0xc1, 0x1e, 0x47, 0x01]],
        })],
    );
    let out = g.deliver(c.addr, c.gw, &del);
    assert_eq!(
        c.open(&out[0]).payloads,
        vec![Payload::Delete(Delete::Child {
            protocol: PROTO_ESP,
            spis: vec![ours]
        })]
    );
    // CREATE_CHILD_SA is refused politely.
    let cc = c.request(wire::EXCHANGE_CREATE_CHILD_SA, &[]);
    let out = g.deliver(c.addr, c.gw, &cc);
    assert_eq!(c.open(&out[0]).payloads, vec![status(35, vec![])]);
}

#[test]
fn key_log_row_for_tshark() {
    let mut g = Gw::new(config(AuthRedirect::IkeAuth));
    let p = ike_proposal((12, 256), Some(12), 5, &[31]);
    let mut c = Initiator::new(15, client(10, 500), gw(500), p, DhGroup::Curve25519);
    init(&mut g, &mut c);
    let Some(Event::Keys(k)) = g.events().into_iter().next() else {
        panic!("no key log")
    };
    let keys = c.keys.as_ref().unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        k.tshark_uat_row(),
        format!(
            "{},{},{},{},\"AES-CBC-256 [RFC3602]\",{},{},\"HMAC_SHA2_256_128 [RFC4868]\"",
            hex(&c.spi_i),
            hex(&c.spi_r),
            hex(&keys.sk_ei),
            hex(&keys.sk_er),
            hex(&keys.sk_ai),
            hex(&keys.sk_ar)
        )
    );
    assert!(
        !format!("{k:?}").contains(&hex(&keys.sk_ei)),
        "Debug hides keys"
    );
}
