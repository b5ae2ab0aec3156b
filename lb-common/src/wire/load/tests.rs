//! Test vectors of the load report.

extern crate std;
use super::*;
use std::{vec, vec::Vec};

// A report from member 7 with key 2: IPv4 192.0.2.7 and FQDN "gw7", 120 of 1000 SAs,
// weight 1, CPU 25.0 %, memory 40.0 %, crypto limit 90 %, system limit 95 %, crypto
// load weight 100, system load weight 50, not draining; tag 0xaa….
static BYTES: [u8; 75] = [
    0x02, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07, // version, flags, key, member
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // seq 256
    0x00, 0x00, 0x01, 0x8f, 0x00, 0x00, 0x00, 0x00, // timestamp
    0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x03, 0xe8, // 120 SAs, capacity 1000
    0x00, 0x00, 0x00, 0x01, 0x00, 0xfa, 0x00, 0x5a, // weight 1, 250 ‰, 90 %
    0x00, 0x0b, 0x01, 0x90, 0x00, 0x5f, 0x64, 0x32, // idents 11 bytes, 400 ‰, 95 %, 100, 50
    0x01, 0x04, 192, 0, 2, 7, // IPv4
    0x03, 0x03, b'g', b'w', b'7', // FQDN
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, // tag
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
];

// The same member as an older one reports it (version 1): one overload limit of 90 %.
static BYTES_V1: [u8; 71] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07, // version, flags, key, member
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // seq 256
    0x00, 0x00, 0x01, 0x8f, 0x00, 0x00, 0x00, 0x00, // timestamp
    0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x03, 0xe8, // 120 SAs, capacity 1000
    0x00, 0x00, 0x00, 0x01, 0x00, 0xfa, 0x00, 0x5a, // weight 1, 250 ‰, 90 %
    0x00, 0x0b, 0x00, 0x00, // idents 11 bytes, reserved
    0x01, 0x04, 192, 0, 2, 7, // IPv4
    0x03, 0x03, b'g', b'w', b'7', // FQDN
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, // tag
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
];

static IDS: [Identity<'static>; 2] = [Identity::Ipv4([192, 0, 2, 7]), Identity::Fqdn(b"gw7")];

fn repr() -> Repr<'static> {
    Repr {
        key_id: 2,
        member_id: 7,
        seq: 256,
        timestamp_ms: 0x18f_0000_0000,
        identities: Identities::Slice(&IDS),
        figures: Figures {
            active_sas: 120,
            capacity: 1000,
            weight: 1,
            cpu_permille: 250,
            memory_permille: 400,
            crypto_overload_pct: 90,
            system_overload_pct: 95,
            crypto_load_weight: 100,
            system_load_weight: 50,
            drain: false,
        },
    }
}

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&BYTES[..]).unwrap();
    assert_eq!(p.version(), 2);
    assert_eq!(p.header_len(), 48);
    assert_eq!(p.key_id(), 2);
    assert_eq!(p.member_id(), 7);
    assert_eq!(p.seq(), 256);
    assert_eq!(p.timestamp_ms(), 0x18f_0000_0000);
    assert_eq!(p.active_sas(), 120);
    assert_eq!(p.capacity(), 1000);
    assert_eq!(p.weight(), 1);
    assert_eq!(p.cpu_permille(), 250);
    assert_eq!(p.crypto_overload_pct(), 90);
    assert_eq!(p.memory_permille(), 400);
    assert_eq!(p.system_overload_pct(), 95);
    assert_eq!(p.crypto_load_weight(), 100);
    assert_eq!(p.system_load_weight(), 50);
    assert_eq!(p.idents_len(), 11);
    assert_eq!(p.identities(), &BYTES[48..59]);
    assert_eq!(p.signed(), &BYTES[..59]);
    assert_eq!(p.tag(), &[0xaa; 16]);
}

#[test]
fn deconstruct_version_1() {
    let p = Packet::new_checked(&BYTES_V1[..]).unwrap();
    assert_eq!(p.version(), 1);
    assert_eq!(p.header_len(), 44);
    assert_eq!(p.key_id(), 2);
    assert_eq!(p.member_id(), 7);
    assert_eq!(p.seq(), 256);
    assert_eq!(p.timestamp_ms(), 0x18f_0000_0000);
    assert_eq!(p.active_sas(), 120);
    assert_eq!(p.capacity(), 1000);
    assert_eq!(p.weight(), 1);
    assert_eq!(p.cpu_permille(), 250);
    assert_eq!(p.crypto_overload_pct(), 90);
    assert_eq!(p.idents_len(), 11);
    assert_eq!(p.signed(), &BYTES_V1[..55]);
    assert_eq!(p.tag(), &[0xaa; 16]);
}

#[test]
fn parse_and_emit() {
    let p = Packet::new_checked(&BYTES[..]).unwrap();
    let r = Repr::parse(&p).unwrap();
    assert_eq!(r, repr());
    assert_eq!(r.identities.iter().collect::<Vec<_>>(), IDS);
    let mut buf = vec![0xffu8; repr().buffer_len()];
    let mut q = Packet::new_unchecked(&mut buf[..]);
    repr().emit(&mut q).unwrap();
    q.set_tag(&[0xaa; 16]);
    assert_eq!(buf, BYTES);
}

