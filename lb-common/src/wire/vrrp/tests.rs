//! Byte-exact vectors from docs/protocol.md §3.4 and §5.3 in every checksum form.

extern crate std;
use super::*;
use std::vec::Vec;

const A_SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
const GROUP: IpAddr = IpAddr::V4(GROUP_V4);
const VIP: [u8; 4] = [198, 51, 100, 1];

/// docs/protocol.md §5.3 bytes 34.., variant A (checksum 0x405b).
static ADVERT_A: [u8; 12] = [
    0x31, 0x0a, 0x64, 0x01, 0x00, 0x64, 0x40, 0x5b, 0xc6, 0x33, 0x64, 0x01,
];
/// The same advert, variant B (checksum 0x3596).
static ADVERT_B: [u8; 12] = [
    0x31, 0x0a, 0x64, 0x01, 0x00, 0x64, 0x35, 0x96, 0xc6, 0x33, 0x64, 0x01,
];
/// docs/protocol.md §3.4: an IPv4 header and advert keepalived 2.2.7 accepted
/// (10.55.0.100 → 224.0.0.18, VRID 51, priority 200, 10 cs, VIP 10.55.0.1, B 0x115f).
static KEEPALIVED_ACCEPTED: [u8; 32] = [
    0x45, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x00, 0x0a, 0x37, 0x00, 0x64,
    0xe0, 0x00, 0x00, 0x12, 0x31, 0x33, 0xc8, 0x01, 0x00, 0x0a, 0x11, 0x5f, 0x0a, 0x37, 0x00, 0x01,
];
/// fe80::2 → ff02::12, VRID 10, priority 100, 100 cs, fe80::1 and 2001:db8::1;
/// checksum 0x4023 from an independent script, tshark calls it correct.
static ADVERT_V6: [u8; 40] = [
    0x31, 0x0a, 0x64, 0x02, 0x00, 0x64, 0x40, 0x23, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&ADVERT_B[..], Family::V4).unwrap();
    assert_eq!((p.version(), p.msg_type()), (3, 1));
    assert_eq!((p.vrid(), p.priority(), p.addr_count()), (10, 100, 1));
    assert_eq!(p.max_adver_int(), 100);
    assert_eq!(p.checksum(), 0x3596);
    assert_eq!(p.addr_bytes(), &VIP);
    assert_eq!(p.family(), Family::V4);
}

#[test]
fn construct() {
    let mut buf = [0xa5u8; 12];
    let mut p = Packet::new_unchecked(&mut buf[..], Family::V4);
    p.set_version_type(3, 1);
    p.set_vrid(10);
    p.set_priority(100);
    p.set_addr_count(1);
    p.set_max_adver_int(100);
    p.addr_bytes_mut().copy_from_slice(&VIP);
    p.fill_checksum(A_SRC, GROUP, ChecksumForm::Plain).unwrap();
    assert_eq!(p.into_inner(), &ADVERT_A[..]);
    let mut p = Packet::new_unchecked(&mut buf[..], Family::V4);
    p.fill_checksum(A_SRC, GROUP, ChecksumForm::Pseudo).unwrap();
    assert_eq!(buf, ADVERT_B);
}

#[test]
fn reserved_bits_are_ignored_and_written_zero() {
    let mut buf = ADVERT_B;
    buf[4] |= 0xf0;
    let mut p = Packet::new_checked(&mut buf[..], Family::V4).unwrap();
    assert_eq!(p.max_adver_int(), 100);
    p.set_max_adver_int(0xffff);
    assert_eq!(buf[4..6], [0x0f, 0xff]);
}

#[test]
fn parse_both_variants_of_the_vector() {
    for (bytes, form) in [
        (&ADVERT_A, ChecksumForm::Plain),
        (&ADVERT_B, ChecksumForm::Pseudo),
    ] {
        let p = Packet::new_checked(&bytes[..], Family::V4).unwrap();
        let (r, got) = Repr::parse(&p, A_SRC, GROUP).unwrap();
        assert_eq!(got, form);
        assert_eq!((r.vrid, r.priority, r.max_adver_int), (10, 100, 100));
        assert_eq!(r.addrs.count(), 1);
        assert_eq!(r.addrs.iter().collect::<Vec<_>>(), [v4(VIP)]);
    }
}

#[test]
fn emit_both_variants_of_the_vector() {
    let addrs = AddrList::new(Family::V4, &VIP).unwrap();
    let r = Repr {
        vrid: 10,
        priority: 100,
        max_adver_int: 100,
        addrs,
    };
    assert_eq!(r.buffer_len(), 12);
    for (bytes, form) in [
        (&ADVERT_A, ChecksumForm::Plain),
        (&ADVERT_B, ChecksumForm::Pseudo),
    ] {
        let mut buf = [0xffu8; 12];
        r.emit(
            &mut Packet::new_unchecked(&mut buf[..], Family::V4),
            A_SRC,
            GROUP,
            form,
        )
        .unwrap();
        assert_eq!(&buf, bytes);
    }
}

