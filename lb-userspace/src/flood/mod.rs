//! `ikelb flood`: floods a responder with distinct IKE_SA_INIT requests from an
//! in-kernel generator (BPF_PROG_TEST_RUN, live frames) over a veth pair and counts and
//! checks the answers, for three responders in one run: an XDP_TX reflector (the
//! physical limit of the path), ikelb's fast path, and libreswan's `global-redirect`.
//!
//! Self-contained: namespaces and the veth pair are made through rtnetlink, nothing is
//! mounted or pinned, and every flood is bounded in count and time. The namespaces live
//! only as long as their descriptors (and pluto, killed by pid), so they go with us.

mod afxdp;
pub mod cli;
mod netlink;
mod pluto;
pub mod report;
mod run;
mod sender;
pub mod template;
mod threads;
mod xsk;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub use netlink::Netns;
pub use report::{CpuSplit, Report, RunReport, SinkRun};
pub use run::{run_one, sink};
pub use sender::{Chosen, chain, choose};

use crate::dataplane::DataplaneError;
use crate::net::ifindex;
use crate::rtnl::Rtnl;
use run::online_cpus;

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

/// An error with what was being done, every cause (the OS error) included.
fn setup<E: std::error::Error>(what: &str) -> impl Fn(E) -> FloodError + '_ {
    move |e| FloodError::Setup(format!("{what}: {}", sender::chain(&e)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    /// MAC/IP/port swap and XDP_TX: the physical limit of the path.
    Reflector,
    /// ikelb's XDP fast path (`ikelb_xdp`).
    Ikelb,
    /// The same program forwarding requests without REDIRECT_SUPPORTED to a member on
    /// the segment (`no-redirect = "forward"`, a MAC rewrite and XDP_TX).
    IkelbForward,
    /// libreswan pluto with `global-redirect=yes` (skipped when not installed).
    Libreswan,
}

impl Responder {
    pub const fn name(self) -> &'static str {
        match self {
            Responder::Reflector => "reflector",
            Responder::Ikelb => "ikelb",
            Responder::IkelbForward => "ikelb-forward",
            Responder::Libreswan => "libreswan",
        }
    }
}

/// What makes the requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    /// Live frames, or AF_XDP where the kernel refuses them (saying why).
    #[default]
    Auto,
    /// The generator program under BPF_PROG_TEST_RUN with live frames.
    Live,
    /// AF_XDP sockets (copy mode) on the generator's veth end; unpaced floods run as
    /// an in-kernel loop that turns each answer into the next request.
    Afxdp,
}

impl Sender {
    pub const fn name(self) -> &'static str {
        match self {
            Sender::Auto => "auto",
            Sender::Live => "live",
            Sender::Afxdp => "afxdp",
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
    pub sender: Sender,
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
            sender: Sender::Auto,
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
                let mut nl = Rtnl::open()?;
                netlink::add_veth(
                    &mut nl,
                    (GEN_IF, GEN_MAC),
                    (RESP_IF, RESP_MAC),
                    resp.fd(),
                    queues,
                )?;
                nl.set_up(ifindex("lo")?)?;
                let i = ifindex(GEN_IF)?;
                nl.set_up(i)?;
                Ok(i)
            })
            .and_then(|r| r)
            .map_err(setup("veth pair (rtnetlink)"))?;
        resp.enter(|| -> std::io::Result<()> {
            let mut nl = Rtnl::open()?;
            nl.set_up(ifindex("lo")?)?;
            let i = ifindex(RESP_IF)?;
            netlink::add_addr(&mut nl, i, vip, plen)?;
            netlink::add_neigh(&mut nl, i, next_hop, GEN_MAC)?;
            // The next hop must be on a link that is up for the route to be accepted.
            nl.set_up(i)?;
            netlink::add_route(&mut nl, clients.0, clients.1, next_hop, i)
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
    let s = sink(opts, threads, queues)?;
    report::mark_generator_bound(&mut rep.runs, &s);
    rep.sinks.push(s);
    for note in rep.runs.iter().filter_map(|r| r.sender_note.clone()) {
        if !rep.notes.contains(&note) {
            rep.notes.push(note);
        }
    }
    for (a, b) in [
        ("ikelb", "reflector"),
        ("ikelb-forward", "reflector"),
        ("ikelb", "libreswan"),
    ] {
        if let Some(x) = rep.ratio(a, b) {
            rep.ratios.push((format!("answered pps {a}/{b}"), x));
        }
    }
    if scale {
        for n in 1..=online {
            let mut runs = [Responder::Reflector, Responder::Ikelb]
                .into_iter()
                .map(|w| run_one(opts, w, n, n))
                .collect::<Result<Vec<_>, _>>()?;
            let s = sink(opts, n, n)?;
            report::mark_generator_bound(&mut runs, &s);
            rep.sinks.push(s);
            rep.scale.extend(runs);
        }
    }
    Ok(rep)
}
