//! `ikelb drain <own id> --migrate`: moving a draining member's established IKE SAs to
//! the other members, as a sans-IO plan ([`Migration`]) that the driver ([`run`])
//! feeds with charon's `list-sas` and whose redirects it sends over VICI.
//!
//! Each pass the driver lists the SAs and calls [`Migration::observe`]: an SA
//! redirected earlier that is gone has moved (its peer deleted it once established at
//! the new member); one still listed [`Options::settle`] after its redirect has failed
//! (charon redirects only peers that announced RFC 5685 support, and deletes the SA of
//! one that followed but never deleted it only after its half-open timeout, 30 s by
//! default, so a settle time below that tells the two apart). New established IKEv2
//! SAs this end responded to join the queue, so clients that arrived just before the
//! drain, or SAs rekeyed under a new id, are moved too. Then [`Migration::next_batch`]
//! gives up to [`Options::batch`] redirects, each to a member chosen as the slot
//! table chooses (below), and every answer goes to [`Migration::answered`].
//!
//! Targets: the other members this node hears reports from, weighted by
//! [`weights::weights`] (headroom × weight, slow start; nothing to members that drain,
//! are full or have weight 0) with the redirects this migration sent each member since
//! its last report counted against its headroom ([`InFlight`]), as the balancer counts
//! its own. Within a batch a smooth weighted round robin over those weights spreads
//! the SAs in proportion, recomputed after every pick. A member takes an SA only if
//! one of its identities serves the peer's address family (the REDIRECT names that
//! identity). SAs this end initiated and IKEv1 SAs cannot be redirected and are left
//! alone (counted as skipped).

pub mod cli;
pub mod run;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Member;
use crate::target::Identity;
use crate::target::weights::{self, InFlight, Policy};
use crate::vici::IkeSa;

/// How a migration proceeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Redirects per pass.
    pub batch: u32,
    /// Time between passes.
    pub interval: Duration,
    /// How long a redirected SA may stay before it counts as failed.
    pub settle: Duration,
}

impl Options {
    pub const BATCH_MAX: u32 = 10_000;
    pub const INTERVAL_MIN: Duration = Duration::from_millis(10);
    pub const INTERVAL_MAX: Duration = Duration::from_secs(3600);
    /// Below charon's default half-open timeout (30 s), after which it deletes a
    /// redirected SA whose peer never deleted it itself.
    pub const SETTLE: Duration = Duration::from_secs(20);

    /// Options from a control request, checked.
    pub fn new(batch: u32, interval: Duration) -> Result<Options, String> {
        if !(1..=Self::BATCH_MAX).contains(&batch) {
            return Err(format!("batch {batch}: must be 1..={}", Self::BATCH_MAX));
        }
        if !(Self::INTERVAL_MIN..=Self::INTERVAL_MAX).contains(&interval) {
            return Err(format!(
                "interval {interval:?}: must be 10 ms..=1 h between batches"
            ));
        }
        Ok(Options {
            batch,
            interval,
            settle: Self::SETTLE,
        })
    }
}

/// Where a migration stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Running,
    /// Nothing left to move or to wait for.
    Done,
    /// Stopped by `undrain` or shutdown.
    Stopped,
    /// charon could not be asked (see `error`).
    Failed,
}

/// Progress, for the control answer, `ikelb status` and the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// SAs taken into the migration so far.
    pub total: u64,
    /// Redirected, and gone from this member.
    pub migrated: u64,
    /// Redirect refused, or still here `settle` after it.
    pub failed: u64,
    /// Gone before their redirect (closed or rekeyed by the peer).
    pub ended: u64,
    /// Queued or in flight.
    pub remaining: u64,
    /// Redirected, not gone yet.
    pub in_flight: u64,
    /// Established SAs that cannot be redirected (initiated here, IKEv1), left alone.
    pub skipped: u64,
    /// The next SA waits: no member has headroom for it.
    pub waiting: bool,
    pub batches: u64,
    /// Redirects sent per member id.
    pub targets: BTreeMap<u32, u64>,
    pub batch: u32,
    pub interval_ms: u64,
}

impl State {
    pub const fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Done => "done",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

impl Progress {
    /// One line for the CLI, `ikelb status` and the log.
    pub fn summary(&self) -> String {
        let to: Vec<String> = self
            .targets
            .iter()
            .map(|(id, n)| format!("member {id}: {n}"))
            .collect();
        let mut s = format!(
            "migration {}: {} of {} migrated, {} failed, {} ended, {} remaining ({} in flight), \
             {} skipped; batches of {} every {} ms",
            self.state.name(),
            self.migrated,
            self.total,
            self.failed,
            self.ended,
            self.remaining,
            self.in_flight,
            self.skipped,
            self.batch,
            self.interval_ms
        );
        if !to.is_empty() {
            s.push_str(&format!("; redirected to {}", to.join(", ")));
        }
        if self.waiting {
            s.push_str("; waiting: no other member has headroom");
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("; error: {e}"));
        }
        s
    }
}

/// An SA that can be redirected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sa {
    id: u32,
    peer: IpAddr,
}

/// One redirect to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub ike_id: u32,
    pub peer: IpAddr,
    pub member: u32,
    pub gateway: Identity,
}

/// The plan of one migration (see the module documentation).
pub struct Migration {
    opts: Options,
    own_id: u32,
    policy: Policy,
    pending: VecDeque<Sa>,
    /// Redirected and still listed, by id: when.
    sent: BTreeMap<u32, Instant>,
    /// Every id ever queued or skipped, so an SA is taken once.
    seen: BTreeSet<u32>,
    /// Cumulative redirects per member, for [`InFlight`].
    sent_to: BTreeMap<u32, u64>,
    inflight: InFlight,
    /// Smooth weighted round robin state per member id.
    current: BTreeMap<u32, i128>,
    progress: Progress,
}