/// An older member's report: its one limit becomes the crypto limit, its CPU is kept
/// but not weighed, memory and weights take the version-1 reading.
#[test]
fn version_1_reads_as_crypto_load() {
    let p = Packet::new_checked(&BYTES_V1[..]).unwrap();
    let r = Repr::parse(&p).unwrap();
    let want = Figures {
        memory_permille: 0,
        system_overload_pct: 90,
        crypto_load_weight: 100,
        system_load_weight: 0,
        ..repr().figures
    };
    assert_eq!(r.figures, want);
    assert_eq!(r.identities.iter().collect::<Vec<_>>(), IDS);
    assert_eq!((r.key_id, r.member_id, r.seq), (2, 7, 256));
    // A limit above 100 % of SAs is no system limit above 100 %.
    let mut b = BYTES_V1;
    b[39] = 0xc8;
    let p = Packet::new_unchecked(&b[..]);
    let r = Repr::parse(&p).unwrap();
    assert_eq!(
        (r.figures.crypto_overload_pct, r.figures.system_overload_pct),
        (200, 100)
    );
}

#[test]
fn round_trip_variants() {
    let fqdn = [b'x'; IDENT_MAX];
    let sets: [&[Identity<'_>]; 4] = [
        &[Identity::Ipv6([
            0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ])],
        &[Identity::Fqdn(&fqdn); IDENTITIES_MAX],
        &[Identity::Unknown(9, b""), Identity::Ipv4([10, 0, 0, 1])],
        &IDS,
    ];
    for ids in sets {
        let mut r = repr();
        r.identities = Identities::Slice(ids);
        r.figures.drain = true;
        r.figures.system_load_weight = 0xff;
        r.figures.memory_permille = u16::MAX;
        r.seq = u64::MAX;
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        assert!(buf.len() <= REPORT_LEN_MAX);
    }
}

#[test]
fn every_truncation_and_extension_is_err() {
    for bytes in [&BYTES[..], &BYTES_V1[..]] {
        for cut in 0..bytes.len() {
            assert_eq!(
                Packet::new_checked(&bytes[..cut]),
                Err(Error::Truncated),
                "{cut}"
            );
            let p = Packet::new_unchecked(&bytes[..cut]);
            assert!(Repr::parse(&p).is_err());
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(Packet::new_checked(&long[..]), Err(Error::Length));
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&long[..])),
            Err(Error::Length)
        );
    }
    // A version-2 header is 4 bytes longer: version 1's bytes under version 2 are short.
    let mut b = BYTES_V1;
    b[0] = 2;
    assert_eq!(Packet::new_checked(&b[..]), Err(Error::Truncated));
}

#[test]
fn bad_version_and_identities() {
    for v in [0, 3, 0xff] {
        let mut b = BYTES;
        b[0] = v;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Version)
        );
    }
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&[][..])),
        Err(Error::Truncated)
    );
    // IPv4 identity claiming 5 bytes.
    let mut b = BYTES;
    b[49] = 5;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&b[..])),
        Err(Error::Identity)
    );
    // FQDN running past the list.
    let mut b = BYTES;
    b[55] = 4;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&b[..])),
        Err(Error::Identity)
    );
    // Empty FQDN.
    let mut b = BYTES;
    b[55] = 0;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&b[..])),
        Err(Error::Identity)
    );
}

#[test]
fn emit_refuses_bad_input() {
    let r = repr();
    let mut short = vec![0u8; r.buffer_len() - 1];
    assert_eq!(
        r.emit(&mut Packet::new_unchecked(&mut short[..])),
        Err(Error::Length)
    );
    let mut r = repr();
    r.identities = Identities::Slice(&[]);
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(
        r.emit(&mut Packet::new_unchecked(&mut buf[..])),
        Err(Error::Identity)
    );
    let five = [Identity::Ipv4([1, 2, 3, 4]); IDENTITIES_MAX + 1];
    r.identities = Identities::Slice(&five);
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(
        r.emit(&mut Packet::new_unchecked(&mut buf[..])),
        Err(Error::Identity)
    );
    let long = [b'x'; IDENT_MAX + 1];
    let one = [Identity::Fqdn(&long)];
    r.identities = Identities::Slice(&one);
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(
        r.emit(&mut Packet::new_unchecked(&mut buf[..])),
        Err(Error::Identity)
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        x = crate::hash::mix64(x);
        let len = (x % 120) as usize;
        let mut b = [0u8; 120];
        for (i, v) in b.iter_mut().enumerate() {
            *v = crate::hash::mix64(x ^ i as u64) as u8;
        }
        b[0] = VERSION_MIN + (x >> 16) as u8 % 2;
        b[40] = 0;
        b[41] = (x >> 8) as u8 % 80;
        let p = Packet::new_unchecked(&b[..len]);
        if let Ok(r) = Repr::parse(&p) {
            assert!(r.identities.len() <= IDENTITIES_MAX);
            let end = field::tag(p.header_len(), r.identities.wire_len()).end;
            assert_eq!(end, len);
            if b[0] == VERSION {
                assert_eq!(r.buffer_len(), len);
            }
        }
    }
}
