//! Who may speak for which member: keys and sources bound to member ids, identities
//! that are no gateway, sequence numbers that would lock a member out.

use std::collections::BTreeMap;

use super::*;

/// The report member `id` sends first, from a sender set up by `tweak`.
fn report_of(id: u32, tweak: impl FnOnce(&mut Config, &mut LoadExchange)) -> Vec<u8> {
    let now = Instant::now();
    let mut c = member_config(id, 1000);
    let mut x = LoadExchange::new(c.clone(), now, WALL0).unwrap();
    tweak(&mut c, &mut x);
    x.handle_timeout(now);
    x.poll_transmit().unwrap().payload
}

fn receiver(trust: Trust) -> (LoadExchange, Instant) {
    let now = Instant::now();
    let c = Config {
        trust,
        ..member_config(9, 1000)
    };
    (LoadExchange::new(c, now, WALL0).unwrap(), now)
}

#[test]
fn member_ids_are_bound_to_keys_and_sources() {
    let trust = Trust {
        key_members: BTreeMap::from([(1, vec![1])]),
        sources: BTreeMap::from([(1, vec![addr(1).ip()])]),
        ..Trust::default()
    };
    let (mut b, now) = receiver(trust);
    // Member 2 signs with key 1, which is member 1's alone.
    let p = report_of(2, |_, _| {});
    assert_eq!(b.handle_report(now, addr(2), &p), Err(DropReason::WrongKey));
    // Member 1's report from another address.
    let p = report_of(1, |_, _| {});
    assert_eq!(
        b.handle_report(now, addr(2), &p),
        Err(DropReason::BadSource)
    );
    assert_eq!(b.handle_report(now, addr(1), &p), Ok(()));
    assert_eq!(b.stats().dropped(DropReason::WrongKey), 1);
    assert_eq!(b.stats().dropped(DropReason::BadSource), 1);
}

#[test]
fn identities_that_are_no_gateway_are_refused() {
    let vip: IpAddr = "192.0.2.1".parse().unwrap();
    for bad in [
        "0.0.0.0",
        "127.0.0.1",
        "224.0.0.1",
        "169.254.0.1",
        "::1",
        "fe80::1",
    ] {
        let bad: IpAddr = bad.parse().unwrap();
        for refused in [bad, vip] {
            let (mut b, now) = receiver(Trust {
                refused: vec![vip],
                ..Trust::default()
            });
            let mut c = member_config(1, 1000);
            c.local.as_mut().unwrap().identities = vec![Identity::Ip(refused)];
            let mut x = LoadExchange::new(c, now, WALL0).unwrap();
            x.handle_timeout(now);
            let p = x.poll_transmit().unwrap().payload;
            assert_eq!(
                b.handle_report(now, addr(1), &p),
                Err(DropReason::BadIdentity),
                "{refused}"
            );
            assert!(b.members().iter().all(|m| m.local));
        }
    }
}

#[test]
fn a_sequence_number_from_the_future_cannot_lock_a_member_out() {
    let (mut b, t0) = receiver(Trust::default());
    // Near 2^64: refused outright, the real member keeps reporting.
    let forged = report_of(1, |_, x| x.seq = u64::MAX - 5);
    assert_eq!(
        b.handle_report(t0, addr(1), &forged),
        Err(DropReason::BadSequence)
    );
    // Just inside our clock plus the skew: accepted, and the real member's reports
    // (numbered by its clock) are held below it for at most the skew.
    let ahead = (WALL0 + SKEW_DEFAULT - MS).as_micros() as u64;
    let forged = report_of(1, |_, x| x.seq = ahead);
    assert_eq!(b.handle_report(t0, addr(1), &forged), Ok(()));
    let mut real = LoadExchange::new(member_config(1, 1000), t0, WALL0).unwrap();
    let mut t = t0;
    let mut accepted_at = None;
    while t < t0 + 2 * SKEW_DEFAULT {
        t += S;
        real.handle_timeout(t);
        while let Some(tx) = real.poll_transmit() {
            if b.handle_report(t, addr(1), &tx.payload).is_ok() && accepted_at.is_none() {
                accepted_at = Some(t);
            }
        }
    }
    let at = accepted_at.expect("the real member was locked out");
    assert!(at <= t0 + SKEW_DEFAULT + S, "{:?}", at - t0);
    // Without synchronised clocks the jump is bounded by the time since the last
    // accepted report.
    let mut c = member_config(9, 1000);
    c.max_skew = None;
    let mut u = LoadExchange::new(c, t0, WALL0).unwrap();
    let first = report_of(1, |_, _| {});
    assert_eq!(u.handle_report(t0, addr(1), &first), Ok(()));
    let jump = (WALL0 + SEQ_SLACK + 2 * S).as_micros() as u64;
    let forged = report_of(1, |_, x| x.seq = jump);
    assert_eq!(
        u.handle_report(t0 + S, addr(1), &forged),
        Err(DropReason::BadSequence)
    );
}
