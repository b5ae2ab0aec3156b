//! VRRPv3 (RFC 9568) for one virtual router, as a deterministic sans-IO state machine.
//!
//! No sockets and no clock reads: the driver passes time in and moves bytes. It calls
//! [`Vrrp::start`] once, then in a loop:
//! - [`Vrrp::handle_packet`] for every IP datagram of protocol 112 received on the
//!   interface (source, destination and TTL from the IP header or `IP_PKTINFO`/`IP_TTL`);
//! - [`Vrrp::handle_timeout`] when the clock reaches [`Vrrp::poll_timeout`];
//! - [`Vrrp::shutdown`] on a clean stop, then one last drain of the transmits;
//!
//! and after each of these drains [`Vrrp::poll_transmit`] (send the payload from the
//! configured primary address with TTL/hop limit 255, multicast loop off) and
//! [`Vrrp::poll_event`] (on [`Event::BecameActive`]: add the VIPs, send
//! [`gratuitous_arp`](lb_common::wire::arp_nd::gratuitous_arp) or
//! [`unsolicited_na`](lb_common::wire::arp_nd::unsolicited_na) for each, set the XDP
//! active flag; on [`Event::BecameBackup`] or [`Event::Stopped`]: the reverse).
//!
//! ikelb always runs with Accept_Mode True (docs/protocol.md §3.7): the Active terminates
//! IKE on the VIP, so there is no switch for it. Adverts are never sent less than one
//! Advertisement_Interval apart (docs/protocol.md §3.10: faster adverts silence a
//! keepalived Active), so the "send an advert at once" answer to a priority-0 advert
//! only happens when the interval has passed; the priority-0 advert of
//! [`Vrrp::shutdown`] is the one exception.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lb_common::wire::vrrp::{
    self as wire, AddrList, ChecksumForm, Family, PRIORITY_OWNER, PRIORITY_STOP, Packet, Repr,
};
use tracing::{debug, info, warn};

mod handover;
pub mod io;
mod priority;
mod stats;
pub use priority::check_priority_change;
pub use stats::{DropReason, Stats};

/// Skew_Time = ((256 − Priority) × Active_Adver_Interval) / 256 (RFC 9568 §6.1), with the
/// interval in centiseconds; exact to the nanosecond (rounded down).
pub fn skew_time(priority: u8, interval_cs: u16) -> Duration {
    let ns = (256 - u64::from(priority)) * u64::from(interval_cs) * 10_000_000 / 256;
    Duration::from_nanos(ns)
}

/// Active_Down_Interval = 3 × Active_Adver_Interval + Skew_Time (RFC 9568 §6.1).
pub fn active_down_interval(priority: u8, interval_cs: u16) -> Duration {
    centiseconds(3 * u64::from(interval_cs)) + skew_time(priority, interval_cs)
}

fn centiseconds(cs: u64) -> Duration {
    Duration::from_millis(cs * 10)
}

/// Most peers whose checksum form is remembered.
const PEER_FORMS_MAX: usize = 256;

/// One virtual router's settings (RFC 9568 §6.1). [`Config::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// 1..=254, or 255 for the address owner. Default 100.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds, 1..=4095. Default 100; the failover goal
    /// needs 10 (docs/protocol.md §3.6).
    pub interval_cs: u16,
    /// Our source address: the interface's primary IPv4 address or its IPv6 link-local
    /// address. It breaks priority ties and is in the checksum's pseudo-header.
    pub primary: IpAddr,
    /// The virtual addresses, all of the primary's family, in advert order. Peers must
    /// advertise exactly this set (keepalived drops any other). RFC 9568 §5.2.9 wants the
    /// IPv6 link-local VIP first; that is not enforced, so the list can match a peer's.
    pub vips: Vec<IpAddr>,
    /// Preempt_Mode: a higher-priority Backup takes over from a lower-priority Active.
    /// Default true. The owner always preempts.
    pub preempt: bool,
    /// With `preempt`, how long after [`Vrrp::start`] a Backup still follows a
    /// lower-priority Active before preempting it (keepalived's `preempt_delay`).
    /// Default zero.
    pub preempt_delay: Duration,
    /// Unicast peers (keepalived's `unicast_peer`); empty means multicast to the group.
    pub peers: Vec<IpAddr>,
    /// Checksum form of sent adverts (IPv4 only; IPv6 always has the pseudo-header).
    /// Default [`ChecksumForm::Pseudo`], which keepalived 2.2.7 requires;
    /// [`ChecksumForm::Plain`] for RFC 9568 peers and keepalived's `v3_checksum_as_v2`.
    pub tx_checksum: ChecksumForm,
}

