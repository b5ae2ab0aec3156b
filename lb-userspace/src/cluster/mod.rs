//! The cluster's load exchange, as a deterministic sans-IO state machine.
//!
//! Every member sends a load report ([`lb_common::wire::load`]) every interval; the
//! VIP's Active collects them into the member table that [`crate::target::weights`] turns into
//! slot weights. No sockets and no clock reads: the driver passes time in and moves
//! bytes. It creates a [`LoadExchange`] with the monotonic and the wall clock of one
//! moment, then in a loop:
//! - [`LoadExchange::handle_report`] for every UDP datagram on the exchange port;
//! - [`LoadExchange::handle_local_sample`] whenever the [`probe`] yields a count;
//! - [`LoadExchange::handle_timeout`] when the clock reaches
//!   [`LoadExchange::poll_timeout`];
//!
//! and after each of these drains [`LoadExchange::poll_transmit`] (send the payload to
//! the multicast group or every unicast peer, multicast loop off) and
//! [`LoadExchange::poll_event`], and reads [`LoadExchange::members`] when it rebuilds
//! the slot table.
//!
//! A report counts only if, in this order: it parses; its key id is one of ours; its
//! tag verifies (HMAC-SHA256/128, constant-time); it is not our own; its timestamp is
//! within the allowed clock skew of ours; its sequence number is new to the sender's
//! replay window; and the sender is not held out by flap damping. Every other report
//! is counted under its [`DropReason`] and dropped. A sender starts its sequence at
//! the Unix time in µs, so a restarted member continues above where it stopped. Its
//! replay window is kept until any report it ever sent is older than the allowed
//! skew, so a replay after the window is forgotten is still dropped as too old.

pub mod adopt;
mod auth;
mod damping;
mod drain;
pub mod fetch;
pub mod io;
mod member;
pub mod migrate;
mod mixed;
pub mod probe;
mod reconfig;
mod settings;
mod stats;
pub mod status;
mod system;
pub use reconfig::restart_only;
#[cfg(test)]
mod tests;
mod trust;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lb_common::wire::load::{self as wire, Figures, Identities, Packet, Repr};
use tracing::{debug, info, warn};

pub use auth::{Keyring, ReplayWindow, Seen, WINDOW, tag, verify};
pub use damping::{Admit, Damping, FlapState};
pub use member::Member;
pub use stats::{DropReason, Stats};
pub use trust::{Trust, in_prefix, unicast_host};

use crate::target::Identity;

/// Default report interval.
pub const INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Default holdtime, in report intervals.
pub const HOLD_INTERVALS: u32 = 3;
/// Default allowed difference between a report's timestamp and our clock.
pub const SKEW_DEFAULT: Duration = Duration::from_secs(10);
/// Most senders remembered at once.
pub const PEERS_MAX: usize = 1024;
/// Without synchronised clocks, how far a sender's sequence number may run ahead of
/// the time since its last accepted report (a sender counts in µs of its clock).
pub const SEQ_SLACK: Duration = Duration::from_secs(60);
/// Least time between two warnings about one sender's clock.
const SKEW_LOG_EVERY: Duration = Duration::from_secs(10);

/// This node as a member: what its reports say besides the sampled load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMember {
    /// Identities clients are redirected to (1..=4; IPv4, IPv6, FQDN).
    pub identities: Vec<Identity>,
    /// Capacity, weight (1 = neutral, 0 = no new clients), limits and drain flag; the
    /// sampled figures ([`LocalLoad`]) replace the rest.
    pub figures: Figures,
}

/// One sample of this node's load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalLoad {
    pub active_sas: u32,
    /// CPU load in per mille of all CPUs.
    pub cpu_permille: u16,
    /// Memory in use in per mille of all memory.
    pub memory_permille: u16,
}

/// Load-exchange settings. [`Config::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Unique in the cluster; reports carrying it are our own.
    pub member_id: u32,
    pub interval: Duration,
    /// A member not heard for this long leaves the table. Default 3 intervals.
    pub holdtime: Duration,
    /// Reports whose timestamp is further than this from our clock are stale. `None`
    /// for clusters without synchronised clocks (replay protection then rests on the
    /// window alone, which a restart of the receiver forgets).
    pub max_skew: Option<Duration>,
    pub keys: Keyring,
    /// `Some` when this node reports its own load (every member); `None` to listen only.
    pub local: Option<LocalMember>,
    pub damping: Damping,
    pub trust: Trust,
}

