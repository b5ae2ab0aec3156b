//! One flood: topology, object, template, the sender (live frames or AF_XDP), then the
//! counters read back into a [`RunReport`] (or, against the XDP_DROP sink, a
//! [`SinkRun`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::maps::{Array, MapData, PerCpuArray, PerCpuValues};
use aya::programs::{TestRun, TestRunOptions, Xdp, XdpMode};
use lb_common::flood::{self as fl, Answer, FloodCheck, FloodGen};
use lb_common::maps::{self as m, Vip as MapVip};
use lb_common::wire::request;

use super::report::{CpuSplit, RunReport, SinkRun};
use super::sender::{Chosen, chain, choose, probe_live};
use super::xsk::{Recycle, XskFlood};
use super::{
    BG_PORT, Family, FloodError, GEN_IF, GEN_MAC, Netns, Options, RESP_IF, RESP_MAC, Responder,
    Sender, Topology, pluto, setup, template, threads,
};
use crate::config::{NoRedirect, RedirectMode, Vip, VlanBinding};
use crate::dataplane::Dataplane;
use crate::frames::RequestSpec;
use crate::target;

/// What a flood is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Responder(Responder),
    /// An XDP_DROP program that only counts: the sender's own capacity.
    Sink,
}

/// Online CPUs, ascending.
pub fn online_cpus() -> Result<Vec<u32>, FloodError> {
    aya::util::online_cpus().map_err(|(w, e)| FloodError::Setup(format!("{w}: {e}")))
}

fn possible_cpus() -> Result<usize, FloodError> {
    aya::util::nr_cpus().map_err(|(w, e)| FloodError::Setup(format!("{w}: {e}")))
}

fn take<T>(dp: &mut Dataplane, name: &str) -> Result<T, FloodError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = dp
        .ebpf_mut()
        .take_map(name)
        .ok_or_else(|| FloodError::Setup(format!("map {name} not in the object")))?;
    T::try_from(map).map_err(setup(name))
}

fn attach(dp: &mut Dataplane, ns: &Netns, prog: &str, iface: &str) -> Result<(), FloodError> {
    let p = dp.program(prog)?;
    ns.enter(|| p.attach(iface, XdpMode::Driver))
        .map_err(setup("enter namespace"))?
        .map_err(setup(&format!("attach {prog} to {iface} (native)")))?;
    Ok(())
}

fn gen_prog(dp: &mut Dataplane) -> Result<&Xdp, FloodError> {
    dp.program(fl::PROG_GEN)?;
    dp.ebpf_mut()
        .program(fl::PROG_GEN)
        .ok_or_else(|| FloodError::Setup("no generator program".into()))?
        .try_into()
        .map_err(setup(fl::PROG_GEN))
}

/// Per-CPU values of a per-CPU map entry, all CPUs.
fn per_cpu<T: aya::Pod + Copy>(
    map: &PerCpuArray<MapData, T>,
    i: u32,
) -> Result<Vec<T>, FloodError> {
    let v = map.get(&i, 0).map_err(setup("per-CPU map"))?;
    Ok(v.iter().copied().collect())
}

/// Runs the generator once without live frames on this thread's CPU and checks the
/// frame it builds with the reference parser (checksums included).
fn self_check(prog: &Xdp, g: &[FloodGen]) -> Result<(), FloodError> {
    let frame = vec![0u8; g[0].len as usize];
    let mut out = vec![0u8; 4096];
    let r = prog
        .test_run(TestRunOptions {
            data_in: Some(&frame),
            data_out: Some(&mut out),
            ..TestRunOptions::new()
        })
        .map_err(|e| FloodError::Setup(format!("generator self-check: {}", chain(&e))))?;
    let bad = |w: String| FloodError::Setup(format!("generator self-check: {w}"));
    if r.return_value != 3 {
        return Err(bad(format!(
            "returned {} instead of XDP_TX",
            r.return_value
        )));
    }
    let out = &out[..r.data_size_out as usize];
    let req = request::parse(out, true, |_, _| Some(MapVip::ANY))
        .map_err(|s| bad(format!("reference parser says {}", s.name())))?;
    let spi = u64::from_be_bytes(req.spi_i);
    let (_, cpu, seq) = fl::spi_parts(spi);
    let mut want = vec![0u8; out.len()];
    template::request(&g[0], cpu, seq, &mut want);
    if seq != 0 || out != want.as_slice() {
        return Err(bad("frame differs from the reference derivation".into()));
    }
    Ok(())
}

