//! Announcements a VRRP router sends for each VIP when it becomes Active
//! (RFC 9568 §6.4.1, §6.4.2; docs/protocol.md §3.8): a gratuitous ARP request for IPv4
//! (RFC 5227 §3) and an unsolicited Neighbor Advertisement for IPv6 (RFC 4861 §7.2.6).
//! Both are whole Ethernet frames, without padding (the NIC pads to 60 bytes).

use core::net::{Ipv4Addr, Ipv6Addr};

use super::l2l3::{ETH_DST, ETH_HLEN, ETH_SRC, ETH_TYPE, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ipv6};
use crate::checksum;

pub const ETHERTYPE_ARP: u16 = 0x0806;
/// ARP hardware type Ethernet.
pub const ARP_HTYPE_ETHERNET: u16 = 1;
/// ARP operation request: a gratuitous ARP is a request for the sender's own address.
pub const ARP_OP_REQUEST: u16 = 1;

/// ARP packet for IPv4 over Ethernet (RFC 826), offsets after the Ethernet header.
pub mod arp {
    use crate::wire::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
    pub const LEN: usize = TPA.end;
}

/// Neighbor Advertisement with one Target Link-Layer Address option (RFC 4861 §4.4),
/// offsets after the IPv6 header.
pub mod na {
    use crate::wire::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const FLAGS: usize = 4;
    pub const TARGET: Field = 8..24;
    pub const OPT_TYPE: usize = 24;
    /// Option length in units of 8 bytes.
    pub const OPT_LEN: usize = 25;
    pub const OPT_MAC: Field = 26..32;
    pub const LEN: usize = OPT_MAC.end;
}

pub const ICMPV6_PROTO: u8 = 58;
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// NA flags: Router, Solicited, Override.
pub const NA_FLAG_ROUTER: u8 = 0x80;
pub const NA_FLAG_SOLICITED: u8 = 0x40;
pub const NA_FLAG_OVERRIDE: u8 = 0x20;
pub const ND_OPT_TARGET_LL_ADDR: u8 = 2;
/// Unsolicited NAs go to all nodes (RFC 4861 §7.2.6) with hop limit 255 (§7.1.2).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ND_HOP_LIMIT: u8 = 255;

/// Bytes of [`gratuitous_arp`]'s frame.
pub const GARP_LEN: usize = ETH_HLEN + arp::LEN;
/// Bytes of [`unsolicited_na`]'s frame.
pub const NA_FRAME_LEN: usize = ETH_HLEN + ipv6::HLEN + na::LEN;

/// A broadcast gratuitous ARP request announcing `vip` at `mac`: sha = `mac`, spa = tpa
/// = `vip`, tha = 0 (RFC 5227; keepalived sends ff:ff:ff:ff:ff:ff there, which receivers
/// ignore). `mac` is the virtual MAC when the interface receives on it, else the
/// interface's own MAC, as keepalived does without `use_vmac`.
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    f[ETH_DST].copy_from_slice(&[0xff; 6]);
    f[ETH_SRC].copy_from_slice(&mac);
    f[ETH_TYPE..ETH_TYPE + 2].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let a = &mut f[ETH_HLEN..];
    a[arp::HTYPE].copy_from_slice(&ARP_HTYPE_ETHERNET.to_be_bytes());
    a[arp::PTYPE].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    a[arp::HLEN] = 6;
    a[arp::PLEN] = 4;
    a[arp::OPER].copy_from_slice(&ARP_OP_REQUEST.to_be_bytes());
    a[arp::SHA].copy_from_slice(&mac);
    a[arp::SPA].copy_from_slice(&vip.octets());
    a[arp::TPA].copy_from_slice(&vip.octets());
    f
}

