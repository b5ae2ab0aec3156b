//! The captured client requests are well formed, answerable, and what their names say.
//! Checked against independent code (own checksum sums, tshark), not only lb-common.

use lb_common::maps::Vip;
use lb_common::wire::request;

use crate::fixtures::{self, CAPTURED};

/// Ones'-complement sum of 16-bit words, folded.
fn sum16(data: &[u8]) -> u32 {
    let mut s: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s
}

/// (is IPv6, L3 offset) for an untagged frame.
fn l3(frame: &[u8]) -> (bool, usize) {
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 => (false, 14),
        0x86dd => (true, 14),
        t => panic!("ethertype {t:#06x}"),
    }
}

#[test]
fn captured_fixtures_have_valid_ip_and_udp_checksums() {
    for name in CAPTURED {
        let f = fixtures::fixture(name);
        let (v6, ip) = l3(&f);
        let (udp, pseudo) = if v6 {
            let plen = usize::from(u16::from_be_bytes([f[ip + 4], f[ip + 5]]));
            assert_eq!(f.len(), ip + 40 + plen, "{name}: frame length");
            let mut p = f[ip + 8..ip + 40].to_vec();
            p.extend_from_slice(&u32::try_from(plen).unwrap().to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 17]);
            (ip + 40, p)
        } else {
            assert_eq!(f[ip] & 0x0f, 5, "{name}: IPv4 options");
            assert_eq!(
                sum16(&f[ip..ip + 20]),
                0xffff,
                "{name}: IPv4 header checksum"
            );
            let tot = usize::from(u16::from_be_bytes([f[ip + 2], f[ip + 3]]));
            assert_eq!(f.len(), ip + tot, "{name}: frame length");
            let mut p = f[ip + 12..ip + 20].to_vec();
            p.extend_from_slice(&[0, 17]);
            p.extend_from_slice(&u16::try_from(tot - 20).unwrap().to_be_bytes());
            (ip + 20, p)
        };
        assert_ne!(
            &f[udp + 6..udp + 8],
            &[0, 0],
            "{name}: UDP checksum present"
        );
        let mut all = pseudo;
        all.extend_from_slice(&f[udp..]);
        assert_eq!(
            sum16(&all),
            0xffff,
            "{name}: UDP checksum (captured with tx offload off)"
        );
    }
}

#[test]
fn captured_fixtures_are_answerable_by_the_reference_parser() {
    for name in CAPTURED {
        let f = fixtures::fixture(name);
        let (v6, ip) = l3(&f);
        let mut dst = [0u8; 16];
        if v6 {
            dst.copy_from_slice(&f[ip + 24..ip + 40]);
        } else {
            dst[..4].copy_from_slice(&f[ip + 16..ip + 20]);
        }
        let req = request::parse(&f, true, |is6, d| {
            (is6 == v6 && *d == dst).then_some(Vip::ANY)
        })
        .unwrap_or_else(|s| panic!("{name}: not answerable: {s:?}"));
        assert_eq!(req.v6, name.contains("_v6_"), "{name}: family");
        let port = if name.ends_with("_4500") { 4500 } else { 500 };
        assert_eq!(req.dport, port, "{name}: port");
        assert_eq!(req.marker, port == 4500, "{name}: non-ESP marker");
        assert!((16..=256).contains(&req.nonce_len), "{name}: nonce length");
    }
}

#[test]
fn captured_fixtures_decode_in_tshark() {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: tshark not installed");
        return;
    }
    let frames: Vec<Vec<u8>> = CAPTURED.iter().map(|n| fixtures::fixture(n)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let text = crate::tshark::decode(&refs).expect("tshark");
    assert_eq!(
        text.matches("Exchange type: IKE_SA_INIT (34)").count(),
        CAPTURED.len(),
        "{text}"
    );
    assert_eq!(
        text.matches("Notify Message Type: REDIRECT_SUPPORTED (16406)")
            .count(),
        CAPTURED.len(),
        "{text}"
    );
    assert_eq!(
        text.matches("UDP Encapsulation of IPsec Packets").count(),
        2,
        "{text}"
    );
}
