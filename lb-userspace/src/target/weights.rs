//! The members' shares: a pure function from their latest load reports and the
//! redirects sent to each since then to the weights of the slot table
//! ([`super::tables::build`]).
//!
//! A member's share is proportional to its [`headroom`] (its crypto and system load
//! composed) times its weight. The redirects sent to it since its last report count
//! against its crypto load: they are clients already sent its way that its report does
//! not count yet, and without them every table built between two reports would keep
//! sending new clients to the member that looked emptiest (the herding the "least
//! loaded" baseline of [`super::simulate`] shows). A member that (re)joined ramps up
//! over [`Policy::slow_start_reports`] reports.
//!
//! The driver rebuilds the table on every accepted report and at a short period in
//! between (the simulation uses 100 ms), reading the per-target redirect counters
//! through [`InFlight`].

use std::collections::BTreeMap;

use lb_common::wire::load::Figures;

use super::headroom::headroom;

/// One member as the choice sees it ([`crate::cluster::Member::load`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub id: u32,
    /// This node.
    pub local: bool,
    pub figures: Figures,
    /// Reports since the member (re)joined.
    pub reports: u64,
    /// Changes exactly when the figures are refreshed (the report's sequence number).
    pub seq: u64,
}

/// How shares are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// This node takes clients too (LANCOM's behaviour); otherwise it is left out.
    pub include_local: bool,
    /// A member that (re)joined gets `reports / slow_start_reports` of its share until
    /// it has sent that many reports. 0 or 1: no slow start.
    pub slow_start_reports: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            include_local: true,
            slow_start_reports: 5,
        }
    }
}

/// Slot weights as `(member id, weight)`, by id, one entry per member taken into
/// account (the local one only with [`Policy::include_local`]). Zero weights stay in
/// the list (no slots, but listed in status). Weights are scaled down together when
/// they would not fit a `u32`. Map the ids to target indices for [`tables::build`].
pub fn weights(
    policy: &Policy,
    members: &[Load],
    in_flight: &BTreeMap<u32, u64>,
) -> Vec<(u32, u32)> {
    weights_mixed(policy, members, in_flight, &[]).0
}

/// [`weights`] with fixed entries beside the members (a mixed pool's static targets,
/// which report nothing): each a constant numerator, its capacity × weight, as a
/// member that reports no SAs would have. Both are scaled down together, so the shares
/// compare. Returns the members' weights and the fixed entries' in their order.
pub fn weights_mixed(
    policy: &Policy,
    members: &[Load],
    in_flight: &BTreeMap<u32, u64>,
    fixed: &[u64],
) -> (Vec<(u32, u32)>, Vec<u32>) {
    let n = u64::from(policy.slow_start_reports.max(1));
    let mut raw: Vec<(u32, u128)> = members
        .iter()
        .filter(|m| policy.include_local || !m.local)
        .map(|m| {
            let h = headroom(&m.figures, in_flight.get(&m.id).copied().unwrap_or(0));
            let ramp = m.reports.min(n);
            let w = u128::from(h) * u128::from(m.figures.weight) * u128::from(ramp) / u128::from(n);
            (m.id, w)
        })
        .collect();
    raw.sort_by_key(|&(id, _)| id);
    let max = raw
        .iter()
        .map(|&(_, w)| w)
        .chain(fixed.iter().map(|&f| u128::from(f)))
        .max()
        .unwrap_or(0);
    let shift = (128 - max.leading_zeros()).saturating_sub(32);
    let scale = |w: u128| u32::try_from(w >> shift).unwrap_or(u32::MAX);
    (
        raw.into_iter().map(|(id, w)| (id, scale(w))).collect(),
        fixed.iter().map(|&f| scale(u128::from(f))).collect(),
    )
}

/// Tracks the redirects sent to each member since its last report from the
/// dataplane's cumulative per-target counters: the counter's value when a member's
/// `seq` changes is the new baseline.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    base: BTreeMap<u32, (u64, u64)>,
}