/// An unsolicited Neighbor Advertisement for `target` (the VIP) at `mac`, from `src`
/// (the VIP itself, as keepalived does, or the link-local address) to ff02::1. Flags:
/// Override always, Router when `router` (a router sets it; keepalived only with IPv6
/// forwarding on), never Solicited.
pub fn unsolicited_na(
    mac: [u8; 6],
    src: Ipv6Addr,
    target: Ipv6Addr,
    router: bool,
) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    // 33:33 + the low 32 bits of ff02::1 (RFC 2464 §7).
    f[ETH_DST].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[ETH_SRC].copy_from_slice(&mac);
    f[ETH_TYPE..ETH_TYPE + 2].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let ip = &mut f[ETH_HLEN..];
    ip[0] = 0x60;
    ip[ipv6::PAYLOAD_LEN..ipv6::PAYLOAD_LEN + 2].copy_from_slice(&(na::LEN as u16).to_be_bytes());
    ip[ipv6::NEXT_HEADER] = ICMPV6_PROTO;
    ip[ipv6::HOP_LIMIT] = ND_HOP_LIMIT;
    ip[ipv6::SRC].copy_from_slice(&src.octets());
    ip[ipv6::DST].copy_from_slice(&ALL_NODES.octets());
    let icmp = &mut ip[ipv6::HLEN..];
    icmp[na::TYPE] = ICMPV6_NEIGHBOR_ADVERT;
    icmp[na::CODE] = 0;
    icmp[na::FLAGS] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    icmp[na::TARGET].copy_from_slice(&target.octets());
    icmp[na::OPT_TYPE] = ND_OPT_TARGET_LL_ADDR;
    icmp[na::OPT_LEN] = 1;
    icmp[na::OPT_MAC].copy_from_slice(&mac);
    let acc = checksum::sum_addr(0, &src.octets())
        + checksum::sum_addr(0, &ALL_NODES.octets())
        + na::LEN as u64
        + u64::from(ICMPV6_PROTO)
        + checksum::sum_bytes(0, icmp);
    icmp[na::CHECKSUM].copy_from_slice(&checksum::finish(acc).to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vrrp::Family;

    /// VIP 198.51.100.1 at the VRID 10 vMAC; cross-checked with an independent script
    /// and decoded by tshark 4.0.17 as "Gratuitous ARP for 198.51.100.1 (Request)".
    static GARP: [u8; GARP_LEN] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a, 0xc6, 0x33,
        0x64, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc6, 0x33, 0x64, 0x01,
    ];

    /// Unsolicited NA for 2001:db8::1 from itself at the VRID 10 IPv6 vMAC, flags R|O;
    /// cross-checked with an independent script; tshark and tcpdump call the checksum
    /// (0x1b21) correct.
    static NA_ROUTER: [u8; NA_FRAME_LEN] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x02, 0x0a, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0x1b, 0x21, 0xa0, 0x00,
        0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x02, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x02, 0x0a,
    ];

    #[test]
    fn garp_vector() {
        let mac = Family::V4.virtual_mac(10);
        assert_eq!(gratuitous_arp(mac, Ipv4Addr::new(198, 51, 100, 1)), GARP);
    }

    #[test]
    fn na_vector() {
        let mac = Family::V6.virtual_mac(10);
        let vip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let f = unsolicited_na(mac, vip, vip, true);
        assert_eq!(f[..], NA_ROUTER[..]);
        let f = unsolicited_na(mac, vip, vip, false);
        assert_eq!(f[ETH_HLEN + ipv6::HLEN + na::FLAGS], NA_FLAG_OVERRIDE);
        // Checksum valid: the whole ICMPv6 message plus pseudo-header folds to 0xffff.
        let icmp = &f[ETH_HLEN + ipv6::HLEN..];
        let acc = checksum::sum_addr(0, &vip.octets())
            + checksum::sum_addr(0, &ALL_NODES.octets())
            + na::LEN as u64
            + u64::from(ICMPV6_PROTO)
            + checksum::sum_bytes(0, icmp);
        assert_eq!(checksum::fold(acc), 0xffff);
    }
}
