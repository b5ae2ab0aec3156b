//! Stateless forwarding of clients that cannot follow a redirect (docs/architecture.md
//! §8): map layouts, the forwarded kinds, the client hash and the reference model of
//! which frames the XDP program forwards.
//!
//! A VIP in forward mode sends every IKE_SA_INIT request without N(REDIRECT_SUPPORTED),
//! and every later packet of that client to the VIP (IKE on 500 and 4500, ESP-in-UDP,
//! NAT-T keepalives, ESP, IPv4 fragments), unchanged to one member, which answers from
//! the VIP itself (direct server return). The member is the Maglev table's entry for
//! the client address ([`crate::maglev`]) unless the connection table already pins the
//! client to a live member.

use crate::hash::mix64;
use crate::maps::{MAX_TARGETS, Stat};
use crate::wire::l2l3;

/// Map names (at most 15 bytes, as `crate::maps`).
pub const MAP_FWD_TABLE: &str = "IKELB_FWD_TABLE";
pub const MAP_FWD_MEMBERS: &str = "IKELB_FWD_MEMB";
pub const MAP_FWD_CONN: &str = "IKELB_FWD_CONN";
pub const MAP_FWD_STATS: &str = "IKELB_FWD_STATS";
/// The forwarding maps userspace pins beside `crate::maps::PINNED_MAPS`.
pub const PINNED_FWD_MAPS: [&str; 4] =
    [MAP_FWD_TABLE, MAP_FWD_MEMBERS, MAP_FWD_CONN, MAP_FWD_STATS];

/// Entries of one Maglev lookup table: a prime (the permutation of each member visits
/// every entry) about 64 × the largest member count, so each member's share is
/// within 1/64 of its weight's (Maglev §3.4 asks for M ≫ N).
pub const MAGLEV_SIZE: u32 = 16381;
/// `IKELB_FWD_TABLE` holds one table per generation (A/B, selected by
/// `Config.active_table` like the slot tables: userspace fills the idle one, then
/// flips) and client family (members whose address is of that family).
pub const FWD_TABLE_ENTRIES: u32 = 4 * MAGLEV_SIZE;
/// A table entry naming no member (empty table: nothing to forward to).
pub const NO_MEMBER: u16 = u16::MAX;
/// Connection-table capacity. An LRU hash: when full, the least recently used client
/// is forgotten and, on its next packet, placed by the Maglev table again (the same
/// member unless the table changed meanwhile). Each entry costs about 150 bytes of
/// kernel memory (36-byte key, 4-byte value, element header, LRU node), so this bound
/// is about 20 MiB.
pub const CONN_ENTRIES: u32 = 131_072;
/// Most VIPs in forward mode (each has its own counter block).
pub const MAX_FWD_VIPS: u32 = 16;

/// `FwdMember.flags`: the member is alive; its pinned clients stay on it. A member
/// drained to weight 0 stays alive (no new clients, old ones kept); a lost member is
/// not, and the program moves its clients to the Maglev choice.
pub const MEMBER_ALIVE: u32 = 1;
/// `FwdMember.flags`: the member is this host (its address is local here, as on a
/// cluster's VRRP master that is also a member): its clients' frames are passed to the
/// local stack unchanged instead of sent to our own MAC, which would not come back.
pub const MEMBER_LOCAL: u32 = 2;
/// `FwdMember.flags`: the member is reached inside IP-in-IP (`crate::encap`) from
/// `outer_src` to `outer_dst`, sent to `mac` (the next hop).
pub const MEMBER_ENCAP: u32 = 4;

/// Value of `IKELB_FWD_MEMB`, indexed like `IKELB_TARGETS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FwdMember {
    pub flags: u32,
    /// Destination MAC of frames forwarded to this member: its own on the same L2
    /// segment, the next hop's with `MEMBER_ENCAP`.
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
    /// With `MEMBER_ENCAP`: the outer header's source (ours) and destination (the
    /// member's) IPv4 addresses.
    pub outer_src: [u8; 4],
    pub outer_dst: [u8; 4],
}

/// Key of `IKELB_FWD_CONN`: client and VIP address as raw words (bytes in wire order
/// read as native integers; IPv4 in the first word, the rest zero) and the family.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConnKey {
    pub v6: u32,
    pub client: [u32; 4],
    pub vip: [u32; 4],
}