#[test]
fn keepalived_accepted_vector() {
    let src = v4([10, 55, 0, 100]);
    let vrrp = &KEEPALIVED_ACCEPTED[20..];
    let p = Packet::new_checked(vrrp, Family::V4).unwrap();
    let (r, form) = Repr::parse(&p, src, GROUP).unwrap();
    assert_eq!(form, ChecksumForm::Pseudo);
    assert_eq!((r.vrid, r.priority, r.max_adver_int), (51, 200, 10));
    assert_eq!(r.addrs.as_bytes(), &[10, 55, 0, 1]);
    // The A form of the same advert (which keepalived 2.2.7 rejects) is 0xfc88.
    let mut buf = [0u8; 12];
    r.emit(
        &mut Packet::new_unchecked(&mut buf[..], Family::V4),
        src,
        GROUP,
        ChecksumForm::Plain,
    )
    .unwrap();
    assert_eq!(buf[6..8], [0xfc, 0x88]);
    assert_eq!(
        Packet::new_checked(&buf[..], Family::V4)
            .unwrap()
            .verify_checksum(src, GROUP),
        Some(ChecksumForm::Plain)
    );
}

#[test]
fn unicast_forms() {
    // Same advert sent unicast 10.55.0.100 → 10.55.0.101: B with the real destination
    // is 0xe6d5, B with 224.0.0.18 is 0x115f, A is 0xfc88 (independent script).
    let (src, dst) = (v4([10, 55, 0, 100]), v4([10, 55, 0, 101]));
    let mut buf: [u8; 12] = KEEPALIVED_ACCEPTED[20..].try_into().unwrap();
    for (value, form) in [
        (0xe6d5, ChecksumForm::Pseudo),
        (0x115f, ChecksumForm::PseudoGroup),
        (0xfc88, ChecksumForm::Plain),
    ] {
        let mut p = Packet::new_unchecked(&mut buf[..], Family::V4);
        p.fill_checksum(src, dst, form).unwrap();
        assert_eq!(p.checksum(), value, "{form:?}");
        assert_eq!(p.verify_checksum(src, dst), Some(form));
    }
    // Sent to the group, the group form is just Pseudo.
    let p = Packet::new_checked(&KEEPALIVED_ACCEPTED[20..], Family::V4).unwrap();
    assert_eq!(p.verify_checksum(src, dst), Some(ChecksumForm::PseudoGroup));
    assert_eq!(p.verify_checksum(src, GROUP), Some(ChecksumForm::Pseudo));
}

#[test]
fn ipv6_vector() {
    let (src, dst) = (v6("fe80::2"), IpAddr::V6(GROUP_V6));
    let p = Packet::new_checked(&ADVERT_V6[..], Family::V6).unwrap();
    let (r, form) = Repr::parse(&p, src, dst).unwrap();
    assert_eq!(form, ChecksumForm::Pseudo);
    assert_eq!((r.vrid, r.priority, r.max_adver_int), (10, 100, 100));
    let got: Vec<_> = r.addrs.iter().collect();
    assert_eq!(got, [v6("fe80::1"), v6("2001:db8::1")]);
    // IPv6 always uses the pseudo-header, whatever form is asked for.
    for form in [
        ChecksumForm::Plain,
        ChecksumForm::Pseudo,
        ChecksumForm::PseudoGroup,
    ] {
        let mut buf = [0u8; 40];
        r.emit(
            &mut Packet::new_unchecked(&mut buf[..], Family::V6),
            src,
            dst,
            form,
        )
        .unwrap();
        assert_eq!(buf, ADVERT_V6);
    }
    // The A form does not exist for IPv6: the message-only sum is not accepted.
    let mut buf = ADVERT_V6;
    let mut p = Packet::new_unchecked(&mut buf[..], Family::V6);
    p.set_checksum(0);
    let plain = checksum::finish(
        checksum::sum_bytes(0, &ADVERT_V6[..6]) + checksum::sum_bytes(0, &ADVERT_V6[8..]),
    );
    p.set_checksum(plain);
    assert_eq!(p.verify_checksum(src, dst), None);
}

