//! The `[status]` section: the control socket (its path and who may read status),
//! `/metrics`, and the limits both listeners share.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::cluster::Ctx;

/// The validated `[status]` section.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StatusCfg {
    /// Control socket; default `/run/ikelb/<iface>.sock` (or `member.sock`).
    pub socket: Option<PathBuf>,
    /// Prometheus `/metrics` listener; off when unset. A loopback address unless
    /// `metrics-remote = true`.
    pub metrics: Option<SocketAddr>,
    /// Limits of the control socket and of `/metrics`, each.
    pub limits: crate::listen::Limits,
    /// The group that may read status on the control socket (mode 0660 then, else
    /// 0600); every other command stays root's.
    pub group: Option<Group>,
}

/// A group by name and id (resolved when the configuration is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawStatus {
    socket: Option<Spanned<String>>,
    metrics: Option<Spanned<String>>,
    #[serde(default)]
    metrics_remote: bool,
    max_connections: Option<Spanned<i64>>,
    read_timeout_ms: Option<Spanned<i64>>,
    max_request_line: Option<Spanned<i64>>,
    group: Option<Spanned<String>>,
}

impl Ctx<'_> {
    pub(super) fn status(&self, s: RawStatus) -> Result<StatusCfg, ConfigError> {
        let metrics = match &s.metrics {
            None => None,
            Some(m) => {
                // A bare port: loopback, the safe place for an unauthenticated listener.
                let addr: SocketAddr = match m.get_ref().parse::<u16>() {
                    Ok(port) => SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
                    Err(_) => m.get_ref().parse().map_err(|_| {
                        self.err(
                            m.span(),
                            "status.metrics",
                            "expected port or address:port, e.g. \"9640\" or \"127.0.0.1:9640\"",
                        )
                    })?,
                };
                if !addr.ip().is_loopback() && !s.metrics_remote {
                    return Err(self.err(
                        m.span(),
                        "status.metrics",
                        format!(
                            "{addr} is not a loopback address and /metrics has no \
                             authentication: set `metrics-remote = true` to serve it there"
                        ),
                    ));
                }
                Some(addr)
            }
        };
        let default = crate::listen::Limits::default();
        let number = |v: &Option<Spanned<i64>>, key: &str, max: i64| {
            v.as_ref()
                .map(|v| {
                    Some(*v.get_ref())
                        .filter(|n| (1..=max).contains(n))
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| self.err(v.span(), key, format!("must be 1..={max}")))
                })
                .transpose()
        };
        let limits = crate::listen::Limits {
            max_connections: number(&s.max_connections, "status.max-connections", 4096)?
                .unwrap_or(default.max_connections),
            read_timeout: number(&s.read_timeout_ms, "status.read-timeout-ms", 600_000)?
                .map_or(default.read_timeout, |ms| {
                    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
                }),
            max_line: number(&s.max_request_line, "status.max-request-line", 65_536)?
                .unwrap_or(default.max_line),
        };
        let group = s
            .group
            .map(|g| {
                let gid = gid_of(g.get_ref())
                    .ok_or_else(|| self.err(g.span(), "status.group", "no such group"))?;
                Ok::<_, ConfigError>(Group {
                    name: g.into_inner(),
                    gid,
                })
            })
            .transpose()?;
        Ok(StatusCfg {
            socket: s.socket.map(|p| p.into_inner().into()),
            metrics,
            limits,
            group,
        })
    }
}

/// The id of the group `name` (getgrnam_r), or `None` when there is none.
fn gid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed group struct, a buffer with its length and an out pointer, all
    // living across the call; the result points into `grp`/`buf` only.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut out);
        (rc == 0 && !out.is_null()).then_some(grp.gr_gid)
    }
}
