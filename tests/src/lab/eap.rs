//! EAP in the lab ([`LabConfig::eap`]): FreeRADIUS servers `rad1..` on the segment,
//! ikelb relaying its clients' EAP to them (`[ike.radius]`, one `%any` peer with
//! `auth = "eap"`), members that authenticate the same users against the same servers
//! (strongSwan `eap-radius`, asking the client for its EAP identity), and strongSwan
//! clients with EAP-MSCHAPv2 or EAP-TLS that authenticate ikelb and the members by
//! certificate. Needs a certificate lab ([`LabConfig::ikelb_auth_cert`]): ikelb and the
//! members prove themselves with the lab's certificates, FreeRADIUS uses one of the
//! same CA for EAP-TLS.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use super::{ClientSpec, Family, Lab, LabConfig, prefix_len, radius_host, segment_addr};
use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::peers::freeradius::{FreeRadius, RadiusSetup, TlsFiles};
use crate::peers::strongswan::{CharonOptions, Conn};
use crate::peers::{EAP_PASSWORD, RADIUS_SECRET};

/// How a client authenticates by EAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EapMethod {
    /// EAP-MSCHAPv2 with this password (the servers know [`EAP_PASSWORD`]).
    MsChapV2 { password: String },
    /// EAP-TLS with the client's certificate of the lab CA.
    Tls,
}

impl EapMethod {
    /// MSCHAPv2 with the password the servers know.
    pub fn mschapv2() -> Self {
        EapMethod::MsChapV2 {
            password: EAP_PASSWORD.into(),
        }
    }
}

/// The RADIUS side of an EAP lab.
#[derive(Clone, Debug)]
pub struct EapLab {
    /// RADIUS servers `rad1..=radN`, in this order of preference for ikelb and members.
    pub servers: u8,
    /// Servers that are down (1-based): their namespace and address exist, and a socket
    /// on the RADIUS port takes requests without ever answering. Silent rather than
    /// refusing: strongSwan's eap-radius gives up at once on a port unreachable instead of
    /// trying its next server, and silence is the harder case for ikelb too.
    pub down: Vec<u8>,
    /// Servers that answer every request with a forgery (1-based): first a wrong
    /// Response Authenticator, then, knowing the secret, a right one over a wrong
    /// Message-Authenticator, alternately. ikelb must drop and count them.
    pub forged: Vec<u8>,
    /// ikelb's `[ike.radius]` `timeout-ms` and `retries`.
    pub timeout_ms: u64,
    pub retries: u32,
}

impl Default for EapLab {
    fn default() -> Self {
        EapLab {
            servers: 1,
            down: Vec::new(),
            forged: Vec::new(),
            timeout_ms: 1000,
            retries: 1,
        }
    }
}

impl EapLab {
    /// The longest ikelb waits for a verdict: every server, every try.
    pub fn worst_case(&self) -> std::time::Duration {
        let tries = u64::from(self.retries + 1) * u64::from(self.servers);
        std::time::Duration::from_millis(self.timeout_ms * tries)
    }
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

/// A RADIUS port that swallows requests (see [`EapLab::down`]).
const SILENT: &str = r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('', 1812))
print('bound', flush=True)
time.sleep(3600)
"#;

/// A RADIUS port that answers with forgeries (see [`EapLab::forged`]); the shared
/// secret is its argument.
const FORGER: &str = r#"
import hashlib, os, socket, sys
secret = sys.argv[1].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('', 1812))
print('bound', flush=True)
n = 0
while True:
    req, peer = s.recvfrom(4096)
    n += 1
    ma = bytes([80, 18]) + bytes(16)
    hdr = bytes([2, req[1]]) + (20 + len(ma)).to_bytes(2, 'big')
    if n % 2:
        ra = os.urandom(16)
    else:
        ra = hashlib.md5(hdr + req[4:20] + ma + secret).digest()
    s.sendto(hdr + ra + ma, peer)
    print('forged', n, flush=True)
"#;

/// `<pki>/radius.secret`: the RADIUS shared secret ikelb reads (`secret-file`).
pub fn secret_path(pki: &Path) -> std::path::PathBuf {
    pki.join("radius.secret")
}

fn server_addrs(eap: &EapLab) -> Vec<std::net::IpAddr> {
    (1..=eap.servers)
        .map(|i| segment_addr(Family::V4, radius_host(i)))
        .collect()
}

