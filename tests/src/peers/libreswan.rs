//! libreswan pluto, self-contained per namespace (docs/testing.md §5): its own
//! ipsec.conf, secrets, NSS db, run dir and log; no host configuration is read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cmd;
use crate::daemon::Daemon;
use crate::netns::Netns;

/// The pluto binary (Debian's libreswan 4.x).
pub const PLUTO: &str = "/usr/libexec/ipsec/pluto";

/// A client connection with `accept-redirect=yes` (pluto sends REDIRECT_SUPPORTED).
#[derive(Clone, Debug, Default)]
pub struct ClientConn {
    pub name: String,
    pub left: String,
    pub leftid: String,
    pub leftsubnet: String,
    pub right: String,
    pub rightid: String,
    pub rightsubnet: String,
    /// `rightikeport=`: set only for 4500 (it switches pluto to the NAT-T socket and the
    /// non-ESP marker, even when set to 500).
    pub rightikeport: Option<u16>,
    /// `Some((nickname, authby))`: authenticate by the certificate of that NSS nickname
    /// (`leftcert=`) with `authby=` `ecdsa` or `rsasig`, instead of the PSK.
    pub leftcert: Option<(String, String)>,
}

impl ClientConn {
    pub fn to_conf(&self) -> String {
        let mut s = format!(
            "conn {}\n  ikev2=insist\n  authby=secret\n  accept-redirect=yes\n  keyingtries=1\n  \
             left={}\n  leftid={}\n  leftsubnet={}\n  right={}\n  rightid={}\n  rightsubnet={}\n  \
             auto=add\n",
            self.name,
            self.left,
            self.leftid,
            self.leftsubnet,
            self.right,
            self.rightid,
            self.rightsubnet
        );
        if let Some(p) = self.rightikeport {
            let _ = writeln!(s, "  rightikeport={p}");
        }
        if let Some((nick, authby)) = &self.leftcert {
            s = s.replace("authby=secret", &format!("authby={authby}"));
            let _ = writeln!(s, "  leftcert={nick}");
        }
        s
    }
}

/// `config setup` of libreswan's own redirect responder (the baseline ikelb must beat):
/// every IKE_SA_INIT with REDIRECT_SUPPORTED arriving at `listen` is redirected to one of
/// `targets`, in rotation, whatever their family: give it targets of `listen`'s family.
pub fn global_redirect_setup(listen: &str, targets: &[String]) -> String {
    format!(
        "config setup\n  listen={listen}\n  global-redirect=yes\n  global-redirect-to={}\n",
        targets.join(",")
    )
}

/// A pluto running in a namespace with everything under `dir`.
#[derive(Debug)]
pub struct Pluto {
    pub name: String,
    pub dir: PathBuf,
    pub netns: String,
    daemon: Daemon,
}

impl Pluto {
    /// Writes `ipsec.conf` (= `setup` + `conns`) and `ipsec.secrets`, creates the NSS db,
    /// starts pluto in `ns`, loads every conn, and turns automatic revival off.
    pub fn start(
        ns: &Netns,
        name: &str,
        dir: &Path,
        setup: &str,
        conns: &str,
        secrets: &str,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir.join("ipsec.d"))
            .with_context(|| format!("mkdir {}", dir.display()))?;
        let nss = dir.join("nss");
        if !nss.join("cert9.db").exists() {
            std::fs::create_dir_all(&nss)?;
            cmd::run(
                Command::new("certutil")
                    .arg("-N")
                    .arg("-d")
                    .arg(format!("sql:{}", nss.display()))
                    .arg("--empty-password"),
            )?;
        }
        let setup = if setup.is_empty() {
            "config setup\n"
        } else {
            setup
        };
        std::fs::write(dir.join("ipsec.conf"), format!("{setup}\n{conns}"))?;
        std::fs::write(dir.join("ipsec.secrets"), secrets)?;
        let ctl = dir.join("pluto.ctl");
        let _ = std::fs::remove_file(&ctl);
        let mut c = ns.exec(PLUTO);
        c.arg("--nofork")
            .arg("--config")
            .arg(dir.join("ipsec.conf"))
            .arg("--rundir")
            .arg(dir)
            .arg("--nssdir")
            .arg(&nss)
            .arg("--ipsecdir")
            .arg(dir.join("ipsec.d"))
            .arg("--secretsfile")
            .arg(dir.join("ipsec.secrets"))
            .arg("--logfile")
            .arg(dir.join("pluto.log"));
        let daemon = Daemon::spawn(&format!("pluto {name}"), c, &dir.join("pluto.out"))?;
        let mut pluto = Pluto {
            name: name.into(),
            dir: dir.into(),
            netns: ns.name().into(),
            daemon,
        };
        cmd::wait_for(
            &format!("pluto {name} ctl socket"),
            Duration::from_secs(10),
            || {
                if let Some(st) = pluto.daemon.exited() {
                    anyhow::bail!(
                        "pluto {name} exited ({st}):\n{}\n{}",
                        cmd::tail(&pluto.dir.join("pluto.out"), 20),
                        cmd::tail(&pluto.log_path(), 20)
                    );
                }
                Ok(ctl.exists())
            },
        )?;
        if !conns.trim().is_empty() {
            let mut c = ns.exec("ipsec");
            c.arg("addconn")
                .arg("--config")
                .arg(dir.join("ipsec.conf"))
                .arg("--ctlsocket")
                .arg(&ctl)
                .arg("--autoall");
            cmd::run(&mut c)?;
        }
        cmd::run(&mut pluto.whack(&["--impair", "revival"]))?;
        Ok(pluto)
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// `ipsec whack --ctlsocket <ours> <args>`.
    pub fn whack(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ipsec");
        c.arg("whack")
            .arg("--ctlsocket")
            .arg(self.dir.join("pluto.ctl"))
            .args(args);
        c
    }

    /// `whack --name <conn> --initiate`, bounded by `timeout`: whether whack reported
    /// success, and its output.
    pub fn initiate(&self, conn: &str, timeout: Duration) -> Result<(bool, String)> {
        let w = self.whack(&["--name", conn, "--initiate"]);
        let mut c = Command::new("timeout");
        c.arg(timeout.as_secs().max(1).to_string())
            .arg(w.get_program())
            .args(w.get_args());
        let out = cmd::output(&mut c)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("pluto.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    pub fn log_since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or("").to_string()
    }

    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

/// `ipsec.secrets` line for a PSK between two ids.
pub fn psk_secret(leftid: &str, rightid: &str, psk: &str) -> String {
    format!("{leftid} {rightid} : PSK \"{psk}\"\n")
}
