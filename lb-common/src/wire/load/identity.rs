//! The identity list of a load report: RFC 5685 §9.2 gateway identities as
//! (type, length, value) entries.

use super::{Error, IDENTITIES_MAX, Result};
use crate::maps::IDENT_MAX;
use crate::wire::redirect::{GW_FQDN, GW_IPV4, GW_IPV6};

/// A gateway identity to hand out in N(REDIRECT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Identity<'a> {
    Ipv4([u8; 4]),
    Ipv6([u8; 16]),
    /// 1..=255 bytes; not checked for DNS syntax here.
    Fqdn(&'a [u8]),
    /// A type this version does not know, kept so it survives a round trip.
    Unknown(u8, &'a [u8]),
}

impl<'a> Identity<'a> {
    /// RFC 5685 §9.2 type byte.
    pub const fn kind(&self) -> u8 {
        match self {
            Identity::Ipv4(_) => GW_IPV4,
            Identity::Ipv6(_) => GW_IPV6,
            Identity::Fqdn(_) => GW_FQDN,
            Identity::Unknown(t, _) => *t,
        }
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        match self {
            Identity::Ipv4(a) => a,
            Identity::Ipv6(a) => a,
            Identity::Fqdn(v) | Identity::Unknown(_, v) => v,
        }
    }

    /// Bytes on the wire: type, length, value.
    pub fn wire_len(&self) -> usize {
        2 + self.value().len()
    }

    pub(super) fn from_wire(kind: u8, v: &'a [u8]) -> Result<Self> {
        Ok(match kind {
            GW_IPV4 => Identity::Ipv4(v.try_into().map_err(|_| Error::Identity)?),
            GW_IPV6 => Identity::Ipv6(v.try_into().map_err(|_| Error::Identity)?),
            GW_FQDN if !v.is_empty() => Identity::Fqdn(v),
            GW_FQDN => return Err(Error::Identity),
            t => Identity::Unknown(t, v),
        })
    }

    pub(super) fn valid(&self) -> bool {
        match self {
            Identity::Fqdn(v) => !v.is_empty() && v.len() <= IDENT_MAX,
            Identity::Unknown(t, v) => {
                !matches!(*t, GW_IPV4 | GW_IPV6 | GW_FQDN) && v.len() <= IDENT_MAX
            }
            _ => true,
        }
    }
}

/// The identities of a report: validated wire bytes after [`Repr::parse`], or a slice
/// when building one. Two lists are equal when they yield the same identities.
#[derive(Clone, Copy, Debug)]
pub enum Identities<'a> {
    Wire(&'a [u8]),
    Slice(&'a [Identity<'a>]),
}

impl<'a> Identities<'a> {
    /// Checks a wire list: whole entries, valid lengths, 1..=[`IDENTITIES_MAX`] of them.
    pub fn check_wire(mut b: &[u8]) -> Result<()> {
        let mut n = 0;
        while !b.is_empty() {
            let (kind, len) = match b {
                [k, l, ..] => (*k, usize::from(*l)),
                _ => return Err(Error::Identity),
            };
            let v = b.get(2..2 + len).ok_or(Error::Identity)?;
            Identity::from_wire(kind, v)?;
            b = &b[2 + len..];
            n += 1;
        }
        if n == 0 || n > IDENTITIES_MAX {
            return Err(Error::Identity);
        }
        Ok(())
    }

    /// The identities in order.
    pub fn iter(&self) -> IdentityIter<'a> {
        match *self {
            Identities::Wire(b) => IdentityIter::Wire(b),
            Identities::Slice(s) => IdentityIter::Slice(s.iter()),
        }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// No identity.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Bytes of the wire list.
    pub fn wire_len(&self) -> usize {
        match *self {
            Identities::Wire(b) => b.len(),
            Identities::Slice(s) => s.iter().map(Identity::wire_len).sum(),
        }
    }
}

impl PartialEq for Identities<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for Identities<'_> {}

/// Iterator over [`Identities`]. A wire list that [`Identities::check_wire`] rejected
/// ends early instead of panicking.
#[derive(Clone, Debug)]
pub enum IdentityIter<'a> {
    Wire(&'a [u8]),
    Slice(core::slice::Iter<'a, Identity<'a>>),
}

impl<'a> Iterator for IdentityIter<'a> {
    type Item = Identity<'a>;
    fn next(&mut self) -> Option<Identity<'a>> {
        match self {
            IdentityIter::Slice(s) => s.next().copied(),
            IdentityIter::Wire(b) => {
                let (kind, len) = match *b {
                    [k, l, ..] => (*k, usize::from(*l)),
                    _ => return None,
                };
                let v = b.get(2..2 + len)?;
                let rest = &b[2 + len..];
                let id = Identity::from_wire(kind, v).ok();
                *b = if id.is_some() { rest } else { &[] };
                id
            }
        }
    }
}
