//! The control socket's server side: the socket file (root's, mode 0600, or 0660 with
//! the `[status] group` that may read status), the status document, and the commands
//! handed to the supervisor.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

use super::dataplane::Handle;
use crate::cluster::io as cio;
use crate::config::Group;
use crate::control::{Command, Response, parse_request};
use crate::listen::{self, Limits};
use crate::status::{FastPath, ReloadState, Report, TargetRow};
use crate::vrrp::io as vio;

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
    pub fn report(&self) -> Report {
        let fast_path = self.dp.as_ref().map(|dp| {
            let mut fp = FastPath {
                active: *dp.active.borrow(),
                ..FastPath::default()
            };
            match dp.counters() {
                Ok(c) => {
                    fp.targets = dp
                        .names
                        .borrow()
                        .iter()
                        .map(|(i, n, id)| TargetRow {
                            index: *i,
                            name: n.to_string(),
                            identity: id.to_string(),
                            redirects: c.per_target.get(usize::from(*i)).copied().unwrap_or(0),
                        })
                        .collect();
                    fp.stats = c.stats.iter().map(|&(n, v)| (n.to_string(), v)).collect();
                }
                Err(e) => fp.error = Some(e.to_string()),
            }
            match dp.forwarded() {
                Ok(rows) => fp.forwarded = rows,
                Err(e) => fp.forwarded_error = Some(e.to_string()),
            }
            fp
        });
        Report {
            iface: self.iface.clone(),
            config: self
                .config
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            vrrp: self.vrrp.iter().map(|r| r.borrow().clone()).collect(),
            cluster: self.cluster.as_ref().map(|r| r.borrow().clone()),
            fast_path,
        }
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
        return Response::ok(serde_json::to_value(shared.report()).unwrap_or(Value::Null));
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
            reply.send(Response::ok(serde_json::json!("done"))).unwrap();
        });
        let r = answer(Some(0), reload, &shared, &tx).await;
        assert_eq!(r.result, serde_json::json!("done"));
        sup.await.unwrap();
    }
}