/// Value of `IKELB_FWD_CONN`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConnValue {
    /// Member (target index) the client is pinned to.
    pub member: u32,
}

/// Forwarded packet and byte counts, per (forward VIP, member, kind) in
/// `IKELB_FWD_STATS` (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FwdCount {
    pub packets: u64,
    pub bytes: u64,
}

/// What a forwarded packet is.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FwdKind {
    /// IKE_SA_INIT request without N(REDIRECT_SUPPORTED).
    IkeInit = 0,
    /// Any other IKE message (port 500, or 4500 with the non-ESP marker).
    Ike,
    /// ESP in UDP (RFC 3948: port 4500, no marker).
    EspInUdp,
    /// NAT-T keepalive (RFC 3948 §2.3: the single byte 0xff).
    Keepalive,
    /// ESP (IP protocol 50).
    Esp,
    /// An IPv4 fragment, or an IPv6 packet whose first header is a Fragment header (a
    /// large IKE message or ESP packet cut on the way).
    Fragment,
}

impl FwdKind {
    pub const ALL: [FwdKind; 6] = [
        FwdKind::IkeInit,
        FwdKind::Ike,
        FwdKind::EspInUdp,
        FwdKind::Keepalive,
        FwdKind::Esp,
        FwdKind::Fragment,
    ];
    pub const COUNT: u32 = Self::ALL.len() as u32;

    pub const fn name(self) -> &'static str {
        match self {
            FwdKind::IkeInit => "ike_sa_init",
            FwdKind::Ike => "ike",
            FwdKind::EspInUdp => "esp_in_udp",
            FwdKind::Keepalive => "nat_keepalive",
            FwdKind::Esp => "esp",
            FwdKind::Fragment => "fragment",
        }
    }

    /// The kind of a frame to a forward-mode VIP, from the redirect parser's outcome
    /// (`crate::wire::request::parse`) and the IP protocol (IPv6: the first next
    /// header): `None` for what stays with the balancer (redirect-capable requests,
    /// IKEv1, other protocols, malformed frames, which the parser drops).
    #[inline(always)]
    pub const fn of(outcome: Stat, proto: u8) -> Option<FwdKind> {
        match outcome {
            Stat::PassNoRedirectSupported => Some(FwdKind::IkeInit),
            Stat::PassNotInit => Some(FwdKind::Ike),
            Stat::PassEsp => Some(FwdKind::EspInUdp),
            Stat::PassKeepalive => Some(FwdKind::Keepalive),
            Stat::PassFragment => Some(FwdKind::Fragment),
            Stat::PassNotUdp | Stat::PassIpv6ExtHeader if proto == PROTO_ESP => Some(FwdKind::Esp),
            _ => None,
        }
    }
}

/// IP protocol number of ESP (RFC 4303).
pub const PROTO_ESP: u8 = 50;
/// IPv6 Fragment header (RFC 8200 §4.5).
pub const PROTO_IPV6_FRAG: u8 = 44;

/// Index in `IKELB_FWD_STATS` of (forward VIP slot, member, kind).
#[inline(always)]
pub const fn stat_index(vip_slot: u32, member: u32, kind: FwdKind) -> u32 {
    (vip_slot * MAX_TARGETS + member) * FwdKind::COUNT + kind as u32
}
/// Entries of `IKELB_FWD_STATS`.
pub const FWD_STAT_ENTRIES: u32 = MAX_FWD_VIPS * MAX_TARGETS * FwdKind::COUNT;

/// Hash of the client address (raw words, see [`ConnKey`]) that indexes the Maglev
/// table. The address only, not the port: a NAT-T float from 500 to 4500, rekeys and
/// ESP (which has no ports) must all reach the member that holds the IKE SA.
#[inline(always)]
pub const fn client_hash(w: &[u32; 4]) -> u32 {
    let a = (w[0] as u64) | ((w[1] as u64) << 32);
    let b = (w[2] as u64) | ((w[3] as u64) << 32);
    (mix64(mix64(a ^ 0x9e37_79b9_7f4a_7c15) ^ b) >> 32) as u32
}

/// The Maglev entry of a client of family `v6` (0 or 1) in generation `generation`.
#[inline(always)]
pub const fn table_index(generation: u32, v6: u32, hash: u32) -> u32 {
    ((generation & 1) * 2 + (v6 & 1)) * MAGLEV_SIZE + hash % MAGLEV_SIZE
}

