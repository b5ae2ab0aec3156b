//! Byte layouts of everything the fast path parses or emits. Offsets are constants so
//! the XDP program and userspace read the same fields; the slice-based parser in
//! [`request`] is the reference model of the program's decision.

pub mod answer;
pub mod arp_nd;
pub mod ike;
pub mod l2l3;
pub mod load;
pub mod redirect;
pub mod request;
pub mod vrrp;

/// A byte range inside a header.
pub type Field = core::ops::Range<usize>;

#[inline(always)]
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline(always)]
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}
