//! Reload (`ikelb reload`, SIGHUP): the file is read and fully validated, everything
//! that can fail is prepared (the new VIPs' IKE sockets bound, the responder's settings
//! and the cluster's keyring built), and only then is the difference handed to the
//! tasks, none of which can refuse it. So an invalid file, or one that changes what
//! only a restart can change, leaves the daemon exactly as it was. XDP stays attached
//! throughout: VIPs, targets and weights are map writes.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use super::dataplane::{Cmd, Handle};
use crate::cluster::io as cio;
use crate::config::{Config, VrrpCfg};
use crate::ike::io::{Control, Listener, bind_vips};
use crate::status::{LastReload, ReloadState};

/// The running IKE responder, as a reload reaches it.
pub struct Ike {
    pub tx: mpsc::Sender<Control>,
    /// Whether the key log is on (test only), kept across reloads.
    pub log_keys: bool,
}

/// What a reload reaches: the configuration in force and the tasks' inputs.
pub struct Running {
    pub path: PathBuf,
    pub cfg: Config,
    pub dp: Option<Handle>,
    pub cluster: Option<mpsc::Sender<cio::Cmd>>,
    pub ike: Option<Ike>,
    pub priorities: Vec<watch::Sender<u8>>,
    pub state: Arc<Mutex<ReloadState>>,
}

/// The first thing in `new` that only a restart can change, named by its key.
pub fn restart_only(old: &Config, new: &Config) -> Option<String> {
    if old.iface != new.iface {
        return Some("dataplane.iface".into());
    }
    if old.xdp_mode != new.xdp_mode {
        return Some("dataplane.xdp-mode".into());
    }
    if old.rate_limit != new.rate_limit {
        return Some("dataplane.rate-per-source / burst-per-source".into());
    }
    if old.forward_encap != new.forward_encap {
        return Some("dataplane.forward-encap".into());
    }
    if old.status != new.status {
        return Some("[status]".into());
    }
    // The RADIUS client's socket and servers live in the IKE driver, set at its start.
    if old.ike.radius != new.ike.radius {
        return Some("[ike.radius]".into());
    }
    if old.vrrp.len() != new.vrrp.len() {
        return Some("the number of [[vrrp]] instances".into());
    }
    for (i, (a, b)) in old.vrrp.iter().zip(&new.vrrp).enumerate() {
        let same_but_priority = VrrpCfg {
            priority: a.priority,
            ..b.clone()
        };
        if *a != same_but_priority {
            return Some(format!("vrrp[{i}] (only its priority reloads)"));
        }
        if let Err(e) = crate::vrrp::check_priority_change(a.priority, b.priority) {
            return Some(format!("vrrp[{i}].priority: {e}"));
        }
    }
    match (&old.cluster, &new.cluster) {
        (None, None) => None,
        (Some(a), Some(b)) => crate::cluster::restart_only(a, b).map(String::from),
        _ => Some("[cluster] (adding or removing it)".into()),
    }
}

/// What changed, for the log and the answer.
pub fn summary(old: &Config, new: &Config) -> String {
    let addrs = |c: &Config| c.vips.iter().map(|v| v.address).collect::<Vec<IpAddr>>();
    let (a, b) = (addrs(old), addrs(new));
    let mut out = Vec::new();
    let added = b.iter().filter(|x| !a.contains(x)).count();
    let removed = a.iter().filter(|x| !b.contains(x)).count();
    if added + removed > 0 || old.vips != new.vips {
        out.push(format!("vips +{added} -{removed}"));
    }
    if old.targets != new.targets {
        out.push(format!("targets {}", new.targets.len()));
    }
    if old.ike != new.ike {
        out.push(format!("ike ({} peers)", new.ike.peers.len()));
    }
    if let (Some(x), Some(y)) = (&old.cluster, &new.cluster)
        && x != y
    {
        let ids: Vec<u16> = y.keys.iter().map(|k| k.0).collect();
        out.push(format!("cluster (keys {ids:?}, send key {})", y.send_key));
    }
    for (i, (x, y)) in old.vrrp.iter().zip(&new.vrrp).enumerate() {
        if x.priority != y.priority {
            out.push(format!(
                "vrrp[{i}] priority {} -> {}",
                x.priority, y.priority
            ));
        }
    }
    if out.is_empty() {
        "no change".into()
    } else {
        out.join(", ")
    }
}

