//! Wire tests: a captured-layout request byte for byte, the RFC 7296 §2.5 rules,
//! proposal choice, and property tests (no input panics; `parse(to_bytes(m)) == m`).

use std::net::{Ipv4Addr, Ipv6Addr};

use hex_literal::hex;
use lb_common::wire::ike::{self as wire, ATTR_KEY_LENGTH, PROTO_ESP, PROTO_IKE};
use proptest::prelude::*;

use crate::ike::types::codec::MessageError;
use crate::ike::types::message::{Header, Message, Payload};
use crate::ike::types::natt::{NattPayload, classify_natt};
use crate::ike::types::payload::{
    AddrRange, Attribute, Auth, Cert, Delete, Encrypted, EncryptedFragment, Identification,
    KeyExchange, Notify, Proposal, TrafficSelector, Transform,
};
use crate::ike::types::proposal::{
    DhGroup, Encr, IkeChoice, IkeSuite, Integ, Prf, select_esp, select_ike,
};

/// The IKE part of docs/protocol.md §5.1 (IKE_SA_INIT from 192.0.2.10), 216 bytes.
const SA_INIT: [u8; 216] = hex!(
    "c0ffee0012345678 0000000000000000 21 20 22 08 00000000 000000d8"
    "22000028 00000024 01010003 0300000c 01000014 800e0100 03000008 02000005 00000008 0400001f"
    "28000028 001f0000 404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "29000024 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "2900001c 00004004 aed0c85c186db9efe29d4b553e8aa7bad9526425"
    "2900001c 00004005 335e0816da3a438510ea51c070bc21b46e1c0241"
    "29000008 0000402e"
    "00000008 00004016"
);

#[test]
fn parses_and_reemits_the_doc_request() {
    let m = Message::parse(&SA_INIT).unwrap();
    assert_eq!(
        m.header,
        Header {
            spi_i: hex!("c0ffee0012345678"),
            spi_r: [0; 8],
            exchange: wire::EXCHANGE_IKE_SA_INIT,
            initiator: true,
            response: false,
            message_id: 0,
        }
    );
    let kinds: Vec<u8> = m.payloads.iter().map(Payload::kind).collect();
    assert_eq!(
        kinds,
        [
            wire::PAYLOAD_SA,
            wire::PAYLOAD_KE,
            wire::PAYLOAD_NONCE,
            41,
            41,
            41,
            41
        ]
    );
    let Payload::Sa(sa) = &m.payloads[0] else {
        panic!("SA first")
    };
    assert_eq!(sa[0].transforms[0].key_length(), Some(256));
    assert_eq!(
        m.payloads[1],
        Payload::Ke(KeyExchange {
            group: 31,
            data: (0x40..0x60).collect()
        })
    );
    assert_eq!(m.payloads[2], Payload::Nonce((0xa0..0xc0).collect()));
    assert!(m.find_notify(wire::NOTIFY_REDIRECT_SUPPORTED).is_some());
    assert!(
        m.find_notify(wire::NOTIFY_FRAGMENTATION_SUPPORTED)
            .is_some()
    );
    assert_eq!(
        m.find_notify(wire::NOTIFY_NAT_DETECTION_SOURCE_IP)
            .unwrap()
            .data,
        hex!("aed0c85c186db9efe29d4b553e8aa7bad9526425")
    );
    assert!(m.find_notify(wire::NOTIFY_COOKIE).is_none());
    assert_eq!(m.to_bytes().unwrap(), SA_INIT);

    let suite = IkeSuite {
        number: 1,
        encr: Encr::AesGcm16_256,
        prf: Prf::HmacSha256,
        integ: None,
        dh: DhGroup::Curve25519,
    };
    assert_eq!(select_ike(sa, 31), IkeChoice::Accept(suite));
    // Our answer's SA payload is the 40 bytes the doc counts for one AEAD proposal.
    let mut sa_r = Vec::new();
    crate::ike::types::message::emit_chain(&[Payload::Sa(vec![suite.to_proposal()])], &mut sa_r)
        .unwrap();
    // (Its Next Payload byte is 0 here: it is alone in the chain.)
    assert_eq!(sa_r[1..], SA_INIT[29..68]);
}

