//! BPF map names, sizes and value layouts. One `#[repr(C)]` type serves both sides;
//! every padding byte is an explicit field so the types are `Pod` for aya.

/// Map names: the XDP program declares its maps under these names and userspace opens
/// and pins them by the same constants (at most 15 bytes: BPF_OBJ_NAME_LEN).
pub const MAP_CONFIG: &str = "IKELB_CONFIG";
/// IPv4 VIPs, keyed by the address as a native-endian `u32` of its wire bytes.
pub const MAP_VIPS4: &str = "IKELB_VIPS4";
/// IPv6 VIPs, keyed by the 16 address bytes. Two maps rather than one keyed by
/// (family, address): a 4-byte key hashes in a third of the time.
pub const MAP_VIPS6: &str = "IKELB_VIPS6";
pub const MAP_SLOTS: &str = "IKELB_SLOTS";
pub const MAP_TARGETS: &str = "IKELB_TARGETS";
pub const MAP_STATS: &str = "IKELB_STATS";
pub const MAP_TGT_STATS: &str = "IKELB_TGT_STATS";
/// Per-source token buckets (LRU): IPv4 sources keyed by the address as a native-endian
/// `u32` of its wire bytes, IPv6 sources by their /64 as a native-endian `u64` of its
/// wire bytes. Two maps, as for the VIPs: the shorter key hashes faster, and the
/// families cannot collide.
pub const MAP_RATE: &str = "IKELB_RATE";
/// Buckets of the per-source rate state (a power of two; 8 bytes each, 2 MiB). A
/// source is hashed, with the secret flow-hash key, to one bucket: sources that share a
/// bucket share its rate, which only ever limits more, never less, and an array lookup
/// costs no helper call (the verifier inlines it), where an LRU map's costs one.
pub const RATE_BUCKETS: u32 = 1 << 18;
/// All maps userspace pins under `/sys/fs/bpf/ikelb/<iface>/`.
pub const PINNED_MAPS: [&str; 7] = [
    MAP_CONFIG,
    MAP_VIPS4,
    MAP_VIPS6,
    MAP_SLOTS,
    MAP_TARGETS,
    MAP_STATS,
    MAP_TGT_STATS,
];
/// Name of the XDP program function.
pub const PROG_NAME: &str = "ikelb_xdp";

/// Most VIP addresses one program serves.
pub const MAX_VIPS: u32 = 64;
/// Most gateway identities in the target array.
pub const MAX_TARGETS: u32 = 256;
/// Slots per weighted table; a power of two so the hash is masked, not divided.
pub const SLOTS: usize = 1024;
/// Slot tables in the array: two generations (A/B) × two client families.
pub const SLOT_TABLES: u32 = 4;
/// Longest gateway identity (an FQDN, RFC 5685 §9.2: 1 byte of length).
pub const IDENT_MAX: usize = 255;

/// `Config.flags`: this node owns the VIP and answers (a VRRP backup passes everything).
pub const FLAG_ACTIVE: u32 = 1;
/// `Config.flags` bits 8..=31: the generation of the VIP maps, which their writer
/// advances after every change to them. The program keeps its last VIP hit per CPU and
/// family and trusts it only in the generation it was found in: a hash-map lookup is a
/// call (two with the key compare), costly where mitigations make every return so. An
/// older program ignores these bits.
pub const VIP_GEN_SHIFT: u32 = 8;
/// Mask of the generation after the shift (it wraps within 24 bits).
pub const VIP_GEN_MASK: u32 = u32::MAX >> VIP_GEN_SHIFT;

/// Single entry (index 0) of `IKELB_CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Config {
    /// Which generation of slot tables is live: 0 or 1. Userspace fills the other one,
    /// then flips this word, so the data path never sees a half-written table.
    pub active_table: u32,
    pub flags: u32,
    /// Secret key of the flow hash (`wire::request::flow_hash`), random per start, so
    /// that no client can compute offline which SPIi lands it on which member.
    pub hash_key: [u64; 2],
    /// Per-source rate limit as a GCRA (`rate_admit`): nanoseconds per answer (1 s /
    /// rate), 0 when the limit is off.
    pub rate_interval_ns: u64,
    /// How far a source's schedule may run ahead of the clock: burst × interval.
    pub rate_limit_ns: u64,
}

