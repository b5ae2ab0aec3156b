//! Ethernet (with up to two VLAN tags), IPv4, IPv6 and UDP: only the fields we touch.

pub const ETH_HLEN: usize = 14;
pub const ETH_DST: super::Field = 0..6;
pub const ETH_SRC: super::Field = 6..12;
pub const ETH_TYPE: usize = 12;
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
    pub const HLEN: usize = 20;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const ID: usize = 4;
    pub const FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: super::super::Field = 12..16;
    pub const DST: super::super::Field = 16..20;
    /// MF flag and fragment offset bits of the FRAG word.
    pub const FRAG_MASK: u16 = 0x3fff;
    pub const DF: u16 = 0x4000;
}

pub mod ipv6 {
    pub const HLEN: usize = 40;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: super::super::Field = 8..24;
    pub const DST: super::super::Field = 24..40;
}

pub mod udp {
    pub const HLEN: usize = 8;
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const PROTO: u8 = 17;
}

/// TTL / hop limit of our answers.
pub const REPLY_TTL: u8 = 64;
