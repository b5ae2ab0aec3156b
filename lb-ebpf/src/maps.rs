//! Map definitions. Names must equal the `lb_common::maps::MAP_*` constants (the macro
//! needs literals); userspace opening them by those constants checks it.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use lb_common::maps::{
    BenchTemplate, Config, MAX_TARGETS, MAX_VIPS, SLOT_TABLES, SlotTable, Stat, Target, Vip,
};

#[map(name = "IKELB_CONFIG")]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map(name = "IKELB_VIPS4")]
pub static VIPS4: HashMap<u32, Vip> = HashMap::with_max_entries(MAX_VIPS, 0);

#[map(name = "IKELB_VIPS6")]
pub static VIPS6: HashMap<[u32; 4], Vip> = HashMap::with_max_entries(MAX_VIPS, 0);

#[map(name = "IKELB_SLOTS")]
pub static SLOTS: Array<SlotTable> = Array::with_max_entries(SLOT_TABLES, 0);

#[map(name = "IKELB_TARGETS")]
pub static TARGETS: Array<Target> = Array::with_max_entries(MAX_TARGETS, 0);

#[map(name = "IKELB_STATS")]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Stat::COUNT, 0);

#[map(name = "IKELB_TGT_STATS")]
pub static TGT_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_TARGETS, 0);

/// `len` clamped, for the verifier, to 1..=mask+1 (`mask` = 2^k - 1); identity there.
#[inline(always)]
pub const fn bounded_len(len: usize, mask: usize) -> usize {
    (len.wrapping_sub(1) & mask) + 1
}

/// Per-CPU scratch: the payload walk's findings and the checksum walk's state. The walk keeps
/// them here rather than in registers so the verifier sees unknown scalars and prunes
/// instead of exploring every flag combination (peers.md §9).
#[repr(C)]
pub struct Scratch {
    /// Payload-walk facts, one byte each: SA, KE, REDIRECT_SUPPORTED, REDIRECTED_FROM.
    pub seen: u32,
    pub nonce_off: u32,
    pub nonce_len: u32,
    /// Checksum walk: next offset, bytes left, running little-endian sum.
    pub sum_off: u32,
    pub sum_rem: u32,
    pub sum_le: u64,
    /// Bytes the last answer moved the frame start by (`bpf_xdp_adjust_head`), for the
    /// bench harness to move it back: test_run does not restore the frame.
    pub head: i32,
}

#[map(name = "IKELB_BENCH")]
pub static BENCH: Array<BenchTemplate> = Array::with_max_entries(1, 0);

#[map(name = "IKELB_SCRATCH")]
pub static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub fn count(s: Stat) {
    if let Some(p) = STATS.get_ptr_mut(s as u32) {
        // SAFETY: per-CPU value of this CPU; no concurrent writer.
        unsafe { *p += 1 };
    }
}

#[inline(always)]
pub fn count_target(idx: u32) {
    if let Some(p) = TGT_STATS.get_ptr_mut(idx) {
        // SAFETY: as above.
        unsafe { *p += 1 };
    }
}
