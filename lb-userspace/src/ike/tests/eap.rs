//! EAP pass-through end to end in the sans-IO world, in the lab of [`super::eap_lab`]:
//! the MSK-keyed AUTH and the redirect, a wrong password, a silent server, messages out
//! of order, a recorded strongSwan exchange, and the state bound.

use std::time::Duration;

use lb_common::wire::ike::{self as wire, AUTH_PSK};

use super::eap_lab::{Lab, RECV_KEY, SEND_KEY, TOY, eap, eap_of, eap_rounds, first_round};
use super::gateway::{Gw, TARGET, client, config, gw, init, x25519_gcm};
use super::initiator::Initiator;
use crate::ike::crypto::prf::{psk_auth, signed_octets};
use crate::ike::types::config::AuthRedirect;
use crate::ike::types::event::{DeleteReason, Event};
use crate::ike::types::message::{Message, Payload};
use crate::ike::types::payload::{Auth, Identification};

#[test]
fn eap_then_auth_with_the_msk_then_redirect() {
    for (method, any) in [
        (AuthRedirect::Informational, false),
        (AuthRedirect::IkeAuth, true),
    ] {
        let (mut lab, public) = Lab::new(method, any);
        let (mut c, idr) = first_round(&mut lab, &public, 41);
        let msg = eap_rounds(&mut lab, &mut c, b"right");
        assert_eq!(eap_of(&msg).unwrap()[0], 3, "EAP-Success");
        assert!(
            !lab.g
                .events()
                .iter()
                .any(|e| matches!(e, Event::Established { .. })),
            "not established before AUTH"
        );
        // AUTH keyed with the MSK: MS-MPPE-Recv-Key then MS-MPPE-Send-Key.
        let msk = [RECV_KEY, SEND_KEY].concat();
        let auth = c.auth_payload(&msk);
        let out = lab
            .g
            .deliver(c.addr, c.gw, &c.request(wire::EXCHANGE_IKE_AUTH, &[auth]));
        let msg = c.open(&out[0]);
        let prf = c.suite.unwrap().prf;
        let octets = signed_octets(
            prf,
            &c.init_resp,
            &c.ni,
            &c.keys.as_ref().unwrap().sk_pr,
            &idr.body(),
        );
        let Payload::Auth(ours) = &msg.payloads[0] else {
            panic!("{msg:?}")
        };
        assert_eq!(
            *ours,
            Auth {
                method: AUTH_PSK,
                data: psk_auth(prf, &msk, &octets).to_vec()
            }
        );
        let redirect = |m: &Message| {
            m.find_notify(wire::NOTIFY_REDIRECT)
                .is_some_and(|n| n.data[2..] == TARGET)
        };
        match method {
            AuthRedirect::IkeAuth => {
                assert_eq!(out.len(), 1);
                assert!(redirect(&msg), "REDIRECT in the last IKE_AUTH response");
                assert!(!msg.payloads.iter().any(|p| matches!(p, Payload::Sa(_))));
            }
            AuthRedirect::Informational => {
                assert!(msg.payloads.iter().any(|p| matches!(p, Payload::Sa(_))));
                assert!(!redirect(&msg));
                // The INFORMATIONAL request SK{N(REDIRECT)} follows the response.
                assert_eq!(out.len(), 2);
                let info = c.open(&out[1]);
                assert_eq!(info.header.exchange, wire::EXCHANGE_INFORMATIONAL);
                assert!(redirect(&info));
            }
        }
        let events = lab.g.events();
        assert!(events.iter().any(
            |e| matches!(e, Event::Established { peer, .. } if peer.data == b"carol@example.net")
        ));
        assert!(events.iter().any(|e| matches!(e, Event::Redirected { .. })));
        assert_eq!(lab.seen, 2, "two RADIUS round trips");
        assert_eq!(
            lab.g.r.state_bytes(),
            0,
            "an established SA holds no EAP state"
        );
    }
}

#[test]
fn eap_wrong_password_is_authentication_failed() {
    let (mut lab, public) = Lab::new(AuthRedirect::Informational, false);
    let (mut c, _) = first_round(&mut lab, &public, 42);
    let msg = eap_rounds(&mut lab, &mut c, b"wrong");
    assert!(
        msg.find_notify(wire::NOTIFY_AUTHENTICATION_FAILED)
            .is_some(),
        "{msg:?}"
    );
    assert_eq!(eap_of(&msg).unwrap()[0], 4, "EAP-Failure");
    let events = lab.g.events();
    assert!(events.iter().any(|e| matches!(e, Event::AuthFailed { .. })));
    assert!(!events.iter().any(|e| matches!(e, Event::Redirected { .. })));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::SaDeleted {
            reason: DeleteReason::AuthFailed,
            ..
        }
    )));
    assert_eq!(lab.g.r.state_bytes(), 0);
}

