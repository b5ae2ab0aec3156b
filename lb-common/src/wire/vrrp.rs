//! VRRPv3 advertisement (RFC 9568 §5.2): [`Packet`] over the bytes of the IP payload,
//! [`Repr`] to parse and emit it, and the checksum in every form seen in deployment
//! (docs/protocol.md §3.4).
//!
//! [`Packet::new_checked`] checks that the fixed header and the whole address list are
//! present, after which no accessor panics. [`Repr::parse`] then checks version, type,
//! exact length and checksum, in the order of RFC 9568 §7.1; it never panics.
//! [`Repr::emit`] never panics and fails only when the buffer is not
//! [`Repr::buffer_len`] long or the address families disagree.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;

/// IP protocol / IPv6 next header of VRRP (RFC 9568 §5.1.1.4).
pub const PROTOCOL: u8 = 112;
/// Version nibble this module speaks.
pub const VERSION: u8 = 3;
/// The only message type (§5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// TTL / hop limit adverts are sent with, and the only one accepted (§5.1.1.3, §7.1).
pub const TTL: u8 = 255;
/// IPv4 multicast group (§5.1.1.2).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group (§5.1.2.2).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Priority of the address owner (§5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// Priority of the advert an Active sends when it stops (§5.2.4).
pub const PRIORITY_STOP: u8 = 0;
/// Default priority of a non-owner (§6.1).
pub const PRIORITY_DEFAULT: u8 = 100;
/// Default Advertisement_Interval, in centiseconds (§6.1).
pub const INTERVAL_DEFAULT: u16 = 100;
/// Largest Max Adver Int: the field has 12 bits (§5.2.7).
pub const INTERVAL_MAX: u16 = 0x0fff;

pub mod field {
    use crate::wire::Field;
    /// Version (high nibble) and type (low nibble).
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// 4 reserved bits, then Max Adver Int (12 bits, centiseconds).
    pub const MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    /// The address list of `count` addresses of `addr_len` bytes each.
    pub const fn addrs(count: usize, addr_len: usize) -> Field {
        CHECKSUM.end..CHECKSUM.end + count * addr_len
    }
}
/// Fixed part of an advertisement.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// Why bytes are not a valid advertisement, in the order [`Repr::parse`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the fixed header or than the address list its count announces.
    Truncated,
    /// Version is not 3.
    Version,
    /// Type is not ADVERTISEMENT.
    Type,
    /// No address, more bytes than the address list, or an address list of a bad size.
    Length,
    /// No checksum form folds to 0xffff (docs/protocol.md §3.4).
    Checksum,
    /// Source, destination and addresses are not all of one family.
    Family,
}

/// Result of the fallible operations here.
pub type Result<T> = core::result::Result<T, Error>;

/// IPv4 or IPv6: an instance and its adverts carry one family only (§5.2.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Bytes per address in the list.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The family of `addr`.
    pub const fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The multicast group adverts of this family go to.
    pub const fn group(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(GROUP_V4),
            Family::V6 => IpAddr::V6(GROUP_V6),
        }
    }

    /// The virtual router MAC for `vrid` (§7.3): `00:00:5e:00:01:VV` for IPv4 and
    /// `00:00:5e:00:02:VV` for IPv6.
    pub const fn virtual_mac(self, vrid: u8) -> [u8; 6] {
        let kind = match self {
            Family::V4 => 1,
            Family::V6 => 2,
        };
        [0x00, 0x00, 0x5e, 0x00, kind, vrid]
    }
}

/// The checksum forms of docs/protocol.md §3.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// Variant A: the message alone, no pseudo-header (RFC 9568 §5.2.8 for IPv4;
    /// keepalived ≥ 2.2.8 with `v3_checksum_as_v2`, Cisco). IPv4 only.
    Plain,
    /// Variant B: pseudo-header with the packet's actual destination (keepalived ≥ 1.3.7,
    /// FRR multicast, tcpdump, Wireshark). The only form for IPv6 (RFC 8200 §8.1).
    Pseudo,
    /// Variant B with 224.0.0.18 as the pseudo-header destination although the packet went
    /// to a unicast address (keepalived ≤ 1.3.6, FRR unicast). Never send it to a
    /// keepalived 2.2.7 unicast peer: it then rejects the [`Pseudo`](Self::Pseudo) form
    /// until restarted. For multicast it is the same as `Pseudo`.
    PseudoGroup,
}

