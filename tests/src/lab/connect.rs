//! Connecting the lab's clients and judging, from the logs of both ends, where each one
//! landed and how far it got.

use std::net::IpAddr;
use std::time::Duration;

use super::Lab;
use super::addr::{service_addr, vip};
use super::nodes::{Client, ClientDaemon};
use super::spec::{ClientKind, Family};
use crate::cmd;
use crate::esp::Esp;

/// How long one client's initiation may take (IKE_SA_INIT, redirect, IKE_AUTH).
pub const INITIATE_TIMEOUT: Duration = Duration::from_secs(20);

/// What happened when a client connected to the VIP.
#[derive(Clone, Debug)]
pub struct ClientResult {
    pub name: String,
    pub kind: ClientKind,
    pub family: Family,
    /// The VIP port it used (500, or 4500 with the non-ESP marker).
    pub port: u16,
    /// The member whose log shows the client's IKE_SA established.
    pub landed_on: Option<String>,
    /// The client logged that it followed a redirect.
    pub client_followed_redirect: bool,
    /// That member logged `client got redirected from <VIP>`.
    pub member_saw_redirect: bool,
    /// That member logged the client's CHILD_SA established (installed, with libipsec).
    pub member_child_up: bool,
    /// The client's own tool (swanctl / whack) reported success.
    pub initiate_ok: bool,
    /// Ping of the service address through the tunnel; `None` when not tried (libreswan,
    /// or no tunnel).
    pub ping: Option<bool>,
    /// The client could not install its ESP SA (libreswan on a kernel without ESP:
    /// "errno 38").
    pub esp_install_failed: bool,
    /// The client's initiation output and log lines from this attempt.
    pub client_log: String,
}

impl ClientResult {
    /// Whether this result is what a working redirect gives (docs/testing.md §1.4, §3.1):
    /// landed on a member that saw the redirect, CHILD_SA up there; strongSwan clients
    /// ping through the tunnel; libreswan clients fail to install ESP exactly when the
    /// kernel lacks it. `Err` says what is missing.
    pub fn verdict(&self, esp: Esp) -> Result<(), String> {
        let mut missing = Vec::new();
        if self.landed_on.is_none() {
            missing.push("landed on no member");
        }
        if !self.client_followed_redirect {
            missing.push("client did not log following a redirect");
        }
        if !self.member_saw_redirect {
            missing.push("member did not log `client got redirected from <VIP>`");
        }
        if !self.member_child_up {
            missing.push("no CHILD_SA established on the member");
        }
        match (self.kind, esp) {
            (ClientKind::StrongSwan, _) => {
                if !self.initiate_ok {
                    missing.push("swanctl --initiate failed");
                }
                if self.ping != Some(true) {
                    missing.push("no ping through the tunnel");
                }
            }
            (ClientKind::Libreswan, Esp::Missing) => {
                if !self.esp_install_failed {
                    missing.push(
                        "libreswan did not fail its ESP install (errno 38) on a kernel without ESP",
                    );
                }
            }
            (ClientKind::Libreswan, Esp::Available) => {
                if !self.initiate_ok {
                    missing.push("whack --initiate failed on a kernel with ESP");
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.name, missing.join("; ")))
        }
    }

    /// One line for humans.
    pub fn summary(&self) -> String {
        format!(
            "{:<6} {:?}/{:?}: landed_on={:?} followed_redirect={} member_saw_redirect={} \
             member_child_up={} initiate_ok={} ping={:?} esp_install_failed={}",
            self.name,
            self.kind,
            self.family,
            self.landed_on,
            self.client_followed_redirect,
            self.member_saw_redirect,
            self.member_child_up,
            self.initiate_ok,
            self.ping,
            self.esp_install_failed
        )
    }
}

impl Lab {
    /// Connects every client to the VIP, one after the other.
    pub fn connect_clients(&self) -> Vec<ClientResult> {
        self.clients
            .iter()
            .map(|c| self.connect_client(c))
            .collect()
    }

    /// Connects every client and panics, naming each failure and showing the lab's
    /// logs, unless every result passes [`ClientResult::verdict`] for `esp`.
    pub fn connect_clients_expect_landed(&self, esp: Esp) -> Vec<ClientResult> {
        let results = self.connect_clients();
        let failures: Vec<String> = results
            .iter()
            .inspect(|r| eprintln!("{}", r.summary()))
            .filter_map(|r| r.verdict(esp).err())
            .collect();
        assert!(
            failures.is_empty(),
            "{}\n\n{}",
            failures.join("\n"),
            self.logs(40)
        );
        results
    }

    /// Connects client `name`; `None` if there is no such client.
    pub fn connect(&self, name: &str) -> Option<ClientResult> {
        self.client(name).map(|c| self.connect_client(c))
    }

    /// Tears down client `name`'s IKE_SA (libreswan: the connection), errors ignored.
    /// libreswan keeps the member as the connection's remote address after a redirect, so
    /// its next initiation goes straight there.
    pub fn disconnect(&self, name: &str) {
        let Some(c) = self.client(name) else { return };
        match &c.daemon {
            ClientDaemon::StrongSwan(ch) => ch.terminate("vip"),
            ClientDaemon::Libreswan(p) => {
                let _ = cmd::output(&mut p.whack(&["--name", "vip", "--down"]));
            }
        }
    }

