//! One instance fed by hand: exact timers, validation counters, the rate rule, interop
//! vectors. The simulated LAN is in `lan`.

use std::net::{Ipv4Addr, Ipv6Addr};

use lb_common::wire::vrrp::GROUP_V4;

use super::*;

mod handover;
mod lan;

const MS: Duration = Duration::from_millis(1);
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const GROUP: IpAddr = IpAddr::V4(GROUP_V4);

fn ip4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
}

fn cfg(last: u8, priority: u8, interval_cs: u16) -> Config {
    let mut c = Config::new(10, ip4(last), vec![VIP]);
    c.priority = priority;
    c.interval_cs = interval_cs;
    c
}

/// Advert bytes as a peer would send them.
fn advert_bytes(
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    vips: &[u8],
    src: IpAddr,
    dst: IpAddr,
    form: ChecksumForm,
) -> Vec<u8> {
    let family = Family::of(src);
    let repr = Repr {
        vrid,
        priority,
        max_adver_int: interval_cs,
        addrs: AddrList::new(family, vips).unwrap(),
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(
        &mut Packet::new_unchecked(&mut buf[..], family),
        src,
        dst,
        form,
    )
    .unwrap();
    buf
}

fn started(c: Config, t0: Instant) -> Vrrp {
    let mut v = Vrrp::new(c).unwrap();
    v.start(t0);
    v
}

fn drain_events(v: &mut Vrrp) -> Vec<Event> {
    std::iter::from_fn(|| v.poll_event()).collect()
}

fn drain_transmits(v: &mut Vrrp) -> Vec<Transmit> {
    std::iter::from_fn(|| v.poll_transmit()).collect()
}

#[test]
fn timer_formulas_match_the_table() {
    // docs/protocol.md §3.6, exact values in nanoseconds.
    for (prio, cs, skew_ns, down_ns) in [
        (100, 100, 609_375_000, 3_609_375_000),
        (200, 100, 218_750_000, 3_218_750_000),
        (254, 100, 7_812_500, 3_007_812_500),
        (100, 10, 60_937_500, 360_937_500),
        (1, 10, 99_609_375, 399_609_375),
    ] {
        assert_eq!(
            skew_time(prio, cs),
            Duration::from_nanos(skew_ns),
            "{prio} {cs}"
        );
        let down = active_down_interval(prio, cs);
        assert_eq!(down, Duration::from_nanos(down_ns), "{prio} {cs}");
    }
}

#[test]
fn backup_takes_over_exactly_at_active_down_interval() {
    let t0 = Instant::now();
    let mut b = started(cfg(3, 100, 10), t0);
    assert_eq!(drain_events(&mut b), [Event::BecameBackup]);
    assert_eq!(b.state(), State::Backup);
    assert_eq!(b.poll_timeout(), Some(t0 + active_down_interval(100, 10)));
    // An advert from the Active (priority 200, 10 cs) restarts the timer: 36.09375 cs.
    let t1 = t0 + 100 * MS;
    let vip = [198, 51, 100, 1];
    let adv = Repr {
        vrid: 10,
        priority: 200,
        max_adver_int: 10,
        addrs: AddrList::new(Family::V4, &vip).unwrap(),
    };
    b.handle_advert(t1, ip4(2), 255, &adv);
    assert_eq!(b.active_addr(), Some(ip4(2)));
    let down = b.poll_timeout().unwrap();
    assert_eq!(down, t1 + Duration::from_nanos(360_937_500));
    b.handle_timeout(down - Duration::from_nanos(1));
    assert_eq!(b.poll_event(), None);
    assert!(b.poll_transmit().is_none());
    b.handle_timeout(down);
    assert_eq!(drain_events(&mut b), [Event::BecameActive]);
    assert_eq!(b.state(), State::Active);
    assert_eq!(b.active_addr(), Some(ip4(3)));
    let tx = drain_transmits(&mut b);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].dst, GROUP);
    let p = Packet::new_checked(&tx[0].payload[..], Family::V4).unwrap();
    let (r, form) = Repr::parse(&p, ip4(3), GROUP).unwrap();
    assert_eq!(form, ChecksumForm::Pseudo);
    assert_eq!((r.vrid, r.priority, r.max_adver_int), (10, 100, 10));
    assert_eq!(r.addrs.iter().collect::<Vec<_>>(), [VIP]);
    assert_eq!(b.poll_timeout(), Some(down + 100 * MS));
    assert_eq!(b.stats().became_active, 1);
    assert_eq!(b.stats().sent, 1);
}

