//! The lab (docs/testing.md §2): one L2 segment, a bridge namespace with a veth to each of the
//! load balancer `lb` (owning the VIP), the members `gw1..gwN` (strongSwan responders with
//! kernel-libipsec) and the clients (strongSwan or libreswan initiators, one namespace
//! each). The end-to-end tests and `cargo xtask lab` share it.
//!
//! ```no_run
//! use ikelb_tests::lab::{Balancer, ClientSpec, Lab, LabConfig};
//! let cfg = LabConfig {
//!     balancer: Balancer::ikelb_default(),
//!     clients: ClientSpec::standard_set(),
//!     ..LabConfig::default()
//! };
//! let lab = Lab::up(cfg)?;
//! for r in lab.connect_clients() {
//!     println!("{} landed on {:?}", r.name, r.landed_on);
//! }
//! # anyhow::Ok(())
//! ```

mod addr;
mod balancer;
mod cluster;
mod connect;
mod eap;
mod eap_config;
mod nodes;
pub mod pki;
mod report;
mod spec;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use addr::*;
pub use cluster::VRID;
pub use connect::ClientResult;
pub use nodes::{Client, ClientDaemon, ClusterNode, Member, RadiusNode};
pub use report::{LIBRESWAN_NO_ESP, results_table, stats_line};
pub use spec::{
    Balancer, CertKey, ClientKind, ClientSpec, EapLab, EapMethod, Family, LabConfig, ikelb_bin,
};

use self::nodes::{member_swanctl, member_swanctl_cert, start_client};
use crate::cmd::tail;
use crate::daemon::Daemon;
use crate::netns::{self, Netns, Veth};
use crate::peers::libreswan::Pluto;
use crate::peers::strongswan::Charon;

/// A running lab. Dropping it stops every daemon by pid, then deletes the namespaces.
#[derive(Debug)]
pub struct Lab {
    // Drop order matters: daemons, then veths, then namespaces.
    pub clients: Vec<Client>,
    /// The members' ikelb in a [`Balancer::IkelbCluster`] lab.
    pub cluster: Vec<ClusterNode>,
    pub members: Vec<Member>,
    /// RADIUS servers of an EAP lab.
    pub radius: Vec<RadiusNode>,
    lb_daemons: Vec<Daemon>,
    lb_plutos: Vec<Pluto>,
    veths: Vec<Veth>,
    pub lb: Netns,
    pub bridge: Netns,
    /// The lb's interface (unique host-wide: ikelb pins maps under its name).
    pub lb_iface: String,
    /// The bridge-side peer of `lb_iface`.
    pub lb_peer: String,
    pub run_dir: PathBuf,
    keep_run_dir: bool,
    pub config: LabConfig,
}

