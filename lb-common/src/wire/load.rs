//! Load report of the cluster's load exchange: one UDP datagram per member per report
//! interval. [`Packet`] over the datagram's bytes, [`Repr`] to parse and emit it.
//!
//! ```text
//!  0       1       2               4                               8
//! +-------+-------+---------------+-------------------------------+
//! |version| flags |    key id     |           member id           |
//! +-------+-------+---------------+-------------------------------+
//! |                     sequence number (64)                      |   8..16
//! |                   timestamp, Unix ms (64)                     |  16..24
//! +-------------------------------+-------------------------------+
//! |          active SAs           |      capacity (max SAs)       |  24..32
//! +-------------------------------+---------------+---------------+
//! |            weight             |  CPU, ‰       | overload, %   |  32..40
//! +---------------+---------------+---------------+---------------+
//! | identities len|   reserved    |  identities: (type, len, value)…  44..
//! +---------------+---------------+-------------------------------+
//! |            tag: HMAC-SHA256 truncated to 128 bits             |  last 16
//! +---------------------------------------------------------------+
//! ```
//!
//! The tag covers every byte before it ([`Packet::signed`]); userspace computes it, so
//! this module only places it. Identities use the RFC 5685 §9.2 gateway identity types
//! ([`GW_IPV4`], [`GW_IPV6`], [`GW_FQDN`]); an unknown type survives a round trip.
//!
//! [`Packet::new_checked`] checks that the fixed header, the identity list its length
//! announces and the tag are present and that nothing follows, after which no accessor
//! panics. [`Repr::parse`] checks the version and every identity; it never panics.
//! [`Repr::emit`] never panics and fails only when the buffer is not
//! [`Repr::buffer_len`] long.

use super::redirect::{GW_FQDN, GW_IPV4, GW_IPV6};
use crate::maps::IDENT_MAX;

/// Version this module speaks.
pub const VERSION: u8 = 1;
/// `flags` bit: the member takes no new clients.
pub const FLAG_DRAIN: u8 = 0x01;
/// Bytes of the truncated HMAC-SHA256 tag.
pub const TAG_LEN: usize = 16;
/// Shortest key accepted: half the HMAC-SHA256 output (RFC 2104 §3 wants at least the
/// output length; 16 bytes still give the tag's full 128-bit strength).
pub const KEY_MIN_LEN: usize = 16;
/// Most identities one report carries (an IPv4, an IPv6 and an FQDN fit with room).
pub const IDENTITIES_MAX: usize = 4;

pub mod field {
    use crate::wire::Field;
    pub const VERSION: usize = 0;
    pub const FLAGS: usize = 1;
    pub const KEY_ID: Field = 2..4;
    pub const MEMBER_ID: Field = 4..8;
    pub const SEQ: Field = 8..16;
    pub const TIMESTAMP: Field = 16..24;
    pub const ACTIVE_SAS: Field = 24..28;
    pub const CAPACITY: Field = 28..32;
    pub const WEIGHT: Field = 32..36;
    pub const CPU: Field = 36..38;
    pub const OVERLOAD: Field = 38..40;
    pub const IDENTS_LEN: Field = 40..42;
    pub const RESERVED: Field = 42..44;
    /// The identity list of `len` bytes.
    pub const fn identities(len: usize) -> Field {
        RESERVED.end..RESERVED.end + len
    }
    /// The tag after an identity list of `len` bytes.
    pub const fn tag(len: usize) -> Field {
        identities(len).end..identities(len).end + super::TAG_LEN
    }
}
/// Fixed part before the identity list.
pub const HEADER_LEN: usize = field::RESERVED.end;
/// Longest identity list: [`IDENTITIES_MAX`] FQDNs of [`IDENT_MAX`] bytes.
pub const IDENTS_LEN_MAX: usize = IDENTITIES_MAX * (2 + IDENT_MAX);
/// Longest report.
pub const REPORT_LEN_MAX: usize = HEADER_LEN + IDENTS_LEN_MAX + TAG_LEN;

/// Why bytes are not a valid report, in the order [`Repr::parse`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header, the identity list it announces and the tag.
    Truncated,
    /// Bytes after the tag.
    Length,
    /// Version is not [`VERSION`].
    Version,
    /// An identity runs past the list, has a bad length for its type, or there are
    /// none or more than [`IDENTITIES_MAX`].
    Identity,
}