    /// Tears down client `name`'s IKE_SA and connects it to the VIP again, so it goes
    /// through the balancer once more (libreswan: the connection is deleted and re-added,
    /// since pluto keeps the member it was redirected to as the connection's remote).
    /// `None` if there is no such client.
    pub fn reconnect(&self, name: &str) -> Option<ClientResult> {
        let c = self.client(name)?;
        match &c.daemon {
            ClientDaemon::StrongSwan(ch) => ch.terminate("vip"),
            ClientDaemon::Libreswan(p) => {
                let _ = cmd::output(&mut p.whack(&["--name", "vip", "--delete"]));
                let mut add = c.netns.exec("ipsec");
                add.arg("addconn")
                    .arg("--config")
                    .arg(p.dir.join("ipsec.conf"))
                    .arg("--ctlsocket")
                    .arg(p.dir.join("pluto.ctl"))
                    .arg("vip");
                if let Err(e) = cmd::run(&mut add) {
                    let mut r = self.connect_client(c);
                    r.client_log =
                        format!("re-adding the connection failed: {e:#}\n{}", r.client_log);
                    return Some(r);
                }
            }
        }
        Some(self.connect_client(c))
    }

    fn connect_client(&self, c: &Client) -> ClientResult {
        let marks: Vec<usize> = self.members.iter().map(|m| m.charon.log_mark()).collect();
        let vip = vip(c.spec.family);
        let client_mark = self.config.ikelb_auth.is_some().then(|| match &c.daemon {
            ClientDaemon::StrongSwan(ch) => ch.log_mark(),
            ClientDaemon::Libreswan(p) => p.log_mark(),
        });
        let (initiate_ok, output, client_log) = match &c.daemon {
            ClientDaemon::StrongSwan(ch) => {
                let mark = ch.log_mark();
                let (ok, out) = ch
                    .initiate("svc", INITIATE_TIMEOUT)
                    .unwrap_or_else(|e| (false, format!("{e:#}")));
                (ok, out, ch.log_since(mark))
            }
            ClientDaemon::Libreswan(p) => {
                let mark = p.log_mark();
                let (ok, out) = p
                    .initiate("vip", INITIATE_TIMEOUT)
                    .unwrap_or_else(|e| (false, format!("{e:#}")));
                // whack returns when the exchange ends; the log may lag a little.
                std::thread::sleep(Duration::from_millis(100));
                (ok, out, p.log_since(mark))
            }
        };
        let id = c.spec.id();
        let client_log = match client_mark {
            Some(mark) if self.config.ikelb_auth.is_some() => {
                self.settle_auth_redirect(&marks, &id);
                match &c.daemon {
                    ClientDaemon::StrongSwan(ch) => ch.log_since(mark),
                    ClientDaemon::Libreswan(p) => p.log_since(mark),
                }
            }
            _ => client_log,
        };
        let mut landed_on = None;
        let mut member_saw_redirect = false;
        let mut member_child_up = false;
        for (m, mark) in self.members.iter().zip(marks) {
            let log = m.charon.log_since(mark);
            let Some(at) = log
                .lines()
                .position(|l| l.contains("established between") && l.contains(&format!("[{id}]")))
            else {
                continue;
            };
            landed_on = Some(m.name.clone());
            member_saw_redirect = log.contains(&format!("client got redirected from {vip}"));
            member_child_up = log
                .lines()
                .skip(at)
                .any(|l| l.contains("CHILD_SA svc{") && l.contains("established"));
            break;
        }
        let both = format!("{output}\n{client_log}");
        let client_followed_redirect = match c.spec.kind {
            ClientKind::StrongSwan => both.contains("redirected to"),
            ClientKind::Libreswan => both.contains("redirect to new gateway"),
        };
        let esp_install_failed = c.spec.kind == ClientKind::Libreswan
            && (both.contains("errno 38") || both.contains("Function not implemented"));
        let ping =
            (c.spec.kind == ClientKind::StrongSwan && initiate_ok).then(|| self.ping_service(c));
        ClientResult {
            name: c.spec.name.clone(),
            kind: c.spec.kind,
            family: c.spec.family,
            port: c.spec.port,
            landed_on,
            client_followed_redirect,
            member_saw_redirect,
            member_child_up,
            initiate_ok,
            ping,
            esp_install_failed,
            client_log: both,
        }
    }

    /// With ikelb in auth mode the initiation may report success before the client has
    /// moved (the INFORMATIONAL redirect follows IKE_AUTH): wait up to 5 s for a member
    /// to log the client's IKE_SA and CHILD_SA before judging.
    fn settle_auth_redirect(&self, marks: &[usize], id: &str) {
        let tag = format!("[{id}]");
        let _ = cmd::wait_for(
            "the redirected client's SAs at a member",
            Duration::from_secs(5),
            || {
                Ok(self.members.iter().zip(marks).any(|(m, &mark)| {
                    let log = m.charon.log_since(mark);
                    log.lines()
                        .any(|l| l.contains("established between") && l.contains(&tag))
                        && log
                            .lines()
                            .any(|l| l.contains("CHILD_SA svc{") && l.contains("established"))
                }))
            },
        );
    }

    /// Pings the service address from the client's inner address (through the tunnel).
    pub fn ping_service(&self, c: &Client) -> bool {
        let target: IpAddr = service_addr(c.spec.family);
        crate::ping::ping(&c.netns, c.inner(), target, 3, Duration::from_secs(1)).unwrap_or(false)
    }
}