impl Lab {
    /// Builds the topology and starts the balancer, members and clients (about a second).
    pub fn up(config: LabConfig) -> Result<Lab> {
        if !crate::is_root() {
            bail!("the lab needs root (network namespaces, XDP, IKE daemons)");
        }
        if !(1..=8).contains(&config.members) {
            bail!("members must be 1..=8, not {}", config.members);
        }
        let mut seen = std::collections::HashSet::new();
        for c in &config.clients {
            if !seen.insert(c.name.clone()) || c.name.is_empty() || c.name.len() > 12 {
                bail!("client names must be unique, 1..=12 bytes: {:?}", c.name);
            }
            if c.port != 500 && c.port != 4500 {
                bail!("client {}: port must be 500 or 4500", c.name);
            }
        }
        if config.clients.len() > 100 {
            bail!("at most 100 clients");
        }
        netns::remove_stale();
        let tag = netns::unique_tag();
        let run_dir = match &config.run_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("ikelb-lab-{tag}")),
        };
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("mkdir {}", run_dir.display()))?;
        let bridge = Netns::new("br")?;
        let lb = Netns::new("lb")?;
        let mut lab = Lab {
            clients: Vec::new(),
            cluster: Vec::new(),
            members: Vec::new(),
            radius: Vec::new(),
            lb_daemons: Vec::new(),
            lb_plutos: Vec::new(),
            veths: Vec::new(),
            lb,
            bridge,
            lb_iface: format!("lb{tag}"),
            lb_peer: "vlb".into(),
            run_dir,
            keep_run_dir: config.keep_run_dir,
            config,
        };
        match lab.build() {
            Ok(()) => Ok(lab),
            Err(e) => {
                // Keep the logs the error points at.
                lab.keep_run_dir = true;
                Err(e.context(format!("lab up (files in {})", lab.run_dir.display())))
            }
        }
    }

    fn build(&mut self) -> Result<()> {
        self.bridge.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ])?;
        self.bridge.ip(&["link", "set", "br0", "up"])?;
        // The lb.
        let lb_iface = self.lb_iface.clone();
        let lb_peer = self.lb_peer.clone();
        let cluster = matches!(self.config.balancer, Balancer::IkelbCluster { .. });
        if cluster {
            // No static owner: the lb is a plain host that sends test requests.
            self.plug(None, &lb_iface, &lb_peer, 2)?;
            self.lb.addr_add(
                &lb_iface,
                &format!("{}/{}", probe_host_addr(), prefix_len(Family::V4)),
            )?;
            self.lb.tx_csum_off(&lb_iface)?;
        } else {
            self.plug(None, &lb_iface, &lb_peer, 1)?;
            if self.config.ikelb_forward {
                // The members own the VIP too and drop ARP requests from it as from a
                // martian source: the lb resolves them from an address of its own,
                // the primary one of the subnet (added first).
                self.lb.addr_add(
                    &lb_iface,
                    &format!("{}/{}", segment_addr(Family::V4, 2), prefix_len(Family::V4)),
                )?;
            }
            for fam in [Family::V4, Family::V6] {
                self.lb
                    .addr_add(&lb_iface, &format!("{}/{}", vip(fam), prefix_len(fam)))?;
            }
        }
        let cert = self.config.ikelb_auth_cert;
        if let Some(kind) = cert {
            pki::generate(&pki::pki_dir(&self.run_dir), &self.config, kind)?;
        }
        let eap = self.config.eap.clone();
        if let Some(e) = &eap {
            self.start_radius(e)?;
        }
        // Members.
        let tag = lb_iface.trim_start_matches("lb").to_string();
        for i in 1..=u8::try_from(self.config.members).unwrap_or(1) {
            let name = format!("gw{i}");
            let ns = Netns::new(&name)?;
            let iface = if cluster {
                format!("g{i}{tag}")
            } else {
                "eth0".to_string()
            };
            self.plug(Some(&ns), &iface, &format!("v{name}"), member_host(i))?;
            for fam in [Family::V4, Family::V6] {
                let host = member_host(i);
                ns.addr_add(
                    &iface,
                    &format!("{}/{}", segment_addr(fam, host), prefix_len(fam)),
                )?;
                ns.addr_add("lo", &format!("{}/{}", service_addr(fam), host_len(fam)))?;
                if self.config.ikelb_forward {
                    // Direct server return: the member answers forwarded clients from
                    // the VIP (docs/architecture.md §6).
                    ns.addr_add("lo", &format!("{}/{}", vip(fam), host_len(fam)))?;
                }
            }
            // The service address is on every member's lo: only answer ARP for eth0's.
            ns.sysctl("net.ipv4.conf.all.arp_ignore", "1")?;
            if self.config.ikelb_forward {
                // Never announce the VIP (on lo) as ARP sender address: a client that
                // learnt the member's MAC for the VIP would bypass the balancer.
                ns.sysctl("net.ipv4.conf.all.arp_announce", "2")?;
            }
            let dir = self.run_dir.join(&name);
            let opts = match &eap {
                Some(e) => eap_config::member_options(&self.config.charon, e),
                None => self.config.charon.clone(),
            };
            let charon = Charon::start(&ns, &name, &dir, &opts)?;
            if cert.is_some() {
                pki::install_for_charon(&pki::pki_dir(&self.run_dir), &name, &dir)?;
                charon.load(&member_swanctl_cert(&name, eap.is_some()))?;
            } else {
                charon.load(&member_swanctl())?;
            }
            self.members.push(Member {
                name,
                index: i,
                iface,
                charon,
                netns: ns,
            });
        }
        // Clients.
        let specs = self.config.clients.clone();
        for (i, spec) in specs.into_iter().enumerate() {
            let index = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let ns = Netns::new(&spec.name)?;
            let host = client_host(index);
            self.plug(Some(&ns), "eth0", &format!("vc{index}"), host)?;
            for fam in [Family::V4, Family::V6] {
                ns.addr_add(
                    "eth0",
                    &format!("{}/{}", segment_addr(fam, host), prefix_len(fam)),
                )?;
                ns.addr_add(
                    "lo",
                    &format!("{}/{}", inner_addr(fam, index), host_len(fam)),
                )?;
            }
            ns.tx_csum_off("eth0")?;
            let dir = self.run_dir.join(&spec.name);
            let cert = cert.map(|k| (k, pki::pki_dir(&self.run_dir)));
            let daemon = start_client(&ns, &spec, index, &dir, &self.config.charon, cert)
                .with_context(|| format!("client {}", spec.name))?;
            self.clients.push(Client {
                spec,
                index,
                daemon,
                netns: ns,
            });
        }
        self.start_balancer()
    }

    /// A veth from `ns:iface` to the bridge (`peer`, enslaved to br0), MAC from `host`.
    fn plug(&mut self, ns: Option<&Netns>, iface: &str, peer: &str, host: u16) -> Result<()> {
        let mac = mac_for(host);
        let ns = ns.unwrap_or(&self.lb);
        let v = Veth::new(ns, iface, Some(&mac), &self.bridge, peer, None)?;
        self.bridge.ip(&["link", "set", peer, "master", "br0"])?;
        self.veths.push(v);
        Ok(())
    }

    /// Member by name (`gw1`…).
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Client by name.
    pub fn client(&self, name: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.spec.name == name)
    }

    /// The member that owns segment address `a`, if any.
    pub fn member_by_addr(&self, a: IpAddr) -> Option<&Member> {
        self.members.iter().find(|m| m.v4() == a || m.v6() == a)
    }

    /// Paths and tails of every log, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        let mut s = String::new();
        let mut add = |title: &str, p: &Path| {
            s.push_str(&format!(
                "==== {title} ({})\n{}\n",
                p.display(),
                tail(p, lines)
            ));
        };
        for d in &self.lb_daemons {
            add(&d.name, &d.log);
        }
        for p in &self.lb_plutos {
            add(&p.name, &p.log_path());
        }
        for m in &self.members {
            add(&m.name, &m.charon.log_path());
        }
        for r in &self.radius {
            if let Some(s) = &r.server {
                add(&r.name, &s.log_path());
            }
        }
        for c in &self.clients {
            match &c.daemon {
                ClientDaemon::StrongSwan(ch) => add(&c.spec.name, &ch.log_path()),
                ClientDaemon::Libreswan(p) => add(&c.spec.name, &p.log_path()),
            }
        }
        s
    }

    /// A human description: namespaces, addresses, how to get in, where the logs are.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "lab in {}\n  lb      netns {:<24} {} VIP {} / {} (bridge peer {} in {})\n",
            self.run_dir.display(),
            self.lb.name(),
            self.lb_iface,
            vip(Family::V4),
            vip(Family::V6),
            self.lb_peer,
            self.bridge.name()
        );
        for m in &self.members {
            s.push_str(&format!(
                "  {:<7} netns {:<24} {} / {}  charon log {}\n",
                m.name,
                m.netns.name(),
                m.v4(),
                m.v6(),
                m.charon.log_path().display()
            ));
        }
        for c in &self.clients {
            let log = match &c.daemon {
                ClientDaemon::StrongSwan(ch) => ch.log_path(),
                ClientDaemon::Libreswan(p) => p.log_path(),
            };
            s.push_str(&format!(
                "  {:<7} netns {:<24} {:?} {:?}:{} from {} (inner {})  log {}\n",
                c.spec.name,
                c.netns.name(),
                c.spec.kind,
                c.spec.family,
                c.spec.port,
                c.addr(),
                c.inner(),
                log.display()
            ));
        }
        s.push_str("  enter one with: ip netns exec <netns> bash  (nsenter --net=/run/netns/<netns> for bpffs)\n");
        s
    }

    /// Where ikelb pins the lb interface's maps (`bpftool map dump pinned <dir>/IKELB_STATS`).
    pub fn pin_dir(&self) -> PathBuf {
        Path::new("/sys/fs/bpf/ikelb").join(&self.lb_iface)
    }

    /// The target-name file `ikelb run` writes beside the pins (for `ikelb stats`).
    pub fn target_names_file(&self) -> PathBuf {
        Path::new("/run/ikelb").join(format!("{}.targets", self.lb_iface))
    }

    /// Keep the run directory (configs, logs) after teardown.
    pub fn keep_logs(&mut self) {
        self.keep_run_dir = true;
    }

    /// Stops everything and deletes the namespaces (also what `Drop` does).
    pub fn down(self) {}
}