/// The per-source rate limit as a generic cell rate algorithm (ITU-T I.371; a token
/// bucket in one word): `tat` is the source's theoretical arrival time, `None` for a
/// source not seen (or forgotten). Returns the new `tat` if the request at `now` is
/// admitted, `None` if it is over the rate. `burst` requests pass back to back, then
/// one per `interval`.
#[inline(always)]
pub fn rate_admit(tat: Option<u64>, now: u64, interval: u64, limit: u64) -> Option<u64> {
    let next = match tat {
        Some(t) if t > now => t,
        _ => now,
    } + interval;
    (next - now <= limit).then_some(next)
}

/// The rate bucket of a source: its IPv4 address (`w0`, `w1` = 0) or the first two
/// words of its IPv6 address (its /64), hashed with the secret key so that nobody can
/// aim at another source's bucket.
#[inline(always)]
pub const fn rate_bucket(key: &[u64; 2], v6: bool, w0: u32, w1: u32) -> u32 {
    let x = (w0 as u64) | ((w1 as u64) << 32);
    let h = crate::hash::mix64(x ^ key[1]) ^ key[0] ^ ((v6 as u64) << 63);
    (crate::hash::mix64(h) >> (64 - RATE_BUCKETS.trailing_zeros())) as u32
}

/// Index of the slot table for `generation` (0/1) and client family (v6 = true).
#[inline(always)]
pub const fn slot_table_index(generation: u32, v6: bool) -> u32 {
    (generation & 1) * 2 + v6 as u32
}

/// Key of `IKELB_VIPS4` for an address.
#[inline(always)]
pub const fn vip4_key(a: [u8; 4]) -> u32 {
    u32::from_ne_bytes(a)
}

/// `Vip.mode`: answer IKE_SA_INIT with REDIRECT in the kernel.
pub const VIP_MODE_INIT: u32 = 0;
/// `Vip.mode`: pass all IKE to the userspace responder (redirect after authentication).
pub const VIP_MODE_AUTH: u32 = 1;

/// Value of `IKELB_VIPS4` and `IKELB_VIPS6`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Vip {
    pub mode: u32,
    /// The VLAN tag stack the VIP lives behind ([`vlan_stack`]; 0: untagged), or
    /// [`VLAN_ANY`]. A request to the VIP on another stack is not for this VIP.
    pub vlans: u32,
    /// 0: clients without REDIRECT_SUPPORTED keep the pass outcome; n > 0: they are
    /// forwarded, counted in forward-VIP slot n - 1 (`crate::forward`).
    pub fwd: u32,
}

/// `Vip.vlans`: the VIP answers on every tag stack (explicit configuration only).
pub const VLAN_ANY: u32 = u32::MAX;

impl Vip {
    /// An init-mode VIP on every tag stack: what tools and tests that parse a frame
    /// without a configuration take its destination to be.
    pub const ANY: Vip = Vip {
        mode: VIP_MODE_INIT,
        vlans: VLAN_ANY,
        fwd: 0,
    };
}

/// A tag stack with one more (inner) tag: bits 24..=31 count the tags, bits 0..=23 hold
/// their 12-bit VLAN IDs, the outer one high (docs/protocol.md §4.2). Priority and DEI
/// bits are not part of the binding. Exact for the at most `MAX_VLAN` (2) tags walked.
#[inline(always)]
pub const fn vlan_push(stack: u32, tci: u16) -> u32 {
    ((stack >> 24) + 1) << 24 | ((stack << 12) & 0x00ff_f000) | (tci & 0x0fff) as u32
}

/// The `Vip.vlans` value of a tag stack, outer VLAN ID first (at most two).
pub const fn vlan_stack(vids: &[u16]) -> u32 {
    let mut s = 0;
    let mut i = 0;
    while i < vids.len() {
        s = vlan_push(s, vids[i]);
        i += 1;
    }
    s
}

/// A weighted slot table: each slot names a target index. `len` is 0 when no target
/// serves this family (the program then passes the request up); otherwise every one of
/// the `SLOTS` entries is valid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SlotTable {
    pub len: u32,
    pub _pad: u32,
    pub slots: [u16; SLOTS],
}

impl Default for SlotTable {
    fn default() -> Self {
        Self {
            len: 0,
            _pad: 0,
            slots: [0; SLOTS],
        }
    }
}

