//! The handover of a restart that keeps the fast path, one instance fed by hand; the
//! restart on a simulated LAN is in `lan`.

use super::*;

#[test]
fn a_handover_ends_after_the_next_advert_and_keeps_the_vips() {
    let t0 = Instant::now();
    // The owner is Active at once: its first advert at t0, the next due at t0 + 100 ms.
    let mut v = started(cfg(3, 255, 10), t0);
    assert_eq!(drain_events(&mut v), [Event::BecameActive]);
    drain_transmits(&mut v);
    v.hand_over(t0 + 40 * MS);
    assert!(v.poll_transmit().is_none() && v.poll_event().is_none());
    assert_eq!(v.state(), State::Active);
    v.handle_timeout(t0 + 100 * MS);
    let tx = drain_transmits(&mut v);
    // One ordinary advert (priority 255, not the stop advert), then done.
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].payload[2], 255);
    assert_eq!(drain_events(&mut v), [Event::HandedOver { active: true }]);
    assert_eq!((v.state(), v.poll_timeout()), (State::Initialize, None));
    assert_eq!(v.last_advert(), Some(t0 + 100 * MS));
    // A Backup is done at once and sends nothing.
    let mut b = started(cfg(2, 100, 10), t0);
    drain_events(&mut b);
    b.hand_over(t0 + MS);
    assert!(b.poll_transmit().is_none());
    assert_eq!(drain_events(&mut b), [Event::HandedOver { active: false }]);
}

#[test]
fn a_higher_priority_during_a_handover_makes_it_a_backup_one() {
    let t0 = Instant::now();
    let mut v = started(cfg(3, 100, 10), t0);
    v.handle_timeout(t0 + active_down_interval(100, 10));
    let t1 = t0 + active_down_interval(100, 10);
    drain_events(&mut v);
    drain_transmits(&mut v);
    v.hand_over(t1 + 10 * MS);
    let b = advert_bytes(
        10,
        200,
        10,
        &[198, 51, 100, 1],
        ip4(4),
        GROUP,
        ChecksumForm::Pseudo,
    );
    v.handle_packet(t1 + 20 * MS, ip4(4), GROUP, 255, &b);
    assert_eq!(
        drain_events(&mut v),
        [Event::BecameBackup, Event::HandedOver { active: false }]
    );
    assert!(v.poll_transmit().is_none());
}

#[test]
fn resume_is_active_at_once_only_within_three_intervals() {
    let t0 = Instant::now();
    let last = t0;
    // 40 ms after the last advert: Active, the next advert one interval after it.
    let mut v = Vrrp::new(cfg(3, 100, 10)).unwrap();
    v.resume(t0 + 40 * MS, last, 10);
    assert_eq!(drain_events(&mut v), [Event::BecameActive]);
    assert!(v.poll_transmit().is_none());
    assert_eq!(v.poll_timeout(), Some(t0 + 100 * MS));
    v.handle_timeout(t0 + 100 * MS);
    assert_eq!(drain_transmits(&mut v).len(), 1);
    // 250 ms after: Active, advertising at once.
    let mut v = Vrrp::new(cfg(3, 100, 10)).unwrap();
    v.resume(t0 + 250 * MS, last, 10);
    assert_eq!(drain_events(&mut v), [Event::BecameActive]);
    assert_eq!(drain_transmits(&mut v).len(), 1);
    // 300 ms after (three intervals): as at boot, a Backup waiting its down interval.
    let mut v = Vrrp::new(cfg(3, 100, 10)).unwrap();
    v.resume(t0 + 300 * MS, last, 10);
    assert_eq!(drain_events(&mut v), [Event::BecameBackup]);
    assert_eq!(
        v.poll_timeout(),
        Some(t0 + 300 * MS + active_down_interval(100, 10))
    );
    // The interval that counts is the one the Backups learned from the old process.
    let mut v = Vrrp::new(cfg(3, 100, 10)).unwrap();
    v.resume(t0 + 900 * MS, last, 100);
    assert_eq!(v.state(), State::Active);
}
