//! Drains set on this node (`ikelb drain`): a drained member gets no share from the
//! next table rebuild on; a member's own id also sets the drain flag of its reports,
//! and with `--migrate` starts moving its IKE SAs to the other members ([`migrate`]).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};
use tracing::info;

use super::migrate::{self, run::Handle};
use super::{LoadExchange, Member};
use crate::config::{ClusterCfg, ProbeCfg};

/// The drains set here, and this member's migration.
#[derive(Default)]
pub(super) struct Drains {
    pub(super) drained: BTreeMap<u32, Drain>,
    /// The latest migration, running or ended (for status), until `undrain`.
    pub(super) migration: Option<Handle>,
}

/// Where a drain command's answer goes: a plain drain answers with a line, a migration
/// with an object (`message`, `migration`).
pub type Reply = tokio::sync::oneshot::Sender<Result<Value, String>>;

/// One `ikelb drain` / `undrain`.
pub(super) struct DrainCmd {
    pub(super) member: u32,
    pub(super) drain: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) migrate: Option<migrate::Options>,
}

impl Drains {
    /// Applies `cmd` and answers on `reply` (a migration answers from its thread after
    /// its first listing). Returns whether the slot table must be rebuilt. A migration
    /// is refused before anything changes: it runs only on the member itself (charon's
    /// VICI socket is local to it), and one at a time.
    pub(super) fn command(
        &mut self,
        lx: &mut LoadExchange,
        c: &ClusterCfg,
        builds_table: bool,
        cmd: DrainCmd,
        reply: Reply,
    ) -> bool {
        let member = cmd.member;
        if let Some(opts) = cmd.migrate.filter(|_| cmd.drain) {
            if member != lx.config().member_id {
                let _ = reply.send(Err(format!(
                    "member {member}: --migrate runs on the member itself, beside its charon: \
                     send `ikelb drain {member} --migrate` to member {member}'s control socket \
                     (`--socket /run/ikelb/member-{member}.sock` on that host)"
                )));
                return false;
            }
            if let Some(h) = self.migration.as_ref().filter(|h| h.running()) {
                let _ = reply.send(Err(format!(
                    "member {member}: a migration is already running ({}); `ikelb undrain \
                     {member}` stops it",
                    h.progress().summary()
                )));
                return false;
            }
            let now = Instant::now();
            let r = set_drain(
                lx,
                builds_table,
                &mut self.drained,
                member,
                true,
                cmd.deadline,
                now,
            );
            let msg = match r {
                Ok(m) => m,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return false;
                }
            };
            let vici = match &c.probe {
                ProbeCfg::Vici(p) => p.clone(),
                _ => crate::vici::DEFAULT_SOCKET.into(),
            };
            let start = migrate::run::Start {
                vici,
                own_id: member,
                opts,
                slow_start_reports: c.slow_start_reports,
                members: lx.members(),
            };
            let first: migrate::run::First = Box::new(move |r| {
                let _ = reply.send(match r {
                    Ok(p) => Ok(json!({"message": msg, "migration": p})),
                    Err(e) => Err(format!("{msg}, but the migration could not start: {e}")),
                });
            });
            match migrate::run::start(start, first) {
                Ok(h) => self.migration = Some(h),
                // `first` has told the requester.
                Err(e) => tracing::warn!(error = %e, "migration not started"),
            }
            return true;
        }
        let now = Instant::now();
        let r = set_drain(
            lx,
            builds_table,
            &mut self.drained,
            member,
            cmd.drain,
            cmd.deadline,
            now,
        );
        let ok = r.is_ok();
        let r = r.map(|mut m| {
            if !cmd.drain
                && member == lx.config().member_id
                && let Some(h) = self.migration.take().filter(Handle::running)
            {
                m.push_str(&format!("; {} (stopped)", h.progress().summary()));
            }
            Value::String(m)
        });
        let _ = reply.send(r);
        ok
    }

    /// Hands the members to a running migration.
    pub(super) fn members(&self, members: &[Member]) {
        if let Some(h) = self.migration.as_ref().filter(|h| h.running()) {
            h.set_members(members);
        }
    }
}

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
    use crate::cluster::settings::exchange_config;

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

    #[test]
    fn migrate_runs_only_on_the_member_itself() {
        use crate::vici::fake::{FakeCharon, FakeSa};
        let mut stays = FakeSa::new(9, "10.0.0.9");
        stays.follows = false;
        let fake = FakeCharon::start(vec![stays]);
        let c = crate::config::Config::parse(&format!(
            "[cluster]\nmember-id = 4\nidentities = [\"192.0.2.4\"]\nvici = \"{}\"\n\
             [[cluster.key]]\nid = 1\nsecret = \"0123456789abcdef\"\n",
            fake.path.display()
        ))
        .unwrap()
        .cluster
        .unwrap();
        let mut lx = exchange("identities = [\"192.0.2.4\"]\n");
        let mut d = Drains::default();
        let opts = migrate::Options {
            batch: 5,
            interval: std::time::Duration::from_millis(20),
            settle: std::time::Duration::from_secs(20),
        };
        let mut ask = |d: &mut Drains, member, drain, migrate| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let cmd = DrainCmd {
                member,
                drain,
                deadline: None,
                migrate,
            };
            d.command(&mut lx, &c, false, cmd, tx);
            rx.blocking_recv().unwrap()
        };
        // Another member's SAs are not reachable from here: refused, nothing drained.
        let e = ask(&mut d, 7, true, Some(opts)).unwrap_err();
        assert!(e.contains("runs on the member itself"), "{e}");
        assert!(d.drained.is_empty() && d.migration.is_none());
        // Its own: drained, and the answer carries the first progress.
        let r = ask(&mut d, 4, true, Some(opts)).unwrap();
        assert_eq!(r["message"], "member 4: draining", "{r}");
        assert_eq!(r["migration"]["total"], 1, "{r}");
        assert!(d.migration.as_ref().is_some_and(Handle::running));
        let e = ask(&mut d, 4, true, Some(opts)).unwrap_err();
        assert!(e.contains("already running"), "{e}");
        // Undrain stops it.
        let r = ask(&mut d, 4, false, None).unwrap();
        assert!(r.as_str().is_some_and(|m| m.contains("(stopped)")), "{r}");
        assert!(d.migration.is_none() && d.drained.is_empty());
    }
}