#[test]
fn owner_is_active_at_once_and_ignores_adverts() {
    let t0 = Instant::now();
    let mut o = started(cfg(1, PRIORITY_OWNER, 100), t0);
    assert_eq!(drain_events(&mut o), [Event::BecameActive]);
    assert_eq!(drain_transmits(&mut o).len(), 1);
    assert_eq!(o.poll_timeout(), Some(t0 + 1000 * MS));
    let bytes = advert_bytes(
        10,
        254,
        100,
        &[198, 51, 100, 1],
        ip4(2),
        GROUP,
        ChecksumForm::Pseudo,
    );
    o.handle_packet(t0 + MS, ip4(2), GROUP, 255, &bytes);
    assert_eq!(o.stats().dropped(DropReason::WeAreOwner), 1);
    assert_eq!(o.state(), State::Active);
    assert_eq!(o.poll_timeout(), Some(t0 + 1000 * MS));
}

#[test]
fn keepalived_advert_is_accepted_in_both_forms() {
    // docs/protocol.md §3.4: what keepalived 2.2.7 sends (and accepted from us), B form.
    let ka: [u8; 12] = [
        0x31, 0x33, 0xc8, 0x01, 0x00, 0x0a, 0x11, 0x5f, 0x0a, 0x37, 0x00, 0x01,
    ];
    let me = IpAddr::V4(Ipv4Addr::new(10, 55, 0, 101));
    let peer = IpAddr::V4(Ipv4Addr::new(10, 55, 0, 100));
    let vip = IpAddr::V4(Ipv4Addr::new(10, 55, 0, 1));
    let mut c = Config::new(51, me, vec![vip]);
    c.interval_cs = 10;
    let t0 = Instant::now();
    let mut v = started(c, t0);
    v.handle_packet(t0 + MS, peer, GROUP, 255, &ka);
    assert_eq!(v.stats().accepted, 1);
    assert_eq!(v.active_addr(), Some(peer));
    assert_eq!(v.peer_checksum(peer), Some(ChecksumForm::Pseudo));
    assert_eq!(
        v.poll_timeout(),
        Some(t0 + MS + active_down_interval(100, 10))
    );
    // The RFC 9568 form of the same advert (0xfc88) is accepted too.
    let mut a = ka;
    a[6..8].copy_from_slice(&[0xfc, 0x88]);
    v.handle_packet(t0 + 2 * MS, peer, GROUP, 255, &a);
    assert_eq!(v.stats().accepted, 2);
    assert_eq!(v.peer_checksum(peer), Some(ChecksumForm::Plain));
    assert_eq!(v.stats().dropped_total(), 0);
    // And so is the old unicast form (B with 224.0.0.18 although sent to us).
    v.handle_packet(t0 + 3 * MS, peer, me, 255, &ka);
    assert_eq!(v.peer_checksum(peer), Some(ChecksumForm::PseudoGroup));
    assert_eq!(v.peer_checksum(me), None);
}

