//! A member's figures: as received ([`Figures`]) and as the table shows them ([`Member`]).

use std::net::SocketAddr;
use std::time::Instant;

use lb_common::wire::load::Repr;

use crate::target::Identity;
use crate::target::weights::Load;

/// The latest figures of a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: u32,
    /// This node.
    pub local: bool,
    /// Where its last report came from (`None` for this node).
    pub addr: Option<SocketAddr>,
    pub identities: Vec<Identity>,
    pub active_sas: u32,
    pub capacity: u32,
    pub weight: u32,
    pub cpu_permille: u16,
    pub overload_pct: u16,
    pub drain: bool,
    /// Sequence number of the last report; for this node, the number of samples.
    /// It changes exactly when the figures are refreshed.
    pub seq: u64,
    pub last_heard: Instant,
    /// When it (re)joined the table.
    pub joined: Instant,
    /// Reports accepted since it (re)joined, this one included: slow start ramps on it.
    pub reports: u64,
}

impl Member {
    /// The figures [`crate::target::weights`] works on.
    pub fn load(&self) -> Load {
        Load {
            id: self.id,
            local: self.local,
            active_sas: self.active_sas,
            capacity: self.capacity,
            weight: self.weight,
            cpu_permille: self.cpu_permille,
            overload_pct: self.overload_pct,
            drain: self.drain,
            reports: self.reports,
            seq: self.seq,
        }
    }
}

/// The figures of an accepted report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Figures {
    pub(super) identities: Vec<Identity>,
    pub(super) active_sas: u32,
    pub(super) capacity: u32,
    pub(super) weight: u32,
    pub(super) cpu_permille: u16,
    pub(super) overload_pct: u16,
    pub(super) drain: bool,
}

impl Figures {
    /// Owned figures, or `None` when an identity is not one we would hand out.
    pub(super) fn of(r: &Repr<'_>) -> Option<Figures> {
        let mut identities = Vec::new();
        for id in r.identities.iter() {
            // A later version's type is not ours to hand out.
            if let Some(id) = Identity::from_wire(id).ok()? {
                identities.push(id);
            }
        }
        Some(Figures {
            identities,
            active_sas: r.active_sas,
            capacity: r.capacity,
            weight: r.weight,
            cpu_permille: r.cpu_permille,
            overload_pct: r.overload_pct,
            drain: r.drain,
        })
    }
}