#[test]
fn eap_radius_silent_fails_in_bounded_time_and_frees_the_sa() {
    let (mut lab, public) = Lab::new(AuthRedirect::Informational, false);
    let (mut c, _) = first_round(&mut lab, &public, 43);
    let request = c.request(
        wire::EXCHANGE_IKE_AUTH,
        &[eap(b"\x02\x00\x00\x0a\x01carol".to_vec())],
    );
    assert!(lab.g.deliver(c.addr, c.gw, &request).is_empty());
    let start = lab.g.now;
    let mut out = lab.pump(&c, false);
    while out.is_empty() {
        let t = lab.radius.poll_timeout().expect("RADIUS retries pending");
        lab.g.now = t;
        lab.radius.handle_timeout(t);
        out = lab.pump(&c, false);
    }
    // One server, one retry, 1 s each.
    assert_eq!(lab.g.now - start, Duration::from_secs(2));
    assert_eq!(lab.seen, 2);
    let msg = c.open(&out[0]);
    assert!(
        msg.find_notify(wire::NOTIFY_AUTHENTICATION_FAILED)
            .is_some()
    );
    assert_eq!(lab.radius.stats().unreachable, 1);
    // Only the closed SA's cached answer is left, and it goes too.
    while lab.g.step().is_some() {}
    assert_eq!(lab.g.r.sa_count(), 0);
    assert_eq!(lab.g.r.state_bytes(), 0);
}

#[test]
fn eap_out_of_order_and_missing_certificate() {
    // AUTH before EAP finished: refused.
    let (mut lab, public) = Lab::new(AuthRedirect::Informational, false);
    let (mut c, _) = first_round(&mut lab, &public, 44);
    let auth = c.auth_payload(b"guess");
    let out = lab
        .g
        .deliver(c.addr, c.gw, &c.request(wire::EXCHANGE_IKE_AUTH, &[auth]));
    assert!(
        c.open(&out[0])
            .find_notify(wire::NOTIFY_AUTHENTICATION_FAILED)
            .is_some()
    );
    assert!(lab.g.r.poll_eap().is_none());

    // An EAP peer without our certificate configured: nothing to prove ourselves with.
    let mut cfg = config(AuthRedirect::Informational);
    cfg.eap_any = true;
    let mut g = Gw::new(cfg);
    let (proposal, group) = x25519_gcm();
    let mut c = Initiator::new(45, client(31, 500), gw(500), proposal, group);
    c.id = Identification {
        kind: 2,
        data: b"stranger.example".to_vec(),
    };
    init(&mut g, &mut c);
    let out = g.deliver(
        c.addr,
        c.gw,
        &c.request(wire::EXCHANGE_IKE_AUTH, &[Payload::IdI(c.id.clone())]),
    );
    assert!(
        c.open(&out[0])
            .find_notify(wire::NOTIFY_AUTHENTICATION_FAILED)
            .is_some()
    );
    assert!(g.r.poll_eap().is_none());
}

/// Known answers from a real exchange: strongSwan 5.9.8 (`ike = 4` log) authenticated by
/// EAP-MSCHAPv2 at ikelb through FreeRADIUS 3.2.1, in this repository's netns lab
/// (`e2e_auth_eap.rs`); PRF HMAC-SHA2-256. The client logged SK_pi and SK_pr, both
/// signed octets, the key it used (the MSK: 64 bytes, its last 32 zero) and both AUTH
/// values; FreeRADIUS logged the MS-MPPE keys of its Access-Accept to ikelb.
mod recorded {
    use hex_literal::hex;

