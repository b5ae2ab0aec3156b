//! A member's load figures: what its report carries and what target choice weighs.

/// The figures of one member, as reported (or, for this node, as sampled and
/// configured). Two kinds of load: crypto load (`active_sas` of `capacity`) and system
/// load (the higher of CPU and memory), each with its weight and its overload limit;
/// how they compose into a share is target choice's business.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct Figures {
    /// Established IKE SAs.
    pub active_sas: u32,
    /// Most SAs the member is sized for.
    pub capacity: u32,
    /// Operator's multiplier on the member's share.
    pub weight: u32,
    /// CPU load in per mille of all CPUs.
    pub cpu_permille: u16,
    /// Memory in use in per mille of all memory.
    pub memory_permille: u16,
    /// Percent of `capacity` at which the member takes no new clients.
    pub crypto_overload_pct: u16,
    /// Percent of system load above which the member takes no new clients.
    pub system_overload_pct: u16,
    /// How much crypto load counts, 0..=100 (0: not at all, its limit included).
    pub crypto_load_weight: u8,
    /// How much system load counts, 0..=100 (0: not at all, its limit included).
    pub system_load_weight: u8,
    /// The member takes no new clients.
    pub drain: bool,
}

impl Figures {
    /// A version-1 report (an older member) from its figures: it has one overload
    /// limit, of SAs and of CPU alike, no memory and no weights. It reads as crypto load
    /// only (weight 100, its limit); its CPU is kept, to be shown, but not weighed
    /// (system-load weight 0), so a busy machine does not empty the table.
    pub fn version_1(f: Figures) -> Figures {
        Figures {
            memory_permille: 0,
            system_overload_pct: f.crypto_overload_pct.min(100),
            crypto_load_weight: 100,
            system_load_weight: 0,
            ..f
        }
    }
}
