//! The load exchange on a virtual clock: a simulated LAN of members, reports delivered
//! to every other node, time jumping to the earliest `poll_timeout`.

use super::*;
use hex_literal::hex;
use std::net::{IpAddr, Ipv4Addr};

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
/// 2023-11-14T22:13:20Z, the wall clock at `t0`.
const WALL0: Duration = Duration::from_secs(1_700_000_000);

fn secret(id: u16) -> Vec<u8> {
    vec![id as u8; 32]
}

fn keys(send: u16, ids: &[u16]) -> Keyring {
    Keyring::new(send, ids.iter().map(|&i| (i, secret(i)))).unwrap()
}

fn addr(id: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)), 4789)
}

fn member_config(id: u32, capacity: u32) -> Config {
    Config {
        local: Some(LocalMember {
            identities: vec![
                Identity::Ip(addr(id).ip()),
                Identity::Fqdn(format!("gw{id}.example")),
            ],
            figures: Figures {
                capacity,
                weight: 1,
                crypto_overload_pct: 90,
                system_overload_pct: 95,
                crypto_load_weight: 100,
                system_load_weight: 50,
                ..Figures::default()
            },
        }),
        ..Config::new(id, keys(1, &[1]))
    }
}

/// Members on one segment and one clock. `up[i]` false cuts node i off (it neither
/// sends nor receives).
struct Lan {
    t0: Instant,
    now: Instant,
    nodes: Vec<LoadExchange>,
    up: Vec<bool>,
    /// Every datagram sent: (sender index, payload).
    wire: Vec<(usize, Vec<u8>)>,
}

impl Lan {
    fn new(configs: Vec<Config>) -> Lan {
        let now = Instant::now();
        let nodes: Vec<_> = configs
            .into_iter()
            .map(|c| LoadExchange::new(c, now, WALL0).unwrap())
            .collect();
        let up = vec![true; nodes.len()];
        Lan {
            t0: now,
            now,
            nodes,
            up,
            wire: Vec::new(),
        }
    }

    fn id(&self, i: usize) -> u32 {
        self.nodes[i].config().member_id
    }

    fn deliver(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].poll_transmit() {
                if !self.up[i] {
                    continue;
                }
                let from = addr(self.id(i));
                for j in 0..self.nodes.len() {
                    if j != i && self.up[j] {
                        let _ = self.nodes[j].handle_report(self.now, from, &t.payload);
                    }
                }
                self.wire.push((i, t.payload));
            }
        }
    }

    /// Runs every timer up to `until`, then sets the clock there.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next = self
                .nodes
                .iter()
                .filter_map(LoadExchange::poll_timeout)
                .filter(|&t| t <= until)
                .min();
            let Some(t) = next else { break };
            self.now = t;
            for n in &mut self.nodes {
                if n.poll_timeout().is_some_and(|d| d <= t) {
                    n.handle_timeout(t);
                }
            }
            self.deliver();
        }
        self.now = until;
    }

    fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn table(&self, i: usize) -> Vec<u32> {
        self.nodes[i].members().iter().map(|m| m.id).collect()
    }

    fn events(&mut self, i: usize) -> Vec<Event> {
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }
}

fn three() -> Lan {
    Lan::new(vec![
        member_config(1, 1000),
        member_config(2, 2000),
        member_config(3, 3000),
    ])
}