impl Config {
    /// A multicast instance with the RFC defaults.
    pub fn new(vrid: u8, primary: IpAddr, vips: Vec<IpAddr>) -> Config {
        Config {
            vrid,
            priority: wire::PRIORITY_DEFAULT,
            interval_cs: wire::INTERVAL_DEFAULT,
            primary,
            vips,
            preempt: true,
            preempt_delay: Duration::ZERO,
            peers: Vec::new(),
            tx_checksum: ChecksumForm::Pseudo,
        }
    }
}

/// A [`Config`] that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrrpError {
    #[error("VRID 0 is reserved (1..=255)")]
    Vrid,
    #[error("priority 0 is reserved for the stop advert (1..=255)")]
    Priority,
    #[error("advertisement interval {0} cs is outside 1..=4095")]
    Interval(u16),
    #[error("{0} virtual addresses: an advert holds 1..=255")]
    VipCount(usize),
    #[error("virtual address {0} is listed twice")]
    DuplicateVip(IpAddr),
    #[error("{0} is not of the primary address's family")]
    Family(IpAddr),
    #[error("the owner's priority 255 is set or left only by a restart")]
    OwnerChange,
}

/// RFC 9568 §6.3 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Initialize,
    Backup,
    Active,
}

/// What the driver acts on (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    BecameActive,
    BecameBackup,
    Stopped,
    /// The handover ([`Vrrp::hand_over`]) is done: the VIPs stay where they are for the
    /// next process; `active` when this instance held them.
    HandedOver {
        active: bool,
    },
}

/// An advert to send from [`Config::primary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The group of the family, or one unicast peer.
    pub dst: IpAddr,
    /// The VRRP message (the IP payload), checksummed for this destination.
    pub payload: Vec<u8>,
}

/// One virtual router on one interface.
#[derive(Debug)]
pub struct Vrrp {
    cfg: Config,
    family: Family,
    /// The VIPs as the advert carries them.
    vip_bytes: Vec<u8>,
    state: State,
    started: Option<Instant>,
    /// Active_Adver_Interval, centiseconds.
    active_interval: u16,
    active: Option<IpAddr>,
    /// Active_Down_Timer in Backup, Adver_Timer in Active.
    timer: Option<Instant>,
    last_sent: Option<Instant>,
    /// A handover waits for the Active's next advert.
    handing_over: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    peer_forms: BTreeMap<IpAddr, ChecksumForm>,
    /// Sources already warned about as no peer (bounded: the rest only counted).
    refused: BTreeSet<IpAddr>,
}

