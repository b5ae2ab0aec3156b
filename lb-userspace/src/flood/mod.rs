//! `ikelb flood`: floods a responder with distinct IKE_SA_INIT requests from an
//! in-kernel generator (BPF_PROG_TEST_RUN, live frames) over a veth pair and counts and
//! checks the answers, for three responders in one run: an XDP_TX reflector (the
//! physical limit of the path), ikelb's fast path, and libreswan's `global-redirect`.
//!
//! Self-contained: namespaces and the veth pair are made through rtnetlink, nothing is
//! mounted or pinned, and every flood is bounded in count and time. The namespaces live
//! only as long as their descriptors (and pluto, killed by pid), so they go with us.

pub mod cli;
mod netlink;
mod pluto;
pub mod report;
pub mod template;
mod threads;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::maps::{Array, MapData, PerCpuArray, PerCpuValues};
use aya::programs::{TestRun, TestRunOptions, Xdp, XdpMode};
use lb_common::flood::{self as fl, Answer, FloodCheck, FloodGen};
use lb_common::maps::{self as m, VIP_MODE_INIT};
use lb_common::wire::request;

pub use netlink::Netns;
pub use report::{CpuSplit, Report, RunReport};

use crate::config::{Identity, RedirectMode, Vip};
use crate::dataplane::{Dataplane, DataplaneError, TargetEntry};
use crate::frames::RequestSpec;

const GEN_IF: &str = "flood0";
const RESP_IF: &str = "flood1";
const GEN_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xf1, 0x01];
const RESP_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xf1, 0x02];
/// Responder-side addresses (TEST-NET-1, inside the responder namespace only): the VIP,
/// the generator side's next hop (a permanent neighbour: nothing answers ARP there),
/// and the gateway the redirects name.
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const NEXT_HOP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const TARGET: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The same over IPv6 (documentation prefix 2001:db8::/32, a /64 on the link).
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf1, 0, 0, 0, 0, 1);
const NEXT_HOP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf1, 0, 0, 0, 0, 2);
const TARGET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf1, 0, 0, 0, 0, 0x10);
/// Background UDP goes to the discard port.
const BG_PORT: u16 = 9;

#[derive(Debug, thiserror::Error)]
pub enum FloodError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
}

fn setup<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> FloodError + '_ {
    move |e| FloodError::Setup(format!("{what}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    /// MAC/IP/port swap and XDP_TX: the physical limit of the path.
    Reflector,
    /// ikelb's XDP fast path (`ikelb_xdp`).
    Ikelb,
    /// libreswan pluto with `global-redirect=yes` (skipped when not installed).
    Libreswan,
}

impl Responder {
    pub const fn name(self) -> &'static str {
        match self {
            Responder::Reflector => "reflector",
            Responder::Ikelb => "ikelb",
            Responder::Libreswan => "libreswan",
        }
    }
}

/// Address family of a flood: of the VIP, the clients and the gateway the answers name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    V4,
    V6,
}

impl Family {
    pub fn of(a: IpAddr) -> Self {
        if a.is_ipv6() { Family::V6 } else { Family::V4 }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
    /// Default client prefix: 65 534 addresses either way (the generator varies the
    /// last 32 bits of an address).
    pub fn default_clients(self) -> (IpAddr, u8) {
        match self {
            Family::V4 => (Ipv4Addr::new(198, 18, 0, 0).into(), 16),
            Family::V6 => (
                Ipv6Addr::new(0x2001, 0xdb8, 0x18, 0, 0, 0, 0, 0).into(),
                112,
            ),
        }
    }
    /// Client prefix lengths the generator can fill.
    pub fn prefix_lengths(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Family::V4 => 8..=30,
            Family::V6 => 96..=126,
        }
    }
    /// (VIP, next hop towards the clients, redirect target, on-link prefix length).
    fn addrs(self) -> (IpAddr, IpAddr, IpAddr, u8) {
        match self {
            Family::V4 => (VIP.into(), NEXT_HOP.into(), TARGET.into(), 24),
            Family::V6 => (VIP6.into(), NEXT_HOP6.into(), TARGET6.into(), 64),
        }
    }
}