#[test]
fn members_learn_each_other_and_their_figures() {
    let mut lan = three();
    let t0 = lan.now;
    lan.nodes[1].handle_local_sample(
        t0,
        LocalLoad {
            active_sas: 120,
            cpu_permille: 250,
            memory_permille: 400,
        },
    );
    lan.run_for(S / 2);
    assert_eq!(lan.table(0), [1, 2, 3]);
    assert_eq!(lan.events(0), [Event::Joined(2), Event::Joined(3)]);
    let m = &lan.nodes[0].members()[1];
    assert_eq!((m.id, m.local, m.addr), (2, false, Some(addr(2))));
    assert_eq!(
        m.identities,
        [
            Identity::Ip(addr(2).ip()),
            Identity::Fqdn("gw2.example".into())
        ]
    );
    let f = &m.figures;
    assert_eq!((f.active_sas, f.capacity, f.weight), (120, 2000, 1));
    assert_eq!((f.cpu_permille, f.memory_permille), (250, 400));
    assert_eq!((f.crypto_overload_pct, f.system_overload_pct), (90, 95));
    assert_eq!((f.crypto_load_weight, f.system_load_weight), (100, 50));
    assert!(!f.drain);
    assert_eq!((m.reports, m.joined), (1, t0));
    let me = &lan.nodes[0].members()[0];
    assert!(me.local && me.addr.is_none());
    // One report per interval.
    lan.run_for(10 * S);
    assert_eq!(lan.nodes[0].stats().sent, 11);
    assert_eq!(lan.nodes[0].stats().accepted, 22);
    assert_eq!(lan.nodes[0].stats().dropped_total(), 0);
    assert_eq!(lan.nodes[0].members()[1].reports, 11);
}

#[test]
fn report_bytes_and_tag_known_answer() {
    let mut lan = Lan::new(vec![member_config(7, 1000)]);
    let t0 = lan.now;
    lan.nodes[0].handle_local_sample(
        t0,
        LocalLoad {
            active_sas: 120,
            cpu_permille: 250,
            memory_permille: 400,
        },
    );
    lan.run_for(MS);
    let (_, p) = &lan.wire[0];
    // seq = WALL0 in µs + 1, timestamp = WALL0 in ms; CPU 250 ‰, crypto limit 90 %,
    // memory 400 ‰, system limit 95 %, load weights 100 and 50.
    let signed = hex!(
        "02 00 0001 00000007 00060a24181e4001 0000018bcfe56800"
        "00000078 000003e8 00000001 00fa 005a 0013 0190 005f 64 32"
        "01 04 0a000007 03 0b 677737 2e6578616d706c65"
    );
    assert_eq!(&p[..signed.len()], signed);
    // printf '<signed>' | xxd -r -p | openssl dgst -sha256 -mac HMAC \
    //   -macopt hexkey:$(printf '01%.0s' $(seq 32))
    // = 30d6588095fd52da1134cf1a776a820c e1c43ba8971ede510e18c46824b05897
    assert_eq!(&p[signed.len()..], hex!("30d6588095fd52da1134cf1a776a820c"));
    assert_eq!(&p[signed.len()..], tag(&secret(1), &signed));
}

fn one_report() -> (Lan, Vec<u8>) {
    let mut lan = Lan::new(vec![member_config(1, 1000), member_config(2, 1000)]);
    lan.up[1] = false;
    lan.run_for(MS);
    let p = lan.wire.iter().find(|(i, _)| *i == 0).unwrap().1.clone();
    (lan, p)
}

/// An older member's report (version 1, authenticated like any other) is accepted and
/// read as crypto load only; changing any signed byte of it is still a bad tag.
#[test]
fn version_1_reports_of_older_members_are_accepted() {
    let (mut lan, v2) = one_report();
    // Version 1: the same header without memory (reserved, zero), system limit and
    // weights, signed anew.
    let mut v1 = v2[..48].to_vec();
    v1[0] = 1;
    v1[42..44].copy_from_slice(&[0, 0]);
    v1.truncate(44);
    v1.extend_from_slice(&v2[48..v2.len() - 16]);
    let t = tag(&secret(1), &v1);
    v1.extend_from_slice(&t);
    let now = lan.now;
    let b = &mut lan.nodes[1];
    let mut forged = v1.clone();
    forged[39] ^= 1;
    assert_eq!(
        b.handle_report(now, addr(1), &forged),
        Err(DropReason::BadTag)
    );
    assert_eq!(b.handle_report(now, addr(1), &v1), Ok(()));
    let m = b.members().into_iter().find(|m| m.id == 1).unwrap();
    let f = m.figures;
    assert_eq!((f.capacity, f.crypto_overload_pct), (1000, 90));
    assert_eq!((f.crypto_load_weight, f.system_load_weight), (100, 0));
    assert_eq!(f.memory_permille, 0);
    assert_eq!(
        m.identities,
        [
            Identity::Ip(addr(1).ip()),
            Identity::Fqdn("gw1.example".into())
        ]
    );
}

