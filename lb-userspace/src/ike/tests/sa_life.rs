//! An SA's life after IKE_SA_INIT: our request retransmitted and given up, failed AUTH,
//! cached responses, the Message ID window, half-open limits, expiry and the state
//! bound, the client behind a NAT, no target, the client's deletes, and the key log.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lb_common::wire::ike::{self as wire, PROTO_ESP};

use super::gateway::{Gw, PSK, VIP6, client, config, float, gw, init, x25519_gcm};
use super::initiator::{Initiator, ike_proposal, status};
use crate::ike::types::config::{AuthRedirect, VipConfig, VipMode};
use crate::ike::types::event::{DeleteReason, Event};
use crate::ike::types::message::{Message, Payload};
use crate::ike::types::payload::{Delete, Identification};
use crate::ike::types::proposal::DhGroup;
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
