//! A member as the table shows it ([`Member`]), and the identities of a received
//! report.

use std::net::SocketAddr;
use std::time::Instant;

use lb_common::wire::load::{Figures, Repr};

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
    pub figures: Figures,
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
    /// What [`crate::target::weights`] works on.
    pub fn load(&self) -> Load {
        Load {
            id: self.id,
            local: self.local,
            figures: self.figures,
            reports: self.reports,
            seq: self.seq,
        }
    }
}

/// The identities of an accepted report we would hand out, or `None` when one is not
/// (a type of a later version is left out).
pub(super) fn identities_of(r: &Repr<'_>) -> Option<Vec<Identity>> {
    let mut identities = Vec::new();
    for id in r.identities.iter() {
        if let Some(id) = Identity::from_wire(id).ok()? {
            identities.push(id);
        }
    }
    Some(identities)
}

#[cfg(test)]
impl Member {
    /// A peer member heard at `t` for the unit tests: weight 1, SA load only (limit
    /// 100 % of `capacity`), no SAs yet, `reports` accepted since it joined.
    pub(crate) fn for_test(
        id: u32,
        ids: &[&str],
        capacity: u32,
        reports: u64,
        t: Instant,
    ) -> Member {
        Member {
            id,
            local: false,
            addr: None,
            identities: ids.iter().map(|s| Identity::parse(s).unwrap()).collect(),
            figures: Figures {
                capacity,
                weight: 1,
                crypto_overload_pct: 100,
                system_overload_pct: 100,
                crypto_load_weight: 100,
                ..Figures::default()
            },
            seq: 1,
            last_heard: t,
            joined: t,
            reports,
        }
    }
}
