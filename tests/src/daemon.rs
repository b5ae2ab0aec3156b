//! A child process that is stopped by its recorded pid when the guard drops.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cmd::{self, cmdline};

/// A running daemon with stdout and stderr appended to `log`. Drop sends SIGTERM to the
/// recorded pid, waits up to `stop_timeout`, then SIGKILLs and reaps it.
#[derive(Debug)]
pub struct Daemon {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    pub stop_timeout: Duration,
}

impl Daemon {
    /// Spawns `cmd`. The child also gets `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with
    /// this process if the guard never runs (e.g. SIGKILL of the test binary). `cmd` should
    /// end in an `exec` of the daemon itself (`ip netns exec` and `nsenter` do), so the
    /// pid we record is the daemon's.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // Its own process group: a terminal's Ctrl-C reaches only us, and we stop the
        // daemons in order (ikelb detaches before its namespace goes).
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {name}: `{}`", cmdline(&cmd)))?;
        Ok(Daemon {
            name: name.into(),
            log: log.into(),
            child,
            stop_timeout: Duration::from_secs(3),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until `log` contains `needle`; fails early, with the log's tail, if the
    /// daemon exits first.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_log_line(&format!("{needle:?}"), timeout, |l| l.contains(needle))
    }

    /// Waits until a line of `log` satisfies `pred` (`what` names it in errors); fails
    /// early, with the log's tail, if the daemon exits first.
    pub fn wait_log_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let log = self.log.clone();
        let name = self.name.clone();
        let needle = what;
        cmd::wait_for(&format!("{name} to log {needle}"), timeout, || {
            if std::fs::read_to_string(&log).is_ok_and(|t| t.lines().any(&pred)) {
                return Ok(true);
            }
            if let Some(st) = self.exited() {
                anyhow::bail!(
                    "{name} exited ({st}) before logging {needle}; log {}:\n{}",
                    log.display(),
                    cmd::tail(&log, 30)
                );
            }
            Ok(false)
        })
        .with_context(|| format!("log {}:\n{}", self.log.display(), cmd::tail(&self.log, 30)))
    }

    /// Sends `sig` to the recorded pid.
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap_or(0);
        if pid > 0 {
            // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// SIGTERM, wait, SIGKILL: returns the exit status once reaped.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(st) = self.exited() {
            return Some(st);
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + self.stop_timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.signal(libc::SIGKILL);
        self.child.wait().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
