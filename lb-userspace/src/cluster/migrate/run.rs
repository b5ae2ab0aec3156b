//! The driver of a [`Migration`]: a thread of its own (the VICI client blocks) that,
//! every interval, lists charon's SAs, sends a batch of redirects, logs the batch and
//! publishes the progress, until nothing is left, `undrain` or shutdown stops it (the
//! [`Handle`] is dropped), or charon cannot be asked.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use super::{Migration, Options, Progress, State};
use crate::cluster::Member;
use crate::vici::{Client, Redirect, RedirectAnswer, ViciError};

/// Bounds every VICI read and write.
const VICI_TIMEOUT: Duration = Duration::from_secs(5);

/// A running (or finished) migration, owned by the load exchange.
pub struct Handle {
    /// Dropping it stops the thread at its next check.
    _stop: mpsc::Sender<()>,
    progress: watch::Receiver<Progress>,
    members: watch::Sender<Vec<Member>>,
}

impl Handle {
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    pub fn running(&self) -> bool {
        self.progress.borrow().state == State::Running
    }

    /// The members as the exchange knows them now.
    pub fn set_members(&self, members: &[Member]) {
        self.members.send_replace(members.to_vec());
    }
}

/// What a migration needs to start.
pub struct Start {
    /// charon's VICI socket.
    pub vici: PathBuf,
    pub own_id: u32,
    pub opts: Options,
    pub slow_start_reports: u32,
    pub members: Vec<Member>,
}

/// Called once, after the first listing: the SAs to move, or why charon could not be
/// asked.
pub type First = Box<dyn FnOnce(Result<Progress, String>) + Send>;

/// Starts the migration's thread. If it cannot be started, `first` gets that error.
pub fn start(s: Start, first: First) -> std::io::Result<Handle> {
    let (stop_tx, stop) = mpsc::channel();
    let (progress_tx, progress) = watch::channel(Progress::default());
    let (members, members_rx) = watch::channel(s.members.clone());
    let mut m = Migration::new(s.own_id, s.opts, s.slow_start_reports);
    progress_tx.send_replace(m.progress().clone());
    // The thread takes `first`; a spawn that fails hands it back through here.
    let slot = Arc::new(Mutex::new(Some(first)));
    let in_thread = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("ikelb-migrate".into())
        .spawn(move || {
            let mut first = in_thread.lock().unwrap_or_else(PoisonError::into_inner).take();
            let end = drive(&s, &mut m, &stop, &members_rx, &progress_tx, &mut first);
            let (state, error) = match end {
                Ok(state) => (state, None),
                Err(e) => (State::Failed, Some(e.to_string())),
            };
            m.finish(state, error.clone());
            let p = m.progress();
            match &error {
                Some(e) => warn!(error = %e, migrated = p.migrated, failed = p.failed, remaining = p.remaining, "migration failed"),
                None => info!(state = ?state, total = p.total, migrated = p.migrated, failed = p.failed, ended = p.ended, skipped = p.skipped, remaining = p.remaining, "migration ended"),
            }
            // Only a first listing that failed leaves the control request unanswered.
            if let Some(f) = first.take() {
                f(Err(p.error.clone().unwrap_or_else(|| "the migration ended".into())));
            }
            progress_tx.send_replace(p.clone());
        });
    if let Err(e) = spawned {
        if let Some(f) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
            f(Err(format!("no thread for the migration: {e}")));
        }
        return Err(e);
    }
    Ok(Handle {
        _stop: stop_tx,
        progress,
        members,
    })
}

/// Passes until the migration ends; the state it ended in.
fn drive(
    s: &Start,
    m: &mut Migration,
    stop: &mpsc::Receiver<()>,
    members: &watch::Receiver<Vec<Member>>,
    progress: &watch::Sender<Progress>,
    first: &mut Option<First>,
) -> Result<State, ViciError> {
    let mut was_waiting = false;
    loop {
        let mut c = Client::connect(&s.vici, VICI_TIMEOUT)?;
        m.observe(Instant::now(), &c.list_sas()?);
        if let Some(f) = first.take() {
            let p = m.progress();
            info!(total = p.total, skipped = p.skipped, batch = s.opts.batch, interval = ?s.opts.interval, "migration started");
            f(Ok(p.clone()));
        }
        if m.done() {
            return Ok(State::Done);
        }
        let orders = m.next_batch(&members.borrow());
        let mut to: std::collections::BTreeMap<u32, u32> = Default::default();
        for o in &orders {
            if matches!(stop.try_recv(), Err(TryRecvError::Disconnected)) {
                return Ok(State::Stopped);
            }
            let a = c.redirect(&Redirect {
                ike_id: o.ike_id,
                peer_ip: o.peer,
                gateway: o.gateway.to_string(),
            })?;
            let verdict = verdict(&a);
            if let Err(e) = &verdict {
                warn!(ike_id = o.ike_id, peer = %o.peer, member = o.member, error = %e, "redirect refused");
            }
            m.answered(Instant::now(), o, verdict);
            *to.entry(o.member).or_insert(0) += 1;
        }
        let p = m.progress();
        if !orders.is_empty() {
            info!(sent = orders.len(), targets = ?to, migrated = p.migrated, failed = p.failed, ended = p.ended, remaining = p.remaining, in_flight = p.in_flight, "migration batch");
        }
        if p.waiting && !was_waiting {
            warn!(
                remaining = p.remaining,
                "migration waits: no other member has headroom"
            );
        }
        was_waiting = p.waiting;
        progress.send_replace(p.clone());
        match stop.recv_timeout(s.opts.interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(State::Stopped),
        }
    }
}

/// charon's answer as [`Migration::answered`] takes it: the number of SAs a redirect
/// job was queued for, 0 when the SA is gone, or why it refused.
pub(super) fn verdict(a: &RedirectAnswer) -> Result<u32, String> {
    if a.success {
        return Ok(a.matches);
    }
    match a.errmsg.as_deref() {
        Some(m) if a.matches == 0 && m.starts_with("no matching") => Ok(0),
        Some(m) => Err(m.to_string()),
        None => Err("refused without a reason".into()),
    }
}