/// One flood's shape.
#[derive(Clone, Debug)]
pub struct Options {
    /// Frames to send, all generator threads together.
    pub count: u64,
    /// Upper bound on the time one flood runs.
    pub max_time: Duration,
    /// Total rate (frames/s); `None` = as fast as the path goes.
    pub rate: Option<u64>,
    /// Generator threads (one per CPU, the first `threads` online CPUs); `None` = all.
    pub threads: Option<u32>,
    /// veth queues; `None` = as many as threads.
    pub queues: Option<u32>,
    /// Client addresses (inside the namespaces only): prefix and length (IPv4 8..=30,
    /// IPv6 96..=126); their family is the flood's.
    pub clients: (IpAddr, u8),
    /// Fractions of background UDP and of IKE without REDIRECT_SUPPORTED (0..1).
    pub mix_udp: f64,
    pub mix_no_rs: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            count: 2_000_000,
            max_time: Duration::from_secs(5),
            rate: None,
            threads: None,
            queues: None,
            clients: Family::V4.default_clients(),
            mix_udp: 0.0,
            mix_no_rs: 0.0,
        }
    }
}

/// Two namespaces joined by a veth pair: the generator's end (where the generator's
/// frames start and answers are counted) and the responder's end.
pub struct Topology {
    pub client: Netns,
    pub resp: Netns,
    pub gen_if: u32,
}

impl Topology {
    pub fn new(queues: u32, clients: (IpAddr, u8)) -> Result<Self, FloodError> {
        let (vip, next_hop, _, plen) = Family::of(clients.0).addrs();
        let client = Netns::new().map_err(setup("create the generator namespace"))?;
        let resp = Netns::new().map_err(setup("create the responder namespace"))?;
        let gen_if = client
            .enter(|| -> std::io::Result<u32> {
                let mut nl = netlink::Rtnl::open()?;
                nl.add_veth((GEN_IF, GEN_MAC), (RESP_IF, RESP_MAC), resp.fd(), queues)?;
                nl.set_up(netlink::if_index("lo")?)?;
                let i = netlink::if_index(GEN_IF)?;
                nl.set_up(i)?;
                Ok(i)
            })
            .and_then(|r| r)
            .map_err(setup("veth pair (rtnetlink)"))?;
        resp.enter(|| -> std::io::Result<()> {
            let mut nl = netlink::Rtnl::open()?;
            nl.set_up(netlink::if_index("lo")?)?;
            let i = netlink::if_index(RESP_IF)?;
            nl.add_addr(i, vip, plen)?;
            nl.add_neigh(i, next_hop, GEN_MAC)?;
            // The next hop must be on a link that is up for the route to be accepted.
            nl.set_up(i)?;
            nl.add_route(clients.0, clients.1, next_hop, i)
        })
        .and_then(|r| r)
        .map_err(setup("responder addresses (rtnetlink)"))?;
        Ok(Self {
            client,
            resp,
            gen_if,
        })
    }
}

