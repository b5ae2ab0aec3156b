//! Who may speak for which member, and what a member may advertise. The group key
//! proves a report came from the cluster; these rules stop one holder of a key from
//! taking over another member's share, or the whole table, by claiming its id or
//! advertising addresses that are not gateways.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::target::Identity;

/// Trust rules of the load exchange. The default trusts every key for every member,
/// from anywhere, and refuses only identities that are no unicast host address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// Key id → the member ids that may report under it; keys not listed serve all.
    pub key_members: BTreeMap<u16, Vec<u32>>,
    /// Member id → the source addresses its reports may come from; unlisted: any.
    pub sources: BTreeMap<u32, Vec<IpAddr>>,
    /// Prefixes an advertised address must fall in; empty: any unicast host address.
    pub identity_prefixes: Vec<(IpAddr, u8)>,
    /// Addresses never accepted as a member's identity (the VIPs).
    pub refused: Vec<IpAddr>,
}

impl Trust {
    pub fn key_allows(&self, key: u16, member: u32) -> bool {
        self.key_members
            .get(&key)
            .is_none_or(|ms| ms.contains(&member))
    }

    pub fn source_allows(&self, member: u32, from: IpAddr) -> bool {
        self.sources
            .get(&member)
            .is_none_or(|s| s.contains(&from.to_canonical()))
    }

    /// An address must be a unicast host address, not one of ours, and inside the
    /// configured prefixes; a name is checked by the member that resolves it.
    pub fn identity_allows(&self, id: &Identity) -> bool {
        let Identity::Ip(ip) = id else {
            return true;
        };
        let ip = ip.to_canonical();
        unicast_host(ip)
            && !self.refused.contains(&ip)
            && (self.identity_prefixes.is_empty()
                || self
                    .identity_prefixes
                    .iter()
                    .any(|&(net, len)| in_prefix(ip, net, len)))
    }
}

/// Not unspecified, loopback, multicast, broadcast or link-local: an address a client
/// elsewhere on the network could be sent to.
pub fn unicast_host(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_link_local()
                || a.octets()[0] == 0)
        }
        IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_unicast_link_local())
        }
    }
}

/// Whether `ip` is inside `net/len` (families must match).
pub fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn identities_must_be_unicast_hosts_outside_the_vips() {
        let t = Trust {
            refused: vec![ip("192.0.2.1")],
            ..Trust::default()
        };
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.18",
            "255.255.255.255",
            "169.254.1.1",
            "192.0.2.1",
            "::",
            "::1",
            "ff02::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:192.0.2.1",
        ] {
            assert!(!t.identity_allows(&Identity::Ip(ip(bad))), "{bad}");
        }
        for good in ["198.51.100.11", "2001:db8::11"] {
            assert!(t.identity_allows(&Identity::Ip(ip(good))), "{good}");
        }
        assert!(t.identity_allows(&Identity::Fqdn("gw.example.net".into())));
        let t = Trust {
            identity_prefixes: vec![(ip("198.51.100.0"), 24), (ip("2001:db8::"), 64)],
            ..t
        };
        assert!(t.identity_allows(&Identity::Ip(ip("198.51.100.200"))));
        assert!(t.identity_allows(&Identity::Ip(ip("2001:db8::99"))));
        assert!(!t.identity_allows(&Identity::Ip(ip("198.51.101.1"))));
        assert!(!t.identity_allows(&Identity::Ip(ip("2001:db8:1::1"))));
    }

    #[test]
    fn keys_and_sources_bind_members() {
        let t = Trust {
            key_members: BTreeMap::from([(1, vec![10, 11])]),
            sources: BTreeMap::from([(10, vec![ip("10.0.0.10")])]),
            ..Trust::default()
        };
        assert!(t.key_allows(1, 10) && t.key_allows(1, 11) && !t.key_allows(1, 12));
        assert!(t.key_allows(2, 12), "an unbound key serves every member");
        assert!(t.source_allows(10, ip("10.0.0.10")));
        assert!(t.source_allows(10, ip("::ffff:10.0.0.10")));
        assert!(!t.source_allows(10, ip("10.0.0.99")));
        assert!(t.source_allows(11, ip("10.0.0.99")));
    }

    #[test]
    fn prefixes() {
        assert!(in_prefix(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_prefix(ip("11.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_prefix(ip("10.1.2.3"), ip("0.0.0.0"), 0));
        assert!(!in_prefix(ip("10.1.2.3"), ip("::"), 0));
        assert!(in_prefix(ip("2001:db8::1"), ip("2001:db8::1"), 128));
    }
}
