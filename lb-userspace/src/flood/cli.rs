//! The `ikelb flood` command line.

use std::net::IpAddr;
use std::time::Duration;

use super::{Family, FloodError, Options, Responder, Sender};

#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Responders to flood, in order.
    #[arg(long, value_delimiter = ',', default_values = ["reflector", "ikelb", "ikelb-forward", "libreswan"])]
    pub responder: Vec<Responder>,
    /// Frames per flood (all threads together).
    #[arg(long, default_value_t = 2_000_000)]
    pub count: u64,
    /// Longest time one flood may run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Total rate in frames/s (default: as fast as the path goes).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Generator threads, one per CPU (default: every online CPU).
    #[arg(long)]
    pub threads: Option<u32>,
    /// veth queues on each end (default: as many as threads).
    #[arg(long)]
    pub queues: Option<u32>,
    /// Address family of the VIP, the clients and the gateway the answers name.
    #[arg(long, value_enum, default_value_t = Family::V4)]
    pub family: Family,
    /// Client prefix of that family; its addresses exist only inside the flood's
    /// namespaces (default: 198.18.0.0/16, or 2001:db8:18::/112 with `--family v6`).
    #[arg(long)]
    pub clients: Option<String>,
    /// Fraction of background UDP frames (to port 9): the pass path.
    #[arg(long, default_value_t = 0.0)]
    pub mix_udp: f64,
    /// Fraction of IKE_SA_INIT frames without REDIRECT_SUPPORTED (must not be answered).
    #[arg(long, default_value_t = 0.0)]
    pub mix_no_rs: f64,
    /// Also measure reflector and ikelb with 1..=CPUs threads and queues.
    #[arg(long)]
    pub scale: bool,
    /// What makes the requests: live-frames test_run, AF_XDP sockets, or live frames
    /// with AF_XDP where the kernel refuses them.
    #[arg(long, value_enum, default_value_t = Sender::Auto)]
    pub sender: Sender,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

fn prefix(s: &str, family: Family) -> Result<(IpAddr, u8), FloodError> {
    let bad = || {
        FloodError::Setup(format!(
            "--clients {s}: want an {} prefix like {}/{}",
            family.name(),
            family.default_clients().0,
            family.default_clients().1
        ))
    };
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let a: IpAddr = a.parse().map_err(|_| bad())?;
    if Family::of(a) != family {
        return Err(bad());
    }
    Ok((a, l.parse().map_err(|_| bad())?))
}

pub fn run(a: &Args) -> Result<(), FloodError> {
    if !(a.duration > 0.0 && a.duration <= 600.0) || a.count == 0 {
        return Err(FloodError::Setup(
            "a flood must be bounded: --count > 0 and 0 < --duration ≤ 600".into(),
        ));
    }
    let opts = Options {
        count: a.count,
        max_time: Duration::from_secs_f64(a.duration),
        rate: a.rate,
        threads: a.threads,
        queues: a.queues,
        clients: match &a.clients {
            Some(c) => prefix(c, a.family)?,
            None => a.family.default_clients(),
        },
        mix_udp: a.mix_udp,
        mix_no_rs: a.mix_no_rs,
        sender: a.sender,
    };
    let rep = super::run(&opts, &a.responder, a.scale)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rep).map_err(|e| FloodError::Setup(e.to_string()))?
        );
    } else {
        rep.print();
    }
    Ok(())
}
