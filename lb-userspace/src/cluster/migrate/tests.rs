use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::run::{Start, start, verdict};
use super::*;
use crate::vici::fake::{FakeCharon, FakeSa};

fn member(id: u32, ids: &[&str], capacity: u32) -> Member {
    Member::for_test(id, ids, capacity, 10, Instant::now())
}

fn sa(id: u32, peer: &str) -> IkeSa {
    IkeSa {
        name: "rw".into(),
        uniqueid: Some(id),
        version: Some(2),
        state: "ESTABLISHED".into(),
        initiator: false,
        local_host: None,
        remote_host: Some(peer.parse().unwrap()),
        remote_id: String::new(),
    }
}

fn opts(batch: u32) -> Options {
    Options {
        batch,
        interval: Duration::from_millis(20),
        settle: Duration::from_secs(20),
    }
}

fn count(orders: &[Order]) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    for o in orders {
        *m.entry(o.member).or_insert(0) += 1;
    }
    m
}

#[test]
fn options_are_checked() {
    assert!(Options::new(50, Duration::from_secs(1)).is_ok());
    assert!(Options::new(0, Duration::from_secs(1)).is_err());
    assert!(Options::new(10_001, Duration::from_secs(1)).is_err());
    assert!(Options::new(1, Duration::from_millis(5)).is_err());
    assert!(Options::new(1, Duration::from_secs(3601)).is_err());
    assert_eq!(
        Options::new(1, Duration::from_secs(1)).unwrap().settle,
        Options::SETTLE
    );
}

#[test]
fn only_established_ikev2_sas_this_end_responded_to_are_taken() {
    let mut m = Migration::new(3, opts(10), 5);
    let now = Instant::now();
    let mut init = sa(2, "10.0.0.2");
    init.initiator = true;
    let mut v1 = sa(3, "10.0.0.3");
    v1.version = Some(1);
    let mut connecting = sa(4, "10.0.0.4");
    connecting.state = "CONNECTING".into();
    let mut no_addr = sa(5, "10.0.0.5");
    no_addr.remote_host = None;
    let mut no_id = sa(6, "10.0.0.6");
    no_id.uniqueid = None;
    let all = [
        sa(1, "10.0.0.1"),
        init,
        v1,
        connecting.clone(),
        no_addr,
        no_id,
    ];
    m.observe(now, &all);
    let p = m.progress();
    assert_eq!((p.total, p.skipped, p.remaining), (1, 3, 1));
    // Listed again: nothing is taken twice; the SA that got established joins.
    connecting.state = "ESTABLISHED".into();
    let mut again = all.to_vec();
    again[3] = connecting;
    m.observe(now, &again);
    let p = m.progress();
    assert_eq!((p.total, p.skipped, p.remaining), (2, 3, 2));
}

#[test]
fn a_batch_spreads_in_proportion_to_headroom() {
    let ms = [
        member(1, &["192.0.2.1"], 1000),
        member(2, &["192.0.2.2"], 3000),
    ];
    let mut m = Migration::new(3, opts(40), 5);
    let sas: Vec<IkeSa> = (1..=50).map(|i| sa(i, "10.0.0.9")).collect();
    m.observe(Instant::now(), &sas);
    let orders = m.next_batch(&ms);
    assert_eq!(orders.len(), 40, "one batch");
    let c = count(&orders);
    assert_eq!(c[&1] + c[&2], 40);
    assert!((9..=11).contains(&c[&1]), "{c:?}");
    // Each order names the member's identity of the peer's family.
    for o in &orders {
        let want = if o.member == 1 {
            "192.0.2.1"
        } else {
            "192.0.2.2"
        };
        assert_eq!(o.gateway.to_string(), want);
    }
    assert_eq!(m.progress().batches, 1);
    assert_eq!(m.progress().targets.values().sum::<u64>(), 40);
    assert_eq!(m.next_batch(&ms).len(), 10, "the rest");
}

