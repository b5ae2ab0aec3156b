//! strongSwan charon, one per network namespace (docs/testing.md §4.2), driven with
//! swanctl.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::vici::{self, IkeSa};
use crate::cmd::{self, quote};
use crate::daemon::Daemon;
use crate::netns::Netns;

/// strongswan.conf knobs.
#[derive(Clone, Debug)]
pub struct CharonOptions {
    /// Load kernel-libipsec (userspace ESP over TUN; forces UDP encapsulation). Needed
    /// when the kernel has no ESP ([`crate::esp::probe`]); works either way.
    pub libipsec: bool,
    pub retransmit_tries: u32,
    /// Seconds before the first retransmission.
    pub retransmit_timeout: f32,
    pub retransmit_base: f32,
    /// Extra lines for the `charon { }` section.
    pub extra: String,
    /// Plugins loaded besides the standard set (e.g. `eap-identity eap-radius`).
    pub plugins: String,
    /// Lines for the `charon { plugins { } }` section (e.g. `eap-radius { … }`).
    pub plugin_conf: String,
}

impl Default for CharonOptions {
    fn default() -> Self {
        CharonOptions {
            libipsec: true,
            retransmit_tries: 3,
            retransmit_timeout: 1.0,
            retransmit_base: 1.5,
            extra: String::new(),
            plugins: String::new(),
            plugin_conf: String::new(),
        }
    }
}

// kernel-libipsec must come before kernel-netlink: the first IPsec backend loaded wins.
const PLUGINS_HEAD: &str = "random nonce kdf openssl aes sha1 sha2 hmac gmp pem pkcs1 x509 \
    revocation constraints pubkey";
const PLUGINS_TAIL: &str = "kernel-netlink socket-default updown vici";

const SWANCTL_PLUGINS: &str = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey";

/// A charon running in a namespace, with its files under `dir`: `strongswan.conf`,
/// `swanctl.conf` (+ credential dirs), `charon.vici`, `charon.log`, `run/`.
#[derive(Debug)]
pub struct Charon {
    pub name: String,
    pub dir: PathBuf,
    pub netns: String,
    daemon: Daemon,
}

impl Charon {
    /// Writes the config and starts charon in `ns`; returns once vici answers.
    pub fn start(ns: &Netns, name: &str, dir: &Path, opts: &CharonOptions) -> Result<Self> {
        let root = super::root::prepare()?;
        let ipsec = super::root::ipsec_dir(&root);
        std::fs::create_dir_all(dir.join("run"))
            .with_context(|| format!("mkdir {}", dir.display()))?;
        for sub in [
            "x509", "x509ca", "x509aa", "x509ocsp", "x509crl", "x509ac", "pubkey", "private",
            "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12",
        ] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let vici = dir.join("charon.vici");
        let _ = std::fs::remove_file(&vici);
        let load = if opts.libipsec {
            format!(
                "{PLUGINS_HEAD} {} kernel-libipsec {PLUGINS_TAIL}",
                opts.plugins
            )
        } else {
            format!("{PLUGINS_HEAD} {} {PLUGINS_TAIL}", opts.plugins)
        };
        let conf = format!(
            "charon {{\n\
             \x20 load_modular = no\n\
             \x20 load = {load}\n\
             \x20 follow_redirects = yes\n\
             \x20 retransmit_tries = {}\n\
             \x20 retransmit_timeout = {}\n\
             \x20 retransmit_base = {}\n\
             \x20 install_virtual_ip = no\n\
             {}\n\
             \x20 plugins {{\n\
             \x20   vici {{\n\
             \x20     socket = unix://{}\n\
             \x20   }}\n\
             {}\n\
             \x20 }}\n\
             \x20 filelog {{\n\
             \x20   t {{\n\
             \x20     path = {}\n\
             \x20     default = 1\n\
             \x20     ike = 2\n\
             \x20     flush_line = yes\n\
             \x20     time_format = %H:%M:%S\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n\
             swanctl {{\n\
             \x20 load = {SWANCTL_PLUGINS}\n\
             }}\n",
            opts.retransmit_tries,
            opts.retransmit_timeout,
            opts.retransmit_base,
            opts.extra,
            vici.display(),
            opts.plugin_conf,
            dir.join("charon.log").display(),
        );
        let conf_path = dir.join("strongswan.conf");
        std::fs::write(&conf_path, conf)?;
        let script = format!(
            "mount --bind {} /usr/lib/ipsec && mount --bind {} /run && exec /usr/lib/ipsec/charon",
            quote(&ipsec),
            quote(dir.join("run")),
        );
        let mut c = ns.exec("sh");
        c.args(["-c", &script]).env("STRONGSWAN_CONF", &conf_path);
        let daemon = Daemon::spawn(&format!("charon {name}"), c, &dir.join("charon.out"))?;
        let mut charon = Charon {
            name: name.into(),
            dir: dir.into(),
            netns: ns.name().into(),
            daemon,
        };
        let mut stats = charon.swanctl(&["--stats"]);
        cmd::wait_for(
            &format!("charon {name} vici"),
            Duration::from_secs(10),
            || {
                if let Some(st) = charon.daemon.exited() {
                    anyhow::bail!(
                        "charon {name} exited ({st}):\n{}\n{}",
                        cmd::tail(&charon.dir.join("charon.out"), 20),
                        cmd::tail(&charon.log_path(), 20)
                    );
                }
                Ok(vici.exists() && stats.output().is_ok_and(|o| o.status.success()))
            },
        )?;
        Ok(charon)
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub fn uri(&self) -> String {
        format!("unix://{}", self.dir.join("charon.vici").display())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("charon.log")
    }

    /// The whole charon log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The log's current length: pass it to [`Charon::log_since`] later.
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// What was logged after `mark`.
    pub fn log_since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or("").to_string()
    }

