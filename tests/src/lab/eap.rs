//! EAP in the lab ([`LabConfig::eap`]): FreeRADIUS servers `rad1..` on the segment,
//! ikelb relaying its clients' EAP to them (`[ike.radius]`, one `%any` peer with
//! `auth = "eap"`), members that authenticate the same users against the same servers
//! (strongSwan `eap-radius`, asking the client for its EAP identity), and strongSwan
//! clients with EAP-MSCHAPv2 or EAP-TLS that authenticate ikelb and the members by
//! certificate. Needs a certificate lab ([`LabConfig::ikelb_auth_cert`]): ikelb and the
//! members prove themselves with the lab's certificates, FreeRADIUS uses one of the
//! same CA for EAP-TLS.

use anyhow::{Result, bail};

use super::Lab;
use super::addr::{prefix_len, radius_host, segment_addr};
use super::nodes::RadiusNode;
use super::spec::{EapLab, Family};
use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::peers::freeradius::{FreeRadius, RadiusSetup, TlsFiles};
use crate::peers::{EAP_PASSWORD, RADIUS_SECRET};

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
