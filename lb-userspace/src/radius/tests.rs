//! RADIUS packets against RFC 2865 §7.1 and answers recorded from FreeRADIUS 3.2.1
//! (Debian 12), and the sans-IO client's retransmission, failover and drops.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hex_literal::hex;
use hmac::{Hmac, Mac};
use md5::Md5;
use zeroize::Zeroizing;

use super::client::{Client, ClientConfig, Continuation, Outcome, Relay, Server};
use super::packet::{
    AccessRequest, RadiusError, attr, code, decrypt_mppe_key, encode_answer, encrypt_mppe_key,
    ms_mppe_attr, parse_answer,
};

/// RFC 2865 §7.1: the Access-Request of user "nemo" (secret "xyzzy5461") and the
/// server's Access-Accept.
const RFC2865_REQUEST_AUTH: [u8; 16] = hex!("0f403f9473978057bd83d5cb98f4227a");
const RFC2865_ACCEPT: [u8; 38] =
    hex!("02000026 86fe220e7624ba2a1005f6bf9b55e0b2 06060000 00010f06 00000000 0e06c0a8 0103");

#[test]
fn rfc2865_response_authenticator() {
    // The example predates RFC 3579: no Message-Authenticator. The Response
    // Authenticator is checked first, so passing it reports the missing attribute.
    assert_eq!(
        parse_answer(&RFC2865_ACCEPT, &RFC2865_REQUEST_AUTH, b"xyzzy5461"),
        Err(RadiusError::MissingMessageAuthenticator)
    );
    assert_eq!(
        parse_answer(&RFC2865_ACCEPT, &RFC2865_REQUEST_AUTH, b"xyzzy5462"),
        Err(RadiusError::BadResponseAuthenticator)
    );
    let mut tampered = RFC2865_ACCEPT;
    tampered[37] ^= 1;
    assert_eq!(
        parse_answer(&tampered, &RFC2865_REQUEST_AUTH, b"xyzzy5461"),
        Err(RadiusError::BadResponseAuthenticator)
    );
}

