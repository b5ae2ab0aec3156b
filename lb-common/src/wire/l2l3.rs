//! Ethernet (with up to two VLAN tags), IPv4, IPv6 and UDP: only the fields we touch.
//! Lengths and offsets come from `network-types`' header structs; the code reads and
//! writes headers as words at these offsets (one load instead of a field-by-field
//! copy of an unaligned struct on the answer path).

use core::mem::{offset_of, size_of};

use network_types::eth::EthHdr;

pub const ETH_HLEN: usize = EthHdr::LEN;
pub const ETH_DST: super::Field =
    offset_of!(EthHdr, dst_addr)..offset_of!(EthHdr, dst_addr) + size_of::<[u8; 6]>();
pub const ETH_SRC: super::Field =
    offset_of!(EthHdr, src_addr)..offset_of!(EthHdr, src_addr) + size_of::<[u8; 6]>();
pub const ETH_TYPE: usize = offset_of!(EthHdr, ether_type);
pub const VLAN_HLEN: usize = 4;
/// Tags walked at most (802.1ad outer + 802.1Q inner).
pub const MAX_VLAN: usize = 2;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ outer tag.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

#[inline(always)]
pub const fn is_vlan_tpid(t: u16) -> bool {
    t == ETHERTYPE_VLAN || t == ETHERTYPE_QINQ || t == ETHERTYPE_QINQ_OLD
}

/// The EtherType after up to `MAX_VLAN` tags, and the offset of the L3 header.
pub fn l3_of(frame: &[u8]) -> Option<(u16, usize)> {
    let mut etype = super::be16(frame, ETH_TYPE)?;
    let mut l2 = ETH_HLEN;
    for _ in 0..MAX_VLAN {
        if !is_vlan_tpid(etype) {
            break;
        }
        etype = super::be16(frame, l2 + 2)?;
        l2 += VLAN_HLEN;
    }
    Some((etype, l2))
}

pub mod ipv4 {
    use core::mem::offset_of;
    use network_types::ip::Ipv4Hdr as H;

    /// Without options.
    pub const HLEN: usize = H::LEN;
    pub const VER_IHL: usize = offset_of!(H, vihl);
    pub const TOS: usize = offset_of!(H, tos);
    pub const TOTAL_LEN: usize = offset_of!(H, tot_len);
    pub const ID: usize = offset_of!(H, id);
    pub const FRAG: usize = offset_of!(H, frags);
    pub const TTL: usize = offset_of!(H, ttl);
    pub const PROTO: usize = offset_of!(H, proto);
    pub const CHECKSUM: usize = offset_of!(H, check);
    pub const SRC: super::super::Field = offset_of!(H, src_addr)..offset_of!(H, dst_addr);
    pub const DST: super::super::Field = offset_of!(H, dst_addr)..H::LEN;
    /// MF flag and fragment offset bits of the FRAG word.
    pub const FRAG_MASK: u16 = 0x3fff;
    pub const DF: u16 = 0x4000;
}

pub mod ipv6 {
    use core::mem::offset_of;
    use network_types::ip::Ipv6Hdr as H;

    pub const HLEN: usize = H::LEN;
    pub const PAYLOAD_LEN: usize = offset_of!(H, payload_len);
    pub const NEXT_HEADER: usize = offset_of!(H, next_hdr);
    pub const HOP_LIMIT: usize = offset_of!(H, hop_limit);
    pub const SRC: super::super::Field = offset_of!(H, src_addr)..offset_of!(H, dst_addr);
    pub const DST: super::super::Field = offset_of!(H, dst_addr)..H::LEN;
}

pub mod udp {
    use core::mem::offset_of;
    use network_types::{ip::IpProto, udp::UdpHdr as H};

    pub const HLEN: usize = H::LEN;
    pub const SRC_PORT: usize = offset_of!(H, src);
    pub const DST_PORT: usize = offset_of!(H, dst);
    pub const LENGTH: usize = offset_of!(H, len);
    pub const CHECKSUM: usize = offset_of!(H, check);
    pub const PROTO: u8 = IpProto::Udp as u8;
}

/// TTL / hop limit of our answers.
pub const REPLY_TTL: u8 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate's structs have the wire layout the code's word loads assume.
    #[test]
    fn offsets_are_the_wire_layout() {
        assert_eq!(
            (ETH_HLEN, ETH_DST, ETH_SRC, ETH_TYPE),
            (14, 0..6, 6..12, 12)
        );
        assert_eq!(
            (
                ipv4::HLEN,
                ipv4::FRAG,
                ipv4::PROTO,
                ipv4::CHECKSUM,
                ipv4::SRC,
                ipv4::DST
            ),
            (20, 6, 9, 10, 12..16, 16..20)
        );
        assert_eq!(
            (
                ipv6::HLEN,
                ipv6::NEXT_HEADER,
                ipv6::HOP_LIMIT,
                ipv6::SRC,
                ipv6::DST
            ),
            (40, 6, 7, 8..24, 24..40)
        );
        assert_eq!((udp::HLEN, udp::CHECKSUM, udp::PROTO), (8, 6, 17));
    }
}
