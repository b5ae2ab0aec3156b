//! `ikelb bench`: ns/packet of the redirect program against a MAC/IP/port-swap XDP_TX
//! reflector under the same BPF_PROG_TEST_RUN, in one run (ratios, not absolutes, are
//! what survives a noisy VM). Self-contained: needs BPF and test_run, no network.
//! Also prints issue 4's target-choice simulation ([`simulation`], no BPF needed).

use std::time::Duration;

use aya::maps::Array;
use aya::programs::{TestRun, TestRunOptions};
use lb_common::maps::{self as m, BENCH_FRAME_MAX, BenchTemplate};
use lb_common::wire::request;

use crate::config::{Identity, RedirectMode, Vip};
use crate::dataplane::{Dataplane, DataplaneError, TargetEntry};
use crate::frames::RequestSpec;
use crate::select::{self, Scenario, SimPolicy};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// One measured line.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub family: &'static str,
    pub method: &'static str,
    pub program: &'static str,
    pub ns_per_packet: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    /// ikelb / reflector, per family and method.
    pub ratios: Vec<(String, f64)>,
    /// Issue 4's target-choice simulation, one line per policy.
    pub simulation: Vec<SimRow>,
}

/// One policy in [`simulation`]: utilisation (SAs / capacity) when every client has
/// its SA.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimRow {
    pub policy: &'static str,
    pub max_util: f64,
    pub mean_util: f64,
    /// max / mean: 1.0 is a perfect spread.
    pub max_over_mean: f64,
    pub redirected: u32,
}

/// [`select::simulate`] on [`Scenario::default`] (10 000 clients in bursts onto 8
/// members of unequal capacity, 1 s report intervals) for ikelb's policy and the two
/// baselines. Pure computation: needs no BPF.
pub fn simulation() -> Vec<SimRow> {
    let sc = Scenario::default();
    SimPolicy::ALL
        .iter()
        .map(|&p| {
            let r = select::simulate(p, &sc);
            SimRow {
                policy: p.name(),
                max_util: r.max_util,
                mean_util: r.mean_util,
                max_over_mean: r.ratio(),
                redirected: r.redirected,
            }
        })
        .collect()
}

/// Prints [`simulation`]'s rows under a line describing the scenario.
pub fn print_simulation(rows: &[SimRow]) {
    let sc = Scenario::default();
    println!(
        "simulation: {} clients in bursts of {}-{} onto {} members (capacities {:?}), \
         reports every {} ms",
        sc.clients,
        sc.burst.0,
        sc.burst.1,
        sc.capacities.len(),
        sc.capacities,
        sc.report_interval_ms
    );
    println!(
        "{:<14} {:>8} {:>9} {:>9} {:>11}",
        "policy", "max util", "mean util", "max/mean", "redirected"
    );
    for r in rows {
        println!(
            "{:<14} {:>8.3} {:>9.3} {:>9.3} {:>11}",
            r.policy, r.max_util, r.mean_util, r.max_over_mean, r.redirected
        );
    }
}

/// The dataplane set up like the protocol.md §5 vectors: VIPs 198.51.100.1 and
/// 2001:db8::1, one target per family.
pub fn vector_dataplane() -> Result<Dataplane, DataplaneError> {
    let mut dp = Dataplane::load(None)?;
    let vip = |a: &str| Vip {
        address: a.parse().expect("literal"),
        redirect: RedirectMode::Init,
    };
    dp.set_vips(&[vip("198.51.100.1"), vip("2001:db8::1")])?;
    let tgt = |n: &str, a: &str| TargetEntry {
        name: n.into(),
        identity: Identity::Ip(a.parse().expect("literal")),
        weight: 1,
    };
    dp.set_targets(&[tgt("b4", "198.51.100.3"), tgt("b6", "2001:db8::3")])?;
    dp.set_active(true)?;
    Ok(dp)
}

fn err(what: &str) -> impl Fn(aya::programs::ProgramError) -> DataplaneError + '_ {
    move |e| DataplaneError::Program(what.into(), format!("test_run: {e:#}"))
}

/// Mean kernel-measured duration of `calls` single-repetition runs.
fn per_call(
    dp: &mut Dataplane,
    prog: &'static str,
    frame: &[u8],
    calls: u32,
) -> Result<f64, DataplaneError> {
    let p = dp.program(prog)?;
    let mut out = vec![0u8; 4096];
    let mut total = Duration::ZERO;
    for _ in 0..calls {
        let r = p
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::new()
            })
            .map_err(err(prog))?;
        total += r.duration;
    }
    Ok(total.as_nanos() as f64 / f64::from(calls))
}

/// Per-repetition duration of the restore harness in `mode` over `repeat` repetitions.
fn harness(
    dp: &mut Dataplane,
    mode: u32,
    frame: &[u8],
    repeat: u32,
    expect: u32,
) -> Result<f64, DataplaneError> {
    let mut t = BenchTemplate {
        len: frame.len() as u32,
        mode,
        frame: [0; BENCH_FRAME_MAX],
    };
    t.frame[..frame.len()].copy_from_slice(frame);
    {
        let map = dp
            .ebpf_mut()
            .map_mut(m::MAP_BENCH)
            .ok_or_else(|| DataplaneError::Map(m::MAP_BENCH.into(), "missing".into()))?;
        let mut a: Array<_, BenchTemplate> = Array::try_from(map)
            .map_err(|e| DataplaneError::Map(m::MAP_BENCH.into(), e.to_string()))?;
        a.set(0, t, 0)
            .map_err(|e| DataplaneError::Map(m::MAP_BENCH.into(), e.to_string()))?;
    }
    let p = dp.program("ikelb_bench")?;
    let mut out = vec![0u8; 4096];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::new()
        })
        .map_err(err("ikelb_bench"))?;
    if r.return_value != expect {
        return Err(DataplaneError::Program(
            "ikelb_bench".into(),
            format!(
                "mode {mode} returned {} instead of {expect}",
                r.return_value
            ),
        ));
    }
    Ok(r.duration.as_nanos() as f64)
}

