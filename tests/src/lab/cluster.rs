//! The lab as a VRRP cluster ([`Balancer::IkelbCluster`]): no static VIP owner. The
//! first `candidates` members run `ikelb run` with VRRPv3 (priority 200, 190, …, 10 cs)
//! for the IPv4 VIP, the others `ikelb member`; every member reports the IKE SAs of its
//! own charon over VICI, and the master redirects each new client to the member with
//! the most headroom (itself included). The `lb` namespace holds no VIP: it is a plain
//! host on the segment (`10.200.0.2`), from which tests send raw requests.
//!
//! Node configs set `rate-per-source` far above the default: the test clients send
//! every request from one address, faster than one real client ever would.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Lab;
use super::addr::vip;
use super::nodes::ClusterNode;
use super::spec::Family;
use crate::cmd::{self, tail};
use crate::daemon::Daemon;

/// Load-exchange key of the lab (not a secret: namespaces only).
const KEY: &str = "ikelb-lab-cluster-key-0123456789";
/// VRID of the lab's VIP.
pub const VRID: u8 = 51;

impl Lab {
    pub(super) fn start_cluster(&mut self, bin: &std::path::Path, candidates: u8) -> Result<()> {
        if !bin.exists() {
            bail!(
                "ikelb binary {} not found: build it with `cargo xtask build` or set IKELB_BIN",
                bin.display()
            );
        }
        let report_ms = self.config.cluster_report_ms;
        let vip4 = vip(Family::V4);
        for m in &self.members {
            let dir = self.run_dir.join(format!("{}-ikelb", m.name));
            std::fs::create_dir_all(&dir)?;
            let priority = (m.index <= candidates).then(|| 210 - 10 * m.index);
            let socket = dir.join("ikelb.sock");
            let vici = m.charon.dir.join("charon.vici");
            let mut t = format!(
                "[dataplane]\niface = \"{}\"\nrate-per-source = 1000000\n",
                m.iface
            );
            if let Some(p) = priority {
                let fwd = if self.config.ikelb_forward {
                    "no-redirect = \"forward\"\n"
                } else {
                    ""
                };
                t.push_str(&format!(
                    "xdp-mode = \"skb\"\n\n[[vip]]\naddress = \"{vip4}\"\n{fwd}\n[[vrrp]]\n\
                     vrid = {VRID}\npriority = {p}\ninterval-cs = 10\nvips = [\"{vip4}\"]\n"
                ));
            }
            t.push_str(&format!(
                "\n[cluster]\nmember-id = {}\ninterval-ms = {report_ms}\nidentities = [\"{}\"]\n\
                 vici = \"{}\"\ncapacity = {}\n\n[[cluster.key]]\nid = 1\nsecret = \"{KEY}\"\n\n\
                 [status]\nsocket = \"{}\"\n",
                m.index,
                m.v4(),
                vici.display(),
                // Unequal capacities, so the shares differ visibly, and large enough
                // that the tests' request streams (redirects count against a member
                // until its next report) stay below the default 90 % limit.
                200 * u32::from(m.index),
                socket.display()
            ));
            let config = dir.join("ikelb.toml");
            std::fs::write(&config, t)?;
            let mut c = m.netns.nsenter(&bin.to_string_lossy());
            if priority.is_some() {
                c.arg("run");
            } else {
                c.arg("member");
            }
            c.arg("--config").arg(&config).env("NO_COLOR", "1").env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
            let name = format!("ikelb {}", m.name);
            let daemon = Daemon::spawn(&name, c, &dir.join("ikelb.log"))?;
            self.cluster.push(ClusterNode {
                member: m.name.clone(),
                priority,
                daemon,
                socket,
                config,
            });
        }
        // Ready: a master holds the VIP and every candidate sees every member.
        let n = self.members.len();
        let lab = &*self;
        cmd::wait_for(
            "a cluster master with the VIP, every member in each candidate's table",
            Duration::from_secs(20),
            || {
                let all = lab
                    .cluster
                    .iter()
                    .filter(|c| c.priority.is_some())
                    .all(|c| {
                        lab.cluster_status(&c.member).is_ok_and(|r| {
                            r["cluster"]["members"].as_array().map(Vec::len) == Some(n)
                        })
                    });
                // Settled: only the highest priority holds the VIP (preempt).
                let holders = lab.vip_holders();
                if !(all && holders.len() == 1 && holders[0] == "gw1") {
                    return Ok(false);
                }
                // And the master's slot table gives every member a share.
                Ok(lab.cluster_status("gw1").is_ok_and(|r| {
                    r["cluster"]["members"].as_array().is_some_and(|ms| {
                        ms.iter()
                            .all(|m| m["slots"].as_u64().is_some_and(|s| s > 0))
                    })
                }))
            },
        )
        .with_context(|| self.cluster_logs(30))
    }