#[test]
fn every_truncation_and_overrun_is_an_error() {
    for n in 0..SA_INIT.len() {
        assert!(Message::parse(&SA_INIT[..n]).is_err(), "prefix {n}");
    }
    let mut long = SA_INIT.to_vec();
    long.push(0);
    assert_eq!(Message::parse(&long), Err(MessageError::Length));
    // Header length agrees with the datagram but the last payload claims one byte more.
    let mut over = SA_INIT;
    over[215 - 5] = 9;
    assert_eq!(Message::parse(&over), Err(MessageError::Truncated));
    // A payload length below the generic header.
    let mut under = SA_INIT;
    under[28 + 3] = 3;
    assert_eq!(Message::parse(&under), Err(MessageError::Length));
    // Nonces outside 16..=256 bytes.
    let short = Payload::Other {
        kind: wire::PAYLOAD_NONCE,
        body: vec![0; 15],
    };
    let m = Message {
        header: Message::parse(&SA_INIT).unwrap().header,
        payloads: vec![short],
    };
    assert_eq!(
        Message::parse(&m.to_bytes().unwrap()),
        Err(MessageError::Syntax("nonce length"))
    );
}

#[test]
fn version_and_flags_follow_rfc7296_3_1() {
    let mut v = SA_INIT;
    v[17] = 0x30;
    assert_eq!(Message::parse(&v), Err(MessageError::MajorVersion(0x30)));
    assert_eq!(
        MessageError::MajorVersion(0x30).notify(),
        (wire::NOTIFY_INVALID_MAJOR_VERSION, vec![])
    );
    // Minor version, V and reserved flag bits are ignored.
    v[17] = 0x21;
    v[19] = 0x08 | 0x10 | 0x07;
    assert_eq!(
        Message::parse(&v).unwrap(),
        Message::parse(&SA_INIT).unwrap()
    );
}

/// RFC 7296 §2.5: unknown non-critical payloads are skipped (kept as `Other`), unknown
/// critical ones reject the message, and a known type ignores the C bit.
#[test]
fn critical_bit_rules() {
    let header = Message::parse(&SA_INIT).unwrap().header;
    let m = Message {
        header,
        payloads: vec![
            Payload::Other {
                kind: 200,
                body: vec![1, 2],
            },
            Payload::VendorId(vec![7]),
        ],
    };
    let bytes = m.to_bytes().unwrap();
    assert_eq!(Message::parse(&bytes).unwrap(), m);
    let mut critical = bytes.clone();
    critical[wire::HEADER_LEN + 1] = wire::CRITICAL;
    let err = Message::parse(&critical).unwrap_err();
    assert_eq!(err, MessageError::UnsupportedCritical(200));
    assert_eq!(
        err.notify(),
        (wire::NOTIFY_UNSUPPORTED_CRITICAL_PAYLOAD, vec![200])
    );
    let mut known = SA_INIT;
    known[28 + 1] = wire::CRITICAL;
    assert_eq!(
        Message::parse(&known).unwrap(),
        Message::parse(&SA_INIT).unwrap()
    );
    // CP (47) is a known type we do not model: kept even when critical.
    let mut cp = bytes;
    cp[16] = 47;
    cp[wire::HEADER_LEN + 1] = wire::CRITICAL;
    assert_eq!(
        Message::parse(&cp).unwrap().payloads[0],
        Payload::Other {
            kind: 47,
            body: vec![1, 2]
        }
    );
}

#[test]
fn sk_must_be_last() {
    let header = Message::parse(&SA_INIT).unwrap().header;
    let sk = Payload::Encrypted(Encrypted {
        first: wire::PAYLOAD_IDI,
        data: vec![0; 40],
    });
    let m = Message {
        header,
        payloads: vec![Payload::VendorId(vec![1]), sk.clone()],
    };
    assert_eq!(Message::parse(&m.to_bytes().unwrap()).unwrap(), m);
    let bad = Message {
        header,
        payloads: vec![sk, Payload::VendorId(vec![1])],
    };
    assert_eq!(
        bad.to_bytes(),
        Err(MessageError::Syntax("SK payload not last"))
    );
}