/// What a finished flood read back.
struct Outcome {
    sender: Chosen,
    recycled: bool,
    seconds: f64,
    /// Per possible CPU: frames sent (all kinds) and by kind.
    sent: Vec<[u64; 3]>,
    cnt: PerCpuArray<MapData, u64>,
    dp: Dataplane,
}

/// Floods `who` once with `threads` sender threads over `queues` veth queues.
pub fn run_one(
    opts: &Options,
    who: Responder,
    threads: u32,
    queues: u32,
) -> Result<RunReport, FloodError> {
    let family = Family::of(opts.clients.0);
    let o = flood(opts, Target::Responder(who), threads, queues)?;
    let answers = drain(&o.cnt)?;
    let mut r = RunReport {
        responder: who.name().into(),
        family: family.name().into(),
        sender: o.sender.sender.name().into(),
        recycled: o.recycled,
        sender_note: o.sender.note.clone(),
        threads,
        queues,
        seconds: o.seconds,
        ..RunReport::default()
    };
    for k in &o.sent {
        r.sent_ike += k[fl::KIND_IKE as usize];
        r.sent_udp += k[fl::KIND_UDP as usize];
        r.sent_no_redirect_supported += k[fl::KIND_NO_RS as usize];
    }
    r.sent = r.sent_ike + r.sent_udp + r.sent_no_redirect_supported;
    for (c, k) in o.sent.iter().enumerate() {
        let sent: u64 = k.iter().sum();
        let answered: u64 = [
            Answer::RedirectOk,
            Answer::RedirectBad,
            Answer::EchoOk,
            Answer::EchoBad,
        ]
        .iter()
        .map(|a| answers[*a as usize][c])
        .sum();
        if sent > 0 || answered > 0 {
            r.per_cpu.push(CpuSplit {
                cpu: c as u32,
                sent,
                answered,
            });
        }
    }
    let total = |a: Answer| answers[a as usize].iter().sum::<u64>();
    r.correct = total(Answer::RedirectOk) + total(Answer::EchoOk);
    r.incorrect = total(Answer::RedirectBad) + total(Answer::EchoBad);
    r.answered = r.correct + r.incorrect;
    r.other = total(Answer::Other);
    let secs = r.seconds.max(1e-9);
    r.pps_sent = r.sent as f64 / secs;
    r.pps_answered = r.answered as f64 / secs;
    if matches!(who, Responder::Ikelb | Responder::IkelbForward) {
        let c = o.dp.counters()?;
        r.responder_counters = c
            .stats
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(n, v)| ((*n).to_string(), *v))
            .collect();
    }
    Ok(r)
}

/// The sender alone into an XDP_DROP program: what it can offer (straight, never
/// recycled: nothing comes back).
pub fn sink(opts: &Options, threads: u32, queues: u32) -> Result<SinkRun, FloodError> {
    let mut o = flood(opts, Target::Sink, threads, queues)?;
    let map: PerCpuArray<MapData, u64> = take(&mut o.dp, fl::MAP_SINK)?;
    let taken: u64 = per_cpu(&map, 0)?.iter().sum();
    let sent = o.sent.iter().flatten().sum();
    Ok(SinkRun {
        sender: o.sender.sender.name().into(),
        threads,
        queues,
        sent,
        taken,
        seconds: o.seconds,
        pps_taken: taken as f64 / o.seconds.max(1e-9),
    })
}