    /// `swanctl <args> --uri <this charon>` (with this instance's strongswan.conf, whose
    /// `swanctl` section loads only the plugins the system has, and credentials from this
    /// instance's `x509/`, `x509ca/`, `private/`… rather than the host's).
    pub fn swanctl(&self, args: &[&str]) -> Command {
        let mut c = cmd::command("swanctl", args);
        c.args(["--uri", &self.uri()])
            .env("STRONGSWAN_CONF", self.dir.join("strongswan.conf"))
            .env("SWANCTL_DIR", &self.dir);
        c
    }

    /// Writes `conf` as this instance's `swanctl.conf` and loads everything in it.
    pub fn load(&self, conf: &str) -> Result<()> {
        let path = self.dir.join("swanctl.conf");
        std::fs::write(&path, conf)?;
        let mut c = self.swanctl(&["--load-all", "--noprompt"]);
        c.arg("--file").arg(&path);
        cmd::run(&mut c).map(drop)
    }

    /// `swanctl --initiate --child <child>`: blocks until the CHILD_SA is up or failed,
    /// returning swanctl's output (the IKE log lines) either way, and whether it succeeded.
    pub fn initiate(&self, child: &str, timeout: Duration) -> Result<(bool, String)> {
        let secs = timeout.as_secs().max(1).to_string();
        let out =
            cmd::output(&mut self.swanctl(&["--initiate", "--child", child, "--timeout", &secs]))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }

    /// `swanctl --terminate --ike <name>` (errors ignored: it may be gone already).
    pub fn terminate(&self, ike: &str) {
        // Forced: the DELETE still goes out, but an SA whose peer died is gone at once
        // instead of retransmitting its DELETE while the next initiate races it.
        let _ = cmd::output(&mut self.swanctl(&[
            "--terminate",
            "--ike",
            ike,
            "--force",
            "--timeout",
            "2",
        ]));
    }

    /// The IKE_SAs as `swanctl --list-sas --raw` reports them.
    pub fn list_sas(&self) -> Result<Vec<IkeSa>> {
        let text = cmd::run(&mut self.swanctl(&["--list-sas", "--raw"]))?;
        Ok(vici::parse_sas(&text))
    }