impl Config {
    /// A member with the default timers and damping that only listens.
    pub fn new(member_id: u32, keys: Keyring) -> Config {
        Config {
            member_id,
            interval: INTERVAL_DEFAULT,
            holdtime: INTERVAL_DEFAULT * HOLD_INTERVALS,
            max_skew: Some(SKEW_DEFAULT),
            keys,
            local: None,
            damping: Damping::default(),
            trust: Trust::default(),
        }
    }

    /// Checks what [`LoadExchange::new`] relies on.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.interval.is_zero() {
            return Err(ClusterError::Interval);
        }
        if self.holdtime < self.interval {
            return Err(ClusterError::Holdtime);
        }
        if let Some(l) = &self.local {
            let n = l.identities.len();
            if n == 0 || n > wire::IDENTITIES_MAX {
                return Err(ClusterError::Identities(n));
            }
        }
        Ok(())
    }
}

/// A [`Config`] or [`Keyring`] that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("key {0} is listed twice")]
    DuplicateKey(u16),
    #[error("key {0} is shorter than {min} bytes", min = wire::KEY_MIN_LEN)]
    ShortKey(u16),
    #[error("the send key {0} is not among the keys")]
    NoSendKey(u16),
    #[error("the report interval is zero")]
    Interval,
    #[error("the holdtime is shorter than the report interval")]
    Holdtime,
    #[error("{0} identities: a report carries 1..=4")]
    Identities(usize),
}

/// A report to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The UDP payload, for the group or every unicast peer.
    pub payload: Vec<u8>,
}

/// Changes of the member table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Joined(u32),
    /// Not heard within the holdtime.
    Left(u32),
    /// Came back after flapping and is held out.
    HeldOut(u32),
}

/// What we know about one sender.
#[derive(Clone, Debug)]
struct Peer {
    addr: SocketAddr,
    window: ReplayWindow,
    last_heard: Instant,
    identities: Vec<Identity>,
    figures: Figures,
    /// (joined, reports since) while in the table.
    up: Option<(Instant, u64)>,
    flap: FlapState,
}

/// The load exchange of one node (see the module docs).
#[derive(Debug)]
pub struct LoadExchange {
    config: Config,
    /// A moment on both clocks: the wall clock is `wall0 + (now - mono0)`.
    mono0: Instant,
    wall0: Duration,
    seq: u64,
    next_send: Option<Instant>,
    local_load: LocalLoad,
    samples: u64,
    peers: BTreeMap<u32, Peer>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    /// When each sender's clock was last complained about.
    skew_logged: BTreeMap<u32, Instant>,
}

