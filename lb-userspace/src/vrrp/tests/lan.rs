//! A simulated LAN of N instances on one virtual clock (quinn's `Pair`, for VRRP): every
//! advert goes through emit, the wire bytes and `handle_packet`, arriving one `LATENCY`
//! later. No sockets, no sleeps, the same result every run.

use super::*;

const LATENCY: Duration = Duration::from_millis(1);

struct Node {
    vrrp: Vrrp,
    up: bool,
    events: Vec<(Instant, Event)>,
    /// When each advert left, and its priority.
    sent: Vec<(Instant, IpAddr, u8)>,
}

struct Lan {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// Adverts in flight: arrival time, sender, advert.
    wire: Vec<(Instant, usize, Transmit)>,
}

impl Lan {
    fn new(cfgs: Vec<Config>) -> Lan {
        let t0 = Instant::now();
        let nodes = cfgs
            .into_iter()
            .map(|c| Node {
                vrrp: Vrrp::new(c).unwrap(),
                up: true,
                events: Vec::new(),
                sent: Vec::new(),
            })
            .collect();
        Lan {
            t0,
            now: t0,
            nodes,
            wire: Vec::new(),
        }
    }

    fn at(&self, ms: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(ms / 1000.0)
    }

    fn start(&mut self, i: usize) {
        self.nodes[i].up = true;
        self.nodes[i].vrrp.start(self.now);
        self.drain();
    }

    fn shutdown(&mut self, i: usize) {
        self.nodes[i].vrrp.shutdown(self.now);
        self.drain();
    }

    /// The process dies or the link goes down: it sends and hears nothing more.
    fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
    }

    fn next(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.up)
            .filter_map(|n| n.vrrp.poll_timeout());
        timers.chain(self.wire.iter().map(|w| w.0)).min()
    }

    /// Jumps to the next arrival or timer; arrivals are handled before timers.
    fn step(&mut self) {
        let Some(t) = self.next() else { return };
        self.now = t;
        let (due, later) = std::mem::take(&mut self.wire)
            .into_iter()
            .partition(|w| w.0 <= t);
        self.wire = later;
        for (_, from, tx) in due {
            self.deliver(from, &tx);
        }
        for n in self.nodes.iter_mut().filter(|n| n.up) {
            if n.vrrp.poll_timeout().is_some_and(|d| d <= t) {
                n.vrrp.handle_timeout(t);
            }
        }
        self.drain();
    }

    fn run_until(&mut self, t: Instant) {
        while self.next().is_some_and(|n| n <= t) {
            self.step();
        }
        self.now = t;
    }

    fn deliver(&mut self, from: usize, tx: &Transmit) {
        let src = self.nodes[from].vrrp.config().primary;
        let multicast = tx.dst.is_multicast();
        for (j, n) in self.nodes.iter_mut().enumerate() {
            if j != from && n.up && (multicast || n.vrrp.config().primary == tx.dst) {
                n.vrrp
                    .handle_packet(self.now, src, tx.dst, 255, &tx.payload);
            }
        }
    }

    fn drain(&mut self) {
        let now = self.now;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            while let Some(tx) = n.vrrp.poll_transmit() {
                if n.up {
                    n.sent.push((now, tx.dst, tx.payload[2]));
                    self.wire.push((now + LATENCY, i, tx));
                }
            }
            while let Some(e) = n.vrrp.poll_event() {
                n.events.push((now, e));
            }
        }
    }

    fn actives(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up && self.nodes[i].vrrp.state() == State::Active)
            .collect()
    }

    fn events(&self, i: usize) -> Vec<(Instant, Event)> {
        self.nodes[i].events.clone()
    }

    /// When node `i` last sent an advert at or before `t`.
    fn last_sent(&self, i: usize, t: Instant) -> Instant {
        self.nodes[i]
            .sent
            .iter()
            .map(|s| s.0)
            .filter(|&s| s <= t)
            .max()
            .unwrap()
    }
}

