//! The RFC 5685 IKE_SA_INIT REDIRECT answer: `HDR(SPIi, 0, R), N(REDIRECT, gw, Ni)`.
//!
//! This is the one answer builder: the XDP program writes [`ike_prefix`] and sums with
//! [`prefix_sum`]; userspace emits the same bytes with [`emit_ike`].

use super::ike::{self, NOTIFY_REDIRECT};
use crate::checksum;
use crate::maps::{IDENT_MAX, Target};

pub const GW_IPV4: u8 = 1;
pub const GW_IPV6: u8 = 2;
pub const GW_FQDN: u8 = 3;

/// IKE header (28) + Notify fixed part (8) + GW Ident Type and Len (2).
pub const PREFIX_LEN: usize = ike::HEADER_LEN + ike::NOTIFY_FIXED_LEN + 2;

/// IKE Length of the answer for a `k`-byte identity and an `n`-byte nonce.
#[inline(always)]
pub const fn ike_len(k: usize, n: usize) -> usize {
    PREFIX_LEN + k + n
}

/// Notify Payload Length of N(REDIRECT) with nonce data.
#[inline(always)]
pub const fn notify_len(k: usize, n: usize) -> usize {
    ike::NOTIFY_FIXED_LEN + 2 + k + n
}

/// The first 38 bytes of the answer (IKE header and N(REDIRECT) up to the identity) as
/// the XDP program stores them: nine `u32` whose in-memory (native-endian) bytes are the
/// wire bytes 0..36, then bytes 36..38 as a `u16`.
#[inline(always)]
pub fn ike_prefix_words(spi_i: &[u8; 8], ident_type: u8, k: u8, n: u16) -> ([u32; 9], u16) {
    let len = ike_len(k as usize, n as usize) as u32;
    let nl = (notify_len(k as usize, n as usize) as u16).to_be_bytes();
    let nt = NOTIFY_REDIRECT.to_be_bytes();
    let w = u32::from_ne_bytes;
    (
        [
            w([spi_i[0], spi_i[1], spi_i[2], spi_i[3]]),
            w([spi_i[4], spi_i[5], spi_i[6], spi_i[7]]),
            0,
            0,
            w([
                ike::PAYLOAD_NOTIFY,
                ike::VERSION_2_0,
                ike::EXCHANGE_IKE_SA_INIT,
                ike::FLAG_RESPONSE,
            ]),
            0,
            w(len.to_be_bytes()),
            // Notify: next 0, C 0, length; protocol 0, SPI size 0, type.
            w([0, 0, nl[0], nl[1]]),
            w([0, 0, nt[0], nt[1]]),
        ],
        u16::from_ne_bytes([ident_type, k]),
    )
}

