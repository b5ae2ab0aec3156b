//! Weighted slot tables: pure functions from (target index, weight) to the `SLOTS`
//! entries the XDP program indexes by flow hash.

use lb_common::maps::{SLOTS, SlotTable};

use super::Target;

/// The slot table of one address family (`v6`): the targets that serve it, each under
/// its target index. The dataplane and the userspace chooser build theirs here.
pub fn family<'a>(targets: impl IntoIterator<Item = (u16, &'a Target)>, v6: bool) -> SlotTable {
    let members: Vec<(u16, u32)> = targets
        .into_iter()
        .filter(|(_, t)| t.identity.serves(v6))
        .map(|(i, t)| (i, t.weight))
        .collect();
    build(&members)
}

/// Spreads `SLOTS` slots over `members` (target index, weight) in proportion to the
/// weights (largest remainder), interleaved by smooth weighted round robin so a target's
/// slots are not one contiguous run. An empty or all-zero list gives an empty table.
pub fn build(members: &[(u16, u32)]) -> SlotTable {
    let mut t = SlotTable::default();
    let total: u64 = members.iter().map(|&(_, w)| u64::from(w)).sum();
    if total == 0 {
        return t;
    }
    // Largest-remainder quotas that add up to SLOTS exactly.
    let mut quota: Vec<u64> = members
        .iter()
        .map(|&(_, w)| u64::from(w) * SLOTS as u64 / total)
        .collect();
    let mut rest: Vec<(u64, usize)> = members
        .iter()
        .enumerate()
        .map(|(i, &(_, w))| (u64::from(w) * SLOTS as u64 % total, i))
        .collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let short = SLOTS as u64 - quota.iter().sum::<u64>();
    for &(_, i) in rest.iter().take(short as usize) {
        quota[i] += 1;
    }
    // Smooth weighted round robin over the quotas.
    let mut current: Vec<i64> = vec![0; members.len()];
    let sum = SLOTS as i64;
    for slot in t.slots.iter_mut() {
        let mut best = 0;
        for i in 0..members.len() {
            current[i] += quota[i] as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= sum;
        *slot = members[best].0;
    }
    t.len = SLOTS as u32;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(t: &SlotTable) -> std::collections::BTreeMap<u16, usize> {
        let mut m = std::collections::BTreeMap::new();
        for &s in &t.slots {
            *m.entry(s).or_default() += 1;
        }
        m
    }

    #[test]
    fn empty_and_zero_weights() {
        assert_eq!(build(&[]).len, 0);
        assert_eq!(build(&[(3, 0)]).len, 0);
    }

    #[test]
    fn proportional_and_exact() {
        let t = build(&[(0, 1), (1, 3)]);
        assert_eq!(t.len as usize, SLOTS);
        let c = counts(&t);
        assert_eq!(c[&0], 256);
        assert_eq!(c[&1], 768);
        let t = build(&[(5, 1), (6, 1), (7, 1)]);
        let c = counts(&t);
        assert_eq!(c.values().sum::<usize>(), SLOTS);
        assert!(c.values().all(|&n| n == 341 || n == 342), "{c:?}");
    }

    #[test]
    fn interleaved() {
        let t = build(&[(0, 1), (1, 1)]);
        assert!(t.slots.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn family_tables_hold_the_targets_that_serve_it() {
        use crate::target::{Identity, Owner};
        let t = |n: &str, id: &str, weight| Target {
            owner: Owner::Static(n.into()),
            identity: Identity::parse(id).unwrap(),
            weight,
        };
        let ts = [
            t("a", "198.51.100.11", 1),
            t("b", "2001:db8::12", 1),
            t("c", "gw.example.net", 3),
        ];
        let all = [(7, &ts[0]), (8, &ts[1]), (9, &ts[2])];
        assert_eq!(family(all, false), build(&[(7, 1), (9, 3)]));
        assert_eq!(family(all, true), build(&[(8, 1), (9, 3)]));
        assert_eq!(family([(7, &ts[0])], true).len, 0);
    }

    #[test]
    fn zero_weight_member_gets_nothing() {
        let c = counts(&build(&[(0, 0), (1, 5)]));
        assert_eq!(c.get(&0), None);
        assert_eq!(c[&1], SLOTS);
    }
}
