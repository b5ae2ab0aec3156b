//! Bounded floods (`ikelb flood`, issue 5): the live-frames generator against ikelb's
//! fast path and the XDP_TX reflector, each in fresh namespaces joined by a veth pair.
//! Every request must come back answered, and every answer must echo its request's SPIi,
//! client address and port, and nonce.
//!
//! Exact equality is asserted at a paced rate: at full speed a 2-CPU VM shared with
//! other work can lose frames in the veth rings, which is the path's limit, not a wrong
//! answer; the full-speed test asserts that whatever comes back is right.
//!
//! Root only; the object must be embedded (`cargo xtask build`).

use std::time::Duration;

use lb_userspace::flood::{self, Family, Options, Responder, RunReport};

const COUNT: u64 = 100_000;
/// Frames/s at which this VM answers every frame (0.4 s per flood).
const RELIABLE_RATE: u64 = 250_000;

fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn flood(who: Responder, rate: Option<u64>) -> RunReport {
    flood_family(who, rate, Family::V4)
}

fn flood_family(who: Responder, rate: Option<u64>, family: Family) -> RunReport {
    let opts = Options {
        count: COUNT,
        max_time: Duration::from_secs(20),
        rate,
        clients: family.default_clients(),
        ..Options::default()
    };
    let n = threads();
    let r = flood::run_one(&opts, who, n, n).unwrap_or_else(|e| panic!("{}: {e}", who.name()));
    eprintln!(
        "{} ({}): sent {} answered {} correct {} in {:.3} s ({:.0} answered/s)",
        r.responder, r.family, r.sent, r.answered, r.correct, r.seconds, r.pps_answered
    );
    assert_eq!(r.sent, COUNT, "{r:#?}");
    assert_eq!(r.incorrect, 0, "{r:#?}");
    assert_eq!(r.correct, r.answered, "{r:#?}");
    assert_eq!(
        r.per_cpu.iter().map(|c| c.sent).sum::<u64>(),
        r.sent,
        "{r:#?}"
    );
    assert_eq!(
        r.per_cpu.iter().map(|c| c.answered).sum::<u64>(),
        r.answered,
        "{r:#?}"
    );
    r
}

fn counter(r: &RunReport, name: &str) -> u64 {
    r.responder_counters
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| *v)
}

#[test]
fn flood_ikelb_answers_every_request() {
    crate::require_root!();
    let r = flood(Responder::Ikelb, Some(RELIABLE_RATE));
    assert_eq!(r.answered, r.sent, "{r:#?}");
    assert_eq!(counter(&r, "redirected"), COUNT, "{r:#?}");
}

#[test]
fn flood_reflector_echoes_every_request() {
    crate::require_root!();
    let r = flood(Responder::Reflector, Some(RELIABLE_RATE));
    assert_eq!(r.answered, r.sent, "{r:#?}");
}

#[test]
fn flood_at_full_speed_answers_only_correctly() {
    crate::require_root!();
    for who in [Responder::Reflector, Responder::Ikelb] {
        let r = flood(who, None);
        assert!(r.answered > 0 && r.answered <= r.sent, "{r:#?}");
    }
}

/// The same over IPv6 (`ikelb flood --family v6`): IPv6 VIP and clients, answers naming
/// an IPv6 gateway, UDP checksums mandatory both ways.
#[test]
fn flood_ipv6_ikelb_and_reflector_answer_every_request() {
    crate::require_root!();
    for who in [Responder::Reflector, Responder::Ikelb] {
        let r = flood_family(who, Some(RELIABLE_RATE), Family::V6);
        assert_eq!(r.family, "ipv6", "{r:#?}");
        assert_eq!(r.answered, r.sent, "{r:#?}");
        if who == Responder::Ikelb {
            assert_eq!(counter(&r, "redirected"), COUNT, "{r:#?}");
        }
    }
}