/// A pre-encoded gateway identity (RFC 5685 §9.2), value of `IKELB_TARGETS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Target {
    /// GW Ident Type: 1 IPv4, 2 IPv6, 3 FQDN. 0 marks an unused entry.
    pub ident_type: u8,
    /// GW Ident Len: 4, 16, or 1..=255.
    pub ident_len: u8,
    pub _pad: [u8; 2],
    /// Folded one's-complement sum of `ident[..ident_len]` as if it started at an even
    /// offset, so the kernel need not sum the identity per packet.
    pub ident_sum: u32,
    pub ident: [u8; IDENT_MAX + 1],
}

impl Default for Target {
    fn default() -> Self {
        Self {
            ident_type: 0,
            ident_len: 0,
            _pad: [0; 2],
            ident_sum: 0,
            ident: [0; IDENT_MAX + 1],
        }
    }
}

/// Counter indices of the per-CPU `IKELB_STATS` array. Every packet the program sees
/// increments `Seen` and exactly one outcome counter.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stat {
    Seen = 0,
    Redirected,
    PassInactive,
    PassNotIp,
    PassNotUdp,
    PassNotVip,
    PassOtherVlan,
    PassNotIkePort,
    PassFragment,
    PassIpv6ExtHeader,
    PassEsp,
    PassKeepalive,
    PassNotIkev2,
    PassNotInit,
    PassAuthMode,
    PassNoRedirectSupported,
    PassRedirectedFrom,
    PassNoTarget,
    PassTooLarge,
    PassUnknownCritical,
    DropTruncated,
    DropBadLength,
    DropBadChecksum,
    DropBadHeader,
    DropBadPayload,
    DropBadNonce,
    DropNoSaKe,
    DropBadSource,
    DropBadRedirectSupported,
    DropRateLimited,
    DropTxError,
    /// Sent on to a member unchanged but for the Ethernet addresses (a VIP in
    /// forward mode, docs/architecture.md §6).
    Forwarded,
}

impl Stat {
    /// Every counter, in index order.
    pub const ALL: [Stat; 32] = [
        Stat::Seen,
        Stat::Redirected,
        Stat::PassInactive,
        Stat::PassNotIp,
        Stat::PassNotUdp,
        Stat::PassNotVip,
        Stat::PassOtherVlan,
        Stat::PassNotIkePort,
        Stat::PassFragment,
        Stat::PassIpv6ExtHeader,
        Stat::PassEsp,
        Stat::PassKeepalive,
        Stat::PassNotIkev2,
        Stat::PassNotInit,
        Stat::PassAuthMode,
        Stat::PassNoRedirectSupported,
        Stat::PassRedirectedFrom,
        Stat::PassNoTarget,
        Stat::PassTooLarge,
        Stat::PassUnknownCritical,
        Stat::DropTruncated,
        Stat::DropBadLength,
        Stat::DropBadChecksum,
        Stat::DropBadHeader,
        Stat::DropBadPayload,
        Stat::DropBadNonce,
        Stat::DropNoSaKe,
        Stat::DropBadSource,
        Stat::DropBadRedirectSupported,
        Stat::DropRateLimited,
        Stat::DropTxError,
        Stat::Forwarded,
    ];
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Name printed by `ikelb stats`.
    pub const fn name(self) -> &'static str {
        match self {
            Stat::Seen => "seen",
            Stat::Redirected => "redirected",
            Stat::PassInactive => "pass_inactive",
            Stat::PassNotIp => "pass_not_ip",
            Stat::PassNotUdp => "pass_not_udp",
            Stat::PassNotVip => "pass_not_vip",
            Stat::PassOtherVlan => "pass_vip_other_vlan",
            Stat::PassNotIkePort => "pass_not_ike_port",
            Stat::PassFragment => "pass_fragment",
            Stat::PassIpv6ExtHeader => "pass_ipv6_ext_header",
            Stat::PassEsp => "pass_esp",
            Stat::PassKeepalive => "pass_nat_keepalive",
            Stat::PassNotIkev2 => "pass_not_ikev2",
            Stat::PassNotInit => "pass_not_ike_sa_init",
            Stat::PassAuthMode => "pass_auth_mode",
            Stat::PassNoRedirectSupported => "pass_no_redirect_supported",
            Stat::PassRedirectedFrom => "pass_redirected_from",
            Stat::PassNoTarget => "pass_no_target",
            Stat::PassTooLarge => "pass_answer_too_large",
            Stat::PassUnknownCritical => "pass_unknown_critical",
            Stat::DropTruncated => "drop_truncated",
            Stat::DropBadLength => "drop_bad_length",
            Stat::DropBadChecksum => "drop_bad_checksum",
            Stat::DropBadHeader => "drop_bad_ike_header",
            Stat::DropBadPayload => "drop_bad_payload",
            Stat::DropBadNonce => "drop_bad_nonce",
            Stat::DropNoSaKe => "drop_missing_sa_or_ke",
            Stat::DropBadSource => "drop_bad_source",
            Stat::DropBadRedirectSupported => "drop_bad_redirect_supported",
            Stat::DropRateLimited => "drop_rate_limited",
            Stat::DropTxError => "drop_tx_error",
            Stat::Forwarded => "forwarded",
        }
    }

    pub const fn is_drop(self) -> bool {
        matches!(
            self,
            Stat::DropTruncated
                | Stat::DropBadLength
                | Stat::DropBadChecksum
                | Stat::DropBadHeader
                | Stat::DropBadPayload
                | Stat::DropBadNonce
                | Stat::DropNoSaKe
                | Stat::DropBadSource
                | Stat::DropBadRedirectSupported
                | Stat::DropRateLimited
                | Stat::DropTxError
        )
    }
}