fn ns(d: u64) -> Duration {
    Duration::from_nanos(d)
}

#[test]
fn election_highest_priority_wins() {
    let mut lan = Lan::new(vec![cfg(2, 100, 100), cfg(3, 200, 100), cfg(4, 150, 100)]);
    for i in 0..3 {
        lan.start(i);
    }
    lan.run_until(lan.at(20_000.0));
    let t0 = lan.t0;
    // 3 × 100 cs + (56 × 100 / 256) cs = 3218.75 ms.
    let won = t0 + ns(3_218_750_000);
    assert_eq!(
        lan.events(1),
        [(t0, Event::BecameBackup), (won, Event::BecameActive)]
    );
    assert_eq!(lan.events(0), [(t0, Event::BecameBackup)]);
    assert_eq!(lan.events(2), [(t0, Event::BecameBackup)]);
    assert_eq!(lan.actives(), [1]);
    for i in [0, 2] {
        assert_eq!(lan.nodes[i].vrrp.active_addr(), Some(ip4(3)));
        assert_eq!(lan.nodes[i].vrrp.stats().accepted, 17);
        assert!(lan.nodes[i].sent.is_empty());
    }
    let sent: Vec<_> = lan.nodes[1].sent.iter().map(|s| s.0).collect();
    assert_eq!(sent.len(), 17);
    assert!(sent.windows(2).all(|w| w[1] - w[0] == 1000 * MS));
    assert!(lan.nodes[1].sent.iter().all(|s| s.1 == GROUP && s.2 == 200));
}

