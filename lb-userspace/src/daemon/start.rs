//! Starting the daemon's parts for [`super::run`]: the fast path (fresh, or taking over
//! the one the previous process kept), VRRP, the load exchange, the responder, the
//! control socket and the metrics.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use aya::programs::links::PinnedLink;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::control::{self, Shared};
use super::{
    Options, Tasks, dataplane, reload, restart, spawn, start_ike, static_entries, until_stop,
};
use crate::cluster::io as cio;
use crate::config::{Config, RUN_DIR, XdpModeCfg};
use crate::dataplane::{self as dpl, Dataplane, adopt::Maps};
use crate::status::ReloadState;
use crate::target::Owner;
use crate::vrrp::io as vio;

/// Where the dataplane task records the target names of `iface` (read by `ikelb stats`
/// and by the next process after a handover).
pub fn names_file(iface: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(format!("{iface}.targets"))
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

/// The VRRP instances' status and priority channels.
pub type VrrpChannels = (Vec<watch::Receiver<vio::Status>>, Vec<watch::Sender<u8>>);

/// Spawns the VRRP instances; `dp` carries their roles to the dataplane task, and
/// `resume[i]` is instance `i`'s handover record, if it resumes.
pub fn vrrp(
    instances: &[vio::Instance],
    dp: Option<&mpsc::UnboundedSender<dataplane::Cmd>>,
    resume: &[Option<vio::Kept>],
    stop: &watch::Receiver<vio::Stop>,
    tasks: &mut Tasks,
) -> VrrpChannels {
    let mut status = Vec::new();
    let mut priorities = Vec::new();
    for (i, inst) in instances.iter().enumerate() {
        let (tx, rx) = watch::channel(vio::Status::initial(inst));
        status.push(rx);
        let (prio_tx, prio_rx) = watch::channel(inst.config.priority);
        priorities.push(prio_tx);
        let dp_tx = dp.cloned();
        let on_role = move |active: bool| {
            if let Some(tx) = &dp_tx {
                // Gone only while stopping, when the role no longer matters.
                let _ = tx.send(dataplane::Cmd::Role {
                    instance: i,
                    active,
                });
            }
        };
        let (inst, stop, resume) = (inst.clone(), stop.clone(), resume.get(i).copied().flatten());
        spawn(tasks, format!("vrrp[{i}]"), async move {
            Ok(vio::run(inst, stop, prio_rx, on_role, tx, resume).await?)
        });
    }
    (status, priorities)
}

/// The started fast path: the dataplane task, its handle, and the member ids of a
/// cluster table it kept (which stays until they reported again).
pub type FastPath = (dataplane::Task, dataplane::Handle, Option<BTreeSet<u32>>);

/// Loads the fast path and fills it from `cfg`, then attaches it, or, with `kept` (the
/// link the previous process left), takes that over: its maps when they fit (a cluster
/// table in them stays), its link, whose program is replaced atomically when ours
/// differs or `replace` asks. `roles` are the VRRP instances' starting roles.
pub fn fast_path(
    cfg: &Config,
    iface: &str,
    mode: XdpModeCfg,
    kept: Option<PinnedLink>,
    roles: Vec<bool>,
    replace: bool,
    chan: dataplane::Channel,
) -> Result<FastPath> {
    let pins = dpl::pin_dir_for(iface);
    let names = names_file(iface);
    let (mut dp, maps) = match &kept {
        Some(_) => {
            let (dp, maps) = Dataplane::adopt(&pins, &names).context("loading the XDP program")?;
            if let Maps::Fresh(why) = &maps {
                warn!(%iface, %why, "the kept maps do not fit this program: fresh maps, filled from the configuration, replace them");
            }
            (dp, Some(maps))
        }
        None => (
            Dataplane::load(Some(&pins)).context("loading the XDP program")?,
            None,
        ),
    };
    dp.set_vips(&cfg.vips).context("installing VIPs")?;
    dp.set_rate_limit(cfg.rate_limit)?;
    dp.set_forward_encap(cfg.forward_encap);
    // A kept cluster table answers until the load exchange heard its members again;
    // static targets are the configuration's, and rebuilt the same.
    let hold: Option<BTreeSet<u32>> =
        (maps == Some(Maps::Kept) && cfg.cluster.is_some()).then(|| {
            dp.target_names()
                .iter()
                .filter_map(|(_, o, _)| match o {
                    Owner::Member(id) => Some(*id),
                    Owner::Static(_) => None,
                })
                .collect()
        });
    match &hold {
        Some(m) => {
            info!(members = ?m, "the kept cluster table answers until its members reported again")
        }
        None => dp
            .set_targets(&static_entries(cfg))
            .context("installing targets")?,
    }
    // With VRRP the fast path answers only while this node is the Active.
    dp.set_active(cfg.vrrp.is_empty() || roles.contains(&true))?;
    let used = match kept {
        None => dp.attach(iface, mode)?,
        Some(link) => {
            let fresh = maps != Some(Maps::Kept);
            match dp.take_over(iface, link, fresh, replace) {
                Ok(t) => {
                    let tag = |t: Option<u64>| t.map(|x| format!("{x:016x}"));
                    let (old, new) = (tag(t.old_tag), tag(t.new_tag));
                    if t.replaced {
                        info!(%iface, ?old, ?new, "took over the kept fast path: program replaced on the same link");
                    } else {
                        info!(%iface, tag = ?old, "took over the kept fast path: the kept program runs on");
                    }
                    "kept"
                }
                Err(e) => {
                    warn!(%iface, error = %e, "the kept link cannot be taken over: attaching afresh");
                    dpl::link::remove_link_pin(iface)?;
                    dp.attach(iface, mode)?
                }
            }
        }
    };
    let (t, h) = dataplane::task(dp, iface, roles, names, chan)?;
    info!(%iface, mode = used, pins = %pins.display(), vips = cfg.vips.len(), targets = cfg.targets.len(), "fast path attached");
    Ok((t, h, hold))
}

/// What [`start`] leaves running.
pub struct Started {
    pub running: reload::Running,
    pub shared: Shared,
    pub dp_task: Option<DpTask>,
    pub req_rx: mpsc::Receiver<control::Request>,
    pub sock: PathBuf,
    pub instances: Vec<vio::Instance>,
}

pub type DpTask = tokio::task::JoinHandle<(Dataplane, Result<(), dpl::DataplaneError>)>;

/// Starts the fast path (taking over a `kept` one), VRRP, the load exchange, the
/// responder, the control socket and the metrics. VRRP instances that resume from the
/// `handover` record start first: the kept fast path answers meanwhile, and the Backups
/// must hear the next advert within three intervals, while loading the program takes
/// seconds.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    opts: &Options,
    cfg: Config,
    iface: Option<String>,
    mode: XdpModeCfg,
    kept: Option<aya::programs::links::PinnedLink>,
    handover: Option<&restart::Handover>,
    (stop_rx, vrrp_stop): (&watch::Receiver<bool>, &watch::Receiver<vio::Stop>),
    tasks: &mut Tasks,
) -> Result<Started> {
    let with_xdp = !opts.member && mode != XdpModeCfg::Off;
    let mut instances = Vec::new();
    for (i, v) in cfg.vrrp.iter().enumerate() {
        let Some(base) = iface.as_deref().or(v.iface.as_deref()) else {
            bail!("vrrp[{i}]: no interface");
        };
        instances.push(vrrp_instance(v, base)?);
    }
    let resume: Vec<Option<vio::Kept>> = instances
        .iter()
        .map(|inst| handover.and_then(|h| h.resume_for(inst)))
        .collect();
    if let Some(h) = handover {
        let resumed: Vec<bool> = resume.iter().map(Option::is_some).collect();
        h.release_unresumed(&instances, &resumed);
    }
    // Unbounded: a VRRP role change must never be dropped or wait in a callback, and
    // the responder's counts are bounded by its IKE_AUTH rate.
    let chan = mpsc::unbounded_channel();
    let dp_tx = with_xdp.then(|| chan.0.clone());
    let mut early = None;
    if resume.iter().any(Option::is_some) {
        early = Some(vrrp(&instances, dp_tx.as_ref(), &resume, vrrp_stop, tasks));
    }

    // The fast path, loaded and attached (or taken over) before anything else runs.
    let mut dp_task = None;
    let mut kept_members = None;
    let dp = match iface.as_deref().filter(|_| with_xdp) {
        Some(i) => {
            let roles = resume.iter().map(Option::is_some).collect();
            let (t, h, hold) = fast_path(&cfg, i, mode, kept, roles, opts.replace_program, chan)?;
            kept_members = hold;
            dp_task = Some(tokio::spawn(t.run()));
            Some(h)
        }
        None => None,
    };
    let (vrrp_status, priorities) = match early {
        Some(v) => v,
        None => vrrp(&instances, dp_tx.as_ref(), &[], vrrp_stop, tasks),
    };

    // The load exchange.
    let (cluster_tx, cluster_status) = match &cfg.cluster {
        Some(c) => {
            let (tx, rx) = watch::channel(cio::Status::default());
            let (cmd_tx, cmd_rx) = mpsc::channel(16);
            let table = dp.clone().map(|h| Box::new(h) as Box<dyn cio::Table>);
            let (c, iface, statics) = (c.clone(), iface.clone(), cfg.targets.clone());
            spawn(tasks, "load exchange", async move {
                Ok(cio::run(c, iface, table, statics, cmd_rx, tx, kept_members).await?)
            });
            (Some(cmd_tx), Some(rx))
        }
        None => (None, None),
    };

    // The IKE responder.
    let ike = if opts.member {
        None
    } else {
        start_ike(&cfg, dp.as_ref(), opts.ike_keylog.as_ref(), tasks)?
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
    let (req_tx, req_rx) = mpsc::channel::<control::Request>(8);
    let limits = cfg.status.limits;
    spawn(tasks, "control socket", {
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
            tasks,
            "metrics",
            until_stop(stop_rx.clone(), async move {
                crate::metrics::serve(l, limits, move || sh.report()).await;
            }),
        );
    }
    let running = reload::Running {
        path: opts.config.clone(),
        cfg,
        dp,
        cluster: cluster_tx,
        ike,
        priorities,
        state,
    };
    Ok(Started {
        running,
        shared,
        dp_task,
        req_rx,
        sock,
        instances,
    })
}