#[test]
fn forged_unknown_key_malformed_own_and_replayed_reports_are_dropped_and_counted() {
    let (mut lan, p) = one_report();
    let now = lan.now;
    let b = &mut lan.nodes[1];
    let from = addr(1);
    // Every changed byte: forged (or malformed before the tag is even looked at).
    for i in 0..p.len() {
        let mut f = p.clone();
        f[i] ^= 0x01;
        let why = b.handle_report(now, from, &f).unwrap_err();
        assert!(
            matches!(
                why,
                DropReason::BadTag | DropReason::Malformed | DropReason::UnknownKey
            ),
            "byte {i}: {why:?}"
        );
    }
    for cut in 0..p.len() {
        assert_eq!(
            b.handle_report(now, from, &p[..cut]),
            Err(DropReason::Malformed)
        );
    }
    // Key id 2, which the receiver does not have, re-signed under the right secret.
    let mut k = p.clone();
    k[3] = 2;
    let n = k.len() - wire::TAG_LEN;
    let t = tag(&secret(2), &k[..n]);
    k[n..].copy_from_slice(&t);
    assert_eq!(b.handle_report(now, from, &k), Err(DropReason::UnknownKey));
    assert_eq!(b.stats().accepted, 0);
    assert!(b.members().iter().all(|m| m.local));
    // The genuine report once, then its replay.
    assert_eq!(b.handle_report(now, from, &p), Ok(()));
    assert_eq!(
        b.handle_report(now + S, from, &p),
        Err(DropReason::Replayed)
    );
    // Our own report looped back.
    let mut own = Lan::new(vec![member_config(1, 1000)]);
    own.run_for(MS);
    let (_, mine) = own.wire[0].clone();
    assert_eq!(
        own.nodes[0].handle_report(own.now, from, &mine),
        Err(DropReason::Own)
    );
    let st = lan.nodes[1].stats();
    assert_eq!(st.accepted, 1);
    assert_eq!(st.dropped(DropReason::Replayed), 1);
    // Both key id bytes flipped, and the re-signed one.
    assert_eq!(st.dropped(DropReason::UnknownKey), 3);
    assert_eq!(
        st.dropped_total(),
        DropReason::ALL.iter().map(|&r| st.dropped(r)).sum::<u64>()
    );
    assert!(
        st.dropped(DropReason::BadTag) >= 16 && st.dropped(DropReason::Malformed) >= p.len() as u64
    );
}

#[test]
fn stale_reports_too_old_or_too_far_ahead() {
    let (mut lan, p) = one_report();
    let now = lan.now;
    let b = &mut lan.nodes[1];
    // Sent at t0. Delivered 10.001 s late: too old; 10 s late: still within the skew.
    let t0 = lan.t0;
    let late = b.handle_report(t0 + SKEW_DEFAULT + MS, addr(1), &p);
    assert_eq!(late, Err(DropReason::TooOld));
    let late = b.handle_report(t0 + SKEW_DEFAULT, addr(1), &p);
    assert_eq!(late, Ok(()));
    // A receiver whose clock is 11 s behind sees it from the future.
    let mut behind = LoadExchange::new(member_config(3, 1), now, WALL0 - 11 * S).unwrap();
    assert_eq!(
        behind.handle_report(now, addr(1), &p),
        Err(DropReason::TooNew)
    );
    // Without a skew limit only the window protects.
    let mut c = member_config(3, 1);
    c.max_skew = None;
    let mut any = LoadExchange::new(c, now, WALL0 + 3600 * S).unwrap();
    assert_eq!(any.handle_report(now, addr(1), &p), Ok(()));
    assert_eq!(
        any.handle_report(now, addr(1), &p),
        Err(DropReason::Replayed)
    );
}

#[test]
fn replay_after_the_sender_is_forgotten_is_too_old() {
    let (mut lan, p) = one_report();
    let now = lan.now;
    assert_eq!(lan.nodes[1].handle_report(now, addr(1), &p), Ok(()));
    // Node 0 goes away; node 1 forgets it after holdtime + skew (+ damping decay).
    lan.up[0] = false;
    lan.up[1] = true;
    lan.run_for(3600 * S);
    assert!(lan.nodes[1].peers.is_empty());
    assert_eq!(
        lan.nodes[1].handle_report(lan.now, addr(1), &p),
        Err(DropReason::TooOld)
    );
}