/// Online CPUs, ascending.
fn online_cpus() -> Result<Vec<u32>, FloodError> {
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

/// Frames (kind IKE, all CPUs) and the per-CPU values of the generator.
fn gen_values(map: &PerCpuArray<MapData, FloodGen>) -> Result<Vec<FloodGen>, FloodError> {
    let v = map.get(&0, 0).map_err(setup(fl::MAP_GEN))?;
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
        .map_err(setup("generator self-check (test_run)"))?;
    let bad = |w: String| FloodError::Setup(format!("generator self-check: {w}"));
    if r.return_value != 3 {
        return Err(bad(format!(
            "returned {} instead of XDP_TX",
            r.return_value
        )));
    }
    let out = &out[..r.data_size_out as usize];
    let req = request::parse(out, true, |_, _| Some(VIP_MODE_INIT))
        .map_err(|s| bad(format!("reference parser says {}", s.name())))?;
    let spi = u64::from_be_bytes(req.spi_i);
    let (_, cpu, seq) = fl::spi_parts(spi);
    let want = template::expected(&g[0], cpu, seq);
    let same = |a: &[u8], b: &[u8]| {
        // Everything but the two checksums the reference parser already verified.
        let (io, uo) = (g[0].ip_off as usize + 10, g[0].udp_off as usize + 6);
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .enumerate()
                .all(|(i, (x, y))| x == y || (io..io + 2).contains(&i) || (uo..uo + 2).contains(&i))
    };
    if seq != 0 || !same(out, &want) {
        return Err(bad("frame differs from the reference derivation".into()));
    }
    Ok(())
}

/// Floods `who` once with `threads` generator threads over `queues` veth queues.
pub fn run_one(
    opts: &Options,
    who: Responder,
    threads: u32,
    queues: u32,
) -> Result<RunReport, FloodError> {
    let online = online_cpus()?;
    let cpus: Vec<u32> = online.iter().copied().take(threads as usize).collect();
    let ncpu_possible = possible_cpus()?;
    if cpus.is_empty() || cpus.iter().any(|&c| c >= fl::CPUS_MAX) {
        return Err(FloodError::Setup(format!(
            "need 1..{} CPUs below {}",
            threads,
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
    let (vip, _, target, _) = family.addrs();
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
    let _pluto = match who {
        Responder::Reflector => {
            attach(&mut dp, &topo.resp, "ikelb_reflect", RESP_IF)?;
            None
        }
        Responder::Ikelb => {
            dp.set_vips(&[Vip {
                address: vip,
                redirect: RedirectMode::Init,
            }])?;
            dp.set_targets(&[TargetEntry {
                name: "gw".into(),
                identity: Identity::Ip(target),
                weight: 1,
            }])?;
            dp.set_active(true)?;
            attach(&mut dp, &topo.resp, m::PROG_NAME, RESP_IF)?;
            None
        }
        Responder::Libreswan => {
            // XDP_TX frames reach a veth only when it runs an XDP program (peers.md §5).
            attach(&mut dp, &topo.resp, "ikelb_pass", RESP_IF)?;
            Some(pluto::Pluto::start(&topo.resp, vip, target).map_err(FloodError::Setup)?)
        }
    };
    attach(&mut dp, &topo.client, fl::PROG_COUNT, GEN_IF)?;
    dp.program(fl::PROG_GEN)?;

    let tag = (std::process::id() as u16 ^ 0x5a5a) | 1;
    let frac = |f: f64| (f.clamp(0.0, 1.0) * 65_536.0) as u32;
    let params = template::Params {
        tag,
        ncpu: cpus.len() as u32,
        interval_ns: opts
            .rate
            .map_or(0, |r| cpus.len() as u64 * 1_000_000_000 / r.max(1)),
        host_base: host_base + 1,
        host_count: ((1u64 << host_bits) - 2) as u32,
        port_base: 1024,
        port_count: 64_000,
        mix_udp: frac(opts.mix_udp),
        mix_no_rs: frac(opts.mix_no_rs),
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
    // A few bytes longer than the request: the generator trims them on every run, and
    // that changed frame end is what makes the kernel refresh the recycled page's frame
    // length, which a responder that shrank the page left behind (peers.md §9).
    let mut frame = g.frame[..g.len as usize].to_vec();
    frame.extend_from_slice(&[0; 4]);
    let n = cpus.len() as u64;
    let limits: Vec<u64> = (0..n)
        .map(|i| opts.count / n + u64::from(i < opts.count % n))
        .collect();
    check.limit = limits.iter().copied().max().unwrap_or(0);

    let mut gen_map: PerCpuArray<MapData, FloodGen> = take(&mut dp, fl::MAP_GEN)?;
    let mut chk: Array<MapData, FloodCheck> = take(&mut dp, fl::MAP_CHECK)?;
    let mut cnt: PerCpuArray<MapData, u64> = take(&mut dp, fl::MAP_COUNT)?;
    chk.set(0, check, 0).map_err(setup(fl::MAP_CHECK))?;
    let write_gen = |map: &mut PerCpuArray<MapData, FloodGen>,
                     limit: &dyn Fn(u32) -> u64,
                     mixed: bool|
     -> Result<(), FloodError> {
        let vals: Vec<FloodGen> = (0..ncpu_possible as u32)
            .map(|c| {
                let mut v = g;
                v.cpu = cpus.iter().position(|&x| x == c).unwrap_or(0) as u32;
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
    // (not a background frame). Its `cpu` field is the generator index, so the SPI
    // names a valid sender.
    write_gen(&mut gen_map, &|_| 1, false)?;
    {
        let prog: &Xdp = dp
            .ebpf_mut()
            .program(fl::PROG_GEN)
            .ok_or_else(|| FloodError::Setup("no generator program".into()))?
            .try_into()
            .map_err(setup(fl::PROG_GEN))?;
        let vals = gen_values(&gen_map)?;
        self_check(prog, &vals)?;
    }
    write_gen(
        &mut gen_map,
        &|c| cpus.iter().position(|&x| x == c).map_or(0, |i| limits[i]),
        true,
    )?;
    for a in Answer::ALL {
        let zero =
            PerCpuValues::try_from(vec![0u64; ncpu_possible]).map_err(setup(fl::MAP_COUNT))?;
        cnt.set(a as u32, zero, 0).map_err(setup(fl::MAP_COUNT))?;
    }

    let ebpf = dp.ebpf_mut();
    let prog: &Xdp = ebpf
        .program(fl::PROG_GEN)
        .ok_or_else(|| FloodError::Setup("no generator program".into()))?
        .try_into()
        .map_err(setup(fl::PROG_GEN))?;
    let elapsed = threads::Flood {
        prog,
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
    .map_err(setup("flood"))?;
    let answers = drain(&cnt)?;

    let gens = gen_values(&gen_map)?;
    let mut r = RunReport {
        responder: who.name().into(),
        family: family.name().into(),
        threads: cpus.len() as u32,
        queues,
        seconds: elapsed.as_secs_f64(),
        ..RunReport::default()
    };
    for &c in &cpus {
        let g = &gens[c as usize];
        r.sent_ike += g.sent[fl::KIND_IKE as usize];
        r.sent_udp += g.sent[fl::KIND_UDP as usize];
        r.sent_no_redirect_supported += g.sent[fl::KIND_NO_RS as usize];
    }
    r.sent = r.sent_ike + r.sent_udp + r.sent_no_redirect_supported;
    for (c, g) in gens.iter().enumerate() {
        let sent: u64 = g.sent.iter().sum();
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
    if who == Responder::Ikelb {
        let c = dp.counters()?;
        r.responder_counters = c
            .stats
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(n, v)| ((*n).to_string(), *v))
            .collect();
    }
    Ok(r)
}

/// Waits until answers stop arriving (a daemon drains its socket after the flood), then
/// returns the counters per answer kind and CPU.
fn drain(cnt: &PerCpuArray<MapData, u64>) -> Result<Vec<Vec<u64>>, FloodError> {
    let read = || -> Result<Vec<Vec<u64>>, FloodError> {
        Answer::ALL
            .iter()
            .map(|a| {
                cnt.get(&(*a as u32), 0)
                    .map(|v| v.iter().copied().collect())
                    .map_err(setup(fl::MAP_COUNT))
            })
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

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|s| s.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown CPU");
    let n = online_cpus().map(|c| c.len()).unwrap_or(0);
    format!("{model}, {n} online CPUs")
}

/// Floods each responder in turn (same topology shape, fresh namespaces each), then,
/// with `scale`, reflector and ikelb again for 1..=CPUs threads and queues.
pub fn run(opts: &Options, who: &[Responder], scale: bool) -> Result<Report, FloodError> {
    let online = online_cpus()?.len() as u32;
    let threads = opts.threads.unwrap_or(online).clamp(1, online);
    let queues = opts.queues.unwrap_or(threads).max(1);
    let mut rep = Report {
        machine: machine(),
        family: Family::of(opts.clients.0).name().into(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        ..Report::default()
    };
    for &w in who {
        if w == Responder::Libreswan
            && let Some(why) = pluto::missing()
        {
            rep.notes.push(format!("libreswan skipped: {why}"));
            continue;
        }
        rep.runs.push(run_one(opts, w, threads, queues)?);
    }
    for (a, b) in [("ikelb", "reflector"), ("ikelb", "libreswan")] {
        if let Some(x) = rep.ratio(a, b) {
            rep.ratios.push((format!("answered pps {a}/{b}"), x));
        }
    }
    if scale {
        for n in 1..=online {
            for w in [Responder::Reflector, Responder::Ikelb] {
                rep.scale.push(run_one(opts, w, n, n)?);
            }
        }
    }
    Ok(rep)
}
