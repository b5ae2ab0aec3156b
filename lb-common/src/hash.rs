//! The one mixing function every keyed hash here is built from (flow hash, rate
//! buckets, Maglev, the forwarding hash), apart from the map types and wire formats
//! that use it.

/// murmur3's 64-bit finaliser: cheap in BPF and spreads nearby inputs.
#[inline(always)]
pub const fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