/// Recorded: EAP-Response/Identity "vector" sent to FreeRADIUS 3.2.1 (secret
/// "testing123-vector", Request Authenticator c0..cf, identifier 9); its
/// Access-Challenge carries the EAP-MSCHAPv2 challenge, State and a
/// Message-Authenticator.
const FR_SECRET: &[u8] = b"testing123-vector";
const FR_CHALLENGE_AUTH: [u8; 16] = hex!("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
const FR_CHALLENGE: [u8; 100] = hex!(
    "0b0900646ef7b3a857b85393630251517ae9fdce4f2c0102002a1a0102002510441a2c81f8dab6b3
     61e4b585c5604d90667265657261646975732d332e322e315012f8bafe0eff245fc694791a938ede
     829a18125969d88b596bc22c88d2e0d759b84c6a"
);
/// The request that got it, as FreeRADIUS accepted it (its Message-Authenticator checked).
const FR_IDENTITY_REQUEST: [u8; 73] = hex!(
    "01090049c0c1c2c3c4c5c6c7c8c9cacbcccdcecf0108766563746f72200e696b656c622d76656374
     6f724f0d0201000b01766563746f7250125d52cd2453cbaefdd221f809ef37dabd"
);

#[test]
fn freeradius_challenge_with_message_authenticator() {
    let a = parse_answer(&FR_CHALLENGE, &FR_CHALLENGE_AUTH, FR_SECRET).unwrap();
    assert_eq!(a.code, code::ACCESS_CHALLENGE);
    assert_eq!(a.identifier, 9);
    // EAP-Request (1), id 2, length 42, type 26 (MSCHAPv2), Challenge, 16-byte value,
    // server name "freeradius-3.2.1".
    assert_eq!(&a.eap[..6], &hex!("0102002a1a01"));
    assert_eq!(a.eap.len(), 42);
    assert!(a.eap.ends_with(b"freeradius-3.2.1"));
    assert_eq!(
        a.state.as_deref(),
        Some(&hex!("5969d88b596bc22c88d2e0d759b84c6a")[..])
    );
    // The Message-Authenticator (offset 66) alone wrong: the Response Authenticator
    // covers it too, so fix that up to reach the second check.
    let mut p = FR_CHALLENGE;
    p[70] ^= 0x40;
    let ra: [u8; 16] = {
        use md5::Digest;
        let mut h = Md5::new();
        h.update(&p[..4]);
        h.update(FR_CHALLENGE_AUTH);
        h.update(&p[20..]);
        h.update(FR_SECRET);
        h.finalize().into()
    };
    p[4..20].copy_from_slice(&ra);
    assert_eq!(
        parse_answer(&p, &FR_CHALLENGE_AUTH, FR_SECRET),
        Err(RadiusError::BadMessageAuthenticator)
    );
    // Wrong request authenticator (a spoofed answer to another request).
    assert_eq!(
        parse_answer(&FR_CHALLENGE, &[0; 16], FR_SECRET),
        Err(RadiusError::BadResponseAuthenticator)
    );
}

#[test]
fn access_request_encoding() {
    // Our encoder with the recorded request's inputs: the same EAP-Message and a
    // Message-Authenticator FreeRADIUS accepts, i.e. HMAC-MD5 over the packet with
    // the attribute zeroed.
    let eap = hex!("0201000b01766563746f72");
    let req = AccessRequest {
        user_name: b"vector",
        eap: &eap,
        state: Some(b"st"),
        nas_ip: Some("192.0.2.1".parse().unwrap()),
        nas_identifier: b"ikelb-vector",
        called_station: b"192.0.2.1",
        calling_station: b"198.51.100.7",
    };
    let p = req.encode(9, &FR_CHALLENGE_AUTH, FR_SECRET).unwrap();
    assert_eq!(&p[..2], &[code::ACCESS_REQUEST, 9]);
    assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
    assert_eq!(&p[4..20], &FR_CHALLENGE_AUTH);
    let attrs = walk(&p);
    let get = |k: u8| attrs.iter().find(|(t, _)| *t == k).map(|(_, v)| v.clone());
    assert_eq!(get(attr::USER_NAME).unwrap(), b"vector");
    assert_eq!(get(attr::EAP_MESSAGE).unwrap(), eap);
    assert_eq!(get(attr::STATE).unwrap(), b"st");
    assert_eq!(get(attr::NAS_IP_ADDRESS).unwrap(), [192, 0, 2, 1]);
    assert_eq!(get(attr::CALLING_STATION_ID).unwrap(), b"198.51.100.7");
    let (last, ma) = attrs.last().unwrap();
    assert_eq!(*last, attr::MESSAGE_AUTHENTICATOR);
    let mut zeroed = p.clone();
    let at = p.len() - 16;
    zeroed[at..].fill(0);
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(FR_SECRET).unwrap();
    mac.update(&zeroed);
    assert_eq!(&mac.finalize().into_bytes()[..], &ma[..]);
    // The recorded request checks the same way (FreeRADIUS answered it).
    let mut zeroed = FR_IDENTITY_REQUEST;
    let at = zeroed.len() - 16;
    zeroed[at..].fill(0);
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(FR_SECRET).unwrap();
    mac.update(&zeroed);
    assert_eq!(&mac.finalize().into_bytes()[..], &FR_IDENTITY_REQUEST[at..]);

    // A long EAP message is split into 253-byte EAP-Message attributes, in order.
    let long: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let p = AccessRequest {
        eap: &long,
        state: None,
        ..req
    }
    .encode(1, &[7; 16], b"s")
    .unwrap();
    let parts: Vec<Vec<u8>> = walk(&p)
        .into_iter()
        .filter(|(t, _)| *t == attr::EAP_MESSAGE)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        parts.iter().map(Vec::len).collect::<Vec<_>>(),
        [253, 253, 94]
    );
    assert_eq!(parts.concat(), long);
    // Too large for one packet.
    let huge = vec![0u8; 4096];
    assert_eq!(
        AccessRequest { eap: &huge, ..req }.encode(1, &[7; 16], b"s"),
        Err(RadiusError::TooLarge)
    );
}

fn walk(p: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 20;
    while at < p.len() {
        let (t, l) = (p[at], usize::from(p[at + 1]));
        out.push((t, p[at + 2..at + l].to_vec()));
        at += l;
    }
    out
}

