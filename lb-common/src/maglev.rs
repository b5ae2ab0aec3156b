//! Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4) with weights: the
//! lookup table the XDP program indexes by client hash to pick the member of a client
//! that cannot follow a redirect (docs/architecture.md §8).
//!
//! Each member walks its own permutation of the table (offset and skip from a hash of
//! its name, so every node and every restart computes the same table) and claims the
//! next free entry on its turn. A member gets turns in proportion to its weight: each
//! round adds its weight to a credit, and every full `max weight` of credit is a turn.
//! So its share of entries follows the weight, and a change of one member's weight or
//! presence moves mostly the entries it gains or loses (Maglev's minimal disruption);
//! the connection table keeps established clients where they are regardless.

use crate::forward::{MAGLEV_SIZE, NO_MEMBER};

extern crate alloc;
use alloc::vec;
use alloc::vec::Vec;

/// One member of the table: its target index (what entries hold), a stable key (a
/// hash of its name, [`member_key`]) and its weight (0: no new clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub index: u16,
    pub key: u64,
    pub weight: u32,
}

/// Stable key of a member name: FNV-1a, then the murmur3 finaliser to spread it.
pub fn member_key(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    crate::hash::mix64(h)
}

/// The `MAGLEV_SIZE` entries for `members` (members of weight 0 get none; with no
/// positive weight every entry is [`NO_MEMBER`]).
pub fn populate(members: &[Member]) -> Vec<u16> {
    let m = u64::from(MAGLEV_SIZE);
    let mut table = vec![NO_MEMBER; MAGLEV_SIZE as usize];
    // Sorted by key: the table depends on the member set, not on the order it came in
    // (cluster reports arrive in any order).
    let mut live: Vec<&Member> = members.iter().filter(|x| x.weight > 0).collect();
    live.sort_by_key(|x| (x.key, x.index));
    let Some(wmax) = live.iter().map(|x| u64::from(x.weight)).max() else {
        return table;
    };
    let perm: Vec<(u64, u64)> = live
        .iter()
        .map(|x| {
            let offset = crate::hash::mix64(x.key ^ 0x6f66_6673_6574_0000) % m;
            let skip = crate::hash::mix64(x.key ^ 0x0000_0073_6b69_7000) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; live.len()];
    let mut credit = vec![0u64; live.len()];
    let mut filled = 0u32;
    while filled < MAGLEV_SIZE {
        for (i, x) in live.iter().enumerate() {
            credit[i] += u64::from(x.weight);
            if credit[i] < wmax {
                continue;
            }
            credit[i] -= wmax;
            let (offset, skip) = perm[i];
            // A permutation of all M entries (M prime, 1 ≤ skip < M): a free entry is
            // found within M steps while any is left.
            loop {
                let c = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if table[c] == NO_MEMBER {
                    table[c] = x.index;
                    filled += 1;
                    break;
                }
            }
            if filled == MAGLEV_SIZE {
                break;
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::{addr_words, client_hash};
    extern crate std;
    use std::collections::BTreeMap;

    fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Member {
                index: i as u16,
                key: member_key(std::format!("gw{i}").as_bytes()),
                weight: w,
            })
            .collect()
    }

    fn shares(t: &[u16]) -> BTreeMap<u16, usize> {
        let mut m = BTreeMap::new();
        for &x in t {
            *m.entry(x).or_default() += 1;
        }
        m
    }

    /// The member of IPv4 client 10.a.b.c.
    fn pick(t: &[u16], a: [u8; 4]) -> u16 {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&a);
        t[(client_hash(&addr_words(false, &b)) % MAGLEV_SIZE) as usize]
    }

    #[test]
    fn empty_and_zero_weights() {
        assert!(populate(&[]).iter().all(|&x| x == NO_MEMBER));
        assert!(populate(&members(&[0, 0])).iter().all(|&x| x == NO_MEMBER));
        let t = populate(&members(&[0, 3]));
        assert!(t.iter().all(|&x| x == 1));
    }

    #[test]
    fn entries_follow_the_weights() {
        let w = [1u32, 2, 3, 4, 6];
        let t = populate(&members(&w));
        let total: u32 = w.iter().sum();
        for (i, n) in shares(&t) {
            let want = f64::from(MAGLEV_SIZE) * f64::from(w[i as usize]) / f64::from(total);
            assert!(
                (n as f64 - want).abs() <= want * 0.01 + 1.0,
                "{i}: {n} vs {want}"
            );
        }
    }

    /// 1000 client addresses over 4 weighted members: each member's count is within
    /// ±10 % of its weight's share (issue's evidence list).
    #[test]
    fn thousand_clients_follow_the_weights() {
        let w = [1u32, 2, 3, 4];
        let t = populate(&members(&w));
        let total: u32 = w.iter().sum();
        let mut got = [0u32; 4];
        for i in 0..1000u32 {
            let [_, _, b, c] = i.to_be_bytes();
            got[usize::from(pick(&t, [10, 1, b, c]))] += 1;
        }
        for (i, &n) in got.iter().enumerate() {
            let want = 1000.0 * f64::from(w[i]) / f64::from(total);
            let dev = (f64::from(n) - want) / want;
            assert!(
                dev.abs() <= 0.10,
                "member {i}: {n} clients, {want} wanted ({got:?})"
            );
        }
    }

    #[test]
    fn a_lost_member_moves_only_its_entries_mostly() {
        let all = members(&[1, 1, 1, 1, 1]);
        let before = populate(&all);
        let after = populate(&all[..4]);
        // Entries of the lost member (4) must all move; of the others, few do.
        let moved_others = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != 4 && b != a)
            .count();
        assert!(
            moved_others < MAGLEV_SIZE as usize / 20,
            "{moved_others} entries of surviving members moved"
        );
        assert!(after.iter().all(|&x| x != 4));
    }

    #[test]
    fn a_new_member_takes_about_one_nth() {
        let all = members(&[1, 1, 1, 1, 1]);
        let before = populate(&all[..4]);
        let after = populate(&all);
        let taken = after.iter().filter(|&&x| x == 4).count() as f64;
        let want = f64::from(MAGLEV_SIZE) / 5.0;
        assert!((taken - want).abs() < want * 0.02, "{taken} vs {want}");
        let moved_between_old = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **a != 4 && b != a)
            .count();
        assert!(
            moved_between_old < MAGLEV_SIZE as usize / 20,
            "{moved_between_old}"
        );
    }

    #[test]
    fn order_of_members_does_not_matter() {
        let mut m = members(&[2, 1, 3]);
        let a = populate(&m);
        m.reverse();
        assert_eq!(a, populate(&m));
    }
}
