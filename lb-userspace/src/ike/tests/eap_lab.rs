//! The EAP lab of the sans-IO tests: a gateway with an EAP peer (or `%any`), the real
//! RADIUS client ([`crate::radius::Client`]) wired to it as the driver wires them, and a
//! fake RADIUS server that runs a toy EAP method (type 254: the client answers with its
//! password) and sends MS-MPPE keys with its Access-Accept, as FreeRADIUS does; and the
//! first rounds of a client through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_common::wire::ike::{self as wire, AUTH_DIGITAL_SIGNATURE, PAYLOAD_EAP};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use zeroize::Zeroizing;

use super::gateway::{Gw, client, config, gw, init, x25519_gcm};
use super::initiator::{Initiator, esp_proposal, ts};
use crate::ike::cert::signature::PublicKey;
use crate::ike::cert::validate::Credentials;
use crate::ike::crypto::prf::signed_octets;
use crate::ike::types::config::{AuthMethod, AuthRedirect, PeerConfig};
use crate::ike::types::message::{Message, Payload};
use crate::ike::types::payload::Identification;
use crate::radius::packet::{
    AccessRequest, attr, code, encode_answer, encrypt_mppe_key, ms_mppe_attr,
};
use crate::radius::{Client, ClientConfig, Server};

const SECRET: &[u8] = b"radius secret";
pub(super) const TOY: u8 = 254;
/// carol's password at the fake server.
const PASSWORD: &[u8] = b"right";
pub(super) const RECV_KEY: [u8; 32] = [0x11; 32];
pub(super) const SEND_KEY: [u8; 32] = [0x22; 32];

fn radius_server() -> SocketAddr {
    "203.0.113.5:1812".parse().unwrap()
}

/// Our certificate (ECDSA P-256, `gw.example`) and its public key.
fn credentials() -> (Credentials, Vec<u8>) {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "EAP test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = p.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "gw");
    p.subject_alt_names
        .push(SanType::DnsName("gw.example".try_into().unwrap()));
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    let creds = Credentials::new(
        cert.pem().as_bytes(),
        &key.serialize_pem(),
        ca.pem().as_bytes(),
    )
    .unwrap();
    (creds, key.public_key_der())
}