/// Recorded: an Access-Accept from FreeRADIUS 3.2.1 whose users file gives the user
/// MS-MPPE-Recv-Key 00..1f and MS-MPPE-Send-Key 20..3f (secret "testing123-vector",
/// Request Authenticator a0..af). FreeRADIUS encrypted them (RFC 2548 §2.4.2).
const FR_ACCEPT_AUTH: [u8; 16] = hex!("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
const FR_ACCEPT: [u8; 136] = hex!(
    "020700887c9d007ebb6b92fc589a634f86fb34361a3a0000013711348652891f8781cda6aa179e39
     e6114c25bedf4e0285cbf7ec39369d72087017cd300604857b8fd951e1e155f97fce9569b2e61a3a
     0000013710348ab33b93f3a96250a009fe33e6da590a00ed30ae30923460ef9bfd1c09ff16cd0681
     1dda572dbfccc86ff1774714c7d7673e"
);

#[test]
fn mppe_keys_from_freeradius() {
    let recv: Vec<u8> = (0..32).collect();
    let send: Vec<u8> = (32..64).collect();
    // MS-MPPE-Recv-Key (17): Vendor-Specific at 20, vendor 311, then the sub-attribute.
    let recv_value = &FR_ACCEPT[26 + 2..26 + 0x34];
    let send_value = &FR_ACCEPT[20 + 0x3a + 6 + 2..20 + 0x3a + 6 + 0x34];
    assert_eq!(FR_ACCEPT[26], 17);
    assert_eq!(FR_ACCEPT[20 + 0x3a + 6], 16);
    assert_eq!(
        &decrypt_mppe_key(recv_value, &FR_ACCEPT_AUTH, FR_SECRET).unwrap()[..],
        &recv[..]
    );
    assert_eq!(
        &decrypt_mppe_key(send_value, &FR_ACCEPT_AUTH, FR_SECRET).unwrap()[..],
        &send[..]
    );
    // Not EAP, so FreeRADIUS added no Message-Authenticator: parse_answer, which
    // requires one, refuses the packet after its Response Authenticator checked out.
    assert_eq!(
        parse_answer(&FR_ACCEPT, &FR_ACCEPT_AUTH, FR_SECRET),
        Err(RadiusError::MissingMessageAuthenticator)
    );
    // A wrong secret or request authenticator decrypts to garbage or fails.
    assert_ne!(
        decrypt_mppe_key(recv_value, &FR_ACCEPT_AUTH, b"other")
            .map(|k| k.to_vec())
            .unwrap_or_default(),
        recv
    );
    // Salt without its high bit, ciphertext not in 16-byte blocks.
    let mut bad = recv_value.to_vec();
    bad[0] &= 0x7f;
    assert!(decrypt_mppe_key(&bad, &FR_ACCEPT_AUTH, FR_SECRET).is_err());
    assert!(decrypt_mppe_key(&recv_value[..20], &FR_ACCEPT_AUTH, FR_SECRET).is_err());
    // Our test encryption is the inverse (the fake servers below use it).
    let enc = encrypt_mppe_key(&recv, [0x80, 0x01], &FR_ACCEPT_AUTH, FR_SECRET);
    assert_eq!(
        &decrypt_mppe_key(&enc, &FR_ACCEPT_AUTH, FR_SECRET).unwrap()[..],
        &recv[..]
    );
}

#[test]
fn accept_gives_the_msk_recv_then_send() {
    let ra = [5; 16];
    let recv = [1u8; 32];
    let send = [2u8; 32];
    let p = encode_answer(
        code::ACCESS_ACCEPT,
        3,
        &ra,
        b"sec",
        &[
            (attr::EAP_MESSAGE, hex!("03030004").to_vec()),
            (
                attr::VENDOR_SPECIFIC,
                ms_mppe_attr(16, &encrypt_mppe_key(&send, [0x81, 2], &ra, b"sec")),
            ),
            (
                attr::VENDOR_SPECIFIC,
                ms_mppe_attr(17, &encrypt_mppe_key(&recv, [0x82, 3], &ra, b"sec")),
            ),
        ],
    );
    let a = parse_answer(&p, &ra, b"sec").unwrap();
    assert_eq!(a.eap, hex!("03030004"));
    let msk = a.msk().unwrap();
    assert_eq!(&msk[..32], &recv);
    assert_eq!(&msk[32..], &send);
    // Truncated and garbled packets are malformed, not a panic.
    for n in 0..p.len() {
        assert!(parse_answer(&p[..n], &ra, b"sec").is_err());
    }
}

fn relay(state: Option<Continuation>) -> Relay {
    Relay {
        user_name: b"carol".to_vec(),
        eap: hex!("0201000a016361726f6c").to_vec(),
        cont: state,
        client: "198.51.100.7:4500".parse().unwrap(),
        vip: "192.0.2.1".parse().unwrap(),
    }
}

fn servers() -> Vec<Server> {
    ["10.0.0.1:1812", "10.0.0.2:1812"]
        .iter()
        .map(|a| Server {
            addr: a.parse().unwrap(),
            secret: Zeroizing::new(b"shared".to_vec()),
        })
        .collect()
}

fn client() -> Client {
    Client::new(ClientConfig {
        servers: servers(),
        timeout: Duration::from_secs(1),
        retries: 2,
        revive_after: Duration::from_secs(30),
        nas_identifier: "ikelb".into(),
        nas_ip: None,
    })
}

/// Answers `packet` (an Access-Request) with `code` and `attrs`, as a server would.
fn answer(packet: &[u8], code: u8, attrs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let ra: [u8; 16] = packet[4..20].try_into().unwrap();
    encode_answer(code, packet[1], &ra, b"shared", attrs)
}

#[test]
fn client_challenge_then_accept_on_one_server() {
    let t0 = Instant::now();
    let mut c = client();
    c.start(t0, 7, relay(None));
    let tx = c.poll_transmit().unwrap();
    let s1: SocketAddr = "10.0.0.1:1812".parse().unwrap();
    assert_eq!(tx.server, s1);
    let reply = answer(
        &tx.payload,
        code::ACCESS_CHALLENGE,
        &[
            (attr::EAP_MESSAGE, hex!("010200061a01").to_vec()),
            (attr::STATE, b"state-1".to_vec()),
        ],
    );
    // From another address, or tampered: dropped and counted; the real one counts.
    assert_eq!(
        c.handle_datagram("10.0.0.9:1812".parse().unwrap(), &reply),
        None
    );
    let mut bad = reply.clone();
    bad[30] ^= 1;
    assert_eq!(
        c.handle_datagram(s1, &bad),
        Some(RadiusError::BadResponseAuthenticator)
    );
    assert_eq!(c.handle_datagram(s1, &reply), None);
    let (ticket, out) = c.poll_outcome().unwrap();
    assert_eq!(ticket, 7);
    let Outcome::Challenge { eap, cont } = out else {
        panic!("{out:?}")
    };
    assert_eq!(eap, hex!("010200061a01"));
    assert_eq!(cont.state.as_deref(), Some(&b"state-1"[..]));
    assert_eq!(c.stats().dropped_unmatched, 1);
    assert_eq!(c.stats().dropped_bad_response_authenticator, 1);
    // A late duplicate of the answer no longer matches anything.
    c.handle_datagram(s1, &reply);
    assert_eq!(c.stats().dropped_unmatched, 2);

    c.start(t0, 8, relay(Some(cont)));
    let tx = c.poll_transmit().unwrap();
    assert!(tx.payload.windows(9).any(|w| w == b"\x18\x09state-1"));
    let ra: [u8; 16] = tx.payload[4..20].try_into().unwrap();
    let reply = answer(
        &tx.payload,
        code::ACCESS_ACCEPT,
        &[
            (attr::EAP_MESSAGE, hex!("03020004").to_vec()),
            (
                attr::VENDOR_SPECIFIC,
                ms_mppe_attr(17, &encrypt_mppe_key(&[9; 32], [0x80, 0], &ra, b"shared")),
            ),
            (
                attr::VENDOR_SPECIFIC,
                ms_mppe_attr(16, &encrypt_mppe_key(&[8; 32], [0x80, 1], &ra, b"shared")),
            ),
        ],
    );
    c.handle_datagram(s1, &reply);
    let (ticket, Outcome::Accept { eap, msk }) = c.poll_outcome().unwrap() else {
        panic!()
    };
    assert_eq!((ticket, eap), (8, hex!("03020004").to_vec()));
    let msk = msk.unwrap();
    assert_eq!((&msk[..32], &msk[32..]), (&[9; 32][..], &[8; 32][..]));
    assert_eq!(c.pending(), 0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn client_answer_without_message_authenticator_is_dropped() {
    let t0 = Instant::now();
    let mut c = client();
    c.start(t0, 1, relay(None));
    let tx = c.poll_transmit().unwrap();
    // An Access-Reject with a right Response Authenticator but no Message-Authenticator.
    let ra: [u8; 16] = tx.payload[4..20].try_into().unwrap();
    let mut p = vec![code::ACCESS_REJECT, tx.payload[1], 0, 20];
    p.extend_from_slice(&ra);
    let sum: [u8; 16] = {
        use md5::Digest;
        let mut h = Md5::new();
        h.update(&p);
        h.update(b"shared");
        h.finalize().into()
    };
    p[4..20].copy_from_slice(&sum);
    assert_eq!(
        c.handle_datagram(tx.server, &p),
        Some(RadiusError::MissingMessageAuthenticator)
    );
    assert_eq!(c.stats().dropped_bad_message_authenticator, 1);
    assert!(c.poll_outcome().is_none());
    assert_eq!(c.pending(), 1);
}

#[test]
fn client_retransmits_fails_over_then_gives_up() {
    let t0 = Instant::now();
    let mut c = client();
    let s = servers();
    c.start(t0, 1, relay(None));
    let first = c.poll_transmit().unwrap();
    assert_eq!(first.server, s[0].addr);
    let mut t = t0;
    // Two retransmissions of the same bytes, one second apart.
    for _ in 0..2 {
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        assert_eq!(c.poll_transmit().unwrap(), first);
    }
    assert_eq!(t, t0 + Duration::from_secs(2));
    // Then the second server, a new packet.
    t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    let second = c.poll_transmit().unwrap();
    assert_eq!(second.server, s[1].addr);
    assert_ne!(second.payload[4..20], first.payload[4..20]);
    assert!(c.is_down(t, 0));
    assert_eq!(c.stats().failovers, 1);
    // The second answers: new conversations go there while the first is down.
    let reply = answer(&second.payload, code::ACCESS_REJECT, &[]);
    c.handle_datagram(second.server, &reply);
    assert_eq!(c.poll_outcome(), Some((1, Outcome::Reject { eap: vec![] })));
    c.start(t, 2, relay(None));
    assert_eq!(c.poll_transmit().unwrap().server, s[1].addr);
    // Both silent: the verdict comes at most servers × (retries + 1) × timeout later.
    let start = t;
    while c.poll_outcome().is_none() {
        t = c.poll_timeout().expect("a timer while pending");
        c.handle_timeout(t);
        while c.poll_transmit().is_some() {}
    }
    assert!(t - start <= Duration::from_secs(6), "{:?}", t - start);
    assert_eq!(c.stats().unreachable, 1);
    assert_eq!(c.pending(), 0);
}

#[test]
fn client_conversation_stays_with_its_server() {
    let t0 = Instant::now();
    let mut c = client();
    let cont = Continuation {
        server: 0,
        state: Some(b"x".to_vec()),
    };
    c.start(t0, 5, relay(Some(cont)));
    let mut t = t0;
    let mut sent_to = Vec::new();
    while c.poll_outcome().is_none() {
        while let Some(tx) = c.poll_transmit() {
            sent_to.push(tx.server);
        }
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
    }
    // Three copies to the first server, none to the second (its State means nothing
    // there); the verdict after 3 s.
    assert_eq!(sent_to, vec![servers()[0].addr; 3]);
    assert_eq!(t, t0 + Duration::from_secs(3));
}

#[test]
fn client_identifiers_run_out_per_server() {
    let t0 = Instant::now();
    let mut c = client();
    for i in 0..256 {
        c.start(t0, i, relay(None));
    }
    assert!(c.poll_outcome().is_none());
    c.start(t0, 999, relay(None));
    assert_eq!(c.poll_outcome(), Some((999, Outcome::Unreachable)));
    assert_eq!(c.stats().busy, 1);
}

#[test]
fn client_returns_to_a_revived_server() {
    let t0 = Instant::now();
    let mut c = client();
    let s = servers();
    c.start(t0, 1, relay(None));
    // The first server stays silent: three copies, then the second server.
    let mut t = t0;
    loop {
        let tx = c.poll_transmit().unwrap();
        if tx.server == s[1].addr {
            c.handle_datagram(tx.server, &answer(&tx.payload, code::ACCESS_REJECT, &[]));
            break;
        }
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
    }
    assert_eq!(c.poll_went_down(), Some(0));
    assert!(c.is_down(t, 0));
    // New conversations pass it over for `revive_after`, then try it again.
    c.start(t + Duration::from_secs(29), 2, relay(None));
    assert_eq!(c.poll_transmit().unwrap().server, s[1].addr);
    let later = t + Duration::from_secs(30);
    assert!(!c.is_down(later, 0));
    c.start(later, 3, relay(None));
    assert_eq!(c.poll_transmit().unwrap().server, s[0].addr);
    assert_eq!(c.poll_went_down(), None);
}
