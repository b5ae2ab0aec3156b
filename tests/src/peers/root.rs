//! The private strongSwan root (docs/testing.md §4.1): Debian's charon, libcharon, the extra
//! plugins (kernel-libipsec, eap-radius, eap-tls, eap-identity) and the extauth plugins
//! (eap-mschapv2) unpacked under `<workspace>/target/peers/root`, because the
//! system has libreswan installed and apt refuses both in one system.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, command};

/// Packages unpacked into the root.
pub const PACKAGES: &[&str] = &[
    "strongswan-charon",
    "strongswan-libcharon",
    "libcharon-extra-plugins",
    "libcharon-extauth-plugins",
];

/// Files under `usr/lib/ipsec` a usable root has: a root unpacked before a package was
/// added to [`PACKAGES`] lacks some and is built again.
const REQUIRED: &[&str] = &[
    "charon",
    "libcharon.so.0",
    "plugins/libstrongswan-kernel-libipsec.so",
    "plugins/libstrongswan-eap-identity.so",
    "plugins/libstrongswan-eap-radius.so",
    "plugins/libstrongswan-eap-tls.so",
    "plugins/libstrongswan-eap-mschapv2.so",
];

fn complete(root: &Path) -> bool {
    root.join(".ready").exists() && REQUIRED.iter().all(|f| ipsec_dir(root).join(f).exists())
}

/// `<workspace>/target/peers`.
pub fn peers_dir() -> PathBuf {
    crate::workspace_target().join("peers")
}

/// Holds an exclusive `flock` on a file until dropped.
struct FileLock(File);

impl FileLock {
    fn new(path: &Path) -> Result<Self> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; blocks until the lock is ours.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "flock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(FileLock(f))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor locked in new().
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Returns the root, building it first if needed (idempotent; safe across threads and
/// processes). Needs `apt-get download` to reach the Debian mirror the first time.
pub fn prepare() -> Result<PathBuf> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = peers_dir();
    let root = dir.join("root");
    if complete(&root) {
        return Ok(root);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let _flock = FileLock::new(&dir.join(".lock"))?;
    if complete(&root) {
        return Ok(root);
    }
    if !Path::new("/usr/lib/ipsec/libstrongswan.so.0").exists() {
        bail!(
            "/usr/lib/ipsec/libstrongswan.so.0 is missing: apt-get install -y libreswan \
             strongswan-swanctl libstrongswan-standard-plugins libnss3-tools"
        );
    }
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs)?;
    let have = |pkg: &str| -> Result<Option<PathBuf>> {
        for e in std::fs::read_dir(&debs)? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(&format!("{pkg}_")) && name.ends_with(".deb") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    };
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| have(p).ok().flatten().is_none())
        .collect();
    if !missing.is_empty() {
        let mut c = command("apt-get", ["download"]);
        c.args(&missing).current_dir(&debs);
        cmd::run(&mut c).context("download the strongSwan packages")?;
    }
    let tmp = dir.join("root.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    for pkg in PACKAGES {
        let deb = have(pkg)?.with_context(|| format!("{pkg}: no .deb after download"))?;
        let mut c = command("dpkg-deb", ["-x"]);
        c.arg(&deb).arg(&tmp);
        cmd::run(&mut c)?;
    }
    // The system's libstrongswan, libvici and plugins, without overwriting the unpacked
    // files (they are the same version).
    let ipsec = tmp.join("usr/lib/ipsec");
    std::fs::create_dir_all(&ipsec)?;
    let mut c = command("cp", ["-a", "-n", "/usr/lib/ipsec/."]);
    c.arg(&ipsec);
    cmd::run(&mut c)?;
    for f in REQUIRED {
        if !ipsec.join(f).exists() {
            bail!("{} missing after unpacking", ipsec.join(f).display());
        }
    }
    std::fs::write(tmp.join(".ready"), b"")?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&tmp, &root)?;
    Ok(root)
}

/// The charon binary inside the root's lib dir.
pub fn ipsec_dir(root: &Path) -> PathBuf {
    root.join("usr/lib/ipsec")
}
