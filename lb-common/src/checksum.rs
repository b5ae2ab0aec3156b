//! Internet checksum (RFC 1071) arithmetic shared by the kernel and userspace.
//!
//! Sums are carried unfolded in a `u32`/`u64` and folded once at the end; adding
//! partial sums in any order gives the same folded result.

/// Adds the bytes of `data` as big-endian 16-bit words, padding an odd tail with zero.
#[inline(always)]
pub fn sum_bytes(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a wide one's-complement sum to 16 bits (idempotent).
#[inline(always)]
pub const fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The checksum field value for a sum that covers every byte with the field zeroed.
#[inline(always)]
pub const fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// UDP checksum field value: 0 means "no checksum" on the wire, so a computed 0 is sent
/// as 0xffff (RFC 768).
#[inline(always)]
pub const fn finish_udp(acc: u64) -> u16 {
    match finish(acc) {
        0 => 0xffff,
        c => c,
    }
}

/// A folded sum of bytes that start at an odd offset of the checksummed block
/// contributes byte-swapped (RFC 1071 §2(B)).
#[inline(always)]
pub const fn shift_odd(sum16: u16) -> u16 {
    sum16.swap_bytes()
}

/// Sum of a 4-byte IPv4 or 16-byte IPv6 address (already big-endian bytes).
#[inline(always)]
pub fn sum_addr(acc: u64, addr: &[u8]) -> u64 {
    sum_bytes(acc, addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_bytes(0, &d)), 0xddf2);
        assert_eq!(finish(sum_bytes(0, &d)), !0xddf2);
    }

    #[test]
    fn odd_offset_is_byte_swapped() {
        let d = [0x12, 0x34, 0x56, 0x78, 0x9a];
        let mut whole = [0u8; 6];
        whole[1..].copy_from_slice(&d);
        assert_eq!(
            fold(sum_bytes(0, &whole)),
            shift_odd(fold(sum_bytes(0, &d)))
        );
    }

    #[test]
    fn udp_zero_becomes_ffff() {
        assert_eq!(finish_udp(0xffff), 0xffff);
        assert_eq!(finish_udp(0x1234), !0x1234);
    }
}
