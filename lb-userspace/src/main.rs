//! `ikelb`: the IKEv2 cluster load balancer daemon and its CLI.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use lb_userspace::config::{Config, XdpModeCfg};
use lb_userspace::control::Command;
use lb_userspace::daemon::{self, Options};
use lb_userspace::dataplane::{self, Dataplane, stats::Counters};
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
    /// Load and attach the fast path on an interface (or take over the one a handover
    /// kept) and serve until SIGINT/SIGTERM; SIGHUP reloads the configuration, SIGUSR2
    /// hands over as `ikelb restart` does.
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
        /// Replace the program on a kept link even when it is the same build (it is
        /// replaced anyway when it differs); resets its unpinned state (rate buckets).
        #[arg(long)]
        replace_program: bool,
    },
    /// Exit leaving the fast path (XDP program, maps, table) and the VIPs to the next
    /// `ikelb run` on the interface, which takes them over without a gap. Exit status
    /// 75: with systemd, `RestartForceExitStatus=75` starts the next one at once.
    Restart {
        #[command(flatten)]
        at: Socket,
    },
    /// Remove what a handover left on an interface that no `ikelb run` took over: the
    /// XDP link, the pinned maps and the VIPs it held.
    Detach {
        #[arg(long)]
        iface: String,
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
    /// Show a running instance's state: config generation and last reload, roles,
    /// members, fast-path counters.
    Status {
        #[command(flatten)]
        at: Socket,
        #[arg(long)]
        json: bool,
    },
    /// Re-read the running instance's configuration file and apply it all or nothing
    /// (as SIGHUP does), without detaching XDP.
    Reload {
        #[command(flatten)]
        at: Socket,
    },
    /// Stop new redirects to a cluster member from the next table rebuild on; its
    /// established tunnels stay. A member drains itself through its own socket.
    Drain {
        /// The member id ([cluster] member-id).
        member: u32,
        /// Log, this many seconds from now, how many SAs the member still holds.
        #[arg(long, value_name = "SECONDS")]
        deadline: Option<u64>,
        #[command(flatten)]
        at: Socket,
    },
    /// Give a drained member new clients again.
    Undrain {
        member: u32,
        #[command(flatten)]
        at: Socket,
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

/// Which running instance a control command goes to.
#[derive(Args)]
struct Socket {
    /// The instance on this interface (socket /run/ikelb/<iface>.sock).
    #[arg(long)]
    iface: Option<String>,
    /// The control socket ([status].socket), e.g. a member's.
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl Socket {
    fn path(self) -> PathBuf {
        self.socket.unwrap_or_else(|| {
            lb_userspace::status::default_socket(self.iface.as_deref().or(Some("ikelb")), None)
        })
    }
}

/// Sends a command that changes the daemon and prints its answer.
fn control(at: Socket, cmd: Command) -> Result<()> {
    let sock = at.path();
    let r =
        lb_userspace::control::call(&sock, cmd).with_context(|| format!("{}", sock.display()))?;
    match r {
        serde_json::Value::String(s) => println!("{s}"),
        o => println!("{o}"),
    }
    Ok(())
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
            replace_program,
        } => match daemon::run(Options {
            config,
            member: false,
            iface,
            xdp_mode,
            ike_keylog,
            replace_program,
        })? {
            daemon::Exit::Stopped => Ok(()),
            daemon::Exit::HandedOver => std::process::exit(daemon::restart::HANDOVER_EXIT),
        },
        Cmd::Restart { at } => control(at, Command::Restart),
        Cmd::Detach { iface } => {
            println!("{}", daemon::restart::detach(&iface)?);
            Ok(())
        }
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
            if c.ike.eap_any {
                println!("ike eap for any other identity");
            }
            if let Some(r) = &c.ike.radius {
                let servers: Vec<String> = r.servers.iter().map(|(a, _)| a.to_string()).collect();
                println!(
                    "radius {} (timeout {:?}, {} retries, verdict within {:?})",
                    servers.join(" "),
                    r.timeout,
                    r.retries,
                    r.worst_case()
                );
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
        Cmd::Reload { at } => control(at, Command::Reload),
        Cmd::Drain {
            member,
            deadline,
            at,
        } => control(
            at,
            Command::Drain {
                member,
                deadline_s: deadline,
            },
        ),
        Cmd::Undrain { member, at } => control(at, Command::Undrain { member }),
        Cmd::Status { at, json } => {
            let r = lb_userspace::status::query(&at.path())?;
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

/// Target names beside the pins (bpffs holds only BPF objects), for `ikelb stats`.
fn names_path(iface: &str) -> PathBuf {
    PathBuf::from("/run/ikelb").join(format!("{iface}.targets"))
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
/// `ikelb member`: the load reporter of `--config`, and with `--decap` the XDP program
/// that unwraps the balancer's IP-in-IP (docs/architecture.md §6.4), or both.
fn member(config: Option<PathBuf>, decap: bool, iface: Option<String>) -> Result<()> {
    let _decap = if decap {
        let c = config.as_ref().map(|p| Config::load(p)).transpose()?;
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
    match config {
        Some(config) => daemon::run(Options {
            config,
            member: true,
            iface: None,
            xdp_mode: None,
            ike_keylog: None,
            replace_program: false,
        })
        .map(drop)
        .context("cluster member"),
        None if decap => {
            info!("ready");
            wait_for_signal()
        }
        None => bail!("ikelb member needs --config, --decap, or both"),
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
