//! `ikelb`: the IKEv2 cluster load balancer daemon and its CLI.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lb_userspace::cli::{self, Cmd, Invocation, Socket};
use lb_userspace::config::Config;
use lb_userspace::control::Command;
use lb_userspace::daemon::{self, Options};
use lb_userspace::dataplane::{self, Dataplane, stats::Counters};
use tracing::info;

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
    let cmd = match cli::parse() {
        Invocation::Cli(c) => c.cmd,
        Invocation::Generate(g) => return g.run(),
    };
    cli::logging::init();
    match cmd {
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
            for t in c.targets.iter().map(|s| &s.target) {
                println!("target {} {} weight={}", t.owner, t.identity, t.weight);
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
            migrate: m,
            at,
        } if m.migrate => lb_userspace::cluster::migrate::cli::drain_and_migrate(
            &at.path(),
            member,
            deadline,
            lb_userspace::control::Migrate {
                batch: m.batch,
                interval_ms: u64::try_from(m.interval.as_millis()).unwrap_or(u64::MAX),
            },
            !m.no_wait,
        ),
        Cmd::Drain {
            member,
            deadline,
            at,
            ..
        } => control(
            at,
            Command::Drain {
                member,
                deadline_s: deadline,
                migrate: None,
            },
        ),
        Cmd::Undrain { member, at } => control(at, Command::Undrain { member }),
        Cmd::Status { at, json } => {
            let r = lb_userspace::status::query(&at.path())?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
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