    /// Stops charon (SIGTERM by pid, then SIGKILL).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

/// One side of a PSK connection in swanctl.conf.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    /// Connection (and IKE) name.
    pub name: String,
    /// `remote_addrs` (empty: `%any`, responder).
    pub remote_addrs: String,
    pub local_addrs: String,
    pub local_id: String,
    /// Empty: `%any`.
    pub remote_id: String,
    pub local_port: Option<u16>,
    pub remote_port: Option<u16>,
    /// Child name and its traffic selectors.
    pub child: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    /// `Some(file in x509/)`: authenticate by certificate both ways (`auth = pubkey`,
    /// our `certs = <file>`, sent always; the peer's must chain to a CA in `x509ca/`)
    /// instead of PSK.
    pub cert: Option<String>,
    /// Override `auth` of the local or remote side (e.g. `eap-mschapv2`, `eap-radius`).
    pub local_auth: Option<String>,
    pub remote_auth: Option<String>,
    /// `eap_id` of the local side (the EAP identity a client gives) or of the remote side
    /// (`%any`: a gateway asks the client for it).
    pub local_eap_id: Option<String>,
    pub remote_eap_id: Option<String>,
}

impl Conn {
    /// The `connections { }` entry.
    pub fn to_conf(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "  {} {{\n    version = 2", self.name);
        if !self.remote_addrs.is_empty() {
            let _ = writeln!(s, "    remote_addrs = {}", self.remote_addrs);
        }
        if !self.local_addrs.is_empty() {
            let _ = writeln!(s, "    local_addrs = {}", self.local_addrs);
        }
        if let Some(p) = self.local_port {
            let _ = writeln!(s, "    local_port = {p}");
        }
        if let Some(p) = self.remote_port {
            let _ = writeln!(s, "    remote_port = {p}");
        }
        let auth = if self.cert.is_some() { "pubkey" } else { "psk" };
        if self.cert.is_some() {
            // libreswan 4.10 sends no CERTREQ without `rightca=`, and with the default
            // `ifasked` a member then leaves its certificate out ("no certificate matched
            // ECDSA with SHA2_256 and '@gw.ikelb.test'").
            let _ = writeln!(s, "    send_cert = always");
        }
        let local = self.local_auth.as_deref().unwrap_or(auth);
        let _ = writeln!(s, "    local {{\n      auth = {local}");
        if let Some(c) = &self.cert {
            let _ = writeln!(s, "      certs = {c}");
        }
        if let Some(e) = &self.local_eap_id {
            let _ = writeln!(s, "      eap_id = {e}");
        }
        let _ = writeln!(s, "      id = {}\n    }}", self.local_id);
        let remote = self.remote_auth.as_deref().unwrap_or(auth);
        let _ = writeln!(s, "    remote {{\n      auth = {remote}");
        if !self.remote_id.is_empty() {
            let _ = writeln!(s, "      id = {}", self.remote_id);
        }
        if let Some(e) = &self.remote_eap_id {
            let _ = writeln!(s, "      eap_id = {e}");
        }
        let _ = writeln!(s, "    }}\n    children {{\n      {} {{", self.child);
        let _ = writeln!(s, "        local_ts = {}", self.local_ts.join(","));
        let _ = writeln!(s, "        remote_ts = {}", self.remote_ts.join(","));
        let _ = writeln!(s, "      }}\n    }}\n  }}");
        s
    }
}

/// A whole swanctl.conf: `conns` plus one wildcard PSK.
pub fn swanctl_conf(conns: &[Conn], psk: &str) -> String {
    swanctl_conf_eap(conns, psk, &[])
}

/// [`swanctl_conf`] with EAP secrets: `(EAP identity, password)`.
pub fn swanctl_conf_eap(conns: &[Conn], psk: &str, eap: &[(String, String)]) -> String {
    let mut s = String::from("connections {\n");
    for c in conns {
        s.push_str(&c.to_conf());
    }
    let _ = write!(
        s,
        "}}\nsecrets {{\n  ike-any {{\n    secret = \"{psk}\"\n  }}\n"
    );
    for (i, (id, secret)) in eap.iter().enumerate() {
        let _ = write!(
            s,
            "  eap-{i} {{\n    id = {id}\n    secret = \"{secret}\"\n  }}\n"
        );
    }
    s.push_str("}\n");
    s
}
