//! A gateway identity handed out in N(REDIRECT) (RFC 5685 §9.2): how the configuration
//! spells it, how a load report carries it and how the target map holds it.

use std::net::IpAddr;

use lb_common::maps::Target as MapTarget;
use lb_common::wire::load as wire;

/// An IP address or an FQDN that clients are redirected to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    Ip(IpAddr),
    Fqdn(String),
}

impl Identity {
    /// An IP address, or an FQDN (letters, digits, hyphens, dots; labels 1..=63;
    /// ≤ 255 bytes; a trailing dot is dropped).
    pub fn parse(s: &str) -> Result<Identity, String> {
        if let Ok(a) = s.parse::<IpAddr>() {
            if a.is_unspecified() || a.is_multicast() {
                return Err(format!("{a} is not a unicast address"));
            }
            return Ok(Identity::Ip(a));
        }
        let name = s.strip_suffix('.').unwrap_or(s);
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty()
            || name.len() > lb_common::maps::IDENT_MAX
            || !name.split('.').all(label_ok)
            || name.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        {
            return Err(format!("`{s}` is neither an IP address nor a valid FQDN"));
        }
        Ok(Identity::Fqdn(name.to_string()))
    }

    /// The pre-encoded map value.
    pub fn to_target(&self) -> MapTarget {
        match self {
            Identity::Ip(IpAddr::V4(a)) => MapTarget::ipv4(a.octets()),
            Identity::Ip(IpAddr::V6(a)) => MapTarget::ipv6(a.octets()),
            // Validated in `parse`.
            Identity::Fqdn(n) => MapTarget::fqdn(n.as_bytes()).unwrap_or_default(),
        }
    }

    /// Whether a client of this family (`v6`) can follow it: the map value's rule, so
    /// the slot tables and the XDP program agree.
    pub fn serves(&self, v6: bool) -> bool {
        self.to_target().serves(v6)
    }

    /// As a load report carries it.
    pub fn to_wire(&self) -> wire::Identity<'_> {
        match self {
            Identity::Ip(IpAddr::V4(a)) => wire::Identity::Ipv4(a.octets()),
            Identity::Ip(IpAddr::V6(a)) => wire::Identity::Ipv6(a.octets()),
            Identity::Fqdn(n) => wire::Identity::Fqdn(n.as_bytes()),
        }
    }

    /// From a load report: `Ok(None)` for a type of a later version (not ours to hand
    /// out), an error for an FQDN we would not accept in a configuration.
    pub fn from_wire(id: wire::Identity<'_>) -> Result<Option<Identity>, String> {
        Ok(Some(match id {
            wire::Identity::Ipv4(a) => Identity::Ip(IpAddr::from(a)),
            wire::Identity::Ipv6(a) => Identity::Ip(IpAddr::from(a)),
            wire::Identity::Fqdn(n) => {
                let s = std::str::from_utf8(n).map_err(|_| "an FQDN that is not UTF-8")?;
                Identity::parse(s)?
            }
            wire::Identity::Unknown(..) => return Ok(None),
        }))
    }

    /// The member address forwarding uses: an IP identity (an FQDN names no address).
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            Identity::Ip(a) => Some(*a),
            Identity::Fqdn(_) => None,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Ip(a) => a.fmt(f),
            Identity::Fqdn(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert!(Identity::parse("a.b").is_ok());
        assert!(Identity::parse(&"a".repeat(64)).is_err());
        assert!(Identity::parse(&vec!["a".repeat(63); 4].join(".")).is_ok());
        assert!(Identity::parse(&vec!["a".repeat(63); 5].join(".")).is_err());
        assert!(Identity::parse("-a.b").is_err());
        assert!(Identity::parse("1.2.3").is_err());
        assert!(Identity::parse("0.0.0.0").is_err());
        assert_eq!(
            Identity::parse("gw.example.").unwrap(),
            Identity::Fqdn("gw.example".into())
        );
    }

    #[test]
    fn wire_round_trip_and_families() {
        for s in ["192.0.2.7", "2001:db8::7", "gw7.example.net"] {
            let id = Identity::parse(s).unwrap();
            assert_eq!(Identity::from_wire(id.to_wire()), Ok(Some(id.clone())));
            assert_eq!(id.to_string(), s);
        }
        assert_eq!(
            Identity::from_wire(wire::Identity::Unknown(9, b"x")),
            Ok(None)
        );
        assert!(Identity::from_wire(wire::Identity::Fqdn(b"bad_name!")).is_err());
        assert!(Identity::from_wire(wire::Identity::Fqdn(&[0xff, 0xfe])).is_err());
        let v4 = Identity::parse("192.0.2.7").unwrap();
        let v6 = Identity::parse("2001:db8::7").unwrap();
        let name = Identity::parse("gw.example").unwrap();
        assert!(v4.serves(false) && !v4.serves(true));
        assert!(v6.serves(true) && !v6.serves(false));
        assert!(name.serves(false) && name.serves(true));
        assert_eq!(name.addr(), None);
        assert_eq!(v4.addr(), Some("192.0.2.7".parse().unwrap()));
    }
}
