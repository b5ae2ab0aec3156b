//! Test vectors of the load report.

extern crate std;
use super::*;
use std::{vec, vec::Vec};

// A report from member 7 with key 2: IPv4 192.0.2.7 and FQDN "gw7", 120 of 1000 SAs,
// weight 1, CPU 25.0 %, overload limit 90 %, not draining; tag 0xaa….
static BYTES: [u8; 71] = [
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
            overload_pct: 90,
            drain: false,
        },
    }
}

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&BYTES[..]).unwrap();
    assert_eq!(p.version(), 1);
    assert_eq!(p.key_id(), 2);
    assert_eq!(p.member_id(), 7);
    assert_eq!(p.seq(), 256);
    assert_eq!(p.timestamp_ms(), 0x18f_0000_0000);
    assert_eq!(p.active_sas(), 120);
    assert_eq!(p.capacity(), 1000);
    assert_eq!(p.weight(), 1);
    assert_eq!(p.cpu_permille(), 250);
    assert_eq!(p.overload_pct(), 90);
    assert_eq!(p.idents_len(), 11);
    assert_eq!(p.signed(), &BYTES[..55]);
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
    for cut in 0..BYTES.len() {
        assert_eq!(
            Packet::new_checked(&BYTES[..cut]),
            Err(Error::Truncated),
            "{cut}"
        );
        let p = Packet::new_unchecked(&BYTES[..cut]);
        assert!(Repr::parse(&p).is_err());
    }
    let mut long = BYTES.to_vec();
    long.push(0);
    assert_eq!(Packet::new_checked(&long[..]), Err(Error::Length));
}

#[test]
fn bad_version_and_identities() {
    let mut b = BYTES;
    b[0] = 2;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&b[..])),
        Err(Error::Version)
    );
    // IPv4 identity claiming 5 bytes.
    let mut b = BYTES;
    b[45] = 5;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&b[..])),
        Err(Error::Identity)
    );
    // FQDN running past the list.
    let mut b = BYTES;
    b[51] = 4;
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(&b[..])),
        Err(Error::Identity)
    );
    // Empty FQDN.
    let mut b = BYTES;
    b[51] = 0;
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
        x = crate::wire::request::mix64(x);
        let len = (x % 120) as usize;
        let mut b = [0u8; 120];
        for (i, v) in b.iter_mut().enumerate() {
            *v = crate::wire::request::mix64(x ^ i as u64) as u8;
        }
        b[0] = VERSION;
        b[40] = 0;
        b[41] = (x >> 8) as u8 % 80;
        let p = Packet::new_unchecked(&b[..len]);
        if let Ok(r) = Repr::parse(&p) {
            assert!(r.identities.len() <= IDENTITIES_MAX);
            assert_eq!(r.buffer_len(), len);
        }
    }
}
