//! `ikelb bench`: ns/packet of the redirect program against a MAC/IP/port-swap XDP_TX
//! reflector under the same BPF_PROG_TEST_RUN, in one run (ratios, not absolutes, are
//! what survives a noisy VM). Self-contained: needs BPF and test_run, no network.
//! Also prints the target-choice simulation ([`simulation`], no BPF needed).

use std::time::Duration;

use aya::maps::Array;
use aya::programs::{TestRun, TestRunOptions};
use lb_common::maps::{self as m, BENCH_FRAME_MAX, BenchTemplate};
use lb_common::wire::request;

use crate::config::{NoRedirect, RateLimit, RedirectMode, Vip, VlanBinding};
use crate::dataplane::{Dataplane, DataplaneError};
use crate::frames::RequestSpec;
use crate::target::simulate::{Scenario, SimPolicy, simulate};
use crate::target::{Identity, Owner, Target};

const XDP_PASS: u32 = 2;
/// VIPs of the bench dataplane in forward mode (docs/architecture.md §6).
const FWD_VIP4: &str = "198.51.100.4";
const FWD_VIP6: &str = "2001:db8::4";
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
    /// The target-choice simulation, one line per policy.
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

/// [`simulate`] on [`Scenario::default`] (10 000 clients in bursts onto 8
/// members of unequal capacity, 1 s report intervals) for ikelb's policy and the two
/// baselines. Pure computation: needs no BPF.
pub fn simulation() -> Vec<SimRow> {
    let sc = Scenario::default();
    SimPolicy::ALL
        .iter()
        .map(|&p| {
            let r = simulate(p, &sc);
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

/// The dataplane set up like the docs/protocol.md §5 vectors: VIPs 198.51.100.1 and
/// 2001:db8::1, one target per family. `obj`: the bytes of another object file with the
/// same maps instead of the embedded one.
pub fn vector_dataplane(obj: Option<&[u8]>) -> Result<Dataplane, DataplaneError> {
    let mut dp = match obj {
        Some(o) => Dataplane::load_object(o, None)?,
        None => Dataplane::load(None)?,
    };
    let vip = |a: &str, no_redirect| Vip {
        address: a.parse().expect("literal"),
        redirect: RedirectMode::Init,
        vlans: VlanBinding::default(),
        no_redirect,
    };
    let mut vips = vec![
        vip("198.51.100.1", NoRedirect::Pass),
        vip("2001:db8::1", NoRedirect::Pass),
    ];
    // A baseline object from before forwarding has no forwarding maps.
    if dp
        .ebpf_mut()
        .map(lb_common::forward::MAP_FWD_TABLE)
        .is_some()
    {
        vips.push(vip(FWD_VIP4, NoRedirect::Forward));
        vips.push(vip(FWD_VIP6, NoRedirect::Forward));
    }
    dp.set_vips(&vips)?;
    // The targets double as the forward VIPs' members.
    dp.set_member_mac("198.51.100.3".parse().expect("literal"), [2, 0, 0, 0, 0, 3]);
    dp.set_member_mac("2001:db8::3".parse().expect("literal"), [2, 0, 0, 0, 0, 3]);
    let tgt = |n: &str, a: &str| Target {
        owner: Owner::Static(n.into()),
        identity: Identity::Ip(a.parse().expect("literal")),
        weight: 1,
    };
    dp.set_targets(&[tgt("b4", "198.51.100.3"), tgt("b6", "2001:db8::3")])?;
    dp.set_active(true)?;
    // The rate limit on, as in a default configuration, so that its clock and lookup
    // are timed, at a rate no run reaches (one answer per ns).
    dp.set_rate_limit(RateLimit {
        per_second: 1_000_000_000,
        burst: 1_000_000,
    })?;
    Ok(dp)
}

fn err(what: &str) -> impl Fn(aya::programs::ProgramError) -> DataplaneError + '_ {
    move |e| DataplaneError::Program(what.into(), format!("test_run: {e:#}"))
}

/// Rounds each measurement is split into: the programs take turns, round by round, so
/// that a change in the machine's load during the run weighs on all of them alike.
const ROUNDS: u32 = 10;

/// One measurement: single-repetition calls of a program, or the restore harness in a
/// mode (repetitions of one call), on a frame.
#[derive(Clone, Copy)]
enum Job<'a> {
    Call(&'static str, &'a [u8]),
    Harness {
        mode: u32,
        frame: &'a [u8],
        expect: u32,
    },
}

/// Total kernel-measured nanoseconds of `n` runs of `job`.
fn time(dp: &mut Dataplane, job: Job, n: u32) -> Result<f64, DataplaneError> {
    let mut out = vec![0u8; 4096];
    match job {
        Job::Call(prog, frame) => {
            let p = dp.program(prog)?;
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let r = p
                    .test_run(TestRunOptions {
                        data_in: Some(frame),
                        data_out: Some(&mut out),
                        ..TestRunOptions::new()
                    })
                    .map_err(err(prog))?;
                total += r.duration;
            }
            Ok(total.as_nanos() as f64)
        }
        Job::Harness {
            mode,
            frame,
            expect,
        } => {
            set_template(dp, mode, frame)?;
            let p = dp.program("ikelb_bench")?;
            let r = p
                .test_run(TestRunOptions {
                    data_in: Some(frame),
                    data_out: Some(&mut out),
                    repeat: n,
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
            // test_run reports the mean per repetition.
            Ok(r.duration.as_nanos() as f64 * f64::from(n))
        }
    }
}

/// Makes `frame` the request the harness restores, to be run in `mode`.
fn set_template(dp: &mut Dataplane, mode: u32, frame: &[u8]) -> Result<(), DataplaneError> {
    let mut t = BenchTemplate {
        len: frame.len() as u32,
        mode,
        frame: [0; BENCH_FRAME_MAX],
    };
    t.frame[..frame.len()].copy_from_slice(frame);
    let map = dp
        .ebpf_mut()
        .map_mut(m::MAP_BENCH)
        .ok_or_else(|| DataplaneError::Map(m::MAP_BENCH.into(), "missing".into()))?;
    let mut a: Array<_, BenchTemplate> = Array::try_from(map)
        .map_err(|e| DataplaneError::Map(m::MAP_BENCH.into(), e.to_string()))?;
    a.set(0, t, 0)
        .map_err(|e| DataplaneError::Map(m::MAP_BENCH.into(), e.to_string()))
}

/// Mean ns per run of each job (`(index into dps, job)`), `n` runs each, in
/// [`ROUNDS`] rounds that visit the jobs in turn.
fn interleaved(
    dps: &mut [Dataplane],
    jobs: &[(usize, Job)],
    n: u32,
) -> Result<Vec<f64>, DataplaneError> {
    let per_round = n.div_ceil(ROUNDS).max(1);
    let mut total = vec![0.0; jobs.len()];
    for _ in 0..ROUNDS {
        for (t, &(d, job)) in total.iter_mut().zip(jobs) {
            *t += time(&mut dps[d], job, per_round)?;
        }
    }
    let runs = f64::from(per_round * ROUNDS);
    Ok(total.into_iter().map(|t| t / runs).collect())
}

/// Runs the whole bench. `calls` single-repetition runs per program and `repeat`
/// repetitions of the harness. `baseline`: the bytes of an older object file whose
/// `ikelb_xdp` is timed beside this one's, in the same run (its harness too), so that
/// a change's effect is not confounded with the machine's load of the moment.
pub fn run(calls: u32, repeat: u32, baseline: Option<&[u8]>) -> Result<Report, DataplaneError> {
    let mut dps = vec![vector_dataplane(None)?];
    if let Some(o) = baseline {
        dps.push(vector_dataplane(Some(o))?);
    }
    let base = dps.len() > 1;
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for (family, spec) in [
        ("ipv4", RequestSpec::default()),
        ("ipv6", RequestSpec::v6()),
    ] {
        let frame = spec.frame();
        // Sanity: the program answers this frame, with the reference model's bytes.
        for dp in dps.iter_mut() {
            check_answer(dp, &frame)?;
        }
        let mut row = |method, program, ns| {
            rows.push(Row {
                family,
                method,
                program,
                ns_per_packet: ns,
            })
        };
        let mut calls_of = vec![
            (0, Job::Call("ikelb_pass", &frame)),
            (0, Job::Call("ikelb_reflect", &frame)),
            (0, Job::Call(m::PROG_NAME, &frame)),
        ];
        if base {
            calls_of.push((1, Job::Call(m::PROG_NAME, &frame)));
        }
        let c = interleaved(&mut dps, &calls_of, calls)?;
        let (empty, refl, ike) = (c[0], c[1], c[2]);
        row("per-call", "empty (XDP_PASS)", empty);
        row("per-call", "reflector", refl);
        row("per-call", "ikelb", ike);
        if base {
            row("per-call", "baseline ikelb", c[3]);
        }
        // The pass path: traffic that is not for a VIP, and a request that is parsed
        // to the end but not answered (no REDIRECT_SUPPORTED).
        let mut other = spec.clone();
        other.dst = if spec.dst.is_ipv6() {
            "2001:db8::99".parse().expect("literal")
        } else {
            [198, 51, 100, 99].into()
        };
        let other = other.frame();
        let no_rs = RequestSpec {
            redirect_supported: false,
            ..spec.clone()
        }
        .frame();
        let h = |mode, frame, expect| Job::Harness {
            mode,
            frame,
            expect,
        };
        // The forwarding path: a request without REDIRECT_SUPPORTED (parsed to the end),
        // and ESP in UDP of 400 bytes (UDP checksum 0 over IPv4, RFC 3948 §2.1), both
        // to a forward-mode VIP; the connection table hits after the first run.
        let fwd_dst: std::net::IpAddr = if spec.dst.is_ipv6() {
            FWD_VIP6.parse().expect("literal")
        } else {
            FWD_VIP4.parse().expect("literal")
        };
        let fwd_init = RequestSpec {
            dst: fwd_dst,
            redirect_supported: false,
            ..spec.clone()
        }
        .frame();
        let esp_spec = RequestSpec {
            dst: fwd_dst,
            sport: 4500,
            dport: 4500,
            udp_checksum: false,
            ..spec.clone()
        };
        let mut esp = vec![0x5a; 400];
        esp[..8].copy_from_slice(&[0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1]);
        let fwd_esp = crate::frames::build_frame(&esp_spec, &esp);
        let mut harness_of = vec![
            (0, h(m::BENCH_RESTORE, &frame, XDP_TX)),
            (0, h(m::BENCH_REFLECT, &frame, XDP_TX)),
            (0, h(m::BENCH_REDIRECT, &frame, XDP_TX)),
            (0, h(m::BENCH_REDIRECT, &other, XDP_PASS)),
            (0, h(m::BENCH_REDIRECT, &no_rs, XDP_PASS)),
            (0, h(m::BENCH_RESTORE, &fwd_esp, XDP_TX)),
            (0, h(m::BENCH_REFLECT, &fwd_esp, XDP_TX)),
            (0, h(m::BENCH_REDIRECT, &fwd_esp, XDP_TX)),
            (0, h(m::BENCH_REDIRECT, &fwd_init, XDP_TX)),
        ];
        const FWD: usize = 5;
        // The baseline's own harness and restore cost: its object may restore differently.
        if base {
            harness_of.push((1, h(m::BENCH_RESTORE, &frame, XDP_TX)));
            harness_of.push((1, h(m::BENCH_REDIRECT, &frame, XDP_TX)));
        }
        let bh = FWD + 4;
        let hs = interleaved(&mut dps, &harness_of, repeat)?;
        let (restore, hrefl, hike) = (hs[0], hs[1], hs[2]);
        row("harness", "restore only", restore);
        row("harness", "restore + reflector", hrefl);
        row("harness", "restore + ikelb", hike);
        row("harness", "restore + ikelb, not a VIP", hs[3]);
        row("harness", "restore + ikelb, no RS", hs[4]);
        let (esp_restore, esp_refl, esp_fwd) = (hs[FWD], hs[FWD + 1], hs[FWD + 2]);
        row("harness", "restore ESP-in-UDP only", esp_restore);
        row("harness", "restore + reflector, ESP", esp_refl);
        row("harness", "restore + ikelb, fwd ESP", esp_fwd);
        row("harness", "restore + ikelb, fwd no RS", hs[FWD + 3]);
        if base {
            row("harness", "baseline restore only", hs[bh]);
            row("harness", "baseline restore + ikelb", hs[bh + 1]);
        }
        let ike_only = (hike - restore).max(0.0);
        row("program", "reflector", (hrefl - restore).max(0.0));
        row("program", "ikelb", ike_only);
        row("program", "ikelb, not a VIP", (hs[3] - restore).max(0.0));
        row("program", "ikelb, no RS", (hs[4] - restore).max(0.0));
        let esp_refl_only = (esp_refl - esp_restore).max(1e-9);
        row("program", "reflector, ESP", esp_refl_only);
        row(
            "program",
            "ikelb, fwd ESP",
            (esp_fwd - esp_restore).max(0.0),
        );
        row(
            "program",
            "ikelb, fwd no RS",
            (hs[FWD + 3] - restore).max(0.0),
        );
        ratios.push((
            format!("{family} program-only fwd ESP/reflector"),
            (esp_fwd - esp_restore).max(0.0) / esp_refl_only,
        ));
        ratios.push((format!("{family} per-call ikelb/reflector"), ike / refl));
        ratios.push((format!("{family} harness ikelb/reflector"), hike / hrefl));
        ratios.push((
            format!("{family} program-only ikelb/reflector"),
            ike_only / (hrefl - restore).max(1e-9),
        ));
        if base {
            let base_only = (hs[bh + 1] - hs[bh]).max(0.0);
            row("program", "baseline ikelb", base_only);
            ratios.push((format!("{family} per-call baseline/reflector"), c[3] / refl));
            ratios.push((
                format!("{family} program-only ikelb/baseline"),
                ike_only / base_only.max(1e-9),
            ));
        }
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
    let req = request::parse(frame, true, |_, _| Some(m::Vip::ANY))
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