/// The first 38 bytes of the answer: IKE header and N(REDIRECT) up to the identity.
pub fn ike_prefix(spi_i: &[u8; 8], ident_type: u8, k: u8, n: u16) -> [u8; PREFIX_LEN] {
    let (words, tail) = ike_prefix_words(spi_i, ident_type, k, n);
    let mut p = [0u8; PREFIX_LEN];
    for (i, w) in words.iter().enumerate() {
        p[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    p[36..].copy_from_slice(&tail.to_ne_bytes());
    p
}

/// One's-complement sum of [`ike_prefix`]'s bytes, computed from the fields so the
/// kernel needs no loop over the array.
#[inline(always)]
pub fn prefix_sum(spi_i: &[u8; 8], ident_type: u8, k: u8, n: u16) -> u64 {
    let len = ike_len(k as usize, n as usize) as u64;
    let nlen = notify_len(k as usize, n as usize) as u64;
    let w = |i: usize| u64::from(u16::from_be_bytes([spi_i[i], spi_i[i + 1]]));
    w(0) + w(2)
        + w(4)
        + w(6)
        + ((u64::from(ike::PAYLOAD_NOTIFY) << 8) | u64::from(ike::VERSION_2_0))
        + ((u64::from(ike::EXCHANGE_IKE_SA_INIT) << 8) | u64::from(ike::FLAG_RESPONSE))
        + len
        + nlen
        + u64::from(NOTIFY_REDIRECT)
        + ((u64::from(ident_type) << 8) | u64::from(k))
}

/// Sum of the answer's UDP payload (after the marker, which is zero): prefix, identity
/// (precomputed in the target) and nonce (its sum as if at an even offset).
#[inline(always)]
pub fn payload_sum(spi_i: &[u8; 8], t: &Target, n: u16, nonce_sum: u16) -> u64 {
    let nonce = if t.ident_len & 1 == 1 {
        checksum::shift_odd(nonce_sum)
    } else {
        nonce_sum
    };
    prefix_sum(spi_i, t.ident_type, t.ident_len, n) + u64::from(t.ident_sum) + u64::from(nonce)
}

/// Errors building a target identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentError {
    Empty,
    TooLong,
    NotAscii,
}

impl Target {
    fn with_ident(ident_type: u8, ident: &[u8]) -> Self {
        let mut t = Target {
            ident_type,
            ident_len: ident.len() as u8,
            ..Target::default()
        };
        t.ident[..ident.len()].copy_from_slice(ident);
        t.ident_sum = u32::from(checksum::fold(checksum::sum_bytes(0, ident)));
        t
    }
    pub fn ipv4(a: [u8; 4]) -> Self {
        Self::with_ident(GW_IPV4, &a)
    }
    pub fn ipv6(a: [u8; 16]) -> Self {
        Self::with_ident(GW_IPV6, &a)
    }
    /// An FQDN as sent on the wire: ASCII, no terminator, 1..=255 bytes.
    pub fn fqdn(name: &[u8]) -> Result<Self, IdentError> {
        if name.is_empty() {
            return Err(IdentError::Empty);
        }
        if name.len() > IDENT_MAX {
            return Err(IdentError::TooLong);
        }
        if !name.iter().all(|c| c.is_ascii_graphic()) {
            return Err(IdentError::NotAscii);
        }
        Ok(Self::with_ident(GW_FQDN, name))
    }
    /// Identity bytes `4i..4i+4` as a native-endian word (for the kernel's word stores).
    #[inline(always)]
    pub fn ident_word(&self, i: usize) -> u32 {
        let b = &self.ident;
        u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
    }
    /// The identity bytes.
    pub fn ident(&self) -> &[u8] {
        &self.ident[..self.ident_len as usize]
    }
    /// Does this identity serve a client of this family? An FQDN serves both.
    pub const fn serves(&self, v6: bool) -> bool {
        match self.ident_type {
            GW_IPV4 => !v6,
            GW_IPV6 => v6,
            GW_FQDN => true,
            _ => false,
        }
    }
}

/// Writes the answer's IKE message (no marker) into `out`; returns its length, or
/// `None` if `out` is too small or the nonce is out of range.
pub fn emit_ike(spi_i: &[u8; 8], t: &Target, nonce: &[u8], out: &mut [u8]) -> Option<usize> {
    if !(ike::NONCE_MIN..=ike::NONCE_MAX).contains(&nonce.len()) {
        return None;
    }
    let k = t.ident_len as usize;
    let len = ike_len(k, nonce.len());
    let out = out.get_mut(..len)?;
    out[..PREFIX_LEN].copy_from_slice(&ike_prefix(
        spi_i,
        t.ident_type,
        t.ident_len,
        nonce.len() as u16,
    ));
    out[PREFIX_LEN..PREFIX_LEN + k].copy_from_slice(t.ident());
    out[PREFIX_LEN + k..].copy_from_slice(nonce);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPI: [u8; 8] = [0xc0, 0xff, 0xee, 0x00, 0x12, 0x34, 0x56, 0x78];

    fn nonce() -> [u8; 32] {
        core::array::from_fn(|i| 0xa0 + i as u8)
    }

    #[test]
    fn ipv4_answer_matches_vector() {
        // docs/protocol.md §5.2 from IKE offset 0.
        let mut out = [0u8; 128];
        let n = emit_ike(&SPI, &Target::ipv4([198, 51, 100, 3]), &nonce(), &mut out).unwrap();
        assert_eq!(n, 74);
        let head = [
            0xc0, 0xff, 0xee, 0x00, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0x29, 0x20,
            0x22, 0x20, 0, 0, 0, 0, 0, 0, 0, 0x4a, 0, 0, 0, 0x2e, 0, 0, 0x40, 0x17, 1, 4, 198, 51,
            100, 3,
        ];
        assert_eq!(&out[..42], &head);
        assert_eq!(&out[42..74], &nonce());
    }

    #[test]
    fn ipv6_and_fqdn_notify_lengths() {
        let mut out = [0u8; 400];
        let v6 = Target::ipv6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(emit_ike(&SPI, &v6, &nonce(), &mut out), Some(86));
        assert_eq!(&out[28..38], &[0, 0, 0, 0x3a, 0, 0, 0x40, 0x17, 2, 16]);
        let f = Target::fqdn(b"gw3.example.net").unwrap();
        assert_eq!(emit_ike(&SPI, &f, &nonce(), &mut out), Some(85));
        assert_eq!(&out[28..38], &[0, 0, 0, 0x39, 0, 0, 0x40, 0x17, 3, 15]);
        assert_eq!(&out[38..53], b"gw3.example.net");
    }

    #[test]
    fn prefix_sum_equals_byte_sum() {
        for (ty, k, n) in [(1u8, 4u8, 32u16), (2, 16, 16), (3, 255, 256), (3, 1, 17)] {
            let p = ike_prefix(&SPI, ty, k, n);
            assert_eq!(
                checksum::fold(prefix_sum(&SPI, ty, k, n)),
                checksum::fold(checksum::sum_bytes(0, &p))
            );
        }
    }

    #[test]
    fn payload_sum_equals_byte_sum_odd_fqdn() {
        let t = Target::fqdn(b"odd.example").unwrap();
        let nonce: [u8; 33] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let mut out = [0u8; 200];
        let len = emit_ike(&SPI, &t, &nonce, &mut out).unwrap();
        let ns = checksum::fold(checksum::sum_bytes(0, &nonce));
        assert_eq!(
            checksum::fold(payload_sum(&SPI, &t, 33, ns)),
            checksum::fold(checksum::sum_bytes(0, &out[..len]))
        );
    }

    #[test]
    fn bad_identities_and_nonces() {
        assert_eq!(Target::fqdn(b""), Err(IdentError::Empty));
        assert_eq!(Target::fqdn(&[b'a'; 256]), Err(IdentError::TooLong));
        assert_eq!(Target::fqdn(b"a b"), Err(IdentError::NotAscii));
        assert!(Target::fqdn(&[b'a'; 255]).is_ok());
        let t = Target::ipv4([1, 2, 3, 4]);
        let mut out = [0u8; 400];
        assert_eq!(emit_ike(&SPI, &t, &[0; 15], &mut out), None);
        assert_eq!(emit_ike(&SPI, &t, &[0; 257], &mut out), None);
        assert_eq!(emit_ike(&SPI, &t, &[0; 32], &mut out[..73]), None);
    }
}