impl InFlight {
    /// `redirects`: cumulative redirects per member id. Returns the redirects since
    /// each member's last report. A counter that went backwards (the dataplane reset
    /// it) becomes the new baseline.
    pub fn update(
        &mut self,
        members: &[Load],
        redirects: &BTreeMap<u32, u64>,
    ) -> BTreeMap<u32, u64> {
        self.base
            .retain(|id, _| members.iter().any(|m| m.id == *id));
        members
            .iter()
            .map(|m| {
                let c = redirects.get(&m.id).copied().unwrap_or(0);
                let e = self.base.entry(m.id).or_insert((m.seq, c));
                if e.0 != m.seq || c < e.1 {
                    *e = (m.seq, c);
                }
                (m.id, c - e.1)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::tables;
    use lb_common::hash::mix64;
    use lb_common::maps::SLOTS;

    fn load(id: u32, capacity: u32, active_sas: u32) -> Load {
        Load {
            id,
            local: false,
            figures: Figures {
                active_sas,
                capacity,
                weight: 1,
                cpu_permille: 100,
                memory_permille: 200,
                crypto_overload_pct: 90,
                system_overload_pct: 95,
                crypto_load_weight: 100,
                system_load_weight: 0,
                drain: false,
            },
            reports: 100,
            seq: 1,
        }
    }

    fn w(members: &[Load]) -> Vec<(u32, u32)> {
        weights(&Policy::default(), members, &BTreeMap::new())
    }

    #[test]
    fn share_is_proportional_to_headroom() {
        // Limits 900 and 1800; headroom 800 and 800 + 0 in flight.
        let m = [load(1, 1000, 100), load(2, 2000, 1000)];
        assert_eq!(w(&m), [(1, 800), (2, 800)]);
        let m = [load(1, 1000, 0), load(2, 2000, 0)];
        assert_eq!(w(&m), [(1, 900), (2, 1800)]);
    }

    #[test]
    fn fixed_entries_compare_with_members_headroom() {
        // Headroom 900 beside a static target of capacity 1000 × weight 2.
        let m = [load(1, 1000, 0)];
        let (mw, fw) = weights_mixed(&Policy::default(), &m, &BTreeMap::new(), &[2000, 0]);
        assert_eq!((mw, fw), (vec![(1, 900)], vec![2000, 0]));
        // Scaled down together when the largest does not fit a u32.
        let (mw, fw) = weights_mixed(&Policy::default(), &m, &BTreeMap::new(), &[1 << 40]);
        assert_eq!(fw, [1 << 31]);
        assert_eq!(mw, [(1, 900 >> 9)]);
    }

    #[test]
    fn drain_over_limit_cpu_and_zero_weight_get_nothing() {
        let mut d = load(1, 1000, 0);
        d.figures.drain = true;
        let over = load(2, 1000, 900);
        let mut cpu = load(3, 1000, 0);
        cpu.figures.system_load_weight = 50;
        cpu.figures.cpu_permille = 951;
        let mut zero = load(4, 1000, 0);
        zero.figures.weight = 0;
        let ok = load(5, 1000, 899);
        assert_eq!(
            w(&[d, over, cpu, zero, ok]),
            [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1)]
        );
        // In flight counts toward the limit too.
        let f = BTreeMap::from([(5, 1)]);
        assert_eq!(weights(&Policy::default(), &[ok], &f), [(5, 0)]);
        // All at zero: an empty table, which the program treats as "no target".
        let t = tables::build(&[(0, 0), (1, 0)]);
        assert_eq!(t.len, 0);
    }

    #[test]
    fn weight_multiplies_and_large_values_scale_together() {
        let mut a = load(1, 1000, 0);
        a.figures.weight = 3;
        assert_eq!(w(&[a, load(2, 1000, 0)]), [(1, 2700), (2, 900)]);
        let mut big = load(1, u32::MAX, 0);
        big.figures.crypto_overload_pct = u16::MAX;
        big.figures.weight = u32::MAX;
        let mut half = big;
        half.id = 2;
        half.figures.weight = u32::MAX / 2;
        let got = w(&[big, half]);
        assert!(got[0].1 > u32::MAX / 2, "{got:?}");
        let ratio = f64::from(got[0].1) / f64::from(got[1].1);
        assert!((ratio - 2.0).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn slow_start_ramps_over_reports() {
        let p = Policy {
            include_local: true,
            slow_start_reports: 4,
        };
        let old = load(1, 1000, 0);
        let none = BTreeMap::new();
        for (reports, share) in [(1, 225), (2, 450), (3, 675), (4, 900), (9, 900)] {
            let mut new = load(2, 1000, 0);
            new.reports = reports;
            assert_eq!(weights(&p, &[old, new], &none), [(1, 900), (2, share)]);
        }
    }

    #[test]
    fn local_member_only_when_configured() {
        let mut me = load(1, 1000, 0);
        me.local = true;
        let m = [me, load(2, 1000, 0)];
        let mut p = Policy::default();
        assert_eq!(weights(&p, &m, &BTreeMap::new()), [(1, 900), (2, 900)]);
        p.include_local = false;
        assert_eq!(weights(&p, &m, &BTreeMap::new()), [(2, 900)]);
    }

    #[test]
    fn in_flight_tracks_redirects_since_each_report() {
        let mut f = InFlight::default();
        let mut m = [load(1, 1000, 0), load(2, 1000, 0)];
        let c = |a, b| BTreeMap::from([(1, a), (2, b)]);
        assert_eq!(f.update(&m, &c(100, 50)), c(0, 0));
        assert_eq!(f.update(&m, &c(130, 60)), c(30, 10));
        // Member 1 reports: its baseline moves, member 2's does not.
        m[0].seq = 2;
        assert_eq!(f.update(&m, &c(140, 70)), c(0, 20));
        assert_eq!(f.update(&m, &c(145, 70)), c(5, 20));
        // A reset counter becomes the baseline.
        assert_eq!(f.update(&m, &c(3, 70)), c(0, 20));
        // Departed members are forgotten.
        assert_eq!(f.update(&m[1..], &c(0, 71)), BTreeMap::from([(2, 21)]));
        assert_eq!(f.base.len(), 1);
    }

    /// Between two reports, a burst onto a table rebuilt every 50 redirects: with
    /// in-flight accounting the emptiest member gets about its headroom; without, it
    /// gets nearly the whole burst.
    #[test]
    fn in_flight_accounting_prevents_herding() {
        let members = [load(1, 1000, 850), load(2, 1000, 850), load(3, 1000, 0)];
        let burst = |count_in_flight: bool| {
            let mut sent = BTreeMap::<u32, u64>::new();
            let mut f = InFlight::default();
            let none = BTreeMap::new();
            for _ in 0..40 {
                let inf = f.update(&members, &sent);
                let ws = weights(
                    &Policy::default(),
                    &members,
                    if count_in_flight { &inf } else { &none },
                );
                let table =
                    tables::build(&ws.iter().map(|&(id, w)| (id as u16, w)).collect::<Vec<_>>());
                for k in 0..50u64 {
                    let slot = mix64(sent.values().sum::<u64>() * 50 + k) as usize & (SLOTS - 1);
                    // Key 0: no target (an empty table).
                    let to = if table.len == 0 { 0 } else { table.slots[slot] };
                    *sent.entry(u32::from(to)).or_default() += 1;
                }
            }
            sent
        };
        let with = burst(true);
        let without = burst(false);
        // 2000 clients; headroom 50 + 50 + 900 = 1000 is shared out, the rest goes
        // nowhere (all at their limit).
        assert!(with[&3] <= 900 + 50, "{with:?}");
        assert!(
            (1..=3).map(|i| with[&i]).sum::<u64>() <= 1000 + 50,
            "{with:?}"
        );
        assert!(with[&0] >= 950, "{with:?}");
        assert!(without[&3] > 1800, "{without:?}");
    }
}
