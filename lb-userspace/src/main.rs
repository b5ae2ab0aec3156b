//! `ikelb`: the IKEv2 cluster load balancer daemon and its CLI.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lb_userspace::config::{Config, XdpModeCfg};
use lb_userspace::dataplane::{
    self, Dataplane, TargetEntry,
    choice::{SlotChooser, StaticChooser},
    stats::Counters,
};
use lb_userspace::ike::Responder;
use lb_userspace::ike::io::{IkeService, KeyLogFile};
use tracing::info;

#[derive(Parser)]
#[command(
    name = "ikelb",
    version,
    about = "IKEv2 cluster load balancer (XDP RFC 5685 redirects)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load and attach the fast path on an interface and serve until SIGINT/SIGTERM.
    Run {
        /// Network interface carrying the VIP (overrides [dataplane].iface).
        #[arg(long)]
        iface: Option<String>,
        /// TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// native, skb or auto (overrides [dataplane].xdp-mode).
        #[arg(long)]
        xdp_mode: Option<XdpModeCfg>,
        /// TEST ONLY: write the IKE session keys of the userspace responder to this
        /// new file (it must not exist; mode 0600) as tshark `ikev2_decryption_table`
        /// rows. Only this flag enables it, never the environment.
        #[arg(long)]
        ike_keylog: Option<PathBuf>,
    },
    /// Print the fast-path counters of a running instance (from its pinned maps).
    Stats {
        #[arg(long)]
        iface: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Validate a configuration file and print what it would install.
    CheckConfig { config: PathBuf },
    /// Time the redirect program against an XDP_TX reflector with BPF_PROG_TEST_RUN.
    Bench {
        /// Single-repetition runs per program.
        #[arg(long, default_value_t = 200_000)]
        calls: u32,
        /// Repetitions of the restore harness.
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        #[arg(long)]
        json: bool,
        /// Also time the `ikelb_xdp` of this object file (e.g. one built from an older
        /// commit, with the same maps) in the same run, for a before/after comparison.
        #[arg(long)]
        baseline_object: Option<PathBuf>,
    },
    /// Simulate the target choice (10 000 clients in bursts onto 8 members of unequal
    /// capacity, 1 s reports): max/mean utilisation for ikelb, round robin and "always
    /// the least loaded". Also part of `ikelb bench`; needs no BPF.
    Simulate {
        #[arg(long)]
        json: bool,
    },
    /// Run only the cluster's load reporter ([cluster] of the config): a member that
    /// is not a VIP candidate.
    Member {
        /// The cluster configuration; optional with --decap alone.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Unwrap the balancer's IP-in-IP to this member's addresses in XDP (the kernel
        /// needs no tunnel modules; docs/architecture.md §6.4).
        #[arg(long)]
        decap: bool,
        /// The interface for --decap (default: the configuration's [dataplane].iface).
        #[arg(long)]
        iface: Option<String>,
    },
    /// Show a running instance's cluster state: roles, members, fast-path counters.
    Status {
        /// The instance on this interface (socket /run/ikelb/<iface>.sock).
        #[arg(long)]
        iface: Option<String>,
        /// The control socket ([status].socket).
        #[arg(long)]
        socket: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Flood responders (XDP_TX reflector, ikelb, libreswan) with IKE_SA_INIT requests
    /// from an in-kernel generator over a veth pair in fresh namespaces; count answers.
    Flood(lb_userspace::flood::cli::Args),
    /// Attach a pass-through XDP program (for a veth peer, so XDP_TX frames arrive)
    /// and hold it until SIGINT/SIGTERM.
    AttachPass {
        #[arg(long)]
        iface: String,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Run {
            iface,
            config,
            xdp_mode,
            ike_keylog,
        } => run(iface, &config, xdp_mode, ike_keylog),
        Cmd::Stats { iface, json } => stats(&iface, json),
        Cmd::CheckConfig { config } => {
            let c = Config::load(&config)?;
            println!("{} VIP(s), {} target(s): OK", c.vips.len(), c.targets.len());
            for v in &c.vips {
                match c.ike.auth_redirect(v.address) {
                    Some(m) => println!(
                        "vip {} redirect={:?} auth-redirect={m:?}",
                        v.address, v.redirect
                    ),
                    None => println!("vip {} redirect={:?}", v.address, v.redirect),
                }
            }
            for t in &c.targets {
                println!("target {} {} weight={}", t.name, t.identity, t.weight);
            }
            if let Some(id) = &c.ike.identity {
                println!("ike identity {id:?}, {} peer(s)", c.ike.peers.len());
            }
            Ok(())
        }
        Cmd::AttachPass { iface } => attach_pass(&iface),
        Cmd::Flood(args) => Ok(lb_userspace::flood::cli::run(&args)?),
        Cmd::Member {
            config,
            decap,
            iface,
        } => member(config, decap, iface),
        Cmd::Status {
            iface,
            socket,
            json,
        } => {
            let sock = socket.unwrap_or_else(|| {
                lb_userspace::status::default_socket(iface.as_deref().or(Some("ikelb")), None)
            });
            let r = lb_userspace::status::query(&sock)?;
            if json {
                println!("{r}");
            } else {
                print!("{}", lb_userspace::status::render(&r));
            }
            Ok(())
        }
        Cmd::Bench {
            calls,
            repeat,
            json,
            baseline_object,
        } => {
            let baseline = baseline_object
                .map(|p| std::fs::read(&p).with_context(|| format!("reading {}", p.display())))
                .transpose()?;
            let r = lb_userspace::bench::run(calls, repeat, baseline.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                r.print();
            }
            Ok(())
        }
        Cmd::Simulate { json } => {
            let rows = lb_userspace::bench::simulation();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                lb_userspace::bench::print_simulation(&rows);
            }
            Ok(())
        }
    }
}

