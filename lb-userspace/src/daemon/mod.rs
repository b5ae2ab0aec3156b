//! The daemon's one lifecycle (`ikelb run` and `ikelb member`): one tokio runtime;
//! the dataplane task is the only writer of the BPF maps ([`dataplane`]); VRRP
//! instances, the load exchange, the IKE responder, the control socket and `/metrics`
//! are tasks beside it. The supervisor loop waits for a signal (SIGINT/SIGTERM stop,
//! SIGHUP reloads, SIGUSR2 hands over), for control commands, and for any task to end:
//! a task that ends while the daemon runs is a failure, logged with its name and error,
//! and the process stops with a non-zero status so the service manager restarts it (a
//! table that silently stopped following the cluster is worse than a restart).
//!
//! Shutdown runs in order: VRRP sends priority 0 and releases the VIPs, the other tasks
//! stop, the dataplane task applies what is queued and hands the dataplane back, and
//! XDP is detached last. A handover ([`restart`]) runs the same order but VRRP ends
//! after its next ordinary advert, keeping the VIPs, and XDP stays attached.

pub mod control;
pub mod dataplane;
pub mod reload;
pub mod restart;
mod start;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::cluster::io as cio;
use crate::config::{Config, XdpModeCfg};
use crate::control::{Command, Response};
use crate::dataplane as dpl;
use crate::dataplane::choice::SlotChooser;
use crate::ike::Responder;
use crate::ike::io::{Control, KeyLogFile};
use crate::target::choice::StaticChooser;
use crate::target::{Target, TargetChooser};
use crate::vrrp::io as vio;

/// How the daemon was started.
pub struct Options {
    pub config: PathBuf,
    /// `ikelb member`: the load reporter only, no fast path and no VIPs.
    pub member: bool,
    pub iface: Option<String>,
    pub xdp_mode: Option<XdpModeCfg>,
    /// TEST ONLY: the IKE key log (see `ikelb run --ike-keylog`).
    pub ike_keylog: Option<PathBuf>,
    /// Replace the program on a kept link even when it is the running one.
    pub replace_program: bool,
}

/// How the daemon ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGINT/SIGTERM: VIPs released, XDP detached, pins removed.
    Stopped,
    /// `ikelb restart` or SIGUSR2: fast path and VIPs kept for the next process (exit
    /// with [`restart::HANDOVER_EXIT`]).
    HandedOver,
}

/// Runs the daemon until SIGINT/SIGTERM, a handover (`Ok`) or a task's failure (`Err`).
pub fn run(opts: Options) -> Result<Exit> {
    // Two workers: the responder's public-key work must not hold up VRRP adverts.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ikelb")
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run_async(opts))
}

/// The static targets of a configuration as dataplane entries.
pub fn static_entries(c: &Config) -> Vec<Target> {
    c.targets.iter().map(|t| t.target.clone()).collect()
}

/// The responder's target choice: the fast path's live slot table, or without one
/// (`--xdp-mode off`) the same tables built from the static targets.
fn chooser(c: &Config, dp: Option<&dataplane::Handle>) -> Result<Box<dyn TargetChooser>> {
    Ok(match dp {
        Some(h) => Box::new(
            SlotChooser::open_pinned(&dpl::pin_dir_for(&h.iface), h.counter())
                .context("opening the slot table")?,
        ),
        None => Box::new(StaticChooser::new(&static_entries(c))),
    })
}

/// A listener that serves until the daemon stops; one that stops serving before is a
/// failure.
async fn until_stop(
    mut stop: watch::Receiver<bool>,
    serve: impl Future<Output = ()>,
) -> Result<()> {
    tokio::select! {
        () = serve => Err(anyhow!("stopped serving")),
        _ = stop.wait_for(|s| *s) => Ok(()),
    }
}

type Tasks = JoinSet<(String, Result<()>)>;

fn spawn(
    tasks: &mut Tasks,
    name: impl Into<String>,
    f: impl Future<Output = Result<()>> + Send + 'static,
) {
    let name = name.into();
    tasks.spawn(async move { (name, f.await) });
}