#[test]
fn parse_errors_in_order() {
    let bad = |edit: fn(&mut [u8; 12])| {
        let mut b = ADVERT_B;
        edit(&mut b);
        Repr::parse(&Packet::new_unchecked(&b[..], Family::V4), A_SRC, GROUP).map(|_| ())
    };
    assert_eq!(bad(|_| ()), Ok(()));
    assert_eq!(bad(|b| b[0] = 0x21), Err(Error::Version));
    assert_eq!(bad(|b| b[0] = 0x32), Err(Error::Type));
    // Version is checked before the checksum, as keepalived logs it.
    assert_eq!(bad(|b| b[0] = 0x20), Err(Error::Version));
    assert_eq!(bad(|b| b[3] = 2), Err(Error::Truncated));
    assert_eq!(bad(|b| b[3] = 0), Err(Error::Length));
    assert_eq!(bad(|b| b[7] ^= 1), Err(Error::Checksum));
    assert_eq!(bad(|b| b[1] = 11), Err(Error::Checksum));
    // Extra bytes after the address list.
    let mut long = [0u8; 13];
    long[..12].copy_from_slice(&ADVERT_B);
    let p = Packet::new_checked(&long[..], Family::V4).unwrap();
    assert_eq!(Repr::parse(&p, A_SRC, GROUP), Err(Error::Length));
    // Mixed families.
    let p = Packet::new_checked(&ADVERT_B[..], Family::V4).unwrap();
    assert_eq!(Repr::parse(&p, v6("fe80::2"), GROUP), Err(Error::Family));
    let p = Packet::new_checked(&ADVERT_V6[..], Family::V6).unwrap();
    assert_eq!(Repr::parse(&p, A_SRC, GROUP), Err(Error::Family));
}

#[test]
fn every_truncation_is_an_error() {
    for (bytes, family) in [(&ADVERT_B[..], Family::V4), (&ADVERT_V6[..], Family::V6)] {
        for n in 0..bytes.len() {
            assert_eq!(
                Packet::new_checked(&bytes[..n], family).map(|_| ()),
                Err(Error::Truncated),
                "{n}"
            );
            let p = Packet::new_unchecked(&bytes[..n], family);
            assert!(Repr::parse(&p, A_SRC, GROUP).is_err());
        }
    }
    // An IPv6 advert read as IPv4 has 24 bytes too many.
    let p = Packet::new_checked(&ADVERT_V6[..], Family::V4).unwrap();
    assert_eq!(
        Repr::parse(&p, A_SRC, GROUP).map(|_| ()),
        Err(Error::Length)
    );
}

#[test]
fn emit_checks_length_and_family() {
    let addrs = AddrList::new(Family::V4, &VIP).unwrap();
    let r = Repr {
        vrid: 1,
        priority: 1,
        max_adver_int: 1,
        addrs,
    };
    let mut short = [0u8; 11];
    let mut p = Packet::new_unchecked(&mut short[..], Family::V4);
    assert_eq!(
        r.emit(&mut p, A_SRC, GROUP, ChecksumForm::Pseudo),
        Err(Error::Length)
    );
    let mut buf = [0u8; 12];
    let mut p = Packet::new_unchecked(&mut buf[..], Family::V4);
    assert_eq!(
        r.emit(&mut p, v6("fe80::1"), GROUP, ChecksumForm::Pseudo),
        Err(Error::Family)
    );
    assert_eq!(
        p.fill_checksum(A_SRC, v6("ff02::12"), ChecksumForm::Plain),
        Err(Error::Family)
    );
    let mut p6 = Packet::new_unchecked(&mut buf[..], Family::V6);
    assert_eq!(
        r.emit(&mut p6, A_SRC, GROUP, ChecksumForm::Pseudo),
        Err(Error::Family)
    );
}

#[test]
fn addr_list_bounds() {
    assert_eq!(AddrList::new(Family::V4, &[]), Err(Error::Length));
    assert_eq!(AddrList::new(Family::V4, &[1, 2, 3]), Err(Error::Length));
    assert_eq!(AddrList::new(Family::V6, &[0; 20]), Err(Error::Length));
    let max = [0u8; 255 * 16];
    assert_eq!(AddrList::new(Family::V6, &max).unwrap().count(), 255);
    assert_eq!(
        AddrList::new(Family::V4, &max[..256 * 4]),
        Err(Error::Length)
    );
    assert_eq!(
        AddrList::new(Family::V6, &max[..16]).unwrap().family(),
        Family::V6
    );
}

#[test]
fn pseudo_sum_matches_worked_example() {
    // docs/protocol.md §3.4: the pseudo-header words sum to 0x0ac5.
    let s = pseudo_sum(A_SRC, GROUP, 12).unwrap();
    assert_eq!(checksum::fold(s), 0x0ac5);
    assert_eq!(pseudo_sum(A_SRC, v6("ff02::12"), 12), None);
}

#[test]
fn family_helpers() {
    assert_eq!(Family::V4.virtual_mac(10), [0, 0, 0x5e, 0, 1, 0x0a]);
    assert_eq!(Family::V6.virtual_mac(51), [0, 0, 0x5e, 0, 2, 0x33]);
    assert_eq!(Family::V4.group(), GROUP);
    assert_eq!(Family::V6.group(), v6("ff02::12"));
    assert_eq!(Family::of(A_SRC), Family::V4);
}
