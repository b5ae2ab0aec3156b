//! The running nodes of a lab and how members and clients are started: a member's
//! charon and its swanctl config, a client's strongSwan or libreswan, a member's ikelb
//! in a cluster, a RADIUS server.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::addr::*;
use super::eap_config;
use super::pki;
use super::spec::{CertKey, ClientKind, ClientSpec, Family};
use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::peers::PSK;
use crate::peers::freeradius::FreeRadius;
use crate::peers::libreswan::{self, ClientConn, Pluto};
use crate::peers::strongswan::{Charon, CharonOptions, Conn, swanctl_conf, swanctl_conf_eap};

/// The daemon a client runs.
#[derive(Debug)]
pub enum ClientDaemon {
    StrongSwan(Charon),
    Libreswan(Pluto),
}

/// A client namespace and its daemon.
#[derive(Debug)]
pub struct Client {
    pub spec: ClientSpec,
    pub index: u8,
    pub daemon: ClientDaemon,
    pub netns: Netns,
}

impl Client {
    /// The client's address on the segment (of its family).
    pub fn addr(&self) -> IpAddr {
        segment_addr(self.spec.family, client_host(self.index))
    }
    /// Its inner address (on `lo`), the local traffic selector.
    pub fn inner(&self) -> IpAddr {
        inner_addr(self.spec.family, self.index)
    }
}

/// A member namespace and its charon.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub index: u8,
    /// Its segment interface: `eth0`, or unique host-wide in a cluster (ikelb pins maps
    /// under the interface name).
    pub iface: String,
    pub charon: Charon,
    pub netns: Netns,
}

impl Member {
    pub fn v4(&self) -> IpAddr {
        segment_addr(Family::V4, member_host(self.index))
    }
    pub fn v6(&self) -> IpAddr {
        segment_addr(Family::V6, member_host(self.index))
    }
}

/// One member's ikelb.
#[derive(Debug)]
pub struct ClusterNode {
    /// Member name (`gw1`…).
    pub member: String,
    /// VRRP priority; `None`: `ikelb member` (reports only).
    pub priority: Option<u8>,
    pub daemon: Daemon,
    /// Control socket (`ikelb status --socket`).
    pub socket: PathBuf,
    pub config: PathBuf,
}

/// One RADIUS namespace and its server (`None`: down or forging, and `fake` holds the
/// port).
#[derive(Debug)]
pub struct RadiusNode {
    pub name: String,
    pub index: u8,
    pub server: Option<FreeRadius>,
    pub fake: Option<Daemon>,
    pub netns: Netns,
}

impl RadiusNode {
    pub fn v4(&self) -> std::net::IpAddr {
        segment_addr(Family::V4, radius_host(self.index))
    }
}

/// Members accept any client id with the lab PSK, from any inner address.
pub(super) fn member_swanctl() -> String {
    let conn = Conn {
        name: "member".into(),
        local_id: MEMBER_ID.into(),
        child: "svc".into(),
        local_ts: vec![service_net(Family::V4), service_net(Family::V6)],
        remote_ts: vec![inner_net(Family::V4), inner_net(Family::V6)],
        ..Conn::default()
    };
    swanctl_conf(&[conn], PSK)
}

/// Members accept any client whose certificate chains to the lab CA (or, with `eap`,
/// that authenticates by EAP through the lab's RADIUS servers), and prove `MEMBER_ID`
/// with their own certificate (`x509/<name>.pem`).
pub(super) fn member_swanctl_cert(name: &str, eap: bool) -> String {
    let conn = Conn {
        name: "member".into(),
        local_id: MEMBER_ID.into(),
        child: "svc".into(),
        local_ts: vec![service_net(Family::V4), service_net(Family::V6)],
        remote_ts: vec![inner_net(Family::V4), inner_net(Family::V6)],
        cert: Some(format!("{name}.pem")),
        ..Conn::default()
    };
    let conn = if eap {
        eap_config::member_conn(conn)
    } else {
        conn
    };
    swanctl_conf(&[conn], PSK)
}

/// `cert`: authenticate by certificate of this key type from this pki directory.
pub(super) fn start_client(
    ns: &Netns,
    spec: &ClientSpec,
    index: u8,
    dir: &Path,
    opts: &CharonOptions,
    cert: Option<(CertKey, std::path::PathBuf)>,
) -> Result<ClientDaemon> {
    let fam = spec.family;
    let vip = vip(fam).to_string();
    let local = segment_addr(fam, client_host(index)).to_string();
    let inner = format!("{}/{}", inner_addr(fam, index), host_len(fam));
    let service = format!("{}/{}", service_addr(fam), host_len(fam));
    match spec.kind {
        ClientKind::StrongSwan => {
            let mut opts = match &spec.eap {
                Some(_) => eap_config::client_options(opts),
                None => opts.clone(),
            };
            if !spec.redirect {
                // Later keys override earlier ones in strongswan.conf.
                opts.extra.push_str("\n  follow_redirects = no\n");
            }
            let charon = Charon::start(ns, &spec.name, dir, &opts)?;
            let port = (spec.port == 4500).then_some(4500);
            let conn = Conn {
                name: "vip".into(),
                remote_addrs: vip,
                local_addrs: local,
                local_id: spec.id(),
                remote_id: MEMBER_ID.into(),
                local_port: port,
                remote_port: port,
                child: "svc".into(),
                local_ts: vec![inner],
                remote_ts: vec![service],
                ..Conn::default()
            };
            let conn = match &cert {
                Some((_, pki)) => {
                    pki::install_for_charon(pki, &spec.name, dir)?;
                    Conn {
                        cert: Some(format!("{}.pem", spec.name)),
                        ..conn
                    }
                }
                None => conn,
            };
            let (conn, secrets) = match &spec.eap {
                Some(m) => eap_config::client_conn(conn, spec, m),
                None => (conn, Vec::new()),
            };
            charon.load(&swanctl_conf_eap(&[conn], PSK, &secrets))?;
            Ok(ClientDaemon::StrongSwan(charon))
        }
        ClientKind::Libreswan => {
            let conn = ClientConn {
                name: "vip".into(),
                left: local,
                leftid: format!("@{}", spec.id()),
                leftsubnet: inner,
                right: vip,
                rightid: format!("@{MEMBER_ID}"),
                rightsubnet: service,
                rightikeport: (spec.port == 4500).then_some(4500),
                ..ClientConn::default()
            };
            let (conn, secrets) = match &cert {
                Some((kind, pki)) => {
                    pki::install_for_pluto(pki, spec, &dir.join("nss"))?;
                    let conn = ClientConn {
                        leftcert: Some((spec.name.clone(), kind.libreswan_authby().into())),
                        ..conn
                    };
                    (conn, String::new())
                }
                None => (
                    conn,
                    libreswan::psk_secret(
                        &format!("@{}", spec.id()),
                        &format!("@{MEMBER_ID}"),
                        PSK,
                    ),
                ),
            };
            let mut conf = conn.to_conf();
            if !spec.redirect {
                conf = conf.replace("accept-redirect=yes", "accept-redirect=no");
            }
            let p = Pluto::start(ns, &spec.name, dir, "", &conf, &secrets)?;
            Ok(ClientDaemon::Libreswan(p))
        }
    }
}