fn wait_for_signal() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })
    .context("waiting for a signal")
}

fn run(
    iface: Option<String>,
    path: &std::path::Path,
    mode: Option<XdpModeCfg>,
    ike_keylog: Option<PathBuf>,
) -> Result<()> {
    let cfg = Config::load(path)?;
    let Some(iface) = iface.or_else(|| cfg.iface.clone()) else {
        bail!("no interface: pass --iface or set [dataplane].iface");
    };
    if cfg.vips.is_empty() {
        bail!(
            "no [[vip]] configured: `ikelb run` needs the VIPs (use `ikelb member` for a plain member)"
        );
    }
    let mode = mode.unwrap_or(cfg.xdp_mode);
    let targets: Vec<TargetEntry> = cfg
        .targets
        .iter()
        .map(|t| TargetEntry {
            name: t.name.clone(),
            identity: t.identity.clone(),
            weight: t.weight,
        })
        .collect();
    if mode == XdpModeCfg::Off {
        return run_without_xdp(&cfg, &iface, &targets, ike_keylog);
    }
    let pins = dataplane::pin_dir_for(&iface);
    let mut dp = Dataplane::load(Some(&pins)).context("loading the XDP program")?;
    dp.set_vips(&cfg.vips).context("installing VIPs")?;
    dp.set_forward_encap(cfg.forward_encap);
    dp.set_targets(&targets).context("installing targets")?;
    write_names(&iface, &dp);
    // With VRRP the fast path answers only while this node is the Active.
    dp.set_active(cfg.vrrp.is_empty())?;
    let used = dp.attach(&iface, mode)?;
    let chooser = SlotChooser::open_pinned(&pins).context("opening the slot table")?;
    let ike = start_ike(&cfg, Box::new(chooser), ike_keylog)?;
    info!(%iface, mode = used, pins = %pins.display(), vips = cfg.vips.len(), targets = targets.len(), "ready");
    if cfg.cluster.is_some() || !cfg.vrrp.is_empty() {
        let r = lb_userspace::node::run(&cfg, Some(iface.clone()), Some(dp));
        stop_ike(ike);
        remove_names(&iface);
        return r.context("cluster node");
    }
    wait_for_signal()?;
    info!("shutting down");
    stop_ike(ike);
    let c = dp.counters()?;
    info!(
        seen = c.get(lb_common::maps::Stat::Seen),
        redirected = c.get(lb_common::maps::Stat::Redirected),
        "final counters"
    );
    remove_names(&iface);
    Ok(())
}

