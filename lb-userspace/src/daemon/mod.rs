//! The daemon's one lifecycle (`ikelb run` and `ikelb member`): one tokio runtime;
//! the dataplane task is the only writer of the BPF maps ([`dataplane`]); VRRP
//! instances, the load exchange, the IKE responder, the control socket and `/metrics`
//! are tasks beside it. The supervisor loop waits for a signal (SIGINT/SIGTERM stop,
//! SIGHUP reloads), for control commands, and for any task to end: a task that ends
//! while the daemon runs is a failure, logged with its name and error, and the process
//! stops with a non-zero status so the service manager restarts it (a table that
//! silently stopped following the cluster is worse than a restart).
//!
//! Shutdown runs in order: VRRP sends priority 0 and releases the VIPs, the other tasks
//! stop, the dataplane task applies what is queued and hands the dataplane back, and
//! XDP is detached last.

pub mod control;
pub mod dataplane;
pub mod reload;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::cluster::io as cio;
use crate::config::{Config, XdpModeCfg};
use crate::control::{Command, Response};
use crate::dataplane::choice::SlotChooser;
use crate::dataplane::{self as dpl, Dataplane};
use crate::ike::Responder;
use crate::ike::io::{Control, KeyLogFile};
use crate::status::ReloadState;
use crate::target::choice::StaticChooser;
use crate::target::{Target, TargetChooser};
use crate::vrrp::io as vio;
use control::Shared;

/// How the daemon was started.
pub struct Options {
    pub config: PathBuf,
    /// `ikelb member`: the load reporter only, no fast path and no VIPs.
    pub member: bool,
    pub iface: Option<String>,
    pub xdp_mode: Option<XdpModeCfg>,
    /// TEST ONLY: the IKE key log (see `ikelb run --ike-keylog`).
    pub ike_keylog: Option<PathBuf>,
}

