//! The lab's addressing plan. Everything lives inside namespaces the lab creates.
//!
//! | what | IPv4 | IPv6 |
//! |---|---|---|
//! | segment | 10.200.0.0/24 | fd00:200::/64 |
//! | VIP (lb) | 10.200.0.1 | fd00:200::1 |
//! | member gwN | 10.200.0.(10+N) | fd00:200::(10+N) (hex digits as decimal) |
//! | client N | 10.200.0.(100+N) | fd00:200::(100+N) |
//! | RADIUS server radN | 10.200.0.(4+N) | fd00:200::(4+N) |
//! | client N inner (lo, local TS) | 10.66.0.(100+N)/32 | fd66::(100+N)/128 |
//! | service (every member's lo) | 10.77.0.1/32 | fd77::1/128 |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::spec::Family;

/// IKE identity of every member (`@gw.ikelb.test`), so a client accepts whichever it
/// lands on.
pub const MEMBER_ID: &str = "gw.ikelb.test";

/// Host number of member `i` (1-based).
pub fn member_host(i: u8) -> u16 {
    10 + u16::from(i)
}

/// Host number of RADIUS server `i` (1-based).
pub fn radius_host(i: u8) -> u16 {
    4 + u16::from(i)
}

/// Host number of client `i` (1-based).
pub fn client_host(i: u8) -> u16 {
    100 + u16::from(i)
}

/// Address of host `host` on the segment. IPv6 uses the decimal digits as hex digits
/// (host 11 is `fd00:200::11`), which reads the same in both families.
pub fn segment_addr(f: Family, host: u16) -> IpAddr {
    match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 200, 0, u8::try_from(host).unwrap_or(254))),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x200,
            0,
            0,
            0,
            0,
            0,
            dec_as_hex(host),
        )),
    }
}

/// The VIP.
pub fn vip(f: Family) -> IpAddr {
    segment_addr(f, 1)
}

/// Client `i`'s inner address (its local traffic selector, on `lo`).
pub fn inner_addr(f: Family, i: u8) -> IpAddr {
    let host = 100 + u16::from(i);
    match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 66, 0, u8::try_from(host).unwrap_or(254))),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd66, 0, 0, 0, 0, 0, 0, dec_as_hex(host))),
    }
}

/// The service address behind every member (on `lo`): what clients ping through the
/// tunnel.
pub fn service_addr(f: Family) -> IpAddr {
    match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1)),
    }
}

/// Members' local traffic selector.
pub fn service_net(f: Family) -> String {
    format!("{}/{}", service_addr(f), host_len(f))
}

/// Members' remote traffic selector: every client's inner address.
pub fn inner_net(f: Family) -> String {
    match f {
        Family::V4 => "10.66.0.0/24".into(),
        Family::V6 => "fd66::/64".into(),
    }
}

pub fn prefix_len(f: Family) -> u8 {
    match f {
        Family::V4 => 24,
        Family::V6 => 64,
    }
}

pub fn host_len(f: Family) -> u8 {
    match f {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

/// Locally administered MAC for host `host`: `02:00:c8:00:HH:LL`.
pub fn mac_for(host: u16) -> String {
    let [h, l] = host.to_be_bytes();
    format!("02:00:c8:00:{h:02x}:{l:02x}")
}

fn dec_as_hex(n: u16) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(n)
}

/// The lb namespace's own address in cluster mode (the request stream's source).
pub fn probe_host_addr() -> std::net::IpAddr {
    segment_addr(Family::V4, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan() {
        assert_eq!(vip(Family::V4).to_string(), "10.200.0.1");
        assert_eq!(vip(Family::V6).to_string(), "fd00:200::1");
        assert_eq!(
            segment_addr(Family::V6, member_host(1)).to_string(),
            "fd00:200::11"
        );
        assert_eq!(
            segment_addr(Family::V4, client_host(2)).to_string(),
            "10.200.0.102"
        );
        assert_eq!(inner_addr(Family::V6, 3).to_string(), "fd66::103");
        assert_eq!(
            segment_addr(Family::V4, radius_host(1)).to_string(),
            "10.200.0.5"
        );
        assert_eq!(mac_for(0x0111), "02:00:c8:00:01:11");
    }
}
