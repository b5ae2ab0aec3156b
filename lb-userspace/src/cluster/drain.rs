//! Drains set on this node (`ikelb drain`): a drained member gets no share from the
//! next table rebuild on; a member's own id also sets the drain flag of its reports.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::info;

use super::LoadExchange;

/// A drain set on this node: `deadline` is when to log what the member still holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Drain {
    pub(super) deadline: Option<Instant>,
}

/// `ikelb drain` / `undrain` on this node. With a table (a balancer) any member can be
/// drained here; this node's own id also sets the drain flag of its reports, so the
/// other balancers follow. Without a table only this member's own id makes sense.
pub(super) fn set_drain(
    lx: &mut LoadExchange,
    builds_table: bool,
    drained: &mut BTreeMap<u32, Drain>,
    member: u32,
    drain: bool,
    deadline: Option<Instant>,
    now: Instant,
) -> Result<String, String> {
    let own = member == lx.config().member_id;
    if !own && !builds_table {
        return Err(format!(
            "member {member}: this node builds no slot table; drain it on the balancers \
             or on the member itself"
        ));
    }
    if own && lx.config().local.is_none() {
        return Err(format!(
            "member {member} is this node, which takes no clients (no identities)"
        ));
    }
    if own {
        lx.set_drain(now, drain);
    }
    let heard = lx.members().iter().any(|m| m.id == member);
    if drain {
        drained.insert(member, Drain { deadline });
    } else {
        drained.remove(&member);
    }
    let what = if drain { "draining" } else { "not draining" };
    info!(member, drain, own, heard, "drain changed");
    Ok(if heard || own {
        format!("member {member}: {what}")
    } else {
        format!("member {member}: {what} (not heard from yet)")
    })
}

/// The drains set here with the seconds left to each deadline.
pub(super) fn drained_rows(drained: &BTreeMap<u32, Drain>) -> Vec<(u32, Option<u64>)> {
    let now = Instant::now();
    drained
        .iter()
        .map(|(id, d)| {
            let left = d
                .deadline
                .map(|t| t.saturating_duration_since(now).as_secs());
            (*id, left)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::io::exchange_config;

    fn exchange(identities: &str) -> LoadExchange {
        let c = crate::config::Config::parse(&format!(
            "[cluster]\nmember-id = 4\n{identities}[[cluster.key]]\nid = 1\n\
             secret = \"0123456789abcdef\"\n"
        ))
        .unwrap()
        .cluster
        .unwrap();
        LoadExchange::new(
            exchange_config(&c).unwrap(),
            Instant::now(),
            std::time::Duration::from_secs(1_800_000_000),
        )
        .unwrap()
    }

    #[test]
    fn who_may_drain_whom() {
        let now = Instant::now();
        let mut d = BTreeMap::new();
        // A balancer drains anyone, heard of or not.
        let mut lx = exchange("identities = [\"192.0.2.4\"]\n");
        let m = set_drain(&mut lx, true, &mut d, 7, true, Some(now), now).unwrap();
        assert!(m.contains("not heard from yet"), "{m}");
        assert_eq!(drained_rows(&d), vec![(7, Some(0))]);
        // Its own id: the reports carry the flag too.
        set_drain(&mut lx, true, &mut d, 4, true, None, now).unwrap();
        assert!(lx.config().local.as_ref().unwrap().figures.drain);
        set_drain(&mut lx, true, &mut d, 4, false, None, now).unwrap();
        assert!(!lx.config().local.as_ref().unwrap().figures.drain);
        assert_eq!(d.len(), 1);
        // A plain member drains only itself.
        let mut d = BTreeMap::new();
        let e = set_drain(&mut lx, false, &mut d, 7, true, None, now).unwrap_err();
        assert!(e.contains("builds no slot table"), "{e}");
        // A node without identities takes no clients to drain.
        let mut lx = exchange("");
        let e = set_drain(&mut lx, true, &mut d, 4, true, None, now).unwrap_err();
        assert!(e.contains("takes no clients"), "{e}");
    }
}