/// Result of the fallible operations here.
pub type Result<T> = core::result::Result<T, Error>;

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

    fn from_wire(kind: u8, v: &'a [u8]) -> Result<Self> {
        Ok(match kind {
            GW_IPV4 => Identity::Ipv4(v.try_into().map_err(|_| Error::Identity)?),
            GW_IPV6 => Identity::Ipv6(v.try_into().map_err(|_| Error::Identity)?),
            GW_FQDN if !v.is_empty() => Identity::Fqdn(v),
            GW_FQDN => return Err(Error::Identity),
            t => Identity::Unknown(t, v),
        })
    }

    fn valid(&self) -> bool {
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

/// A load report in a buffer that holds the UDP payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks: for emission into a buffer of
    /// [`Repr::buffer_len`] bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps untrusted bytes: after this, no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Header, identity list and tag are present, and nothing follows the tag.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let end = field::tag(self.idents_len()).end;
        if len < end {
            Err(Error::Truncated)
        } else if len > end {
            Err(Error::Length)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn be<const N: usize>(&self, f: crate::wire::Field) -> [u8; N] {
        let mut a = [0; N];
        if let Some(s) = self.buffer.as_ref().get(f) {
            let n = N.min(s.len());
            a[..n].copy_from_slice(&s[..n]);
        }
        a
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    pub fn key_id(&self) -> u16 {
        u16::from_be_bytes(self.be(field::KEY_ID))
    }
    pub fn member_id(&self) -> u32 {
        u32::from_be_bytes(self.be(field::MEMBER_ID))
    }
    pub fn seq(&self) -> u64 {
        u64::from_be_bytes(self.be(field::SEQ))
    }
    pub fn timestamp_ms(&self) -> u64 {
        u64::from_be_bytes(self.be(field::TIMESTAMP))
    }
    pub fn active_sas(&self) -> u32 {
        u32::from_be_bytes(self.be(field::ACTIVE_SAS))
    }
    pub fn capacity(&self) -> u32 {
        u32::from_be_bytes(self.be(field::CAPACITY))
    }
    pub fn weight(&self) -> u32 {
        u32::from_be_bytes(self.be(field::WEIGHT))
    }
    pub fn cpu_permille(&self) -> u16 {
        u16::from_be_bytes(self.be(field::CPU))
    }
    pub fn overload_pct(&self) -> u16 {
        u16::from_be_bytes(self.be(field::OVERLOAD))
    }
    pub fn idents_len(&self) -> usize {
        usize::from(u16::from_be_bytes(self.be(field::IDENTS_LEN)))
    }
    /// The raw identity list.
    pub fn identities(&self) -> &[u8] {
        let f = field::identities(self.idents_len());
        self.buffer.as_ref().get(f).unwrap_or(&[])
    }
    /// The bytes the tag covers: everything before it.
    pub fn signed(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..field::tag(self.idents_len()).start.min(b.len())]
    }
    /// The tag as received.
    pub fn tag(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(field::tag(self.idents_len())).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn put(&mut self, f: crate::wire::Field, v: &[u8]) {
        if let Some(s) = self.buffer.as_mut().get_mut(f) {
            let n = s.len().min(v.len());
            s[..n].copy_from_slice(&v[..n]);
        }
    }
    pub fn set_version(&mut self, v: u8) {
        self.put(field::VERSION..field::VERSION + 1, &[v]);
    }
    pub fn set_flags(&mut self, v: u8) {
        self.put(field::FLAGS..field::FLAGS + 1, &[v]);
    }
    pub fn set_key_id(&mut self, v: u16) {
        self.put(field::KEY_ID, &v.to_be_bytes());
    }
    pub fn set_member_id(&mut self, v: u32) {
        self.put(field::MEMBER_ID, &v.to_be_bytes());
    }
    pub fn set_seq(&mut self, v: u64) {
        self.put(field::SEQ, &v.to_be_bytes());
    }
    pub fn set_timestamp_ms(&mut self, v: u64) {
        self.put(field::TIMESTAMP, &v.to_be_bytes());
    }
    pub fn set_active_sas(&mut self, v: u32) {
        self.put(field::ACTIVE_SAS, &v.to_be_bytes());
    }
    pub fn set_capacity(&mut self, v: u32) {
        self.put(field::CAPACITY, &v.to_be_bytes());
    }
    pub fn set_weight(&mut self, v: u32) {
        self.put(field::WEIGHT, &v.to_be_bytes());
    }
    pub fn set_cpu_permille(&mut self, v: u16) {
        self.put(field::CPU, &v.to_be_bytes());
    }
    pub fn set_overload_pct(&mut self, v: u16) {
        self.put(field::OVERLOAD, &v.to_be_bytes());
    }
    /// Sets the identity list length (and zeroes the reserved field). Later accessors
    /// place the identities and the tag after it.
    pub fn set_idents_len(&mut self, v: u16) {
        self.put(field::IDENTS_LEN, &v.to_be_bytes());
        self.put(field::RESERVED, &[0, 0]);
    }
    /// Writes the tag after the identity list.
    pub fn set_tag(&mut self, tag: &[u8; TAG_LEN]) {
        let f = field::tag(self.idents_len());
        self.put(f, tag);
    }
}

/// A parsed or to-be-emitted load report, without its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr<'a> {
    pub key_id: u16,
    pub member_id: u32,
    /// Per sender, strictly increasing; the receiver's replay window runs over it.
    pub seq: u64,
    /// The sender's clock when it sent, in ms since the Unix epoch: the receiver drops
    /// reports too far from its own clock.
    pub timestamp_ms: u64,
    pub identities: Identities<'a>,
    pub active_sas: u32,
    /// Most SAs the member is sized for.
    pub capacity: u32,
    /// Operator's multiplier on the member's share.
    pub weight: u32,
    /// CPU load in per mille of all CPUs.
    pub cpu_permille: u16,
    /// Percent of `capacity` (and of CPU) above which the member takes no new clients.
    pub overload_pct: u16,
    pub drain: bool,
}

impl<'a> Repr<'a> {
    /// Parses a checked packet. Ignores the tag: authenticate before trusting this.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a Packet<&'a T>) -> Result<Repr<'a>> {
        p.check_len()?;
        if p.version() != VERSION {
            return Err(Error::Version);
        }
        let ids = p.identities();
        Identities::check_wire(ids)?;
        Ok(Repr {
            key_id: p.key_id(),
            member_id: p.member_id(),
            seq: p.seq(),
            timestamp_ms: p.timestamp_ms(),
            identities: Identities::Wire(ids),
            active_sas: p.active_sas(),
            capacity: p.capacity(),
            weight: p.weight(),
            cpu_permille: p.cpu_permille(),
            overload_pct: p.overload_pct(),
            drain: p.flags() & FLAG_DRAIN != 0,
        })
    }

    /// Bytes of the whole report, tag included.
    pub fn buffer_len(&self) -> usize {
        field::tag(self.identities.wire_len()).end
    }

    /// Writes the report with a zero tag into a buffer exactly [`Repr::buffer_len`]
    /// long. Fails on another length or an identity list [`Repr::parse`] would reject.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        let idents_len = self.identities.wire_len();
        if p.buffer.as_ref().len() != self.buffer_len() {
            return Err(Error::Length);
        }
        let n = self.identities.len();
        if n == 0 || n > IDENTITIES_MAX || !self.identities.iter().all(|i| i.valid()) {
            return Err(Error::Identity);
        }
        let idents_len = u16::try_from(idents_len).map_err(|_| Error::Identity)?;
        p.set_version(VERSION);
        p.set_flags(if self.drain { FLAG_DRAIN } else { 0 });
        p.set_key_id(self.key_id);
        p.set_member_id(self.member_id);
        p.set_seq(self.seq);
        p.set_timestamp_ms(self.timestamp_ms);
        p.set_active_sas(self.active_sas);
        p.set_capacity(self.capacity);
        p.set_weight(self.weight);
        p.set_cpu_permille(self.cpu_permille);
        p.set_overload_pct(self.overload_pct);
        p.set_idents_len(idents_len);
        let mut at = HEADER_LEN;
        for id in self.identities.iter() {
            let v = id.value();
            // `valid` bounds every value by IDENT_MAX.
            p.put(at..at + 2, &[id.kind(), v.len() as u8]);
            p.put(at + 2..at + 2 + v.len(), v);
            at += 2 + v.len();
        }
        p.set_tag(&[0; TAG_LEN]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    // A report from member 7 with key 2: IPv4 192.0.2.7 and FQDN "gw7", 120 of 1000 SAs,
    // weight 1, CPU 25.0 %, overload limit 90 %, not draining; tag 0xaa….
    static BYTES: [u8; 71] = [
        0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07, // version, flags, key, member
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // seq 256
        0x00, 0x00, 0x01, 0x8f, 0x00, 0x00, 0x00, 0x00, // timestamp
        0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x03, 0xe8, // 120 SAs, capacity 1000
        0x00, 0x00, 0x00, 0x01, 0x00, 0xfa, 0x00, 0x5a, // weight 1, 250 ‰, 90 %
        0x00, 0x0b, 0x00, 0x00, // idents 11 bytes, reserved
        0x01, 0x04, 192, 0, 2, 7, // IPv4
        0x03, 0x03, b'g', b'w', b'7', // FQDN
        0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, // tag
        0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
    ];

    static IDS: [Identity<'static>; 2] = [Identity::Ipv4([192, 0, 2, 7]), Identity::Fqdn(b"gw7")];

    fn repr() -> Repr<'static> {
        Repr {
            key_id: 2,
            member_id: 7,
            seq: 256,
            timestamp_ms: 0x18f_0000_0000,
            identities: Identities::Slice(&IDS),
            active_sas: 120,
            capacity: 1000,
            weight: 1,
            cpu_permille: 250,
            overload_pct: 90,
            drain: false,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.version(), 1);
        assert_eq!(p.key_id(), 2);
        assert_eq!(p.member_id(), 7);
        assert_eq!(p.seq(), 256);
        assert_eq!(p.timestamp_ms(), 0x18f_0000_0000);
        assert_eq!(p.active_sas(), 120);
        assert_eq!(p.capacity(), 1000);
        assert_eq!(p.weight(), 1);
        assert_eq!(p.cpu_permille(), 250);
        assert_eq!(p.overload_pct(), 90);
        assert_eq!(p.idents_len(), 11);
        assert_eq!(p.signed(), &BYTES[..55]);
        assert_eq!(p.tag(), &[0xaa; 16]);
    }

    #[test]
    fn parse_and_emit() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, repr());
        assert_eq!(r.identities.iter().collect::<Vec<_>>(), IDS);
        let mut buf = vec![0xffu8; repr().buffer_len()];
        let mut q = Packet::new_unchecked(&mut buf[..]);
        repr().emit(&mut q).unwrap();
        q.set_tag(&[0xaa; 16]);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn round_trip_variants() {
        let fqdn = [b'x'; IDENT_MAX];
        let sets: [&[Identity<'_>]; 4] = [
            &[Identity::Ipv6([
                0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ])],
            &[Identity::Fqdn(&fqdn); IDENTITIES_MAX],
            &[Identity::Unknown(9, b""), Identity::Ipv4([10, 0, 0, 1])],
            &IDS,
        ];
        for ids in sets {
            let mut r = repr();
            r.identities = Identities::Slice(ids);
            r.drain = true;
            r.seq = u64::MAX;
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Repr::parse(&p).unwrap(), r);
            assert!(buf.len() <= REPORT_LEN_MAX);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_err() {
        for cut in 0..BYTES.len() {
            assert_eq!(
                Packet::new_checked(&BYTES[..cut]),
                Err(Error::Truncated),
                "{cut}"
            );
            let p = Packet::new_unchecked(&BYTES[..cut]);
            assert!(Repr::parse(&p).is_err());
        }
        let mut long = BYTES.to_vec();
        long.push(0);
        assert_eq!(Packet::new_checked(&long[..]), Err(Error::Length));
    }

    #[test]
    fn bad_version_and_identities() {
        let mut b = BYTES;
        b[0] = 2;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Version)
        );
        // IPv4 identity claiming 5 bytes.
        let mut b = BYTES;
        b[45] = 5;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Identity)
        );
        // FQDN running past the list.
        let mut b = BYTES;
        b[51] = 4;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Identity)
        );
        // Empty FQDN.
        let mut b = BYTES;
        b[51] = 0;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Identity)
        );
    }

    #[test]
    fn emit_refuses_bad_input() {
        let r = repr();
        let mut short = vec![0u8; r.buffer_len() - 1];
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut short[..])),
            Err(Error::Length)
        );
        let mut r = repr();
        r.identities = Identities::Slice(&[]);
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::Identity)
        );
        let five = [Identity::Ipv4([1, 2, 3, 4]); IDENTITIES_MAX + 1];
        r.identities = Identities::Slice(&five);
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::Identity)
        );
        let long = [b'x'; IDENT_MAX + 1];
        let one = [Identity::Fqdn(&long)];
        r.identities = Identities::Slice(&one);
        let mut buf = vec![0u8; r.buffer_len()];
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::Identity)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x = crate::wire::request::mix64(x);
            let len = (x % 120) as usize;
            let mut b = [0u8; 120];
            for (i, v) in b.iter_mut().enumerate() {
                *v = crate::wire::request::mix64(x ^ i as u64) as u8;
            }
            b[0] = VERSION;
            b[40] = 0;
            b[41] = (x >> 8) as u8 % 80;
            let p = Packet::new_unchecked(&b[..len]);
            if let Ok(r) = Repr::parse(&p) {
                assert!(r.identities.len() <= IDENTITIES_MAX);
                assert_eq!(r.buffer_len(), len);
            }
        }
    }
}