impl Vrrp {
    /// Checks `cfg`; the instance starts in Initialize.
    pub fn new(cfg: Config) -> Result<Vrrp, VrrpError> {
        if cfg.vrid == 0 {
            return Err(VrrpError::Vrid);
        }
        if cfg.priority == PRIORITY_STOP {
            return Err(VrrpError::Priority);
        }
        if !(1..=wire::INTERVAL_MAX).contains(&cfg.interval_cs) {
            return Err(VrrpError::Interval(cfg.interval_cs));
        }
        if !(1..=255).contains(&cfg.vips.len()) {
            return Err(VrrpError::VipCount(cfg.vips.len()));
        }
        let family = Family::of(cfg.primary);
        if let Some(&a) = cfg
            .vips
            .iter()
            .chain(&cfg.peers)
            .find(|a| Family::of(**a) != family)
        {
            return Err(VrrpError::Family(a));
        }
        let mut vip_bytes = Vec::with_capacity(cfg.vips.len() * family.addr_len());
        for (i, vip) in cfg.vips.iter().enumerate() {
            if cfg.vips[..i].contains(vip) {
                return Err(VrrpError::DuplicateVip(*vip));
            }
            match vip {
                IpAddr::V4(a) => vip_bytes.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => vip_bytes.extend_from_slice(&a.octets()),
            }
        }
        Ok(Vrrp {
            active_interval: cfg.interval_cs,
            cfg,
            family,
            vip_bytes,
            state: State::Initialize,
            started: None,
            active: None,
            timer: None,
            last_sent: None,
            handing_over: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            peer_forms: BTreeMap::new(),
            refused: BTreeSet::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The current Active's address (ours when Active), if one is known.
    pub fn active_addr(&self) -> Option<IpAddr> {
        self.active
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The checksum form `peer`'s last accepted advert had.
    pub fn peer_checksum(&self, peer: IpAddr) -> Option<ChecksumForm> {
        self.peer_forms.get(&peer).copied()
    }

    /// The Startup event (RFC 9568 §6.4.1): the owner becomes Active at once, others
    /// Backup. Ignored unless in Initialize; after [`shutdown`](Self::shutdown) it
    /// starts the instance again.
    pub fn start(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.started = Some(now);
        if self.cfg.priority == PRIORITY_OWNER {
            self.become_active(now);
        } else {
            self.active = None;
            self.active_interval = self.cfg.interval_cs;
            self.timer = Some(now + active_down_interval(self.cfg.priority, self.active_interval));
            self.become_backup();
        }
    }

    /// A received IP datagram of protocol 112 from `src` to `dst` whose TTL or hop limit
    /// was `ttl`; `payload` is the whole IP payload. Checked in the order of RFC 9568
    /// §7.1; a bad packet is counted and ignored.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) {
        if !self.heard_from(src) {
            return;
        }
        if ttl != wire::TTL {
            self.count_drop(DropReason::BadTtl, src);
            return;
        }
        let parsed =
            Packet::new_checked(payload, self.family).and_then(|p| Repr::parse(&p, src, dst));
        match parsed {
            Ok((repr, form)) => {
                let room =
                    self.peer_forms.len() < PEER_FORMS_MAX || self.peer_forms.contains_key(&src);
                if self.accept(now, src, &repr) && room {
                    self.peer_forms.insert(src, form);
                }
            }
            Err(e) => {
                let reason = match e {
                    wire::Error::Truncated | wire::Error::Length => DropReason::BadLength,
                    wire::Error::Version | wire::Error::Type => DropReason::BadVersion,
                    wire::Error::Checksum => DropReason::BadChecksum,
                    wire::Error::Family => DropReason::WrongFamily,
                };
                self.count_drop(reason, src);
            }
        }
    }

    /// An advert already parsed (and its checksum checked) from `from`, received with
    /// TTL or hop limit `ttl`. [`handle_packet`](Self::handle_packet) is the driver's
    /// entry; this one serves tests and drivers that parse themselves.
    pub fn handle_advert(&mut self, now: Instant, from: IpAddr, ttl: u8, adv: &Repr<'_>) {
        if !self.heard_from(from) {
            return;
        }
        if ttl != wire::TTL {
            self.count_drop(DropReason::BadTtl, from);
            return;
        }
        self.accept(now, from, adv);
    }

    /// Fires the timer that [`poll_timeout`](Self::poll_timeout) returned, if `now` has
    /// reached it; otherwise does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer.is_none_or(|t| now < t) {
            return;
        }
        match self.state {
            // Active_Down_Timer fired (§6.4.2).
            State::Backup => self.become_active(now),
            // Adver_Timer fired (§6.4.3).
            State::Active => {
                self.send_advert(now);
                self.finish_handover_after(now);
            }
            State::Initialize => self.timer = None,
        }
    }

    /// The Shutdown event: an Active sends one priority-0 advert so the Backups take over
    /// after Skew_Time (§6.4.3). Emits [`Event::Stopped`] unless already stopped.
    pub fn shutdown(&mut self, now: Instant) {
        match self.state {
            State::Initialize => return,
            State::Active => {
                self.queue_advert(PRIORITY_STOP);
                self.last_sent = Some(now);
            }
            State::Backup => {}
        }
        info!(vrid = self.cfg.vrid, "stopped");
        self.handing_over = false;
        self.state = State::Initialize;
        self.timer = None;
        self.active = None;
        self.events.push_back(Event::Stopped);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` in Initialize.
    /// Changes after every `handle_*`, `start` and `shutdown` call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// The next advert to send; drain after every input.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next state change to act on; drain after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// RFC 9568 §7.1 steps 5–6 and the Backup/Active advert rules of §6.4.2 and §6.4.3.
    /// True when the advert passed the checks.
    fn accept(&mut self, now: Instant, from: IpAddr, adv: &Repr<'_>) -> bool {
        if self.state == State::Initialize {
            // Not running: nothing to check against.
            return false;
        }
        if Family::of(from) != self.family || adv.addrs.family() != self.family {
            self.count_drop(DropReason::WrongFamily, from);
            return false;
        }
        if adv.vrid != self.cfg.vrid {
            self.count_drop(DropReason::WrongVrid, from);
            return false;
        }
        if self.cfg.priority == PRIORITY_OWNER {
            self.count_drop(DropReason::WeAreOwner, from);
            return false;
        }
        if !self.same_vips(adv.addrs) {
            if adv.priority != PRIORITY_OWNER {
                self.count_drop(DropReason::AddressMismatch, from);
                return false;
            }
            self.stats.owner_address_mismatch += 1;
        }
        if adv.priority != PRIORITY_STOP && adv.max_adver_int == 0 {
            self.count_drop(DropReason::BadInterval, from);
            return false;
        }
        self.stats.accepted += 1;
        match self.state {
            State::Initialize => {}
            State::Backup => self.backup_rx(now, from, adv),
            State::Active => self.active_rx(now, from, adv),
        }
        true
    }

    fn backup_rx(&mut self, now: Instant, from: IpAddr, adv: &Repr<'_>) {
        if adv.priority == PRIORITY_STOP {
            self.timer = Some(now + skew_time(self.cfg.priority, self.active_interval));
        } else if !self.may_preempt(now) || adv.priority >= self.cfg.priority {
            self.follow(now, from, adv);
        }
        // Otherwise discard: the Active_Down_Timer keeps running and we preempt.
    }

    fn active_rx(&mut self, now: Instant, from: IpAddr, adv: &Repr<'_>) {
        if adv.priority == PRIORITY_STOP {
            self.send_advert(now);
        } else if adv.priority > self.cfg.priority
            || (adv.priority == self.cfg.priority && from > self.cfg.primary)
        {
            self.follow(now, from, adv);
            self.become_backup();
            self.finish_handover_after(now);
        }
    }

    /// Takes `from` as the Active: learn its interval, restart Active_Down_Timer.
    fn follow(&mut self, now: Instant, from: IpAddr, adv: &Repr<'_>) {
        self.active = Some(from);
        self.active_interval = adv.max_adver_int;
        self.timer = Some(now + active_down_interval(self.cfg.priority, adv.max_adver_int));
    }

    fn may_preempt(&self, now: Instant) -> bool {
        self.cfg.preempt
            && self
                .started
                .is_none_or(|s| now >= s + self.cfg.preempt_delay)
    }

    fn same_vips(&self, addrs: AddrList<'_>) -> bool {
        // Any order (keepalived compares the sets too); counts equal and both ways in.
        addrs.count() == self.cfg.vips.len()
            && addrs.iter().all(|a| self.cfg.vips.contains(&a))
            && self.cfg.vips.iter().all(|v| addrs.iter().any(|a| a == *v))
    }

    fn become_backup(&mut self) {
        info!(vrid = self.cfg.vrid, active = ?self.active, "became backup");
        self.state = State::Backup;
        self.events.push_back(Event::BecameBackup);
    }

    fn become_active(&mut self, now: Instant) {
        info!(
            vrid = self.cfg.vrid,
            priority = self.cfg.priority,
            "became active"
        );
        self.state = State::Active;
        self.active = Some(self.cfg.primary);
        self.stats.became_active += 1;
        self.events.push_back(Event::BecameActive);
        self.send_advert(now);
    }

    /// Sends an advert now if the last one is an interval old, else moves the
    /// Adver_Timer to that moment; either way the Adver_Timer then runs.
    fn send_advert(&mut self, now: Instant) {
        let interval = centiseconds(u64::from(self.cfg.interval_cs));
        match self.last_sent {
            Some(last) if now < last + interval => self.timer = Some(last + interval),
            _ => {
                self.queue_advert(self.cfg.priority);
                self.last_sent = Some(now);
                self.timer = Some(now + interval);
            }
        }
    }

    fn queue_advert(&mut self, priority: u8) {
        // `new` checked the count and family, so neither AddrList::new nor emit fails.
        let Ok(addrs) = AddrList::new(self.family, &self.vip_bytes) else {
            return;
        };
        let repr = Repr {
            vrid: self.cfg.vrid,
            priority,
            max_adver_int: self.cfg.interval_cs,
            addrs,
        };
        let group = [self.family.group()];
        let dsts = if self.cfg.peers.is_empty() {
            &group[..]
        } else {
            &self.cfg.peers[..]
        };
        for &dst in dsts {
            let mut payload = vec![0; repr.buffer_len()];
            let mut packet = Packet::new_unchecked(&mut payload[..], self.family);
            if repr
                .emit(&mut packet, self.cfg.primary, dst, self.cfg.tx_checksum)
                .is_ok()
            {
                self.stats.sent += 1;
                self.transmits.push_back(Transmit { dst, payload });
            }
        }
    }

    /// With unicast peers configured, only they are heard; a refused source is counted,
    /// and logged the first time.
    fn heard_from(&mut self, src: IpAddr) -> bool {
        if self.cfg.peers.is_empty() || self.cfg.peers.contains(&src.to_canonical()) {
            return true;
        }
        if self.refused.len() < PEER_FORMS_MAX && self.refused.insert(src) {
            warn!(vrid = self.cfg.vrid, %src, "advert from a source that is not a configured peer: ignored");
        }
        self.count_drop(DropReason::NotPeer, src);
        false
    }

    fn count_drop(&mut self, reason: DropReason, from: IpAddr) {
        self.stats.dropped[reason as usize] += 1;
        debug!(vrid = self.cfg.vrid, %from, ?reason, "advert dropped");
    }
}

#[cfg(test)]
mod tests;