impl Running {
    /// Reads the file and applies it all or nothing; the answer says what changed or
    /// why nothing did. Either way the result is recorded for `ikelb status`.
    pub async fn reload(&mut self) -> Result<String, String> {
        let r = self.try_reload().await;
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &r {
            Ok(m) => {
                st.generation += 1;
                info!(generation = st.generation, change = %m, "configuration reloaded");
            }
            Err(e) => warn!(error = %e, "reload refused: nothing changed"),
        }
        st.last = Some(LastReload {
            ok: r.is_ok(),
            at,
            message: match &r {
                Ok(m) | Err(m) => m.clone(),
            },
        });
        let generation = st.generation;
        r.map(|m| format!("generation {generation}: {m}"))
    }

    async fn try_reload(&mut self) -> Result<String, String> {
        let new = Config::load(&self.path).map_err(|e| e.to_string())?;
        if let Some(k) = restart_only(&self.cfg, &new) {
            return Err(format!(
                "{}: {k} changed, which needs a restart",
                self.path.display()
            ));
        }
        // `ikelb run` (with or without XDP) serves VIPs; `ikelb member` has none.
        if (self.dp.is_some() || self.ike.is_some()) && new.vips.is_empty() {
            return Err(format!("{}: no [[vip]] left", self.path.display()));
        }
        if let Some(c) = &new.cluster {
            cio::exchange_config(c)
                .map_err(|e| format!("{}: [cluster]: {e}", self.path.display()))?;
        }
        // Everything that can fail, before anything changes.
        let ike = match &self.ike {
            Some(ike) => Some((ike, self.prepare_ike(&new, ike.log_keys)?)),
            None if !new.ike.auth_vips.is_empty() => {
                return Err(
                    "auth-mode VIPs need the IKE responder, which did not start (its ports \
                     could not be bound): restart"
                        .into(),
                );
            }
            None => None,
        };
        let summary = summary(&self.cfg, &new);
        // From here on nothing refuses: a task that is gone means the daemon is
        // stopping (its failure ends the process), not a half-applied reload that runs on.
        if let Some(dp) = &self.dp {
            let (reply, rx) = oneshot::channel();
            dp.tx
                .send(Cmd::Vips {
                    vips: new.vips.clone(),
                    reply,
                })
                .map_err(|_| "the dataplane task is gone".to_string())?;
            // A failed map write ends the daemon (the dataplane task returns it).
            rx.await
                .map_err(|_| "the dataplane task is gone".to_string())??;
            if new.cluster.is_none() {
                dp.tx
                    .send(Cmd::Targets(super::static_entries(&new)))
                    .map_err(|_| "the dataplane task is gone".to_string())?;
            }
        }
        if let (Some(tx), Some(c)) = (&self.cluster, &new.cluster) {
            let (reply, rx) = oneshot::channel();
            tx.send(cio::Cmd::Reload(
                Box::new(c.clone()),
                new.targets.clone(),
                reply,
            ))
            .await
            .map_err(|_| "the load exchange is gone".to_string())?;
            rx.await
                .map_err(|_| "the load exchange is gone".to_string())?;
        }
        if let Some((ike, (config, keep, add))) = ike {
            ike.tx
                .send(Control::Reconfigure { config, keep, add })
                .await
                .map_err(|_| "the IKE responder is gone".to_string())?;
        }
        for (tx, v) in self.priorities.iter().zip(&new.vrrp) {
            tx.send_replace(v.priority);
        }
        self.cfg = new;
        Ok(summary)
    }