/// The fake server: an Access-Request checked like FreeRADIUS does (its
/// Message-Authenticator recomputed), answered by the toy method.
fn serve(request: &[u8]) -> Vec<u8> {
    let ra: [u8; 16] = request[4..20].try_into().unwrap();
    let mut attrs = Vec::new();
    let mut at = 20;
    while at < request.len() {
        let l = usize::from(request[at + 1]);
        attrs.push((request[at], request[at + 2..at + l].to_vec()));
        at += l;
    }
    let get = |k: u8| {
        attrs
            .iter()
            .filter(|(t, _)| *t == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            .concat()
    };
    let user = get(attr::USER_NAME);
    let eap = get(attr::EAP_MESSAGE);
    let state = get(attr::STATE);
    // Our encoder with the request's own attributes reproduces it exactly, so its
    // Message-Authenticator is the one a server computes.
    let again = AccessRequest {
        user_name: &user,
        eap: &eap,
        state: (!state.is_empty()).then_some(&state[..]),
        nas_ip: None,
        nas_identifier: &get(attr::NAS_IDENTIFIER),
        called_station: &get(attr::CALLED_STATION_ID),
        calling_station: &get(attr::CALLING_STATION_ID),
    }
    .encode(request[1], &ra, SECRET)
    .unwrap();
    assert_eq!(again, request, "Message-Authenticator and attributes");
    assert_eq!(user, b"carol");
    let id = eap[1];
    let reply =
        |code: u8, attrs: &[(u8, Vec<u8>)]| encode_answer(code, request[1], &ra, SECRET, attrs);
    match &eap[4..] {
        // Identity: challenge with the toy method.
        [1, ..] => reply(
            code::ACCESS_CHALLENGE,
            &[
                (attr::EAP_MESSAGE, vec![1, id + 1, 0, 5, TOY]),
                (attr::STATE, b"round-1".to_vec()),
            ],
        ),
        [TOY, given @ ..] if given == PASSWORD && state == b"round-1" => reply(
            code::ACCESS_ACCEPT,
            &[
                (attr::EAP_MESSAGE, vec![3, id, 0, 4]),
                (
                    attr::VENDOR_SPECIFIC,
                    ms_mppe_attr(17, &encrypt_mppe_key(&RECV_KEY, [0x80, 7], &ra, SECRET)),
                ),
                (
                    attr::VENDOR_SPECIFIC,
                    ms_mppe_attr(16, &encrypt_mppe_key(&SEND_KEY, [0x80, 8], &ra, SECRET)),
                ),
            ],
        ),
        _ => reply(
            code::ACCESS_REJECT,
            &[(attr::EAP_MESSAGE, vec![4, id, 0, 4])],
        ),
    }
}

/// The gateway and its RADIUS client, wired as the driver wires them.
pub(super) struct Lab {
    pub(super) g: Gw,
    pub(super) radius: Client,
    /// Requests the fake server saw.
    pub(super) seen: usize,
}

impl Lab {
    pub(super) fn new(method: AuthRedirect, any: bool) -> (Self, Vec<u8>) {
        let (creds, public) = credentials();
        let mut cfg = config(method);
        cfg.credentials = Some(Arc::new(creds));
        if any {
            cfg.eap_any = true;
        } else {
            cfg.peers.push(PeerConfig {
                id: crate::ike::types::identity::Identity::Rfc822("carol@example.net".into()),
                auth: AuthMethod::Eap,
            });
        }
        let radius = Client::new(ClientConfig {
            servers: vec![Server {
                addr: radius_server(),
                secret: Zeroizing::new(SECRET.to_vec()),
            }],
            timeout: Duration::from_secs(1),
            retries: 1,
            revive_after: Duration::from_secs(30),
            nas_identifier: "ikelb".into(),
            nas_ip: None,
        });
        let lab = Lab {
            g: Gw::new(cfg),
            radius,
            seen: 0,
        };
        (lab, public)
    }

    /// Relays what the responder asked for to the fake server (silent unless `alive`)
    /// and the outcomes back; returns the IKE messages that came out.
    pub(super) fn pump(&mut self, c: &Initiator, alive: bool) -> Vec<Vec<u8>> {
        while let Some((ticket, relay)) = self.g.r.poll_eap() {
            self.radius.start(self.g.now, ticket, relay);
        }
        while let Some(tx) = self.radius.poll_transmit() {
            assert_eq!(tx.server, radius_server());
            self.seen += 1;
            if alive {
                self.radius.handle_datagram(tx.server, &serve(&tx.payload));
            }
        }
        while let Some((ticket, outcome)) = self.radius.poll_outcome() {
            self.g.r.handle_eap_outcome(self.g.now, ticket, outcome);
        }
        self.g.drain(c.gw, c.addr)
    }
}

pub(super) fn eap_of(m: &Message) -> Option<&[u8]> {
    m.payloads.iter().find_map(|p| match p {
        Payload::Other { kind, body } if *kind == PAYLOAD_EAP => Some(&body[..]),
        _ => None,
    })
}

pub(super) fn eap(packet: Vec<u8>) -> Payload {
    Payload::Other {
        kind: PAYLOAD_EAP,
        body: packet,
    }
}

/// A client `carol@example.net` through IKE_SA_INIT and the first IKE_AUTH: checks
/// our IDr, CERT, signature AUTH and EAP-Request/Identity; returns the IDr.
pub(super) fn first_round(lab: &mut Lab, public: &[u8], seed: u64) -> (Initiator, Identification) {
    let (proposal, group) = x25519_gcm();
    let mut c = Initiator::new(seed, client(30, 500), gw(500), proposal, group);
    c.id = Identification {
        kind: 3,
        data: b"carol@example.net".to_vec(),
    };
    init(&mut lab.g, &mut c);
    let payloads = vec![
        Payload::IdI(c.id.clone()),
        Payload::Sa(vec![esp_proposal(true, [0xc1, 0x1e, 0x47, 0x01])]),
        Payload::TsI(ts([10, 1, 0, 0], [10, 1, 255, 255])),
        Payload::TsR(ts([0, 0, 0, 0], [255, 255, 255, 255])),
    ];
    let out = lab
        .g
        .deliver(c.addr, c.gw, &c.request(wire::EXCHANGE_IKE_AUTH, &payloads));
    assert_eq!(out.len(), 1);
    let msg = c.open(&out[0]);
    let kinds: Vec<u8> = msg.payloads.iter().map(Payload::kind).collect();
    assert_eq!(
        kinds,
        [
            wire::PAYLOAD_IDR,
            wire::PAYLOAD_CERT,
            wire::PAYLOAD_AUTH,
            PAYLOAD_EAP
        ]
    );
    let (Payload::IdR(idr), Payload::Auth(auth)) = (&msg.payloads[0], &msg.payloads[2]) else {
        unreachable!()
    };
    assert_eq!(auth.method, AUTH_DIGITAL_SIGNATURE);
    let k = c.keys.as_ref().unwrap();
    let octets = signed_octets(
        c.suite.unwrap().prf,
        &c.init_resp,
        &c.ni,
        &k.sk_pr,
        &idr.body(),
    );
    PublicKey::from_spki_der(public)
        .unwrap()
        .verify_auth(auth, &octets, false)
        .unwrap();
    let req = eap_of(&msg).unwrap();
    assert_eq!(
        (req[0], &req[2..]),
        (1, &[0, 5, 1][..]),
        "EAP-Request/Identity"
    );
    (c, idr.clone())
}

/// The EAP rounds up to the server's verdict; returns the EAP packet of the last
/// response (the message itself is checked by the caller).
pub(super) fn eap_rounds(lab: &mut Lab, c: &mut Initiator, password: &[u8]) -> Message {
    // Identity; the answer waits for RADIUS, its retransmission is ignored.
    let request = c.request(
        wire::EXCHANGE_IKE_AUTH,
        &[eap(b"\x02\x00\x00\x0a\x01carol".to_vec())],
    );
    assert!(lab.g.deliver(c.addr, c.gw, &request).is_empty());
    assert!(lab.g.deliver(c.addr, c.gw, &request).is_empty());
    let out = lab.pump(c, true);
    assert_eq!(out.len(), 1);
    let msg = c.open(&out[0]);
    let challenge = eap_of(&msg).unwrap().to_vec();
    assert_eq!((challenge[0], challenge[4]), (1, TOY));
    // Retransmitted now: the cached response.
    assert_eq!(lab.g.deliver(c.addr, c.gw, &request), out);
    let mut answer = vec![2, challenge[1], 0, 0, TOY];
    answer.extend_from_slice(password);
    let len = answer.len() as u16;
    answer[2..4].copy_from_slice(&len.to_be_bytes());
    let request = c.request(wire::EXCHANGE_IKE_AUTH, &[eap(answer)]);
    assert!(lab.g.deliver(c.addr, c.gw, &request).is_empty());
    let out = lab.pump(c, true);
    assert_eq!(out.len(), 1);
    c.open(&out[0])
}