#[test]
fn only_members_that_can_take_the_sa() {
    let mut draining = member(4, &["192.0.2.4"], 1000);
    draining.figures.drain = true;
    let mut full = member(5, &["192.0.2.5"], 10);
    full.figures.active_sas = 10;
    let mut idle = member(6, &["192.0.2.6"], 1000);
    idle.figures.weight = 0;
    let mut me = member(3, &["192.0.2.3"], 1000);
    me.local = true;
    let v6 = member(7, &["2001:db8::7"], 1000);
    let fqdn = member(8, &["gw8.example.net"], 1000);
    let ms = [draining, full, idle, me, v6, fqdn];
    let mut m = Migration::new(3, opts(100), 5);
    let sas: Vec<IkeSa> = (1..=10)
        .map(|i| sa(i, "10.0.0.1"))
        .chain((11..=20).map(|i| sa(i, "2001:db8:1::1")))
        .collect();
    m.observe(Instant::now(), &sas);
    let orders = m.next_batch(&ms);
    assert_eq!(orders.len(), 20);
    for o in &orders {
        if o.peer.is_ipv4() {
            assert_eq!(o.member, 8, "only the FQDN serves IPv4 here");
        } else {
            assert!([7, 8].contains(&o.member), "{o:?}");
        }
    }
    // Nobody serves the next SA: it waits, and nothing is lost.
    let mut m = Migration::new(3, opts(100), 5);
    m.observe(Instant::now(), &[sa(1, "10.0.0.1")]);
    assert!(
        m.next_batch(&[member(7, &["2001:db8::7"], 1000)])
            .is_empty()
    );
    assert!(m.progress().waiting);
    assert_eq!(m.progress().remaining, 1);
}

#[test]
fn redirects_count_against_headroom_until_the_next_report() {
    let mut small = member(1, &["192.0.2.1"], 4);
    let big = member(2, &["192.0.2.2"], 1000);
    let mut m = Migration::new(3, opts(1), 1);
    let sas: Vec<IkeSa> = (1..=200).map(|i| sa(i, "10.0.0.9")).collect();
    m.observe(Instant::now(), &sas);
    let mut to_small = 0;
    for _ in 0..200 {
        let o = m.next_batch(&[small.clone(), big.clone()]);
        to_small += o.iter().filter(|o| o.member == 1).count();
    }
    assert!(
        to_small <= 4,
        "the small member took {to_small} beyond its headroom"
    );
    // Its next report counts them as SAs: still no room.
    small.seq += 1;
    small.figures.active_sas = 4;
    let mut m2 = Migration::new(3, opts(10), 1);
    m2.observe(Instant::now(), &sas);
    let o = m2.next_batch(&[small, big]);
    assert!(o.iter().all(|o| o.member == 2), "{o:?}");
}

#[test]
fn outcomes_are_counted_once() {
    let ms = [member(1, &["192.0.2.1"], 1000)];
    let mut m = Migration::new(3, opts(10), 5);
    let t0 = Instant::now();
    let sas: Vec<IkeSa> = (1..=5).map(|i| sa(i, "10.0.0.9")).collect();
    m.observe(t0, &sas);
    let orders = m.next_batch(&ms);
    assert_eq!(orders.len(), 5);
    m.answered(t0, &orders[0], Ok(1));
    m.answered(t0, &orders[1], Ok(1));
    m.answered(t0, &orders[2], Ok(0)); // gone before its redirect
    m.answered(t0, &orders[3], Err("unsupported gateway identity".into()));
    m.answered(t0, &orders[4], Ok(1));
    assert_eq!(m.progress().in_flight, 3);
    // SA 1 moved; 2 and 5 are still here.
    m.observe(t0 + Duration::from_secs(1), &sas[1..]);
    let p = m.progress();
    assert_eq!((p.migrated, p.ended, p.failed, p.in_flight), (1, 1, 1, 2));
    assert!(!m.done());
    // Past the settle time SA 2 is still here: failed; 5 left just in time.
    m.observe(t0 + Duration::from_secs(21), &sas[1..2]);
    let p = m.progress();
    assert_eq!((p.migrated, p.failed, p.remaining), (2, 2, 0));
    assert!(m.done());
    // A failed SA is never redirected again.
    m.observe(t0 + Duration::from_secs(22), &sas[1..2]);
    assert!(m.next_batch(&ms).is_empty() && m.done());
    assert_eq!(m.progress().total, 5);
}

