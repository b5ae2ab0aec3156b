//! The load composition: how much more a member can take, from its two kinds of load
//! and its own weight and overload limit for each (all in its report):
//!
//! - crypto load: active SAs, plus the redirects sent to it since its report, of
//!   `capacity × crypto-overload-pct`;
//! - system load: the higher of CPU and memory, of `system-overload-pct`.
//!
//! ```text
//! headroom = capacity × crypto limit × (1 − wc × crypto load) × (1 − ws × system load)
//! ```
//!
//! each load as a fraction of its limit (at most 1), each weight as a fraction
//! (0..=100 %). A weight says how much of the member's headroom that kind of load can
//! take away: at 100 a member at its limit is left nothing, at 50 half, at 0 the kind is
//! ignored. With crypto weight 100 and system weight 0 this is exactly the SAs it can
//! still take, `capacity × limit − SAs − in flight`. A product, not a sum, so that a
//! load every member shares (the same hardware under the same traffic, or one busy test
//! machine) scales every share alike and leaves the proportions to the SA counts.
//!
//! A member at its crypto limit or above its system limit gets nothing, each only when
//! that kind has a weight; so does one that drains or has weight 0.

use lb_common::wire::load::Figures;

/// `crypto-load-weight` when none is configured.
pub const CRYPTO_LOAD_WEIGHT_DEFAULT: u8 = 100;
/// `system-load-weight` when none is configured: system load can take away up to half
/// of a member's share.
pub const SYSTEM_LOAD_WEIGHT_DEFAULT: u8 = 50;
/// `crypto-overload-pct` when none is configured.
pub const CRYPTO_OVERLOAD_PCT_DEFAULT: u16 = 90;
/// `system-overload-pct` when none is configured. A machine cannot be more than 100 %
/// busy, so by default system load weighs but never excludes: members of a busy machine
/// still take clients.
pub const SYSTEM_OVERLOAD_PCT_DEFAULT: u16 = 100;

/// System load in per mille: the higher of CPU and memory.
pub fn system_permille(f: &Figures) -> u16 {
    f.cpu_permille.max(f.memory_permille)
}

