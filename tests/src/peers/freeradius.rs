//! FreeRADIUS 3.2 (Debian `freeradius`), one per network namespace, with its own copy of
//! the configuration (docs/testing.md §4.4): the packaged `/etc/freeradius/3.0` copied
//! to a private directory, then `clients.conf`, the users file and a minimal `eap`
//! module written over it (the packaged one wants TLS files a fresh install does not
//! have). Runs in the foreground with debug output (`-X`) into its log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, command};
use crate::daemon::Daemon;
use crate::netns::Netns;

/// The packaged configuration copied for every instance.
const PACKAGED: &str = "/etc/freeradius/3.0";

/// Server certificate, key and the CA clients' certificates chain to, for EAP-TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// What one server is told.
#[derive(Clone, Debug)]
pub struct RadiusSetup {
    /// NAS networks (CIDR) allowed to ask, all with `secret`.
    pub clients: Vec<String>,
    pub secret: String,
    /// `(user, password)` for EAP-MSCHAPv2 (FreeRADIUS' `Cleartext-Password`).
    pub users: Vec<(String, String)>,
    /// EAP-TLS on, with these files.
    pub tls: Option<TlsFiles>,
}

#[derive(Debug)]
pub struct FreeRadius {
    pub name: String,
    pub dir: PathBuf,
    daemon: Daemon,
}

impl FreeRadius {
    /// Writes the configuration under `dir/raddb` and starts the server in `ns`; returns
    /// once it logs that it is ready.
    pub fn start(ns: &Netns, name: &str, dir: &Path, setup: &RadiusSetup) -> Result<Self> {
        if !Path::new(PACKAGED).join("radiusd.conf").exists() {
            bail!("{PACKAGED}/radiusd.conf missing: apt-get install freeradius");
        }
        let raddb = dir.join("raddb");
        let _ = std::fs::remove_dir_all(&raddb);
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
        cmd::run(command("cp", ["-a", PACKAGED]).arg(&raddb))?;
        let mut clients = String::new();
        for (i, net) in setup.clients.iter().enumerate() {
            let key = if net.contains(':') {
                "ipv6addr"
            } else {
                "ipaddr"
            };
            clients.push_str(&format!(
                "client nas{i} {{\n\t{key} = {net}\n\tsecret = {}\n}}\n",
                setup.secret
            ));
        }
        std::fs::write(raddb.join("clients.conf"), clients)?;
        // `users` is a link into mods-config/files: replace the link, not its target.
        let users = raddb.join("users");
        let _ = std::fs::remove_file(&users);
        let mut text = String::new();
        for (u, p) in &setup.users {
            text.push_str(&format!("\"{u}\" Cleartext-Password := \"{p}\"\n"));
        }
        std::fs::write(raddb.join("mods-config/files/authorize"), &text)?;
        std::fs::write(&users, &text)?;
        let tls = match &setup.tls {
            None => String::new(),
            // TLS 1.2: what strongSwan 5.9.8's eap-tls negotiates by default.
            Some(t) => format!(
                "\ttls-config tls-common {{\n\
                 \t\tprivate_key_file = {}\n\
                 \t\tcertificate_file = {}\n\
                 \t\tca_file = {}\n\
                 \t\tca_path = {}\n\
                 \t\tcipher_list = \"DEFAULT\"\n\
                 \t\ttls_min_version = \"1.2\"\n\
                 \t\ttls_max_version = \"1.2\"\n\
                 \t}}\n\
                 \ttls {{\n\t\ttls = tls-common\n\t}}\n",
                t.key.display(),
                t.cert.display(),
                t.ca.display(),
                raddb.join("certs").display(),
            ),
        };
        std::fs::write(
            raddb.join("mods-available/eap"),
            format!(
                "eap {{\n\tdefault_eap_type = mschapv2\n\tmd5 {{\n\t}}\n\tmschapv2 {{\n\t}}\n{tls}}}\n"
            ),
        )?;
        cmd::run(command("chown", ["-R", "freerad:freerad"]).arg(dir))?;
        let log = dir.join("radiusd.log");
        let mut c = ns.exec("freeradius");
        c.args(["-X", "-l", "stdout", "-d"]).arg(&raddb);
        let mut daemon = Daemon::spawn(&format!("freeradius {name}"), c, &log)?;
        daemon
            .wait_log("Ready to process requests", Duration::from_secs(20))
            .with_context(|| format!("freeradius {name}:\n{}", cmd::tail(&log, 30)))?;
        Ok(FreeRadius {
            name: name.into(),
            dir: dir.into(),
            daemon,
        })
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("radiusd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the server (SIGTERM by pid, then SIGKILL): it goes silent.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}