async fn run_async(opts: Options) -> Result<Exit> {
    let cfg = Config::load(&opts.config)?;
    let iface = opts.iface.clone().or_else(|| cfg.iface.clone());
    let mode = opts.xdp_mode.unwrap_or(cfg.xdp_mode);
    let with_xdp = !opts.member && mode != XdpModeCfg::Off;
    if opts.member && cfg.cluster.is_none() {
        bail!("{}: no [cluster] section", opts.config.display());
    }
    if !opts.member {
        if iface.is_none() {
            bail!("no interface: pass --iface or set [dataplane].iface");
        }
        if cfg.vips.is_empty() {
            bail!(
                "no [[vip]] configured: `ikelb run` needs the VIPs (use `ikelb member` for a plain member)"
            );
        }
        if !with_xdp && (cfg.cluster.is_some() || !cfg.vrrp.is_empty()) {
            bail!(
                "--xdp-mode off serves static [[target]]s only: [cluster] and [[vrrp]] need the XDP dataplane"
            );
        }
        if !with_xdp
            && cfg
                .vips
                .iter()
                .any(|v| v.no_redirect == crate::config::NoRedirect::Forward)
        {
            bail!("--xdp-mode off: no-redirect = \"forward\" happens in the XDP program");
        }
    }
    // Registered before anything starts: a signal during the start (seconds of program
    // loading) is acted on once it is done, not by the default action, which would
    // leave a half-taken-over fast path behind.
    let mut signals = Signals::new()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (vrrp_stop, vrrp_stop_rx) = watch::channel(vio::Stop::Run);
    let mut tasks = Tasks::new();
    // The fast path a previous process kept on the interface, and its record.
    let fast = iface.clone().filter(|_| with_xdp);
    let kept = match &fast {
        Some(i) => dpl::link::kept_link(i)?,
        None => None,
    };
    let had_kept = kept.is_some();
    let handover = fast
        .as_deref()
        .filter(|_| had_kept)
        .and_then(restart::Handover::read);
    let stops = (&stop_rx, &vrrp_stop_rx);
    let started = start::start(
        &opts,
        cfg,
        iface,
        mode,
        kept,
        handover.as_ref(),
        stops,
        &mut tasks,
    )
    .await;
    let mut s = match started {
        Ok(s) => s,
        Err(e) => {
            // What started stops as at a stop, and nothing kept stays that nobody runs.
            let _ = vrrp_stop.send(vio::Stop::Release);
            let _ = stop_tx.send(true);
            stop_tasks(&mut tasks, Duration::from_secs(5)).await;
            if let Some(i) = fast.as_deref().filter(|_| had_kept) {
                restart::abandon(i, handover.as_ref());
            }
            return Err(e);
        }
    };
    if let Some(i) = &fast {
        restart::remove(i);
    }
    info!(config = %opts.config.display(), "ready");
    let outcome = supervise(
        &mut s.running,
        &mut signals,
        &mut tasks,
        &mut s.dp_task,
        &mut s.req_rx,
    )
    .await;

    let keep = matches!(outcome, Ok(Exit::HandedOver));
    if keep {
        info!("handing over: the fast path and the VIPs stay for the next process");
    } else {
        info!("shutting down");
    }
    // VRRP first: its priority-0 advert hands the VIPs over at once, or in a handover
    // its last advert goes out as late as possible.
    let _ = vrrp_stop.send(if keep {
        vio::Stop::HandOver
    } else {
        vio::Stop::Release
    });
    let _ = stop_tx.send(true);
    let cluster_tx = s.running.cluster.take();
    let ike = s.running.ike.take();
    drop((cluster_tx, ike));
    // A handover waits for each Active's next advert, up to one interval.
    let interval = s
        .instances
        .iter()
        .map(|i| Duration::from_millis(u64::from(i.config.interval_cs) * 10))
        .max()
        .filter(|_| keep)
        .unwrap_or_default();
    stop_tasks(&mut tasks, Duration::from_secs(5) + interval).await;
    let vrrp_final: Vec<vio::Status> = s.shared.vrrp.iter().map(|r| r.borrow().clone()).collect();
    let handed = restart::Handover::of(&s.instances, &vrrp_final);
    drop(s.running);
    drop(s.shared);
    let _ = std::fs::remove_file(&s.sock);
    let (Some(t), Some(fast)) = (s.dp_task, fast) else {
        return outcome;
    };
    let (dp, r) = match t.await {
        Ok(x) => x,
        Err(e) => {
            warn!(error = %e, "dataplane task");
            return outcome;
        }
    };
    if let Ok(c) = dp.counters() {
        info!(
            seen = c.get(lb_common::maps::Stat::Seen),
            redirected = c.get(lb_common::maps::Stat::Redirected),
            "final counters"
        );
    }
    if keep && r.is_ok() {
        match dp.keep() {
            Ok(link) => {
                if let Err(e) = handed.write(&fast) {
                    warn!(error = %e, "no handover record: the next process starts its VRRP roles as at boot");
                }
                info!(link = %link.display(), actives = handed.vrrp.len(), "fast path kept for the next process");
                return outcome;
            }
            Err(e) => {
                handed.release_vips();
                let _ = std::fs::remove_file(start::names_file(&fast));
                return Err(anyhow!(e).context("handover failed: the fast path is detached"));
            }
        }
    }
    drop(dp);
    let _ = std::fs::remove_file(start::names_file(&fast));
    if keep {
        handed.release_vips();
    }
    match r {
        Err(e) if outcome.is_ok() => Err(e.into()),
        _ => outcome,
    }
}