/// `--xdp-mode off`, for a machine without XDP: no program, no maps; the userspace
/// responder answers every request to the VIPs, init-mode ones with exactly the fast
/// path's bytes and targets (the same slot tables and flow hash, built here).
fn run_without_xdp(
    cfg: &Config,
    iface: &str,
    targets: &[TargetEntry],
    keylog: Option<PathBuf>,
) -> Result<()> {
    if cfg.cluster.is_some() || !cfg.vrrp.is_empty() {
        bail!(
            "--xdp-mode off serves static [[target]]s only: [cluster] and [[vrrp]] need the XDP dataplane"
        );
    }
    if cfg
        .vips
        .iter()
        .any(|v| v.no_redirect == lb_userspace::config::NoRedirect::Forward)
    {
        bail!("--xdp-mode off: no-redirect = \"forward\" happens in the XDP program");
    }
    let chooser = StaticChooser::new(targets);
    let Some(ike) = start_ike(cfg, Box::new(chooser), keylog)? else {
        bail!("--xdp-mode off: cannot bind the VIPs' IKE ports, so nothing would answer");
    };
    info!(%iface, mode = "off", vips = cfg.vips.len(), targets = targets.len(), "ready");
    wait_for_signal()?;
    info!("shutting down");
    stop_ike(Some(ike));
    Ok(())
}

/// The userspace IKE responder on every VIP's ports 500 and 4500: auth-mode VIPs
/// authenticate and then redirect; init-mode VIPs get the fast path's answer for what
/// the XDP program passed up (fragments, IPv6 extension headers). Targets come from
/// the fast path's slot table. Without auth-mode VIPs a bind failure only disables the
/// slow path.
fn start_ike(
    cfg: &Config,
    chooser: Box<dyn lb_userspace::ike::TargetChooser>,
    keylog: Option<PathBuf>,
) -> Result<Option<IkeService>> {
    let needed = !cfg.ike.auth_vips.is_empty();
    let addrs: Vec<std::net::IpAddr> = cfg.vips.iter().map(|v| v.address).collect();
    let listeners = match lb_userspace::ike::io::bind_vips(&addrs) {
        Ok(l) => l,
        Err(e) if !needed => {
            tracing::warn!(error = %e, "no IKE slow path: cannot bind the VIPs' IKE ports");
            return Ok(None);
        }
        Err(e) => return Err(e).context("binding the auth-mode VIPs' IKE ports"),
    };
    let file = match &keylog {
        Some(p) => {
            tracing::warn!(path = %p.display(), "IKE key log enabled: session keys are written to disk (test only)");
            Some(KeyLogFile::create(p).with_context(|| format!("key log {}", p.display()))?)
        }
        None => None,
    };
    let rc = cfg.ike.responder_config(&cfg.vips, chooser, file.is_some());
    let svc = IkeService::start(Responder::new(rc), listeners, file)
        .context("starting the IKE responder")?;
    info!(
        vips = addrs.len(),
        auth_vips = cfg.ike.auth_vips.len(),
        peers = cfg.ike.peers.len(),
        "IKE responder listening"
    );
    Ok(Some(svc))
}

fn stop_ike(ike: Option<IkeService>) {
    if let Some(svc) = ike {
        match svc.stop() {
            Ok(s) => info!(?s, "IKE responder stopped"),
            Err(e) => tracing::warn!(error = %e, "IKE responder"),
        }
    }
}

/// Target names beside the pins (bpffs holds only BPF objects), for `ikelb stats`.
fn names_path(iface: &str) -> PathBuf {
    PathBuf::from("/run/ikelb").join(format!("{iface}.targets"))
}