#[test]
fn invalid_adverts_are_counted_and_ignored() {
    let t0 = Instant::now();
    let mut v = started(cfg(3, 100, 10), t0);
    drain_events(&mut v);
    let timer = v.poll_timeout();
    let vip = [198, 51, 100, 1];
    let good = advert_bytes(10, 200, 10, &vip, ip4(2), GROUP, ChecksumForm::Pseudo);
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        edit(&mut b);
        // Keep the checksum right so the later checks are reached.
        let mut p = Packet::new_unchecked(&mut b[..], Family::V4);
        if p.check_len().is_ok() {
            p.fill_checksum(ip4(2), GROUP, ChecksumForm::Pseudo)
                .unwrap();
        }
        b
    };
    let other_vip = advert_bytes(
        10,
        200,
        10,
        &[198, 51, 100, 9],
        ip4(2),
        GROUP,
        ChecksumForm::Pseudo,
    );
    let two_vips = advert_bytes(
        10,
        200,
        10,
        &[198, 51, 100, 1, 198, 51, 100, 9],
        ip4(2),
        GROUP,
        ChecksumForm::Pseudo,
    );
    let v6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));
    let v6_group = IpAddr::V6(wire::GROUP_V6);
    let v6_adv = advert_bytes(10, 200, 10, &[0xfe; 16], v6, v6_group, ChecksumForm::Pseudo);
    let cases: Vec<(DropReason, IpAddr, IpAddr, u8, Vec<u8>)> = vec![
        (DropReason::BadTtl, ip4(2), GROUP, 254, good.clone()),
        (DropReason::BadTtl, ip4(2), GROUP, 64, good.clone()),
        (
            DropReason::BadVersion,
            ip4(2),
            GROUP,
            255,
            with(&|b| b[0] = 0x21),
        ),
        (
            DropReason::BadVersion,
            ip4(2),
            GROUP,
            255,
            with(&|b| b[0] = 0x32),
        ),
        (
            DropReason::BadLength,
            ip4(2),
            GROUP,
            255,
            good[..11].to_vec(),
        ),
        (
            DropReason::BadLength,
            ip4(2),
            GROUP,
            255,
            with(&|b| b.push(0)),
        ),
        (
            DropReason::BadLength,
            ip4(2),
            GROUP,
            255,
            with(&|b| b[3] = 0),
        ),
        (DropReason::BadChecksum, ip4(2), GROUP, 255, {
            let mut b = good.clone();
            b[7] ^= 0x40;
            b
        }),
        // A checksum made for another source.
        (DropReason::BadChecksum, ip4(4), GROUP, 255, good.clone()),
        (
            DropReason::WrongVrid,
            ip4(2),
            GROUP,
            255,
            with(&|b| b[1] = 11),
        ),
        (DropReason::AddressMismatch, ip4(2), GROUP, 255, other_vip),
        (DropReason::AddressMismatch, ip4(2), GROUP, 255, two_vips),
        (DropReason::WrongFamily, v6, v6_group, 255, v6_adv),
        (DropReason::WrongFamily, ip4(2), v6_group, 255, good.clone()),
        (
            DropReason::BadInterval,
            ip4(2),
            GROUP,
            255,
            with(&|b| b[5] = 0),
        ),
    ];
    for (i, (reason, src, dst, ttl, bytes)) in cases.iter().enumerate() {
        let before = v.stats().clone();
        v.handle_packet(t0 + MS, *src, *dst, *ttl, bytes);
        assert_eq!(
            v.stats().dropped(*reason),
            before.dropped(*reason) + 1,
            "case {i}"
        );
        assert_eq!(
            v.stats().dropped_total(),
            before.dropped_total() + 1,
            "case {i}"
        );
        assert_eq!(v.stats().accepted, 0, "case {i}");
        assert_eq!(v.poll_timeout(), timer, "case {i}");
        assert_eq!(v.active_addr(), None, "case {i}");
        assert_eq!(v.peer_checksum(*src), None, "case {i}");
    }
    assert_eq!(v.poll_event(), None);
    // handle_advert checks the TTL too.
    let p = Packet::new_checked(&good[..], Family::V4).unwrap();
    let (r, _) = Repr::parse(&p, ip4(2), GROUP).unwrap();
    v.handle_advert(t0 + MS, ip4(2), 1, &r);
    assert_eq!(v.stats().dropped(DropReason::BadTtl), 3);
    // Every reason is covered here but WeAreOwner, which the owner test covers, and
    // NotPeer (with_peers_only_peers_are_heard).
    for reason in DropReason::ALL {
        let n = v.stats().dropped(reason);
        let elsewhere = [DropReason::WeAreOwner, DropReason::NotPeer].contains(&reason);
        assert_eq!(n > 0, !elsewhere, "{reason:?}");
    }
    // The good one still works.
    v.handle_packet(t0 + MS, ip4(2), GROUP, 255, &good);
    assert_eq!(v.stats().accepted, 1);
    assert_eq!(
        v.poll_timeout(),
        Some(t0 + MS + active_down_interval(100, 10))
    );
}

