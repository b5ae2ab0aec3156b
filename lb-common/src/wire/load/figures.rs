//! A member's load figures: what its report carries and what target choice weighs.

/// The figures of one member, as reported (or, for this node, as sampled and
/// configured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize))]
pub struct Figures {
    /// Established IKE SAs.
    pub active_sas: u32,
    /// Most SAs the member is sized for.
    pub capacity: u32,
    /// Operator's multiplier on the member's share.
    pub weight: u32,
    /// CPU load in per mille of all CPUs.
    pub cpu_permille: u16,
    /// Percent of `capacity` (and of CPU) above which the member takes no new clients.
    pub overload_pct: u16,
    /// The member takes no new clients.
    pub drain: bool,
}
