//! The dataplane task: the only writer of the BPF maps. VRRP roles, slot tables from
//! the load exchange or the static targets, VIP sets from a reload and the userspace
//! responder's redirect counts arrive as [`Cmd`]s over one channel and are applied in
//! order. A map write that fails ends the task with an error, and so the daemon: a
//! slot table that silently stopped following the cluster would send clients to dead
//! or full members.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::config::Vip;
use crate::dataplane::forward::FwdRow;
use crate::dataplane::stats::{Counters, PinnedCounters};
use crate::dataplane::{Dataplane, DataplaneError};
use crate::target::{Identity, Owner, Target};

/// What the dataplane task applies.
#[derive(Debug)]
pub enum Cmd {
    /// VRRP instance `instance` became Active (`true`) or not; the fast path answers
    /// while any instance is Active.
    Role { instance: usize, active: bool },
    /// A new target set with weights (a table rebuild).
    Targets(Vec<Target>),
    /// A new VIP set (a reload); the reply says whether it was installed.
    Vips {
        vips: Vec<Vip>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A redirect the userspace responder sent to this target index.
    Count(u16),
}

/// Target owners by map index, as `ikelb status` and the load exchange read them.
pub type Names = Vec<(u16, Owner, Identity)>;

/// What the other tasks hold of the dataplane: the command channel and read-only views.
#[derive(Clone)]
pub struct Handle {
    /// The interface XDP is attached to (its pins are `dataplane::pin_dir_for(iface)`).
    pub iface: String,
    pub tx: mpsc::UnboundedSender<Cmd>,
    pub names: watch::Receiver<Names>,
    pub active: watch::Receiver<bool>,
    counters: Arc<PinnedCounters>,
    pins: std::path::PathBuf,
}

impl Handle {
    /// The fast path's counters, read from the pinned maps.
    pub fn counters(&self) -> Result<Counters, DataplaneError> {
        self.counters.read()
    }

    /// The non-zero forwarded counters per VIP, member and kind, read from the pinned
    /// maps (the dataplane task may be busy writing; reads need no turn).
    pub fn forwarded(&self) -> Result<Vec<FwdRow>, DataplaneError> {
        let names: Vec<(u16, String)> = self
            .names
            .borrow()
            .iter()
            .map(|(i, n, _)| (*i, n.to_string()))
            .collect();
        crate::dataplane::forward::read_pinned(&self.pins, &names)
    }

    /// A counting callback for [`crate::dataplane::choice::SlotChooser`]. (Once the
    /// dataplane task is gone the daemon is stopping, and a count has nowhere to go.)
    pub fn counter(&self) -> Box<dyn Fn(u16) + Send> {
        let tx = self.tx.clone();
        Box::new(move |idx| {
            let _ = tx.send(Cmd::Count(idx));
        })
    }
}

/// The load exchange's tables go to the dataplane task; its redirect counts come from
/// the pinned counters.
impl crate::cluster::io::Table for Handle {
    fn redirects(&mut self) -> std::collections::BTreeMap<u32, u64> {
        match self.counters() {
            Ok(c) => crate::cluster::io::redirects_by_member(&self.names.borrow(), &c.per_target),
            Err(e) => {
                warn!(error = %e, "reading per-target counters");
                std::collections::BTreeMap::new()
            }
        }
    }

    fn install(&mut self, targets: Vec<Target>) -> std::io::Result<()> {
        self.tx
            .send(Cmd::Targets(targets))
            .map_err(|_| std::io::Error::other("the dataplane task is gone"))
    }
}

/// The task's inputs, built before the task is spawned so the handle exists at once.
pub struct Task {
    dp: Dataplane,
    rx: mpsc::UnboundedReceiver<Cmd>,
    names: watch::Sender<Names>,
    active: watch::Sender<bool>,
    roles: Vec<bool>,
    /// Where the target names go for `ikelb stats` (bpffs holds only BPF objects).
    names_file: std::path::PathBuf,
}

/// The task's command channel, made before the task so VRRP can start first.
pub type Channel = (mpsc::UnboundedSender<Cmd>, mpsc::UnboundedReceiver<Cmd>);

/// Builds the task for an attached `dp` and its handle: `roles` holds the VRRP
/// instances' starting roles (Active only for one resumed after a handover; none:
/// always active), `chan` the command channel. The maps' pins must exist
/// (`Dataplane::load` with a pin dir). The name file stays when the task ends, for a
/// handover; a stop removes it.
pub fn task(
    dp: Dataplane,
    iface: &str,
    roles: Vec<bool>,
    names_file: std::path::PathBuf,
    chan: Channel,
) -> Result<(Task, Handle), DataplaneError> {
    let dir = dp
        .pin_dir()
        .ok_or_else(|| DataplaneError::Io("the daemon's dataplane has no pins".into()))?
        .to_path_buf();
    let counters = Arc::new(PinnedCounters::open(&dir)?);
    let (tx, rx) = chan;
    let (names_tx, names) = watch::channel(dp.target_names());
    let (active_tx, active) = watch::channel(roles.is_empty() || roles.contains(&true));
    let t = Task {
        dp,
        rx,
        names: names_tx,
        active: active_tx,
        roles,
        names_file,
    };
    t.write_names();
    Ok((
        t,
        Handle {
            iface: iface.to_string(),
            tx,
            names,
            active,
            counters,
            pins: dir,
        },
    ))
}

impl Task {
    /// Applies commands until every sender is gone; the first failed map write is the
    /// error. The dataplane is handed back so the caller detaches XDP last.
    pub async fn run(mut self) -> (Dataplane, Result<(), DataplaneError>) {
        let r = self.serve().await;
        (self.dp, r)
    }

    async fn serve(&mut self) -> Result<(), DataplaneError> {
        self.dp
            .set_active(self.roles.is_empty() || self.roles.contains(&true))?;
        while let Some(cmd) = self.rx.recv().await {
            match cmd {
                Cmd::Role { instance, active } => {
                    if let Some(r) = self.roles.get_mut(instance) {
                        *r = active;
                    }
                    let any = self.roles.iter().any(|a| *a);
                    self.dp.set_active(any)?;
                    self.active.send_replace(any);
                }
                Cmd::Targets(t) => {
                    self.dp.set_targets(&t)?;
                    self.names.send_replace(self.dp.target_names());
                    self.write_names();
                }
                Cmd::Vips { vips, reply } => {
                    let r = self.dp.set_vips(&vips);
                    let _ = reply.send(r.as_ref().map(|_| ()).map_err(ToString::to_string));
                    r?;
                    info!(vips = vips.len(), "VIPs installed");
                }
                Cmd::Count(idx) => {
                    // A lost count skews the in-flight estimate a little; the table
                    // itself is fine, so this is no reason to stop.
                    if let Err(e) = self.dp.count_redirect(idx) {
                        warn!(error = %e, "counting a userspace redirect");
                    }
                }
            }
        }
        Ok(())
    }

    fn write_names(&self) {
        let text: String = self
            .dp
            .target_names()
            .iter()
            .map(|(i, n, id)| format!("{i} {n} {id}\n"))
            .collect();
        let p = &self.names_file;
        let r = p
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(p, text));
        if let Err(e) = r {
            warn!(path = %p.display(), error = %e, "cannot record target names");
        }
    }
}