/// The member's headroom in SAs (see the module docs), `in_flight` redirects counted as
/// SAs; 0 when it drains, has weight 0, is at its crypto limit or above its system
/// limit.
pub fn headroom(f: &Figures, in_flight: u64) -> u64 {
    if f.drain || f.weight == 0 {
        return 0;
    }
    let (wc, ws) = (
        u128::from(f.crypto_load_weight),
        u128::from(f.system_load_weight),
    );
    let limit = u128::from(f.capacity) * u128::from(f.crypto_overload_pct) / 100;
    let used = u128::from(f.active_sas) + u128::from(in_flight);
    // A peer's limit of 0 ‰ would divide by zero: 1 ‰ excludes as well.
    let system_limit = (u128::from(f.system_overload_pct) * 10).max(1);
    let system = u128::from(system_permille(f));
    if (wc > 0 && used >= limit) || (ws > 0 && system > system_limit) {
        return 0;
    }
    // Both factors scaled by 100 (the weights are percent).
    let crypto = limit * 100 - wc.min(100) * used.min(limit);
    let sys = 100 * system_limit - ws.min(100) * system;
    let h = crypto * sys / (100 * 100 * system_limit);
    u64::try_from(h).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member of 1000 SAs, limits 90 % of SAs and 100 % of system load.
    fn both(active_sas: u32, cpu: u16, memory: u16, wc: u8, ws: u8) -> Figures {
        Figures {
            active_sas,
            capacity: 1000,
            weight: 1,
            cpu_permille: cpu,
            memory_permille: memory,
            crypto_overload_pct: 90,
            system_overload_pct: 100,
            crypto_load_weight: wc,
            system_load_weight: ws,
            drain: false,
        }
    }

    #[test]
    fn crypto_and_system_load_compose_by_their_weights() {
        // Crypto alone: the SAs left below the limit.
        assert_eq!(headroom(&both(100, 200, 300, 100, 0), 0), 800);
        assert_eq!(headroom(&both(0, 200, 300, 100, 0), 0), 900);
        // System alone: 300 ‰ of 1000 ‰ takes 30 % of the 900.
        assert_eq!(headroom(&both(100, 200, 300, 0, 100), 0), 630);
        // Both: 800 × (1 − 0.5 × 0.3).
        assert_eq!(headroom(&both(100, 200, 300, 100, 50), 0), 680);
        assert_eq!(headroom(&both(100, 200, 300, 100, 100), 0), 560);
        // Crypto at weight 50: 900 − 0.5 × 100.
        assert_eq!(headroom(&both(100, 0, 0, 50, 0), 0), 850);
        // The busier of CPU and memory is the system load.
        assert_eq!(system_permille(&both(0, 650, 300, 1, 1)), 650);
        assert_eq!(headroom(&both(100, 300, 800, 100, 50), 0), 480);
        // In flight counts against the crypto load only (until the next report).
        assert_eq!(headroom(&both(100, 200, 300, 100, 50), 300), 425);
    }

    #[test]
    fn a_shared_system_load_keeps_the_proportions() {
        for load in [0, 300, 700, 1000] {
            let a = headroom(&both(100, load, 0, 100, 50), 0);
            let b = headroom(&both(500, load, 0, 100, 50), 0);
            assert_eq!(a, 2 * b, "system load {load}");
        }
    }

    #[test]
    fn overload_of_either_kind_excludes_the_member() {
        // At the crypto limit (in flight counted), however idle the machine.
        assert_eq!(headroom(&both(900, 0, 0, 100, 50), 0), 0);
        assert_eq!(headroom(&both(899, 0, 0, 100, 50), 1), 0);
        assert_eq!(headroom(&both(899, 0, 0, 100, 50), 0), 1);
        // Above the system limit, by CPU or by memory, however few SAs.
        let mut f = both(0, 951, 0, 100, 50);
        f.system_overload_pct = 95;
        assert_eq!(headroom(&f, 0), 0);
        f.cpu_permille = 0;
        f.memory_permille = 960;
        assert_eq!(headroom(&f, 0), 0);
        // At it: half of the 900 left, at weight 50.
        f.memory_permille = 950;
        assert_eq!(headroom(&f, 0), 450);
        // The default limit, 100 %, is never exceeded: a machine at full CPU and memory
        // is weighed as full, not taken out.
        assert_eq!(headroom(&both(0, 1000, 1000, 100, 50), 0), 450);
    }

    #[test]
    fn a_kind_of_weight_zero_is_ignored_limit_included() {
        // System weight 0: CPU and memory above their limit change nothing.
        let mut f = both(100, 1000, 990, 100, 0);
        f.system_overload_pct = 50;
        assert_eq!(headroom(&f, 0), 800);
        // Crypto weight 0: SAs beyond the crypto limit change nothing.
        assert_eq!(headroom(&both(5000, 200, 300, 0, 100), 0), 630);
        assert_eq!(headroom(&both(5000, 200, 300, 0, 100), 999), 630);
        // Neither: capacity × crypto limit, whatever the load.
        assert_eq!(headroom(&both(5000, 1000, 1000, 0, 0), 0), 900);
        // Drain and weight 0 still exclude.
        let mut d = both(0, 0, 0, 0, 0);
        d.drain = true;
        assert_eq!(headroom(&d, 0), 0);
        let mut z = both(0, 0, 0, 100, 100);
        z.weight = 0;
        assert_eq!(headroom(&z, 0), 0);
    }

    #[test]
    fn reported_extremes_neither_overflow_nor_divide_by_zero() {
        let f = Figures {
            active_sas: 0,
            capacity: u32::MAX,
            weight: u32::MAX,
            cpu_permille: u16::MAX,
            memory_permille: 0,
            crypto_overload_pct: u16::MAX,
            system_overload_pct: u16::MAX,
            crypto_load_weight: u8::MAX,
            system_load_weight: u8::MAX,
            drain: false,
        };
        assert!(headroom(&f, 0) > u64::from(u32::MAX));
        assert_eq!(headroom(&f, u64::MAX), 0);
        let zero = Figures {
            system_overload_pct: 0,
            ..both(0, 0, 0, 100, 100)
        };
        assert_eq!(headroom(&zero, 0), 900);
        assert_eq!(
            headroom(
                &Figures {
                    cpu_permille: 1,
                    ..zero
                },
                0
            ),
            0
        );
        assert_eq!(
            headroom(
                &Figures {
                    capacity: 0,
                    ..zero
                },
                0
            ),
            0
        );
    }
}