#[test]
fn holdtime_expiry_is_exact() {
    let mut lan = three();
    lan.run_for(S / 2);
    let _ = lan.events(0);
    // Node 3's last report went out at t0 + 0; cut it off now.
    lan.up[2] = false;
    let last = lan.nodes[0].peers[&3].last_heard;
    let hold = lan.nodes[0].config().holdtime;
    assert_eq!(hold, 3 * S);
    lan.run_until(last + hold - MS);
    assert_eq!(lan.table(0), [1, 2, 3]);
    lan.run_until(last + hold);
    assert_eq!(lan.table(0), [1, 2]);
    assert_eq!(lan.events(0), [Event::Left(3)]);
    // It comes back and rejoins with a fresh slow start.
    lan.up[2] = true;
    lan.run_for(S);
    assert_eq!(lan.table(0), [1, 2, 3]);
    assert_eq!(lan.events(0), [Event::Joined(3)]);
    let m = lan.nodes[0]
        .members()
        .into_iter()
        .find(|m| m.id == 3)
        .unwrap();
    assert_eq!(m.reports, 1);
    assert_eq!(m.joined, lan.nodes[0].peers[&3].last_heard);
}

#[test]
fn flapping_member_is_held_out_then_readmitted() {
    let mut lan = three();
    lan.run_for(S / 2);
    let _ = lan.events(0);
    // Three departures and returns 10 s apart.
    for _ in 0..3 {
        lan.up[2] = false;
        lan.run_for(5 * S);
        lan.up[2] = true;
        lan.run_for(5 * S);
    }
    let ev = lan.events(0);
    assert_eq!(
        ev,
        [
            Event::Left(3),
            Event::Joined(3),
            Event::Left(3),
            Event::Joined(3),
            Event::Left(3),
            Event::HeldOut(3),
        ]
    );
    assert_eq!(lan.table(0), [1, 2]);
    assert_eq!(lan.nodes[0].held_out(), [3]);
    assert!(lan.nodes[0].stats().dropped(DropReason::HeldOut) >= 4);
    // Its reports keep arriving; the penalty decays below the reuse limit in ≈ 2 min.
    lan.run_for(60 * S);
    assert_eq!(lan.table(0), [1, 2]);
    lan.run_for(90 * S);
    assert_eq!(lan.table(0), [1, 2, 3]);
    assert_eq!(lan.events(0), [Event::Joined(3)]);
    assert!(lan.nodes[0].held_out().is_empty());
}

#[test]
fn key_rollover() {
    let mut lan = three();
    lan.run_for(S / 2);
    // Step 1: everyone accepts keys 1 and 2, still sends under 1.
    for n in &mut lan.nodes {
        n.set_keys(keys(1, &[1, 2]));
    }
    lan.run_for(2 * S);
    // Step 2: the senders switch to key 2 one by one.
    for i in 0..3 {
        lan.nodes[i].set_keys(keys(2, &[1, 2]));
        lan.run_for(S);
    }
    let (i, last) = lan.wire.last().unwrap();
    assert_eq!((*i, last[3]), (2, 2));
    // Step 3: key 1 is retired everywhere.
    for n in &mut lan.nodes {
        n.set_keys(keys(2, &[2]));
    }
    lan.run_for(5 * S);
    for i in 0..3 {
        assert_eq!(lan.table(i), [1, 2, 3], "node {i}");
        assert_eq!(lan.nodes[i].stats().dropped_total(), 0, "node {i}");
    }
    // A node still sending under the retired key is dropped and leaves the tables.
    lan.nodes[2].set_keys(keys(1, &[1, 2]));
    lan.run_for(5 * S);
    assert!(lan.nodes[0].stats().dropped(DropReason::UnknownKey) >= 4);
    assert_eq!(lan.table(0), [1, 2]);
    assert_eq!(lan.table(2), [1, 2, 3]);
}

