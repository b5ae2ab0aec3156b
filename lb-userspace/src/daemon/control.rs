//! The control socket's server side: the socket file (root's, mode 0600, or 0660 with
//! the `[status] group` that may read status), the status document, and the commands
//! handed to the supervisor.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

use super::dataplane::Handle;
use crate::cluster::io as cio;
use crate::config::Group;
use crate::control::{Command, Response, parse_request};
use crate::listen::{self, Limits};
use crate::vrrp::io as vio;

/// The outcome of the latest reload, for `ikelb status`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReloadState {
    /// Starts at 1 with the configuration read at startup; +1 per applied reload.
    pub generation: u64,
    /// `None` before the first reload.
    pub last: Option<LastReload>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct LastReload {
    pub ok: bool,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// What changed, or why nothing did.
    pub message: String,
}

/// What `status` and `/metrics` read: snapshots the tasks publish.
#[derive(Clone)]
pub struct Shared {
    pub iface: Option<String>,
    pub vrrp: Vec<watch::Receiver<vio::Status>>,
    pub cluster: Option<watch::Receiver<cio::Status>>,
    pub dp: Option<Handle>,
    pub config: Arc<Mutex<ReloadState>>,
}

impl Shared {
    pub fn report(&self) -> Value {
        let vrrp: Vec<Value> = self
            .vrrp
            .iter()
            .map(|r| serde_json::to_value(&*r.borrow()).unwrap_or(Value::Null))
            .collect();
        let cluster = self.cluster.as_ref().map_or(Value::Null, |r| {
            serde_json::to_value(&*r.borrow()).unwrap_or(Value::Null)
        });
        let fast_path = self.dp.as_ref().map_or(Value::Null, |dp| {
            let active = *dp.active.borrow();
            match dp.counters() {
                Ok(c) => {
                    let targets: Vec<Value> = dp
                        .names
                        .borrow()
                        .iter()
                        .map(|(i, n, id)| {
                            json!({"index": i, "name": n.to_string(), "identity": id.to_string(),
                                   "redirects": c.per_target.get(usize::from(*i)).copied().unwrap_or(0)})
                        })
                        .collect();
                    json!({"active": active, "stats": c.stats, "targets": targets})
                }
                Err(e) => json!({"active": active, "error": e.to_string()}),
            }
        });
        let config = {
            let c = self
                .config
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            serde_json::to_value(&*c).unwrap_or(Value::Null)
        };
        json!({"iface": self.iface, "config": config, "vrrp": vrrp, "cluster": cluster, "fast_path": fast_path})
    }
}

/// A command for the supervisor, with where its answer goes.
pub type Request = (Command, oneshot::Sender<Response>);

/// Binds the control socket at `path`: root's, mode 0600, or group `group` and 0660.
/// The mode is set before anyone can connect (the socket is created under a umask
/// that leaves it private).
pub fn bind(path: &Path, group: Option<&Group>) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // SAFETY: umask only changes this process's file-creation mask; restored at once.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let l = l?;
    if let Some(g) = group {
        // The owner is the daemon (root); only the group changes.
        std::os::unix::fs::chown(path, None, Some(g.gid))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    }
    info!(path = %path.display(), group = group.map(|g| g.name.as_str()), "control socket");
    Ok(l)
}

/// Serves the control socket: `status` is answered here; the other commands go to the
/// supervisor, from root only.
pub async fn serve(
    listener: UnixListener,
    limits: Limits,
    shared: Shared,
    to_supervisor: mpsc::Sender<Request>,
) {
    listen::serve(listener, limits, move |uid, line| {
        let shared = shared.clone();
        let tx = to_supervisor.clone();
        async move { answer(uid, &line, &shared, &tx).await.to_line() }
    })
    .await;
}

async fn answer(
    uid: Option<u32>,
    line: &str,
    shared: &Shared,
    tx: &mpsc::Sender<Request>,
) -> Response {
    let req = match parse_request(line) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if req.cmd.changes_state() && uid != Some(0) {
        return Response::error("only root may change the daemon; the group may read status");
    }
    if req.cmd == Command::Status {
        return Response::ok(shared.report());
    }
    let (reply, rx) = oneshot::channel();
    if tx.send((req.cmd, reply)).await.is_err() {
        return Response::error("the daemon is stopping");
    }
    rx.await
        .unwrap_or_else(|_| Response::error("the daemon is stopping"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_is_private_and_commands_need_root() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let l = bind(&path, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(l);
        // With a group (ours, which needs no privilege to set): 0660 and that group.
        use std::os::unix::fs::MetadataExt;
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        let g = Group {
            name: "ours".into(),
            gid,
        };
        let l = bind(&path, Some(&g)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.permissions().mode() & 0o777, meta.gid()),
            (0o660, gid)
        );
        drop(l);
        let shared = Shared {
            iface: None,
            vrrp: Vec::new(),
            cluster: None,
            dp: None,
            config: Arc::new(Mutex::new(ReloadState {
                generation: 1,
                last: None,
            })),
        };
        let (tx, mut rx) = mpsc::channel(1);
        let status = r#"{"v":1,"cmd":"status"}"#;
        let r = answer(Some(1000), status, &shared, &tx).await;
        assert!(r.ok);
        assert_eq!(r.result["config"]["generation"], 1);
        let reload = r#"{"v":1,"cmd":"reload"}"#;
        let r = answer(Some(1000), reload, &shared, &tx).await;
        assert!(!r.ok && r.error.unwrap().contains("only root"));
        let r = answer(None, reload, &shared, &tx).await;
        assert!(!r.ok);
        // Root's reload goes to the supervisor, whose answer comes back.
        let sup = tokio::spawn(async move {
            let (cmd, reply) = rx.recv().await.unwrap();
            assert_eq!(cmd, Command::Reload);
            reply.send(Response::ok(json!("done"))).unwrap();
        });
        let r = answer(Some(0), reload, &shared, &tx).await;
        assert_eq!(r.result, json!("done"));
        sup.await.unwrap();
    }
}
