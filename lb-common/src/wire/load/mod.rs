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
//! ([`identity`]); an unknown type survives a round trip. The load figures are
//! [`Figures`].
//!
//! [`Packet::new_checked`] checks that the fixed header, the identity list its length
//! announces and the tag are present and that nothing follows, after which no accessor
//! panics. [`Repr::parse`] checks the version and every identity; it never panics.
//! [`Repr::emit`] never panics and fails only when the buffer is not
//! [`Repr::buffer_len`] long.

use crate::maps::IDENT_MAX;

mod figures;
mod identity;
pub use figures::Figures;
pub use identity::{Identities, Identity, IdentityIter};

/// Version this module speaks.
pub const VERSION: u8 = 1;
/// `flags` bit: the member takes no new clients.
pub const FLAG_DRAIN: u8 = 0x01;
/// Bytes of the truncated HMAC-SHA256 tag.
pub const TAG_LEN: usize = 16;
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
    pub figures: Figures,
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
            figures: Figures {
                active_sas: p.active_sas(),
                capacity: p.capacity(),
                weight: p.weight(),
                cpu_permille: p.cpu_permille(),
                overload_pct: p.overload_pct(),
                drain: p.flags() & FLAG_DRAIN != 0,
            },
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
        p.set_overload_pct(f.overload_pct);
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