    /// The member whose interface holds the VIP (the VRRP master), if any: of several
    /// (a killed master keeps its address), the one whose ikelb is alive.
    pub fn cluster_master(&self) -> Option<String> {
        let holders = self.vip_holders();
        holders
            .iter()
            .find(|h| self.cluster_status(h).is_ok())
            .or(holders.first())
            .cloned()
    }

    /// The candidates whose interface holds the VIP.
    pub fn vip_holders(&self) -> Vec<String> {
        let want = format!("inet {}/", vip(Family::V4));
        self.cluster
            .iter()
            .filter(|c| c.priority.is_some())
            .filter(|c| {
                self.member(&c.member).is_some_and(|m| {
                    m.netns
                        .ip(&["-o", "addr", "show", "dev", &m.iface])
                        .is_ok_and(|o| o.contains(&want))
                })
            })
            .map(|c| c.member.clone())
            .collect()
    }

    /// The status report of member `name`'s ikelb.
    pub fn cluster_report(&self, name: &str) -> Result<lb_userspace::status::Report> {
        let c = self
            .cluster
            .iter()
            .find(|c| c.member == name)
            .with_context(|| format!("no ikelb on {name}"))?;
        Ok(lb_userspace::status::query(&c.socket)?)
    }

    /// `ikelb status --json` of member `name`'s ikelb, as JSON.
    pub fn cluster_status(&self, name: &str) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(self.cluster_report(name)?)?)
    }

    /// The status table of the current master (or of the first live candidate).
    pub fn cluster_status_text(&self) -> String {
        let name = self.cluster_master().or_else(|| {
            self.cluster
                .iter()
                .find(|c| c.priority.is_some() && self.cluster_status(&c.member).is_ok())
                .map(|c| c.member.clone())
        });
        match name.map(|n| (self.cluster_report(&n), n)) {
            Some((Ok(r), n)) => format!(
                "[ikelb status on {n}]\n{}",
                lb_userspace::status::render(&r)
            ),
            Some((Err(e), n)) => format!("ikelb status on {n}: {e:#}\n"),
            None => "no ikelb answers\n".into(),
        }
    }

    /// SIGKILLs the master's ikelb (its charon and tunnels stay); returns its name.
    /// The process is reaped when the lab goes down or the node is restarted.
    pub fn kill_cluster_master(&self) -> Option<String> {
        let name = self.cluster_master()?;
        let c = self.cluster.iter().find(|c| c.member == name)?;
        c.daemon.signal(libc::SIGKILL);
        Some(name)
    }

    /// Restarts member `name`'s ikelb after [`Lab::kill_cluster_master`] (or a crash).
    pub fn restart_cluster_node(&mut self, name: &str) -> Result<()> {
        let bin = match &self.config.balancer {
            super::Balancer::IkelbCluster { bin, .. } => bin.clone(),
            _ => bail!("the lab is not a cluster"),
        };
        let m = self
            .member(name)
            .with_context(|| format!("no member {name}"))?;
        let c = self
            .cluster
            .iter()
            .find(|c| c.member == name)
            .with_context(|| format!("no ikelb on {name}"))?;
        let mut cmd = m.netns.nsenter(&bin.to_string_lossy());
        cmd.arg(if c.priority.is_some() {
            "run"
        } else {
            "member"
        })
        .arg("--config")
        .arg(&c.config)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
        let log = c.daemon.log.clone();
        if let Some(c) = self.cluster.iter_mut().find(|c| c.member == name) {
            c.daemon.stop();
        }
        let d = Daemon::spawn(&format!("ikelb {name}"), cmd, &log)?;
        if let Some(c) = self.cluster.iter_mut().find(|c| c.member == name) {
            c.daemon = d;
        }
        Ok(())
    }

    /// The command that kills the master's ikelb by hand (for the lab's printout).
    pub fn kill_master_command(&self) -> Option<String> {
        let name = self.cluster_master()?;
        let c = self.cluster.iter().find(|c| c.member == name)?;
        Some(format!("kill -KILL {}   # ikelb on {name}", c.daemon.pid()))
    }

    /// Each member's ikelb log tail.
    pub fn cluster_logs(&self, lines: usize) -> String {
        let mut s = String::new();
        for c in &self.cluster {
            s.push_str(&format!(
                "==== ikelb {} ({})\n{}\n",
                c.member,
                c.daemon.log.display(),
                tail(&c.daemon.log, lines)
            ));
        }
        s
    }
}