fn flood(opts: &Options, target: Target, threads: u32, queues: u32) -> Result<Outcome, FloodError> {
    let online = online_cpus()?;
    let cpus: Vec<u32> = online.iter().copied().take(threads as usize).collect();
    let ncpu_possible = possible_cpus()?;
    if cpus.is_empty() || ncpu_possible + cpus.len() > fl::CPUS_MAX as usize {
        return Err(FloodError::Setup(format!(
            "need 1..{threads} CPUs and fewer than {} possible CPUs and threads together",
            fl::CPUS_MAX
        )));
    }
    let (net, plen) = opts.clients;
    let family = Family::of(net);
    let lens = family.prefix_lengths();
    if !lens.contains(&plen) {
        return Err(FloodError::Setup(format!(
            "{} client prefix length must be {}..={}",
            family.name(),
            lens.start(),
            lens.end()
        )));
    }
    let (vip, _, target_addr, _) = family.addrs();
    // The generator varies the last 32 bits of the client address.
    let host_bits = match family {
        Family::V4 => 32 - u32::from(plen),
        Family::V6 => 128 - u32::from(plen),
    };
    let last_word = match net {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => (u128::from(a) & 0xffff_ffff) as u32,
    };
    let host_base = last_word & !(u32::MAX >> (32 - host_bits));
    let first_client: IpAddr = match net {
        IpAddr::V4(_) => Ipv4Addr::from(host_base + 1).into(),
        IpAddr::V6(a) => {
            Ipv6Addr::from((u128::from(a) & !0xffff_ffff) | u128::from(host_base + 1)).into()
        }
    };
    let topo = Topology::new(queues, opts.clients)?;
    let mut dp = Dataplane::load(None)?;
    let _pluto = match target {
        Target::Sink => {
            attach(&mut dp, &topo.resp, fl::PROG_SINK, RESP_IF)?;
            None
        }
        Target::Responder(Responder::Reflector) => {
            attach(&mut dp, &topo.resp, "ikelb_reflect", RESP_IF)?;
            None
        }
        Target::Responder(w @ (Responder::Ikelb | Responder::IkelbForward)) => {
            let forward = w == Responder::IkelbForward;
            dp.set_vips(&[Vip {
                address: vip,
                redirect: RedirectMode::Init,
                vlans: VlanBinding::default(),
                no_redirect: if forward {
                    NoRedirect::Forward
                } else {
                    NoRedirect::Pass
                },
            }])?;
            // The member is the generator's end of the veth: forwarded requests come
            // back to the counter as reflected ones do.
            dp.set_member_mac(target_addr, GEN_MAC);
            dp.set_targets(&[target::Target {
                owner: target::Owner::Static("gw".into()),
                identity: target::Identity::Ip(target_addr),
                weight: 1,
            }])?;
            dp.set_active(true)?;
            attach(&mut dp, &topo.resp, m::PROG_NAME, RESP_IF)?;
            None
        }
        Target::Responder(Responder::Libreswan) => {
            // XDP_TX frames reach a veth only when it runs an XDP program (docs/testing.md).
            attach(&mut dp, &topo.resp, "ikelb_pass", RESP_IF)?;
            Some(pluto::Pluto::start(&topo.resp, vip, target_addr).map_err(FloodError::Setup)?)
        }
    };
    attach(&mut dp, &topo.client, fl::PROG_COUNT, GEN_IF)?;
    // The generator's map is still zero: a live run sends nothing.
    let sender = choose(opts.sender, || {
        probe_live(
            gen_prog(&mut dp).map_err(|e| e.to_string())?,
            &topo.client,
            topo.gen_if,
        )
    })?;
    let n = cpus.len() as u64;
    // AF_XDP: the loop runs on whichever CPU receives, as generator index = CPU
    // number; socket thread i sends as index ncpu_possible + i.
    let (afxdp, recycled) = match sender.sender {
        Sender::Afxdp => (true, opts.rate.is_none() && target != Target::Sink),
        _ => (false, false),
    };
    let ncpu = if afxdp {
        ncpu_possible as u32 + n as u32
    } else {
        n as u32
    };

    let forwarded = target == Target::Responder(Responder::IkelbForward);
    let tag = (std::process::id() as u16 ^ 0x5a5a) | 1;
    let frac = |f: f64| (f.clamp(0.0, 1.0) * 65_536.0) as u32;
    let params = template::Params {
        tag,
        ncpu,
        interval_ns: match (afxdp, opts.rate) {
            (false, Some(r)) => n * 1_000_000_000 / r.max(1),
            _ => 0,
        },
        host_base: host_base + 1,
        host_count: ((1u64 << host_bits) - 2) as u32,
        port_base: 1024,
        port_count: 64_000,
        mix_udp: frac(opts.mix_udp),
        // Forwarding is for clients without REDIRECT_SUPPORTED: every request lacks it.
        mix_no_rs: if forwarded {
            1 << 16
        } else {
            frac(opts.mix_no_rs)
        },
        bg_dport: BG_PORT,
    };
    let spec = RequestSpec {
        dst_mac: RESP_MAC,
        src_mac: GEN_MAC,
        src: first_client,
        dst: vip,
        ..RequestSpec::default()
    };
    let (g, mut check) = template::build(&spec, &params).map_err(FloodError::Setup)?;
    check.forwarded = u16::from(forwarded);
    let limits: Vec<u64> = (0..n)
        .map(|i| opts.count / n + u64::from(i < opts.count % n))
        .collect();
    // A recycling CPU may overshoot the count by what it sends before the watcher
    // stops it (one poll interval).
    check.limit = if recycled {
        opts.count + 1_000_000
    } else {
        limits.iter().copied().max().unwrap_or(0)
    };

    let mut gen_map: PerCpuArray<MapData, FloodGen> = take(&mut dp, fl::MAP_GEN)?;
    let chk: Array<MapData, FloodCheck> = take(&mut dp, fl::MAP_CHECK)?;
    // Shared with the watcher thread, which clears `recycle` to stop the loop.
    let chk = std::sync::Mutex::new(chk);
    let set_check = |c: FloodCheck| -> Result<(), FloodError> {
        let mut map = chk
            .lock()
            .map_err(|_| FloodError::Setup("check map lock".into()))?;
        map.set(0, c, 0).map_err(setup(fl::MAP_CHECK))
    };
    let mut cnt: PerCpuArray<MapData, u64> = take(&mut dp, fl::MAP_COUNT)?;
    set_check(check)?;
    let index_of = |c: u32| -> u32 {
        if afxdp {
            c
        } else {
            cpus.iter().position(|&x| x == c).unwrap_or(0) as u32
        }
    };
    let write_gen = |map: &mut PerCpuArray<MapData, FloodGen>,
                     limit: &dyn Fn(u32) -> u64,
                     mixed: bool|
     -> Result<(), FloodError> {
        let vals: Vec<FloodGen> = (0..ncpu_possible as u32)
            .map(|c| {
                let mut v = g;
                v.cpu = index_of(c);
                v.limit = limit(c);
                if !mixed {
                    (v.mix_udp, v.mix_no_rs) = (0, 0);
                }
                v
            })
            .collect();
        let v = PerCpuValues::try_from(vals).map_err(setup(fl::MAP_GEN))?;
        map.set(0, v, 0).map_err(setup(fl::MAP_GEN))
    };
    // The self-check runs on whatever CPU this thread is on: give every CPU one request
    // (not a background frame). Its `cpu` field is a valid generator index.
    write_gen(&mut gen_map, &|_| 1, false)?;
    self_check(gen_prog(&mut dp)?, &per_cpu(&gen_map, 0)?)?;
    write_gen(
        &mut gen_map,
        &|c| match (afxdp, recycled) {
            (true, true) => opts.count,
            (true, false) => 0,
            _ => cpus.iter().position(|&x| x == c).map_or(0, |i| limits[i]),
        },
        true,
    )?;
    for a in Answer::ALL {
        let zero =
            PerCpuValues::try_from(vec![0u64; ncpu_possible]).map_err(setup(fl::MAP_COUNT))?;
        cnt.set(a as u32, zero, 0).map_err(setup(fl::MAP_COUNT))?;
    }

    let mut sent = vec![[0u64; 3]; ncpu_possible];
    let elapsed = if afxdp {
        if recycled {
            set_check(FloodCheck {
                recycle: 1,
                ..check
            })?;
        }
        let generated = || -> (u64, u64) {
            per_cpu(&gen_map, 0).map_or((0, 0), |v| {
                v.iter().fold((0, 0), |(a, l), g| {
                    (a + g.sent.iter().sum::<u64>(), l + g.sent[1] + g.sent[2])
                })
            })
        };
        let answered = || -> u64 {
            [Answer::RedirectOk, Answer::EchoOk]
                .iter()
                .map(|a| per_cpu(&cnt, *a as u32).map_or(0, |v| v.iter().sum::<u64>()))
                .sum()
        };
        let stop = || {
            if let Err(e) = set_check(check) {
                tracing::warn!(error = %e, "cannot stop the flood loop; it ends with its limit");
            }
        };
        let (elapsed, kinds) = XskFlood {
            ns: &topo.client,
            ifindex: topo.gen_if,
            queues,
            cpus: &cpus,
            limits: &limits,
            template: &g,
            first_index: ncpu_possible as u32,
            rate: opts.rate,
            recycle: recycled.then_some(Recycle {
                count: opts.count,
                generated: &generated,
                answered: &answered,
                stop: &stop,
            }),
            max_time: opts.max_time,
        }
        .run()
        .map_err(setup("AF_XDP flood"))?;
        for (i, k) in kinds.iter().enumerate() {
            for (s, x) in sent[cpus[i] as usize].iter_mut().zip(k) {
                *s += x;
            }
        }
        elapsed
    } else {
        // A few bytes longer than the request: the generator trims them on every run,
        // and that changed frame end is what makes the kernel refresh the recycled
        // page's frame length, which a responder that shrank the page left behind.
        let mut frame = g.frame[..g.len as usize].to_vec();
        frame.extend_from_slice(&[0; 4]);
        threads::Flood {
            prog: gen_prog(&mut dp)?,
            ns: &topo.client,
            ifindex: topo.gen_if,
            queues,
            cpus: &cpus,
            limits: &limits,
            paced: opts.rate.is_some(),
            frame: &frame,
            gen_map: &gen_map,
            max_time: opts.max_time,
        }
        .run()
        .map_err(setup("live-frames flood"))?
    };
    // The loop's own requests, by the CPU that made them.
    for (c, g) in per_cpu(&gen_map, 0)?.iter().enumerate() {
        for (s, x) in sent[c].iter_mut().zip(g.sent) {
            *s += x;
        }
    }
    Ok(Outcome {
        sender,
        recycled,
        seconds: elapsed.as_secs_f64(),
        sent,
        cnt,
        dp,
    })
}

/// Waits until answers stop arriving (a daemon drains its socket after the flood), then
/// returns the counters per answer kind and CPU.
fn drain(cnt: &PerCpuArray<MapData, u64>) -> Result<Vec<Vec<u64>>, FloodError> {
    let read = || -> Result<Vec<Vec<u64>>, FloodError> {
        Answer::ALL
            .iter()
            .map(|a| per_cpu(cnt, *a as u32))
            .collect()
    };
    let sum = |v: &[Vec<u64>]| v.iter().flatten().sum::<u64>();
    let mut last = read()?;
    let mut quiet = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        let now = read()?;
        if sum(&now) == sum(&last) {
            quiet += 1;
            if quiet >= 5 {
                return Ok(now);
            }
        } else {
            quiet = 0;
        }
        last = now;
    }
    Ok(last)
}