/// Removes what an `ikelb run` on each interface leaves when it is killed (SIGKILL skips
/// its cleanup): the pin directory and the target-name file. Interface names in tests
/// are unique host-wide, so these are the test's own.
pub struct IkelbPinsGuard(pub Vec<String>);

impl Drop for IkelbPinsGuard {
    fn drop(&mut self) {
        for iface in &self.0 {
            let _ = std::fs::remove_dir_all(Path::new("/sys/fs/bpf/ikelb").join(iface));
            for ext in ["targets", "handover"] {
                let _ =
                    std::fs::remove_file(Path::new("/run/ikelb").join(format!("{iface}.{ext}")));
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The cluster's ikelb first: they remove the VIP and detach.
        while let Some(mut c) = self.cluster.pop() {
            c.daemon.stop();
        }
        for c in &mut self.clients {
            match &mut c.daemon {
                ClientDaemon::StrongSwan(ch) => ch.stop(),
                ClientDaemon::Libreswan(p) => p.stop(),
            }
        }
        for m in &mut self.members {
            m.charon.stop();
        }
        for r in &mut self.radius {
            if let Some(s) = &mut r.server {
                s.stop();
            }
            if let Some(d) = &mut r.fake {
                d.stop();
            }
        }
        for p in &mut self.lb_plutos {
            p.stop();
        }
        // ikelb run first (it detaches), then attach-pass.
        while let Some(mut d) = self.lb_daemons.pop() {
            d.stop();
        }
        // Our interface name is unique to this lab, so its pin directory is ours: remove
        // what a crashed or failed ikelb may have left there.
        let pins = self.pin_dir();
        if pins.exists() {
            let _ = std::fs::remove_dir_all(&pins);
        }
        let _ = std::fs::remove_file(self.target_names_file());
        // Cluster nodes run on the members' interfaces (a killed master leaves its pins).
        drop(IkelbPinsGuard(
            self.members.iter().map(|m| m.iface.clone()).collect(),
        ));
        let keep = self.keep_run_dir
            || std::thread::panicking()
            || std::env::var_os("IKELB_TESTS_KEEP").is_some();
        if keep {
            eprintln!("lab: logs kept in {}", self.run_dir.display());
        } else if self.config.run_dir.is_none() {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}