#[test]
fn natt_datagrams_are_told_apart() {
    assert_eq!(classify_natt(&[0xff]), NattPayload::Keepalive);
    assert_eq!(
        classify_natt(&[0, 0, 0, 0, 1, 2]),
        NattPayload::Ike(&[1, 2])
    );
    assert_eq!(classify_natt(&[0, 0, 0, 1, 1, 2]), NattPayload::Esp);
}

fn t(kind: u8, id: u16) -> Transform {
    Transform {
        kind,
        id,
        attributes: vec![],
    }
}

fn keylen(kind: u8, id: u16, bits: u16) -> Transform {
    Transform {
        kind,
        id,
        attributes: vec![Attribute::Tv {
            kind: ATTR_KEY_LENGTH,
            value: bits,
        }],
    }
}

fn prop(number: u8, protocol: u8, spi: Vec<u8>, transforms: Vec<Transform>) -> Proposal {
    Proposal {
        number,
        protocol,
        spi,
        transforms,
    }
}

#[test]
fn ike_proposal_choice() {
    use lb_common::wire::ike::{
        TRANSFORM_DH as DH, TRANSFORM_ENCR as ENCR, TRANSFORM_INTEG as INTEG, TRANSFORM_PRF as PRF,
    };
    // strongSwan's default order: CBC with several INTEG first, then a GCM proposal.
    let cbc = prop(
        1,
        PROTO_IKE,
        vec![],
        vec![
            keylen(ENCR, 12, 128),
            keylen(ENCR, 12, 192),
            t(INTEG, 2),
            t(INTEG, 12),
            t(PRF, 2),
            t(PRF, 5),
            t(DH, 19),
            t(DH, 31),
        ],
    );
    let gcm = prop(
        2,
        PROTO_IKE,
        vec![],
        vec![keylen(ENCR, 20, 256), t(PRF, 7), t(DH, 14)],
    );
    let offer = [cbc, gcm];
    let cbc_suite = IkeSuite {
        number: 1,
        encr: Encr::AesCbc128,
        prf: Prf::HmacSha256,
        integ: Some(Integ::HmacSha256_128),
        dh: DhGroup::Curve25519,
    };
    assert_eq!(select_ike(&offer, 31), IkeChoice::Accept(cbc_suite));
    assert_eq!(
        select_ike(&offer, 14),
        IkeChoice::Accept(IkeSuite {
            number: 2,
            encr: Encr::AesGcm16_256,
            prf: Prf::HmacSha512,
            integ: None,
            dh: DhGroup::Modp2048
        })
    );
    // KE for a group no acceptable proposal lists: ask for the first one that fits.
    assert_eq!(select_ike(&offer, 2), IkeChoice::InvalidKe(DhGroup::Ecp256));
    // Nothing we speak: 3DES, or AES without a key length, or a GCM proposal with INTEG.
    let none = [
        prop(
            1,
            PROTO_IKE,
            vec![],
            vec![t(ENCR, 3), t(PRF, 5), t(INTEG, 12), t(DH, 14)],
        ),
        prop(
            2,
            PROTO_IKE,
            vec![],
            vec![t(ENCR, 12), t(PRF, 5), t(INTEG, 12), t(DH, 14)],
        ),
        prop(
            3,
            PROTO_IKE,
            vec![],
            vec![keylen(ENCR, 20, 128), t(PRF, 5), t(INTEG, 12), t(DH, 14)],
        ),
        prop(
            4,
            PROTO_IKE,
            vec![],
            vec![keylen(ENCR, 20, 128), t(PRF, 5), t(DH, 14), t(9, 1)],
        ),
        prop(
            5,
            PROTO_ESP,
            vec![],
            vec![keylen(ENCR, 20, 128), t(PRF, 5), t(DH, 14)],
        ),
    ];
    assert_eq!(select_ike(&none, 14), IkeChoice::NoProposalChosen);
    assert_eq!(cbc_suite.to_proposal().transforms.len(), 4);
}