    /// The responder's new settings and socket set: sockets of VIPs that stay are kept,
    /// new VIPs' are bound here (so a bind failure refuses the reload).
    fn prepare_ike(
        &self,
        new: &Config,
        log_keys: bool,
    ) -> Result<(crate::ike::ResponderConfig, Vec<SocketAddr>, Vec<Listener>), String> {
        let old: Vec<IpAddr> = self.cfg.vips.iter().map(|v| v.address).collect();
        let fresh: Vec<IpAddr> = new
            .vips
            .iter()
            .map(|v| v.address)
            .filter(|a| !old.contains(a))
            .collect();
        let add = bind_vips(&fresh).map_err(|e| format!("binding a new VIP's IKE ports: {e}"))?;
        let keep: Vec<SocketAddr> = bind_addrs(new)
            .into_iter()
            .filter(|a| old.contains(&a.ip()))
            .collect();
        let chooser = super::chooser(new, self.dp.as_ref()).map_err(|e| e.to_string())?;
        Ok((
            new.ike.responder_config(&new.vips, chooser, log_keys),
            keep,
            add,
        ))
    }
}

/// The logical IKE addresses of a configuration's VIPs (500 and 4500 each).
fn bind_addrs(c: &Config) -> Vec<SocketAddr> {
    use lb_common::wire::ike::{PORT_IKE, PORT_NATT};
    c.vips
        .iter()
        .flat_map(|v| {
            [
                SocketAddr::new(v.address, PORT_IKE),
                SocketAddr::new(v.address, PORT_NATT),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[dataplane]\niface = \"eth1\"\n[[vip]]\naddress = \"192.0.2.1\"\n\
        [[target]]\nname = \"a\"\nidentity = \"198.51.100.1\"\n\
        [[vrrp]]\nvrid = 5\npriority = 100\nvips = [\"192.0.2.1\"]\n";

    fn parse(t: &str) -> Config {
        Config::parse(t).unwrap()
    }

    #[test]
    fn what_reloads_and_what_needs_a_restart() {
        let old = parse(BASE);
        let more = parse(&format!(
            "{BASE}[[target]]\nname = \"b\"\nidentity = \"198.51.100.2\"\nweight = 3\n"
        ));
        assert_eq!(restart_only(&old, &more), None);
        assert_eq!(summary(&old, &more), "targets 2");
        let prio = parse(&BASE.replace("priority = 100", "priority = 150"));
        assert_eq!(restart_only(&old, &prio), None);
        assert_eq!(summary(&old, &prio), "vrrp[0] priority 100 -> 150");
        let owner = parse(&BASE.replace("priority = 100", "priority = 255"));
        assert!(
            restart_only(&old, &owner)
                .unwrap()
                .contains("vrrp[0].priority")
        );
        let vrid = parse(&BASE.replace("vrid = 5", "vrid = 6"));
        assert!(restart_only(&old, &vrid).unwrap().contains("vrrp[0]"));
        let iface = parse(&BASE.replace("eth1", "eth2"));
        assert_eq!(restart_only(&old, &iface).unwrap(), "dataplane.iface");
        let rate = parse(&BASE.replace("eth1\"\n", "eth1\"\nrate-per-source = 5\n"));
        assert!(
            restart_only(&old, &rate)
                .unwrap()
                .contains("rate-per-source")
        );
        let encap = parse(&BASE.replace("eth1\"\n", "eth1\"\nforward-encap = \"ipip\"\n"));
        assert_eq!(
            restart_only(&old, &encap).unwrap(),
            "dataplane.forward-encap"
        );
        let mut radius = old.clone();
        radius.ike.radius = Some(crate::config::RadiusCfg {
            servers: Vec::new(),
            timeout: std::time::Duration::from_secs(1),
            retries: 0,
            revive_after: std::time::Duration::from_secs(30),
            nas_identifier: "ikelb".into(),
        });
        assert_eq!(restart_only(&old, &radius).unwrap(), "[ike.radius]");
        assert_eq!(summary(&old, &old), "no change");
        let v2 = parse(&format!("{BASE}[[vip]]\naddress = \"192.0.2.2\"\n"));
        assert_eq!(summary(&old, &v2), "vips +1 -0");
        assert_eq!(bind_addrs(&v2).len(), 4);
    }
}
