//! The table a restarted VIP owner took over with the kept fast path (docs/architecture.md
//! §3.4). The load exchange starts with no member heard, and a table built from that
//! would send every new client to the first member to report: so the kept table stays
//! until every member in it has reported again, or until the holdtime passed (a member
//! not heard by then is gone, as it would be anyway). Its members count as established,
//! without slow start, until they leave: they did not rejoin, the balancer restarted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tracing::info;

use super::{Event, LoadExchange, Member};
use crate::target::weights::Load;

/// Drains the exchange's events, telling `kept` who left; whether there were any.
pub fn drain_events(lx: &mut LoadExchange, mut kept: Option<&mut Adopted>) -> bool {
    let mut any = false;
    while let Some(e) = lx.poll_event() {
        any = true;
        if let (Some(k), Event::Left(id)) = (kept.as_deref_mut(), e) {
            k.left(id);
        }
    }
    any
}

#[derive(Debug)]
pub struct Adopted {
    /// Member ids in the kept table, minus those that left since.
    members: BTreeSet<u32>,
    /// Until when installs wait; `None` once released.
    hold_until: Option<Instant>,
}

impl Adopted {
    pub fn new(members: BTreeSet<u32>, now: Instant, holdtime: Duration) -> Adopted {
        Adopted {
            members,
            hold_until: Some(now + holdtime),
        }
    }

    /// Whether the kept table still holds, given the members `up` now.
    pub fn holds(&mut self, now: Instant, up: &[Member]) -> bool {
        let Some(until) = self.hold_until else {
            return false;
        };
        let heard = self.members.iter().all(|id| up.iter().any(|m| m.id == *id));
        if heard || now >= until {
            info!(
                heard_all = heard,
                "load reports resumed: the kept table gives way to rebuilt ones"
            );
            self.hold_until = None;
            return false;
        }
        true
    }

    /// `l` with a kept member counted as fully ramped up.
    pub fn ramp(&self, mut l: Load, slow_start_reports: u32) -> Load {
        if self.members.contains(&l.id) {
            l.reports = l.reports.max(u64::from(slow_start_reports));
        }
        l
    }

    /// A member left the table: should it come back, it starts slowly again.
    pub fn left(&mut self, id: u32) {
        self.members.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u32, t: Instant) -> Member {
        Member::for_test(id, &[], 100, 1, t)
    }

    #[test]
    fn holds_until_every_member_reported_or_the_holdtime_passed() {
        let t0 = Instant::now();
        let hold = Duration::from_secs(3);
        let mut a = Adopted::new([1, 2].into(), t0, hold);
        assert!(a.holds(t0, &[]));
        assert!(a.holds(t0, &[member(1, t0)]));
        assert!(!a.holds(t0, &[member(2, t0), member(1, t0)]));
        // Released for good.
        assert!(!a.holds(t0, &[]));
        let mut a = Adopted::new([1, 2].into(), t0, hold);
        assert!(a.holds(t0 + hold - Duration::from_millis(1), &[member(1, t0)]));
        assert!(!a.holds(t0 + hold, &[member(1, t0)]));
    }

    #[test]
    fn kept_members_skip_slow_start_until_they_leave() {
        let t0 = Instant::now();
        let mut a = Adopted::new([1].into(), t0, Duration::from_secs(3));
        let l = member(1, t0).load();
        assert_eq!(a.ramp(l, 5).reports, 5);
        assert_eq!(a.ramp(member(2, t0).load(), 5).reports, 1);
        a.left(1);
        assert_eq!(a.ramp(l, 5).reports, 1);
    }
}
