//! Bounded floods (`ikelb flood`): the generator against ikelb's fast path and the
//! XDP_TX reflector, each in fresh namespaces joined by a veth pair. Every request must
//! come back answered, and every answer must echo its request's SPIi, client address
//! and port, and nonce. The floods use whichever sender the kernel allows (live-frames
//! test_run, else AF_XDP); the AF_XDP sender is also tested on its own, so both are
//! covered wherever live frames work.
//!
//! Exact equality is asserted at a paced rate: at full speed a 2-CPU VM shared with
//! other work can lose frames in the veth rings, which is the path's limit, not a wrong
//! answer; the full-speed test asserts that whatever comes back is right.
//!
//! Root only; the object must be embedded (`cargo xtask build`).

use std::time::Duration;

use lb_userspace::flood::{self, Family, Options, Responder, RunReport, Sender};

const COUNT: u64 = 100_000;
/// Frames/s at which this VM answers every frame (0.4 s per flood).
const RELIABLE_RATE: u64 = 250_000;

fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn flood(who: Responder, rate: Option<u64>) -> RunReport {
    flood_with(who, rate, Family::V4, Sender::Auto)
}

fn flood_family(who: Responder, rate: Option<u64>, family: Family) -> RunReport {
    flood_with(who, rate, family, Sender::Auto)
}

fn options(rate: Option<u64>, family: Family, sender: Sender) -> Options {
    Options {
        count: COUNT,
        max_time: Duration::from_secs(20),
        rate,
        clients: family.default_clients(),
        sender,
        ..Options::default()
    }
}

fn flood_with(who: Responder, rate: Option<u64>, family: Family, sender: Sender) -> RunReport {
    let opts = options(rate, family, sender);
    let n = threads();
    let r = flood::run_one(&opts, who, n, n).unwrap_or_else(|e| panic!("{}: {e}", who.name()));
    eprintln!(
        "{} ({}, {}{}): sent {} answered {} correct {} in {:.3} s ({:.0} answered/s)",
        r.responder,
        r.family,
        r.sender,
        if r.recycled { ", recycled" } else { "" },
        r.sent,
        r.answered,
        r.correct,
        r.seconds,
        r.pps_answered
    );
    if r.recycled {
        // The loop stops within one poll of the count (or at the time limit).
        assert!(r.sent >= COUNT || r.seconds >= 20.0, "{r:#?}");
        assert!(r.sent < COUNT + 1_000_000, "{r:#?}");
    } else {
        assert_eq!(r.sent, COUNT, "{r:#?}");
    }
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

/// Requests without REDIRECT_SUPPORTED to a VIP with `no-redirect = "forward"`: every
/// one comes back forwarded to the member unchanged (the client still the source, nonce
/// intact), counted as forwarded and never answered with a REDIRECT; both families, and
/// the in-kernel loop at full speed.
#[test]
fn flood_forwarding_forwards_every_request() {
    crate::require_root!();
    for family in [Family::V4, Family::V6] {
        let r = flood_family(Responder::IkelbForward, Some(RELIABLE_RATE), family);
        assert_eq!(r.answered, r.sent, "{r:#?}");
        assert_eq!(r.sent_no_redirect_supported, r.sent, "{r:#?}");
        assert_eq!(counter(&r, "forwarded"), COUNT, "{r:#?}");
        assert_eq!(counter(&r, "redirected"), 0, "{r:#?}");
    }
    let r = flood(Responder::IkelbForward, None);
    assert!(r.answered > 0 && r.answered <= r.sent, "{r:#?}");
}

/// The AF_XDP sender on its own (on a kernel with live frames `auto` never picks it):
/// paced, every request answered and right; unpaced, the in-kernel loop recycles
/// answers into requests and still only correct answers come back.
#[test]
fn flood_afxdp_sender_answers_every_request() {
    crate::require_root!();
    for who in [Responder::Ikelb, Responder::Reflector] {
        let r = flood_with(who, Some(RELIABLE_RATE), Family::V4, Sender::Afxdp);
        assert_eq!((r.sender.as_str(), r.recycled), ("afxdp", false), "{r:#?}");
        assert_eq!(r.answered, r.sent, "{r:#?}");
        let r = flood_with(who, None, Family::V6, Sender::Afxdp);
        assert!(r.recycled, "{r:#?}");
        assert!(r.answered > COUNT / 2 && r.answered <= r.sent, "{r:#?}");
    }
}

/// `auto` takes live frames where the kernel runs them and AF_XDP where it refuses
/// them, naming the OS error; `live` asked for on such a kernel fails with it.
#[test]
fn flood_sender_choice_follows_the_kernel() {
    crate::require_root!();
    let small = |sender| Options {
        count: 1_000,
        ..options(Some(RELIABLE_RATE), Family::V4, sender)
    };
    let live = flood::run_one(&small(Sender::Live), Responder::Reflector, 1, 1);
    let auto = flood::run_one(&small(Sender::Auto), Responder::Reflector, 1, 1)
        .unwrap_or_else(|e| panic!("auto: {e}"));
    assert_eq!(auto.answered, 1_000, "{auto:#?}");
    match live {
        Ok(r) => {
            assert_eq!(r.sender, "live", "{r:#?}");
            assert_eq!((auto.sender.as_str(), &auto.sender_note), ("live", &None));
        }
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("os error"), "{e}");
            assert_eq!(auto.sender, "afxdp", "{auto:#?}");
            let note = auto.sender_note.clone().unwrap_or_default();
            assert!(note.contains("os error"), "{note}");
            eprintln!("live frames refused here: {note}");
        }
    }
}

/// The sender alone into the XDP_DROP sink takes every frame, never faster than the
/// pace asked for. (Which runs are marked generator-bound against it is a unit test:
/// comparing two timed runs here would test this VM's noise.)
#[test]
fn flood_sink_measures_the_sender() {
    crate::require_root!();
    let opts = options(Some(RELIABLE_RATE), Family::V4, Sender::Auto);
    let n = threads();
    let s = flood::sink(&opts, n, n).unwrap_or_else(|e| panic!("sink: {e}"));
    assert_eq!(s.sent, COUNT, "{s:#?}");
    // The link's own frames (IPv6 neighbour discovery) may arrive too.
    assert!(s.taken >= COUNT && s.taken < COUNT + 100, "{s:#?}");
    assert!(s.pps_taken <= RELIABLE_RATE as f64 * 1.05, "{s:#?}");
}
