//! What answers at the VIP: ikelb (with the pass-through program on the bridge-side
//! peer), libreswan's global-redirect, or nothing.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Lab;
use super::addr::{MEMBER_ID, member_host, segment_addr, vip};
use super::spec::{Balancer, Family, LabConfig};
use crate::cmd::{self, tail};
use crate::daemon::Daemon;
use crate::peers::PSK;
use crate::peers::libreswan::{self, Pluto};

impl Lab {
    pub(super) fn start_balancer(&mut self) -> Result<()> {
        match self.config.balancer.clone() {
            Balancer::None => Ok(()),
            Balancer::LibreswanGlobalRedirect => {
                for fam in [Family::V4, Family::V6] {
                    if !self.clients.iter().any(|c| c.spec.family == fam) {
                        continue;
                    }
                    let targets: Vec<String> = self
                        .members
                        .iter()
                        .map(|m| match fam {
                            Family::V4 => m.v4().to_string(),
                            Family::V6 => m.v6().to_string(),
                        })
                        .collect();
                    let name = format!("lb-{}", fam_str(fam));
                    let setup = libreswan::global_redirect_setup(&vip(fam).to_string(), &targets);
                    let dir = self.run_dir.join(&name);
                    let p = Pluto::start(&self.lb, &name, &dir, &setup, "", "")?;
                    self.lb_plutos.push(p);
                }
                Ok(())
            }
            Balancer::Ikelb { bin, xdp_mode } => self.start_ikelb(&bin, &xdp_mode),
            Balancer::IkelbCluster { bin, candidates } => self.start_cluster(&bin, candidates),
        }
    }

    fn start_ikelb(&mut self, bin: &Path, xdp_mode: &str) -> Result<()> {
        if !bin.exists() {
            bail!(
                "ikelb binary {} not found: build it with `cargo xtask build` or set IKELB_BIN",
                bin.display()
            );
        }
        let dir = self.run_dir.join("lb");
        std::fs::create_dir_all(&dir)?;
        // XDP_TX on a veth is only delivered when the peer runs an XDP program.
        let mut pass = self.bridge.nsenter(&bin.to_string_lossy());
        pass.args(["attach-pass", "--iface", &self.lb_peer])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        let mut pass = Daemon::spawn("ikelb attach-pass", pass, &dir.join("attach-pass.log"))?;
        // The contract has no readiness line for attach-pass: wait until the program shows.
        let peer = self.lb_peer.clone();
        let bridge = &self.bridge;
        cmd::wait_for(
            "XDP program on the lb's bridge-side peer",
            Duration::from_secs(10),
            || {
                if let Some(st) = pass.exited() {
                    bail!(
                        "ikelb attach-pass exited ({st}):\n{}",
                        tail(&dir.join("attach-pass.log"), 20)
                    );
                }
                Ok(bridge
                    .ip(&["-d", "link", "show", "dev", &peer])
                    .is_ok_and(|s| s.contains("prog/xdp")))
            },
        )?;
        self.lb_daemons.push(pass);
        if self.config.ikelb_forward_encap {
            self.start_decap(bin)?;
        }
        let conf = dir.join("ikelb.toml");
        let pki = super::pki::pki_dir(&self.run_dir);
        std::fs::write(&conf, self.config.ikelb_toml_at(xdp_mode, &pki))?;
        let mut run = self.lb.nsenter(&bin.to_string_lossy());
        run.args(["run", "--iface", &self.lb_iface, "--config"])
            .arg(&conf)
            .args(["--xdp-mode", xdp_mode]);
        if self.config.ikelb_auth.is_some() {
            // ikelb creates its key log anew and refuses an existing file: clear the
            // one a previous start in this run directory left.
            let _ = std::fs::remove_file(self.ike_keylog_path());
            run.arg("--ike-keylog").arg(self.ike_keylog_path());
        }
        run.env("NO_COLOR", "1").env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        let mut d = Daemon::spawn("ikelb run", run, &dir.join("ikelb.log"))?;
        // The contract: an info line whose message is `ready` once XDP is attached (match
        // the word, not "already").
        let ready = d.wait_log_line("`ready`", Duration::from_secs(30), |l| {
            l.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == "ready")
        });
        self.lb_daemons.push(d);
        ready
    }

    /// `ikelb member --decap` on every member, before the balancer resolves them.
    fn start_decap(&mut self, bin: &Path) -> Result<()> {
        for m in &self.members {
            let mut c = m.netns.nsenter(&bin.to_string_lossy());
            c.args(["member", "--decap", "--iface", &m.iface])
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1");
            let log = self.run_dir.join(&m.name).join("decap.log");
            let mut d = Daemon::spawn(&format!("ikelb decap {}", m.name), c, &log)?;
            let ready = d.wait_log_line("`ready`", Duration::from_secs(10), |l| {
                l.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w == "ready")
            });
            self.lb_daemons.push(d);
            ready?;
        }
        Ok(())
    }

    /// Where ikelb writes its IKE keys (tshark `ikev2_decryption_table` rows) when the
    /// VIPs are in auth mode ([`LabConfig::ikelb_auth`]).
    pub fn ike_keylog_path(&self) -> std::path::PathBuf {
        self.run_dir.join("lb").join("ike-keys.uat")
    }

    /// The ikelb binary the lab runs, if its balancer is ikelb.
    pub fn ikelb_bin(&self) -> Option<&Path> {
        match &self.config.balancer {
            Balancer::Ikelb { bin, .. } => Some(bin),
            _ => None,
        }
    }

    fn ikelb_stats_cmd(&self, json: bool) -> Result<std::process::Command> {
        let Some(bin) = self.ikelb_bin() else {
            bail!("the lab's balancer is not ikelb");
        };
        let mut c = self.lb.nsenter(&bin.to_string_lossy());
        c.args(["stats", "--iface", &self.lb_iface]);
        if json {
            c.arg("--json");
        }
        Ok(c)
    }

    /// `ikelb stats --iface <lb> --json`, parsed.
    pub fn ikelb_stats(&self) -> Result<serde_json::Value> {
        let out = cmd::run(&mut self.ikelb_stats_cmd(true)?)?;
        serde_json::from_str(out.trim()).with_context(|| format!("parse ikelb stats: {out}"))
    }

    /// `ikelb stats --iface <lb>` as ikelb prints it for people.
    pub fn ikelb_stats_text(&self) -> Result<String> {
        cmd::run(&mut self.ikelb_stats_cmd(false)?)
    }

    /// `ikelb status --iface <lb> --json` (the daemon's control socket), parsed.
    pub fn ikelb_status(&self) -> Result<serde_json::Value> {
        let Some(bin) = self.ikelb_bin() else {
            bail!("the lab's balancer is not ikelb");
        };
        let mut c = self.lb.nsenter(&bin.to_string_lossy());
        c.args(["status", "--iface", &self.lb_iface, "--json"]);
        let out = cmd::run(&mut c)?;
        serde_json::from_str(out.trim()).with_context(|| format!("parse ikelb status: {out}"))
    }

    /// How XDP is attached to the lb interface, as `ip -d link` says: `xdp` (native),
    /// `xdpgeneric` (skb), `xdpoffload`, `xdpmulti`; `None` when no program is attached.
    pub fn lb_xdp_attachment(&self) -> Result<Option<String>> {
        let out = self.lb.ip(&["-d", "link", "show", "dev", &self.lb_iface])?;
        Ok(out
            .split_whitespace()
            .find(|w| matches!(*w, "xdp" | "xdpgeneric" | "xdpoffload" | "xdpmulti"))
            .map(str::to_string))
    }
}

