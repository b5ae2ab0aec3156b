//! The command line of `ikelb-lab`.

use std::path::PathBuf;

use ikelb_tests::lab;

pub(crate) const USAGE: &str = "\
usage: ikelb-lab [--once] [--static] [--clients N] [--ikelb <path>] [--xdp-mode native|skb]

  --once               connect every client, print the results and exit: 0 only if every
                       client was redirected to a member (and strongSwan pings passed)
  --static             the single-VIP-node lab (ikelb on a dedicated VIP node, static
                       targets, IPv4 and IPv6 clients) instead of the VRRP cluster
  --clients N          cluster: number of IPv4 clients, 3..=20 (default 6)
  --ikelb <path>       the ikelb binary (default: $IKELB_BIN, else the ikelb beside this
                       program, else <workspace>/target/release/ikelb)
  --xdp-mode <mode>    --static: how ikelb attaches XDP on the VIP's interface: native
                       (default) or skb (the cluster's candidates use skb)

Needs root. Without --once the lab stays up until Ctrl-C or SIGTERM.";

pub(crate) struct Args {
    pub(crate) once: bool,
    pub(crate) static_lab: bool,
    pub(crate) clients: usize,
    pub(crate) ikelb: Option<PathBuf>,
    pub(crate) xdp_mode: String,
}

pub(crate) fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        once: false,
        static_lab: false,
        clients: 6,
        ikelb: None,
        xdp_mode: "native".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--once" => a.once = true,
            "--static" => a.static_lab = true,
            "--clients" => {
                let v = value("--clients")?;
                a.clients = v
                    .parse()
                    .ok()
                    .filter(|n| (3..=20).contains(n))
                    .ok_or_else(|| format!("--clients must be 3..=20, not {v:?}"))?;
            }
            "--ikelb" => a.ikelb = Some(PathBuf::from(value("--ikelb")?)),
            "--xdp-mode" => {
                let m = value("--xdp-mode")?;
                if !matches!(m.as_str(), "native" | "skb") {
                    return Err(format!("--xdp-mode must be native or skb, not {m:?}"));
                }
                a.xdp_mode = m;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(a)
}

/// `--ikelb`, else `IKELB_BIN`, else `ikelb` beside this program, else the workspace's
/// `target/release/ikelb`.
pub(crate) fn resolve_ikelb(arg: Option<PathBuf>) -> PathBuf {
    if let Some(p) = arg.or_else(|| std::env::var_os("IKELB_BIN").map(PathBuf::from)) {
        return p;
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("ikelb")));
    match beside {
        Some(p) if p.is_file() => p,
        _ => lab::ikelb_bin(),
    }
}