#[test]
fn vip_order_is_free_and_an_owner_may_differ() {
    let t0 = Instant::now();
    let mut c = cfg(3, 100, 10);
    c.vips.push(ip4(9));
    let mut v = started(c, t0);
    let swapped = [198, 51, 100, 9, 198, 51, 100, 1];
    let b = advert_bytes(10, 200, 10, &swapped, ip4(2), GROUP, ChecksumForm::Pseudo);
    v.handle_packet(t0, ip4(2), GROUP, 255, &b);
    assert_eq!(v.stats().accepted, 1);
    // Same count, one address repeated: not our set.
    let dup = [198, 51, 100, 1, 198, 51, 100, 1];
    let b = advert_bytes(10, 200, 10, &dup, ip4(2), GROUP, ChecksumForm::Pseudo);
    v.handle_packet(t0, ip4(2), GROUP, 255, &b);
    assert_eq!(v.stats().dropped(DropReason::AddressMismatch), 1);
    // From the owner a different list is logged and counted, not dropped (§7.1).
    let b = advert_bytes(
        10,
        255,
        10,
        &[198, 51, 100, 1],
        ip4(2),
        GROUP,
        ChecksumForm::Pseudo,
    );
    v.handle_packet(t0, ip4(2), GROUP, 255, &b);
    assert_eq!(v.stats().accepted, 2);
    assert_eq!(v.stats().owner_address_mismatch, 1);
}

#[test]
fn adverts_never_go_out_faster_than_the_interval() {
    let t0 = Instant::now();
    let mut a = started(cfg(2, PRIORITY_OWNER - 1, 10), t0);
    let mut now = t0;
    while a.state() != State::Active {
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
    }
    assert_eq!(
        drain_events(&mut a),
        [Event::BecameBackup, Event::BecameActive]
    );
    let vip = [198, 51, 100, 1];
    let stop = advert_bytes(10, 0, 10, &vip, ip4(3), GROUP, ChecksumForm::Pseudo);
    let mut sent: Vec<Instant> = drain_transmits(&mut a).into_iter().map(|_| now).collect();
    assert_eq!(sent.len(), 1);
    // A priority-0 advert every millisecond for a second (a peer stopping, or a flood).
    let end = now + 1000 * MS;
    while now < end {
        now += MS;
        a.handle_packet(now, ip4(3), GROUP, 255, &stop);
        a.handle_timeout(now);
        sent.extend(drain_transmits(&mut a).into_iter().map(|_| now));
    }
    assert_eq!(a.stats().accepted, 1000);
    assert_eq!(sent.len(), 11);
    assert!(sent.windows(2).all(|w| w[1] - w[0] >= 100 * MS));
    // Active → Backup → Active within one interval: the first advert waits.
    let t = sent[sent.len() - 1] + 10 * MS;
    let up = advert_bytes(10, 255, 10, &vip, ip4(3), GROUP, ChecksumForm::Pseudo);
    a.handle_packet(t, ip4(3), GROUP, 255, &up);
    assert_eq!(a.state(), State::Backup);
    a.handle_packet(t + MS, ip4(3), GROUP, 255, &stop);
    let takeover = t + MS + skew_time(254, 10);
    assert_eq!(a.poll_timeout(), Some(takeover));
    a.handle_timeout(takeover);
    assert_eq!(
        drain_events(&mut a),
        [Event::BecameBackup, Event::BecameActive]
    );
    assert!(drain_transmits(&mut a).is_empty());
    assert_eq!(a.poll_timeout(), Some(sent[sent.len() - 1] + 100 * MS));
}

#[test]
fn unicast_peers_and_checksum_forms() {
    let t0 = Instant::now();
    for form in [
        ChecksumForm::Pseudo,
        ChecksumForm::Plain,
        ChecksumForm::PseudoGroup,
    ] {
        let mut c = cfg(2, PRIORITY_OWNER, 10);
        c.peers = vec![ip4(3), ip4(4)];
        c.tx_checksum = form;
        let mut v = started(c, t0);
        let tx = drain_transmits(&mut v);
        assert_eq!(
            tx.iter().map(|t| t.dst).collect::<Vec<_>>(),
            [ip4(3), ip4(4)]
        );
        for t in &tx {
            let p = Packet::new_checked(&t.payload[..], Family::V4).unwrap();
            assert_eq!(p.verify_checksum(ip4(2), t.dst), Some(form));
        }
        assert_eq!(v.stats().sent, 2);
    }
}