/// Raw words of an address as the program reads them (wire bytes, native order).
pub fn addr_words(v6: bool, a: &[u8; 16]) -> [u32; 4] {
    let w = |i: usize| u32::from_ne_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]]);
    if v6 {
        [w(0), w(1), w(2), w(3)]
    } else {
        [w(0), 0, 0, 0]
    }
}

/// What the reference model learns of a frame the program forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarded {
    pub kind: FwdKind,
    pub key: ConnKey,
}

/// Reference model: the forwarded kind and connection key of `frame`, given the redirect
/// parser's `outcome` for it, when the destination is a forward-mode VIP (decided by
/// the caller). The frame is then sent unchanged but for the Ethernet addresses
/// ([`rewrite_l2`]).
pub fn classify(frame: &[u8], outcome: Stat) -> Option<Forwarded> {
    let (etype, l2) = l2l3::l3_of(frame)?;
    let ip = frame.get(l2..)?;
    let (v6, proto, src, dst) = match etype {
        l2l3::ETHERTYPE_IPV4 => {
            let h = ip.get(..l2l3::ipv4::HLEN)?;
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s[..4].copy_from_slice(&h[l2l3::ipv4::SRC]);
            d[..4].copy_from_slice(&h[l2l3::ipv4::DST]);
            (false, h[l2l3::ipv4::PROTO], s, d)
        }
        l2l3::ETHERTYPE_IPV6 => {
            let h = ip.get(..l2l3::ipv6::HLEN)?;
            let s: [u8; 16] = h[l2l3::ipv6::SRC].try_into().ok()?;
            let d: [u8; 16] = h[l2l3::ipv6::DST].try_into().ok()?;
            (true, h[l2l3::ipv6::NEXT_HEADER], s, d)
        }
        _ => return None,
    };
    let kind = FwdKind::of(outcome, proto)?;
    Some(Forwarded {
        kind,
        key: ConnKey {
            v6: v6 as u32,
            client: addr_words(v6, &src),
            vip: addr_words(v6, &dst),
        },
    })
}

/// The same-L2 rewrite: the member's MAC as destination, ours (the frame's old
/// destination) as source; everything else is left as received.
pub fn rewrite_l2(frame: &mut [u8], member_mac: &[u8; 6]) {
    let mut ours = [0u8; 6];
    ours.copy_from_slice(&frame[l2l3::ETH_DST]);
    frame[l2l3::ETH_SRC].copy_from_slice(&ours);
    frame[l2l3::ETH_DST].copy_from_slice(member_mac);
}

crate::aya_pod!(FwdMember, ConnKey, ConnValue, FwdCount);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_layouts_have_no_padding() {
        for n in PINNED_FWD_MAPS {
            assert!(n.len() <= 15, "{n}");
        }
        assert_eq!(core::mem::size_of::<FwdMember>(), 20);
        assert_eq!(core::mem::size_of::<ConnKey>(), 36);
        assert_eq!(core::mem::size_of::<FwdCount>(), 16);
    }

    #[test]
    fn kinds_from_outcomes() {
        assert_eq!(
            FwdKind::of(Stat::PassNoRedirectSupported, 17),
            Some(FwdKind::IkeInit)
        );
        assert_eq!(FwdKind::of(Stat::PassNotUdp, 50), Some(FwdKind::Esp));
        assert_eq!(FwdKind::of(Stat::PassIpv6ExtHeader, 50), Some(FwdKind::Esp));
        assert_eq!(FwdKind::of(Stat::PassNotUdp, 1), None);
        assert_eq!(FwdKind::of(Stat::PassRedirectedFrom, 17), None);
        assert_eq!(FwdKind::of(Stat::DropBadChecksum, 17), None);
        let last = stat_index(MAX_FWD_VIPS - 1, MAX_TARGETS - 1, FwdKind::Fragment);
        assert_eq!(last + 1, FWD_STAT_ENTRIES);
    }

    #[test]
    fn hash_depends_on_the_address() {
        let a = addr_words(false, &[192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = addr_words(false, &[192, 0, 2, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_ne!(client_hash(&a), client_hash(&b));
        assert_eq!(table_index(1, 0, 5), 2 * MAGLEV_SIZE + 5);
        assert_eq!(table_index(1, 1, MAGLEV_SIZE + 5), 3 * MAGLEV_SIZE + 5);
    }
}