impl Lab {
    /// The RADIUS namespaces and servers; the lab's PKI must exist.
    pub(super) fn start_radius(&mut self, eap: &EapLab) -> Result<()> {
        if self.config.ikelb_auth_cert.is_none() {
            bail!(
                "an EAP lab needs ikelb_auth_cert: ikelb and the members prove themselves by certificate"
            );
        }
        let pki = super::pki::pki_dir(&self.run_dir);
        let users = self
            .config
            .clients
            .iter()
            .filter(|c| c.eap.is_some())
            .map(|c| (c.id(), EAP_PASSWORD.to_string()))
            .collect();
        let setup = RadiusSetup {
            clients: vec![
                format!("{}/{}", segment_addr(Family::V4, 0), prefix_len(Family::V4)),
                format!("{}/{}", segment_addr(Family::V6, 0), prefix_len(Family::V6)),
            ],
            secret: RADIUS_SECRET.into(),
            users,
            tls: Some(TlsFiles {
                cert: super::pki::cert_path(&pki, "radius"),
                key: super::pki::key_path(&pki, "radius"),
                ca: super::pki::cert_path(&pki, "ca"),
            }),
        };
        for i in 1..=eap.servers {
            let name = format!("rad{i}");
            let ns = Netns::new(&name)?;
            let host = radius_host(i);
            self.plug(Some(&ns), "eth0", &format!("v{name}"), host)?;
            for fam in [Family::V4, Family::V6] {
                ns.addr_add(
                    "eth0",
                    &format!("{}/{}", segment_addr(fam, host), prefix_len(fam)),
                )?;
            }
            let dir = self.run_dir.join(&name);
            let fake = if eap.down.contains(&i) {
                Some(("silent", vec!["-c", SILENT]))
            } else if eap.forged.contains(&i) {
                Some(("forger", vec!["-c", FORGER, RADIUS_SECRET]))
            } else {
                None
            };
            let (server, fake) = if let Some((what, args)) = fake {
                std::fs::create_dir_all(&dir)?;
                let mut c = ns.exec("python3");
                c.args(args);
                let log = dir.join(format!("{what}.log"));
                let mut d = Daemon::spawn(&format!("{what} {name}"), c, &log)?;
                d.wait_log("bound", std::time::Duration::from_secs(5))?;
                (None, Some(d))
            } else {
                (Some(FreeRadius::start(&ns, &name, &dir, &setup)?), None)
            };
            self.radius.push(RadiusNode {
                name,
                index: i,
                server,
                fake,
                netns: ns,
            });
        }
        Ok(())
    }

    /// RADIUS server `name`'s log (empty for one that is down or forging).
    pub fn radius_log(&self, name: &str) -> String {
        self.radius
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.server.as_ref())
            .map(FreeRadius::log)
            .unwrap_or_default()
    }

    /// ikelb's log (`ikelb run`).
    pub fn ikelb_log(&self) -> String {
        std::fs::read_to_string(self.run_dir.join("lb").join("ikelb.log")).unwrap_or_default()
    }
}

/// A member's charon options in an EAP lab: eap-radius with the lab's real servers
/// (not the down or forging ones). strongSwan 5.9.8's eap-radius does not move a conversation to its next server when
/// one times out (the client gets EAP-Failure; only later conversations avoid that
/// server), so a member that knew the down server would fail the client the failover
/// test is about: ikelb's failover is under test, not the member's.
pub(super) fn member_options(opts: &CharonOptions, eap: &EapLab) -> CharonOptions {
    let mut o = opts.clone();
    o.plugins.push_str(" eap-identity eap-radius");
    let mut servers = String::new();
    let up = server_addrs(eap).into_iter().enumerate().filter(|(i, _)| {
        let n = *i as u8 + 1;
        !eap.down.contains(&n) && !eap.forged.contains(&n)
    });
    for (i, a) in up {
        let _ = write!(
            servers,
            "        rad{} {{\n          address = {a}\n          secret = {RADIUS_SECRET}\n        }}\n",
            i + 1
        );
    }
    let _ = write!(
        o.plugin_conf,
        "    eap-radius {{\n      retransmit_tries = 1\n      retransmit_timeout = 1\n      \
         retransmit_base = 1\n      servers {{\n{servers}      }}\n    }}\n"
    );
    o
}

/// A member's connection: proves `MEMBER_ID` by its certificate, asks the client for its
/// EAP identity and relays it to RADIUS.
pub(super) fn member_conn(base: Conn) -> Conn {
    Conn {
        remote_auth: Some("eap-radius".into()),
        remote_eap_id: Some("%any".into()),
        ..base
    }
}

/// A strongSwan client's options: the EAP methods it may use.
pub(super) fn client_options(opts: &CharonOptions) -> CharonOptions {
    let mut o = opts.clone();
    o.plugins.push_str(" eap-identity eap-mschapv2 eap-tls");
    o
}

/// A strongSwan client's connection by `method`, and its EAP secrets: EAP as itself
/// (its IKE identity is its EAP identity), the gateways by certificate.
pub(super) fn client_conn(
    base: Conn,
    spec: &ClientSpec,
    method: &EapMethod,
) -> (Conn, Vec<(String, String)>) {
    let conn = Conn {
        remote_auth: Some("pubkey".into()),
        local_eap_id: Some(spec.id()),
        ..base
    };
    match method {
        EapMethod::MsChapV2 { password } => (
            Conn {
                local_auth: Some("eap-mschapv2".into()),
                cert: None,
                ..conn
            },
            vec![(spec.id(), password.clone())],
        ),
        EapMethod::Tls => (
            Conn {
                local_auth: Some("eap-tls".into()),
                ..conn
            },
            Vec::new(),
        ),
    }
}

impl LabConfig {
    /// ikelb's `[[ike.peer]]` for EAP clients and `[ike.radius]`.
    pub(super) fn ikelb_toml_eap(&self, pki: &Path) -> String {
        let Some(eap) = &self.eap else {
            return String::new();
        };
        let mut s = String::from("[[ike.peer]]\nid = \"%any\"\nauth = \"eap\"\n\n");
        let _ = write!(
            s,
            "[ike.radius]\ntimeout-ms = {}\nretries = {}\nnas-identifier = \"ikelb-lab\"\n\n",
            eap.timeout_ms, eap.retries
        );
        for a in server_addrs(eap) {
            let _ = write!(
                s,
                "[[ike.radius.server]]\naddress = \"{a}\"\nsecret-file = \"{}\"\n\n",
                secret_path(pki).display()
            );
        }
        s
    }
}