#[test]
fn esp_proposal_choice() {
    use lb_common::wire::ike::{
        TRANSFORM_DH as DH, TRANSFORM_ENCR as ENCR, TRANSFORM_ESN as ESN, TRANSFORM_INTEG as INTEG,
    };
    let offer = [
        prop(
            1,
            PROTO_ESP,
            vec![1, 2, 3, 4],
            vec![keylen(ENCR, 20, 192), t(ESN, 0)],
        ),
        prop(
            2,
            PROTO_ESP,
            vec![5, 6, 7, 8],
            vec![
                keylen(ENCR, 12, 256),
                t(INTEG, 13),
                t(DH, 31),
                t(ESN, 1),
                t(ESN, 0),
            ],
        ),
    ];
    let esp = select_esp(&offer).unwrap();
    assert_eq!(
        (esp.number, esp.peer_spi, esp.encr, esp.integ, esp.esn),
        (
            2,
            [5, 6, 7, 8],
            Encr::AesCbc256,
            Some(Integ::HmacSha384_192),
            Some(false)
        )
    );
    let ours = esp.to_proposal([9, 9, 9, 9]);
    assert_eq!(ours.spi, [9, 9, 9, 9]);
    assert_eq!(
        ours.transforms.iter().map(|t| t.kind).collect::<Vec<_>>(),
        [ENCR, INTEG, ESN]
    );
    assert!(select_esp(&[prop(1, PROTO_ESP, vec![1, 2], vec![keylen(ENCR, 20, 128)])]).is_none());
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn transform_strategy() -> impl Strategy<Value = Transform> {
    let attr = prop_oneof![
        (0..0x8000u16, any::<u16>()).prop_map(|(kind, value)| Attribute::Tv { kind, value }),
        (0..0x8000u16, bytes(6)).prop_map(|(kind, value)| Attribute::Tlv { kind, value }),
    ];
    (1..6u8, any::<u16>(), prop::collection::vec(attr, 0..3)).prop_map(|(kind, id, attributes)| {
        Transform {
            kind,
            id,
            attributes,
        }
    })
}

fn ts_strategy() -> impl Strategy<Value = TrafficSelector> {
    let range = prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| AddrRange::V4(Ipv4Addr::from(a), Ipv4Addr::from(b))),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| AddrRange::V6(Ipv6Addr::from(a), Ipv6Addr::from(b))),
    ];
    (any::<u8>(), any::<u16>(), any::<u16>(), range).prop_map(
        |(ip_protocol, start_port, end_port, range)| TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            range,
        },
    )
}

fn payload_strategy() -> impl Strategy<Value = Payload> {
    let proposal = (
        any::<u8>(),
        any::<u8>(),
        bytes(9),
        prop::collection::vec(transform_strategy(), 0..4),
    )
        .prop_map(|(number, protocol, spi, transforms)| Proposal {
            number,
            protocol,
            spi,
            transforms,
        });
    let other_kind = prop_oneof![1..33u8, 47..49u8, 49..53u8, 54..=255u8];
    prop_oneof![
        prop::collection::vec(proposal, 1..3).prop_map(Payload::Sa),
        (any::<u16>(), bytes(40))
            .prop_map(|(group, data)| Payload::Ke(KeyExchange { group, data })),
        (any::<u8>(), bytes(20))
            .prop_map(|(kind, data)| Payload::IdI(Identification { kind, data })),
        (any::<u8>(), bytes(20))
            .prop_map(|(kind, data)| Payload::IdR(Identification { kind, data })),
        (any::<u8>(), bytes(20))
            .prop_map(|(encoding, data)| Payload::Cert(Cert { encoding, data })),
        (any::<u8>(), bytes(20))
            .prop_map(|(encoding, data)| Payload::CertReq(Cert { encoding, data })),
        (any::<u8>(), bytes(20)).prop_map(|(method, data)| Payload::Auth(Auth { method, data })),
        prop::collection::vec(any::<u8>(), 16..=256).prop_map(Payload::Nonce),
        (any::<u8>(), bytes(9), any::<u16>(), bytes(20)).prop_map(|(protocol, spi, kind, data)| {
            Payload::Notify(Notify {
                protocol,
                spi,
                kind,
                data,
            })
        }),
        Just(Payload::Delete(Delete::Ike)),
        prop::collection::vec(any::<[u8; 4]>(), 0..4).prop_map(|spis| Payload::Delete(
            Delete::Child {
                protocol: PROTO_ESP,
                spis
            }
        )),
        bytes(20).prop_map(Payload::VendorId),
        prop::collection::vec(ts_strategy(), 0..3).prop_map(Payload::TsI),
        prop::collection::vec(ts_strategy(), 0..3).prop_map(Payload::TsR),
        (other_kind, bytes(20)).prop_map(|(kind, body)| Payload::Other { kind, body }),
    ]
}