impl LoadExchange {
    /// `now` and `unix_now` (time since the Unix epoch) name the same moment. A
    /// reporting node sends its first report at the first [`Self::handle_timeout`].
    pub fn new(
        config: Config,
        now: Instant,
        unix_now: Duration,
    ) -> Result<LoadExchange, ClusterError> {
        config.validate()?;
        let next_send = config.local.as_ref().map(|_| now);
        Ok(LoadExchange {
            mono0: now,
            wall0: unix_now,
            seq: u64::try_from(unix_now.as_micros()).unwrap_or(u64::MAX / 2),
            next_send,
            local_load: LocalLoad::default(),
            samples: 0,
            peers: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            skew_logged: BTreeMap::new(),
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Re-anchors the wall clock (after a clock step).
    pub fn set_wall_clock(&mut self, now: Instant, unix_now: Duration) {
        self.mono0 = now;
        self.wall0 = unix_now;
    }

    /// Replaces the keys (a rollover step); takes effect with the next report.
    pub fn set_keys(&mut self, keys: Keyring) {
        self.config.keys = keys;
    }

    /// Starts or stops draining, and tells the cluster at once.
    pub fn set_drain(&mut self, now: Instant, drain: bool) {
        if let Some(l) = &mut self.config.local
            && l.figures.drain != drain
        {
            l.figures.drain = drain;
            self.send_report(now);
        }
    }

    /// This node's figures: the configured ones with the latest sample.
    fn local_figures(&self, l: &LocalMember) -> Figures {
        Figures {
            active_sas: self.local_load.active_sas,
            cpu_permille: self.local_load.cpu_permille,
            memory_permille: self.local_load.memory_permille,
            ..l.figures
        }
    }

    fn wall(&self, now: Instant) -> Duration {
        match now.checked_duration_since(self.mono0) {
            Some(d) => self.wall0 + d,
            None => self.wall0.saturating_sub(self.mono0 - now),
        }
    }

    fn wall_ms(&self, now: Instant) -> u64 {
        u64::try_from(self.wall(now).as_millis()).unwrap_or(u64::MAX)
    }

    fn wall_us(&self, now: Instant) -> u64 {
        u64::try_from(self.wall(now).as_micros()).unwrap_or(u64::MAX)
    }

    /// A report's clock is off by more than the allowed skew: say so loudly (a node
    /// whose clock is wrong drops every report and is dropped by every peer), but
    /// once per [`SKEW_LOG_EVERY`] per sender.
    fn log_skew(&mut self, now: Instant, member: u32, from: SocketAddr, offset_ms: i128) {
        if self
            .skew_logged
            .get(&member)
            .is_some_and(|&t| now < t + SKEW_LOG_EVERY)
        {
            return;
        }
        if self.skew_logged.len() >= PEERS_MAX {
            self.skew_logged.clear();
        }
        self.skew_logged.insert(member, now);
        warn!(
            member,
            %from,
            offset_ms,
            "load report dropped: the sender's clock differs from ours by more than the allowed skew"
        );
    }

    /// A datagram arrived from `from`. Returns why it was dropped, if it was; either
    /// way it is counted in [`Self::stats`].
    pub fn handle_report(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let r = self.accept(now, from, bytes);
        match r {
            Ok(()) => self.stats.accepted += 1,
            Err(why) => {
                self.stats.dropped[why as usize] += 1;
                debug!(%from, reason = why.name(), "load report dropped");
            }
        }
        r
    }

    fn accept(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Result<(), DropReason> {
        let pkt = Packet::new_checked(bytes).map_err(|_| DropReason::Malformed)?;
        let repr = Repr::parse(&pkt).map_err(|_| DropReason::Malformed)?;
        let key = self
            .config
            .keys
            .get(repr.key_id)
            .ok_or(DropReason::UnknownKey)?;
        if !verify(key, pkt.signed(), pkt.tag()) {
            return Err(DropReason::BadTag);
        }
        if repr.member_id == self.config.member_id {
            return Err(DropReason::Own);
        }
        let trust = &self.config.trust;
        if !trust.key_allows(repr.key_id, repr.member_id) {
            return Err(DropReason::WrongKey);
        }
        if !trust.source_allows(repr.member_id, from.ip()) {
            return Err(DropReason::BadSource);
        }
        let identities = member::identities_of(&repr).ok_or(DropReason::Malformed)?;
        if let Some(skew) = self.config.max_skew {
            let ours = self.wall_ms(now);
            let skew_ms = u64::try_from(skew.as_millis()).unwrap_or(u64::MAX);
            let late = repr.timestamp_ms.saturating_add(skew_ms) < ours;
            if late || repr.timestamp_ms > ours.saturating_add(skew_ms) {
                let offset = i128::from(repr.timestamp_ms) - i128::from(ours);
                self.log_skew(now, repr.member_id, from, offset);
                return Err(if late {
                    DropReason::TooOld
                } else {
                    DropReason::TooNew
                });
            }
            // Senders count in µs of their clock: a number beyond ours plus the skew
            // was never sent by an honest member, and accepting it would hold every
            // later real report below the window.
            let skew_us = u64::try_from(skew.as_micros()).unwrap_or(u64::MAX);
            if repr.seq > self.wall_us(now).saturating_add(skew_us) {
                return Err(DropReason::BadSequence);
            }
        } else if let Some(p) = self.peers.get(&repr.member_id)
            && let Some(top) = p.window.top()
        {
            let since = now.saturating_duration_since(p.last_heard) + SEQ_SLACK;
            if repr.seq > top.saturating_add(u64::try_from(since.as_micros()).unwrap_or(u64::MAX)) {
                return Err(DropReason::BadSequence);
            }
        }
        if !identities
            .iter()
            .all(|i| self.config.trust.identity_allows(i))
        {
            return Err(DropReason::BadIdentity);
        }
        if !self.peers.contains_key(&repr.member_id) && self.peers.len() >= PEERS_MAX {
            return Err(DropReason::TableFull);
        }
        let peer = self.peers.entry(repr.member_id).or_insert_with(|| Peer {
            addr: from,
            window: ReplayWindow::default(),
            last_heard: now,
            identities: identities.clone(),
            figures: repr.figures,
            up: None,
            flap: FlapState::default(),
        });
        let newest = peer.window.top().is_none_or(|top| repr.seq > top);
        if peer.window.accept(repr.seq) == Seen::Replayed {
            return Err(DropReason::Replayed);
        }
        peer.last_heard = now;
        if !newest {
            // Late but new: it proves the sender alive, its figures are outdated.
            return Ok(());
        }
        peer.addr = from;
        peer.identities = identities;
        peer.figures = repr.figures;
        match &mut peer.up {
            Some((_, reports)) => *reports += 1,
            None => match peer.flap.admit(&self.config.damping, now) {
                Admit::Yes => {
                    peer.up = Some((now, 1));
                    info!(member = repr.member_id, %from, "member joined");
                    self.events.push_back(Event::Joined(repr.member_id));
                }
                Admit::HeldOut { first } => {
                    if first {
                        info!(
                            member = repr.member_id,
                            flaps = peer.flap.flaps,
                            "member held out"
                        );
                        self.events.push_back(Event::HeldOut(repr.member_id));
                    }
                    return Err(DropReason::HeldOut);
                }
            },
        }
        Ok(())
    }

    /// A new sample of this node's load; the next report carries it.
    pub fn handle_local_sample(&mut self, _now: Instant, load: LocalLoad) {
        self.local_load = load;
        self.samples += 1;
    }

    /// Expires members and sends the report that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let hold = self.config.holdtime;
        let d = self.config.damping;
        for (&id, p) in &mut self.peers {
            if p.up.is_some() && p.last_heard + hold <= now {
                p.up = None;
                p.flap.flap(&d, now);
                info!(member = id, "member left: not heard within the holdtime");
                self.events.push_back(Event::Left(id));
            }
        }
        // Forget a sender once every report it sent is too old to pass the skew check.
        let forget = hold + self.config.max_skew.unwrap_or(Duration::from_secs(3600));
        self.peers
            .retain(|_, p| p.up.is_some() || p.last_heard + forget > now || !p.flap.idle(&d, now));
        if self.next_send.is_some_and(|t| now >= t) {
            self.send_report(now);
        }
    }

    fn send_report(&mut self, now: Instant) {
        // The sequence follows our clock in µs (never backwards), so receivers can
        // bound it by theirs; more than one report per µs still counts up.
        let clock = self.wall_us(now);
        let Some(local) = &self.config.local else {
            return;
        };
        self.seq = (self.seq + 1).max(clock);
        let ids: Vec<wire::Identity<'_>> = local.identities.iter().map(Identity::to_wire).collect();
        let repr = Repr {
            key_id: self.config.keys.send_id(),
            member_id: self.config.member_id,
            seq: self.seq,
            timestamp_ms: self.wall_ms(now),
            identities: Identities::Slice(&ids),
            figures: self.local_figures(local),
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        let mut pkt = Packet::new_unchecked(&mut buf[..]);
        // Identities were validated with the config; a failure here is a bug.
        if repr.emit(&mut pkt).is_err() {
            debug_assert!(false, "invalid local report");
            return;
        }
        let t = tag(self.config.keys.send_key(), pkt.signed());
        pkt.set_tag(&t);
        self.transmits.push_back(Transmit { payload: buf });
        self.stats.sent += 1;
        // On schedule: keep the cadence. Early (drain) or late: restart it from now.
        let next = match self.next_send {
            Some(t) if t <= now && now < t + self.config.interval => t + self.config.interval,
            _ => now + self.config.interval,
        };
        self.next_send = Some(next);
    }

    /// When to call [`Self::handle_timeout`]: the next report or the next expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self
            .peers
            .values()
            .filter(|p| p.up.is_some())
            .map(|p| p.last_heard + self.config.holdtime)
            .min();
        match (self.next_send, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next report to send; call until `None` after every input.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next change of the table; call until `None` after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The members in the table, by id, this node included when it reports.
    pub fn members(&self) -> Vec<Member> {
        let mut v: Vec<Member> = self
            .peers
            .iter()
            .filter_map(|(&id, p)| {
                let (joined, reports) = p.up?;
                Some(Member {
                    id,
                    local: false,
                    addr: Some(p.addr),
                    identities: p.identities.clone(),
                    figures: p.figures,
                    seq: p.window.top().unwrap_or(0),
                    last_heard: p.last_heard,
                    joined,
                    reports,
                })
            })
            .collect();
        if let Some(l) = &self.config.local {
            v.push(Member {
                id: self.config.member_id,
                local: true,
                addr: None,
                identities: l.identities.clone(),
                figures: self.local_figures(l),
                seq: self.samples,
                last_heard: self.mono0,
                joined: self.mono0,
                reports: self.samples,
            });
            v.sort_by_key(|m| m.id);
        }
        v
    }

    /// Senders that report but are held out by flap damping.
    pub fn held_out(&self) -> Vec<u32> {
        self.peers
            .iter()
            .filter(|(_, p)| p.up.is_none() && p.flap.held())
            .map(|(&id, _)| id)
            .collect()
    }
}
