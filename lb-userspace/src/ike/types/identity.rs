//! IKE identities (RFC 7296 §3.5) as configured, and their IDi/IDr payload form.

use std::net::IpAddr;

use lb_common::wire::ike as wire;

use super::payload::Identification;

/// An IKE identity (RFC 7296 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// ID_IPV4_ADDR or ID_IPV6_ADDR.
    Ip(IpAddr),
    /// ID_FQDN, e.g. `gw.example`.
    Fqdn(String),
    /// ID_RFC822_ADDR, e.g. `alice@example`.
    Rfc822(String),
    /// ID_DER_ASN1_DN: the DER encoding of the distinguished name.
    DerDn(Vec<u8>),
}

impl Identity {
    /// The IDi/IDr payload for this identity.
    pub fn to_payload(&self) -> Identification {
        let (kind, data) = match self {
            Identity::Ip(IpAddr::V4(a)) => (wire::ID_IPV4_ADDR, a.octets().to_vec()),
            Identity::Ip(IpAddr::V6(a)) => (wire::ID_IPV6_ADDR, a.octets().to_vec()),
            Identity::Fqdn(s) => (wire::ID_FQDN, s.as_bytes().to_vec()),
            Identity::Rfc822(s) => (wire::ID_RFC822_ADDR, s.as_bytes().to_vec()),
            Identity::DerDn(d) => (wire::ID_DER_ASN1_DN, d.clone()),
        };
        Identification { kind, data }
    }
}