/// One's-complement sum of the pseudo-header for a VRRP message of `len` bytes from
/// `src` to `dst`: 12 bytes for IPv4, the 40 of RFC 8200 §8.1 for IPv6. `None` when the
/// families differ.
pub fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u64> {
    let (acc, len) = match (src, dst) {
        // Our lengths fit 16 bits (8 + 255 * 16 bytes at most).
        (IpAddr::V4(s), IpAddr::V4(d)) => (
            checksum::sum_addr(checksum::sum_addr(0, &s.octets()), &d.octets()),
            len as u64 & 0xffff,
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => (
            checksum::sum_addr(checksum::sum_addr(0, &s.octets()), &d.octets()),
            (len as u64 >> 16) + (len as u64 & 0xffff),
        ),
        _ => return None,
    };
    Some(acc + len + u64::from(PROTOCOL))
}

/// The pseudo-header destination `form` puts in the sum for a packet to `dst`.
fn form_dst(form: ChecksumForm, dst: IpAddr) -> Option<IpAddr> {
    match (form, dst) {
        (ChecksumForm::Plain, IpAddr::V4(_)) => None,
        (ChecksumForm::PseudoGroup, IpAddr::V4(_)) => Some(IpAddr::V4(GROUP_V4)),
        _ => Some(dst),
    }
}

/// A VRRPv3 advertisement in a buffer that holds the IP payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<T> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks: for emission into a buffer of
    /// [`Repr::buffer_len`] bytes.
    pub const fn new_unchecked(buffer: T, family: Family) -> Self {
        Packet { buffer, family }
    }

    /// Wraps untrusted bytes: after this, no accessor panics.
    pub fn new_checked(buffer: T, family: Family) -> Result<Self> {
        let p = Self::new_unchecked(buffer, family);
        p.check_len()?;
        Ok(p)
    }

    /// The fixed header and the address list announced by the count are present.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN || b.len() < self.addrs_field().end {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn addrs_field(&self) -> crate::wire::Field {
        let count = self.buffer.as_ref().get(field::COUNT).copied().unwrap_or(0);
        field::addrs(usize::from(count), self.family.addr_len())
    }

    /// The family this packet was wrapped as.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// Max Adver Int in centiseconds; the reserved bits are ignored (§5.2.6).
    pub fn max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::MAX_ADVER_INT];
        u16::from_be_bytes([b[0], b[1]]) & INTERVAL_MAX
    }

    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The address list as it is on the wire.
    pub fn addr_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[self.addrs_field()]
    }

    /// Which form of docs/protocol.md §3.4 the checksum is valid in, trying the usual
    /// [`Pseudo`](ChecksumForm::Pseudo) first, then [`Plain`](ChecksumForm::Plain) (IPv4
    /// only), then [`PseudoGroup`](ChecksumForm::PseudoGroup) (IPv4 unicast only). The
    /// whole buffer is summed: it must be exactly the IP payload.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> Option<ChecksumForm> {
        let b = self.buffer.as_ref();
        let msg = checksum::sum_bytes(0, b);
        let valid = |form| {
            let acc = match form_dst(form, dst) {
                None => msg,
                Some(d) => msg + pseudo_sum(src, d, b.len())?,
            };
            (checksum::fold(acc) == 0xffff).then_some(form)
        };
        match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(d)) => valid(ChecksumForm::Pseudo)
                .or_else(|| valid(ChecksumForm::Plain))
                .or_else(|| {
                    if d == GROUP_V4 {
                        None
                    } else {
                        valid(ChecksumForm::PseudoGroup)
                    }
                }),
            _ => valid(ChecksumForm::Pseudo),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    pub fn set_addr_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// Writes Max Adver Int with the reserved bits zero; only the low 12 bits are kept.
    pub fn set_max_adver_int(&mut self, cs: u16) {
        self.buffer.as_mut()[field::MAX_ADVER_INT]
            .copy_from_slice(&(cs & INTERVAL_MAX).to_be_bytes());
    }

    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// The address list to write into (its size follows the count already set).
    pub fn addr_bytes_mut(&mut self) -> &mut [u8] {
        let f = self.addrs_field();
        &mut self.buffer.as_mut()[f]
    }

    /// Computes and writes the checksum in `form` over the whole buffer. For IPv6 the
    /// form is ignored: it always has the pseudo-header. `Err(Family)` when `src` and
    /// `dst` are of different families.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr, form: ChecksumForm) -> Result<()> {
        if Family::of(src) != Family::of(dst) {
            return Err(Error::Family);
        }
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = match form_dst(form, dst) {
            None => 0,
            Some(d) => pseudo_sum(src, d, b.len()).ok_or(Error::Family)?,
        };
        let acc = checksum::sum_bytes(0, b) + pseudo;
        self.set_checksum(checksum::finish(acc));
        Ok(())
    }
}