    pub(super) const MPPE_RECV: [u8; 16] = hex!("a6358699bf03e39749fce76135acce34");
    pub(super) const MPPE_SEND: [u8; 16] = hex!("882cc677870bf42d0888010454269e57");
    pub(super) const SK_PI: [u8; 32] =
        hex!("00bed6db3024eb6ecca2ba600c6c7fc4d47c7ad836b1fd80e728a62c183e39b6");
    pub(super) const SK_PR: [u8; 32] =
        hex!("051856784fff38b7b7283655ffe1d4f27875bd8b1bf7e559770147c422827e3d");
    pub(super) const OCTETS_I: [u8; 956] = hex!(
        "590ff585bcd8ec6a000000000000000021202208000000000000037c220002bc0200014801010022
         0300000c0100000c800e00800300000c0100000c800e00c00300000c0100000c800e01000300000c
         0100000d800e00800300000c0100000d800e00c00300000c0100000d800e01000300000c01000017
         800e00800300000c01000017800e00c00300000c01000017800e01000300000c01000018800e0080
         0300000c01000018800e00c00300000c01000018800e01000300000801000003030000080300000c
         030000080300000d030000080300000e030000080300000203000008020000050300000802000006
         03000008020000070300000802000002030000080400001f03000008040000200300000804000013
         03000008040000140300000804000015030000080400001c030000080400001d030000080400001e
         030000080400000f030000080400001003000008040000110300000804000012000000080400000e
         00000170020100240300000c01000014800e00800300000c01000014800e00c00300000c01000014
         800e01000300000c01000010800e00800300000c01000010800e00c00300000c01000010800e0100
         030000080100001c0300000c01000013800e00800300000c01000013800e00c00300000c01000013
         800e01000300000c01000012800e00800300000c01000012800e00c00300000c01000012800e0100
         0300000c0100000f800e00800300000c0100000f800e00c00300000c0100000f800e01000300000c
         0100000e800e00800300000c0100000e800e00c00300000c0100000e800e01000300000802000005
         030000080200000603000008020000070300000802000002030000080400001f0300000804000020
         030000080400001303000008040000140300000804000015030000080400001c030000080400001d
         030000080400001e030000080400000f030000080400001003000008040000110300000804000012
         000000080400000e28000028001f00002fe84a5102b6a20f9df8ce50936bfd3777716ec2fe2dcfa7
         a23cef1873dd164529000024166c5ee66e4eeded790265274a881bd05bc9afa1ce639fc707878420
         5850b5392900001c00004004cafd30c3343db83dc9b8140b2fb4727f7533d49d2900001c00004005
         053e8ea6455fa3dfb26552b0c354527c5af1ddae290000080000402e290000100000402f00020003
         00040005000000080000401654f0c7ee6405068f78e254969ae6328dc3c0d61745f625dd7661452f
         f28571b4593cfd37431d3a87c59806a932b8b1e05052ef836e38982cd5ab37628956cc9c"
    );
    pub(super) const AUTH_I: [u8; 32] =
        hex!("9c61add0c43ceea89fd9ff0b149664fd87ca960ff817f68bfe36f878874e47e8");
    pub(super) const OCTETS_R: [u8; 319] = hex!(
        "590ff585bcd8ec6a8f61e4a74e2eeaf02120222000000000000000ff220000300000002c01010004
         0300000c0100000c800e00800300000802000005030000080300000c000000080400001f28000028
         001f000051022fbabfc96d3bf30c5249eba2d3ce07894cee870eda7e84db773e93cdd21d29000024
         54f0c7ee6405068f78e254969ae6328dc3c0d61745f625dd7661452ff28571b42900001c00004004
         7aeae485d9439189c416466e3a78d228c67e4a3b2900001c0000400555d2ae23f03e0afa667f851a
         0059e56ad8fa19e3260000080000402e2900001904f6eb12d6374dfb2e41caca6867ca389764e8f3
         1c0000000e0000402f000200030004166c5ee66e4eeded790265274a881bd05bc9afa1ce639fc707
         8784205850b53903bbc6077eb362f79bacff69b8ec03abe29a3d6ebfcd8f57e2f5e136016ff01f"
    );
    pub(super) const AUTH_R: [u8; 32] =
        hex!("30a4a465d858bdc882dc7f5825b9a913574945d50604081a67cb6b44cf52fdda");
}

