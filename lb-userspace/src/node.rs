//! A cluster node: the VRRP instances, the load exchange, the control socket and the
//! metrics listener as tasks of one runtime, sharing snapshots by `watch`. Only the
//! load exchange's table writer and the VRRP role callback touch the dataplane, under
//! one mutex. Shutdown runs in order: VRRP priority 0 and VIPs released, then the rest
//! stops and the caller detaches XDP.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::io as cio;
use crate::config::{Config, VrrpCfg};
use crate::dataplane::Dataplane;
use crate::vrrp::io as vio;
use crate::{net, status};

/// What the control socket and the metrics read.
#[derive(Clone)]
struct Shared {
    iface: Option<String>,
    vrrp: Vec<watch::Receiver<vio::Status>>,
    cluster: Option<watch::Receiver<cio::Status>>,
    dp: Option<Arc<Mutex<Dataplane>>>,
    active: Arc<Mutex<Vec<bool>>>,
}

impl Shared {
    fn report(&self) -> Value {
        let vrrp: Vec<Value> = self
            .vrrp
            .iter()
            .map(|r| serde_json::to_value(&*r.borrow()).unwrap_or(Value::Null))
            .collect();
        let cluster = self.cluster.as_ref().map_or(Value::Null, |r| {
            serde_json::to_value(&*r.borrow()).unwrap_or(Value::Null)
        });
        let fast_path = self.dp.as_ref().map_or(Value::Null, |dp| {
            let dp = dp.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let active = self.vrrp.is_empty() || lock(&self.active).iter().any(|a| *a);
            match dp.counters() {
                Ok(c) => {
                    let targets: Vec<Value> = dp
                        .target_names()
                        .iter()
                        .map(|(i, n, id)| {
                            json!({"index": i, "name": n, "identity": id.to_string(),
                                   "redirects": c.per_target.get(usize::from(*i)).copied().unwrap_or(0)})
                        })
                        .collect();
                    let forwarded = dp.forward_counters().unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "reading forwarded counters");
                        Vec::new()
                    });
                    json!({"active": active, "stats": c.stats, "targets": targets,
                           "forwarded": forwarded})
                }
                Err(e) => json!({"active": active, "error": e.to_string()}),
            }
        });
        json!({"iface": self.iface, "vrrp": vrrp, "cluster": cluster, "fast_path": fast_path})
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The state machine's settings for a configured instance on `iface`.
pub fn vrrp_instance(v: &VrrpCfg, iface: &str) -> io::Result<vio::Instance> {
    let iface = v.iface.clone().unwrap_or_else(|| iface.to_string());
    let v6 = v.vips[0].is_ipv6();
    let primary = match v.source {
        Some(a) => a,
        None => net::primary_address(&iface, v6, &v.vips)?,
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

async fn serve_control(path: PathBuf, shared: Shared, limits: crate::listen::Limits) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "no control socket");
            return;
        }
    };
    info!(path = %path.display(), "control socket");
    crate::listen::serve(listener, limits, move |line| {
        let out = match line.trim() {
            "status" | "" => shared.report(),
            o => json!({"error": format!("unknown request `{o}`")}),
        };
        format!("{out}\n").into_bytes()
    })
    .await;
}

async fn wait_signal() -> io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

/// Runs the node until SIGINT/SIGTERM. `dp` is the attached fast path of `ikelb run`
/// (`None` for `ikelb member`); `iface` its interface.
pub fn run(cfg: &Config, iface: Option<String>, dp: Option<Dataplane>) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cfg, iface, dp))
}

async fn run_async(cfg: &Config, iface: Option<String>, dp: Option<Dataplane>) -> io::Result<()> {
    let dp = dp.map(|d| Arc::new(Mutex::new(d)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let active = Arc::new(Mutex::new(vec![false; cfg.vrrp.len()]));
    let (fail_tx, mut fail_rx) = tokio::sync::mpsc::channel::<String>(4);
    let mut vrrp_tasks = Vec::new();
    let mut vrrp_status = Vec::new();
    for (i, v) in cfg.vrrp.iter().enumerate() {
        let Some(base) = iface.as_deref().or(v.iface.as_deref()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("vrrp[{i}]: no interface"),
            ));
        };
        let inst = vrrp_instance(v, base)?;
        let (tx, rx) = watch::channel(vio::Status::initial(&inst));
        vrrp_status.push(rx);
        let dp = dp.clone();
        let active = active.clone();
        // The fast path answers while any instance is Active.
        let on_role = move |on: bool| {
            let any = {
                let mut a = lock(&active);
                a[i] = on;
                a.iter().any(|x| *x)
            };
            if let Some(dp) = &dp
                && let Err(e) = lock(dp).set_active(any)
            {
                warn!(error = %e, "setting the fast path's active flag");
            }
        };
        let fail = fail_tx.clone();
        let stop = stop_rx.clone();
        vrrp_tasks.push(tokio::spawn(async move {
            let r = vio::run(inst, stop, on_role, tx).await;
            if let Err(e) = &r {
                let _ = fail.send(e.to_string()).await;
            }
        }));
    }
    let mut others = Vec::new();
    let cluster_status = match &cfg.cluster {
        Some(c) => {
            let (tx, rx) = watch::channel(cio::Status::default());
            let table: Option<Box<dyn cio::Table>> =
                dp.clone().map(|d| Box::new(d) as Box<dyn cio::Table>);
            others.push(tokio::spawn({
                let c = c.clone();
                let iface = iface.clone();
                let stop = stop_rx.clone();
                async move {
                    if let Err(e) = cio::run(c, iface, table, stop, tx).await {
                        warn!(error = %e, "load exchange failed");
                    }
                }
            }));
            Some(rx)
        }
        None => None,
    };
    let shared = Shared {
        iface: iface.clone(),
        vrrp: vrrp_status,
        cluster: cluster_status,
        dp: dp.clone(),
        active,
    };
    let sock = cfg.status.socket.clone().unwrap_or_else(|| {
        let fast = shared.dp.as_ref().and(iface.as_deref());
        status::default_socket(fast, cfg.cluster.as_ref().map(|c| c.member_id))
    });
    let limits = cfg.status.limits;
    others.push(tokio::spawn(serve_control(
        sock.clone(),
        shared.clone(),
        limits,
    )));
    if let Some(addr) = cfg.status.metrics {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("metrics on {addr}: {e}")))?;
        info!(%addr, "metrics listener");
        let sh = shared.clone();
        others.push(tokio::spawn(crate::metrics::serve(l, limits, move || {
            sh.report()
        })));
    }
    let sig = tokio::select! {
        s = wait_signal() => s,
        Some(e) = fail_rx.recv() => Err(io::Error::other(format!("VRRP instance failed: {e}"))),
    };
    info!("shutting down");
    let _ = stop_tx.send(true);
    for t in vrrp_tasks {
        if let Err(e) = t.await {
            warn!(error = %e, "VRRP task");
        }
    }
    for t in others {
        t.abort();
    }
    let _ = std::fs::remove_file(&sock);
    sig
}

/// Addresses a config's VRRP instances add, for callers that clean up after a crash.
pub fn vrrp_vips(cfg: &Config) -> Vec<IpAddr> {
    cfg.vrrp
        .iter()
        .flat_map(|v| v.vips.iter().copied())
        .collect()
}