#[test]
fn drain_is_sent_at_once() {
    let mut lan = three();
    lan.run_for(S / 2);
    lan.nodes[1].set_drain(lan.now, true);
    lan.deliver();
    let m = lan.nodes[0]
        .members()
        .into_iter()
        .find(|m| m.id == 2)
        .unwrap();
    assert!(m.figures.drain);
    assert_eq!(m.reports, 2);
    // The regular schedule goes on from the extra report.
    assert_eq!(lan.nodes[1].poll_timeout(), Some(lan.now + S));
}

#[test]
fn restarted_member_continues_above_its_old_sequence() {
    let mut lan = three();
    lan.run_for(5 * S + S / 2);
    // Node 2 restarts 1 s later with a fresh state machine.
    lan.up[1] = false;
    lan.run_for(S);
    let now = lan.now;
    let wall = WALL0 + (now - lan.t0);
    lan.nodes[1] = LoadExchange::new(member_config(2, 2000), now, wall).unwrap();
    lan.up[1] = true;
    lan.run_for(S / 2);
    assert_eq!(lan.nodes[0].stats().dropped(DropReason::Replayed), 0);
    assert!(lan.table(0).contains(&2));
}

/// Sequence numbers follow the sender's clock in µs, so a report overtaken by a newer
/// one (a second later) is left of the window: refused, figures kept.
#[test]
fn late_report_does_not_roll_figures_back() {
    let mut lan = Lan::new(vec![member_config(1, 1000), member_config(2, 1000)]);
    lan.up[1] = false;
    lan.nodes[0].handle_local_sample(
        lan.now,
        LocalLoad {
            active_sas: 10,
            ..LocalLoad::default()
        },
    );
    lan.run_for(MS);
    lan.nodes[0].handle_local_sample(
        lan.now,
        LocalLoad {
            active_sas: 20,
            ..LocalLoad::default()
        },
    );
    lan.run_for(S);
    let old = lan.wire[0].1.clone();
    let new = lan.wire[1].1.clone();
    let b = &mut lan.nodes[1];
    assert_eq!(b.handle_report(lan.now, addr(1), &new), Ok(()));
    assert_eq!(
        b.handle_report(lan.now, addr(1), &old),
        Err(DropReason::Replayed)
    );
    let m = b.members().into_iter().find(|m| m.id == 1).unwrap();
    assert_eq!((m.figures.active_sas, m.reports), (20, 1));
}

#[test]
fn listener_only_sends_nothing_and_has_no_timer_alone() {
    let mut c = Config::new(9, keys(1, &[1]));
    c.local = None;
    let mut x = LoadExchange::new(c, Instant::now(), WALL0).unwrap();
    assert_eq!(x.poll_timeout(), None);
    x.handle_timeout(Instant::now());
    assert_eq!(x.poll_transmit(), None);
    assert!(x.members().is_empty());
}

#[test]
fn config_validation() {
    let mut c = member_config(1, 1);
    c.holdtime = c.interval / 2;
    assert_eq!(c.validate(), Err(ClusterError::Holdtime));
    let mut c = member_config(1, 1);
    c.interval = Duration::ZERO;
    assert_eq!(c.validate(), Err(ClusterError::Interval));
    let mut c = member_config(1, 1);
    c.local.as_mut().unwrap().identities.clear();
    assert_eq!(c.validate(), Err(ClusterError::Identities(0)));
    assert!(LoadExchange::new(c, Instant::now(), WALL0).is_err());
}

#[test]
fn received_fqdn_must_be_a_valid_identity() {
    let (mut lan, p) = one_report();
    // Rebuild node 1's report with a bad FQDN, correctly signed.
    let pkt = Packet::new_checked(&p[..]).unwrap();
    let mut r = Repr::parse(&pkt).unwrap();
    let ids = [wire::Identity::Fqdn(b"bad name")];
    r.identities = Identities::Slice(&ids);
    r.seq += 1;
    let mut buf = vec![0; r.buffer_len()];
    let mut q = Packet::new_unchecked(&mut buf[..]);
    r.emit(&mut q).unwrap();
    let t = tag(&secret(1), q.signed());
    q.set_tag(&t);
    assert_eq!(
        lan.nodes[1].handle_report(lan.now, addr(1), &buf),
        Err(DropReason::Malformed)
    );
}

mod trust;
