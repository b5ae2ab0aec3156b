//! Map definitions. Names must equal the `lb_common::maps::MAP_*` constants (the macro
//! needs literals); userspace opening them by those constants checks it.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use lb_common::maps::{
    BenchTemplate, Config, MAX_TARGETS, MAX_VIPS, RATE_BUCKETS, SLOT_TABLES, SlotTable, Stat,
    Target, Vip,
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

/// Per-source rate state: each bucket's theoretical arrival time in ns
/// (`lb_common::maps::rate_admit`, `rate_bucket`; 0 = never used). Shared by all CPUs,
/// updated without atomics: CPUs answering one source at the same instant may each
/// admit a request, so a source can pass its burst by at most one request per CPU.
#[map(name = "IKELB_RATE")]
pub static RATE: Array<u64> = Array::with_max_entries(RATE_BUCKETS, 0);

/// `len` clamped, for the verifier, to 1..=mask+1 (`mask` = 2^k - 1); identity there.
#[inline(always)]
pub const fn bounded_len(len: usize, mask: usize) -> usize {
    (len.wrapping_sub(1) & mask) + 1
}

/// Per-CPU scratch: the payload walk's findings and the checksum walk's state (kept here
/// rather than in registers so the verifier sees unknown scalars and prunes instead of
/// exploring every flag combination, docs/testing.md §9.4), and the last VIP hits.
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
    /// This CPU's last VIP hit of each family, see [`vip_value`].
    pub vip4: VipHit<1>,
    pub vip6: VipHit<4>,
    /// The rate limit's clock (`crate::respond::coarse_now`): the jiffy it was read in,
    /// and what `bpf_ktime_get_ns` said then.
    pub clock_jiffies: u64,
    pub clock_ns: u64,
}

/// A VIP found in the map: its address as raw words, the map generation it was found in
/// plus one (0: empty), its map value.
#[repr(C)]
pub struct VipHit<const W: usize> {
    pub addr: [u32; W],
    pub stamp: u32,
    pub vip: Vip,
}

/// The map value of VIP `addr` (raw words), or `None` if it is no VIP: from `hit` if
/// that was found in the generation whose `stamp` (generation + 1) `Config.flags` names
/// now, else from `lookup` (the hash map), which then becomes the hit. Traffic to one VIP
/// per family, the usual case, makes no hash-map call (see
/// `lb_common::maps::VIP_GEN_SHIFT`).
#[inline(always)]
pub fn vip_value<const W: usize>(
    hit: *mut VipHit<W>,
    stamp: u32,
    addr: &[u32; W],
    lookup: impl FnOnce() -> Option<Vip>,
) -> Option<Vip> {
    // SAFETY: `hit` is inside this CPU's scratch value; no concurrent writer.
    unsafe {
        let h = &mut *hit;
        // Word by word: an array compare becomes a `bcmp` subprogram call.
        let mut diff = h.stamp ^ stamp;
        for i in 0..W {
            diff |= h.addr[i] ^ addr[i];
        }
        if diff == 0 {
            return Some(h.vip);
        }
        let vip = lookup()?;
        h.addr = *addr;
        h.vip = vip;
        h.stamp = stamp;
        Some(vip)
    }
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