impl Migration {
    pub fn new(own_id: u32, opts: Options, slow_start_reports: u32) -> Migration {
        Migration {
            opts,
            own_id,
            policy: Policy {
                include_local: false,
                slow_start_reports,
            },
            pending: VecDeque::new(),
            sent: BTreeMap::new(),
            seen: BTreeSet::new(),
            sent_to: BTreeMap::new(),
            inflight: InFlight::default(),
            current: BTreeMap::new(),
            progress: Progress {
                batch: opts.batch,
                interval_ms: u64::try_from(opts.interval.as_millis()).unwrap_or(u64::MAX),
                ..Progress::default()
            },
        }
    }

    /// A fresh `list-sas` of this member's charon.
    pub fn observe(&mut self, now: Instant, sas: &[IkeSa]) {
        let listed: BTreeSet<u32> = sas.iter().filter_map(|s| s.uniqueid).collect();
        let p = &mut self.progress;
        self.sent.retain(|id, at| {
            if !listed.contains(id) {
                p.migrated += 1;
                false
            } else if now.saturating_duration_since(*at) >= self.opts.settle {
                p.failed += 1;
                false
            } else {
                true
            }
        });
        self.pending.retain(|s| {
            let here = listed.contains(&s.id);
            if !here {
                p.ended += 1;
            }
            here
        });
        for s in sas.iter().filter(|s| s.established()) {
            let Some(id) = s.uniqueid else { continue };
            if !self.seen.insert(id) {
                continue;
            }
            match (s.version, s.initiator, s.remote_host) {
                (Some(2), false, Some(peer)) => {
                    self.pending.push_back(Sa { id, peer });
                    p.total += 1;
                }
                _ => p.skipped += 1,
            }
        }
        self.refresh();
    }

    /// Up to a batch of redirects, each to a member with headroom; `members` as this
    /// node's load exchange knows them.
    pub fn next_batch(&mut self, members: &[Member]) -> Vec<Order> {
        let others: Vec<&Member> = members
            .iter()
            .filter(|m| !m.local && m.id != self.own_id)
            .collect();
        let loads: Vec<weights::Load> = others.iter().map(|m| m.load()).collect();
        let mut inflight = self.inflight.update(&loads, &self.sent_to);
        let mut out = Vec::new();
        self.progress.waiting = false;
        while out.len() < self.opts.batch as usize {
            let Some(&sa) = self.pending.front() else {
                break;
            };
            let Some((member, gateway)) = self.pick(&others, &loads, &inflight, sa.peer) else {
                self.progress.waiting = true;
                break;
            };
            self.pending.pop_front();
            *inflight.entry(member).or_insert(0) += 1;
            *self.sent_to.entry(member).or_insert(0) += 1;
            *self.progress.targets.entry(member).or_insert(0) += 1;
            out.push(Order {
                ike_id: sa.id,
                peer: sa.peer,
                member,
                gateway,
            });
        }
        if !out.is_empty() {
            self.progress.batches += 1;
        }
        out
    }

    /// The member for an SA from `peer`: smooth weighted round robin over the weights
    /// of the members whose identities serve its family.
    fn pick(
        &mut self,
        others: &[&Member],
        loads: &[weights::Load],
        inflight: &BTreeMap<u32, u64>,
        peer: IpAddr,
    ) -> Option<(u32, Identity)> {
        let weights = weights::weights(&self.policy, loads, inflight);
        let mut total = 0i128;
        let mut best: Option<(u32, &Identity, i128)> = None;
        for (id, w) in weights.into_iter().filter(|&(_, w)| w > 0) {
            let Some(gw) = others
                .iter()
                .find(|m| m.id == id)
                .and_then(|m| gateway_for(m, peer))
            else {
                continue;
            };
            total += i128::from(w);
            let c = self.current.entry(id).or_insert(0);
            *c += i128::from(w);
            if best.is_none_or(|(_, _, b)| *c > b) {
                best = Some((id, gw, *c));
            }
        }
        let (id, gw, _) = best?;
        *self.current.entry(id).or_insert(0) -= total;
        Some((id, gw.clone()))
    }

    /// charon's answer to the redirect of `order`: `Ok(matches)` or why it refused.
    pub fn answered(&mut self, now: Instant, order: &Order, r: Result<u32, String>) {
        match r {
            Ok(n) if n > 0 => {
                self.sent.insert(order.ike_id, now);
            }
            // The SA went away between the listing and the redirect.
            Ok(_) => self.progress.ended += 1,
            Err(_) => self.progress.failed += 1,
        }
        self.refresh();
    }

    /// Nothing left to redirect or to wait for.
    pub fn done(&self) -> bool {
        self.pending.is_empty() && self.sent.is_empty()
    }

    /// Ends the migration in `state`, with `error` for [`State::Failed`].
    pub fn finish(&mut self, state: State, error: Option<String>) {
        self.progress.state = state;
        self.progress.error = error;
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    fn refresh(&mut self) {
        self.progress.in_flight = self.sent.len() as u64;
        self.progress.remaining = (self.pending.len() + self.sent.len()) as u64;
    }
}

/// The first identity of `m` that a client at `peer` can follow (its family, or an
/// FQDN), as the fast path hands them out.
fn gateway_for(m: &Member, peer: IpAddr) -> Option<&Identity> {
    m.identities
        .iter()
        .find(|i| i.to_target().serves(peer.is_ipv6()))
}