fn message_strategy() -> impl Strategy<Value = Message> {
    let header = (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(
            |(spi_i, spi_r, exchange, initiator, response, message_id)| Header {
                spi_i,
                spi_r,
                exchange,
                initiator,
                response,
                message_id,
            },
        );
    let last = prop_oneof![
        Just(None),
        (1..=255u8, bytes(60))
            .prop_map(|(first, data)| Some(Payload::Encrypted(Encrypted { first, data }))),
        (1..4u16, 0..4u16, any::<u8>(), bytes(60)).prop_map(|(number, extra, first, data)| {
            Some(Payload::EncryptedFragment(EncryptedFragment {
                number,
                total: number + extra,
                first,
                data,
            }))
        }),
    ];
    (
        header,
        prop::collection::vec(payload_strategy(), 0..6),
        last,
    )
        .prop_map(|(header, mut payloads, last)| {
            payloads.extend(last);
            Message { header, payloads }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(m in message_strategy()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(Message::parse(&bytes), Ok(m));
    }

    #[test]
    fn random_bytes_never_panic(data in bytes(400)) {
        let _ = Message::parse(&data);
    }

    /// Mutations of a valid request: whatever parses re-emits to bytes that parse the same.
    #[test]
    fn mutated_request_never_panics(edits in prop::collection::vec((0..SA_INIT.len(), any::<u8>()), 1..6), cut in 0..=SA_INIT.len()) {
        let mut data = SA_INIT.to_vec();
        for (at, v) in edits {
            data[at] = v;
        }
        data.truncate(cut);
        if let Ok(m) = Message::parse(&data) {
            let again = m.to_bytes().unwrap();
            prop_assert_eq!(Message::parse(&again), Ok(m));
        }
    }
}

/// The notify numbers against the table of docs/protocol.md §1.5 (RFC 7296 §3.10.1,
/// RFC 5685 §9, RFC 7383).
#[test]
fn notify_numbers_match_the_protocol_doc() {
    let table = [
        (wire::NOTIFY_UNSUPPORTED_CRITICAL_PAYLOAD, 1),
        (wire::NOTIFY_INVALID_MAJOR_VERSION, 5),
        (wire::NOTIFY_INVALID_SYNTAX, 7),
        (wire::NOTIFY_NO_PROPOSAL_CHOSEN, 14),
        (wire::NOTIFY_INVALID_KE_PAYLOAD, 17),
        (wire::NOTIFY_AUTHENTICATION_FAILED, 24),
        (wire::NOTIFY_NAT_DETECTION_SOURCE_IP, 16388),
        (wire::NOTIFY_NAT_DETECTION_DESTINATION_IP, 16389),
        (wire::NOTIFY_COOKIE, 16390),
        (wire::NOTIFY_REDIRECT_SUPPORTED, 16406),
        (wire::NOTIFY_REDIRECT, 16407),
        (wire::NOTIFY_REDIRECTED_FROM, 16408),
        (wire::NOTIFY_FRAGMENTATION_SUPPORTED, 16430),
    ];
    for (got, want) in table {
        assert_eq!(got, want);
    }
}