#[test]
fn shutdown_stops_and_start_restarts() {
    let t0 = Instant::now();
    let mut v = started(cfg(3, 100, 10), t0);
    v.shutdown(t0 + MS);
    assert_eq!(drain_events(&mut v), [Event::BecameBackup, Event::Stopped]);
    assert_eq!((v.state(), v.poll_timeout()), (State::Initialize, None));
    // A Backup sends nothing when it stops; a second shutdown does nothing.
    assert!(v.poll_transmit().is_none());
    v.shutdown(t0 + 2 * MS);
    assert_eq!(v.poll_event(), None);
    // Stopped: adverts and timeouts are ignored, uncounted.
    let b = advert_bytes(
        10,
        200,
        10,
        &[198, 51, 100, 1],
        ip4(2),
        GROUP,
        ChecksumForm::Pseudo,
    );
    v.handle_packet(t0 + 3 * MS, ip4(2), GROUP, 255, &b);
    v.handle_timeout(t0 + 10_000 * MS);
    assert_eq!(v.stats(), &Stats::default());
    v.start(t0 + 4 * MS);
    v.start(t0 + 5 * MS);
    assert_eq!(drain_events(&mut v), [Event::BecameBackup]);
    assert_eq!(
        v.poll_timeout(),
        Some(t0 + 4 * MS + active_down_interval(100, 10))
    );
}

#[test]
fn config_is_checked() {
    let ok = cfg(2, 100, 100);
    assert!(Vrrp::new(ok.clone()).is_ok());
    let bad = |edit: &dyn Fn(&mut Config)| {
        let mut c = ok.clone();
        edit(&mut c);
        Vrrp::new(c).unwrap_err()
    };
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(bad(&|c| c.vrid = 0), VrrpError::Vrid);
    assert_eq!(bad(&|c| c.priority = 0), VrrpError::Priority);
    assert_eq!(bad(&|c| c.interval_cs = 0), VrrpError::Interval(0));
    assert_eq!(bad(&|c| c.interval_cs = 4096), VrrpError::Interval(4096));
    assert_eq!(bad(&|c| c.vips.clear()), VrrpError::VipCount(0));
    assert_eq!(
        bad(&|c| c.vips = (0..=255).map(ip4).chain([VIP]).collect()),
        VrrpError::VipCount(257)
    );
    assert_eq!(bad(&|c| c.vips.push(VIP)), VrrpError::DuplicateVip(VIP));
    assert_eq!(bad(&|c| c.vips.push(v6)), VrrpError::Family(v6));
    assert_eq!(bad(&|c| c.peers.push(v6)), VrrpError::Family(v6));
    assert_eq!(
        VrrpError::Interval(0).to_string(),
        "advertisement interval 0 cs is outside 1..=4095"
    );
    let v = Vrrp::new(ok.clone()).unwrap();
    assert_eq!(v.config(), &ok);
    assert_eq!((v.state(), v.active_addr()), (State::Initialize, None));
}

/// With unicast peers, an on-link host that is none of them cannot hold the node in
/// Backup with priority-255 adverts: it is counted and ignored, and the node takes
/// over when the real Active goes quiet.
#[test]
fn with_peers_only_peers_are_heard() {
    let t0 = Instant::now();
    let mut c = cfg(3, 100, 10);
    c.peers = vec![ip4(2)];
    let mut b = started(c, t0);
    drain_events(&mut b);
    let vip = [198, 51, 100, 1];
    let adv = |prio| Repr {
        vrid: 10,
        priority: prio,
        max_adver_int: 10,
        addrs: AddrList::new(Family::V4, &vip).unwrap(),
    };
    let down = b.poll_timeout().unwrap();
    b.handle_advert(t0 + MS, ip4(66), 255, &adv(255));
    let bytes = advert_bytes(10, 255, 10, &vip, ip4(66), ip4(3), ChecksumForm::Pseudo);
    b.handle_packet(t0 + MS, ip4(66), ip4(3), 255, &bytes);
    assert_eq!(b.stats().dropped(DropReason::NotPeer), 2);
    assert_eq!((b.active_addr(), b.poll_timeout()), (None, Some(down)));
    // The configured peer is heard.
    b.handle_advert(t0 + MS, ip4(2), 255, &adv(200));
    assert_eq!(b.active_addr(), Some(ip4(2)));
    assert_eq!(b.stats().accepted, 1);
    b.handle_timeout(b.poll_timeout().unwrap());
    assert_eq!(drain_events(&mut b), [Event::BecameActive]);
}