fn fam_str(f: Family) -> &'static str {
    match f {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

impl LabConfig {
    /// The ikelb config the lab uses: both VIPs, one target per member and family
    /// (`gwN` for IPv4, `gwN-v6` for IPv6, so a client is sent within its family).
    pub fn ikelb_toml(&self, xdp_mode: &str) -> String {
        self.ikelb_toml_at(xdp_mode, Path::new("pki"))
    }

    /// [`LabConfig::ikelb_toml`] with the certificates of
    /// [`LabConfig::ikelb_auth_cert`] in `pki` ([`super::pki::generate`]).
    pub fn ikelb_toml_at(&self, xdp_mode: &str, pki: &Path) -> String {
        use super::pki::{cert_path, key_path};
        let mut s = format!("[dataplane]\nxdp-mode = \"{xdp_mode}\"\n");
        if self.ikelb_forward_encap {
            s.push_str("forward-encap = \"ipip\"\n");
        }
        s.push('\n');
        for fam in [Family::V4, Family::V6] {
            s.push_str(&format!("[[vip]]\naddress = \"{}\"\n", vip(fam)));
            if let Some(m) = &self.ikelb_auth {
                s.push_str(&format!("redirect = \"auth\"\nauth-redirect = \"{m}\"\n"));
            }
            if self.ikelb_forward {
                s.push_str("no-redirect = \"forward\"\n");
            }
            s.push('\n');
        }
        if self.ikelb_auth.is_some() {
            // ikelb answers as the members do: same identity, same PSK.
            s.push_str(&format!("[ike]\nidentity = \"{MEMBER_ID}\"\n"));
            if self.ikelb_auth_cert.is_some() {
                // The members' identity in a certificate of the lab CA.
                for (k, p) in [
                    ("certificate", cert_path(pki, "ikelb")),
                    ("private-key", key_path(pki, "ikelb")),
                    ("ca", cert_path(pki, "ca")),
                ] {
                    s.push_str(&format!("{k} = \"{}\"\n", p.display()));
                }
            }
            s.push('\n');
            // EAP clients share the `%any` peer below.
            for c in self.clients.iter().filter(|c| c.eap.is_none()) {
                let auth = match self.ikelb_auth_cert {
                    Some(_) => "auth = \"certificate\"".to_string(),
                    None => format!("psk = \"{PSK}\""),
                };
                s.push_str(&format!("[[ike.peer]]\nid = \"{}\"\n{auth}\n\n", c.id()));
            }
            s.push_str(&self.ikelb_toml_eap(pki));
        }
        for i in 1..=u8::try_from(self.members).unwrap_or(1) {
            for (fam, suffix) in [(Family::V4, ""), (Family::V6, "-v6")] {
                s.push_str(&format!(
                    "[[target]]\nname = \"gw{i}{suffix}\"\nidentity = \"{}\"\n\n",
                    segment_addr(fam, member_host(i))
                ));
            }
        }
        s
    }
}