#[test]
fn charon_answers_become_verdicts() {
    let a = |success, matches, e: Option<&str>| crate::vici::RedirectAnswer {
        success,
        matches,
        errmsg: e.map(Into::into),
    };
    assert_eq!(verdict(&a(true, 1, None)), Ok(1));
    assert_eq!(
        verdict(&a(false, 0, Some("no matching SAs to redirect found"))),
        Ok(0)
    );
    assert!(verdict(&a(false, 0, Some("unsupported gateway identity"))).is_err());
    assert!(verdict(&a(false, 0, None)).is_err());
}

#[test]
fn summary_line() {
    let p = Progress {
        total: 3,
        migrated: 2,
        remaining: 1,
        in_flight: 1,
        batch: 2,
        interval_ms: 500,
        waiting: true,
        targets: BTreeMap::from([(1, 2), (2, 1)]),
        ..Progress::default()
    };
    assert_eq!(
        p.summary(),
        "migration running: 2 of 3 migrated, 0 failed, 0 ended, 1 remaining (1 in flight), \
         0 skipped; batches of 2 every 500 ms; redirected to member 1: 2, member 2: 1; \
         waiting: no other member has headroom"
    );
}

/// The driver against a fake charon: batches, the first answer, the end.
#[test]
fn driver_moves_what_follows_and_reports_the_rest() {
    let mut stays = FakeSa::new(4, "10.0.0.4");
    stays.follows = false;
    let mut init = FakeSa::new(5, "10.0.0.5");
    init.initiator = true;
    let mut sas: Vec<FakeSa> = (1..=3)
        .map(|i| FakeSa::new(i, &format!("10.0.0.{i}")))
        .collect();
    sas.extend([stays, init, FakeSa::new(6, "2001:db8::6")]);
    let fake = FakeCharon::start(sas);
    let (tx, rx) = mpsc::channel();
    let h = start(
        Start {
            vici: fake.path.clone(),
            own_id: 3,
            opts: Options {
                batch: 2,
                interval: Duration::from_millis(20),
                settle: Duration::from_millis(300),
            },
            slow_start_reports: 1,
            members: vec![
                member(1, &["192.0.2.1", "2001:db8::1"], 100),
                member(2, &["192.0.2.2"], 100),
            ],
        },
        Box::new(move |r| tx.send(r).unwrap()),
    )
    .unwrap();
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((first.total, first.skipped, first.batch), (5, 1, 2));
    let t = Instant::now();
    while h.running() {
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", h.progress());
        std::thread::sleep(Duration::from_millis(20));
    }
    let p = h.progress();
    assert_eq!(p.state, State::Done, "{p:?}");
    assert_eq!((p.migrated, p.failed, p.remaining), (4, 1, 0), "{p:?}");
    assert!(p.batches >= 3, "batches of 2: {p:?}");
    let st = fake.state.lock().unwrap();
    assert_eq!(st.redirects.len(), 5);
    for (id, ip, gw) in &st.redirects {
        let want: &[&str] = if ip.contains(':') {
            &["2001:db8::1"]
        } else {
            &["192.0.2.1", "192.0.2.2"]
        };
        assert!(want.contains(&gw.as_str()), "SA {id} from {ip} to {gw}");
    }
    // The SA this end initiated was left alone; the one that did not follow stays.
    let left: Vec<u32> = st.sas.iter().map(|s| s.id).collect();
    assert_eq!(left, [4, 5]);
}

#[test]
fn driver_without_charon_answers_why() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let h = start(
        Start {
            vici: dir.path().join("none.vici"),
            own_id: 3,
            opts: opts(5),
            slow_start_reports: 1,
            members: Vec::new(),
        },
        Box::new(move |r| tx.send(r).unwrap()),
    )
    .unwrap();
    let e = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap_err();
    assert!(e.contains("none.vici"), "{e}");
    let t = Instant::now();
    while h.running() {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(h.progress().state, State::Failed);
    assert!(h.progress().error.is_some_and(|e| e.contains("none.vici")));
}