/// Runs the whole bench. `calls` single-repetition runs per program and `repeat`
/// repetitions of the harness.
pub fn run(calls: u32, repeat: u32) -> Result<Report, DataplaneError> {
    let mut dp = vector_dataplane()?;
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for (family, spec) in [
        ("ipv4", RequestSpec::default()),
        ("ipv6", RequestSpec::v6()),
    ] {
        let frame = spec.frame();
        // Sanity: the program answers this frame, with the reference model's bytes.
        check_answer(&mut dp, &frame)?;
        let mut row = |method, program, ns| {
            rows.push(Row {
                family,
                method,
                program,
                ns_per_packet: ns,
            })
        };
        let empty = per_call(&mut dp, "ikelb_pass", &frame, calls)?;
        let refl = per_call(&mut dp, "ikelb_reflect", &frame, calls)?;
        let ike = per_call(&mut dp, m::PROG_NAME, &frame, calls)?;
        row("per-call", "empty (XDP_PASS)", empty);
        row("per-call", "reflector", refl);
        row("per-call", "ikelb", ike);
        let restore = harness(&mut dp, m::BENCH_RESTORE, &frame, repeat, XDP_TX)?;
        let hrefl = harness(&mut dp, m::BENCH_REFLECT, &frame, repeat, XDP_TX)?;
        let hike = harness(&mut dp, m::BENCH_REDIRECT, &frame, repeat, XDP_TX)?;
        row("harness", "restore only", restore);
        row("harness", "restore + reflector", hrefl);
        row("harness", "restore + ikelb", hike);
        // The pass path: traffic that is not for a VIP, and a request that is parsed
        // to the end but not answered (no REDIRECT_SUPPORTED).
        let mut other = spec.clone();
        other.dst = if spec.dst.is_ipv6() {
            "2001:db8::99".parse().expect("literal")
        } else {
            [198, 51, 100, 99].into()
        };
        let not_vip = harness(&mut dp, m::BENCH_REDIRECT, &other.frame(), repeat, XDP_PASS)?;
        let no_rs = RequestSpec {
            redirect_supported: false,
            ..spec.clone()
        };
        let parsed = harness(&mut dp, m::BENCH_REDIRECT, &no_rs.frame(), repeat, XDP_PASS)?;
        row("harness", "restore + ikelb, not a VIP", not_vip);
        row("harness", "restore + ikelb, no RS", parsed);
        ratios.push((format!("{family} per-call ikelb/reflector"), ike / refl));
        ratios.push((format!("{family} harness ikelb/reflector"), hike / hrefl));
        ratios.push((
            format!("{family} program-only ikelb/reflector"),
            (hike - restore).max(0.0) / (hrefl - restore).max(1e-9),
        ));
    }
    Ok(Report {
        rows,
        ratios,
        simulation: simulation(),
    })
}

/// Runs `ikelb_xdp` once on `frame` and checks XDP_TX with the reference answer.
pub fn check_answer(dp: &mut Dataplane, frame: &[u8]) -> Result<(), DataplaneError> {
    let p = dp.program(m::PROG_NAME)?;
    let mut out = vec![0u8; 4096];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::new()
        })
        .map_err(err(m::PROG_NAME))?;
    let bad = |why: String| DataplaneError::Program(m::PROG_NAME.into(), why);
    if r.return_value != XDP_TX {
        return Err(bad(format!(
            "returned {} on the bench frame",
            r.return_value
        )));
    }
    let req = request::parse(frame, true, |_, _| Some(m::VIP_MODE_INIT))
        .map_err(|s| bad(format!("reference parser: {}", s.name())))?;
    let mut want = vec![0u8; 4096];
    let t = if req.v6 {
        m::Target::ipv6(
            "2001:db8::3"
                .parse::<std::net::Ipv6Addr>()
                .expect("literal")
                .octets(),
        )
    } else {
        m::Target::ipv4([198, 51, 100, 3])
    };
    let n = request::emit_reply_frame(frame, &req, &t, &mut want)
        .map_err(|s| bad(format!("reference answer: {}", s.name())))?;
    if out[..r.data_size_out as usize] != want[..n] {
        return Err(bad("answer differs from the reference model".into()));
    }
    Ok(())
}

impl Report {
    pub fn print(&self) {
        println!(
            "{:<6} {:<9} {:<22} {:>12}",
            "family", "method", "program", "ns/packet"
        );
        for r in &self.rows {
            println!(
                "{:<6} {:<9} {:<28} {:>10.1}",
                r.family, r.method, r.program, r.ns_per_packet
            );
        }
        for (name, v) in &self.ratios {
            println!("{name:<44} {v:>6.2}");
        }
        println!();
        print_simulation(&self.simulation);
    }
}
