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
//! |            weight             |  CPU, ‰       | crypto ovl., %|  32..40
//! +---------------+---------------+---------------+-------+-------+
//! | identities len|  memory, ‰    | system ovl., %|crypto | system|  40..48
//! +---------------+---------------+---------------+-------+-------+
//! |  identities: (type, len, value)…                              |  48..
//! +---------------------------------------------------------------+
//! |            tag: HMAC-SHA256 truncated to 128 bits             |  last 16
//! +---------------------------------------------------------------+
//! ```
//!
//! The two bytes at 46 and 47 are the crypto- and system-load weights (0..=100). That
//! is version 2. Version 1 (older members) ends its header at 44: bytes 38..40 are one
//! overload limit, 42..44 are reserved, and no memory, system limit or weights follow;
//! [`Repr::parse`] reads both ([`Figures`] says how a version-1 report reads) and
//! [`Repr::emit`] writes version 2.
//!
//! The tag covers every byte before it ([`Packet::signed`]); userspace computes it, so
//! this module only places it. Identities use the RFC 5685 §9.2 gateway identity types
//! ([`identity`]); an unknown type survives a round trip.
//!
//! [`Packet::new_checked`] checks that the fixed header of the packet's version, the
//! identity list its length announces and the tag are present and that nothing follows,
//! after which no accessor panics. [`Repr::parse`] checks the version and every
//! identity; it never panics. [`Repr::emit`] never panics and fails only when the
//! buffer is not [`Repr::buffer_len`] long.

use crate::maps::IDENT_MAX;

mod figures;
mod identity;
pub use figures::Figures;
pub use identity::{Identities, Identity, IdentityIter};

/// Version this module writes.
pub const VERSION: u8 = 2;
/// Oldest version it reads.
pub const VERSION_MIN: u8 = 1;
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
    /// Version 1: the one limit of SAs and CPU.
    pub const CRYPTO_OVERLOAD: Field = 38..40;
    pub const IDENTS_LEN: Field = 40..42;
    /// Version 1: reserved, zero.
    pub const MEMORY: Field = 42..44;
    /// From here on version 2 only.
    pub const SYSTEM_OVERLOAD: Field = 44..46;
    pub const CRYPTO_WEIGHT: usize = 46;
    pub const SYSTEM_WEIGHT: usize = 47;
    /// The identity list of `len` bytes after a header of `header` bytes.
    pub const fn identities(header: usize, len: usize) -> Field {
        header..header + len
    }
    /// The tag after it.
    pub const fn tag(header: usize, len: usize) -> Field {
        identities(header, len).end..identities(header, len).end + super::TAG_LEN
    }
}
/// Fixed part before the identity list, version 1.
pub const HEADER_LEN_V1: usize = field::MEMORY.end;
/// Fixed part before the identity list, this version.
pub const HEADER_LEN: usize = field::SYSTEM_WEIGHT + 1;

/// The header length of `version` (a later one is assumed to extend this one's).
pub const fn header_len(version: u8) -> usize {
    if version == 1 {
        HEADER_LEN_V1
    } else {
        HEADER_LEN
    }
}
/// Longest identity list: [`IDENTITIES_MAX`] FQDNs of [`IDENT_MAX`] bytes.
pub const IDENTS_LEN_MAX: usize = IDENTITIES_MAX * (2 + IDENT_MAX);
/// Longest report.
pub const REPORT_LEN_MAX: usize = HEADER_LEN + IDENTS_LEN_MAX + TAG_LEN;

/// Why bytes are not a valid report. [`Repr::parse`] checks the version first (the
/// layout depends on it), then the lengths, then the identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header, the identity list it announces and the tag.
    Truncated,
    /// Bytes after the tag.
    Length,
    /// Version is not one of [`VERSION_MIN`]..=[`VERSION`].
    Version,
    /// An identity runs past the list, has a bad length for its type, or there are
    /// none or more than [`IDENTITIES_MAX`].
    Identity,
}