/// Waits for `tasks` to end, logging errors; aborts them after `limit`.
async fn stop_tasks(tasks: &mut Tasks, limit: Duration) {
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => break,
                Some(Ok((name, Err(e)))) => warn!(task = %name, error = %format!("{e:#}"), "task ended with an error while stopping"),
                Some(_) => {}
            },
            () = &mut deadline => {
                warn!(?limit, "tasks did not stop in time: aborted");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// Whether a handover may go ahead: only with a fast path to keep, and only with a
/// configuration file that the next process will accept (as far as this build tells).
fn restart_check(running: &reload::Running) -> Result<(), String> {
    if running.dp.is_none() {
        return Err(
            "no fast path to keep here (ikelb member, --xdp-mode off): restart the service instead"
                .into(),
        );
    }
    Config::load(&running.path)
        .map(drop)
        .map_err(|e| format!("restart refused, still running: {e:#}"))
}

/// The signals the daemon acts on.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr2: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }
}

/// Waits for a signal, a control command or a task's end: the stop or handover asked
/// for, or the failure.
async fn supervise(
    running: &mut reload::Running,
    sig: &mut Signals,
    tasks: &mut Tasks,
    dp_task: &mut Option<start::DpTask>,
    requests: &mut mpsc::Receiver<control::Request>,
) -> Result<Exit> {
    loop {
        tokio::select! {
            _ = sig.term.recv() => return Ok(Exit::Stopped),
            _ = sig.int.recv() => return Ok(Exit::Stopped),
            _ = sig.hup.recv() => {
                info!("SIGHUP: reloading");
                // The outcome is logged and kept for `ikelb status`.
                let _ = running.reload().await;
            }
            _ = sig.usr2.recv() => match restart_check(running) {
                Ok(()) => return Ok(Exit::HandedOver),
                Err(e) => warn!(error = %e, "SIGUSR2: no handover"),
            },
            Some((cmd, reply)) = requests.recv() => {
                if cmd == Command::Restart {
                    let r = restart_check(running);
                    let ok = r.is_ok();
                    let _ = reply.send(match r {
                        Ok(()) => Response::ok(serde_json::json!("handing over to the next process")),
                        Err(e) => Response::error(e),
                    });
                    if ok {
                        return Ok(Exit::HandedOver);
                    }
                    continue;
                }
                let r = command(running, cmd).await;
                let _ = reply.send(r);
            }
            Some(r) = tasks.join_next() => {
                let (name, why) = match r {
                    Ok((name, Ok(()))) => (name, "ended".to_string()),
                    Ok((name, Err(e))) => (name, format!("{e:#}")),
                    Err(e) => ("a task".to_string(), format!("panicked: {e}")),
                };
                error!(task = %name, error = %why, "task failed: stopping");
                return Err(anyhow!("{name} failed: {why}"));
            }
            r = async { dp_task.as_mut().expect("guarded").await }, if dp_task.is_some() => {
                *dp_task = None;
                let why = match r {
                    Ok((dp, Err(e))) => { drop(dp); format!("{e}") }
                    Ok((dp, Ok(()))) => { drop(dp); "ended".to_string() }
                    Err(e) => format!("panicked: {e}"),
                };
                error!(task = "dataplane", error = %why, "task failed: stopping");
                return Err(anyhow!("dataplane failed: {why}"));
            }
        }
    }
}

async fn command(running: &mut reload::Running, cmd: Command) -> Response {
    match cmd {
        // Answered by the control task itself, and by the supervisor.
        Command::Status => Response::error("status is answered by the control socket"),
        Command::Restart => Response::error("restart is answered by the supervisor"),
        Command::Reload => match running.reload().await {
            Ok(m) => Response::ok(serde_json::json!(m)),
            Err(e) => Response::error(e),
        },
        Command::Drain {
            member,
            deadline_s,
            migrate,
        } => {
            let migrate = match migrate
                .map(|m| {
                    let every = std::time::Duration::from_millis(m.interval_ms);
                    crate::cluster::migrate::Options::new(m.batch, every)
                })
                .transpose()
            {
                Ok(m) => m,
                Err(e) => return Response::error(format!("--migrate: {e}")),
            };
            let deadline = deadline_s.map(std::time::Duration::from_secs);
            drain(running, member, true, deadline, migrate).await
        }
        Command::Undrain { member } => drain(running, member, false, None, None).await,
    }
}