/// A list of 1..=255 addresses of one family, as the bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrList<'a> {
    family: Family,
    bytes: &'a [u8],
}

impl<'a> AddrList<'a> {
    /// `bytes` must hold 1..=255 whole addresses of `family`, in network order.
    pub fn new(family: Family, bytes: &'a [u8]) -> Result<Self> {
        let n = bytes.len() / family.addr_len();
        if !bytes.len().is_multiple_of(family.addr_len()) || !(1..=255).contains(&n) {
            return Err(Error::Length);
        }
        Ok(AddrList { family, bytes })
    }

    pub const fn family(&self) -> Family {
        self.family
    }

    /// Number of addresses (the Count IPvX Addr field).
    pub const fn count(&self) -> usize {
        self.bytes.len() / self.family.addr_len()
    }

    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The addresses in wire order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + 'a {
        let family = self.family;
        // chunks_exact yields exactly addr_len bytes, so the fallbacks are never used.
        self.bytes
            .chunks_exact(family.addr_len())
            .map(move |c| match family {
                Family::V4 => IpAddr::from(<[u8; 4]>::try_from(c).unwrap_or([0; 4])),
                Family::V6 => IpAddr::from(<[u8; 16]>::try_from(c).unwrap_or([0; 16])),
            })
    }
}

/// A parsed or to-be-emitted advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr<'a> {
    pub vrid: u8,
    pub priority: u8,
    /// Max Adver Int in centiseconds (12 bits; larger values are truncated on emit).
    pub max_adver_int: u16,
    pub addrs: AddrList<'a>,
}

impl<'a> Repr<'a> {
    /// Checks an advert received from `src` to `dst` (RFC 9568 §7.1 steps 2–4) and
    /// returns it with the checksum form that matched. `packet` must be exactly the IP
    /// payload. TTL (step 1) and what the VRID and addresses mean (steps 5–6) are the
    /// state machine's.
    pub fn parse(
        packet: &Packet<&'a [u8]>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Repr<'a>, ChecksumForm)> {
        packet.check_len()?;
        if Family::of(src) != packet.family() || Family::of(dst) != packet.family() {
            return Err(Error::Family);
        }
        if packet.version() != VERSION {
            return Err(Error::Version);
        }
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::Type);
        }
        let bytes: &'a [u8] = packet.buffer;
        let addrs = AddrList::new(packet.family(), &bytes[packet.addrs_field()])?;
        if bytes.len() != packet.addrs_field().end {
            return Err(Error::Length);
        }
        let form = packet.verify_checksum(src, dst).ok_or(Error::Checksum)?;
        let repr = Repr {
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_adver_int: packet.max_adver_int(),
            addrs,
        };
        Ok((repr, form))
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.addrs.bytes.len()
    }

    /// Writes the advert from `src` to `dst` with its checksum in `form` (ignored for
    /// IPv6). `Err(Length)` unless the buffer is [`buffer_len`](Self::buffer_len) long;
    /// `Err(Family)` unless `src`, `dst` and the addresses share a family.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: IpAddr,
        dst: IpAddr,
        form: ChecksumForm,
    ) -> Result<()> {
        let family = self.addrs.family;
        if packet.family() != family || Family::of(src) != family || Family::of(dst) != family {
            return Err(Error::Family);
        }
        if packet.buffer.as_ref().len() != self.buffer_len() {
            return Err(Error::Length);
        }
        packet.set_version_type(VERSION, TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        // AddrList holds at most 255 addresses.
        packet.set_addr_count(self.addrs.count() as u8);
        packet.set_max_adver_int(self.max_adver_int);
        packet.addr_bytes_mut().copy_from_slice(self.addrs.bytes);
        packet.fill_checksum(src, dst, form)
    }
}

#[cfg(test)]
mod tests;
