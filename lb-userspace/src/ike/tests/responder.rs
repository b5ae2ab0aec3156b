//! The responder driven by the test initiator on a virtual clock: full PSK exchanges for
//! both redirect methods and several suites, and the answers to IKE_SA_INIT (a KE
//! round, no proposal, no redirect support, REDIRECTED_FROM, a COOKIE round).

use std::time::Duration;

use lb_common::wire::ike::{self as wire, PROTO_ESP};

use super::gateway::{Gw, PSK, TARGET, client, config, float, gw, init, x25519_gcm};
use super::initiator::{InitAnswer, Initiator, ike_proposal, status};
use crate::ike::types::config::AuthRedirect;
use crate::ike::types::event::{DeleteReason, Event, RedirectHow};
use crate::ike::types::message::{Header, Message, Payload};
use crate::ike::types::payload::Delete;
use crate::ike::types::proposal::DhGroup;

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