crate::aya_pod!(Config, Vip, SlotTable, Target, BenchTemplate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_indices_match_all() {
        for (i, s) in Stat::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
        assert_eq!(Stat::Forwarded as u32 + 1, Stat::COUNT);
    }

    #[test]
    fn names_fit_bpf_obj_name() {
        for n in PINNED_MAPS {
            assert!(n.len() <= 15, "{n}");
        }
    }

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<Target>(), 8 + 256);
        assert_eq!(core::mem::size_of::<SlotTable>(), 8 + 2 * SLOTS);
        assert_eq!(core::mem::size_of::<Config>(), 40);
        assert_eq!(core::mem::size_of::<Vip>(), 12);
    }

    #[test]
    fn vlan_stacks() {
        assert_eq!(vlan_stack(&[]), 0);
        assert_eq!(vlan_stack(&[100]), 0x0100_0064);
        assert_eq!(vlan_stack(&[100, 200]), 0x0206_40c8);
        assert_ne!(vlan_stack(&[100, 200]), vlan_stack(&[200, 100]));
        // Priority and DEI bits are ignored; no stack is `VLAN_ANY`.
        assert_eq!(vlan_push(0, 0xf064), vlan_stack(&[100]));
        assert_ne!(vlan_stack(&[4095, 4095]), VLAN_ANY);
    }

    #[test]
    fn rate_admits_burst_then_rate() {
        let (t, l) = (1000, 3000);
        let mut tat = None;
        let mut admitted = 0;
        for _ in 0..10 {
            if let Some(n) = rate_admit(tat, 0, t, l) {
                tat = Some(n);
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3);
        assert_eq!(rate_admit(tat, 999, t, l), None);
        assert_eq!(rate_admit(tat, 1000, t, l), Some(4000));
        // A source idle for long starts again with its whole burst.
        assert_eq!(rate_admit(Some(5), 1_000_000, t, l), Some(1_001_000));
    }

    #[test]
    fn table_indices() {
        assert_eq!(slot_table_index(0, false), 0);
        assert_eq!(slot_table_index(0, true), 1);
        assert_eq!(slot_table_index(1, false), 2);
        assert_eq!(slot_table_index(3, true), 3);
    }
}

/// Map holding the request the bench harness (`ikelb_bench`) restores before every
/// repetition of BPF_PROG_TEST_RUN, which does not reset the frame between repetitions.
pub const MAP_BENCH: &str = "IKELB_BENCH";
/// Largest bench template frame.
pub const BENCH_FRAME_MAX: usize = 512;
/// `BenchTemplate.mode`: restore only, then XDP_TX.
pub const BENCH_RESTORE: u32 = 0;
/// `BenchTemplate.mode`: restore, then the MAC/IP/port-swap reflector.
pub const BENCH_REFLECT: u32 = 1;
/// `BenchTemplate.mode`: restore, then the redirect fast path.
pub const BENCH_REDIRECT: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BenchTemplate {
    pub len: u32,
    pub mode: u32,
    pub frame: [u8; BENCH_FRAME_MAX],
}
