//! What the load exchange counts: accepted reports and why the others were dropped.

/// Why a received report was dropped, in the order of the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Truncated, bad version, bad identities.
    Malformed,
    /// Unauthenticated: a key id we do not have.
    UnknownKey,
    /// Forged or corrupted: the tag does not verify.
    BadTag,
    /// Our own member id (multicast loop or a duplicate id).
    Own,
    /// The member id is not bound to the key the report was signed with.
    WrongKey,
    /// The member's reports may not come from this source address.
    BadSource,
    /// Timestamp older than the allowed skew.
    TooOld,
    /// Timestamp further ahead than the allowed skew.
    TooNew,
    /// Sequence number further ahead than the sender's clock can be: it would
    /// lock the sender's real reports out as replayed.
    BadSequence,
    /// Sequence number already seen or left of the window.
    Replayed,
    /// Advertises an identity that is no gateway (unspecified, loopback, multicast,
    /// link-local, a VIP, outside the allowed prefixes).
    BadIdentity,
    /// Authentic, but the sender is held out by flap damping.
    HeldOut,
    /// [`PEERS_MAX`] senders already.
    TableFull,
}

impl DropReason {
    pub const ALL: [DropReason; 13] = [
        DropReason::Malformed,
        DropReason::UnknownKey,
        DropReason::BadTag,
        DropReason::Own,
        DropReason::WrongKey,
        DropReason::BadSource,
        DropReason::TooOld,
        DropReason::TooNew,
        DropReason::BadSequence,
        DropReason::Replayed,
        DropReason::BadIdentity,
        DropReason::HeldOut,
        DropReason::TableFull,
    ];

    /// The name `ikelb status` and the metrics print.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownKey => "unknown_key",
            DropReason::BadTag => "bad_tag",
            DropReason::Own => "own",
            DropReason::WrongKey => "wrong_key",
            DropReason::BadSource => "bad_source",
            DropReason::TooOld => "too_old",
            DropReason::TooNew => "too_new",
            DropReason::BadSequence => "bad_sequence",
            DropReason::Replayed => "replayed",
            DropReason::BadIdentity => "bad_identity",
            DropReason::HeldOut => "held_out",
            DropReason::TableFull => "table_full",
        }
    }
}

/// Counters of the exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub accepted: u64,
    pub(super) dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.dropped[r as usize]
    }
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}
