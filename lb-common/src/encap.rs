//! IP-in-IP to members behind a router (docs/architecture.md §6.4): the balancer puts an
//! outer IPv4 header (protocol 4 for an IPv4 inner packet, 41 for IPv6) from its own
//! address to the member's in front of the unchanged packet; the member's XDP program
//! (`ikelb member --decap`) removes it. The kernel's own tunnel modules are not needed.

#[cfg(any(feature = "user", test))]
extern crate alloc;

use crate::checksum;
use crate::wire::l2l3;

/// The member's map of its own IPv4 addresses (keys as `crate::maps::vip4_key`).
pub const MAP_DECAP: &str = "IKELB_DECAP";
/// The member's program.
pub const PROG_DECAP: &str = "ikelb_decap";

/// Outer header length: IPv4 without options.
pub const OUTER_HLEN: usize = 20;
/// IPv4 in IPv4 (RFC 2003).
pub const PROTO_IPIP: u8 = 4;
/// IPv6 in IPv4 (RFC 4213 §3.5).
pub const PROTO_IPV6: u8 = 41;
/// TTL of the outer header.
pub const OUTER_TTL: u8 = 64;

/// The outer header for an inner packet of `inner_len` bytes (family `inner_v6`) from
/// `src` to `dst`, with its checksum. No DF, but an outer fragment is not unwrapped
/// (the member's program leaves it to a stack without tunnels): the path MTU must
/// carry the inner packet plus 20 bytes (docs/architecture.md §6.4).
pub fn outer_header(inner_v6: bool, inner_len: usize, src: [u8; 4], dst: [u8; 4]) -> [u8; 20] {
    let mut h = [0u8; OUTER_HLEN];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((OUTER_HLEN + inner_len) as u16).to_be_bytes());
    h[8] = OUTER_TTL;
    h[9] = if inner_v6 { PROTO_IPV6 } else { PROTO_IPIP };
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let c = checksum::finish(checksum::sum_bytes(0, &h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// Length of the Ethernet header with its VLAN tags, and whether the packet is IPv6.
pub fn l2_of(frame: &[u8]) -> Option<(usize, bool)> {
    let (etype, l2) = l2l3::l3_of(frame)?;
    match etype {
        l2l3::ETHERTYPE_IPV4 => Some((l2, false)),
        l2l3::ETHERTYPE_IPV6 => Some((l2, true)),
        _ => None,
    }
}

/// Reference model of the balancer's encapsulation: `frame` with destination MAC
/// `next_hop`, source MAC its old destination, the same tags, EtherType IPv4, the outer
/// header, then the IP packet unchanged.
#[cfg(any(feature = "user", test))]
pub fn encap(
    frame: &[u8],
    next_hop: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
) -> Option<alloc::vec::Vec<u8>> {
    let (l2, v6) = l2_of(frame)?;
    let inner = &frame[l2..];
    let mut out = alloc::vec::Vec::with_capacity(frame.len() + OUTER_HLEN);
    out.extend_from_slice(&next_hop);
    out.extend_from_slice(&frame[l2l3::ETH_DST]);
    out.extend_from_slice(&frame[12..l2 - 2]);
    out.extend_from_slice(&l2l3::ETHERTYPE_IPV4.to_be_bytes());
    out.extend_from_slice(&outer_header(v6, inner.len(), src, dst));
    out.extend_from_slice(inner);
    Some(out)
}

/// Reference model of the member's decapsulation: for IPv4 without options, not a
/// fragment, protocol 4 or 41, to an address `local` accepts, the frame without the
/// outer header (EtherType of the inner family); `None` leaves the frame alone.
#[cfg(any(feature = "user", test))]
pub fn decap(frame: &[u8], local: impl Fn([u8; 4]) -> bool) -> Option<alloc::vec::Vec<u8>> {
    let (l2, v6) = l2_of(frame)?;
    let h = frame.get(l2..l2 + OUTER_HLEN)?;
    if v6 || h[0] != 0x45 || crate::wire::be16(h, 6)? & l2l3::ipv4::FRAG_MASK != 0 {
        return None;
    }
    let inner_v6 = match h[9] {
        PROTO_IPIP => false,
        PROTO_IPV6 => true,
        _ => return None,
    };
    if !local([h[16], h[17], h[18], h[19]]) {
        return None;
    }
    let mut out = alloc::vec::Vec::with_capacity(frame.len() - OUTER_HLEN);
    out.extend_from_slice(&frame[..l2 - 2]);
    let et = if inner_v6 {
        l2l3::ETHERTYPE_IPV6
    } else {
        l2l3::ETHERTYPE_IPV4
    };
    out.extend_from_slice(&et.to_be_bytes());
    out.extend_from_slice(&frame[l2 + OUTER_HLEN..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_header_checksums() {
        let h = outer_header(false, 100, [10, 0, 0, 1], [10, 0, 1, 2]);
        assert_eq!(checksum::fold(checksum::sum_bytes(0, &h)), 0xffff);
        assert_eq!(u16::from_be_bytes([h[2], h[3]]), 120);
        assert_eq!(outer_header(true, 1, [0; 4], [0; 4])[9], PROTO_IPV6);
    }

    #[test]
    fn decap_undoes_encap_with_tags() {
        let mut f = alloc::vec![0u8; 16];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&7u16.to_be_bytes());
        f.extend_from_slice(&0x86ddu16.to_be_bytes());
        f.extend_from_slice(&[0x60; 48]);
        let e = encap(&f, [2, 0, 0, 0, 0, 9], [10, 0, 0, 1], [10, 0, 1, 2]).unwrap();
        assert_eq!(e.len(), f.len() + 20);
        assert_eq!(&e[6..12], &f[..6]);
        assert_eq!(e[18 + 9], PROTO_IPV6);
        assert!(decap(&e, |a| a == [10, 0, 1, 3]).is_none());
        let d = decap(&e, |a| a == [10, 0, 1, 2]).unwrap();
        assert_eq!(&d[12..], &f[12..]);
        assert_eq!(&d[..6], &[2, 0, 0, 0, 0, 9]);
    }
}