/// Result of the fallible operations here.
pub type Result<T> = core::result::Result<T, Error>;

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
        if len < HEADER_LEN_V1 || len < self.header_len() {
            return Err(Error::Truncated);
        }
        let end = self.tag_field().end;
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
    /// Bytes before the identity list, by the version byte.
    pub fn header_len(&self) -> usize {
        header_len(self.buffer.as_ref().first().copied().unwrap_or(VERSION))
    }
    fn tag_field(&self) -> crate::wire::Field {
        field::tag(self.header_len(), self.idents_len())
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
    pub fn crypto_overload_pct(&self) -> u16 {
        u16::from_be_bytes(self.be(field::CRYPTO_OVERLOAD))
    }
    /// Version 2.
    pub fn memory_permille(&self) -> u16 {
        u16::from_be_bytes(self.be(field::MEMORY))
    }
    /// Version 2.
    pub fn system_overload_pct(&self) -> u16 {
        u16::from_be_bytes(self.be(field::SYSTEM_OVERLOAD))
    }
    /// Version 2.
    pub fn crypto_load_weight(&self) -> u8 {
        self.be::<1>(field::CRYPTO_WEIGHT..field::CRYPTO_WEIGHT + 1)[0]
    }
    /// Version 2.
    pub fn system_load_weight(&self) -> u8 {
        self.be::<1>(field::SYSTEM_WEIGHT..field::SYSTEM_WEIGHT + 1)[0]
    }
    pub fn idents_len(&self) -> usize {
        usize::from(u16::from_be_bytes(self.be(field::IDENTS_LEN)))
    }
    /// The raw identity list.
    pub fn identities(&self) -> &[u8] {
        let f = field::identities(self.header_len(), self.idents_len());
        self.buffer.as_ref().get(f).unwrap_or(&[])
    }
    /// The bytes the tag covers: everything before it.
    pub fn signed(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..self.tag_field().start.min(b.len())]
    }
    /// The tag as received.
    pub fn tag(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(self.tag_field()).unwrap_or(&[])
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
    pub fn set_crypto_overload_pct(&mut self, v: u16) {
        self.put(field::CRYPTO_OVERLOAD, &v.to_be_bytes());
    }
    pub fn set_memory_permille(&mut self, v: u16) {
        self.put(field::MEMORY, &v.to_be_bytes());
    }
    pub fn set_system_overload_pct(&mut self, v: u16) {
        self.put(field::SYSTEM_OVERLOAD, &v.to_be_bytes());
    }
    pub fn set_crypto_load_weight(&mut self, v: u8) {
        self.put(field::CRYPTO_WEIGHT..field::CRYPTO_WEIGHT + 1, &[v]);
    }
    pub fn set_system_load_weight(&mut self, v: u8) {
        self.put(field::SYSTEM_WEIGHT..field::SYSTEM_WEIGHT + 1, &[v]);
    }
    /// Sets the identity list length. Later accessors place the identities and the tag
    /// after it (and after the header of the version set before).
    pub fn set_idents_len(&mut self, v: u16) {
        self.put(field::IDENTS_LEN, &v.to_be_bytes());
    }
    /// Writes the tag after the identity list.
    pub fn set_tag(&mut self, tag: &[u8; TAG_LEN]) {
        let f = self.tag_field();
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
    pub figures: Figures,
}

impl<'a> Repr<'a> {
    /// Parses a packet of version [`VERSION_MIN`]..=[`VERSION`]. Ignores the tag:
    /// authenticate before trusting this.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a Packet<&'a T>) -> Result<Repr<'a>> {
        match p.buffer.as_ref().first() {
            None => return Err(Error::Truncated),
            Some(v) if !(VERSION_MIN..=VERSION).contains(v) => return Err(Error::Version),
            Some(_) => {}
        }
        p.check_len()?;
        let ids = p.identities();
        Identities::check_wire(ids)?;
        let measured = Figures {
            active_sas: p.active_sas(),
            capacity: p.capacity(),
            weight: p.weight(),
            cpu_permille: p.cpu_permille(),
            crypto_overload_pct: p.crypto_overload_pct(),
            drain: p.flags() & FLAG_DRAIN != 0,
            ..Figures::default()
        };
        let figures = if p.version() == 1 {
            Figures::version_1(measured)
        } else {
            Figures {
                memory_permille: p.memory_permille(),
                system_overload_pct: p.system_overload_pct(),
                crypto_load_weight: p.crypto_load_weight(),
                system_load_weight: p.system_load_weight(),
                ..measured
            }
        };
        Ok(Repr {
            key_id: p.key_id(),
            member_id: p.member_id(),
            seq: p.seq(),
            timestamp_ms: p.timestamp_ms(),
            identities: Identities::Wire(ids),
            figures,
        })
    }

    /// Bytes of the whole report, tag included.
    pub fn buffer_len(&self) -> usize {
        field::tag(HEADER_LEN, self.identities.wire_len()).end
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
        let f = &self.figures;
        p.set_version(VERSION);
        p.set_flags(if f.drain { FLAG_DRAIN } else { 0 });
        p.set_key_id(self.key_id);
        p.set_member_id(self.member_id);
        p.set_seq(self.seq);
        p.set_timestamp_ms(self.timestamp_ms);
        p.set_active_sas(f.active_sas);
        p.set_capacity(f.capacity);
        p.set_weight(f.weight);
        p.set_cpu_permille(f.cpu_permille);
        p.set_crypto_overload_pct(f.crypto_overload_pct);
        p.set_memory_permille(f.memory_permille);
        p.set_system_overload_pct(f.system_overload_pct);
        p.set_crypto_load_weight(f.crypto_load_weight);
        p.set_system_load_weight(f.system_load_weight);
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
mod tests;