fn write_names(iface: &str, dp: &Dataplane) {
    let text: String = dp
        .target_names()
        .iter()
        .map(|(i, n, id)| format!("{i} {n} {id}\n"))
        .collect();
    let p = names_path(iface);
    let r = std::fs::create_dir_all("/run/ikelb").and_then(|()| std::fs::write(&p, text));
    if let Err(e) = r {
        tracing::warn!(path = %p.display(), error = %e, "cannot record target names");
    }
}

fn remove_names(iface: &str) {
    let _ = std::fs::remove_file(names_path(iface));
}

fn stats(iface: &str, json: bool) -> Result<()> {
    let dir = dataplane::pin_dir_for(iface);
    dataplane::ensure_bpffs()?;
    let c: Counters = dataplane::stats::read_pinned(&dir)
        .with_context(|| format!("is `ikelb run` active on {iface}?"))?;
    let names: Vec<(usize, String, String)> = std::fs::read_to_string(names_path(iface))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            Some((
                it.next()?.parse().ok()?,
                it.next()?.into(),
                it.next()?.into(),
            ))
        })
        .collect();
    let members: Vec<(u16, String)> = names
        .iter()
        .map(|(i, n, _)| (*i as u16, n.clone()))
        .collect();
    let fwd = dataplane::forward::read_pinned(&dir, &members)?;
    if json {
        let targets: Vec<serde_json::Value> = names
            .iter()
            .map(|(i, n, id)| {
                serde_json::json!({"name": n, "identity": id, "redirects": c.per_target.get(*i).copied().unwrap_or(0)})
            })
            .collect();
        let mut obj = serde_json::Map::new();
        for (n, v) in &c.stats {
            obj.insert((*n).into(), (*v).into());
        }
        obj.insert("targets".into(), targets.into());
        obj.insert("forwarded".into(), serde_json::to_value(&fwd)?);
        println!("{}", serde_json::Value::Object(obj));
    } else {
        for (n, v) in &c.stats {
            if *v != 0 || matches!(*n, "seen" | "redirected") {
                println!("{n:<28} {v}");
            }
        }
        for (i, n, id) in &names {
            println!(
                "target {n:<12} {id:<40} {}",
                c.per_target.get(*i).copied().unwrap_or(0)
            );
        }
        for r in &fwd {
            println!(
                "forwarded {:<24} {:<12} {:<14} {} packets {} bytes",
                r.vip, r.member, r.kind, r.packets, r.bytes
            );
        }
    }
    Ok(())
}

/// `ikelb member`: the cluster reporter, with `--decap` the IP-in-IP unwrapper beside
/// it (or alone, without a configuration).
fn member(config: Option<PathBuf>, decap: bool, iface: Option<String>) -> Result<()> {
    let c = config.as_ref().map(|p| Config::load(p)).transpose()?;
    let _decap = if decap {
        let Some(iface) = iface.or_else(|| c.as_ref().and_then(|c| c.iface.clone())) else {
            bail!("--decap needs --iface or [dataplane].iface");
        };
        let mut dp = Dataplane::load(None).context("loading the XDP object")?;
        let addrs = dp.attach_decap(&iface)?;
        info!(%iface, ?addrs, "decapsulating IP-in-IP");
        Some(dp)
    } else {
        None
    };
    match (c, config) {
        (Some(c), Some(path)) => {
            if c.cluster.is_none() {
                bail!("{}: no [cluster] section", path.display());
            }
            lb_userspace::node::run(&c, c.iface.clone(), None).context("cluster member")
        }
        _ if decap => {
            info!("ready");
            wait_for_signal()
        }
        _ => bail!("ikelb member needs --config, --decap, or both"),
    }
}

fn attach_pass(iface: &str) -> Result<()> {
    let mut dp = Dataplane::load(None)?;
    dp.program("ikelb_pass")?
        .attach(iface, aya::programs::XdpMode::Driver)
        .with_context(|| format!("attach XDP_PASS to {iface} (native)"))?;
    info!(%iface, "ready");
    wait_for_signal()
}
