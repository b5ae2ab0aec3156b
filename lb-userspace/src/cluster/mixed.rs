//! A mixed pool: static `[[target]]`s beside the reporting members. A static target
//! reports nothing, so its share of the table is fixed: capacity × weight against the
//! members' headroom × weight ([`crate::target::weights::weights_mixed`]).

use lb_common::maps::SLOTS;

use super::status::{StaticRow, Status};
use crate::target::{StaticTarget, Target};

/// A mixed pool's static targets: their fixed numerators, capacity × weight.
pub(super) fn fixed(statics: &[StaticTarget]) -> Vec<u64> {
    statics
        .iter()
        .map(|t| u64::from(t.capacity) * u64::from(t.target.weight))
        .collect()
}

/// Shares over members and static targets together (the member rows were computed
/// over the members alone).
pub(super) fn mix_statics(st: &mut Status, weights: &[(u32, u32)], statics: &[Target]) {
    if statics.is_empty() {
        return;
    }
    let total: u64 = weights
        .iter()
        .map(|&(_, w)| u64::from(w))
        .chain(statics.iter().map(|t| u64::from(t.weight)))
        .sum();
    let share = |w: u32| {
        if total == 0 {
            0.0
        } else {
            f64::from(w) / total as f64
        }
    };
    for m in &mut st.members {
        let w = weights.iter().find(|x| x.0 == m.id).map_or(0, |x| x.1);
        m.share_pct = share(w) * 100.0;
        m.slots = (share(w) * SLOTS as f64).round() as u32;
    }
    st.statics = statics
        .iter()
        .map(|t| StaticRow {
            name: t.owner.to_string(),
            identity: t.identity.to_string(),
            share_pct: share(t.weight) * 100.0,
            slots: (share(t.weight) * SLOTS as f64).round() as u32,
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::status::MemberRow;
    use crate::target::{Identity, Owner};

    #[test]
    fn shares_count_members_and_static_targets_together() {
        let t = StaticTarget {
            target: Target {
                owner: Owner::Static("lancom".into()),
                identity: Identity::parse("198.51.100.9").unwrap(),
                weight: 2,
            },
            capacity: 500,
        };
        assert_eq!(fixed(std::slice::from_ref(&t)), [1000]);
        let mut st = Status {
            members: vec![MemberRow {
                id: 1,
                local: false,
                addr: None,
                identities: Vec::new(),
                figures: lb_common::wire::load::Figures {
                    capacity: 1000,
                    weight: 1,
                    crypto_overload_pct: 100,
                    ..Default::default()
                },
                share_pct: 100.0,
                slots: SLOTS as u32,
                last_heard_ms: 0,
                redirects: 0,
            }],
            ..Status::default()
        };
        let entry = Target {
            weight: 1000,
            ..t.target
        };
        mix_statics(&mut st, &[(1, 3000)], &[entry]);
        assert_eq!(st.members[0].share_pct, 75.0);
        assert_eq!(
            st.statics,
            [StaticRow {
                name: "lancom".into(),
                identity: "198.51.100.9".into(),
                share_pct: 25.0,
                slots: SLOTS as u32 / 4,
            }]
        );
    }
}
