//! What a [`super::Vrrp`] counts, for status and metrics.

/// Why a received advert was dropped, in the order of the checks (RFC 9568 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Unicast peers are configured and the source is none of them: any host on the
    /// link could otherwise hold every node in Backup with priority-255 adverts.
    NotPeer,
    /// TTL or hop limit is not 255.
    BadTtl,
    /// The datagram, its source or its addresses are not of the instance's family.
    WrongFamily,
    /// Version is not 3 or type not ADVERTISEMENT.
    BadVersion,
    /// Truncated, trailing bytes, or no address.
    BadLength,
    /// No checksum form is valid.
    BadChecksum,
    /// Another virtual router.
    WrongVrid,
    /// We are the address owner, which ignores adverts (§7.1).
    WeAreOwner,
    /// The address list is not ours, from a non-owner (§7.1; keepalived drops it too).
    AddressMismatch,
    /// Max Adver Int 0 with a non-zero priority: it would make the Backups take over at
    /// once.
    BadInterval,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        DropReason::NotPeer,
        DropReason::BadTtl,
        DropReason::WrongFamily,
        DropReason::BadVersion,
        DropReason::BadLength,
        DropReason::BadChecksum,
        DropReason::WrongVrid,
        DropReason::WeAreOwner,
        DropReason::AddressMismatch,
        DropReason::BadInterval,
    ];
}

/// Counters for status and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Adverts that passed every check.
    pub accepted: u64,
    /// Accepted adverts whose address list differed: only an owner's are (§7.1).
    pub owner_address_mismatch: u64,
    /// Adverts queued, one per destination.
    pub sent: u64,
    /// Transitions to Active.
    pub became_active: u64,
    pub(super) dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}