#[test]
fn msk_auth_matches_a_recorded_strongswan_exchange() {
    use crate::ike::types::proposal::Prf;
    use recorded::*;
    let prf = Prf::HmacSha256;
    // The signed octets end with the nonce and prf(SK_p, ID'): rebuilt by ours from the
    // IDs the two sides used.
    let idi = Identification {
        kind: 2,
        data: b"sw4m.client.ikelb.test".to_vec(),
    };
    let idr = Identification {
        kind: 2,
        data: b"gw.ikelb.test".to_vec(),
    };
    for (octets, sk, id) in [(&OCTETS_I[..], &SK_PI, &idi), (&OCTETS_R[..], &SK_PR, &idr)] {
        let (head, nonce) = octets[..octets.len() - 32].split_at(octets.len() - 64);
        assert_eq!(signed_octets(prf, head, nonce, sk, &id.body()), octets);
    }
    // The MSK ikelb takes from the Access-Accept: Recv-Key then Send-Key. strongSwan's
    // is the same with 32 zero bytes after it, the same HMAC key (keys shorter than the
    // block are zero-padded), so both give the AUTH values the client sent and checked.
    let msk = [MPPE_RECV, MPPE_SEND].concat();
    let mut padded = msk.clone();
    padded.resize(64, 0);
    for key in [&msk, &padded] {
        assert_eq!(psk_auth(prf, key, &OCTETS_I)[..], AUTH_I);
        assert_eq!(psk_auth(prf, key, &OCTETS_R)[..], AUTH_R);
    }
}

#[test]
fn eap_outcome_after_the_sa_expired_is_ignored() {
    let (mut lab, public) = Lab::new(AuthRedirect::Informational, false);
    let (mut c, _) = first_round(&mut lab, &public, 46);
    let request = c.request(
        wire::EXCHANGE_IKE_AUTH,
        &[eap(b"\x02\x00\x00\x0a\x01carol".to_vec())],
    );
    assert!(lab.g.deliver(c.addr, c.gw, &request).is_empty());
    let (ticket, relay) = lab.g.r.poll_eap().expect("relayed");
    // The half-open SA expires while RADIUS thinks (30 s), then goes entirely.
    while lab.g.step().is_some() {}
    assert_eq!(lab.g.r.sa_count(), 0);
    assert!(lab.g.events().iter().any(|e| matches!(
        e,
        Event::SaDeleted {
            reason: DeleteReason::HalfOpenExpired,
            ..
        }
    )));
    // The late verdict finds nothing to answer.
    lab.g.r.handle_eap_outcome(
        lab.g.now,
        ticket,
        crate::radius::Outcome::Challenge {
            eap: vec![1, 2, 0, 5, TOY],
            cont: crate::radius::Continuation {
                server: 0,
                state: None,
            },
        },
    );
    assert!(lab.g.r.poll_transmit().is_none());
    assert_eq!(relay.user_name, b"carol");
    assert_eq!(lab.g.r.state_bytes(), 0);
}

#[test]
fn eap_state_is_charged_against_the_state_bound() {
    let (mut lab, public) = Lab::new(AuthRedirect::Informational, false);
    let (mut c, _) = first_round(&mut lab, &public, 47);
    let half_open =
        crate::ike::responder::sa::HALF_OPEN_OVERHEAD + c.init_req.len() + c.init_resp.len();
    let with_eap = lab.g.r.state_bytes();
    assert!(with_eap > half_open, "{with_eap} > {half_open}");
    // The identity and the State of the challenge are charged too.
    let request = c.request(
        wire::EXCHANGE_IKE_AUTH,
        &[eap(b"\x02\x00\x00\x0a\x01carol".to_vec())],
    );
    assert!(lab.g.deliver(c.addr, c.gw, &request).is_empty());
    assert_eq!(lab.pump(&c, true).len(), 1);
    assert!(lab.g.r.state_bytes() >= with_eap + b"carol".len() + b"round-1".len());

    // No room for the EAP state: the client is refused, nothing is left charged.
    let (proposal, group) = x25519_gcm();
    let mut d = Initiator::new(48, client(32, 500), gw(500), proposal, group);
    d.id = Identification {
        kind: 3,
        data: b"carol@example.net".to_vec(),
    };
    init(&mut lab.g, &mut d);
    let before = lab.g.r.state_bytes();
    lab.g.r.core.config.state_memory_max = before + 64;
    let out = lab.g.deliver(
        d.addr,
        d.gw,
        &d.request(wire::EXCHANGE_IKE_AUTH, &[Payload::IdI(d.id.clone())]),
    );
    let msg = d.open(&out[0]);
    assert!(
        msg.find_notify(wire::NOTIFY_AUTHENTICATION_FAILED)
            .is_some()
    );
    assert!(eap_of(&msg).is_none());
    let refused = before
        - (crate::ike::responder::sa::HALF_OPEN_OVERHEAD + d.init_req.len() + d.init_resp.len());
    assert_eq!(lab.g.r.state_bytes(), refused);
}
