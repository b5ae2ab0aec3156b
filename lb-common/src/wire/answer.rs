//! The answer's IP and UDP headers, written once for the XDP program (which stores the
//! words straight into the frame) and the reference model (which lays them out as
//! bytes). Words are little-endian views of the wire bytes, as the XDP program loads
//! and stores them on its little-endian target; addresses are the request's own words,
//! swapped (docs/protocol.md §4.3, §4.4).

use super::l2l3::{REPLY_TTL, ipv4, udp};
use crate::checksum;

/// The IPv4 header (no options) from `vip` to `client` carrying `udp_len` bytes of UDP,
/// its checksum filled in: the complement of the fold of the little-endian words, which
/// read as wire bytes is the one's-complement sum RFC 791 asks for.
#[inline(always)]
pub fn ipv4_header(vip: u32, client: u32, udp_len: usize) -> [u32; 5] {
    let total = ((ipv4::HLEN + udp_len) as u16).to_be();
    let mut h = [
        0x45 | (u32::from(total) << 16),
        u32::from(ipv4::DF.to_be()) << 16,
        u32::from(REPLY_TTL) | (u32::from(udp::PROTO) << 8),
        vip,
        client,
    ];
    let mut le = 0u64;
    for w in h {
        le += u64::from(w);
    }
    h[2] |= u32::from(!checksum::fold(le)) << 16;
    h
}

/// The IPv6 header from `vip` to `client` carrying `udp_len` bytes of UDP.
#[inline(always)]
pub fn ipv6_header(vip: [u32; 4], client: [u32; 4], udp_len: usize) -> [u32; 10] {
    let mut h = [0u32; 10];
    h[0] = 0x60;
    h[1] = u32::from((udp_len as u16).to_be())
        | (u32::from(udp::PROTO) << 16)
        | (u32::from(REPLY_TTL) << 24);
    h[2..6].copy_from_slice(&vip);
    h[6..10].copy_from_slice(&client);
    h
}

/// The UDP header of the answer: the request's port word (`src | dst << 16` as loaded)
/// swapped, the length, and `csum` (already in wire order).
#[inline(always)]
pub fn udp_header(ports: u32, udp_len: usize, csum_be: u16) -> [u32; 2] {
    [
        ports.rotate_left(16),
        u32::from((udp_len as u16).to_be()) | (u32::from(csum_be) << 16),
    ]
}

/// The words of `b` as [`ipv4_header`] and friends take them.
pub fn words<const N: usize>(b: &[u8]) -> [u32; N] {
    let mut w = [0u32; N];
    for (i, x) in w.iter_mut().enumerate() {
        *x = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    }
    w
}

/// Lays `w` out as wire bytes into the start of `out`.
pub fn put_words(out: &mut [u8], w: &[u32]) {
    for (i, x) in w.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
    }
}