#[test]
fn ties_go_to_the_greater_primary_address() {
    let mut lan = Lan::new(vec![cfg(2, 100, 10), cfg(3, 100, 10)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(lan.at(2_000.0));
    let t0 = lan.t0;
    let both = t0 + ns(360_937_500);
    // Both time out together, both become Active; .2 hears .3 and steps back.
    assert_eq!(
        lan.events(0),
        [
            (t0, Event::BecameBackup),
            (both, Event::BecameActive),
            (both + LATENCY, Event::BecameBackup)
        ]
    );
    assert_eq!(
        lan.events(1),
        [(t0, Event::BecameBackup), (both, Event::BecameActive)]
    );
    assert_eq!(lan.actives(), [1]);
    assert_eq!(lan.nodes[0].vrrp.active_addr(), Some(ip4(3)));
}

#[test]
fn higher_priority_preempts_after_its_down_interval() {
    let mut lan = Lan::new(vec![cfg(2, 100, 100), cfg(3, 200, 100)]);
    lan.start(0);
    lan.run_until(lan.at(5_000.0));
    assert_eq!(lan.actives(), [0]);
    lan.start(1);
    lan.run_until(lan.at(20_000.0));
    let takeover = lan.at(5_000.0) + ns(3_218_750_000);
    assert_eq!(lan.events(1).last(), Some(&(takeover, Event::BecameActive)));
    assert_eq!(
        lan.events(0).last(),
        Some(&(takeover + LATENCY, Event::BecameBackup))
    );
    assert_eq!(lan.actives(), [1]);
    // The three lower-priority adverts B heard were accepted but not followed.
    assert_eq!(lan.nodes[1].vrrp.stats().accepted, 3);
    assert_eq!(lan.nodes[1].vrrp.active_addr(), Some(ip4(3)));
}

#[test]
fn without_preempt_a_working_active_stays() {
    let mut b = cfg(3, 200, 100);
    b.preempt = false;
    let mut lan = Lan::new(vec![cfg(2, 100, 100), b]);
    lan.start(0);
    lan.run_until(lan.at(5_000.0));
    lan.start(1);
    lan.run_until(lan.at(30_000.0));
    assert_eq!(lan.actives(), [0]);
    assert_eq!(lan.events(1).len(), 1);
    assert_eq!(lan.nodes[1].vrrp.active_addr(), Some(ip4(2)));
    // Once it dies, the Backup takes over one Active_Down_Interval after its last advert.
    lan.crash(0);
    lan.run_until(lan.at(40_000.0));
    let last = lan.last_sent(0, lan.at(30_000.0));
    let takeover = last + LATENCY + active_down_interval(200, 100);
    assert_eq!(lan.events(1).last(), Some(&(takeover, Event::BecameActive)));
}

#[test]
fn preempt_delay_follows_the_active_until_it_ends() {
    let mut b = cfg(3, 200, 100);
    b.preempt_delay = Duration::from_secs(10);
    let mut lan = Lan::new(vec![cfg(2, 100, 100), b]);
    lan.start(0);
    lan.run_until(lan.at(5_000.0));
    lan.start(1);
    lan.run_until(lan.at(30_000.0));
    // A's adverts leave at 3609.375 + k·1000 ms; the last one B follows arrives before
    // 15 s, and B takes over one Active_Down_Interval after that.
    let last_followed = lan.last_sent(0, lan.at(15_000.0) - LATENCY) + LATENCY;
    assert_eq!(last_followed, lan.at(14_610.375));
    let takeover = last_followed + active_down_interval(200, 100);
    assert_eq!(lan.events(1).last(), Some(&(takeover, Event::BecameActive)));
    assert_eq!(lan.actives(), [1]);
}

#[test]
fn priority_zero_hands_over_after_skew_time() {
    let mut lan = Lan::new(vec![cfg(2, 200, 10), cfg(3, 100, 10)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(lan.at(1_000.0));
    assert_eq!(lan.actives(), [0]);
    let stop = lan.now;
    lan.shutdown(0);
    assert_eq!(lan.nodes[0].sent.last(), Some(&(stop, GROUP, 0)));
    assert_eq!(lan.events(0).last(), Some(&(stop, Event::Stopped)));
    lan.run_until(lan.at(2_000.0));
    // Skew_Time at priority 100 and 10 cs: 6.09375 cs, instead of 36.09375.
    let takeover = stop + LATENCY + ns(60_937_500);
    assert_eq!(lan.events(1).last(), Some(&(takeover, Event::BecameActive)));
    assert_eq!(lan.actives(), [1]);
    // The stopped node hears nothing; restarted, it preempts again.
    assert_eq!(lan.nodes[0].vrrp.poll_timeout(), None);
    lan.start(0);
    lan.run_until(lan.at(3_000.0));
    let back = lan.at(2_000.0) + active_down_interval(200, 10);
    assert_eq!(lan.events(0).last(), Some(&(back, Event::BecameActive)));
    assert_eq!(
        lan.events(1).last(),
        Some(&(back + LATENCY, Event::BecameBackup))
    );
    assert_eq!(lan.actives(), [0]);
}

#[test]
fn crash_is_detected_after_active_down_interval() {
    let mut lan = Lan::new(vec![cfg(2, 200, 10), cfg(3, 100, 10)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(lan.at(1_000.0));
    lan.crash(0);
    lan.run_until(lan.at(2_000.0));
    let last = lan.last_sent(0, lan.at(1_000.0));
    assert_eq!(last, lan.at(921.875));
    let takeover = last + LATENCY + ns(360_937_500);
    assert_eq!(lan.events(1).last(), Some(&(takeover, Event::BecameActive)));
    // The COMPASS goal: under 0.4 s from the Active's last advert at 10 cs.
    assert!(takeover - last < Duration::from_millis(400));
}

#[test]
fn unicast_peers_elect_too() {
    let mut a = cfg(2, 150, 10);
    a.peers = vec![ip4(3)];
    let mut b = cfg(3, 100, 10);
    b.peers = vec![ip4(2)];
    let mut lan = Lan::new(vec![a, b]);
    lan.start(0);
    lan.start(1);
    lan.run_until(lan.at(2_000.0));
    assert_eq!(lan.actives(), [0]);
    assert!(lan.nodes[0].sent.iter().all(|s| s.1 == ip4(3)));
    assert_eq!(
        lan.nodes[1].vrrp.peer_checksum(ip4(2)),
        Some(ChecksumForm::Pseudo)
    );
    assert!(lan.nodes[1].vrrp.stats().accepted > 10);
}

#[test]
fn ipv6_instances_elect() {
    let ll = |x| IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, x));
    let vips = vec![
        ll(1),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    ];
    let mk = |me, prio| {
        let mut c = Config::new(10, ll(me), vips.clone());
        c.priority = prio;
        c.interval_cs = 10;
        c
    };
    let mut lan = Lan::new(vec![mk(2, 100), mk(3, 120)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(lan.at(2_000.0));
    assert_eq!(lan.actives(), [1]);
    assert!(
        lan.nodes[1]
            .sent
            .iter()
            .all(|s| s.1 == IpAddr::V6(wire::GROUP_V6))
    );
    assert_eq!(
        lan.nodes[0].vrrp.peer_checksum(ll(3)),
        Some(ChecksumForm::Pseudo)
    );
    assert_eq!(lan.nodes[0].vrrp.stats().dropped_total(), 0);
}

impl Lan {
    /// Node `i`'s process hands over and exits; the next one resumes after `gap_ms`.
    /// Returns when the old one sent its last advert.
    fn restart(&mut self, i: usize, gap_ms: f64) -> Instant {
        self.nodes[i].vrrp.hand_over(self.now);
        while !self.nodes[i]
            .events
            .iter()
            .any(|e| matches!(e.1, Event::HandedOver { .. }))
        {
            self.step();
        }
        let last = self.nodes[i].vrrp.last_advert().unwrap();
        let interval = self.nodes[i].vrrp.config().interval_cs;
        let c = self.nodes[i].vrrp.config().clone();
        self.run_until(last + Duration::from_secs_f64(gap_ms / 1000.0));
        self.nodes[i].vrrp = Vrrp::new(c).unwrap();
        self.nodes[i].vrrp.resume(self.now, last, interval);
        self.drain();
        last
    }
}

#[test]
fn a_restart_within_the_down_interval_changes_no_role() {
    let mut lan = Lan::new(vec![cfg(2, 200, 10), cfg(3, 100, 10)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(lan.at(1_000.0));
    assert_eq!(lan.actives(), [0]);
    // B's Active_Down_Interval is 360.9 ms: a 250 ms restart fits, adverts and all.
    let last = lan.restart(0, 250.0);
    lan.run_until(lan.at(3_000.0));
    let t0 = lan.t0;
    assert_eq!(lan.events(1), [(t0, Event::BecameBackup)]);
    assert_eq!(lan.actives(), [0]);
    let sent: Vec<Instant> = lan.nodes[0].sent.iter().map(|s| s.0).collect();
    let gap = sent.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert_eq!(gap, 250 * MS);
    assert!(lan.nodes[0].sent.iter().all(|s| s.2 == 200));
    assert!(sent.contains(&last) && sent.contains(&(last + 250 * MS)));
}

#[test]
fn a_restart_slower_than_the_down_interval_lets_the_protocol_decide() {
    let mut lan = Lan::new(vec![cfg(2, 200, 10), cfg(3, 100, 10)]);
    lan.start(0);
    lan.start(1);
    lan.run_until(lan.at(1_000.0));
    let last = lan.restart(0, 400.0);
    lan.run_until(lan.at(3_000.0));
    let t0 = lan.t0;
    let took = last + LATENCY + ns(360_937_500);
    let ev = lan.events(1);
    assert_eq!(
        ev[..2],
        [(t0, Event::BecameBackup), (took, Event::BecameActive)]
    );
    // A starts as at boot and, preempting with the higher priority, takes the VIP back.
    assert_eq!(ev.last().map(|e| e.1), Some(Event::BecameBackup));
    assert_eq!(lan.actives(), [0]);
}