async fn drain(
    running: &reload::Running,
    member: u32,
    on: bool,
    deadline: Option<std::time::Duration>,
    migrate: Option<crate::cluster::migrate::Options>,
) -> Response {
    let Some(tx) = &running.cluster else {
        return Response::error("no [cluster]: drain applies to reporting members");
    };
    let (reply, rx) = tokio::sync::oneshot::channel();
    let cmd = cio::Cmd::Drain {
        member,
        drain: on,
        deadline,
        migrate,
        reply,
    };
    if tx.send(cmd).await.is_err() {
        return Response::error("the load exchange is gone");
    }
    match rx.await {
        Ok(Ok(m)) => Response::ok(m),
        Ok(Err(e)) => Response::error(e),
        Err(_) => Response::error("the load exchange is gone"),
    }
}

/// The userspace IKE responder on every VIP's ports 500 and 4500: auth-mode VIPs
/// authenticate and then redirect; init-mode VIPs get the fast path's answer for what
/// the XDP program passed up (fragments, IPv6 extension headers). Without auth-mode
/// VIPs a bind failure only disables the slow path (a warning); with `--xdp-mode off`
/// nothing would answer, so it is an error.
fn start_ike(
    cfg: &Config,
    dp: Option<&dataplane::Handle>,
    keylog: Option<&PathBuf>,
    tasks: &mut Tasks,
) -> Result<Option<reload::Ike>> {
    let needed = !cfg.ike.auth_vips.is_empty() || dp.is_none();
    let addrs: Vec<IpAddr> = cfg.vips.iter().map(|v| v.address).collect();
    let listeners = match crate::ike::io::bind_vips(&addrs) {
        Ok(l) => l,
        Err(e) if !needed => {
            warn!(error = %e, "no IKE slow path: cannot bind the VIPs' IKE ports");
            return Ok(None);
        }
        Err(e) => return Err(e).context("binding the VIPs' IKE ports"),
    };
    let file = match keylog {
        Some(p) => {
            warn!(path = %p.display(), "IKE key log enabled: session keys are written to disk (test only)");
            Some(KeyLogFile::create(p).with_context(|| format!("key log {}", p.display()))?)
        }
        None => None,
    };
    let log_keys = file.is_some();
    let rc = cfg
        .ike
        .responder_config(&cfg.vips, chooser(cfg, dp)?, log_keys);
    let (tx, rx) = mpsc::channel::<Control>(4);
    let radius = cfg.ike.radius.as_ref().map(|r| r.client_config());
    spawn(tasks, "IKE responder", async move {
        let responder = Responder::new(rc);
        let stats = crate::ike::io::drive(responder, listeners, file, radius, rx).await?;
        info!(?stats, "IKE responder stopped");
        Ok(())
    });
    info!(
        vips = addrs.len(),
        auth_vips = cfg.ike.auth_vips.len(),
        peers = cfg.ike.peers.len(),
        eap_any = cfg.ike.eap_any,
        radius_servers = cfg.ike.radius.as_ref().map_or(0, |r| r.servers.len()),
        "IKE responder listening"
    );
    Ok(Some(reload::Ike { tx, log_keys }))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::status::ReloadState;

    #[tokio::test]
    async fn a_task_that_ends_stops_the_daemon_with_its_name_and_error() {
        let cfg = Config::parse("[[vip]]\naddress = \"192.0.2.1\"\n").unwrap();
        let mut running = reload::Running {
            path: "ikelb.toml".into(),
            cfg,
            dp: None,
            cluster: None,
            ike: None,
            priorities: Vec::new(),
            state: Arc::new(Mutex::new(ReloadState::default())),
        };
        let mut tasks = Tasks::new();
        spawn(&mut tasks, "load exchange", async {
            Err(anyhow!("receiving load reports: network is down"))
        });
        let (_tx, mut rx) = mpsc::channel(1);
        let mut sig = Signals::new().unwrap();
        let e = supervise(&mut running, &mut sig, &mut tasks, &mut None, &mut rx)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "load exchange failed: receiving load reports: network is down"
        );
        // A task that returns without an error while the daemon runs is a failure too.
        spawn(&mut tasks, "metrics", async { Ok(()) });
        let e = supervise(&mut running, &mut sig, &mut tasks, &mut None, &mut rx)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e, "metrics failed: ended");
    }
}