/// Runs the daemon until SIGINT/SIGTERM (`Ok`) or a task's failure (`Err`).
pub fn run(opts: Options) -> Result<()> {
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

/// The state machine's settings for a configured instance on `iface`.
pub fn vrrp_instance(v: &crate::config::VrrpCfg, iface: &str) -> std::io::Result<vio::Instance> {
    let iface = v.iface.clone().unwrap_or_else(|| iface.to_string());
    let v6 = v.vips[0].is_ipv6();
    let primary = match v.source {
        Some(a) => a,
        None => crate::net::primary_address(&iface, v6, &v.vips)?,
    };
    let mut c = crate::vrrp::Config::new(v.vrid, primary, v.vips.clone());
    c.priority = v.priority;
    c.interval_cs = v.interval_cs;
    c.preempt = v.preempt;
    c.preempt_delay = v.preempt_delay;
    c.peers = v.peers.clone();
    c.tx_checksum = v.checksum;
    Ok(vio::Instance {
        iface,
        config: c,
        prefix_len: v.prefix_len.unwrap_or(if v6 { 128 } else { 32 }),
    })
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

async fn run_async(opts: Options) -> Result<()> {
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Tasks::new();

    // The fast path, loaded and attached before anything else runs.
    let mut dp_task = None;
    let dp = if with_xdp {
        let iface = iface.clone().unwrap_or_default();
        let pins = dpl::pin_dir_for(&iface);
        let mut dp = Dataplane::load(Some(&pins)).context("loading the XDP program")?;
        dp.set_vips(&cfg.vips).context("installing VIPs")?;
        dp.set_rate_limit(cfg.rate_limit)?;
        dp.set_forward_encap(cfg.forward_encap);
        dp.set_targets(&static_entries(&cfg))
            .context("installing targets")?;
        // With VRRP the fast path answers only while this node is the Active.
        dp.set_active(cfg.vrrp.is_empty())?;
        let used = dp.attach(&iface, mode)?;
        let names = PathBuf::from(crate::config::RUN_DIR).join(format!("{iface}.targets"));
        let (t, h) = dataplane::task(dp, &iface, cfg.vrrp.len(), names)?;
        info!(%iface, mode = used, pins = %pins.display(), vips = cfg.vips.len(), targets = cfg.targets.len(), "fast path attached");
        dp_task = Some(tokio::spawn(t.run()));
        Some(h)
    } else {
        None
    };

    // VRRP instances.
    let mut vrrp_status = Vec::new();
    let mut priorities = Vec::new();
    for (i, v) in cfg.vrrp.iter().enumerate() {
        let Some(base) = iface.as_deref().or(v.iface.as_deref()) else {
            bail!("vrrp[{i}]: no interface");
        };
        let inst = vrrp_instance(v, base)?;
        let (tx, rx) = watch::channel(vio::Status::initial(&inst));
        vrrp_status.push(rx);
        let (prio_tx, prio_rx) = watch::channel(v.priority);
        priorities.push(prio_tx);
        let dp_tx = dp.as_ref().map(|h| h.tx.clone());
        let on_role = move |active: bool| {
            if let Some(tx) = &dp_tx {
                // Gone only while stopping, when the role no longer matters.
                let _ = tx.send(dataplane::Cmd::Role {
                    instance: i,
                    active,
                });
            }
        };
        let stop = stop_rx.clone();
        spawn(&mut tasks, format!("vrrp[{i}]"), async move {
            Ok(vio::run(inst, stop, prio_rx, on_role, tx).await?)
        });
    }

    // The load exchange.
    let (cluster_tx, cluster_status) = match &cfg.cluster {
        Some(c) => {
            let (tx, rx) = watch::channel(cio::Status::default());
            let (cmd_tx, cmd_rx) = mpsc::channel(16);
            let table = dp.clone().map(|h| Box::new(h) as Box<dyn cio::Table>);
            let (c, iface, statics) = (c.clone(), iface.clone(), cfg.targets.clone());
            spawn(&mut tasks, "load exchange", async move {
                Ok(cio::run(c, iface, table, statics, cmd_rx, tx).await?)
            });
            (Some(cmd_tx), Some(rx))
        }
        None => (None, None),
    };

    // The IKE responder.
    let ike = if opts.member {
        None
    } else {
        start_ike(&cfg, dp.as_ref(), opts.ike_keylog.as_ref(), &mut tasks)?
    };

    // Status, control and metrics.
    let state = Arc::new(Mutex::new(ReloadState {
        generation: 1,
        last: None,
    }));
    let shared = Shared {
        iface: iface.clone(),
        vrrp: vrrp_status,
        cluster: cluster_status,
        dp: dp.clone(),
        config: state.clone(),
    };
    let sock = cfg.status.socket.clone().unwrap_or_else(|| {
        let fast = dp.as_ref().and(iface.as_deref());
        crate::status::default_socket(fast, cfg.cluster.as_ref().map(|c| c.member_id))
    });
    let listener = control::bind(&sock, cfg.status.group.as_ref())
        .with_context(|| format!("control socket {}", sock.display()))?;
    let (req_tx, mut req_rx) = mpsc::channel::<control::Request>(8);
    let limits = cfg.status.limits;
    spawn(&mut tasks, "control socket", {
        let shared = shared.clone();
        until_stop(stop_rx.clone(), async move {
            control::serve(listener, limits, shared, req_tx).await;
        })
    });
    if let Some(addr) = cfg.status.metrics {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("metrics on {addr}"))?;
        info!(%addr, "metrics listener");
        let sh = shared.clone();
        spawn(
            &mut tasks,
            "metrics",
            until_stop(stop_rx.clone(), async move {
                crate::metrics::serve(l, limits, move || sh.report()).await;
            }),
        );
    }

    let mut running = reload::Running {
        path: opts.config.clone(),
        cfg,
        dp,
        cluster: cluster_tx,
        ike,
        priorities,
        state,
    };
    info!(config = %opts.config.display(), "ready");
    let outcome = supervise(&mut running, &mut tasks, &mut dp_task, &mut req_rx).await;

    info!("shutting down");
    let _ = stop_tx.send(true);
    // VRRP first: its priority-0 advert hands the VIPs over at once.
    let cluster_tx = running.cluster.take();
    let ike = running.ike.take();
    drop((cluster_tx, ike));
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => break,
                Some(Ok((name, Err(e)))) => warn!(task = %name, error = %format!("{e:#}"), "task ended with an error while stopping"),
                Some(_) => {}
            },
            () = &mut deadline => {
                warn!("tasks did not stop within 5 s: aborted");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    drop(running);
    drop(shared);
    let _ = std::fs::remove_file(&sock);
    if let Some(t) = dp_task {
        match t.await {
            Ok((dp, r)) => {
                if let Ok(c) = dp.counters() {
                    info!(
                        seen = c.get(lb_common::maps::Stat::Seen),
                        redirected = c.get(lb_common::maps::Stat::Redirected),
                        "final counters"
                    );
                }
                drop(dp);
                if let Err(e) = r
                    && outcome.is_ok()
                {
                    return Err(e.into());
                }
            }
            Err(e) => warn!(error = %e, "dataplane task"),
        }
    }
    outcome
}

/// Waits for a signal, a control command or a task's end. `Ok` for a stop signal.
async fn supervise(
    running: &mut reload::Running,
    tasks: &mut Tasks,
    dp_task: &mut Option<tokio::task::JoinHandle<(Dataplane, Result<(), dpl::DataplaneError>)>>,
    requests: &mut mpsc::Receiver<control::Request>,
) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                info!("SIGHUP: reloading");
                // The outcome is logged and kept for `ikelb status`.
                let _ = running.reload().await;
            }
            Some((cmd, reply)) = requests.recv() => {
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
        // Answered by the control task itself.
        Command::Status => Response::error("status is answered by the control socket"),
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
    use super::*;

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
        let e = supervise(&mut running, &mut tasks, &mut None, &mut rx)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "load exchange failed: receiving load reports: network is down"
        );
        // A task that returns without an error while the daemon runs is a failure too.
        spawn(&mut tasks, "metrics", async { Ok(()) });
        let e = supervise(&mut running, &mut tasks, &mut None, &mut rx)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e, "metrics failed: ended");
    }
}
